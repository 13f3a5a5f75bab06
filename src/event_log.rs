//! The key layout of an attempt's database and the event log in it. Every
//! record is kept raw with its log sequence, source coordinates and arrival
//! time, in segments of one ingest batch each (one key per batch, not per
//! record, so a rebuild scans few keys). A segment is keyed by its LAST
//! sequence, so the segment holding sequence N is the first key >= N.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Prefix of log segments.
pub const LOG_PREFIX: &str = "l/";
/// Prefix of view rows: `v/{view}/{key}`.
pub const VIEW_PREFIX: &str = "v/";
/// Where the projector's position is stored.
pub const POSITION_KEY: &str = "m/position";
/// Where the attempt's identity is stored.
pub const ATTEMPT_KEY: &str = "m/attempt";

/// One raw record as stored in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Log sequence, from 1.
    pub seq: u64,
    /// Source partition (-1 for a file or stdin).
    pub partition: i32,
    /// Offset in the partition (record index for a file).
    pub offset: i64,
    /// Wall-clock arrival in ms since the epoch (never used by views).
    pub arrival_ms: u64,
    pub content_type: Option<String>,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

/// A borrowed `LogRecord`, to write a segment without copying values.
#[derive(Serialize)]
pub struct LogRecordRef<'a> {
    pub seq: u64,
    pub partition: i32,
    pub offset: i64,
    pub arrival_ms: u64,
    pub content_type: Option<&'a str>,
    #[serde(with = "serde_bytes")]
    pub value: &'a [u8],
}

/// How far the projector got: next log sequence and next offset per partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Position {
    /// The sequence the next record will get (1 for an empty log).
    pub next_seq: u64,
    /// Per source partition, the next offset to read.
    pub partitions: BTreeMap<i32, i64>,
}

/// The identity of an attempt, written when it is created.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttemptMeta {
    pub job_id: String,
    pub attempt_id: String,
    /// Wall-clock creation time in ms: picks the latest attempt.
    pub created_ms: u64,
    /// Where its records came from (`file:…`, `kafka:…`, `log:…`).
    pub source: String,
}

/// Key of the segment whose last record has sequence `last_seq`.
pub fn segment_key(last_seq: u64) -> String {
    format!("{LOG_PREFIX}{last_seq:016x}")
}

/// Key of a view row.
pub fn view_key(view: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(VIEW_PREFIX.len() + view.len() + 1 + key.len());
    k.extend_from_slice(VIEW_PREFIX.as_bytes());
    k.extend_from_slice(view.as_bytes());
    k.push(b'/');
    k.extend_from_slice(key.as_bytes());
    k
}

/// Marks an LZ4-compressed segment (a plain one starts with a MessagePack
/// array marker, never 0x00).
const LZ4_MAGIC: &[u8] = b"\0LZ4";

/// Encodes a segment: MessagePack, LZ4-compressed once here, so SlateDB
/// moves (WAL, flush, compactions) a third of the bytes and never
/// compresses them again.
pub fn encode_segment(records: &[LogRecordRef]) -> Vec<u8> {
    let (mut raw, mut out) = (Vec::new(), Vec::new());
    encode_segment_into(records, &mut raw, &mut out);
    out
}

/// `encode_segment` into reused buffers (`raw` is scratch): a batch's
/// segment is megabytes, and fresh buffers of that size cost page faults.
pub fn encode_segment_into(records: &[LogRecordRef], raw: &mut Vec<u8>, out: &mut Vec<u8>) {
    raw.clear();
    out.clear();
    if rmp_serde::encode::write(raw, records).is_err() {
        return;
    }
    let max = lz4_flex::block::get_maximum_output_size(raw.len());
    out.resize(LZ4_MAGIC.len() + 4 + max, 0);
    out[..LZ4_MAGIC.len()].copy_from_slice(LZ4_MAGIC);
    let len_at = LZ4_MAGIC.len();
    out[len_at..len_at + 4].copy_from_slice(&(raw.len() as u32).to_le_bytes());
    match lz4_flex::block::compress_into(raw, &mut out[len_at + 4..]) {
        Ok(n) => out.truncate(len_at + 4 + n),
        Err(_) => out.clear(),
    }
}

/// Why a stored segment could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("lz4: {0}")]
    Lz4(#[from] lz4_flex::block::DecompressError),
    #[error("msgpack: {0}")]
    MsgPack(#[from] rmp_serde::decode::Error),
}

/// Decodes a segment, compressed or not.
pub fn decode_segment(bytes: &[u8]) -> Result<Vec<LogRecord>, SegmentError> {
    match bytes.strip_prefix(LZ4_MAGIC) {
        Some(packed) => {
            let raw = lz4_flex::decompress_size_prepended(packed)?;
            Ok(rmp_serde::from_slice(&raw)?)
        }
        None => Ok(rmp_serde::from_slice(bytes)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip_compressed_and_plain_ones_still_read() {
        let values: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("{{\"message_type\": \"worker_metrics\", \"n\": {i}}}").into_bytes())
            .collect();
        let refs: Vec<LogRecordRef> = values
            .iter()
            .enumerate()
            .map(|(i, v)| LogRecordRef {
                seq: i as u64 + 1,
                partition: 0,
                offset: i as i64,
                arrival_ms: 7,
                content_type: (i == 3).then_some("application/json"),
                value: v,
            })
            .collect();
        let packed = encode_segment(&refs);
        let plain = rmp_serde::to_vec(&refs).unwrap();
        assert!(
            packed.len() < plain.len() / 2,
            "{} vs {}",
            packed.len(),
            plain.len()
        );
        let a = decode_segment(&packed).unwrap();
        assert_eq!(a, decode_segment(&plain).unwrap());
        assert_eq!(a.len(), 100);
        assert_eq!(a[3].content_type.as_deref(), Some("application/json"));
        assert_eq!(a[99].value, values[99]);
        assert!(decode_segment(b"\0LZ4garbage").is_err());
    }
}
