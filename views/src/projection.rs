//! The projection contract: what a view author writes (`Projection`), what a
//! projection sees for each log record (`Input`), and the rows-as-keys model.
//! A projection is pure: the same inputs in the same order always give the
//! same rows. It never does I/O; the engine loads and stores its rows.

use std::fmt::Write as _;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::event::{Kind, Message};

/// What could be read of a rejected record's envelope: it says which
/// producer sent it and with which sequence number. The record did arrive,
/// so the sequence tracker counts that sequence as seen (a dead letter,
/// not a lost message).
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub source_id: String,
    /// `None` for a `message_type` Sundial does not know.
    pub kind: Option<Kind>,
    pub sequence: u64,
    /// Event time, seconds since the epoch (finite).
    pub timestamp: f64,
}

/// A record the codec could not accept, with the reason users will read.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Why it was rejected, lowercase, with context.
    pub reason: String,
    /// The start of the raw bytes, for a person to recognise the record.
    pub preview: String,
    /// Source partition (-1 for a file).
    pub partition: i32,
    /// Source offset within the partition (line or record index for a file).
    pub offset: i64,
    /// Its envelope when that decoded (this job's `job_id`, a string
    /// `source_id` and `message_type`, an integer `sequence`, a finite
    /// `timestamp`) although the record was rejected.
    pub envelope: Option<Envelope>,
}

/// One log record before judgement.
#[derive(Debug, Clone, Copy)]
pub enum Entry<'m, 'a> {
    /// Decoded and validated.
    Valid(&'m Message<'a>),
    /// Rejected by the codec.
    Dead(&'m DeadLetter),
}

/// What happened to one log record before the views saw it.
#[derive(Debug, Clone, Copy)]
pub enum Record<'m, 'a> {
    /// A valid message applied to the views; `missing_delta` is the change
    /// in the job's count of lost sequence numbers it caused.
    Applied {
        msg: &'m Message<'a>,
        missing_delta: i64,
    },
    /// A valid message already applied once (a producer retry).
    Duplicate(&'m Message<'a>),
    /// A record that did not decode or validate; `missing_delta` as for
    /// an applied message (its readable envelope's sequence arrived).
    Dead {
        dead: &'m DeadLetter,
        missing_delta: i64,
    },
}

/// One log record as a projection sees it.
#[derive(Debug, Clone, Copy)]
pub struct Input<'m, 'a> {
    /// Log sequence of the record (from 1, gap-free within an attempt).
    pub seq: u64,
    /// The record's fate.
    pub record: Record<'m, 'a>,
}

impl<'m, 'a> Input<'m, 'a> {
    /// The message when it is to be applied; `None` for duplicates and dead letters.
    pub fn applied(&self) -> Option<&'m Message<'a>> {
        match self.record {
            Record::Applied { msg, .. } => Some(msg),
            _ => None,
        }
    }
}

/// The records a view can list rows for, as a set of bits: one per
/// message type applied, one for dead letters, one for duplicates. The
/// projector skips the other records without asking the view (most views
/// care about a type or two, and asking each of them about every record
/// was a call, a key list cleared and a payload read per view per record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest(u16);

impl Interest {
    /// Every record (the default).
    pub const ALL: Interest = Interest(u16::MAX);
    /// Dead letters only.
    pub const DEAD: Interest = Interest(1 << 14);
    /// Duplicates only.
    pub const DUPLICATE: Interest = Interest(1 << 15);

    /// Applied messages of these types only.
    pub const fn kinds(kinds: &[crate::event::Kind]) -> Interest {
        let mut bits = 0;
        let mut i = 0;
        while i < kinds.len() {
            bits |= 1 << kinds[i] as u16;
            i += 1;
        }
        Interest(bits)
    }

    /// Applied messages of every type but `kind`.
    pub const fn applied_except(kind: crate::event::Kind) -> Interest {
        let all = Interest::kinds(&crate::event::Kind::ALL);
        Interest(all.0 & !(1 << kind as u16))
    }

    /// The bit of one record.
    pub fn bit(input: &Input) -> u16 {
        match input.record {
            Record::Applied { msg, .. } => 1 << msg.kind as u16,
            Record::Dead { .. } => Self::DEAD.0,
            Record::Duplicate(_) => Self::DUPLICATE.0,
        }
    }

    /// True when a record of bit `bit` may concern the view.
    pub fn wants(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

/// The row keys an input touches, built into one reusable buffer.
#[derive(Debug, Default)]
pub struct Keys {
    buf: String,
    ends: Vec<usize>,
    /// Per key: true when it derives from the record's log sequence.
    fresh: Vec<bool>,
}

impl Keys {
    /// Empties the list, keeping its memory.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
        self.fresh.clear();
    }

    /// Adds a key.
    pub fn push(&mut self, key: &str) {
        self.buf.push_str(key);
        self.ends.push(self.buf.len());
        self.fresh.push(false);
    }

    /// Adds a key that derives from the record's log sequence, so no record
    /// before it can have stored a row under it: never loaded from storage
    /// (what `Projection::APPEND_ONLY` says of a whole view).
    pub fn push_fresh(&mut self, key: &str) {
        self.push(key);
        if let Some(f) = self.fresh.last_mut() {
            *f = true;
        }
    }

    /// True when the i-th key was added with [`Keys::push_fresh`].
    pub fn is_fresh(&self, i: usize) -> bool {
        self.fresh.get(i).copied().unwrap_or(false)
    }

    /// Adds a key made of string parts (cheaper than `push_fmt`).
    pub fn push_parts(&mut self, parts: &[&str]) {
        for p in parts {
            self.buf.push_str(p);
        }
        self.ends.push(self.buf.len());
        self.fresh.push(false);
    }

    /// Adds a key made of formatted parts.
    pub fn push_fmt(&mut self, args: std::fmt::Arguments<'_>) {
        let _ = self.buf.write_fmt(args);
        self.ends.push(self.buf.len());
        self.fresh.push(false);
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when no key was added.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The i-th key.
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }

    /// The keys in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// A materialized view: rows keyed by strings, changed by log records.
///
/// Contract: `keys` and `apply` must be pure and deterministic, and `keys`
/// must list distinct keys. `apply` receives the rows of exactly the keys
/// `keys` listed, in that order (a row never stored before is `Default`).
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use sundial_views::{Input, Keys, Projection};
///
/// /// Counts every record, valid or not.
/// struct Count;
/// #[derive(Default, Serialize, Deserialize)]
/// struct Total { n: u64 }
/// impl Projection for Count {
///     const NAME: &'static str = "count";
///     type Row = Total;
///     fn keys(&self, _input: &Input, keys: &mut Keys) { keys.push(""); }
///     fn apply(&self, _input: &Input, rows: &mut [&mut Total]) { rows[0].n += 1; }
/// }
/// ```
pub trait Projection: Send + Sync + 'static {
    /// Stable name: the storage key prefix and URL segment. Never rename.
    const NAME: &'static str;
    /// When true, every key is new when first listed (it derives from the log
    /// sequence), so rows are never loaded from storage.
    const APPEND_ONLY: bool = false;
    /// The records `keys` may list rows for: the others are never shown
    /// to the view. Wider than needed costs time; narrower is a bug.
    const INTEREST: Interest = Interest::ALL;
    /// One row of the view.
    type Row: Default + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// Lists the keys of the rows this input changes (none: not interested).
    fn keys(&self, input: &Input, keys: &mut Keys);
    /// Applies the input to the rows of the listed keys.
    fn apply(&self, input: &Input, rows: &mut [&mut Self::Row]);
    /// A row's stored bytes: [`encode_row`]'s. A view with many large rows
    /// may write the same bytes faster by hand.
    fn encode(row: &Self::Row) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        encode_row(row)
    }
}

/// Encodes a row for storage: compact MessagePack (structs as arrays). Rows
/// are `#[serde(default)]`, so a field added at the end of a row type still
/// reads older rows. Row fields must never be skipped when serializing (that
/// would shift the array positions).
pub fn encode_row<R: Serialize>(row: &R) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    // Room for a typical row at once, not four or five regrowths.
    let mut out = Vec::with_capacity(ROW_BYTES);
    rmp_serde::encode::write(&mut out, row)?;
    Ok(out)
}

/// A changed row that could not be encoded (a row type serde cannot
/// write): the batch it belongs to must not be committed.
#[derive(Debug, thiserror::Error)]
#[error("view {view} row {key:?} cannot be encoded: {source}")]
pub struct EncodeError {
    pub view: &'static str,
    pub key: String,
    #[source]
    pub source: rmp_serde::encode::Error,
}

/// Bytes reserved for an encoded row before encoding it.
const ROW_BYTES: usize = 256;

/// The ASCII digits of a number in a key, as [`hex16`] and [`dec20`]
/// write them: a `&str` without a UTF-8 check (that check was ~1 % of a
/// rebuild, on keys built for every record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Digits<const N: usize>([u8; N]);

impl<const N: usize> Digits<N> {
    /// The digits as text.
    pub fn as_str(&self) -> &str {
        // SAFETY: a `Digits` is built only by `hex16` and `dec20` below,
        // which write ASCII digits and letters only: valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }
}

/// `n` as 16 lowercase hex digits, for keys that sort by number.
pub fn hex16(n: u64) -> Digits<16> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'0'; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = DIGITS[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    Digits(out)
}

/// `n` as 20 zero-padded decimal digits, for keys that sort by number.
pub fn dec20(n: u64) -> Digits<20> {
    let mut out = [b'0'; 20];
    let mut v = n;
    for b in out.iter_mut().rev() {
        if v == 0 {
            // The rest stays '0'.
            break;
        }
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
    Digits(out)
}

/// Decodes a stored row.
pub fn decode_row<R: DeserializeOwned>(bytes: &[u8]) -> Result<R, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::{dec20, hex16, Input, Interest, Keys, Projection, Record};
    use crate::testkit::{checkpoint, job_completed, scenario, stage_started, Ev};
    use crate::Message;

    #[test]
    fn a_row_serde_cannot_write_is_an_error_not_empty_bytes() {
        struct Unwritable;
        impl serde::Serialize for Unwritable {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("unwritable"))
            }
        }
        let e = super::encode_row(&Unwritable).unwrap_err();
        assert!(e.to_string().contains("unwritable"), "{e}");
    }

    /// Asserts that `p` lists no row for any record its interest leaves out.
    fn never_misses<P: Projection>(p: P, inputs: &[Input]) {
        let mut keys = Keys::default();
        for input in inputs {
            keys.clear();
            p.keys(input, &mut keys);
            let wanted = P::INTEREST.wants(Interest::bit(input));
            assert!(
                wanted || keys.is_empty(),
                "{} skips {:?}",
                P::NAME,
                input.record
            );
        }
    }

    #[test]
    fn every_view_is_shown_every_record_it_lists_rows_for() {
        let mut evs = scenario();
        // Types the scenario leaves out, and a checkpoint of each status.
        evs.extend([
            job_completed(300.0, 90),
            stage_started("map", 100.5, 91),
            checkpoint(9, "triggered", 101.0, 92),
            checkpoint(9, "completed", 102.0, 93),
            checkpoint(10, "failed", 103.0, 94),
        ]);
        let texts: Vec<String> = evs
            .iter()
            .filter_map(|e| match e {
                Ev::Msg(v) => Some(v.to_string()),
                Ev::Dead(_) => None,
            })
            .collect();
        let msgs: Vec<Message> = texts
            .iter()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect();
        let mut inputs = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            let seq = i as u64 + 1;
            let record = Record::Applied {
                msg: m,
                missing_delta: 0,
            };
            inputs.push(Input { seq, record });
            inputs.push(Input {
                seq,
                record: Record::Duplicate(m),
            });
        }
        for e in &evs {
            if let Ev::Dead(d) = e {
                inputs.push(Input {
                    seq: 1,
                    record: Record::Dead {
                        dead: d,
                        missing_delta: 0,
                    },
                });
            }
        }
        // Every message type is in the scenario, or this proves little.
        let mut kinds: Vec<_> = msgs.iter().map(|m| m.kind).collect();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds, crate::Kind::ALL.to_vec());
        never_misses(crate::job::JobView, &inputs);
        never_misses(crate::stage::StageView, &inputs);
        never_misses(crate::worker::WorkerView, &inputs);
        never_misses(crate::metrics::MetricsView, &inputs);
        never_misses(crate::exceptions::ExceptionView, &inputs);
        never_misses(crate::exception_groups::ExceptionGroupView, &inputs);
        never_misses(crate::lineage::LineageView, &inputs);
        never_misses(crate::checkpoints::CheckpointView, &inputs);
        never_misses(crate::dead_letters::DeadLetterView, &inputs);
        never_misses(crate::duplicates::DuplicateView, &inputs);
        never_misses(crate::timeline::TimelineView, &inputs);
        never_misses(crate::sequences::Sequences, &inputs);
        assert_eq!(
            crate::registry(true).len(),
            11,
            "a view added: check it here"
        );
    }

    #[test]
    fn key_digits_are_fixed_width_and_sort_as_the_numbers_do() {
        let cases = [
            0,
            1,
            9,
            10,
            255,
            1_767_772_800,
            1 << 40,
            u64::MAX - 1,
            u64::MAX,
        ];
        for n in cases {
            assert_eq!(dec20(n).as_str(), format!("{n:020}"));
            assert_eq!(hex16(n).as_str(), format!("{n:016x}"));
        }
        for w in cases.windows(2) {
            assert!(dec20(w[0]) < dec20(w[1]) && hex16(w[0]) < hex16(w[1]));
        }
    }
}
