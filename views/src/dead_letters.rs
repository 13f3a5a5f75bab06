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
    const INTEREST: crate::Interest = crate::Interest::DEAD;
    const APPEND_ONLY: bool = true;
    type Row = DeadLetterRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        if let Record::Dead { .. } = input.record {
            keys.push(&seq_key(input.seq));
        }
    }

    fn apply(&self, input: &Input, rows: &mut [&mut DeadLetterRow]) {
        if let Record::Dead { dead: d, .. } = input.record {
            *rows[0] = DeadLetterRow {
                offset: input.seq,
                reason: d.reason.clone(),
                preview: d.preview.clone(),
                source_partition: d.partition,
                source_offset: d.offset,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{seq_key, DeadLetterRow, DeadLetterView};
    use crate::testkit::*;

    #[test]
    fn a_dead_letter_is_listed_with_its_reason_and_coordinates() {
        let g = given(&[job_started(1.0, 1, &["s1"])]).then(&[dead("unknown message_type \"x\"")]);
        assert_eq!(
            g.rows::<DeadLetterView>(),
            vec![(
                seq_key(2),
                DeadLetterRow {
                    offset: 2,
                    reason: "unknown message_type \"x\"".into(),
                    preview: "{not json".into(),
                    source_partition: 0,
                    source_offset: 7,
                }
            )]
        );
        assert_eq!(
            g.changed(),
            vec![("dead_letter", seq_key(2).as_str()), ("job", "")]
        );
    }

    #[test]
    fn valid_messages_and_duplicates_are_not_dead_letters() {
        let m = worker_started("w1", "s1", 1.0, 1);
        let g = given(&[m.clone(), m]);
        assert!(g.rows::<DeadLetterView>().is_empty());
        assert_eq!(g.job().dead_letter_count, 0);
    }

    #[test]
    fn dead_letters_are_listed_in_log_order() {
        let g = given(&[dead("a"), worker_started("w1", "s1", 1.0, 1), dead("b")]);
        let reasons: Vec<(String, String)> = g
            .rows::<DeadLetterView>()
            .into_iter()
            .map(|(k, r)| (k, r.reason))
            .collect();
        assert_eq!(
            reasons,
            [(seq_key(1), "a".to_owned()), (seq_key(3), "b".to_owned())]
        );
        assert_eq!(g.job().dead_letter_count, 2);
    }
}
