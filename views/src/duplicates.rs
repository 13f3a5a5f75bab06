//! Producer retries that were recognised and not applied: which source sent
//! which message twice. Lets a user see that retries happened and were
//! harmless.

use serde::{Deserialize, Serialize};

use crate::dead_letters::seq_key;
use crate::projection::{Input, Keys, Projection, Record};

/// One duplicate record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DuplicateRow {
    pub offset: u64,
    pub source_id: String,
    pub message_type: String,
    pub sequence: Option<u64>,
    pub timestamp: f64,
}

/// The duplicates projection.
#[derive(Debug, Default, Clone, Copy)]
pub struct DuplicateView;

impl Projection for DuplicateView {
    const NAME: &'static str = "duplicate";
    const INTEREST: crate::Interest = crate::Interest::DUPLICATE;
    const APPEND_ONLY: bool = true;
    type Row = DuplicateRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        if let Record::Duplicate(_) = input.record {
            keys.push(&seq_key(input.seq));
        }
    }

    fn apply(&self, input: &Input, rows: &mut [&mut DuplicateRow]) {
        if let Record::Duplicate(m) = input.record {
            *rows[0] = DuplicateRow {
                offset: input.seq,
                source_id: m.source_id.to_string(),
                message_type: m.kind.as_str().to_owned(),
                sequence: m.sequence,
                timestamp: m.timestamp,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{DuplicateRow, DuplicateView};
    use crate::dead_letters::seq_key;
    use crate::testkit::*;

    #[test]
    fn each_recognised_retry_is_listed_at_its_log_offset() {
        let a = checkpoint(4, "completed", 12.5, 9);
        let b = worker_started("w1", "s1", 1.0, 1);
        let g = given(&[a.clone(), b.clone(), a.clone(), dead("x"), b, a]);
        let rows = g.rows::<DuplicateView>();
        let keys: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, [seq_key(3), seq_key(5), seq_key(6)]);
        assert_eq!(
            rows[0].1,
            DuplicateRow {
                offset: 3,
                source_id: JOB.into(),
                message_type: "checkpoint".into(),
                sequence: Some(9),
                timestamp: 12.5,
            }
        );
        assert_eq!(rows[1].1.source_id, "w1");
        assert_eq!(g.job().duplicate_count, 3);
        assert_eq!(g.checkpoints().completed, 1);
    }
}
