//! The raw record every source yields and every later stage reads: its own
//! module, so sources, batch preparation and the engine share it without
//! importing each other.

/// One raw record from a source.
#[derive(Debug, Clone, Default)]
pub struct SourceRecord {
    pub partition: i32,
    pub offset: i64,
    pub arrival_ms: u64,
    pub content_type: Option<String>,
    pub value: bytes::Bytes,
}
