//! Every exception, newest first, never trimmed: which stage, worker and
//! split it hit, with its stack trace. Keys order records by event time,
//! newest first, so a page is one forward scan.

use serde::{Deserialize, Serialize};

use crate::event::Payload;
use crate::projection::{Input, Keys, Projection};

/// One exception record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExceptionRow {
    pub offset: u64,
    pub timestamp: f64,
    pub source_id: String,
    pub stage_id: String,
    pub worker_id: Option<String>,
    pub exception_type: String,
    pub message: String,
    pub stacktrace: String,
    pub split_id: Option<String>,
}

/// The exception-records projection.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExceptionView;

/// Sort key that puts newer event times (then later offsets) first.
pub fn newest_first_key(ts: f64, seq: u64) -> String {
    let micros = (ts * 1e6).round().max(0.0) as u64;
    format!("{:016x}{:016x}", u64::MAX - micros, u64::MAX - seq)
}

impl Projection for ExceptionView {
    const NAME: &'static str = "exception";
    const APPEND_ONLY: bool = true;
    type Row = ExceptionRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        if let Some(msg) = input.applied() {
            if matches!(msg.payload, Payload::Exception(_)) {
                keys.push(&newest_first_key(msg.timestamp, input.seq));
            }
        }
    }

    fn apply(&self, input: &Input, rows: &mut [ExceptionRow]) {
        let Some(msg) = input.applied() else { return };
        let Payload::Exception(p) = &msg.payload else {
            return;
        };
        rows[0] = ExceptionRow {
            offset: input.seq,
            timestamp: msg.timestamp,
            source_id: msg.source_id.to_string(),
            stage_id: p.stage_id.to_string(),
            worker_id: p.worker_id.as_ref().map(|w| w.to_string()),
            exception_type: p.exception_type.clone(),
            message: p.message.clone(),
            stacktrace: p.stacktrace.clone(),
            split_id: p.split_id.as_ref().map(|s| s.to_string()),
        };
    }
}
