//! Reads the records of a decompressed log segment without copying their
//! values: each is a slice of the one segment buffer. Knows only the exact
//! shape `event_log::encode_segment_into` writes (a MessagePack array of
//! 6-element arrays: sequence, partition, offset, arrival, content type or
//! nil, binary value); on anything else it declines and the caller decodes
//! the segment the generic way. Reading a rebuild's log was a sixth of its
//! CPU, a third of that the generic decoder and its copies.

use bytes::Bytes;

use crate::store::log_record::LogRecord;

/// How far ahead of the record being read its successors' heads are
/// fetched: a few records.
const PREFETCH_BYTES: usize = 2048;

/// The records of `raw`, values sharing its buffer; `None` when `raw` is
/// not exactly the shape written today.
pub fn records(raw: &Bytes) -> Option<Vec<LogRecord>> {
    let mut r = Reader { b: raw, at: 0 };
    let n = r.array_len()?;
    let mut out = Vec::with_capacity(n.min(raw.len() / 8));
    for _ in 0..n {
        // Only each record's head is read, ~430 bytes apart: a stride the
        // hardware did not follow (this read was most of the parse).
        sundial_views::prefetch::bytes(raw, r.at + PREFETCH_BYTES);
        if r.array_len()? != 6 {
            return None;
        }
        let seq = r.uint()?;
        let partition = i32::try_from(r.int()?).ok()?;
        let offset = r.int()?;
        let arrival_ms = r.uint()?;
        let content_type = r.str_or_nil()?.map(str::to_owned);
        let (from, to) = r.bin()?;
        out.push(LogRecord {
            seq,
            partition,
            offset,
            arrival_ms,
            content_type,
            value: raw.slice(from..to),
        });
    }
    (r.at == raw.len()).then_some(out)
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let x = *self.b.get(self.at)?;
        self.at += 1;
        Some(x)
    }

    fn be(&mut self, n: usize) -> Option<u64> {
        let s = self.b.get(self.at..self.at + n)?;
        self.at += n;
        Some(s.iter().fold(0u64, |acc, x| acc << 8 | u64::from(*x)))
    }

    fn array_len(&mut self) -> Option<usize> {
        let n = match self.byte()? {
            m @ 0x90..=0x9f => u64::from(m & 0x0f),
            0xdc => self.be(2)?,
            0xdd => self.be(4)?,
            _ => return None,
        };
        usize::try_from(n).ok()
    }

    fn uint(&mut self) -> Option<u64> {
        match self.byte()? {
            m @ 0x00..=0x7f => Some(u64::from(m)),
            0xcc => self.be(1),
            0xcd => self.be(2),
            0xce => self.be(4),
            0xcf => self.be(8),
            _ => None,
        }
    }

    fn int(&mut self) -> Option<i64> {
        let m = *self.b.get(self.at)?;
        match m {
            0x00..=0x7f | 0xcc..=0xcf => i64::try_from(self.uint()?).ok(),
            0xe0..=0xff => {
                self.at += 1;
                Some(i64::from(m as i8))
            }
            0xd0..=0xd3 => {
                self.at += 1;
                let n = 1usize << (m - 0xd0);
                let v = self.be(n)?;
                // Sign-extend from n bytes.
                let shift = 64 - 8 * n as u32;
                Some(((v << shift) as i64) >> shift)
            }
            _ => None,
        }
    }

    fn str_or_nil(&mut self) -> Option<Option<&str>> {
        let len = match self.byte()? {
            0xc0 => return Some(None),
            m @ 0xa0..=0xbf => u64::from(m & 0x1f),
            0xd9 => self.be(1)?,
            0xda => self.be(2)?,
            0xdb => self.be(4)?,
            _ => return None,
        };
        let (from, to) = self.span(len)?;
        std::str::from_utf8(&self.b[from..to]).ok().map(Some)
    }

    fn bin(&mut self) -> Option<(usize, usize)> {
        let len = match self.byte()? {
            0xc4 => self.be(1)?,
            0xc5 => self.be(2)?,
            0xc6 => self.be(4)?,
            _ => return None,
        };
        self.span(len)
    }

    fn span(&mut self, len: u64) -> Option<(usize, usize)> {
        let from = self.at;
        let to = from.checked_add(usize::try_from(len).ok()?)?;
        if to > self.b.len() {
            return None;
        }
        self.at = to;
        Some((from, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::event_log::LogRecordRef;

    /// What the generic decoder reads from the same bytes.
    fn generic(raw: &[u8]) -> Vec<LogRecord> {
        crate::store::event_log::decode_plain(raw).unwrap()
    }

    #[test]
    fn every_field_shape_reads_as_the_generic_decoder_reads_it() {
        let big = vec![b'x'; 70_000];
        let values: Vec<Vec<u8>> = vec![
            b"{}".to_vec(),
            Vec::new(),
            vec![0xde, 0, 1],
            vec![b'y'; 300],
            big,
        ];
        let cts = [
            None,
            Some("application/json"),
            Some(""),
            Some(&*"c".repeat(40)),
        ];
        let nums: [(u64, i32, i64, u64); 6] = [
            (1, -1, 0, 0),
            (127, 0, 127, 128),
            (128, 1, -33, 255),
            (65_536, i32::MAX, i64::MAX, u64::MAX),
            (u64::MAX, i32::MIN, i64::MIN, 1 << 32),
            (300, -129, -40_000, 70_000),
        ];
        let mut refs = Vec::new();
        for (i, (seq, partition, offset, arrival_ms)) in nums.into_iter().enumerate() {
            for (j, v) in values.iter().enumerate() {
                refs.push(LogRecordRef {
                    seq,
                    partition,
                    offset: offset.wrapping_add(j as i64),
                    arrival_ms,
                    content_type: cts[(i + j) % cts.len()],
                    value: v,
                });
            }
        }
        let raw = rmp_serde::to_vec(&refs).unwrap();
        let fast = records(&Bytes::from(raw.clone())).expect("today's shape");
        assert_eq!(fast, generic(&raw));
        assert_eq!(fast.len(), refs.len());
        // More than 15 and more than 65 535 records (array headers).
        for n in [16usize, 70_000] {
            let many: Vec<LogRecordRef> = (0..n).map(|_| refs[0].clone()).collect();
            let raw = rmp_serde::to_vec(&many).unwrap();
            assert_eq!(records(&Bytes::from(raw.clone())).unwrap(), generic(&raw));
        }
    }

    #[test]
    fn anything_else_is_declined() {
        let one = [LogRecordRef {
            seq: 1,
            partition: 0,
            offset: 0,
            arrival_ms: 0,
            content_type: None,
            value: b"{}",
        }];
        let raw = rmp_serde::to_vec(&one).unwrap();
        assert!(records(&Bytes::from(raw.clone())).is_some());
        for cut in 0..raw.len() {
            assert!(
                records(&Bytes::copy_from_slice(&raw[..cut])).is_none(),
                "cut at {cut}"
            );
        }
        let mut trailing = raw.clone();
        trailing.push(0);
        assert!(records(&Bytes::from(trailing)).is_none());
        // Named fields (a map per record) are not today's shape.
        let named = rmp_serde::to_vec_named(&one).unwrap();
        assert!(records(&Bytes::from(named.clone())).is_none());
        assert_eq!(generic(&named)[0].seq, 1);
    }
}
