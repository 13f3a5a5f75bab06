//! Which messages are producer retries, and which sequence numbers never
//! arrived. Runs before every other view: a duplicate (same `source_id`,
//! `message_type`, `sequence`, `timestamp` as one already applied) changes no
//! view; a producer restart (sequence back to 1) starts a new run whose gaps
//! are counted apart from the old run's.

use serde::{Deserialize, Serialize};

use crate::event::Message;
use crate::projection::{Input, Keys, Projection};

/// Sequence numbers per chunk row: small rows keep per-batch rewrites cheap.
const CHUNK: u64 = 64;

/// One producer run of a source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Highest sequence seen in the run.
    pub max_seq: u64,
    /// Distinct sequences seen in the run.
    pub distinct: u64,
}

impl Run {
    fn missing(&self) -> u64 {
        self.max_seq - self.distinct
    }
}

/// A fingerprint of one applied message: its run, type and timestamp bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub run: u32,
    pub kind: u8,
    pub ts_bits: u64,
}

/// Either a source's runs (`runs`) or one chunk of its seen sequences (`seen`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SequenceRow {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<Run>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub seen: std::collections::BTreeMap<u64, Vec<Seen>>,
}

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
    pub fn judge(msg: &Message, rows: &mut [SequenceRow]) -> Verdict {
        let Some(seq) = msg.sequence else {
            return Verdict::Fresh { missing_delta: 0 };
        };
        let [src, chunk] = rows else {
            return Verdict::Fresh { missing_delta: 0 };
        };
        let ts_bits = msg.timestamp.to_bits();
        let kind = msg.kind as u8;
        let entries = chunk.seen.entry(seq).or_default();
        if entries
            .iter()
            .any(|s| s.kind == kind && s.ts_bits == ts_bits)
        {
            return Verdict::Duplicate;
        }
        if src.runs.is_empty() {
            src.runs.push(Run::default());
        }
        let mut run_idx = (src.runs.len() - 1) as u32;
        // The current run already has this sequence from another message:
        // the producer restarted (its sequence 1 may itself have been lost).
        if entries.iter().any(|s| s.run == run_idx) {
            src.runs.push(Run::default());
            run_idx += 1;
        }
        let run = src.runs.last_mut().expect("a run was pushed above");
        let before = run.missing();
        run.distinct += 1;
        run.max_seq = run.max_seq.max(seq);
        let after = run.missing();
        entries.push(Seen {
            run: run_idx,
            kind,
            ts_bits,
        });
        Verdict::Fresh {
            missing_delta: after as i64 - before as i64,
        }
    }
}

impl Projection for Sequences {
    const NAME: &'static str = "sequences";
    type Row = SequenceRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        let msg = match input.record {
            crate::Record::Applied { msg, .. } | crate::Record::Duplicate(msg) => msg,
            crate::Record::Dead(_) => return,
        };
        if let Some(seq) = msg.sequence {
            keys.push_fmt(format_args!("r\u{1f}{}", msg.source_id));
            keys.push_fmt(format_args!(
                "c\u{1f}{}\u{1f}{:016x}",
                msg.source_id,
                seq / CHUNK
            ));
        }
    }

    fn apply(&self, input: &Input, rows: &mut [SequenceRow]) {
        if let Some(msg) = input.applied() {
            Sequences::judge(msg, rows);
        }
    }
}
