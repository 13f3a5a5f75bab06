//! A worker's cumulative counters and the rule that keeps them from
//! regressing: the counts are those of the report with the greatest event
//! time, whatever order the reports arrive in. Shared by the worker and the
//! stage views so both always agree.

use serde::{Deserialize, Serialize};

use crate::event::WorkerStopped;

/// One cumulative report of a worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    /// Event time of the report these counts come from (`None`: no report yet).
    pub ts: Option<f64>,
    pub input_records: u64,
    pub output_records: u64,
    pub processed_count: u64,
    pub processing_time: f64,
    /// The newest `worker_stopped` without counts: its event time and final
    /// `processed_count`, which an older report taken later must not undo.
    pub stop: Option<(f64, u64)>,
}

impl Counts {
    /// Takes `report` if it is at least as new as the current one; returns
    /// whether it was taken.
    pub fn offer(&mut self, report: Counts) -> bool {
        match (self.ts, report.ts) {
            (Some(cur), Some(new)) if new < cur => false,
            _ => {
                let stop = self.stop;
                *self = report;
                self.stop = stop;
                if let Some((at, processed)) = stop {
                    if report.ts.is_none_or(|t| at >= t) {
                        self.processed_count = processed;
                    }
                }
                true
            }
        }
    }
}

impl Counts {
    /// Applies a `worker_stopped`: its counts when it carries them, else only
    /// its final `processed_count` (when it is the newest report).
    pub fn offer_stop(&mut self, ts: f64, p: &WorkerStopped) {
        match (p.input_records, p.output_records) {
            (Some(i), Some(o)) => {
                self.offer(Counts {
                    ts: Some(ts),
                    input_records: i,
                    output_records: o,
                    processed_count: p.processed_count,
                    processing_time: p.processing_time.map_or(self.processing_time, |t| t.0),
                    stop: None,
                });
            }
            _ => {
                if self.stop.is_some_and(|(at, _)| ts < at) {
                    return;
                }
                self.stop = Some((ts, p.processed_count));
                if self.ts.is_none_or(|cur| ts >= cur) {
                    self.processed_count = p.processed_count;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Counts;
    use crate::event::{Finite, WorkerStopped};

    fn report(ts: f64, n: u64) -> Counts {
        Counts {
            ts: Some(ts),
            input_records: n,
            output_records: n / 2,
            processed_count: n,
            processing_time: n as f64,
            stop: None,
        }
    }

    fn stop(processed: u64, counts: Option<(u64, u64)>) -> WorkerStopped<'static> {
        WorkerStopped {
            stage_id: "s1".into(),
            reason: Some("done".into()),
            processed_count: processed,
            error_count: 0,
            input_records: counts.map(|c| c.0),
            output_records: counts.map(|c| c.1),
            processing_time: counts.map(|_| Finite(9.5)),
        }
    }

    #[test]
    fn the_report_with_the_greatest_timestamp_wins_whatever_the_order() {
        let mut c = Counts::default();
        assert!(c.offer(report(10.0, 100)));
        assert!(c.offer(report(12.0, 300)));
        assert!(!c.offer(report(11.0, 200)));
        assert_eq!(c, report(12.0, 300));
        // An equal timestamp is taken (arrival order breaks the tie).
        assert!(c.offer(report(12.0, 310)));
        assert_eq!(c.input_records, 310);
    }

    #[test]
    fn a_stop_with_counts_competes_by_timestamp() {
        let mut c = Counts::default();
        c.offer(report(10.0, 100));
        c.offer_stop(20.0, &stop(500, Some((500, 250))));
        assert_eq!(
            (c.ts, c.input_records, c.output_records, c.processed_count),
            (Some(20.0), 500, 250, 500)
        );
        assert_eq!(c.processing_time, 9.5);
        // A late, older report changes nothing; a newer one still counts.
        assert!(!c.offer(report(15.0, 400)));
        assert_eq!(c.input_records, 500);
        assert!(c.offer(report(25.0, 600)));
        assert_eq!((c.input_records, c.processed_count), (600, 600));
    }

    #[test]
    fn an_older_stop_with_counts_changes_nothing() {
        let mut c = Counts::default();
        c.offer(report(30.0, 700));
        c.offer_stop(20.0, &stop(500, Some((500, 250))));
        assert_eq!(c, report(30.0, 700));
    }

    #[test]
    fn a_stop_without_counts_sets_only_the_processed_count() {
        let mut c = Counts::default();
        c.offer(report(10.0, 100));
        c.offer_stop(20.0, &stop(150, None));
        assert_eq!(
            (c.ts, c.input_records, c.output_records, c.processed_count),
            (Some(10.0), 100, 50, 150)
        );
    }

    #[test]
    fn a_late_report_older_than_a_stop_without_counts_keeps_the_final_processed_count() {
        let mut c = Counts::default();
        c.offer(report(10.0, 100));
        c.offer_stop(20.0, &stop(150, None));
        // Newer than the last report, older than the stop: its counts are
        // the latest, but the stop's processed count is final.
        assert!(c.offer(report(15.0, 120)));
        assert_eq!(
            (c.input_records, c.output_records, c.processed_count),
            (120, 60, 150)
        );
        // A report after the stop wins entirely.
        assert!(c.offer(report(21.0, 160)));
        assert_eq!((c.input_records, c.processed_count), (160, 160));
    }

    #[test]
    fn a_stop_without_counts_older_than_the_latest_report_changes_nothing() {
        let mut c = Counts::default();
        c.offer(report(30.0, 300));
        c.offer_stop(20.0, &stop(150, None));
        assert_eq!((c.input_records, c.processed_count), (300, 300));
        // And an even older stop never overrides a newer one.
        let mut c = Counts::default();
        c.offer_stop(20.0, &stop(150, None));
        c.offer_stop(19.0, &stop(140, None));
        assert_eq!(c.processed_count, 150);
    }
}
