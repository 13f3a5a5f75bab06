//! The largest record a source takes whole. A bigger one (a 50 MB JSON
//! line, a runaway MessagePack value) would cost its size in memory at
//! every step and in every answer that lists it; it becomes a dead letter
//! instead, stored as its first [`OVERSIZE_KEPT`] bytes under a content
//! type that records its real size, so a rebuild from the log rejects it
//! for the same reason, byte for byte.

use bytes::Bytes;

/// Default largest record, in bytes (`--max-record-bytes`).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// Bytes of an oversized record kept in the log for people to look at.
pub const OVERSIZE_KEPT: usize = 1024;

/// The content type marking a stored record as the cut-off start of one
/// that was over the limit: `application/x-sundial-oversize; bytes=N; limit=M`.
pub const OVERSIZE_TYPE: &str = "application/x-sundial-oversize";

/// What a source stores for a record of `total` bytes over `limit`, given
/// its first bytes (at least [`OVERSIZE_KEPT`] of them when it had them):
/// the kept bytes and the content type that marks them.
pub fn oversize(first: &[u8], total: u64, limit: usize) -> (Bytes, String) {
    let kept = &first[..first.len().min(OVERSIZE_KEPT)];
    (
        Bytes::copy_from_slice(kept),
        format!("{OVERSIZE_TYPE}; bytes={total}; limit={limit}"),
    )
}

/// The dead-letter reason of a record stored as oversized, from its
/// content type; `None` for any other record.
pub fn rejected(content_type: Option<&str>) -> Option<String> {
    let params = content_type?.strip_prefix(OVERSIZE_TYPE)?;
    let field = |name: &str| {
        params
            .split(';')
            .find_map(|p| p.trim().strip_prefix(name)?.strip_prefix('='))
            .unwrap_or("?")
    };
    Some(format!(
        "record of {} bytes is over the limit of {} bytes (--max-record-bytes); its first {OVERSIZE_KEPT} bytes are kept",
        field("bytes"),
        field("limit")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_record_keeps_its_start_and_says_why_it_was_rejected() {
        let big = vec![b'x'; 5000];
        let (kept, ct) = oversize(&big, 52_428_800, 1 << 20);
        assert_eq!(kept.len(), OVERSIZE_KEPT);
        assert_eq!(
            rejected(Some(&ct)).unwrap(),
            "record of 52428800 bytes is over the limit of 1048576 bytes (--max-record-bytes); its first 1024 bytes are kept"
        );
        assert_eq!(rejected(Some("application/json")), None);
        assert_eq!(rejected(None), None);
    }
}
