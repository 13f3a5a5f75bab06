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
}

impl Counts {
    /// Takes `report` if it is at least as new as the current one; returns
    /// whether it was taken.
    pub fn offer(&mut self, report: Counts) -> bool {
        match (self.ts, report.ts) {
            (Some(cur), Some(new)) if new < cur => false,
            _ => {
                *self = report;
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
                });
            }
            _ => {
                if self.ts.is_none_or(|cur| ts >= cur) {
                    self.processed_count = p.processed_count;
                }
            }
        }
    }
}
