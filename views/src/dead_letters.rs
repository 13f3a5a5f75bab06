//! Records that were rejected, with the reason and a preview of their bytes:
//! what a producer author needs to fix their producer. A dead letter changes
//! no other view.

use serde::{Deserialize, Serialize};

use crate::projection::{Input, Keys, Projection, Record};

/// One rejected record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeadLetterRow {
    /// Log sequence of the record.
    pub offset: u64,
    pub reason: String,
    pub preview: String,
    pub source_partition: i32,
    pub source_offset: i64,
}

/// Key of a log-sequence-ordered row.
pub fn seq_key(seq: u64) -> String {
    format!("{seq:020}")
}

/// The dead-letter projection.
#[derive(Debug, Default, Clone, Copy)]
pub struct DeadLetterView;

impl Projection for DeadLetterView {
    const NAME: &'static str = "dead_letter";
    const APPEND_ONLY: bool = true;
    type Row = DeadLetterRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        if let Record::Dead(_) = input.record {
            keys.push(&seq_key(input.seq));
        }
    }

    fn apply(&self, input: &Input, rows: &mut [DeadLetterRow]) {
        if let Record::Dead(d) = input.record {
            rows[0] = DeadLetterRow {
                offset: input.seq,
                reason: d.reason.clone(),
                preview: d.preview.clone(),
                source_partition: d.partition,
                source_offset: d.offset,
            };
        }
    }
}
