//! Which messages are producer retries, and which sequence numbers never
//! arrived. Runs before every other view: a duplicate (same `source_id`,
//! `message_type`, `sequence`, `timestamp` as one already applied) changes no
//! view; a producer restart (sequence back to 1) starts a new run whose gaps
//! are counted apart from the old run's.

use crate::event::Message;
use crate::projection::{Envelope, Input, Keys, Projection};

/// The fingerprint kind of a dead letter whose `message_type` is unknown
/// (known kinds are their `Kind` discriminant, all below it).
const UNKNOWN_KIND: u8 = u8::MAX;

/// Sequence numbers per chunk row: small rows keep per-batch rewrites cheap.
const CHUNK: u64 = 64;

pub use crate::sequence_row::{Run, Seen, SequenceRow};

/// The verdict on one valid message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Apply it; the job's missing count changes by `missing_delta`.
    Fresh { missing_delta: i64 },
    /// A retry of a message already applied.
    Duplicate,
}

/// The sequence tracker.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sequences;

impl Sequences {
    /// Judges `msg` against the rows of its keys (`[runs, chunk]`).
    pub fn judge(msg: &Message, rows: &mut [&mut SequenceRow]) -> Verdict {
        match msg.sequence {
            Some(seq) => Self::judge_parts(msg.kind as u8, seq, msg.timestamp, rows),
            None => Verdict::Fresh { missing_delta: 0 },
        }
    }

    /// Judges the readable envelope of a dead letter like a message: its
    /// sequence arrived. A type Sundial does not know gets a fingerprint
    /// kind of its own, so it is never taken for a known message's retry.
    pub fn judge_envelope(env: &Envelope, rows: &mut [&mut SequenceRow]) -> Verdict {
        let kind = env.kind.map_or(UNKNOWN_KIND, |k| k as u8);
        Self::judge_parts(kind, env.sequence, env.timestamp, rows)
    }

    fn judge_parts(kind: u8, seq: u64, ts: f64, rows: &mut [&mut SequenceRow]) -> Verdict {
        let [src, chunk] = rows else {
            return Verdict::Fresh { missing_delta: 0 };
        };
        let ts_bits = ts.to_bits();
        // This sequence's fingerprints: `seen[start..end]` (usually empty,
        // at the end: sequences mostly arrive in order).
        let (start, end) = match chunk.seen.last() {
            // In order: no search through the chunk's earlier entries.
            Some((last, _)) if *last < seq => (chunk.seen.len(), chunk.seen.len()),
            _ => (
                chunk.seen.partition_point(|(s, _)| *s < seq),
                chunk.seen.partition_point(|(s, _)| *s <= seq),
            ),
        };
        let entries = &chunk.seen[start..end];
        if entries
            .iter()
            .any(|(_, s)| s.kind == kind && s.ts_bits == ts_bits)
        {
            return Verdict::Duplicate;
        }
        if src.runs.is_empty() {
            src.runs.push(Run::default());
        }
        let current = src.runs.len() - 1;
        // A message older than the start of the current run, whose sequence
        // the run it falls in by time has not seen, is a late arrival of
        // that earlier run (it fills its gap, it is no restart).
        let mut by_time = current;
        while by_time > 0 && src.runs[by_time].first_ts.is_some_and(|f| ts < f) {
            by_time -= 1;
        }
        let seen_in = |run: usize| entries.iter().any(|(_, s)| s.run as usize == run);
        let run_idx = if by_time < current && !seen_in(by_time) {
            by_time
        } else if seen_in(current) {
            // The current run already has this sequence from another
            // message: the producer restarted (its 1 may have been lost).
            src.runs.push(Run::default());
            current + 1
        } else {
            current
        };
        let run = &mut src.runs[run_idx];
        run.first_ts = Some(run.first_ts.map_or(ts, |f| f.min(ts)));
        let before = run.missing();
        run.distinct += 1;
        run.max_seq = run.max_seq.max(seq);
        let after = run.missing();
        let run_idx = run_idx as u32;
        if chunk.seen.capacity() == 0 {
            // A chunk fills up to its sequences: one allocation, no regrowth.
            chunk.seen.reserve_exact(CHUNK as usize);
        }
        chunk.seen.insert(
            end,
            (
                seq,
                Seen {
                    run: run_idx,
                    kind,
                    ts_bits,
                },
            ),
        );
        Verdict::Fresh {
            // Clamped, not wrapped: a hostile sequence of 2^64 - 1 is a
            // gap as wide as an i64 can say.
            missing_delta: (i128::from(after) - i128::from(before))
                .clamp(i128::from(i64::MIN), i128::from(i64::MAX))
                as i64,
        }
    }
}

impl Projection for Sequences {
    const NAME: &'static str = "sequences";
    type Row = SequenceRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        let (source, seq) = match input.record {
            crate::Record::Applied { msg, .. } | crate::Record::Duplicate(msg) => {
                (msg.source_id.as_ref(), msg.sequence)
            }
            crate::Record::Dead { dead, .. } => match &dead.envelope {
                Some(env) => (env.source_id.as_str(), Some(env.sequence)),
                None => return,
            },
        };
        if let Some(seq) = seq {
            keys.push_parts(&["r\u{1f}", source]);
            let chunk = crate::projection::hex16(seq / CHUNK);
            keys.push_parts(&["c\u{1f}", source, "\u{1f}", chunk.as_str()]);
        }
    }

    fn apply(&self, input: &Input, rows: &mut [&mut SequenceRow]) {
        match input.record {
            crate::Record::Applied { msg, .. } => {
                Sequences::judge(msg, rows);
            }
            crate::Record::Dead { dead, .. } => {
                if let Some(env) = &dead.envelope {
                    Sequences::judge_envelope(env, rows);
                }
            }
            crate::Record::Duplicate(_) => {}
        }
    }

    fn encode(row: &SequenceRow) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        crate::sequence_bytes::encode(row)
    }
}

#[cfg(test)]
mod tests {
    use crate::duplicates::{DuplicateRow, DuplicateView};
    use crate::projector::Outcome::{Applied, Duplicate};
    use crate::stage::StageView;
    use crate::testkit::*;
    use crate::worker::WorkerView;

    #[test]
    fn a_chunk_row_is_stored_as_the_map_it_always_was() {
        use super::{Run, Seen, SequenceRow};
        use crate::projection::{decode_row, encode_row};
        use std::collections::BTreeMap;

        /// The row as it was stored before `seen` went flat.
        #[derive(Debug, Default, serde::Serialize)]
        struct MapRow {
            runs: Vec<Run>,
            seen: BTreeMap<u64, Vec<Seen>>,
        }
        let f = |run, kind, ts_bits| Seen { run, kind, ts_bits };
        let row = SequenceRow {
            runs: vec![Run {
                max_seq: 9,
                distinct: 3,
                first_ts: Some(1.5),
            }],
            seen: vec![(3, f(0, 1, 10)), (3, f(1, 1, 11)), (7, f(0, 2, 12))],
        };
        let map = MapRow {
            runs: row.runs.clone(),
            seen: BTreeMap::from([(3, vec![f(0, 1, 10), f(1, 1, 11)]), (7, vec![f(0, 2, 12)])]),
        };
        let bytes = encode_row(&row).unwrap();
        assert_eq!(bytes, encode_row(&map).unwrap());
        assert_eq!(decode_row::<SequenceRow>(&bytes).unwrap(), row);
        assert_eq!(
            encode_row(&SequenceRow::default()).unwrap(),
            encode_row(&MapRow::default()).unwrap()
        );
    }

    #[test]
    fn a_chunk_keeps_its_sequences_in_order_whatever_the_arrival_order() {
        let g = given(&[
            worker_started("w1", "s1", 1.0, 7),
            worker_metrics("w1", "s1", 2.0, 5, 10, 9),
            worker_metrics("w1", "s1", 3.0, 7, 20, 18),
        ]);
        let chunk = g.row::<super::Sequences>("c\u{1f}w1\u{1f}0000000000000000");
        let order: Vec<(u64, u32)> = chunk.seen.iter().map(|(q, s)| (*q, s.run)).collect();
        // 7 twice (the second a restart: run 1), 5 before them.
        assert_eq!(order, vec![(5, 0), (7, 0), (7, 1)]);
    }

    #[test]
    fn a_retry_repeating_all_four_fields_is_a_duplicate_and_changes_no_view() {
        let m = worker_metrics("w1", "s1", 10.0, 2, 100, 90);
        let g = given(&[worker_started("w1", "s1", 9.0, 1), m.clone()]);
        let stage_before = g.row::<StageView>("s1");
        let worker_before = g.row::<WorkerView>("w1");
        let g = g.then(&[m]);
        assert_eq!(g.outcomes(), &[Applied, Applied, Duplicate]);
        // Only the job row (its counters) and the duplicate list change.
        assert_eq!(
            g.changed(),
            vec![("duplicate", "00000000000000000003"), ("job", ""),]
        );
        assert_eq!(g.row::<StageView>("s1"), stage_before);
        assert_eq!(g.row::<StageView>("s1").input_records, 100);
        assert_eq!(g.row::<WorkerView>("w1"), worker_before);
        let job = g.job();
        assert_eq!(job.duplicate_count, 1);
        assert_eq!(job.applied_count, 2);
        assert_eq!(job.event_count, 3);
        assert_eq!(job.log_offset, 3);
        assert_eq!(job.missing_count, 0);
        assert_eq!(
            g.row::<DuplicateView>("00000000000000000003"),
            DuplicateRow {
                offset: 3,
                source_id: "w1".into(),
                message_type: "worker_metrics".into(),
                sequence: Some(2),
                timestamp: 10.0,
            }
        );
    }

    #[test]
    fn hostile_sequences_0_and_u64_max_never_wrap_the_missing_count() {
        let g = given(&[
            worker_started("w1", "s1", 1.0, 0),
            worker_metrics("w1", "s1", 2.0, 0, 1, 1),
            worker_metrics("w1", "s1", 3.0, 5, 2, 2),
            worker_metrics("w1", "s1", 4.0, u64::MAX, 3, 3),
        ]);
        assert_eq!(g.outcomes(), &[Applied, Applied, Applied, Applied]);
        // A gap of ~2^64 sequences: pinned near the top, never wrapped
        // round to a small count (or an overflow panic in a debug build).
        assert!(
            g.job().missing_count >= i64::MAX as u64,
            "{}",
            g.job().missing_count
        );
    }

    #[test]
    fn a_retry_as_the_producer_sends_it_is_recognised() {
        let send = || {
            msg(
                r#"{"message_type": "worker_metrics", "job_id": "j1", "source_id": "w1",
                    "timestamp": 1700000000.125, "sequence": 7,
                    "payload": {"stage_id": "s1", "input_records": 10, "output_records": 9,
                                "processing_time": 0.5, "processed_count": 10,
                                "assigned_partitions": [0], "is_running": true}}"#,
            )
        };
        let g = given(&[send(), send()]);
        assert_eq!(g.outcomes(), &[Applied, Duplicate]);
        assert_eq!(g.row::<StageView>("s1").input_records, 10);
        // Sequences 1..=6 never arrived.
        assert_eq!(g.job().missing_count, 6);
    }

    #[test]
    fn a_restarted_producer_reusing_a_sequence_with_another_timestamp_is_not_a_duplicate() {
        let g = given(&[
            worker_metrics("w1", "s1", 10.0, 1, 100, 100),
            worker_metrics("w1", "s1", 11.0, 2, 200, 200),
            // The producer restarted: sequence back to 1, new event time.
            worker_metrics("w1", "s1", 20.0, 1, 300, 300),
            worker_metrics("w1", "s1", 21.0, 2, 400, 400),
        ]);
        assert_eq!(g.outcomes(), &[Applied, Applied, Applied, Applied]);
        assert_eq!(g.job().duplicate_count, 0);
        assert_eq!(g.job().missing_count, 0);
        assert_eq!(g.row::<StageView>("s1").input_records, 400);
    }

    #[test]
    fn same_sequence_and_timestamp_of_another_message_type_is_not_a_duplicate() {
        let g = given(&[
            worker_started("w1", "s1", 10.0, 1),
            worker_metrics("w1", "s1", 10.0, 1, 5, 5),
        ]);
        assert_eq!(g.outcomes(), &[Applied, Applied]);
        assert_eq!(g.row::<StageView>("s1").input_records, 5);
    }

    #[test]
    fn the_same_fields_from_another_source_is_not_a_duplicate() {
        let g = given(&[
            worker_metrics("w1", "s1", 10.0, 1, 5, 5),
            worker_metrics("w2", "s1", 10.0, 1, 5, 5),
        ]);
        assert_eq!(g.outcomes(), &[Applied, Applied]);
        assert_eq!(g.row::<StageView>("s1").input_records, 10);
    }

    #[test]
    fn a_null_sequence_is_never_a_duplicate() {
        let e = exception("w1", "s1", 10.0, 0, "ValueError", "bad row").no_seq();
        let g = given(&[e.clone(), e]);
        assert_eq!(g.outcomes(), &[Applied, Applied]);
        assert_eq!(g.job().duplicate_count, 0);
        assert_eq!(g.job().exception_count, 2);
        assert_eq!(g.job().missing_count, 0);
        assert_eq!(g.row::<StageView>("s1").exception_count, 2);
    }

    #[test]
    fn a_retry_of_an_old_run_is_still_a_duplicate_after_a_restart() {
        let old = worker_metrics("w1", "s1", 11.0, 2, 200, 200);
        let g = given(&[
            worker_metrics("w1", "s1", 10.0, 1, 100, 100),
            old.clone(),
            worker_metrics("w1", "s1", 20.0, 1, 300, 300),
            old,
        ]);
        assert_eq!(g.outcomes(), &[Applied, Applied, Applied, Duplicate]);
        assert_eq!(g.job().duplicate_count, 1);
    }

    #[test]
    fn gaps_below_the_highest_sequence_are_missing_until_they_arrive() {
        let g = given(&[
            worker_metrics("w1", "s1", 1.0, 1, 1, 1),
            worker_metrics("w1", "s1", 2.0, 2, 2, 2),
            worker_metrics("w1", "s1", 5.0, 5, 5, 5),
        ]);
        assert_eq!(g.job().missing_count, 2);
        let g = g.then(&[worker_metrics("w1", "s1", 3.0, 3, 3, 3)]);
        assert_eq!(g.job().missing_count, 1);
        let g = g.then(&[worker_metrics("w1", "s1", 4.0, 4, 4, 4)]);
        assert_eq!(g.job().missing_count, 0);
        // A duplicate of a filled gap changes nothing.
        let g = g.then(&[worker_metrics("w1", "s1", 4.0, 4, 4, 4)]);
        assert_eq!(g.job().missing_count, 0);
        assert_eq!(g.job().duplicate_count, 1);
    }

    #[test]
    fn a_dead_letter_with_a_readable_envelope_arrived_and_is_not_missing() {
        use crate::projector::Outcome::Dead;
        let g = given(&[
            worker_metrics("w1", "s1", 1.0, 1, 1, 1),
            dead_with_envelope(
                "json: missing field `split_id`",
                "split_processed",
                "w1",
                2.0,
                2,
            ),
            worker_metrics("w1", "s1", 3.0, 3, 3, 3),
        ]);
        assert_eq!(g.outcomes(), &[Applied, Dead, Applied]);
        assert_eq!(g.job().dead_letter_count, 1);
        assert_eq!(g.job().missing_count, 0);
        // Ahead of the others, it opens a gap below it like any message...
        let g = given(&[
            worker_metrics("w1", "s1", 1.0, 1, 1, 1),
            dead_with_envelope("bad", "split_processed", "w1", 4.0, 4),
        ]);
        assert_eq!(g.job().missing_count, 2);
        // ...that later arrivals fill; an unknown type arrived too.
        let g = g.then(&[
            worker_metrics("w1", "s1", 2.0, 2, 2, 2),
            dead_with_envelope("unknown message_type", "worker_paused", "w1", 3.0, 3),
        ]);
        assert_eq!(g.job().missing_count, 0);
        // A retry of the rejected record is one more dead letter, no change.
        let g = g.then(&[dead_with_envelope("bad", "split_processed", "w1", 4.0, 4)]);
        assert_eq!((g.job().dead_letter_count, g.job().missing_count), (3, 0));
        assert_eq!(g.job().duplicate_count, 0);
        // Without a readable envelope the sequence stays unknown.
        let g = given(&[
            worker_metrics("w1", "s1", 1.0, 1, 1, 1),
            dead("json: expected value at line 1 column 1"),
            worker_metrics("w1", "s1", 3.0, 3, 3, 3),
        ]);
        assert_eq!(g.job().missing_count, 1);
    }

    #[test]
    fn missing_sequences_count_per_source_and_across_chunks() {
        let g = given(&[
            worker_started("w1", "s1", 1.0, 1),
            worker_started("w2", "s1", 1.0, 3),
            // 62 lost in between, across the 64-sequence chunk boundary.
            worker_metrics("w1", "s1", 2.0, 64, 1, 1),
            worker_metrics("w1", "s1", 3.0, 130, 1, 1),
        ]);
        // w1: 2..=63 and 65..=129 lost; w2: 1 and 2 lost.
        assert_eq!(g.job().missing_count, 62 + 65 + 2);
        let g = g.then(&[worker_metrics("w1", "s1", 2.5, 65, 1, 1)]);
        assert_eq!(g.job().missing_count, 62 + 64 + 2);
    }

    #[test]
    fn a_restart_starts_a_new_run_and_keeps_the_old_runs_gaps() {
        let g = given(&[
            worker_metrics("w1", "s1", 1.0, 1, 1, 1),
            worker_metrics("w1", "s1", 3.0, 3, 3, 3),
        ]);
        assert_eq!(g.job().missing_count, 1);
        // Restart: 1, 2 again (new timestamps), then 4 with 3 lost.
        let g = g.then(&[
            worker_metrics("w1", "s1", 10.0, 1, 1, 1),
            worker_metrics("w1", "s1", 11.0, 2, 2, 2),
        ]);
        assert_eq!(g.job().missing_count, 1);
        let g = g.then(&[worker_metrics("w1", "s1", 13.0, 4, 4, 4)]);
        assert_eq!(g.job().missing_count, 2);
        assert_eq!(g.job().duplicate_count, 0);
    }

    #[test]
    fn a_late_arrival_of_an_old_run_fills_that_runs_gap_after_a_restart() {
        let g = given(&[
            worker_metrics("w1", "s1", 1.0, 1, 1, 1),
            worker_metrics("w1", "s1", 2.0, 2, 2, 2),
            worker_metrics("w1", "s1", 4.0, 4, 4, 4),
            worker_metrics("w1", "s1", 5.0, 5, 5, 5),
            // Restart.
            worker_metrics("w1", "s1", 10.0, 1, 1, 1),
            worker_metrics("w1", "s1", 11.0, 2, 2, 2),
            worker_metrics("w1", "s1", 12.0, 3, 3, 3),
        ]);
        assert_eq!(g.job().missing_count, 1);
        // The old run's 3, delivered late: it fills the old gap, and is
        // neither a new restart nor part of the new run.
        let g = g.then(&[worker_metrics("w1", "s1", 3.0, 3, 3, 3)]);
        assert_eq!(g.outcomes()[7], Applied);
        assert_eq!(g.job().missing_count, 0);
        let g = g.then(&[worker_metrics("w1", "s1", 13.0, 4, 4, 4)]);
        assert_eq!(g.job().missing_count, 0);
    }

    #[test]
    fn an_early_message_of_the_new_run_delivered_late_still_belongs_to_it() {
        let g = given(&[
            worker_metrics("w1", "s1", 1.0, 1, 1, 1),
            worker_metrics("w1", "s1", 2.0, 2, 2, 2),
            // Restart, its 1 delivered after its 2.
            worker_metrics("w1", "s1", 11.0, 2, 2, 2),
        ]);
        assert_eq!(g.job().missing_count, 1);
        let g = g.then(&[worker_metrics("w1", "s1", 10.0, 1, 1, 1)]);
        assert_eq!(g.job().missing_count, 0);
    }

    #[test]
    fn a_source_without_sequences_is_never_missing_anything() {
        let g = given(&[
            worker_metrics("w1", "s1", 1.0, 0, 1, 1).no_seq(),
            worker_metrics("w1", "s1", 2.0, 0, 2, 2).no_seq(),
        ]);
        assert_eq!(g.job().missing_count, 0);
        assert!(g.rows::<super::Sequences>().is_empty());
    }
}
