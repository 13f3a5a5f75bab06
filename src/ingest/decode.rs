//! Decoding a batch of source records into messages (or the dead letters
//! they become), the step every ingest path shares before projecting.

use sundial_views::projector::Entry;
use sundial_views::{DeadLetter, Message};

use crate::ingest::codec;
use crate::ingest::record::SourceRecord;

/// Batches at least this big are decoded on two threads.
pub(crate) const PARALLEL_DECODE_MIN: usize = 1024;

/// One record decoded, or the dead letter it became.
pub type Decoded<'a> = std::result::Result<Message<'a>, DeadLetter>;

fn decode_one<'a>(r: &'a SourceRecord, job_id: &str) -> Decoded<'a> {
    codec::decode(&r.value, r.content_type.as_deref(), job_id).map_err(|reason| {
        let ct = r.content_type.as_deref();
        codec::dead_letter(&r.value, ct, job_id, reason, r.partition, r.offset)
    })
}

/// Decodes a batch in order; big batches in two halves at once when
/// `split` (decoding is pure and the costliest step, and the projection
/// after it is serial).
pub fn decode_batch<'a>(batch: &'a [SourceRecord], job_id: &str, split: bool) -> Vec<Decoded<'a>> {
    if !split || batch.len() < PARALLEL_DECODE_MIN {
        return batch.iter().map(|r| decode_one(r, job_id)).collect();
    }
    let (head, tail) = batch.split_at(batch.len() / 2);
    std::thread::scope(|s| {
        let other = s.spawn(|| {
            tail.iter()
                .map(|r| decode_one(r, job_id))
                .collect::<Vec<_>>()
        });
        // Room for both halves: growing it at the join copied half a batch.
        let mut out: Vec<Decoded<'a>> = Vec::with_capacity(batch.len());
        out.extend(head.iter().map(|r| decode_one(r, job_id)));
        match other.join() {
            Ok(rest) => out.extend(rest),
            // The decoder never panics; if it ever did, decode serially.
            Err(_) => out.extend(tail.iter().map(|r| decode_one(r, job_id))),
        }
        out
    })
}

/// The projector's view of one decoded record.
pub fn entry<'m, 'a>(d: &'m std::result::Result<Message<'a>, DeadLetter>) -> Entry<'m, 'a> {
    match d {
        Ok(m) => Entry::Valid(m),
        Err(dl) => Entry::Dead(dl),
    }
}
