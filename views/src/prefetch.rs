//! Software prefetches for the apply loops. The records of a batch are
//! decoded on another thread, so the first view to read a message (the
//! sequence tracker, then the first view of each chunk on the second
//! thread) waits for it to come from another core's cache or from memory:
//! that wait was the largest single cost of judging. Asking for record
//! `i + AHEAD` while record `i` is applied hides most of it. Hints only:
//! nothing here changes what any view computes.

use crate::projection::{Entry, Input, Record};
use crate::Message;

/// How many records ahead the message itself is fetched; its strings are
/// fetched half as far ahead, once the message holding their addresses
/// has arrived.
const AHEAD: usize = 16;

/// Fetches the cache lines at `p` (and the next one) into L1.
#[inline(always)]
fn line<T: ?Sized>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = p.cast::<i8>();
        // SAFETY: a prefetch is a hint: it reads nothing the program sees
        // and never faults, whatever the address; SSE is part of x86-64.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Fetches the two cache lines of `b` from byte `at` on: for readers that
/// jump through a buffer too sparsely for the hardware to follow. Nothing
/// is fetched past the end of `b`.
#[inline(always)]
pub fn bytes(b: &[u8], at: usize) {
    if let Some(x) = b.get(at) {
        line(x);
    }
}

/// The message struct of a record to come.
#[inline(always)]
fn message(m: &Message) {
    line(m as *const Message);
}

/// The strings most views read first: source and stage ids.
#[inline(always)]
fn strings(m: &Message) {
    line(m.source_id.as_ptr());
    if let Some(stage) = m.stage_id() {
        line(stage.as_ptr());
    }
}

/// Before record `i` of `items` is read: fetches what the records
/// `AHEAD` and `AHEAD / 2` places on will need, through `message`.
#[inline(always)]
fn ahead<'m, 'a: 'm, T>(items: &[T], i: usize, msg: impl Fn(&T) -> Option<&'m Message<'a>>) {
    if let Some(m) = items.get(i + AHEAD).and_then(&msg) {
        message(m);
    }
    if let Some(m) = items.get(i + AHEAD / 2).and_then(&msg) {
        strings(m);
    }
}

/// Before judging `entries[i]`.
#[inline(always)]
pub fn entries_ahead(entries: &[Entry], i: usize) {
    ahead(entries, i, |e| match e {
        Entry::Valid(m) => Some(*m),
        Entry::Dead(_) => None,
    });
}

/// Before applying `inputs[i]`.
#[inline(always)]
pub fn inputs_ahead(inputs: &[Input], i: usize) {
    ahead(inputs, i, |input| match input.record {
        Record::Applied { msg, .. } | Record::Duplicate(msg) => Some(msg),
        Record::Dead { .. } => None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::DeadLetter;

    #[test]
    fn hints_past_the_end_of_a_batch_or_on_dead_letters_never_panic() {
        let text = r#"{"message_type": "stage_completed", "job_id": "j", "source_id": "s", "timestamp": 1.5, "sequence": 1, "payload": {}}"#;
        let msg: Message = serde_json::from_str(text).unwrap();
        let dead = DeadLetter {
            reason: "bad".into(),
            preview: String::new(),
            partition: 0,
            offset: 0,
            envelope: None,
        };
        let entries = [Entry::Valid(&msg), Entry::Dead(&dead)];
        let inputs: Vec<Input> = (0..3u64)
            .map(|seq| Input {
                seq,
                record: Record::Applied {
                    msg: &msg,
                    missing_delta: 0,
                },
            })
            .collect();
        for i in 0..40 {
            entries_ahead(&entries, i);
            entries_ahead(&[], i);
            inputs_ahead(&inputs, i);
            inputs_ahead(&[], i);
        }
    }
}
