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
    const INTEREST: crate::Interest = crate::Interest::kinds(&[crate::Kind::Checkpoint]);
    type Row = CheckpointRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        if let Some(msg) = input.applied() {
            if let Payload::Checkpoint(p) = &msg.payload {
                keys.push(&checkpoint_key(p.checkpoint_id));
                keys.push(SUMMARY_KEY);
            }
        }
    }

    fn apply(&self, input: &Input, rows: &mut [&mut CheckpointRow]) {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{checkpoint_key, CheckpointView};
    use crate::testkit::*;

    fn cp(g: &Given, id: u64) -> super::CheckpointRow {
        g.row::<CheckpointView>(&checkpoint_key(id))
    }

    fn summary(g: &Given) -> (u64, u64, u64, u64, Option<u64>) {
        let s = g.checkpoints();
        (
            s.count,
            s.completed,
            s.failed,
            s.in_progress,
            s.latest_completed_id,
        )
    }

    #[test]
    fn triggered_then_completed() {
        let g = given(&[checkpoint(1, "triggered", 10.0, 1)]);
        let c = cp(&g, 1);
        assert_eq!(c.checkpoint_id, 1);
        assert_eq!(c.status, "IN_PROGRESS");
        assert_eq!(c.source_id, JOB);
        assert_eq!(c.trigger_time, Some(10.0));
        assert_eq!(c.completion_time, None);
        assert_eq!(summary(&g), (1, 0, 0, 1, None));
        let g = g.then(&[checkpoint(1, "completed", 12.0, 2)
            .with("trigger_time", json!(10.0))
            .with("duration_ms", json!(2000.0))
            .with("state_size_bytes", json!(4096))
            .with("source_offsets", json!({"0": 42}))]);
        let c = cp(&g, 1);
        assert_eq!(c.status, "COMPLETED");
        assert_eq!(c.trigger_time, Some(10.0));
        assert_eq!(c.completion_time, Some(12.0));
        assert_eq!(c.duration_ms, Some(2000.0));
        assert_eq!(c.state_size_bytes, Some(4096));
        assert_eq!(c.source_offsets["0"], json!(42));
        assert_eq!(summary(&g), (1, 1, 0, 0, Some(1)));
    }

    #[test]
    fn triggered_then_failed_with_its_reason() {
        let g = given(&[
            checkpoint(1, "triggered", 10.0, 1),
            checkpoint(1, "failed", 11.0, 2).with("failure_reason", json!("timeout")),
        ]);
        let c = cp(&g, 1);
        assert_eq!(c.status, "FAILED");
        assert_eq!(c.failure_reason.as_deref(), Some("timeout"));
        assert_eq!(c.completion_time, Some(11.0));
        assert_eq!(summary(&g), (1, 0, 1, 0, None));
    }

    #[test]
    fn a_late_triggered_never_reverts_a_finished_checkpoint() {
        let g = given(&[
            checkpoint(1, "completed", 12.0, 2),
            checkpoint(1, "triggered", 10.0, 1),
            checkpoint(2, "failed", 22.0, 4),
            checkpoint(2, "triggered", 20.0, 3),
        ]);
        assert_eq!(cp(&g, 1).status, "COMPLETED");
        assert_eq!(cp(&g, 2).status, "FAILED");
        assert_eq!(summary(&g), (2, 1, 1, 0, Some(1)));
    }

    #[test]
    fn a_finished_status_is_final() {
        let g = given(&[
            checkpoint(1, "triggered", 10.0, 1),
            checkpoint(1, "completed", 12.0, 2),
            checkpoint(1, "failed", 13.0, 3),
        ]);
        assert_eq!(cp(&g, 1).status, "COMPLETED");
        assert_eq!(cp(&g, 1).completion_time, Some(12.0));
        assert_eq!(summary(&g), (1, 1, 0, 0, Some(1)));
    }

    #[test]
    fn a_repeated_trigger_is_one_checkpoint() {
        let g = given(&[
            checkpoint(1, "triggered", 10.0, 1),
            checkpoint(1, "triggered", 10.5, 2),
        ]);
        assert_eq!(summary(&g), (1, 0, 0, 1, None));
    }

    #[test]
    fn counts_stay_exact_over_many_checkpoints_and_the_latest_completed_is_the_highest_id() {
        let g = given(&[
            checkpoint(1, "triggered", 10.0, 1),
            checkpoint(2, "triggered", 20.0, 2),
            checkpoint(3, "triggered", 30.0, 3),
            checkpoint(4, "triggered", 40.0, 4),
            checkpoint(3, "completed", 31.0, 5),
            checkpoint(1, "completed", 11.0, 6),
            checkpoint(2, "failed", 21.0, 7),
            // A retry: a duplicate, not a second completion.
            checkpoint(1, "completed", 11.0, 6),
        ]);
        assert_eq!(summary(&g), (4, 2, 1, 1, Some(3)));
        let keys: Vec<String> = g
            .rows::<CheckpointView>()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            [
                checkpoint_key(1),
                checkpoint_key(2),
                checkpoint_key(3),
                checkpoint_key(4),
                super::SUMMARY_KEY.to_owned(),
            ]
        );
    }
}
