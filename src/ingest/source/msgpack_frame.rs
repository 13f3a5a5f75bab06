//! Framing a stream of concatenated MessagePack values (a recorded
//! MessagePack stream file): how long the value at the start of a buffer
//! is, without decoding it, and where the next state message starts after
//! bytes that do not frame, so that one malformed record costs only its
//! own bytes, never the records after it. Pure: no I/O, never panics.

/// What the start of a buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// One whole value of this many bytes.
    Value(usize),
    /// The start of a value that goes on past the buffer's end.
    Incomplete,
    /// Bytes that are no MessagePack value (a reserved marker, 0xc1).
    Invalid,
}

/// Reads a big-endian length of `n` bytes at `at`.
fn len_at(buf: &[u8], at: usize, n: usize) -> Option<u64> {
    let bytes = buf.get(at..at.checked_add(n)?)?;
    Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// The length of the MessagePack value at the start of `buf`. Iterative
/// (a count of values still owed), so nesting depth costs no stack.
pub fn frame(buf: &[u8]) -> Frame {
    let mut owed: u64 = 1;
    let mut i: usize = 0;
    while owed > 0 {
        let Some(&m) = buf.get(i) else {
            return Frame::Incomplete;
        };
        i += 1;
        owed -= 1;
        // (bytes to skip after the marker, values owed after them)
        let (skip, more): (u64, u64) = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * u64::from(m & 0x0f)),
            0x90..=0x9f => (0, u64::from(m & 0x0f)),
            0xa0..=0xbf => (u64::from(m & 0x1f), 0),
            0xc1 => return Frame::Invalid,
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xca | 0xce | 0xd2 => (4, 0),
            0xcb | 0xcf | 0xd3 => (8, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            // bin, str and ext with a length; ext has a type byte too.
            0xc4..=0xc9 | 0xd9..=0xdb | 0xdc..=0xdf => {
                let width = match m {
                    0xc4 | 0xc7 | 0xd9 => 1,
                    0xc5 | 0xc8 | 0xda | 0xdc | 0xde => 2,
                    _ => 4,
                };
                let Some(n) = len_at(buf, i, width) else {
                    return Frame::Incomplete;
                };
                i += width;
                match m {
                    0xc7..=0xc9 => (n + 1, 0),
                    0xdc | 0xdd => (0, n),
                    0xde | 0xdf => (0, 2 * n),
                    _ => (n, 0),
                }
            }
        };
        let Some(end) = usize::try_from(skip).ok().and_then(|s| i.checked_add(s)) else {
            return Frame::Incomplete;
        };
        if end > buf.len() {
            return Frame::Incomplete;
        }
        i = end;
        owed = owed.saturating_add(more);
    }
    Frame::Value(i)
}

/// The key every state message carries.
const MESSAGE_TYPE: &[u8] = b"message_type";

/// The bytes of a whole MessagePack string (any width), `None` for any
/// other value.
fn str_bytes(v: &[u8]) -> Option<&[u8]> {
    let head = match *v.first()? {
        0xa0..=0xbf => 1,
        0xd9 => 2,
        0xda => 3,
        0xdb => 5,
        _ => return None,
    };
    v.get(head..)
}

/// Whether `buf` starts with a whole map that has a `message_type` key
/// (a state message, well-formed as MessagePack): `Value(len)` if so,
/// `Invalid` if not, `Incomplete` when the buffer ends too soon to say.
pub fn state_message(buf: &[u8]) -> Frame {
    let (entries, head) = match buf.first() {
        Some(&m @ 0x80..=0x8f) => (u64::from(m & 0x0f), 1),
        Some(0xde) => match len_at(buf, 1, 2) {
            Some(n) => (n, 3),
            None => return Frame::Incomplete,
        },
        Some(0xdf) => match len_at(buf, 1, 4) {
            Some(n) => (n, 5),
            None => return Frame::Incomplete,
        },
        Some(_) => return Frame::Invalid,
        None => return Frame::Incomplete,
    };
    let len = match frame(buf) {
        Frame::Value(len) => len,
        other => return other,
    };
    let mut at = head;
    let mut found = false;
    for _ in 0..entries {
        // A whole map frames, so every key and value in it does too.
        let Frame::Value(k) = frame(&buf[at..len]) else {
            return Frame::Invalid;
        };
        found |= str_bytes(&buf[at..at + k]) == Some(MESSAGE_TYPE);
        at += k;
        let Frame::Value(v) = frame(&buf[at..len]) else {
            return Frame::Invalid;
        };
        at += v;
    }
    if found {
        Frame::Value(len)
    } else {
        Frame::Invalid
    }
}

/// The first offset at or after `from` where a state message starts in
/// `buf`: `Ok(offset)`, or `Err(at)` when none starts before `at`, where
/// the search goes on once more bytes came (a candidate there runs past
/// the buffer's end), `buf.len()` if none does. A candidate running past
/// the end with `limit` bytes or more before it (no record is that long),
/// or any when `limit` is 0 (the input ended), is no state message.
///
/// MessagePack falls back into step quickly: a map header among bad bytes
/// a little before a real message often frames *through* it, taking the
/// message's keys (`message_type` among them) and the records after it
/// as its own entries. So a candidate holding another state message
/// inside its bytes is a false start, and the search goes on to the
/// message inside. (The price: a real message whose payload nests a map
/// with a `message_type` key, right after bad bytes, is lost with them.)
pub fn resync(buf: &[u8], from: usize, limit: usize) -> Result<usize, usize> {
    for p in from..buf.len() {
        if !is_map(buf[p]) {
            continue;
        }
        match state_message(&buf[p..]) {
            Frame::Value(len) if !holds_a_message(&buf[p..p + len]) => return Ok(p),
            Frame::Incomplete if buf.len() - p < limit => return Err(p),
            _ => {}
        }
    }
    Err(buf.len())
}

fn is_map(b: u8) -> bool {
    matches!(b, 0x80..=0x8f | 0xde | 0xdf)
}

/// Whether a state message starts inside `value` (after its first byte)
/// and ends within it.
fn holds_a_message(value: &[u8]) -> bool {
    (1..value.len())
        .any(|q| is_map(value[q]) && matches!(state_message(&value[q..]), Frame::Value(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(i: u64) -> Vec<u8> {
        rmp_serde::to_vec_named(&json!({
            "message_type": "worker_metrics", "job_id": "j", "source_id": "w",
            "timestamp": 1.5, "sequence": i,
            "payload": {"stage_id": "s", "nested": [1, {"a": null}], "bin": "x".repeat(300)}
        }))
        .unwrap()
    }

    #[test]
    fn values_frame_to_their_exact_length_and_cut_ones_are_incomplete() {
        let m = msg(7);
        assert_eq!(frame(&m), Frame::Value(m.len()));
        assert_eq!(state_message(&m), Frame::Value(m.len()));
        for cut in 0..m.len() {
            assert_eq!(frame(&m[..cut]), Frame::Incomplete, "cut at {cut}");
        }
        let mut two = m.clone();
        two.extend(msg(8));
        assert_eq!(frame(&two), Frame::Value(m.len()));
        let other = [
            json!(null),
            json!(-3),
            json!(1u64 << 40),
            json!(-1i64 << 40),
            json!(0.25),
            json!("s"),
            json!("x".repeat(70_000)),
            json!([1, [2, [3]]]),
            json!({"a": {"b": 1}}),
        ];
        for v in other {
            let b = rmp_serde::to_vec_named(&v).unwrap();
            assert_eq!(frame(&b), Frame::Value(b.len()), "{v}");
            assert_eq!(state_message(&b), Frame::Invalid, "{v} is no state message");
        }
        let bin = rmp_serde::to_vec(&serde_bytes::ByteBuf::from(vec![0u8; 300])).unwrap();
        assert_eq!(frame(&bin), Frame::Value(bin.len()));
        assert_eq!(frame(&[0xc1, 0x80]), Frame::Invalid);
        // A length no buffer holds is incomplete, not an overflow.
        assert_eq!(frame(&[0xdf, 0xff, 0xff, 0xff, 0xff]), Frame::Incomplete);
        assert_eq!(frame(&[0xc6, 0xff, 0xff, 0xff, 0xff, 0]), Frame::Incomplete);
    }

    #[test]
    fn after_bad_bytes_the_next_state_message_is_found_not_a_nested_map() {
        let mut buf = vec![0xc1, 0x85, 0x01];
        // A map without `message_type` (a payload) is passed over.
        buf.extend(rmp_serde::to_vec_named(&json!({"stage_id": "s"})).unwrap());
        let at = buf.len();
        buf.extend(msg(1));
        let second = buf.len();
        buf.extend(msg(2));
        // The whole input: the map header at 1 ran out of values.
        assert_eq!(resync(&buf, 1, 0), Ok(at));
        assert_eq!(resync(&buf, at, 1 << 20), Ok(at));
        assert_eq!(resync(&buf[..second], 1, 0), Ok(at), "the last message");
        // Cut short, the search says where to go on from (the map header
        // at 1 might run on into bytes not read yet); at the input's end
        // (or past the longest record) nothing more can come.
        assert_eq!(resync(&buf[..at + 10], 1, 1 << 20), Err(1));
        assert_eq!(resync(&buf[..at + 10], 2, 1 << 20), Err(at));
        assert_eq!(resync(&buf[..at + 10], 1, 10), Err(at + 10));
        assert_eq!(resync(&buf[..at + 10], 1, 0), Err(at + 10));
        assert_eq!(resync(&[0xc1, 0x01, 0x02], 1, 100), Err(3));
    }

    #[test]
    fn a_map_header_just_before_a_message_that_frames_through_it_is_no_start() {
        // 0x8e (14 entries), then an int32 marker that eats the message's
        // map header: its entries run on through the message's own keys
        // (`message_type` among them) and end in the middle of the next.
        let mut buf = vec![0xc1, 0x8e, 0xd2];
        let at = buf.len();
        for i in 0..20 {
            buf.extend(msg(i));
        }
        assert!(
            matches!(state_message(&buf[1..]), Frame::Value(_)),
            "a false start"
        );
        assert_eq!(resync(&buf, 1, 0), Ok(at));
        // Keys of any string width count.
        let mut wide = vec![0x81, 0xd9, 12];
        wide.extend(b"message_type");
        wide.push(0xa1);
        wide.push(b'x');
        assert_eq!(state_message(&wide), Frame::Value(wide.len()));
    }
}
