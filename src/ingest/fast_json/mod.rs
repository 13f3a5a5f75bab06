//! A reader of the three commonest JSON messages (`worker_metrics`,
//! `split_processed`: 75–95 % of the simulator's streams; `stage_metrics`,
//! a few percent, but 5.7–7 µs each the generic way for its free-form
//! partition map, which stays text here) written for their exact shape:
//! first in their producer's key order (`in_order.rs`, one comparison per
//! key), then in any order, about 2.7 times serde_json's rate
//! (figures: docs/performance.md, "Measured choices in the code"). It only
//! ever answers what that path would: on anything it is not sure of (an
//! escape, an exponent, a negative number, an unknown or repeated key,
//! another message type) it declines, and `codec::decode` decodes the
//! record the generic way, which also words every error. Numbers are
//! converted as serde_json 1.x converts them without its `float_roundtrip`
//! feature, so both paths give the same bits; the tests compare them on
//! every simulated record, on mutations and on random decimals, and would
//! fail if that feature were ever switched on.

use std::borrow::Cow;

mod in_order;

use sundial_views::event::{
    Finite, Kind, Message, PartitionMetrics, Payload, SplitProcessed, StageMetrics, WorkerMetrics,
};

/// Nesting a free-form JSON value may have here; deeper ones are left to
/// the generic decoder (which has its own limit).
const MAX_VALUE_DEPTH: usize = 8;

/// Decodes `text` if it is a plain `worker_metrics`, `split_processed` or
/// `stage_metrics` message; `None` means "use the generic decoder", never
/// "invalid".
pub fn decode(text: &str) -> Option<Message<'_>> {
    let mut r = Reader::new(text);
    let msg = match r.message_in_order() {
        Some(msg) => msg,
        None => {
            r = Reader::new(text);
            r.message()?
        }
    };
    r.ws();
    (r.at == r.b.len()).then_some(msg)
}

/// Powers of ten as serde_json holds them (each the correctly rounded
/// literal `1eN`), for its float conversion `significand / 10^digits`.
fn pow10(n: usize) -> Option<f64> {
    const TABLE: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    TABLE.get(n).copied()
}

/// Where the first `"`, `\\` or control character of `b` is (its length
/// if none), eight bytes at a time: strings are most of a record.
fn special(b: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(chunk) = b.get(at..at + 8) {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let quote = x ^ (ONES * u64::from(b'"'));
        let slash = x ^ (ONES * u64::from(b'\\'));
        // A byte's high bit set where it is zero (quote, slash) or below
        // 0x20; exact for the lowest such byte, which is all we use.
        let hit = ((quote.wrapping_sub(ONES) & !quote)
            | (slash.wrapping_sub(ONES) & !slash)
            | (x.wrapping_sub(ONES * 0x20) & !x))
            & HIGH;
        if hit != 0 {
            return at + (hit.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + b[at..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .unwrap_or(b.len() - at)
}

/// A cursor over the record's bytes.
struct Reader<'a> {
    text: &'a str,
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A cursor at the start of `text`.
    fn new(text: &'a str) -> Self {
        Reader {
            text,
            b: text.as_bytes(),
            at: 0,
        }
    }

    /// Skips JSON whitespace (the same four bytes serde_json skips).
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.at += 1)
    }

    /// A string without escapes or control characters, borrowed.
    fn str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        self.at = start + special(&self.b[start..]);
        if *self.b.get(self.at)? != b'"' {
            return None;
        }
        // Cut at ASCII quotes of valid UTF-8: on character boundaries.
        let s = self.text.get(start..self.at);
        self.at += 1;
        s
    }

    /// Digits appended to `value`: the new value (None on overflow) and
    /// how many digits were read.
    fn digits(&mut self, mut value: u64) -> Option<(u64, i32)> {
        let mut n = 0;
        while let Some(&c @ b'0'..=b'9') = self.b.get(self.at) {
            value = value.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.at += 1;
            n += 1;
        }
        Some((value, n))
    }

    /// The integer part of a number: no sign, no leading zeros.
    fn integer(&mut self) -> Option<u64> {
        match self.peek()? {
            b'0' => {
                self.at += 1;
                match self.b.get(self.at) {
                    Some(b'0'..=b'9') => None,
                    _ => Some(0),
                }
            }
            b'1'..=b'9' => Some(self.digits(0)?.0),
            _ => None,
        }
    }

    /// A JSON integer into a `u64` field.
    fn u64(&mut self) -> Option<u64> {
        let v = self.integer()?;
        match self.b.get(self.at) {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(v),
        }
    }

    /// A JSON integer into an `i64` field (non-negative ones only).
    fn i64(&mut self) -> Option<i64> {
        i64::try_from(self.u64()?).ok()
    }

    /// A non-negative number without exponent into an `f64` field, to the
    /// bit what serde_json computes: an integer is cast, a decimal is its
    /// digits as one integer divided by a power of ten.
    fn f64(&mut self) -> Option<Finite> {
        let int = self.integer()?;
        match self.b.get(self.at) {
            Some(b'.') => {
                self.at += 1;
                let (significand, n) = self.digits(int)?;
                if n == 0 || matches!(self.b.get(self.at), Some(b'e' | b'E')) {
                    return None;
                }
                Some(Finite(significand as f64 / pow10(n as usize)?))
            }
            Some(b'e' | b'E') => None,
            _ => Some(Finite(int as f64)),
        }
    }

    fn bool(&mut self) -> Option<bool> {
        self.ws();
        let rest = &self.b[self.at..];
        let (v, n) = if rest.starts_with(b"true") {
            (true, 4)
        } else if rest.starts_with(b"false") {
            (false, 5)
        } else {
            return None;
        };
        self.at += n;
        Some(v)
    }

    /// `null` (true) or something else (false, nothing read).
    fn null(&mut self) -> bool {
        self.ws();
        let is = self.b[self.at..].starts_with(b"null");
        if is {
            self.at += 4;
        }
        is
    }

    /// `value` or `null` into an optional field.
    fn opt<T>(&mut self, value: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.null() {
            Some(None)
        } else {
            value(self).map(Some)
        }
    }

    /// An array, each element read by `item`.
    fn array<T, C: Default + Extend<T>>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<C> {
        self.eat(b'[')?;
        let mut out = C::default();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(out);
        }
        loop {
            out.extend(Some(item(self)?));
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(out);
                }
                _ => return None,
            }
        }
    }

    /// An object whose keys `field` reads the values of; `field` answers
    /// the key's bit (each key may come once) or `None` to decline.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<u32>) -> Option<u32> {
        self.eat(b'{')?;
        let mut seen = 0u32;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(seen);
        }
        loop {
            let key = self.str()?;
            self.eat(b':')?;
            let bit = field(self, key)?;
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(seen);
                }
                _ => return None,
            }
        }
    }

    fn message(&mut self) -> Option<Message<'a>> {
        let (mut kind, mut job_id, mut source_id) = (None, None, None);
        let (mut timestamp, mut sequence, mut payload) = (None, None, None);
        let seen = self.object(|r, key| match key {
            "message_type" => {
                kind = Some(match r.str()? {
                    "worker_metrics" => Kind::WorkerMetrics,
                    "split_processed" => Kind::SplitProcessed,
                    "stage_metrics" => Kind::StageMetrics,
                    _ => return None,
                });
                Some(1)
            }
            "job_id" => {
                job_id = Some(r.str()?);
                Some(2)
            }
            "source_id" => {
                source_id = Some(r.str()?);
                Some(4)
            }
            "timestamp" => {
                timestamp = Some(r.f64()?);
                Some(8)
            }
            "sequence" => {
                sequence = Some(r.opt(Self::u64)?);
                Some(16)
            }
            "payload" => {
                payload = Some(match kind? {
                    Kind::WorkerMetrics => Payload::WorkerMetrics(r.worker_metrics()?),
                    Kind::StageMetrics => Payload::StageMetrics(r.stage_metrics()?),
                    _ => Payload::SplitProcessed(r.split_processed()?),
                });
                Some(32)
            }
            _ => None,
        })?;
        // `sequence` may be absent (it is optional); all else is required.
        if seen | 16 != 63 {
            return None;
        }
        Some(Message {
            kind: kind?,
            job_id: Cow::Borrowed(job_id?),
            source_id: Cow::Borrowed(source_id?),
            timestamp: timestamp?.0,
            sequence: sequence.flatten(),
            payload: payload?,
        })
    }

    fn worker_metrics(&mut self) -> Option<WorkerMetrics<'a>> {
        let (mut stage_id, mut input, mut output, mut time) = (None, None, None, None);
        let (mut count, mut parts, mut running) = (None, None, None);
        let (mut cpu, mut memory, mut gpu) = (None, None, None);
        let seen = self.object(|r, key| {
            Some(match key {
                "stage_id" => {
                    stage_id = Some(r.str()?);
                    1
                }
                "input_records" => {
                    input = Some(r.u64()?);
                    2
                }
                "output_records" => {
                    output = Some(r.u64()?);
                    4
                }
                "processing_time" => {
                    time = Some(r.f64()?);
                    8
                }
                "processed_count" => {
                    count = Some(r.u64()?);
                    16
                }
                "assigned_partitions" => {
                    parts = Some(r.array(Self::i64)?);
                    32
                }
                "is_running" => {
                    running = Some(r.bool()?);
                    64
                }
                "cpu_percent" => {
                    cpu = r.opt(Self::f64)?;
                    128
                }
                "memory_bytes" => {
                    memory = r.opt(Self::u64)?;
                    256
                }
                "gpu_percent" => {
                    gpu = r.opt(Self::f64)?;
                    512
                }
                _ => return None,
            })
        })?;
        if seen & 127 != 127 {
            return None;
        }
        Some(WorkerMetrics {
            stage_id: Cow::Borrowed(stage_id?),
            input_records: input?,
            output_records: output?,
            processing_time: time?,
            processed_count: count?,
            assigned_partitions: parts?,
            is_running: running?,
            cpu_percent: cpu,
            memory_bytes: memory,
            gpu_percent: gpu,
        })
    }

    fn stage_metrics(&mut self) -> Option<StageMetrics<'a>> {
        let (mut workers, mut input, mut output) = (None, None, None);
        let (mut in_rate, mut out_rate, mut lag) = (None, None, None);
        let (mut pressure, mut partitions) = (None, None);
        self.object(|r, key| {
            Some(match key {
                "worker_count" => {
                    workers = Some(r.u64()?);
                    1
                }
                "input_records" => {
                    input = r.opt(Self::u64)?;
                    2
                }
                "output_records" => {
                    output = r.opt(Self::u64)?;
                    4
                }
                "input_throughput" => {
                    in_rate = r.opt(Self::f64)?;
                    8
                }
                "output_throughput" => {
                    out_rate = r.opt(Self::f64)?;
                    16
                }
                "queue_lag" => {
                    lag = r.opt(Self::u64)?;
                    32
                }
                "backpressure_active" => {
                    pressure = r.opt(Self::bool)?;
                    64
                }
                "partition_metrics" => {
                    partitions = r
                        .opt(Self::object_text)?
                        .map(|t| PartitionMetrics::Json(Cow::Borrowed(t)));
                    128
                }
                _ => return None,
            })
        })?;
        // Only `worker_count` is required: its `?` below declines without it.
        Some(StageMetrics {
            worker_count: workers?,
            input_records: input,
            output_records: output,
            input_throughput: in_rate,
            output_throughput: out_rate,
            queue_lag: lag,
            backpressure_active: pressure,
            partition_metrics: partitions,
        })
    }

    /// Steps over a free-form JSON value of the kinds serde_json surely
    /// reads (non-negative numbers without exponent that fit 64 bits,
    /// strings without escapes, nesting up to `MAX_VALUE_DEPTH`);
    /// anything else declines.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' | b'[' if depth >= MAX_VALUE_DEPTH => None,
            b'{' => self
                .object(|r, _| {
                    r.skip_value(depth + 1)?;
                    // Repeated keys are serde_json's business: never "seen".
                    Some(0)
                })
                .map(drop),
            b'[' => self.array::<_, ()>(|r| r.skip_value(depth + 1)),
            b'"' => self.str().map(drop),
            b't' | b'f' => self.bool().map(drop),
            b'n' => self.null().then_some(()),
            _ => self.f64().map(drop),
        }
    }

    /// A JSON object's text, checked by [`Reader::skip_value`].
    fn object_text(&mut self) -> Option<&'a str> {
        if self.peek()? != b'{' {
            return None;
        }
        let start = self.at;
        self.skip_value(0)?;
        self.text.get(start..self.at)
    }

    fn split_processed(&mut self) -> Option<SplitProcessed<'a>> {
        let (mut stage_id, mut split_id, mut parents, mut partition) = (None, None, None, None);
        let mut times: [Option<Finite>; 6] = [None; 6];
        let mut sizes: [Option<u64>; 4] = [None; 4];
        let (mut key, mut path) = (None, None);
        const TIMES: [&str; 6] = [
            "enqueue_time",
            "dequeue_time",
            "complete_time",
            "queue_wait_time_ms",
            "processing_time_ms",
            "processing_time",
        ];
        const SIZES: [&str; 4] = [
            "input_records",
            "output_records",
            "input_bytes",
            "output_bytes",
        ];
        let seen = self.object(|r, name| {
            Some(match name {
                "stage_id" => {
                    stage_id = Some(r.str()?);
                    1
                }
                "split_id" => {
                    split_id = Some(r.str()?);
                    2
                }
                "parent_split_ids" => {
                    parents = Some(r.array(|r| r.str().map(Cow::Borrowed))?);
                    4
                }
                "partition_id" => {
                    partition = r.opt(Self::i64)?;
                    8
                }
                "payload_store_key" => {
                    key = r.opt(Self::str)?;
                    16
                }
                "payload_storage_path" => {
                    path = r.opt(Self::str)?;
                    32
                }
                _ => {
                    if let Some(i) = TIMES.iter().position(|t| *t == name) {
                        times[i] = r.opt(Self::f64)?;
                        64 << i
                    } else {
                        let i = SIZES.iter().position(|s| *s == name)?;
                        // The record counts are required (null declines),
                        // the byte sizes optional.
                        sizes[i] = if i < 2 {
                            Some(r.u64()?)
                        } else {
                            r.opt(Self::u64)?
                        };
                        4096 << i
                    }
                }
            })
        })?;
        // Required: the ids and the record counts; the rest may be absent.
        const REQUIRED: u32 = 1 | 2 | 4 | 4096 | 8192;
        if seen & REQUIRED != REQUIRED {
            return None;
        }
        Some(SplitProcessed {
            stage_id: Cow::Borrowed(stage_id?),
            split_id: Cow::Borrowed(split_id?),
            parent_split_ids: parents?,
            partition_id: partition,
            enqueue_time: times[0],
            dequeue_time: times[1],
            complete_time: times[2],
            queue_wait_time_ms: times[3],
            processing_time_ms: times[4],
            processing_time: times[5],
            input_records: sizes[0]?,
            output_records: sizes[1]?,
            input_bytes: sizes[2],
            output_bytes: sizes[3],
            payload_store_key: key.map(Cow::Borrowed),
            payload_storage_path: path.map(Cow::Borrowed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{self, Scenario, SimConfig};

    /// What the generic decoder answers, printed so that floats compare
    /// by their bits (`Debug` tells -0.0 from 0.0).
    fn generic(text: &str) -> Option<String> {
        serde_json::from_str::<Message>(text)
            .ok()
            .map(|m| format!("{m:?}"))
    }

    /// Whether the fast path, when it answers, answers as the generic one.
    fn agrees(text: &str) -> bool {
        match decode(text) {
            Some(m) => generic(text) == Some(format!("{m:?}")),
            None => true,
        }
    }

    pub(super) fn corpus() -> Vec<String> {
        let mut out = Vec::new();
        for scenario in Scenario::ALL {
            let cfg = SimConfig::new("fj", scenario, 6_000);
            // Its malformed records that are not even UTF-8 never reach here.
            out.extend(simulate::simulate(&cfg).filter_map(|r| String::from_utf8(r).ok()));
        }
        let root = env!("CARGO_MANIFEST_DIR");
        for f in [
            "autoscale-completed",
            "exception-storm-failed",
            "solstice-defaults",
            "solstice-full",
        ] {
            let bytes = std::fs::read(format!("{root}/replay-fixtures/{f}/events.ndjson")).unwrap();
            out.extend(
                bytes
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .filter_map(|l| String::from_utf8(l.to_vec()).ok()),
            );
        }
        out
    }

    #[test]
    fn answers_what_the_generic_decoder_answers_on_every_simulated_record() {
        let corpus = corpus();
        let mut fast = 0;
        for text in &corpus {
            assert!(agrees(text), "differs on {text}");
            fast += usize::from(decode(text).is_some());
        }
        // It must actually take the common messages, or it is dead weight.
        assert!(
            fast * 2 > corpus.len(),
            "fast path took only {fast} of {}",
            corpus.len()
        );
    }

    #[test]
    fn mutated_records_are_declined_or_read_alike() {
        const BYTES: &[u8] = b"\"\\-.eE09 ,:}]{[nulltrfx\x01\t";
        let corpus: Vec<String> = corpus().into_iter().step_by(7).collect();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let (mut tried, mut taken) = (0, 0);
        for text in &corpus {
            for _ in 0..12 {
                let mut b = text.as_bytes().to_vec();
                let at = next(b.len());
                match next(4) {
                    0 => b[at] = BYTES[next(BYTES.len())],
                    1 => {
                        b.remove(at);
                    }
                    2 => b.insert(at, BYTES[next(BYTES.len())]),
                    _ => b.truncate(at),
                }
                let Ok(m) = String::from_utf8(b) else {
                    continue;
                };
                tried += 1;
                assert!(agrees(&m), "differs on {m}");
                taken += usize::from(decode(&m).is_some());
            }
        }
        // Many single-byte edits keep a record valid (a digit for a digit).
        assert!(taken * 20 > tried, "only {taken} of {tried} mutants read");
    }

    #[test]
    fn decimals_convert_to_the_same_bits() {
        let mut state = 12345u64;
        for i in 0..200_000u64 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let int = (state >> 33) % 10u64.pow((i % 11) as u32);
            let frac_digits = (i % 21) as usize;
            let frac = format!("{state:020}");
            let num = if frac_digits == 0 {
                format!("{int}")
            } else {
                format!("{int}.{}", &frac[..frac_digits])
            };
            let text = format!(
                r#"{{"message_type": "worker_metrics", "job_id": "j", "source_id": "w", "timestamp": {num}, "payload": {{"stage_id": "s", "input_records": 1, "output_records": 2, "processing_time": {num}, "processed_count": 1, "assigned_partitions": [], "is_running": false}}}}"#
            );
            assert!(agrees(&text), "differs on {num}");
        }
    }

    #[test]
    fn stage_metrics_partition_values_read_alike_or_decline() {
        let head = r#"{"message_type": "stage_metrics", "job_id": "j", "source_id": "s", "timestamp": 2.5, "payload": {"worker_count": 3, "queue_lag": null, "partition_metrics": "#;
        let taken = [
            r#"{"0": {"offset": 12, "lag": 0}, "1": {"offset": 7, "lag": 4}}"#,
            r#"{"0": {"rate": 0.1, "tags": ["a", "b"], "ok": true, "x": null, "n": {}}}"#,
            r#"{}"#,
            r#"null"#,
            r#"{"0": [[1, 2.25], [], {"deep": {"er": 18446744073709551615}}]}"#,
            r#"{"0": 1, "0": 2}"#,
            r#"{"0": {"a": 1, "a": [2]}}"#,
        ];
        let declined = [
            r#"{"0": {"lag": -1}}"#,
            r#"{"0": {"lag": 1e3}}"#,
            r#"{"\u0030": 1}"#,
            r#"[1]"#,
            r#"{"0": 01}"#,
            r#"{"0": 18446744073709551616}"#,
            r#"{"0": [[[[[[[[[1]]]]]]]]]}"#,
        ];
        for (pm, fast) in taken
            .iter()
            .map(|p| (p, true))
            .chain(declined.iter().map(|p| (p, false)))
        {
            let text = format!("{head}{pm}}}, \"sequence\": 4}}");
            assert_eq!(decode(&text).is_some(), fast, "{text}");
            if fast {
                assert!(generic(&text).is_some(), "{text}");
            }
            assert!(agrees(&text), "differs on {text}");
        }
        // Decimals inside the free-form map convert to serde_json's bits too.
        let mut state = 99u64;
        for i in 0..50_000u64 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let digits = format!("{state:020}");
            let num = format!("{}.{}", state >> 50, &digits[..(i % 14) as usize + 1]);
            let text = format!("{head}{{\"0\": {{\"rate\": {num}}}}}}}}}");
            assert!(decode(&text).is_some(), "{text}");
            assert!(agrees(&text), "differs on {num}");
        }
    }

    #[test]
    fn solstice_split_shapes_are_read_alike_and_optional_fields_may_be_absent_or_null() {
        // Exactly what Solstice's `split_processed_message` sends.
        let ok = r#"{"message_type": "split_processed", "job_id": "j", "source_id": "w", "timestamp": 1.5, "payload": {"stage_id": "s", "split_id": "a", "parent_split_ids": ["p"], "input_records": 1, "output_records": 2, "processing_time": 0.25}, "sequence": 1}"#;
        let m = decode(ok).expect("the factory's shape is taken");
        assert!(agrees(ok));
        let Payload::SplitProcessed(p) = &m.payload else {
            panic!("{m:?}")
        };
        assert_eq!((p.partition_id, p.processing_ms()), (None, Some(250.0)));
        // (from, to, fast reader takes it, generic decoder accepts it)
        for (from, to, fast, valid) in [
            (
                "\"processing_time\": 0.25",
                "\"processing_time\": 0.25, \"processing_time_ms\": 7.5",
                true,
                true,
            ),
            (", \"processing_time\": 0.25", "", true, true),
            (
                "\"processing_time\": 0.25",
                "\"processing_time\": null, \"partition_id\": null, \"enqueue_time\": null, \"input_bytes\": null, \"payload_store_key\": null, \"payload_storage_path\": null",
                true,
                true,
            ),
            (
                "\"processing_time\": 0.25",
                "\"partition_id\": 2, \"payload_store_key\": \"k\", \"output_bytes\": 9",
                true,
                true,
            ),
            // Unknown fields are ignored (by the generic decoder).
            ("\"processing_time\": 0.25", "\"attempt\": {\"n\": 1}", false, true),
            // A required field missing or null, or a wrong type: rejected.
            ("\"split_id\": \"a\", ", "", false, false),
            ("\"stage_id\": \"s\", ", "", false, false),
            ("\"parent_split_ids\": [\"p\"], ", "", false, false),
            ("\"input_records\": 1", "\"input_records\": null", false, false),
            (", \"output_records\": 2", "", false, false),
            ("0.25", "\"0.25\"", false, false),
            (
                "\"processing_time\": 0.25",
                "\"partition_id\": \"3\"",
                false,
                false,
            ),
            (
                "\"processing_time\": 0.25",
                "\"input_bytes\": -1",
                false,
                false,
            ),
            (
                "\"processing_time\": 0.25",
                "\"payload_store_key\": 7",
                false,
                false,
            ),
        ] {
            let text = ok.replace(from, to);
            assert_ne!(text, ok);
            assert_eq!(decode(&text).is_some(), fast, "{text}");
            assert_eq!(generic(&text).is_some(), valid, "{text}");
            assert!(agrees(&text), "differs on {text}");
        }
    }

    #[test]
    fn declines_what_it_does_not_know() {
        let ok = r#"{"message_type": "split_processed", "job_id": "j", "source_id": "w", "timestamp": 1.5, "payload": {"stage_id": "s", "split_id": "a", "parent_split_ids": ["p", "q"], "partition_id": 3, "enqueue_time": 1, "dequeue_time": 1.25, "complete_time": 2, "queue_wait_time_ms": 0.5, "processing_time_ms": 7, "input_records": 1, "output_records": 2, "input_bytes": 3, "output_bytes": 4, "payload_store_key": "k", "payload_storage_path": null}, "sequence": 9}"#;
        assert!(decode(ok).is_some());
        assert!(agrees(ok));
        for (from, to) in [
            ("\"a\"", "\"a\\u0062\""),
            ("1.25", "1.25e0"),
            ("\"partition_id\": 3", "\"partition_id\": -3"),
            ("\"sequence\": 9", "\"sequence\": 9, \"extra\": 1"),
            ("\"sequence\": 9", "\"sequence\": 9, \"job_id\": \"j\""),
            ("split_processed", "exception"),
            ("\"input_bytes\": 3", "\"input_bytes\": 3.0"),
            ("\"input_bytes\": 3", "\"input_bytes\": 03"),
            (
                "\"input_bytes\": 3",
                "\"input_bytes\": 99999999999999999999",
            ),
        ] {
            let bad = ok.replace(from, to);
            assert_ne!(bad, ok);
            assert!(decode(&bad).is_none(), "took {bad}");
        }
        // A payload before `message_type` is buffered by the generic decoder.
        let (head, payload) = ok.split_once(", \"payload\": ").unwrap();
        let (payload, tail) = payload.rsplit_once(", ").unwrap();
        let late = format!("{{\"payload\": {payload}, {}, {tail}", &head[1..]);
        assert!(serde_json::from_str::<Message>(&late).is_ok(), "{late}");
        assert!(decode(&late).is_none());
        assert!(decode(&format!("{ok} x")).is_none());
        assert!(decode(&format!(" {ok}\n")).is_some());
    }
}
