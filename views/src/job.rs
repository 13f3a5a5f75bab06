//! The job as a whole: is it running, when did it start and end, what is
//! its DAG, and how many records were dead, duplicated or lost. Every log
//! record touches this one row, so it also holds the log position and the
//! newest event time, which judge worker health and close metric windows.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::event::{Payload, StageDecl};
use crate::projection::{Input, Keys, Projection, Record};
use crate::runtime::BuildFx;

/// Job status names of the contract.
pub const RUNNING: &str = "RUNNING";
/// The job ended well.
pub const COMPLETED: &str = "COMPLETED";
/// The job ended badly.
pub const FAILED: &str = "FAILED";

/// The job row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobRow {
    pub job_id: String,
    /// RUNNING until `job_completed` / `job_failed`.
    pub status: String,
    /// The `status` the producer gave in its final message.
    pub final_status: Option<String>,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    pub duration_ms: Option<f64>,
    /// The `duration_ms` the producer gave in its final message, if any;
    /// otherwise `duration_ms` is computed, and follows a late `job_started`.
    pub reported_duration_ms: Option<f64>,
    /// Upstream stage → downstream stages, as `job_started` sent them.
    pub dag_edges: BTreeMap<String, Vec<String>>,
    pub config: serde_json::Map<String, serde_json::Value>,
    pub stages: Vec<StageDecl>,
    pub stage_count: u64,
    /// Declared stages and any a message named.
    pub known_stages: std::collections::BTreeSet<String>,
    /// `known_stages` hashed, for the check every record makes: the set of
    /// a big job is a dozen string comparisons deep. Not part of the row's
    /// value; rebuilt from `known_stages` after a load.
    #[serde(skip)]
    pub stage_index: StageIndex,
    pub started_seen: bool,
    pub event_count: u64,
    pub applied_count: u64,
    pub exception_count: u64,
    pub dead_letter_count: u64,
    pub duplicate_count: u64,
    pub missing_count: u64,
    pub split_count: u64,
    /// Sequence of the last record applied (valid or not).
    pub log_offset: u64,
    /// Oldest and newest event time of any valid message.
    pub first_event_time: Option<f64>,
    pub newest_event_time: Option<f64>,
}

/// A hashed copy of a set of stage ids that is never stored, printed or
/// compared: two rows differing only in it are equal.
#[derive(Clone, Default)]
pub struct StageIndex(HashSet<Box<str>, BuildFx>);

impl PartialEq for StageIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for StageIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("_")
    }
}

impl JobRow {
    /// Adds a stage id to `known_stages` unless it is there.
    fn know_stage(&mut self, stage: &str) {
        if self.stage_index.0.len() != self.known_stages.len() {
            self.stage_index.0 = self
                .known_stages
                .iter()
                .map(|s| s.as_str().into())
                .collect();
        }
        if !self.stage_index.0.contains(stage) {
            self.stage_index.0.insert(stage.into());
            self.known_stages.insert(stage.to_owned());
        }
    }
}

/// The job projection.
#[derive(Debug, Default, Clone, Copy)]
pub struct JobView;

impl Projection for JobView {
    const NAME: &'static str = "job";
    type Row = JobRow;

    fn keys(&self, _input: &Input, keys: &mut Keys) {
        keys.push("");
    }

    fn apply(&self, input: &Input, rows: &mut [&mut JobRow]) {
        let row = &mut rows[0];
        row.event_count += 1;
        row.log_offset = input.seq;
        if row.status.is_empty() {
            row.status = RUNNING.to_owned();
        }
        let (msg, missing_delta) = match input.record {
            Record::Dead { missing_delta, .. } => {
                row.dead_letter_count += 1;
                // Its sequence arrived: it may fill a gap, or open one below it.
                row.missing_count = row.missing_count.saturating_add_signed(missing_delta);
                return;
            }
            Record::Duplicate(_) => {
                row.duplicate_count += 1;
                return;
            }
            Record::Applied { msg, missing_delta } => (msg, missing_delta),
        };
        row.applied_count += 1;
        row.missing_count = row.missing_count.saturating_add_signed(missing_delta);
        if row.job_id.is_empty() {
            row.job_id = msg.job_id.to_string();
        }
        let ts = msg.timestamp;
        row.newest_event_time = Some(row.newest_event_time.map_or(ts, |t| t.max(ts)));
        row.first_event_time = Some(row.first_event_time.map_or(ts, |t| t.min(ts)));
        if !row.started_seen {
            row.start_time = row.first_event_time;
        }
        match &msg.payload {
            Payload::JobStarted(p) => {
                row.started_seen = true;
                row.start_time = Some(ts);
                row.dag_edges = p.dag_edges.clone().unwrap_or_default();
                row.config = p.config.clone().unwrap_or_default();
                row.stages = p.stages.clone();
            }
            Payload::JobCompleted(p) | Payload::JobFailed(p) => {
                row.status = if matches!(msg.payload, Payload::JobCompleted(_)) {
                    COMPLETED
                } else {
                    FAILED
                }
                .to_owned();
                row.final_status.clone_from(&p.status);
                row.end_time = Some(ts);
                row.reported_duration_ms = p.duration_ms.map(|d| d.0);
            }
            Payload::Exception(_) => row.exception_count += 1,
            Payload::SplitProcessed(_) => row.split_count += 1,
            _ => {}
        }
        if row.status != RUNNING {
            row.duration_ms = row
                .reported_duration_ms
                .or(match (row.start_time, row.end_time) {
                    (Some(s), Some(e)) => Some(((e - s) * 1000.0).max(0.0).round()),
                    _ => None,
                });
        }
        for decl in match &msg.payload {
            Payload::JobStarted(p) => p.stages.as_slice(),
            _ => &[],
        } {
            row.know_stage(&decl.stage_id);
        }
        if let Some(stage) = msg.stage_id() {
            row.know_stage(stage);
        }
        row.stage_count = row.known_stages.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::{COMPLETED, FAILED, RUNNING};
    use crate::testkit::*;

    #[test]
    fn job_started_sets_the_dag_config_and_stages() {
        let g = given(&[job_started(100.0, 1, &["a", "b", "c"])]);
        let j = g.job();
        assert_eq!(j.job_id, JOB);
        assert_eq!(j.status, RUNNING);
        assert_eq!(j.start_time, Some(100.0));
        assert_eq!(j.end_time, None);
        assert_eq!(j.duration_ms, None);
        assert_eq!(j.dag_edges["a"], vec!["b".to_owned()]);
        assert_eq!(j.dag_edges["b"], vec!["c".to_owned()]);
        assert_eq!(j.dag_edges.len(), 2);
        assert_eq!(j.config["parallelism"], serde_json::json!(2));
        assert_eq!(j.stages.len(), 3);
        assert_eq!(j.stage_count, 3);
        assert!(j.started_seen);
    }

    #[test]
    fn completion_sets_status_end_and_a_computed_duration() {
        let g = given(&[job_started(100.0, 1, &["a"]), job_completed(112.5, 2)]);
        let j = g.job();
        assert_eq!(j.status, COMPLETED);
        assert_eq!(j.final_status.as_deref(), Some("completed"));
        assert_eq!(j.end_time, Some(112.5));
        assert_eq!(j.duration_ms, Some(12500.0));
    }

    #[test]
    fn a_late_job_started_corrects_the_computed_duration() {
        let g = given(&[
            worker_started("w1", "s1", 103.0, 1),
            job_completed(112.5, 2),
        ]);
        assert_eq!(g.job().duration_ms, Some(9500.0));
        let g = g.then(&[job_started(100.0, 1, &["s1"])]);
        let j = g.job();
        assert_eq!(j.start_time, Some(100.0));
        assert_eq!(j.status, COMPLETED);
        assert_eq!(j.end_time, Some(112.5));
        assert_eq!(j.duration_ms, Some(12500.0));
    }

    #[test]
    fn failure_keeps_the_producers_duration() {
        let g = given(&[
            job_started(100.0, 1, &["a"]),
            job_failed(110.0, 2).with("duration_ms", serde_json::json!(9999.0)),
        ]);
        let j = g.job();
        assert_eq!(j.status, FAILED);
        assert_eq!(j.final_status.as_deref(), Some("failed"));
        assert_eq!(j.duration_ms, Some(9999.0));
    }

    #[test]
    fn before_job_started_the_start_is_the_oldest_event() {
        let g = given(&[
            worker_metrics("w1", "s1", 105.0, 2, 1, 1),
            worker_started("w1", "s1", 103.0, 1),
        ]);
        let j = g.job();
        assert_eq!(j.start_time, Some(103.0));
        assert_eq!(j.status, RUNNING);
        assert!(!j.started_seen);
        assert_eq!(j.stage_count, 1);
        assert_eq!(j.first_event_time, Some(103.0));
        assert_eq!(j.newest_event_time, Some(105.0));
        // job_started gives the real start and adds its stages to those known.
        let g = g.then(&[job_started(100.0, 1, &["s0", "s1"])]);
        let j = g.job();
        assert_eq!(j.start_time, Some(100.0));
        assert_eq!(j.stage_count, 2);
        assert_eq!(j.newest_event_time, Some(105.0));
    }

    #[test]
    fn stages_known_before_a_reload_are_not_counted_again() {
        use crate::projection::encode_row;
        let g = given(&[job_started(100.0, 1, &["a", "b"])]);
        let stored = encode_row(&g.job()).unwrap();
        // Loaded from its bytes: the hashed index starts empty.
        let rows = over_stored(
            "job",
            &[("", stored)],
            2,
            &[
                worker_started("w1", "b", 101.0, 2),
                worker_started("w2", "c", 102.0, 3),
                worker_started("w3", "a", 103.0, 4),
            ],
        );
        let j: super::JobRow = crate::projection::decode_row(&rows[""]).unwrap();
        assert_eq!(j.stage_count, 3);
        let known: Vec<_> = j.known_stages.iter().map(String::as_str).collect();
        assert_eq!(known, ["a", "b", "c"]);
    }

    #[test]
    fn counters_of_records_and_their_fates() {
        let dup = worker_metrics("w1", "s1", 2.0, 2, 1, 1);
        let g = given(&[
            job_started(1.0, 1, &["s1"]),
            dead("not json"),
            dup.clone(),
            dup,
            exception("w1", "s1", 3.0, 3, "E", "x"),
            split("w1", "s1", "sp1", &[], 4.0, 5),
            dead("unknown message_type"),
        ]);
        let j = g.job();
        assert_eq!(j.event_count, 7);
        assert_eq!(j.applied_count, 4);
        assert_eq!(j.dead_letter_count, 2);
        assert_eq!(j.duplicate_count, 1);
        assert_eq!(j.exception_count, 1);
        assert_eq!(j.split_count, 1);
        // w1 sent 2, 3, 5: 1 and 4 never arrived.
        assert_eq!(j.missing_count, 2);
        assert_eq!(j.log_offset, 7);
        assert_eq!(j.newest_event_time, Some(4.0));
    }

    #[test]
    fn a_dead_letter_changes_only_the_job_counters_and_the_dead_letter_list() {
        let g = given(&[
            job_started(1.0, 1, &["s1"]),
            worker_metrics("w1", "s1", 2.0, 1, 1, 1),
        ])
        .then(&[dead("bad")]);
        assert_eq!(
            g.changed(),
            vec![("dead_letter", "00000000000000000003"), ("job", "")]
        );
        let j = g.job();
        assert_eq!(j.dead_letter_count, 1);
        assert_eq!(j.log_offset, 3);
        assert_eq!(j.event_count, 3);
        assert_eq!(j.applied_count, 2);
        assert_eq!(j.newest_event_time, Some(2.0));
    }

    #[test]
    fn a_job_of_only_dead_letters_is_running_with_no_id_yet() {
        let g = given(&[dead("bad")]);
        let j = g.job();
        assert_eq!(j.status, RUNNING);
        assert_eq!(j.job_id, "");
        assert_eq!(j.start_time, None);
        assert_eq!(j.newest_event_time, None);
        assert_eq!(j.dead_letter_count, 1);
    }
}
