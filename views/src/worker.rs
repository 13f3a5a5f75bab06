//! One worker: is it running, healthy, how much has it processed, and what
//! happened to it (its lifecycle history). Counts never regress (see
//! `counts`), a stopped worker stays stopped, and health is judged in event
//! time against the newest timestamp seen in the job, never the wall clock.

use serde::{Deserialize, Serialize};

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
    pub events: Vec<WorkerEvent>,
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

    fn touch(&mut self, msg: &Message, stage_id: &str) {
        if self.worker_id.is_empty() {
            self.worker_id = msg.source_id.to_string();
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

    fn record(&mut self, msg: &Message, seq: u64, detail: String) {
        let ev = WorkerEvent {
            timestamp: msg.timestamp,
            event: msg.kind.as_str().to_owned(),
            detail,
            offset: seq,
        };
        // Keep the history in event-time order (arrival order breaks ties).
        let at = self.events.partition_point(|e| e.timestamp <= ev.timestamp);
        self.events.insert(at, ev);
    }
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
    type Row = WorkerRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        if let Some((worker, _)) = input.applied().and_then(worker_of) {
            keys.push(worker);
        }
    }

    fn apply(&self, input: &Input, rows: &mut [WorkerRow]) {
        let Some(msg) = input.applied() else { return };
        let Some((_, stage)) = worker_of(msg) else {
            return;
        };
        let row = &mut rows[0];
        row.touch(msg, stage);
        let ts = msg.timestamp;
        match &msg.payload {
            Payload::WorkerStarted(p) => {
                row.start_time = Some(row.start_time.map_or(ts, |s| s.min(ts)));
                if row.counts.ts.is_none() {
                    row.assigned_partitions = p.assigned_partitions.clone();
                }
                row.record(
                    msg,
                    input.seq,
                    format!("partitions {:?}", p.assigned_partitions),
                );
            }
            Payload::WorkerStopped(p) => {
                row.status = STOPPED.to_owned();
                row.end_time = Some(row.end_time.map_or(ts, |e| e.max(ts)));
                row.error_count = p.error_count;
                row.stop_reason = Some(p.reason.clone());
                row.counts.offer_stop(ts, p);
                row.record(
                    msg,
                    input.seq,
                    format!(
                        "reason {}, processed {}, errors {}",
                        p.reason, p.processed_count, p.error_count
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
                }) {
                    row.assigned_partitions = p.assigned_partitions.clone();
                    row.cpu_percent = p.cpu_percent.map(|v| v.0).or(row.cpu_percent);
                    row.memory_bytes = p.memory_bytes.or(row.memory_bytes);
                    row.gpu_percent = p.gpu_percent.map(|v| v.0).or(row.gpu_percent);
                }
                if row.start_time.is_none() {
                    // No worker_started yet: the first report marks the start.
                    row.start_time = Some(ts);
                }
            }
            Payload::Exception(p) => {
                row.exception_count += 1;
                row.record(
                    msg,
                    input.seq,
                    format!("{}: {}", p.exception_type, p.message),
                );
            }
            _ => {}
        }
    }
}
