//! Per-stage metrics over event-time windows of 1 s: records/s in and out,
//! queue lag, backpressure and skew between workers. A window closes once
//! the newest event time seen is 3 s past its end; only closed windows are
//! shown, so a replay always yields the same history. Rates come from each
//! worker's cumulative counts: a report newer than the worker's last one adds
//! its increase to the report's window; an older one changes nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::counts::Counts;
use crate::event::{Message, Payload};
use crate::projection::{dec20, Input, Keys, Projection};

/// Window length in event seconds.
pub const WINDOW_S: f64 = 1.0;
/// How far past its end the newest event time must be for a window to close.
pub const CLOSE_AFTER_S: f64 = 3.0;

/// A window row (`stage`, `start`) or a worker's last counted report (`last`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsRow {
    pub stage_id: String,
    pub start: i64,
    pub input_delta: u64,
    pub output_delta: u64,
    /// Per worker: records in and out within the window.
    pub per_worker: BTreeMap<String, (u64, u64)>,
    /// Latest (by event time) queue lag, backpressure flag and reported throughput.
    pub queue_lag: Option<(f64, u64)>,
    pub backpressure: Option<(f64, bool)>,
    pub reported_throughput: Option<(f64, Option<f64>, Option<f64>)>,
    /// For a worker row: the newest report already counted.
    pub last: Option<Counts>,
}

/// One closed window of a stage, as served.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsPoint {
    pub start_time: f64,
    pub end_time: f64,
    pub input_throughput: f64,
    pub output_throughput: f64,
    pub queue_lag: Option<u64>,
    pub backpressure_active: Option<bool>,
    pub skew_ratio: Option<f64>,
    pub workers_reporting: u64,
}

impl MetricsRow {
    /// The served form of a window row.
    pub fn point(&self) -> MetricsPoint {
        let computed = !self.per_worker.is_empty();
        let (rin, rout) = match self.reported_throughput {
            Some((_, i, o)) => (i, o),
            None => (None, None),
        };
        MetricsPoint {
            start_time: self.start as f64,
            end_time: self.start as f64 + WINDOW_S,
            input_throughput: if computed {
                self.input_delta as f64 / WINDOW_S
            } else {
                rin.unwrap_or(0.0)
            },
            output_throughput: if computed {
                self.output_delta as f64 / WINDOW_S
            } else {
                rout.unwrap_or(0.0)
            },
            queue_lag: self.queue_lag.map(|(_, v)| v),
            backpressure_active: self.backpressure.map(|(_, v)| v),
            skew_ratio: self.skew(),
            workers_reporting: self.per_worker.len() as u64,
        }
    }

    /// Busiest worker over the mean worker, on input (output for sources).
    fn skew(&self) -> Option<f64> {
        let by_input = self.per_worker.values().any(|(i, _)| *i > 0);
        let vals: Vec<u64> = self
            .per_worker
            .values()
            .map(|(i, o)| if by_input { *i } else { *o })
            .collect();
        let sum: u64 = vals.iter().sum();
        if vals.is_empty() || sum == 0 {
            return None;
        }
        let mean = sum as f64 / vals.len() as f64;
        let max = *vals.iter().max()? as f64;
        Some((max / mean * 1000.0).round() / 1000.0)
    }
}

/// The window start (whole event seconds) of a timestamp.
pub fn window_of(ts: f64) -> i64 {
    (ts / WINDOW_S).floor().max(0.0) as i64
}

/// The start of the newest closed window, given the newest event time.
pub fn last_closed_window(newest_event_time: f64) -> i64 {
    ((newest_event_time - CLOSE_AFTER_S - WINDOW_S) / WINDOW_S).floor() as i64
}

/// Key prefix of a stage's window rows (ordered by start).
pub fn window_prefix(stage: &str) -> String {
    format!("s\u{1f}{stage}\u{1f}")
}

/// Key of one window row.
pub fn window_key(stage: &str, start: i64) -> String {
    format!("s\u{1f}{stage}\u{1f}{start:020}")
}

/// The windowed metrics projection.
#[derive(Debug, Default, Clone, Copy)]
pub struct MetricsView;

fn counts_of<'m>(msg: &'m Message) -> Option<(&'m str, Counts)> {
    let ts = Some(msg.timestamp);
    match &msg.payload {
        Payload::WorkerMetrics(p) => Some((
            &p.stage_id,
            Counts {
                ts,
                input_records: p.input_records,
                output_records: p.output_records,
                processed_count: p.processed_count,
                processing_time: p.processing_time.0,
                stop: None,
            },
        )),
        Payload::WorkerStopped(p) => match (p.input_records, p.output_records) {
            (Some(i), Some(o)) => Some((
                &p.stage_id,
                Counts {
                    ts,
                    input_records: i,
                    output_records: o,
                    processed_count: p.processed_count,
                    processing_time: p.processing_time.map_or(0.0, |t| t.0),
                    stop: None,
                },
            )),
            _ => None,
        },
        _ => None,
    }
}

impl Projection for MetricsView {
    const NAME: &'static str = "metrics";
    const INTEREST: crate::Interest = crate::Interest::kinds(&[
        crate::Kind::StageMetrics,
        crate::Kind::Backpressure,
        crate::Kind::WorkerMetrics,
        crate::Kind::WorkerStopped,
    ]);
    type Row = MetricsRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        let Some(msg) = input.applied() else { return };
        let win = window_of(msg.timestamp);
        match &msg.payload {
            Payload::StageMetrics(_) | Payload::Backpressure(_) => {
                let w = dec20(win as u64);
                keys.push_parts(&["s\u{1f}", &msg.source_id, "\u{1f}", w.as_str()]);
            }
            _ => {
                if let Some((stage, _)) = counts_of(msg) {
                    let w = dec20(win as u64);
                    keys.push_parts(&["s\u{1f}", stage, "\u{1f}", w.as_str()]);
                    keys.push_parts(&["w\u{1f}", &msg.source_id]);
                }
            }
        }
    }

    fn apply(&self, input: &Input, rows: &mut [&mut MetricsRow]) {
        let Some(msg) = input.applied() else { return };
        let ts = msg.timestamp;
        let win = &mut rows[0];
        if win.stage_id.is_empty() {
            win.stage_id = msg.stage_id().unwrap_or_default().to_owned();
            win.start = window_of(ts);
        }
        let newer = |cur: Option<f64>| cur.is_none_or(|c| ts >= c);
        match &msg.payload {
            Payload::StageMetrics(p) => {
                if newer(win.reported_throughput.map(|r| r.0)) {
                    win.reported_throughput = Some((
                        ts,
                        p.input_throughput.map(|v| v.0),
                        p.output_throughput.map(|v| v.0),
                    ));
                }
                if let Some(lag) = p.queue_lag {
                    if newer(win.queue_lag.map(|q| q.0)) {
                        win.queue_lag = Some((ts, lag));
                    }
                }
                if let Some(active) = p.backpressure_active {
                    if newer(win.backpressure.map(|b| b.0)) {
                        win.backpressure = Some((ts, active));
                    }
                }
            }
            Payload::Backpressure(p) => {
                if let Some(lag) = p.queue_lag {
                    if newer(win.queue_lag.map(|q| q.0)) {
                        win.queue_lag = Some((ts, lag));
                    }
                }
                if newer(win.backpressure.map(|b| b.0)) {
                    win.backpressure = Some((ts, p.active));
                }
            }
            _ => {
                let Some((_, report)) = counts_of(msg) else {
                    return;
                };
                let [win, worker] = rows else { return };
                let last = worker.last.unwrap_or_default();
                if last.ts.is_some_and(|t| ts <= t) {
                    return;
                }
                let din = report.input_records.saturating_sub(last.input_records);
                let dout = report.output_records.saturating_sub(last.output_records);
                worker.last = Some(report);
                win.input_delta = win.input_delta.saturating_add(din);
                win.output_delta = win.output_delta.saturating_add(dout);
                match win.per_worker.get_mut(msg.source_id.as_ref()) {
                    Some(e) => {
                        e.0 = e.0.saturating_add(din);
                        e.1 = e.1.saturating_add(dout);
                    }
                    None => {
                        win.per_worker
                            .insert(msg.source_id.to_string(), (din, dout));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{last_closed_window, window_key, window_of, MetricsPoint, MetricsView};
    use crate::testkit::*;

    fn window(g: &Given, stage: &str, start: i64) -> super::MetricsRow {
        g.row::<MetricsView>(&window_key(stage, start))
    }

    #[test]
    fn windows_are_whole_event_seconds() {
        assert_eq!(window_of(10.0), 10);
        assert_eq!(window_of(10.999), 10);
        assert_eq!(window_of(11.0), 11);
        assert_eq!(window_of(-5.0), 0);
    }

    #[test]
    fn a_window_closes_once_newest_event_time_is_three_seconds_past_its_end() {
        // Window [10, 11) closes at 14.
        assert_eq!(last_closed_window(14.0), 10);
        assert_eq!(last_closed_window(13.999), 9);
        assert_eq!(last_closed_window(14.5), 10);
        assert_eq!(last_closed_window(15.0), 11);
    }

    #[test]
    fn deltas_of_cumulative_counts_go_to_the_window_of_the_newer_report() {
        let g = given(&[
            worker_metrics("w1", "s1", 10.2, 1, 100, 80),
            worker_metrics("w1", "s1", 11.5, 2, 250, 200),
            worker_metrics("w1", "s1", 11.9, 3, 300, 240),
        ]);
        let w10 = window(&g, "s1", 10);
        assert_eq!((w10.stage_id.as_str(), w10.start), ("s1", 10));
        assert_eq!((w10.input_delta, w10.output_delta), (100, 80));
        let w11 = window(&g, "s1", 11);
        assert_eq!((w11.input_delta, w11.output_delta), (200, 160));
        assert_eq!(w11.per_worker["w1"], (200, 160));
        assert_eq!(
            w11.point(),
            MetricsPoint {
                start_time: 11.0,
                end_time: 12.0,
                input_throughput: 200.0,
                output_throughput: 160.0,
                queue_lag: None,
                backpressure_active: None,
                skew_ratio: Some(1.0),
                workers_reporting: 1,
            }
        );
    }

    #[test]
    fn an_older_report_adds_nothing() {
        let g = given(&[
            worker_metrics("w1", "s1", 10.2, 1, 100, 100),
            worker_metrics("w1", "s1", 12.5, 3, 300, 300),
        ]);
        let g = g.then(&[worker_metrics("w1", "s1", 11.5, 2, 200, 200)]);
        // Its window row is written (the engine stores every row a record
        // touches) but holds nothing.
        let w11 = window(&g, "s1", 11);
        assert_eq!((w11.stage_id.as_str(), w11.start), ("s1", 11));
        assert_eq!((w11.input_delta, w11.output_delta), (0, 0));
        assert!(w11.per_worker.is_empty());
        assert_eq!(w11.point().input_throughput, 0.0);
        assert_eq!(window(&g, "s1", 12).input_delta, 200);
        // Equal event time adds nothing either.
        let g = g.then(&[worker_metrics("w1", "s1", 12.5, 4, 350, 350)]);
        assert_eq!(window(&g, "s1", 12).input_delta, 200);
        // The next newer report counts from the newest one counted.
        let g = g.then(&[worker_metrics("w1", "s1", 13.1, 5, 310, 310)]);
        assert_eq!(window(&g, "s1", 13).input_delta, 10);
    }

    #[test]
    fn a_stop_with_final_counts_adds_its_increase_and_one_without_adds_nothing() {
        let g = given(&[
            worker_metrics("w1", "s1", 10.2, 1, 100, 100),
            worker_metrics("w2", "s1", 10.2, 1, 100, 100),
            worker_stopped_counts("w1", "s1", 11.5, 2, 130, 120),
            worker_stopped("w2", "s1", 11.5, 2, 500),
        ]);
        let w11 = window(&g, "s1", 11);
        assert_eq!((w11.input_delta, w11.output_delta), (30, 20));
        assert_eq!(w11.per_worker.len(), 1);
    }

    #[test]
    fn skew_is_the_busiest_worker_over_the_mean() {
        let g = given(&[
            worker_metrics("w1", "s1", 10.1, 1, 300, 0),
            worker_metrics("w2", "s1", 10.2, 1, 100, 0),
            worker_metrics("w3", "s1", 10.3, 1, 200, 0),
        ]);
        let p = window(&g, "s1", 10).point();
        assert_eq!(p.skew_ratio, Some(1.5));
        assert_eq!(p.workers_reporting, 3);
        assert_eq!(p.input_throughput, 600.0);
        // Sources read nothing: skew on output.
        let g = given(&[
            worker_metrics("w1", "src", 10.1, 1, 0, 30),
            worker_metrics("w2", "src", 10.2, 1, 0, 10),
        ]);
        assert_eq!(window(&g, "src", 10).point().skew_ratio, Some(1.5));
        // No records at all: no skew.
        let g = given(&[worker_metrics("w1", "s1", 10.1, 1, 0, 0)]);
        assert_eq!(window(&g, "s1", 10).point().skew_ratio, None);
    }

    #[test]
    fn queue_lag_and_backpressure_are_the_latest_by_event_time_in_the_window() {
        let g = given(&[
            stage_metrics("s1", 10.5, 1, 2)
                .with("queue_lag", json!(5))
                .with("backpressure_active", json!(false)),
            backpressure("s1", 10.2, 2, true, 9),
            stage_metrics("s1", 10.7, 3, 2),
        ]);
        let p = window(&g, "s1", 10).point();
        assert_eq!(p.queue_lag, Some(5));
        assert_eq!(p.backpressure_active, Some(false));
        let g = g.then(&[backpressure("s1", 10.9, 4, true, 1)]);
        let p = window(&g, "s1", 10).point();
        assert_eq!((p.queue_lag, p.backpressure_active), (Some(1), Some(true)));
    }

    #[test]
    fn without_worker_reports_the_stages_own_throughput_is_shown() {
        let g = given(&[
            stage_metrics("s1", 10.5, 1, 2)
                .with("input_throughput", json!(40.0))
                .with("output_throughput", json!(30.0)),
            stage_metrics("s1", 10.1, 2, 2).with("input_throughput", json!(99.0)),
        ]);
        let p = window(&g, "s1", 10).point();
        assert_eq!((p.input_throughput, p.output_throughput), (40.0, 30.0));
        assert_eq!(p.workers_reporting, 0);
        assert_eq!(p.skew_ratio, None);
    }
}
