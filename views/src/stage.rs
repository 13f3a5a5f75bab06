//! One stage: its status, parallelism, how many workers run it now and ever
//! did, and how many records it moved: the sum over every worker that ever
//! belonged to it of that worker's latest cumulative counts (stopped ones
//! included), so a `stage_metrics` without counts or a late report never
//! zeroes or regresses it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::counts::Counts;
use crate::event::{Message, Payload};
use crate::projection::{Input, Keys, Projection};

/// Declared, no sign of life yet.
pub const PENDING: &str = "PENDING";
/// Started, or one of its workers did.
pub const RUNNING: &str = "RUNNING";
/// `stage_completed` arrived.
pub const COMPLETED: &str = "COMPLETED";

/// One worker's share of the stage totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Contribution {
    pub counts: Counts,
    pub stopped: bool,
}

/// The latest `stage_metrics` report of the stage itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reported {
    pub ts: f64,
    pub worker_count: u64,
    pub input_records: Option<u64>,
    pub output_records: Option<u64>,
    pub input_throughput: Option<f64>,
    pub output_throughput: Option<f64>,
    pub partition_metrics: BTreeMap<String, serde_json::Value>,
}

/// The stage row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StageRow {
    pub stage_id: String,
    pub operator_type: Option<String>,
    /// PENDING, RUNNING or COMPLETED (the job's end status is applied at read).
    pub status: String,
    pub declared: bool,
    pub min_parallelism: Option<u64>,
    pub max_parallelism: Option<u64>,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    /// Every worker that ever belonged to the stage.
    pub workers: BTreeMap<String, Contribution>,
    pub input_records: u64,
    pub output_records: u64,
    pub processed_count: u64,
    pub running_workers: u64,
    pub reported: Option<Reported>,
    /// Latest (event time) queue lag and backpressure flag from
    /// `stage_metrics` or `backpressure`.
    pub pressure_ts: Option<f64>,
    pub queue_lag: Option<u64>,
    pub backpressure_active: Option<bool>,
    pub slow_down_factor: Option<f64>,
    pub exception_count: u64,
}

impl StageRow {
    fn init(&mut self, stage_id: &str) {
        if self.stage_id.is_empty() {
            self.stage_id = stage_id.to_owned();
            self.status = PENDING.to_owned();
        }
    }

    fn mark_running(&mut self, ts: f64) {
        if self.status != COMPLETED {
            self.status = RUNNING.to_owned();
        }
        self.start_time = Some(self.start_time.map_or(ts, |s| s.min(ts)));
    }

    fn pressure(&mut self, ts: f64, lag: Option<u64>, active: Option<bool>, factor: Option<f64>) {
        if self.pressure_ts.is_some_and(|t| ts < t) {
            return;
        }
        self.pressure_ts = Some(ts);
        self.queue_lag = lag.or(self.queue_lag);
        self.backpressure_active = active.or(self.backpressure_active);
        self.slow_down_factor = factor.or(self.slow_down_factor);
    }

    /// Updates one worker's contribution, keeping the sums exact.
    fn contribute(&mut self, worker: &str, f: impl FnOnce(&mut Contribution)) {
        let (c, was_running) = match self.workers.get_mut(worker) {
            Some(c) => {
                let running = !c.stopped;
                (c, running)
            }
            None => (self.workers.entry(worker.to_owned()).or_default(), false),
        };
        let before = *c;
        f(c);
        let after = *c;
        self.input_records =
            self.input_records - before.counts.input_records + after.counts.input_records;
        self.output_records =
            self.output_records - before.counts.output_records + after.counts.output_records;
        self.processed_count =
            self.processed_count - before.counts.processed_count + after.counts.processed_count;
        self.running_workers =
            self.running_workers - u64::from(was_running) + u64::from(!after.stopped);
    }

    /// Workers of the stage currently running (a stage that only reports
    /// `stage_metrics` gives its own count).
    pub fn worker_count(&self) -> u64 {
        match (&self.reported, self.workers.is_empty()) {
            (Some(r), true) => r.worker_count,
            _ => self.running_workers,
        }
    }

    /// Input records: the workers' sum, or the stage's own report without workers.
    pub fn input_total(&self) -> u64 {
        match (&self.reported, self.workers.is_empty()) {
            (Some(r), true) => r.input_records.unwrap_or(0),
            _ => self.input_records,
        }
    }

    /// Output records, as `input_total`.
    pub fn output_total(&self) -> u64 {
        match (&self.reported, self.workers.is_empty()) {
            (Some(r), true) => r.output_records.unwrap_or(0),
            _ => self.output_records,
        }
    }

    /// Status once the job's own status is known: a job that ended settles
    /// every stage not yet COMPLETED to its final status.
    pub fn effective_status(&self, job_status: &str) -> String {
        if self.status != COMPLETED && (job_status == "COMPLETED" || job_status == "FAILED") {
            job_status.to_owned()
        } else {
            self.status.clone()
        }
    }
}

/// The stage projection.
#[derive(Debug, Default, Clone, Copy)]
pub struct StageView;

/// Stage ids a message touches, distinct, in message order.
fn stages_of<'m>(msg: &'m Message, out: &mut Vec<&'m str>) {
    match &msg.payload {
        Payload::JobStarted(p) => {
            for s in &p.stages {
                if !out.contains(&s.stage_id.as_str()) {
                    out.push(&s.stage_id);
                }
            }
        }
        Payload::SplitProcessed(_) => {}
        _ => out.extend(msg.stage_id()),
    }
}

impl Projection for StageView {
    const NAME: &'static str = "stage";
    type Row = StageRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        let Some(msg) = input.applied() else { return };
        let mut ids = Vec::new();
        stages_of(msg, &mut ids);
        for id in ids {
            keys.push(id);
        }
    }

    fn apply(&self, input: &Input, rows: &mut [StageRow]) {
        let Some(msg) = input.applied() else { return };
        let ts = msg.timestamp;
        if let Payload::JobStarted(p) = &msg.payload {
            let mut ids = Vec::new();
            stages_of(msg, &mut ids);
            for (row, id) in rows.iter_mut().zip(ids) {
                row.init(id);
                let Some(decl) = p.stages.iter().find(|d| d.stage_id == id) else {
                    continue;
                };
                row.declared = true;
                row.operator_type
                    .get_or_insert_with(|| decl.operator_type.clone());
                row.min_parallelism.get_or_insert(decl.min_parallelism);
                row.max_parallelism.get_or_insert(decl.max_parallelism);
            }
            return;
        }
        let row = &mut rows[0];
        row.init(msg.stage_id().unwrap_or_default());
        match &msg.payload {
            Payload::StageStarted(p) => {
                row.mark_running(ts);
                row.operator_type = Some(p.operator_type.clone());
                row.min_parallelism = Some(p.min_parallelism);
                row.max_parallelism = Some(p.max_parallelism);
            }
            Payload::StageCompleted => {
                row.status = COMPLETED.to_owned();
                row.end_time = Some(row.end_time.map_or(ts, |e| e.max(ts)));
            }
            Payload::StageMetrics(p) => {
                if row.reported.as_ref().is_none_or(|r| ts >= r.ts) {
                    let old = row.reported.take().unwrap_or_default();
                    row.reported = Some(Reported {
                        ts,
                        worker_count: p.worker_count,
                        input_records: p.input_records.or(old.input_records),
                        output_records: p.output_records.or(old.output_records),
                        input_throughput: p.input_throughput.map(|v| v.0),
                        output_throughput: p.output_throughput.map(|v| v.0),
                        partition_metrics: p
                            .partition_metrics
                            .clone()
                            .unwrap_or(old.partition_metrics),
                    });
                }
                row.pressure(ts, p.queue_lag, p.backpressure_active, None);
            }
            Payload::Backpressure(p) => {
                row.pressure(
                    ts,
                    Some(p.queue_lag),
                    Some(p.active),
                    Some(p.slow_down_factor.0),
                );
            }
            Payload::WorkerStarted(_) => {
                row.mark_running(ts);
                row.contribute(&msg.source_id, |_| {});
            }
            Payload::WorkerMetrics(p) => {
                row.mark_running(ts);
                let report = Counts {
                    ts: Some(ts),
                    input_records: p.input_records,
                    output_records: p.output_records,
                    processed_count: p.processed_count,
                    processing_time: p.processing_time.0,
                };
                row.contribute(&msg.source_id, |c| {
                    c.counts.offer(report);
                });
            }
            Payload::WorkerStopped(p) => {
                row.mark_running(ts);
                row.contribute(&msg.source_id, |c| {
                    c.stopped = true;
                    c.counts.offer_stop(ts, p);
                });
            }
            Payload::Exception(_) => row.exception_count += 1,
            _ => {}
        }
    }
}
