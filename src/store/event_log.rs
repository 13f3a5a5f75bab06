//! The key layout of an attempt's database and the event log in it. Every
//! record is kept raw with its log sequence, source coordinates and arrival
//! time, in segments of one ingest batch each (one key per batch, not per
//! record, so a rebuild scans few keys). A segment is keyed by its LAST
//! sequence, so the segment holding sequence N is the first key >= N.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use crate::store::log_record::{LogRecord, LogRecordRef};

/// Prefix of log segments.
pub const LOG_PREFIX: &str = "l/";
/// Prefix of view rows: `v/{view}/{key}`.
pub const VIEW_PREFIX: &str = "v/";
/// Where the projector's position is stored.
pub const POSITION_KEY: &str = "m/position";
/// Where the attempt's identity is stored.
pub const ATTEMPT_KEY: &str = "m/attempt";

/// A `LogRecord` as the generic MessagePack decoder reads it.
#[derive(Deserialize)]
struct StoredRecord {
    seq: u64,
    partition: i32,
    offset: i64,
    arrival_ms: u64,
    content_type: Option<String>,
    value: serde_bytes::ByteBuf,
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
    /// In `attempt.json` only: true from a replay's (or an in-place view
    /// rebuild's) first write until it sealed the attempt (see
    /// `attempt_state`); false (and left out) for complete attempts and
    /// the daemon's.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub in_progress: bool,
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

/// Marks a Zstandard-compressed segment, what is written today (a plain
/// one starts with a MessagePack array marker, never 0x00).
const ZSTD_MAGIC: &[u8] = b"\0ZST";
/// Marks an LZ4-compressed segment, what was written before; still read.
const LZ4_MAGIC: &[u8] = b"\0LZ4";
/// Zstandard level of segments: level 1 compresses these records faster
/// than LZ4 did and twice as small (figures: docs/performance.md, "Measured choices in the code").
const ZSTD_LEVEL: i32 = 1;

/// Encodes a segment: MessagePack, compressed once here, so SlateDB moves
/// (WAL, flush, compactions) an eighth of the bytes and never compresses
/// them again.
pub fn encode_segment(records: &[LogRecordRef]) -> Result<Vec<u8>, SegmentError> {
    let (mut raw, mut out) = (Vec::new(), Vec::new());
    encode_segment_into(records, &mut raw, &mut out)?;
    Ok(out)
}

/// `encode_segment` into reused buffers (`raw` is scratch): a batch's
/// segment is megabytes, and fresh buffers of that size cost page faults.
/// An error when the records cannot be encoded: the batch must then not be
/// committed (the log is the source of truth).
pub fn encode_segment_into(
    records: &[LogRecordRef],
    raw: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(), SegmentError> {
    raw.clear();
    out.clear();
    rmp_serde::encode::write(raw, records)?;
    let head = ZSTD_MAGIC.len() + 4;
    out.resize(head + zstd::zstd_safe::compress_bound(raw.len()), 0);
    out[..ZSTD_MAGIC.len()].copy_from_slice(ZSTD_MAGIC);
    out[ZSTD_MAGIC.len()..head].copy_from_slice(&(raw.len() as u32).to_le_bytes());
    let n = zstd::bulk::compress_to_buffer(raw, &mut out[head..], ZSTD_LEVEL)
        .map_err(SegmentError::Zstd)?;
    out.truncate(head + n);
    Ok(())
}

/// Why a segment could not be read (or written).
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("lz4: {0}")]
    Lz4(#[from] lz4_flex::block::DecompressError),
    #[error("zstd: {0}")]
    Zstd(std::io::Error),
    #[error("segment header cut short")]
    Truncated,
    #[error("msgpack: {0}")]
    MsgPack(#[from] rmp_serde::decode::Error),
    #[error("cannot encode: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

/// Decodes a segment: Zstandard, LZ4 (older logs) or plain.
pub fn decode_segment(bytes: &[u8]) -> Result<Vec<LogRecord>, SegmentError> {
    let raw = if let Some(packed) = bytes.strip_prefix(ZSTD_MAGIC) {
        let (len, frame) = packed.split_at_checked(4).ok_or(SegmentError::Truncated)?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        zstd::bulk::decompress(frame, len).map_err(SegmentError::Zstd)?
    } else if let Some(packed) = bytes.strip_prefix(LZ4_MAGIC) {
        lz4_flex::decompress_size_prepended(packed)?
    } else {
        return decode_plain(bytes);
    };
    let raw = Bytes::from(raw);
    match crate::store::segment_read::records(&raw) {
        Some(records) => Ok(records),
        None => decode_plain(&raw),
    }
}

/// Decodes an uncompressed segment with the generic MessagePack decoder
/// (any shape serde reads, values copied).
pub fn decode_plain(raw: &[u8]) -> Result<Vec<LogRecord>, SegmentError> {
    let stored: Vec<StoredRecord> = rmp_serde::from_slice(raw)?;
    Ok(stored
        .into_iter()
        .map(|r| LogRecord {
            seq: r.seq,
            partition: r.partition,
            offset: r.offset,
            arrival_ms: r.arrival_ms,
            content_type: r.content_type,
            value: Bytes::from(r.value.into_vec()),
        })
        .collect())
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
        let packed = encode_segment(&refs).unwrap();
        let plain = rmp_serde::to_vec(&refs).unwrap();
        assert!(
            packed.len() < plain.len() / 2,
            "{} vs {}",
            packed.len(),
            plain.len()
        );
        assert!(packed.starts_with(ZSTD_MAGIC));
        let a = decode_segment(&packed).unwrap();
        assert_eq!(a, decode_segment(&plain).unwrap());
        // Logs written before Zstandard hold LZ4 segments.
        let mut lz4 = LZ4_MAGIC.to_vec();
        lz4.extend(lz4_flex::compress_prepend_size(&plain));
        assert_eq!(a, decode_segment(&lz4).unwrap());
        assert_eq!(a.len(), 100);
        assert_eq!(a[3].content_type.as_deref(), Some("application/json"));
        assert_eq!(a[99].value, values[99]);
        assert!(decode_segment(b"\0LZ4garbage").is_err());
        assert!(decode_segment(b"\0ZSTgarbage").is_err());
        assert!(decode_segment(b"\0ZST\x01").is_err());
        let mut short = packed.clone();
        short[ZSTD_MAGIC.len()] = short[ZSTD_MAGIC.len()].wrapping_sub(1);
        assert!(
            decode_segment(&short).is_err(),
            "a wrong raw length is an error"
        );
    }
}
