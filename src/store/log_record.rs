//! One record of the event log, owned (as read) and borrowed (as written):
//! the type the log's writer and its fast segment reader share.

use bytes::Bytes;
use serde::Serialize;

/// One raw record as stored in the log.
#[derive(Debug, Clone, PartialEq)]
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
    /// The record's bytes (a slice of its segment's buffer when read).
    pub value: Bytes,
}

/// A borrowed `LogRecord`, to write a segment without copying values.
#[derive(Clone, Serialize)]
pub struct LogRecordRef<'a> {
    pub seq: u64,
    pub partition: i32,
    pub offset: i64,
    pub arrival_ms: u64,
    pub content_type: Option<&'a str>,
    #[serde(with = "serde_bytes")]
    pub value: &'a [u8],
}
