//! The job as a whole: is it running, when did it start and end, what is
//! its DAG, and how many records were dead, duplicated or lost. Every log
//! record touches this one row, so it also holds the log position and the
//! newest event time, which judge worker health and close metric windows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{Payload, StageDecl};
use crate::projection::{Input, Keys, Projection, Record};

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
    /// Upstream stage → downstream stages, as `job_started` sent them.
    pub dag_edges: BTreeMap<String, Vec<String>>,
    pub config: serde_json::Map<String, serde_json::Value>,
    pub stages: Vec<StageDecl>,
    pub stage_count: u64,
    /// Declared stages and any a message named.
    pub known_stages: std::collections::BTreeSet<String>,
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

/// The job projection.
#[derive(Debug, Default, Clone, Copy)]
pub struct JobView;

impl Projection for JobView {
    const NAME: &'static str = "job";
    type Row = JobRow;

    fn keys(&self, _input: &Input, keys: &mut Keys) {
        keys.push("");
    }

    fn apply(&self, input: &Input, rows: &mut [JobRow]) {
        let row = &mut rows[0];
        row.event_count += 1;
        row.log_offset = input.seq;
        if row.status.is_empty() {
            row.status = RUNNING.to_owned();
        }
        let (msg, missing_delta) = match input.record {
            Record::Dead(_) => {
                row.dead_letter_count += 1;
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
                row.dag_edges = p.dag_edges.clone();
                row.config = p.config.clone();
                row.stages = p.stages.clone();
            }
            Payload::JobCompleted(p) | Payload::JobFailed(p) => {
                row.status = if matches!(msg.payload, Payload::JobCompleted(_)) {
                    COMPLETED
                } else {
                    FAILED
                }
                .to_owned();
                row.final_status = Some(p.status.clone());
                row.end_time = Some(ts);
                row.duration_ms = p.duration_ms.map(|d| d.0);
            }
            Payload::Exception(_) => row.exception_count += 1,
            Payload::SplitProcessed(_) => row.split_count += 1,
            _ => {}
        }
        if row.status != RUNNING && row.duration_ms.is_none() {
            if let (Some(s), Some(e)) = (row.start_time, row.end_time) {
                row.duration_ms = Some(((e - s) * 1000.0).max(0.0).round());
            }
        }
        for decl in match &msg.payload {
            Payload::JobStarted(p) => p.stages.as_slice(),
            _ => &[],
        } {
            if !row.known_stages.contains(&decl.stage_id) {
                row.known_stages.insert(decl.stage_id.clone());
            }
        }
        if let Some(stage) = msg.stage_id() {
            if !row.known_stages.contains(stage) {
                row.known_stages.insert(stage.to_owned());
            }
        }
        row.stage_count = row.known_stages.len() as u64;
    }
}
