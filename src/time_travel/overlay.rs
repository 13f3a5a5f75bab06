//! The read side of time travel: an attempt's views as of a past log
//! offset, as the rows a replay from a snapshot changed (in memory) over
//! that snapshot (a read-only SlateDB checkpoint). Views are replayed
//! lazily: a request names the views it will read (one pass over the log
//! for all of them), and any other view is replayed the first time one of
//! its rows is read, so every read is exact whatever it touches, and a page
//! never pays for views it does not show. Log reads go to the attempt
//! itself, capped at the offset. Built by `as_of`; read-only.

use std::collections::VecDeque;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use slatedb::DbReader;

use futures::future::BoxFuture;
use sundial_views::Projector;

use crate::error::{Error, Result};
use crate::ingest::decode::{decode_batch, entry};
use crate::ingest::engine::load_rows;
use crate::ingest::record::SourceRecord;
use crate::replay::log::{to_source, LogReader, ReadAhead, SeqRange};
use crate::store::event_log::{view_key, LOG_PREFIX, VIEW_PREFIX};
use crate::store::view_store::{Handle, Kv, LayerScan, ReadLayer, Scan, ViewStore};

/// Rows as of a log offset: those replayed so far over `base`.
pub struct Overlay {
    /// The snapshot the replay starts from (`None`: from an empty store).
    base: Option<Arc<DbReader>>,
    /// The log sequence of that snapshot (0 = none).
    snapshot: u64,
    /// The attempt itself, for its log.
    live: ViewStore,
    as_of: u64,
    /// Held while a view is replayed, so concurrent readers wait for it.
    replayed: tokio::sync::Mutex<Replayed>,
}

/// What the lazy replays produced so far.
#[derive(Default)]
struct Replayed {
    /// Every row of the replayed views that the records changed, final bytes.
    rows: BTreeMap<Vec<u8>, Bytes>,
    /// Views replayed.
    views: BTreeSet<&'static str>,
    /// Log records replayed, summed over passes.
    records: u64,
}

/// Every view's name (and the sequence tracker's), computed once.
fn names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(sundial_views::view_names)
}

/// The view a row key belongs to, if it is a view row's key.
fn view_of(key: &[u8]) -> Option<&'static str> {
    let rest = key.strip_prefix(VIEW_PREFIX.as_bytes())?;
    let name = rest.split(|b| *b == b'/').next()?;
    names().iter().copied().find(|v| v.as_bytes() == name)
}

/// The views with rows in `[start, end)`.
fn views_in(start: &[u8], end: &[u8]) -> Vec<&'static str> {
    names()
        .iter()
        .copied()
        .filter(|v| {
            let first = view_key(v, "");
            let mut past = first.clone();
            if let Some(slash) = past.last_mut() {
                *slash += 1; // `/` + 1: just past every key of the view
            }
            first.as_slice() < end && start < past.as_slice()
        })
        .collect()
}

impl Overlay {
    /// Views as of `as_of` of the attempt `live`, to be replayed from the
    /// snapshot `base` taken at sequence `snapshot` (0 and `None`: none).
    pub fn new(base: Option<Arc<DbReader>>, snapshot: u64, live: ViewStore, as_of: u64) -> Self {
        Overlay {
            base,
            snapshot,
            live,
            as_of,
            replayed: tokio::sync::Mutex::default(),
        }
    }

    /// Rows the replays changed so far.
    pub async fn changed_rows(&self) -> usize {
        self.replayed.lock().await.rows.len()
    }

    /// Log records replayed so far (each pass counted).
    pub async fn replayed_records(&self) -> u64 {
        self.replayed.lock().await.records
    }

    /// Replays, in one pass, those of `views` not replayed yet.
    pub async fn replay(&self, views: &[&'static str]) -> Result<()> {
        let mut done = self.replayed.lock().await;
        let missing: Vec<&'static str> = views
            .iter()
            .copied()
            .filter(|v| !done.views.contains(v))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let base = self.base.clone().map(Handle::Reader);
        let (rows, records) = replay(
            &self.live,
            base.as_ref(),
            self.snapshot,
            self.as_of,
            &missing,
        )
        .await?;
        done.rows.extend(rows);
        done.views.extend(missing);
        done.records += records;
        Ok(())
    }

    /// One key's value as of the offset.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        if key.starts_with(LOG_PREFIX.as_bytes()) {
            return self.live.handle().get(key).await;
        }
        if let Some(view) = view_of(key) {
            self.replay(&[view]).await?;
        }
        if let Some(v) = self.replayed.lock().await.rows.get(key) {
            return Ok(Some(v.clone()));
        }
        match &self.base {
            Some(b) => Ok(b.get(key).await?),
            None => Ok(None),
        }
    }

    /// Keys in `[start, end)` as of the offset, ascending.
    pub async fn scan(&self, start: Vec<u8>, end: Vec<u8>) -> Result<Scan> {
        if start.starts_with(LOG_PREFIX.as_bytes()) {
            return self.live.handle().scan(start, end).await;
        }
        self.replay(&views_in(&start, &end)).await?;
        let mem: VecDeque<(Bytes, Bytes)> = self
            .replayed
            .lock()
            .await
            .rows
            .range(start.clone()..end.clone())
            .map(|(k, v)| (Bytes::copy_from_slice(k), v.clone()))
            .collect();
        let db = match &self.base {
            Some(b) => Some(Handle::Reader(b.clone()).scan(start, end).await?),
            None => None,
        };
        Ok(Scan::Layer(Box::new(MergedScan {
            db,
            db_next: None,
            primed: false,
            mem,
        })))
    }
}

impl ReadLayer for Overlay {
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Option<Bytes>>> {
        Box::pin(Overlay::get(self, key))
    }

    fn scan(&self, start: Vec<u8>, end: Vec<u8>) -> BoxFuture<'_, Result<Scan>> {
        Box::pin(Overlay::scan(self, start, end))
    }

    fn log_cap(&self) -> u64 {
        self.as_of
    }
}

impl LayerScan for MergedScan {
    fn next(&mut self) -> BoxFuture<'_, Result<Option<Kv>>> {
        Box::pin(MergedScan::next(self))
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        // Dropping a DbReader does not stop its tasks: close it.
        if let (Some(reader), Ok(rt)) = (self.base.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(async move {
                if let Err(e) = reader.close().await {
                    tracing::debug!(error = %e, "closing a snapshot reader failed");
                }
            });
        }
    }
}

/// A snapshot's scan merged with the overlay's rows in the same range.
pub struct MergedScan {
    db: Option<Scan>,
    db_next: Option<Kv>,
    primed: bool,
    mem: VecDeque<(Bytes, Bytes)>,
}

impl MergedScan {
    async fn pull(&mut self) -> Result<()> {
        self.db_next = match &mut self.db {
            Some(it) => Box::pin(it.next()).await?,
            None => None,
        };
        Ok(())
    }

    /// The next key in order; the overlay's value wins over the snapshot's.
    pub async fn next(&mut self) -> Result<Option<Kv>> {
        if !self.primed {
            self.primed = true;
            self.pull().await?;
        }
        let take_mem = match (&self.db_next, self.mem.front()) {
            (None, None) => return Ok(None),
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (Some(d), Some((k, _))) => {
                if k.as_ref() == d.key.as_ref() {
                    // Same key: the overlay's newer bytes, the snapshot's dropped.
                    self.pull().await?;
                    true
                } else {
                    k.as_ref() < d.key.as_ref()
                }
            }
        };
        if take_mem {
            Ok(self.mem.pop_front().map(|(key, value)| Kv { key, value }))
        } else {
            let out = self.db_next.take();
            self.pull().await?;
            Ok(out)
        }
    }
}

/// Replays log records `from + 1 ..= as_of` of `live` into `views` (the
/// sequence tracker always judges duplicates), starting from the rows of
/// `base` (the snapshot at `from`; an empty store when `None`). Returns the
/// rows the records changed, keyed as stored, and how many records it read.
async fn replay(
    live: &ViewStore,
    base: Option<&Handle>,
    from: u64,
    as_of: u64,
    views: &[&'static str],
) -> Result<(BTreeMap<Vec<u8>, Bytes>, u64)> {
    if as_of <= from {
        // Right on the snapshot: nothing to replay.
        return Ok((BTreeMap::new(), 0));
    }
    let job = live.meta.job_id.as_str();
    let mut projector =
        Projector::only(views, base.is_none()).map_err(|e| Error::invalid("views", e))?;
    let range = SeqRange::new(Some(from + 1), Some(as_of))?;
    let mut log = ReadAhead::start(LogReader::open(live.handle(), range).await?);
    let mut replayed = 0;
    while let Some((seg, _)) = log.next().await? {
        let first = seg.first().map_or(0, |r| r.seq);
        let records: Vec<SourceRecord> = seg.into_iter().map(to_source).collect();
        let decoded = decode_batch(&records, job, true);
        if let Some(base) = base {
            // From an empty store nothing is ever missing: no loads.
            load_rows(&mut projector, base, first, decoded.iter().map(entry)).await?;
        }
        let entries: Vec<_> = decoded.iter().map(entry).collect();
        projector.apply_batch(first, &entries);
        replayed += records.len() as u64;
    }
    if replayed < as_of - from {
        return Err(Error::Corrupt {
            key: format!("l/ at {}", from + 1 + replayed),
            detail: "the log ends before the job's log_offset".into(),
        });
    }
    let mut rows = BTreeMap::new();
    projector.drain_dirty(&mut |view, key, bytes| {
        rows.insert(view_key(view, key), Bytes::from(bytes));
    })?;
    Ok((rows, replayed))
}
