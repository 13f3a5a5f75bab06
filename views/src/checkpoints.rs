//! Checkpoints: one entry per `checkpoint_id`, moving triggered → completed
//! or failed (a late `triggered` never reverts a finished one), and a summary
//! row with the count in each state and the latest completed id.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{CheckpointStatus, Payload};
use crate::projection::{Input, Keys, Projection};

/// Key of the summary row (sorts after every checkpoint key).
pub const SUMMARY_KEY: &str = "~summary";

/// One checkpoint, or the summary (key `SUMMARY_KEY`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckpointRow {
    pub checkpoint_id: u64,
    /// IN_PROGRESS, COMPLETED or FAILED.
    pub status: String,
    pub source_id: String,
    pub trigger_time: Option<f64>,
    pub completion_time: Option<f64>,
    pub duration_ms: Option<f64>,
    pub state_size_bytes: Option<u64>,
    pub source_offsets: BTreeMap<String, serde_json::Value>,
    pub failure_reason: Option<String>,
    // Summary fields.
    pub count: u64,
    pub completed: u64,
    pub failed: u64,
    pub in_progress: u64,
    pub latest_completed_id: Option<u64>,
}

/// A checkpoint's key: its id, zero-padded so keys sort by id.
pub fn checkpoint_key(id: u64) -> String {
    format!("{id:020}")
}

/// The checkpoint projection.
#[derive(Debug, Default, Clone, Copy)]
pub struct CheckpointView;

fn status_name(s: CheckpointStatus) -> &'static str {
    match s {
        CheckpointStatus::Triggered => "IN_PROGRESS",
        CheckpointStatus::Completed => "COMPLETED",
        CheckpointStatus::Failed => "FAILED",
    }
}

impl Projection for CheckpointView {
    const NAME: &'static str = "checkpoint";
    type Row = CheckpointRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        if let Some(msg) = input.applied() {
            if let Payload::Checkpoint(p) = &msg.payload {
                keys.push(&checkpoint_key(p.checkpoint_id));
                keys.push(SUMMARY_KEY);
            }
        }
    }

    fn apply(&self, input: &Input, rows: &mut [CheckpointRow]) {
        let Some(msg) = input.applied() else { return };
        let Payload::Checkpoint(p) = &msg.payload else {
            return;
        };
        let [cp, summary] = rows else { return };
        let before = cp.status.clone();
        let new = status_name(p.status);
        // Finished states are final; IN_PROGRESS only fills an empty entry.
        let take = match before.as_str() {
            "" => true,
            "IN_PROGRESS" => new != "IN_PROGRESS",
            _ => false,
        };
        cp.checkpoint_id = p.checkpoint_id;
        cp.trigger_time.get_or_insert(p.trigger_time.0);
        if cp.source_id.is_empty() {
            cp.source_id = msg.source_id.to_string();
        }
        if let Some(s) = p.state_size_bytes {
            cp.state_size_bytes = Some(s);
        }
        if let Some(o) = &p.source_offsets {
            cp.source_offsets = o.clone();
        }
        if !take {
            return;
        }
        cp.status = new.to_owned();
        if new != "IN_PROGRESS" {
            cp.completion_time = Some(msg.timestamp);
            cp.duration_ms = p.duration_ms.map(|d| d.0).or(cp.duration_ms);
            cp.failure_reason = p.failure_reason.clone();
        }
        match before.as_str() {
            "" => summary.count += 1,
            "IN_PROGRESS" => summary.in_progress -= 1,
            _ => {}
        }
        match new {
            "IN_PROGRESS" => summary.in_progress += 1,
            "COMPLETED" => {
                summary.completed += 1;
                if summary
                    .latest_completed_id
                    .is_none_or(|l| p.checkpoint_id > l)
                {
                    summary.latest_completed_id = Some(p.checkpoint_id);
                }
            }
            _ => summary.failed += 1,
        }
    }
}
