//! The projection contract: what a view author writes (`Projection`), what a
//! projection sees for each log record (`Input`), and the rows-as-keys model.
//! A projection is pure: the same inputs in the same order always give the
//! same rows. It never does I/O; the engine loads and stores its rows.

use std::fmt::Write as _;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::event::Message;

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
    /// A record that did not decode or validate.
    Dead(&'m DeadLetter),
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
    /// One row of the view.
    type Row: Default + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// Lists the keys of the rows this input changes (none: not interested).
    fn keys(&self, input: &Input, keys: &mut Keys);
    /// Applies the input to the rows of the listed keys.
    fn apply(&self, input: &Input, rows: &mut [&mut Self::Row]);
}

/// Encodes a row for storage: compact MessagePack (structs as arrays). Rows
/// are `#[serde(default)]`, so a field added at the end of a row type still
/// reads older rows. Row fields must never be skipped when serializing (that
/// would shift the array positions).
pub fn encode_row<R: Serialize>(row: &R) -> Vec<u8> {
    // Room for a typical row at once, not four or five regrowths.
    let mut out = Vec::with_capacity(ROW_BYTES);
    // Rows are plain data: serialization cannot fail.
    match rmp_serde::encode::write(&mut out, row) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
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
    use super::{dec20, hex16};

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
