//! `sundial replay --from-log ATTEMPT`: rebuild a new attempt from the log
//! of an existing one (a sequence range of it), through the same engine as
//! the live projector. Each source segment becomes one ingest batch, so a
//! whole-log replay reproduces the source's batches, log and views byte
//! for byte. The source attempt is opened read-only and never changed.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ingest::record::SourceRecord;
use crate::replay::target::{ReplayOptions, Summary, Target};
use crate::store::event_log::{decode_segment, segment_key, LogRecord, LOG_PREFIX};
use crate::store::storage::Storage;
use crate::store::view_store::{Handle, Scan};
use bytes::Bytes;

/// A range of log sequences, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    pub from: u64,
    pub to: u64,
}

impl SeqRange {
    /// From `from` (default 1) to `to` (default: the end).
    pub fn new(from: Option<u64>, to: Option<u64>) -> Result<SeqRange> {
        let r = SeqRange {
            from: from.unwrap_or(1).max(1),
            to: to.unwrap_or(u64::MAX),
        };
        if r.to < r.from {
            return Err(Error::invalid(
                "offsets",
                format!("--to-offset {} is below --from-offset {}", r.to, r.from),
            ));
        }
        Ok(r)
    }
}

/// The log of an attempt read segment by segment, records of a range only.
pub struct LogReader {
    it: Scan,
    range: SeqRange,
    ended: bool,
}

impl LogReader {
    /// Starts at the segment holding `range.from`; the blocks read stay in
    /// the block cache (`as_of`: the next question is often nearby).
    pub async fn open(handle: &Handle, range: SeqRange) -> Result<LogReader> {
        Self::open_with(handle, range, true).await
    }

    /// [`LogReader::open`] for a copy or a rebuild, which reads each block
    /// once: nothing is cached (see [`Handle::scan_once`]).
    pub async fn open_once(handle: &Handle, range: SeqRange) -> Result<LogReader> {
        Self::open_with(handle, range, false).await
    }

    async fn open_with(handle: &Handle, range: SeqRange, cache: bool) -> Result<LogReader> {
        let mut end = LOG_PREFIX.as_bytes().to_vec();
        end.push(0xff);
        let start = segment_key(range.from).into_bytes();
        let it = if cache {
            handle.scan(start, end).await?
        } else {
            handle.scan_once(start, end).await?
        };
        Ok(LogReader {
            it,
            range,
            ended: false,
        })
    }

    /// The next segment's records in range (never empty), with its stored
    /// bytes when it is in range whole, so a copy of the log need not
    /// encode it again; `None` past the range or the log's end.
    pub async fn next(&mut self) -> Result<Option<Segment>> {
        while !self.ended {
            let Some(kv) = self.it.next().await? else {
                break;
            };
            let mut seg = decode_segment(&kv.value).map_err(|e| Error::Corrupt {
                key: String::from_utf8_lossy(&kv.key).into_owned(),
                detail: e.to_string(),
            })?;
            let range = self.range;
            self.ended = seg.last().is_some_and(|r| r.seq >= range.to);
            let whole = seg.len();
            seg.retain(|r| r.seq >= range.from && r.seq <= range.to);
            if !seg.is_empty() {
                let stored = (seg.len() == whole).then_some(kv.value);
                return Ok(Some((seg, stored)));
            }
        }
        self.ended = true;
        Ok(None)
    }
}

/// A segment's records in range, with its stored bytes when whole (what
/// [`LogReader::next`] yields).
pub type Segment = (Vec<LogRecord>, Option<Bytes>);

/// A [`LogReader`] reading (and decompressing) up to `AHEAD` segments in
/// a task of its own while the caller projects the current one: reading is
/// a sixth to a seventh of a replay's or an `as_of`'s time, and done in
/// line it leaves the second core idle.
pub struct ReadAhead {
    rx: tokio::sync::mpsc::Receiver<Result<Segment>>,
    task: tokio::task::JoinHandle<()>,
}

/// Segments read ahead of the one being projected.
const AHEAD: usize = 2;

impl ReadAhead {
    /// Starts reading `log` in the background.
    pub fn start(mut log: LogReader) -> ReadAhead {
        let (tx, rx) = tokio::sync::mpsc::channel(AHEAD);
        let task = tokio::spawn(async move {
            // Up to the log's end or its first error, which is passed on.
            while let Some(item) = log.next().await.transpose() {
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        ReadAhead { rx, task }
    }

    /// The next segment, as [`LogReader::next`] would give it.
    pub async fn next(&mut self) -> Result<Option<Segment>> {
        self.rx.recv().await.transpose()
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // A caller that stops early (an error) stops the reading too.
        self.task.abort();
    }
}

/// A stored record as a source record again (same coordinates and bytes).
pub fn to_source(r: LogRecord) -> SourceRecord {
    SourceRecord {
        partition: r.partition,
        offset: r.offset,
        arrival_ms: r.arrival_ms,
        content_type: r.content_type,
        value: r.value,
    }
}

/// Replays sequences `range` of attempt `from_attempt`'s log into an
/// attempt of `job` as `opts` say (its records as stored: no size limit).
pub async fn replay_from_log(
    storage: &Storage,
    job: &str,
    from_attempt: &str,
    range: SeqRange,
    opts: ReplayOptions<'_>,
) -> Result<(String, Summary)> {
    let reader = storage.open_reader(job, from_attempt).await?;
    let source = Handle::Reader(Arc::new(reader));
    let last = crate::store::view_store::ViewStore::open(source.clone(), job, from_attempt)
        .await?
        .job()
        .await?
        .log_offset;
    if range.from > last.max(1) {
        return Err(Error::invalid(
            "offsets",
            format!("--from-offset {} is past the log's end {last}", range.from),
        ));
    }
    let mut target = Target::open_with(
        storage,
        job,
        opts.attempt,
        &format!("log:{from_attempt}:{}..{}", range.from, range.to.min(last)),
        opts.resume,
    )
    .await?;
    if opts.progress {
        target.show_progress(Some(range.to.min(last) + 1 - range.from));
    }
    let mut log = ReadAhead::start(LogReader::open_once(&source, range).await?);
    while let Some((seg, stored)) = log.next().await? {
        let first = seg.first().map_or(0, |r| r.seq);
        let batch: Vec<SourceRecord> = seg.into_iter().map(to_source).collect();
        target
            .ingest_segment(batch, stored.map(|b| (first, b)))
            .await?;
    }
    drop(log);
    if let Handle::Reader(r) = &source {
        r.close().await?;
    }
    target.finish().await
}
