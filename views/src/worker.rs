//! One worker: is it running, healthy, how much has it processed, and what
//! happened to it (its lifecycle history). Counts never regress (see
//! `counts`), a stopped worker stays stopped, and health is judged in event
//! time against the newest timestamp seen in the job, never the wall clock.
//!
//! Each entry of a worker's history is a row of its own, a child of the
//! worker's row keyed by event time then log sequence ([`event_key`]): a
//! worker in an exception storm has thousands of entries, and a row holding
//! them all was rewritten whole in every batch.

use serde::{Deserialize, Serialize};

use crate::child_rows;
use crate::counts::Counts;
use crate::event::{Message, Payload};
use crate::projection::{Input, Keys, Projection};

/// A running worker silent this long (event seconds) is STALE.
pub const STALE_AFTER_S: f64 = 10.0;
/// A running worker silent this long is LOST.
pub const LOST_AFTER_S: f64 = 60.0;

/// One entry of a worker's lifecycle history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerEvent {
    pub timestamp: f64,
    pub event: String,
    pub detail: String,
    pub offset: u64,
}

/// The worker row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerRow {
    pub worker_id: String,
    pub stage_id: String,
    /// RUNNING or STOPPED.
    pub status: String,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    /// Event time of the newest message from this worker.
    pub last_seen: Option<f64>,
    pub counts: Counts,
    pub error_count: u64,
    pub stop_reason: Option<String>,
    pub assigned_partitions: Vec<i64>,
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub gpu_percent: Option<f64>,
    pub exception_count: u64,
    /// History entries kept inside the worker row, as rows stored before
    /// entries had rows of their own hold them. Empty in new rows.
    pub events: Vec<WorkerEvent>,
    /// Set only in a history entry's row ([`event_key`]): that entry.
    pub event: Option<WorkerEvent>,
}

/// `ts` as 16 hex digits that sort as the number does (-0.0 as 0.0).
fn sortable(ts: f64) -> crate::projection::Digits<16> {
    let bits = if ts == 0.0 { 0 } else { ts.to_bits() };
    let key = if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    };
    crate::projection::hex16(key)
}

/// Key of the history entry of `worker` at event time `ts` from the record
/// at log sequence `seq`: a child of the worker's row, so a prefix scan
/// ([`history_prefix`]) lists a worker's history in event-time order, ties
/// in log order.
pub fn event_key(worker: &str, ts: f64, seq: u64) -> String {
    let mut k = child_rows::child_prefix(worker);
    k.push_str(sortable(ts).as_str());
    k.push_str(crate::projection::hex16(seq).as_str());
    k
}

/// The common start of the keys of `worker`'s history entries.
pub fn history_prefix(worker: &str) -> String {
    child_rows::child_prefix(worker)
}

/// A worker's whole history in event-time order (log order for ties):
/// `inline` (entries stored inside an older row) merged with the entries
/// of their own rows, `rows`, given in key order.
pub fn merge_history(inline: &[WorkerEvent], rows: Vec<WorkerEvent>) -> Vec<WorkerEvent> {
    if inline.is_empty() {
        return rows;
    }
    let mut all: Vec<WorkerEvent> = inline.iter().cloned().chain(rows).collect();
    all.sort_by(|a, b| {
        sortable(a.timestamp)
            .cmp(&sortable(b.timestamp))
            .then(a.offset.cmp(&b.offset))
    });
    all
}

impl WorkerRow {
    /// HEALTHY, STALE or LOST for a running worker; STOPPED otherwise.
    pub fn health(&self, newest_event_time: Option<f64>) -> &'static str {
        if self.status == STOPPED {
            return STOPPED;
        }
        let silent = match (newest_event_time, self.last_seen) {
            (Some(n), Some(l)) => n - l,
            _ => 0.0,
        };
        if silent >= LOST_AFTER_S {
            "LOST"
        } else if silent >= STALE_AFTER_S {
            "STALE"
        } else {
            "HEALTHY"
        }
    }

    fn touch(&mut self, msg: &Message, worker_id: &str, stage_id: &str) {
        if self.worker_id.is_empty() {
            self.worker_id = worker_id.to_owned();
        }
        if self.stage_id.is_empty() {
            self.stage_id = stage_id.to_owned();
        }
        if self.status.is_empty() {
            self.status = RUNNING.to_owned();
        }
        let ts = msg.timestamp;
        self.last_seen = Some(self.last_seen.map_or(ts, |l| l.max(ts)));
    }
}

/// Puts a history entry into its own row (listed second by `keys`).
fn record(entry: Option<&mut WorkerRow>, msg: &Message, seq: u64, detail: String) {
    if let Some(row) = entry {
        row.event = Some(WorkerEvent {
            timestamp: msg.timestamp,
            event: msg.kind.as_str().to_owned(),
            detail,
            offset: seq,
        });
    }
}

/// True for the messages that add an entry to a worker's history.
fn has_entry(msg: &Message) -> bool {
    matches!(
        msg.payload,
        Payload::WorkerStarted(_) | Payload::WorkerStopped(_) | Payload::Exception(_)
    )
}

/// Worker status names.
pub const RUNNING: &str = "RUNNING";
/// A worker that sent `worker_stopped`.
pub const STOPPED: &str = "STOPPED";

/// The worker projection: one row per `source_id` of worker messages.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkerView;

/// The worker a message is about, with its stage.
pub fn worker_of<'m>(msg: &'m Message) -> Option<(&'m str, &'m str)> {
    match &msg.payload {
        Payload::WorkerStarted(p) => Some((&msg.source_id, &p.stage_id)),
        Payload::WorkerStopped(p) => Some((&msg.source_id, &p.stage_id)),
        Payload::WorkerMetrics(p) => Some((&msg.source_id, &p.stage_id)),
        Payload::Exception(p) => p.worker_id.as_deref().map(|w| (w, p.stage_id.as_ref())),
        _ => None,
    }
}

impl Projection for WorkerView {
    const NAME: &'static str = "worker";
    const INTEREST: crate::Interest = crate::Interest::kinds(&[
        crate::Kind::WorkerStarted,
        crate::Kind::WorkerStopped,
        crate::Kind::WorkerMetrics,
        crate::Kind::Exception,
    ]);
    type Row = WorkerRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        let Some(msg) = input.applied() else { return };
        if let Some((worker, _)) = worker_of(msg) {
            keys.push(&child_rows::parent_key(worker));
            if has_entry(msg) {
                keys.push_fresh(&event_key(worker, msg.timestamp, input.seq));
            }
        }
    }

    fn apply(&self, input: &Input, rows: &mut [&mut WorkerRow]) {
        let Some(msg) = input.applied() else { return };
        let Some((worker, stage)) = worker_of(msg) else {
            return;
        };
        let (row, rest) = rows.split_first_mut().expect("one key at least");
        let entry = rest.first_mut().map(|r| &mut **r);
        row.touch(msg, worker, stage);
        let ts = msg.timestamp;
        match &msg.payload {
            Payload::WorkerStarted(p) => {
                row.start_time = Some(row.start_time.map_or(ts, |s| s.min(ts)));
                if row.counts.ts.is_none() {
                    let parts = p.assigned_partitions.as_deref().unwrap_or_default();
                    row.assigned_partitions = parts.to_vec();
                }
                record(
                    entry,
                    msg,
                    input.seq,
                    format!(
                        "partitions {:?}",
                        p.assigned_partitions.as_deref().unwrap_or_default()
                    ),
                );
            }
            Payload::WorkerStopped(p) => {
                row.status = STOPPED.to_owned();
                row.end_time = Some(row.end_time.map_or(ts, |e| e.max(ts)));
                row.error_count = p.error_count;
                row.stop_reason.clone_from(&p.reason);
                row.counts.offer_stop(ts, p);
                record(
                    entry,
                    msg,
                    input.seq,
                    format!(
                        "reason {}, processed {}, errors {}",
                        p.reason.as_deref().unwrap_or_default(),
                        p.processed_count,
                        p.error_count
                    ),
                );
            }
            Payload::WorkerMetrics(p) => {
                if row.counts.offer(Counts {
                    ts: Some(ts),
                    input_records: p.input_records,
                    output_records: p.output_records,
                    processed_count: p.processed_count,
                    processing_time: p.processing_time.0,
                    stop: None,
                }) {
                    row.assigned_partitions.clear();
                    row.assigned_partitions
                        .extend_from_slice(&p.assigned_partitions);
                    row.cpu_percent = p.cpu_percent.map(|v| v.0).or(row.cpu_percent);
                    row.memory_bytes = p.memory_bytes.or(row.memory_bytes);
                    row.gpu_percent = p.gpu_percent.map(|v| v.0).or(row.gpu_percent);
                }
                // Without a worker_started (lost or late) the earliest report
                // marks the start, whatever order the reports arrive in.
                row.start_time = Some(row.start_time.map_or(ts, |s| s.min(ts)));
            }
            Payload::Exception(p) => {
                row.exception_count += 1;
                record(
                    entry,
                    msg,
                    input.seq,
                    format!("{}: {}", p.exception_type, p.message),
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{
        event_key, history_prefix, merge_history, WorkerEvent, WorkerRow, WorkerView, RUNNING,
        STOPPED,
    };
    use crate::child_rows::parent_key;
    use crate::testkit::*;

    /// The worker's row with its whole history in `events`, as the API
    /// shows it.
    fn worker(g: &Given, id: &str) -> WorkerRow {
        let mut w = g.row::<WorkerView>(&parent_key(id));
        let prefix = history_prefix(id);
        let rows = g
            .rows::<WorkerView>()
            .into_iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(_, r)| r.event)
            .collect();
        w.events = merge_history(&w.events, rows);
        w
    }

    #[test]
    fn a_worker_starts_running_with_its_partitions() {
        let g = given(&[worker_started("w1", "s1", 10.0, 1)]);
        let w = worker(&g, "w1");
        assert_eq!(w.worker_id, "w1");
        assert_eq!(w.stage_id, "s1");
        assert_eq!(w.status, RUNNING);
        assert_eq!(w.start_time, Some(10.0));
        assert_eq!(w.end_time, None);
        assert_eq!(w.last_seen, Some(10.0));
        assert_eq!(w.assigned_partitions, vec![0, 1]);
        assert_eq!(
            w.events,
            vec![WorkerEvent {
                timestamp: 10.0,
                event: "worker_started".into(),
                detail: "partitions [0, 1]".into(),
                offset: 1,
            }]
        );
    }

    #[test]
    fn counts_are_those_of_the_newest_report_and_a_late_older_one_changes_nothing() {
        let g = given(&[
            worker_started("w1", "s1", 10.0, 1),
            worker_metrics("w1", "s1", 12.0, 3, 300, 250),
            worker_metrics("w1", "s1", 11.0, 2, 200, 150),
        ]);
        let w = worker(&g, "w1");
        assert_eq!(w.counts.ts, Some(12.0));
        assert_eq!(
            (
                w.counts.input_records,
                w.counts.output_records,
                w.counts.processed_count
            ),
            (300, 250, 300)
        );
        assert_eq!(w.counts.processing_time, 3.0);
        assert_eq!(w.last_seen, Some(12.0));
    }

    #[test]
    fn resource_usage_comes_from_the_newest_report() {
        let g = given(&[
            worker_metrics("w1", "s1", 12.0, 2, 300, 250)
                .with("cpu_percent", serde_json::json!(55.5))
                .with("memory_bytes", serde_json::json!(1024)),
            worker_metrics("w1", "s1", 11.0, 1, 200, 150)
                .with("cpu_percent", serde_json::json!(99.0))
                .with("assigned_partitions", serde_json::json!([7])),
        ]);
        let w = worker(&g, "w1");
        assert_eq!(w.cpu_percent, Some(55.5));
        assert_eq!(w.memory_bytes, Some(1024));
        assert_eq!(w.gpu_percent, None);
        assert_eq!(w.assigned_partitions, vec![0, 1]);
    }

    #[test]
    fn a_stopped_worker_stays_stopped_but_a_newer_report_still_counts() {
        let g = given(&[
            worker_started("w1", "s1", 10.0, 1),
            worker_metrics("w1", "s1", 11.0, 2, 100, 100),
            worker_stopped("w1", "s1", 13.0, 4, 180),
            // Sent before the stop (event time), delivered after it.
            worker_metrics("w1", "s1", 12.0, 3, 180, 170),
        ]);
        let w = worker(&g, "w1");
        assert_eq!(w.status, STOPPED);
        assert_eq!(w.end_time, Some(13.0));
        assert_eq!(w.stop_reason.as_deref(), Some("scale_down"));
        assert_eq!(w.error_count, 1);
        assert_eq!(
            (
                w.counts.input_records,
                w.counts.output_records,
                w.counts.processed_count
            ),
            (180, 170, 180)
        );
        // A late report claiming is_running does not revive it.
        let g = g.then(&[worker_metrics("w1", "s1", 14.0, 5, 190, 190)]);
        let w = worker(&g, "w1");
        assert_eq!(w.status, STOPPED);
        assert_eq!(w.health(g.job().newest_event_time), STOPPED);
        assert_eq!(w.counts.input_records, 190);
        assert_eq!(w.last_seen, Some(14.0));
    }

    #[test]
    fn a_stop_with_counts_wins_when_newest_and_loses_to_a_newer_report() {
        let g = given(&[
            worker_metrics("w1", "s1", 11.0, 1, 100, 100),
            worker_stopped_counts("w1", "s1", 13.0, 3, 500, 400),
            worker_metrics("w1", "s1", 12.0, 2, 300, 300),
        ]);
        let w = worker(&g, "w1");
        assert_eq!(
            (w.counts.input_records, w.counts.output_records),
            (500, 400)
        );
        assert_eq!(w.counts.processed_count, 500);
        let g = g.then(&[worker_metrics("w1", "s1", 14.0, 4, 600, 450)]);
        let w = worker(&g, "w1");
        assert_eq!(
            (w.counts.input_records, w.counts.output_records),
            (600, 450)
        );
    }

    #[test]
    fn a_stop_without_counts_keeps_the_report_counts_and_sets_processed_count() {
        let g = given(&[
            worker_metrics("w1", "s1", 11.0, 1, 100, 90),
            worker_stopped("w1", "s1", 13.0, 3, 130),
            worker_metrics("w1", "s1", 12.0, 2, 120, 110),
        ]);
        let w = worker(&g, "w1");
        assert_eq!(
            (
                w.counts.input_records,
                w.counts.output_records,
                w.counts.processed_count
            ),
            (120, 110, 130)
        );
    }

    #[test]
    fn health_is_judged_against_the_newest_event_time() {
        let cases = [
            (109.9, "HEALTHY"),
            (110.0, "STALE"),
            (159.9, "STALE"),
            (160.0, "LOST"),
        ];
        for (now, want) in cases {
            let g = given(&[
                worker_started("w1", "s1", 100.0, 1),
                // Another source moves event time on.
                worker_metrics("w2", "s1", now, 1, 1, 1),
            ]);
            let w = worker(&g, "w1");
            assert_eq!(w.health(g.job().newest_event_time), want, "at {now}");
            assert_eq!(w.last_seen, Some(100.0));
            assert_eq!(
                worker(&g, "w2").health(g.job().newest_event_time),
                "HEALTHY"
            );
        }
        let g = given(&[
            worker_started("w1", "s1", 100.0, 1),
            worker_stopped("w1", "s1", 101.0, 2, 0),
            worker_metrics("w2", "s1", 500.0, 1, 1, 1),
        ]);
        assert_eq!(worker(&g, "w1").health(g.job().newest_event_time), STOPPED);
        // Without any event time, a running worker is healthy.
        assert_eq!(worker(&g, "w2").health(None), "HEALTHY");
    }

    #[test]
    fn a_late_message_of_the_worker_never_moves_last_seen_back() {
        let g = given(&[
            worker_metrics("w1", "s1", 120.0, 2, 2, 2),
            worker_metrics("w1", "s1", 100.0, 1, 1, 1),
        ]);
        assert_eq!(worker(&g, "w1").last_seen, Some(120.0));
    }

    #[test]
    fn an_exception_sent_by_the_stage_lands_on_the_named_worker() {
        let g = given(&[
            worker_started("w1", "s1", 10.0, 1),
            envelope(
                "exception",
                "s1",
                11.0,
                1,
                serde_json::json!({
                    "stage_id": "s1", "worker_id": "w9", "exception_type": "KeyError",
                    "message": "k", "stacktrace": "",
                }),
            ),
        ]);
        let w9 = worker(&g, "w9");
        assert_eq!(w9.worker_id, "w9");
        assert_eq!(w9.stage_id, "s1");
        assert_eq!(w9.exception_count, 1);
        assert_eq!(w9.events[0].event, "exception");
        assert_eq!(w9.events[0].detail, "KeyError: k");
        assert_eq!(worker(&g, "w1").exception_count, 0);
    }

    #[test]
    fn history_is_in_event_time_order_whatever_the_arrival_order() {
        let g = given(&[
            worker_stopped("w1", "s1", 20.0, 3, 5),
            exception("w1", "s1", 15.0, 2, "E", "boom"),
            worker_started("w1", "s1", 10.0, 1),
            // Metrics are not lifecycle.
            worker_metrics("w1", "s1", 12.0, 4, 5, 5),
        ]);
        let w = worker(&g, "w1");
        let got: Vec<(f64, &str, u64)> = w
            .events
            .iter()
            .map(|e| (e.timestamp, e.event.as_str(), e.offset))
            .collect();
        assert_eq!(
            got,
            vec![
                (10.0, "worker_started", 3),
                (15.0, "exception", 2),
                (20.0, "worker_stopped", 1),
            ]
        );
        assert_eq!(
            w.events[2].detail,
            "reason scale_down, processed 5, errors 1"
        );
        assert_eq!(w.status, STOPPED);
        assert_eq!(w.start_time, Some(10.0));
    }

    #[test]
    fn the_start_time_is_the_earliest_sign_of_the_worker() {
        let g = given(&[
            worker_metrics("w1", "s1", 12.0, 3, 5, 5),
            worker_metrics("w1", "s1", 11.0, 2, 4, 4),
        ]);
        assert_eq!(worker(&g, "w1").start_time, Some(11.0));
        let g = g.then(&[worker_started("w1", "s1", 10.0, 1)]);
        assert_eq!(worker(&g, "w1").start_time, Some(10.0));
    }

    #[test]
    fn dead_letters_and_duplicates_touch_no_worker() {
        let m = worker_metrics("w1", "s1", 11.0, 1, 4, 4);
        let g = given(std::slice::from_ref(&m));
        let before = worker(&g, "w1");
        let g = g.then(&[m, dead("bad json")]);
        assert_eq!(worker(&g, "w1"), before);
        assert!(!g.changed().iter().any(|(v, _)| *v == "worker"));
    }

    #[test]
    fn history_ties_keep_log_order_and_signs_sort_as_numbers() {
        let g = given(&[
            exception("w1", "s1", 5.0, 1, "E", "b"),
            exception("w1", "s1", 5.0, 2, "E", "c"),
            exception("w1", "s1", -0.0, 3, "E", "zero"),
            exception("w1", "s1", -2.5, 4, "E", "neg"),
            exception("w1", "s1", 0.0, 5, "E", "zero too"),
            exception("w1", "s1", 1e300, 6, "E", "big"),
        ]);
        let got: Vec<String> = worker(&g, "w1")
            .events
            .iter()
            .map(|e| e.detail.clone())
            .collect();
        assert_eq!(
            got,
            ["E: neg", "E: zero", "E: zero too", "E: b", "E: c", "E: big"]
        );
    }

    #[test]
    fn a_storm_leaves_the_worker_row_small() {
        let events: Vec<Ev> = (0..2000u64)
            .map(|i| exception("w1", "s1", i as f64, i + 1, "E", "boom"))
            .collect();
        let g = given(&events);
        let row = g.row::<WorkerView>("w1");
        assert_eq!(row.exception_count, 2000);
        let bytes = crate::projection::encode_row(&row).unwrap().len();
        assert!(bytes < 200, "worker row of {bytes} bytes");
        assert_eq!(worker(&g, "w1").events.len(), 2000);
        // One more entry changes the worker's row and adds one entry row.
        let g = g.then(&[exception("w1", "s1", 9999.0, 2001, "E", "late")]);
        let changed = g.changed_in::<WorkerView>();
        assert_eq!(changed, [event_key("w1", 9999.0, 2001).as_str(), "w1"]);
    }

    #[test]
    fn entries_stored_inside_an_older_row_merge_in_order_and_entry_rows_are_never_loaded() {
        use crate::projection::encode_row;
        use crate::projector::{Entry, Projector};
        let at = |ts: f64, offset: u64, what: &str| WorkerEvent {
            timestamp: ts,
            event: "exception".into(),
            detail: what.into(),
            offset,
        };
        let old = WorkerRow {
            worker_id: "w1".into(),
            stage_id: "s1".into(),
            status: RUNNING.into(),
            events: vec![at(1.0, 1, "a"), at(3.0, 2, "c")],
            ..WorkerRow::default()
        };
        let mut p = Projector::new(false);
        p.load("worker", "w1", Some(&encode_row(&old).unwrap()))
            .unwrap();
        let later = exception("w1", "s1", 2.0, 1, "E", "b");
        let Ev::Msg(v) = &later else { unreachable!() };
        let text = v.to_string();
        let m: crate::Message = serde_json::from_str(&text).unwrap();
        let mut wanted = Vec::new();
        p.misses(7, Entry::Valid(&m), &mut wanted);
        // The worker's row is cached, its new entry's row is known new.
        assert!(
            !wanted.iter().any(|(view, _)| *view == "worker"),
            "{wanted:?}"
        );
        let rows = over_stored("worker", &[("w1", encode_row(&old).unwrap())], 7, &[later]);
        let decode = |b: &Vec<u8>| -> WorkerRow { crate::projection::decode_row(b).unwrap() };
        let row = decode(&rows["w1"]);
        let own: Vec<WorkerEvent> = rows
            .iter()
            .filter(|(k, _)| k.starts_with(&history_prefix("w1")))
            .filter_map(|(_, b)| decode(b).event)
            .collect();
        let merged = merge_history(&row.events, own);
        let got: Vec<&str> = merged.iter().map(|e| e.detail.as_str()).collect();
        assert_eq!(got, ["a", "E: b", "c"]);
    }
}
