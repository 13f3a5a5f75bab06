//! The job's lifecycle in event-time order: job, stage and worker starts and
//! ends, exceptions and finished checkpoints. Metrics are not lifecycle and
//! stay out. Keys sort by event time, then log sequence.

use serde::{Deserialize, Serialize};

use crate::event::{CheckpointStatus, Payload};
use crate::projection::{Input, Keys, Projection};

/// One lifecycle event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimelineRow {
    pub timestamp: f64,
    pub offset: u64,
    pub event: String,
    pub source_id: String,
    pub stage_id: Option<String>,
    pub detail: String,
}

/// The timeline projection.
#[derive(Debug, Default, Clone, Copy)]
pub struct TimelineView;

fn detail(payload: &Payload) -> Option<String> {
    Some(match payload {
        Payload::JobStarted(p) => format!("{} stages", p.stages.len()),
        Payload::JobCompleted(p) | Payload::JobFailed(p) => p.status.clone(),
        Payload::StageStarted(p) => p.operator_type.clone(),
        Payload::StageCompleted => String::new(),
        Payload::WorkerStarted(p) => format!("partitions {:?}", p.assigned_partitions),
        Payload::WorkerStopped(p) => p.reason.clone(),
        Payload::Exception(p) => format!("{}: {}", p.exception_type, p.message),
        Payload::Checkpoint(p) if p.status != CheckpointStatus::Triggered => {
            format!("checkpoint {} {:?}", p.checkpoint_id, p.status).to_lowercase()
        }
        _ => return None,
    })
}

impl Projection for TimelineView {
    const NAME: &'static str = "timeline";
    const APPEND_ONLY: bool = true;
    type Row = TimelineRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        if let Some(msg) = input.applied() {
            if detail(&msg.payload).is_some() {
                let micros = (msg.timestamp * 1e6).round().max(0.0) as u64;
                keys.push_fmt(format_args!("{micros:016x}{:016x}", input.seq));
            }
        }
    }

    fn apply(&self, input: &Input, rows: &mut [TimelineRow]) {
        let Some(msg) = input.applied() else { return };
        let Some(detail) = detail(&msg.payload) else {
            return;
        };
        rows[0] = TimelineRow {
            timestamp: msg.timestamp,
            offset: input.seq,
            event: msg.kind.as_str().to_owned(),
            source_id: msg.source_id.to_string(),
            stage_id: msg.stage_id().map(str::to_owned),
            detail,
        };
    }
}
