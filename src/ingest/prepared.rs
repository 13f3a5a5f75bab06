//! A batch made ready for the engine ahead of time: its records decoded and
//! its log segment encoded, on a thread of its own ([`Preparer`]), so that
//! preparing batch N+1 overlaps the engine projecting and writing batch N.
//! Owns no view state and never touches storage: whatever it prepares, the
//! engine applies the same records in the same order.

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::ingest::decode::{decode_batch, Decoded};
use crate::ingest::record::SourceRecord;
use crate::store::event_log::{encode_segment_into, LogRecordRef};

/// Batches prepared ahead of the one being ingested.
pub const AHEAD: usize = 2;

/// What to do about a batch's log segment.
#[derive(Debug, Clone)]
pub enum SegmentPlan {
    /// Encode (and compress) it.
    Encode,
    /// The batch is a whole stored segment of another log whose first
    /// record has this sequence: its bytes are reused when the batch lands
    /// on the same sequences, else it is encoded.
    Stored(u64, Bytes),
    /// No log is written (views rebuilt in place).
    None,
}

/// One batch, decoded, with its segment; see the module doc.
pub struct Prepared {
    /// Borrows the values of `records` (see [`Prepared::new`]); declared
    /// first so it is dropped first.
    decoded: Vec<Decoded<'static>>,
    records: Vec<SourceRecord>,
    /// The log sequence the batch was prepared to start at.
    first: u64,
    /// The segment, or why it could not be encoded.
    segment: std::result::Result<Option<Bytes>, String>,
}

impl Prepared {
    /// Decodes `records` for job `job_id` and encodes their log segment as
    /// starting at sequence `first`, the segment on a second thread when
    /// the batch is big enough to pay for it.
    pub fn new(records: Vec<SourceRecord>, job_id: &str, first: u64, plan: SegmentPlan) -> Self {
        Self::build(records, job_id, first, plan, &mut Default::default(), true)
    }

    /// [`Prepared::new`] with a reused encoding buffer; big batches are
    /// decoded in two halves at once only when `split`.
    fn build(
        records: Vec<SourceRecord>,
        job_id: &str,
        first: u64,
        plan: SegmentPlan,
        scratch: &mut (Vec<u8>, Vec<u8>),
        split: bool,
    ) -> Self {
        // Stored bytes landing on their own sequences are reused as they
        // are: only an encoding is worth a second thread.
        let (reused, encode) = match plan {
            SegmentPlan::Stored(at, bytes) if at == first => (Some(bytes), false),
            SegmentPlan::Encode | SegmentPlan::Stored(..) => (None, true),
            SegmentPlan::None => (None, false),
        };
        let (decoded, segment) = if !encode {
            (decode_batch(&records, job_id, split), Ok(reused))
        } else if records.len() >= crate::ingest::decode::PARALLEL_DECODE_MIN {
            std::thread::scope(|s| {
                let segment = s.spawn(|| encode_segment(&records, first, scratch));
                let decoded = decode_batch(&records, job_id, split);
                let segment = segment
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p));
                (decoded, segment.map(Some))
            })
        } else {
            let segment = encode_segment(&records, first, scratch);
            (decode_batch(&records, job_id, split), segment.map(Some))
        };
        // An encoding error is kept for the engine, which stops there.
        let segment = segment.map_err(|e| e.to_string());
        // SAFETY: a decoded message borrows only bytes inside the heap
        // buffers of `records`' values. Those buffers never move or change
        // while `decoded` lives: both fields are private, nothing mutates
        // `records` after this point, moving a `Vec` does not move its
        // elements' heap buffers, and `decoded` is dropped first (field
        // order). `decoded()` hands the messages out only for as long as
        // `self` is borrowed.
        let decoded =
            unsafe { std::mem::transmute::<Vec<Decoded<'_>>, Vec<Decoded<'static>>>(decoded) };
        Prepared {
            decoded,
            records,
            first,
            segment,
        }
    }

    /// The records, as the source gave them.
    pub fn records(&self) -> &[SourceRecord] {
        &self.records
    }

    /// Each record decoded, or the dead letter it became.
    pub fn decoded(&self) -> &[Decoded<'_>] {
        &self.decoded
    }

    /// The segment's bytes when the batch lands at sequence `first` (the
    /// one it was prepared for); `None` otherwise or without a log; an
    /// error when it could not be encoded.
    pub fn segment_at(&self, first: u64) -> Result<Option<Bytes>> {
        match &self.segment {
            Ok(s) => Ok(s.clone().filter(|_| first == self.first)),
            Err(e) => Err(Error::Encode(e.clone())),
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True for a batch of no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Encodes the log segment of `records` from sequence `first`, with
/// `scratch` (raw, compressed) reused across batches: a segment is
/// megabytes, and fresh buffers that size cost page faults.
pub fn encode_segment(
    records: &[SourceRecord],
    first: u64,
    scratch: &mut (Vec<u8>, Vec<u8>),
) -> Result<Bytes> {
    let refs: Vec<LogRecordRef> = records
        .iter()
        .enumerate()
        .map(|(i, r)| LogRecordRef {
            seq: first + i as u64,
            partition: r.partition,
            offset: r.offset,
            arrival_ms: r.arrival_ms,
            content_type: r.content_type.as_deref(),
            value: &r.value,
        })
        .collect();
    encode_segment_into(&refs, &mut scratch.0, &mut scratch.1)
        .map_err(|e| Error::Encode(format!("the log segment from sequence {first}: {e}")))?;
    // An exact copy: the segment stays in SlateDB's memtable until flushed,
    // and the scratch has room for the uncompressed batch.
    Ok(Bytes::copy_from_slice(&scratch.1))
}

/// One batch sent to the preparing thread.
struct Job {
    records: Vec<SourceRecord>,
    stored: Option<(u64, Bytes)>,
}

/// A thread that prepares batches in the order they are sent, up to
/// [`AHEAD`] ahead of the caller, assigning them consecutive sequences.
pub struct Preparer {
    tx: Option<std::sync::mpsc::SyncSender<Job>>,
    rx: mpsc::Receiver<Prepared>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Batches sent and not yet received back.
    in_flight: usize,
}

impl Preparer {
    /// Starts the thread: batches for job `job_id`, the first starting at
    /// sequence `next_seq`; `log` false when no log is written. A big
    /// batch is decoded in two halves at once.
    pub fn start(job_id: &str, next_seq: u64, log: bool) -> Result<Preparer> {
        Self::start_with(job_id, next_seq, log, true)
    }

    /// [`Preparer::start`] decoding each batch on the preparing thread
    /// alone, for replays and rebuilds: the batches it prepares ahead
    /// already overlap the threads applying the views, which fill both
    /// cores, and a third decoding thread only competed with them
    /// (figures: docs/performance.md, "Measured choices in the code").
    pub fn start_single(job_id: &str, next_seq: u64, log: bool) -> Result<Preparer> {
        Self::start_with(job_id, next_seq, log, false)
    }

    fn start_with(job_id: &str, next_seq: u64, log: bool, split: bool) -> Result<Preparer> {
        let (tx, jobs) = std::sync::mpsc::sync_channel::<Job>(AHEAD);
        let (done, rx) = mpsc::channel(AHEAD);
        let job_id = job_id.to_owned();
        let thread = std::thread::Builder::new()
            .name("prepare".into())
            .spawn(move || {
                let (mut next, mut scratch) = (next_seq, Default::default());
                while let Ok(job) = jobs.recv() {
                    let plan = match (log, job.stored) {
                        (false, _) => SegmentPlan::None,
                        (true, Some((at, bytes))) => SegmentPlan::Stored(at, bytes),
                        (true, None) => SegmentPlan::Encode,
                    };
                    let n = job.records.len() as u64;
                    let p = Prepared::build(job.records, &job_id, next, plan, &mut scratch, split);
                    next += n;
                    if done.blocking_send(p).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Preparer {
            tx: Some(tx),
            rx,
            thread: Some(thread),
            in_flight: 0,
        })
    }

    /// Batches sent and not yet received back.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// True when another batch can be sent without waiting.
    pub fn has_room(&self) -> bool {
        self.in_flight < AHEAD
    }

    /// Sends a batch (optionally a whole stored segment: its first sequence
    /// and bytes). Call only with [`Preparer::has_room`], or after taking
    /// one back: it never blocks then.
    pub fn send(&mut self, records: Vec<SourceRecord>, stored: Option<(u64, Bytes)>) -> Result<()> {
        let tx = self.tx.as_ref().ok_or_else(gone)?;
        tx.send(Job { records, stored }).map_err(|_| gone())?;
        self.in_flight += 1;
        Ok(())
    }

    /// The oldest batch sent, once prepared; `None` when none is in flight.
    pub async fn recv(&mut self) -> Result<Option<Prepared>> {
        if self.in_flight == 0 {
            return Ok(None);
        }
        let p = self.rx.recv().await.ok_or_else(gone)?;
        self.in_flight -= 1;
        Ok(Some(p))
    }

    /// Sends a batch, first taking back the oldest one when [`AHEAD`] are
    /// in flight: the batch to ingest now, if any.
    pub async fn push(
        &mut self,
        records: Vec<SourceRecord>,
        stored: Option<(u64, Bytes)>,
    ) -> Result<Option<Prepared>> {
        let ready = if self.has_room() {
            None
        } else {
            self.recv().await?
        };
        self.send(records, stored)?;
        Ok(ready)
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        // Closing the input ends the thread once it sees it; prepared
        // batches nobody takes are dropped with the channel.
        self.tx = None;
        self.rx.close();
        while self.rx.try_recv().is_ok() {}
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn gone() -> Error {
    Error::Unavailable("the batch-preparing thread stopped".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: i64, value: &str) -> SourceRecord {
        SourceRecord {
            partition: 0,
            offset: i,
            arrival_ms: 0,
            content_type: None,
            value: value.as_bytes().to_vec().into(),
        }
    }

    fn batch(from: i64, n: i64) -> Vec<SourceRecord> {
        (from..from + n)
            .map(|i| {
                record(
                    i,
                    &format!(
                        r#"{{"message_type": "stage_completed", "job_id": "j", "source_id": "s{i}", "timestamp": 1.5, "sequence": {i}, "payload": {{}}}}"#
                    ),
                )
            })
            .collect()
    }

    #[test]
    fn a_prepared_batch_holds_its_records_decoded_and_its_segment() {
        let mut recs = batch(0, 3);
        recs.push(record(3, "not json"));
        let p = Prepared::new(recs.clone(), "j", 10, SegmentPlan::Encode);
        assert_eq!(p.len(), 4);
        assert_eq!(p.decoded()[1].as_ref().unwrap().source_id, "s1");
        assert!(p.decoded()[3].is_err());
        let want = encode_segment(&recs, 10, &mut Default::default()).unwrap();
        assert_eq!(p.segment_at(10).unwrap(), Some(want));
        assert_eq!(
            p.segment_at(11).unwrap(),
            None,
            "prepared for sequence 10 only"
        );
        let p = Prepared::new(recs, "j", 10, SegmentPlan::None);
        assert_eq!(p.segment_at(10).unwrap(), None);
    }

    #[test]
    fn stored_bytes_are_reused_only_on_the_same_sequences() {
        let recs = batch(0, 2);
        let stored = Bytes::from_static(b"stored");
        let p = Prepared::new(recs.clone(), "j", 5, SegmentPlan::Stored(5, stored.clone()));
        assert_eq!(p.segment_at(5).unwrap(), Some(stored.clone()));
        let p = Prepared::new(recs.clone(), "j", 6, SegmentPlan::Stored(5, stored.clone()));
        let want = encode_segment(&recs, 6, &mut Default::default()).unwrap();
        assert_eq!(p.segment_at(6).unwrap(), Some(want));
    }

    #[test]
    fn big_batches_decode_and_encode_as_small_ones_do() {
        let recs = batch(0, 3000);
        let big = Prepared::new(recs.clone(), "j", 1, SegmentPlan::Encode);
        let want = encode_segment(&recs, 1, &mut Default::default()).unwrap();
        assert_eq!(big.segment_at(1).unwrap(), Some(want));
        let one_by_one: Vec<_> = recs
            .chunks(1)
            .enumerate()
            .map(|(i, c)| Prepared::new(c.to_vec(), "j", i as u64 + 1, SegmentPlan::Encode))
            .collect();
        for (i, p) in one_by_one.iter().enumerate() {
            assert_eq!(p.decoded()[0], big.decoded()[i]);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_preparer_keeps_order_and_numbers_batches_consecutively() {
        let mut prep = Preparer::start("j", 1, true).unwrap();
        let mut got = Vec::new();
        let mut from = 0;
        for n in [5, 1, 2000, 7, 3] {
            if let Some(p) = prep.push(batch(from, n), None).await.unwrap() {
                got.push(p);
            }
            from += n;
        }
        assert!(prep.in_flight() <= AHEAD);
        while let Some(p) = prep.recv().await.unwrap() {
            got.push(p);
        }
        let mut seq = 1;
        let mut offset = 0;
        for p in &got {
            assert!(p.segment_at(seq).unwrap().is_some(), "batch at {seq}");
            for r in p.records() {
                assert_eq!(r.offset, offset);
                offset += 1;
            }
            seq += p.len() as u64;
        }
        assert_eq!(offset, from);
        assert!(prep.recv().await.unwrap().is_none());
    }
}
