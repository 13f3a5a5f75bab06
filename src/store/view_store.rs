//! Reading an attempt's views and log, through either the writer's own
//! handle (the live projector) or a read-only follower (the history server).
//! The read side never writes and never blocks the write path.

use std::sync::Arc;

use bytes::Bytes;
use slatedb::config::ScanOptions;
use slatedb::{Db, DbIterator, DbReader};

use futures::future::BoxFuture;
use sundial_views::job::JobRow;
use sundial_views::Projection;

use crate::error::{Error, Result};
use crate::store::event_log::{
    decode_segment, segment_key, view_key, AttemptMeta, LogRecord, ATTEMPT_KEY, LOG_PREFIX,
};

/// A database handle to read from.
#[derive(Clone)]
pub enum Handle {
    /// The projector's own writer.
    Writer(Arc<Db>),
    /// A read-only follower.
    Reader(Arc<DbReader>),
    /// Rows answered by a layer of their own (time travel's views as of a
    /// past log offset, over a snapshot).
    Layer(Arc<dyn ReadLayer>),
}

/// Reads answered by something other than a database handle, capped at a
/// log sequence. The time-travel overlay implements it, so this store
/// reads through it without knowing about time travel.
pub trait ReadLayer: Send + Sync {
    /// One key's value.
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Option<Bytes>>>;
    /// Keys in `[start, end)`, ascending.
    fn scan(&self, start: Vec<u8>, end: Vec<u8>) -> BoxFuture<'_, Result<Scan>>;
    /// The last log sequence the layer shows.
    fn log_cap(&self) -> u64;
}

/// An ascending scan produced by a [`ReadLayer`].
pub trait LayerScan: Send {
    /// The next key and value, or `None` at the end.
    fn next(&mut self) -> BoxFuture<'_, Result<Option<Kv>>>;
}

/// One key and its value, from a scan.
pub struct Kv {
    pub key: Bytes,
    pub value: Bytes,
}

/// An ascending scan: a database's, or a read layer's.
pub enum Scan {
    /// Straight from SlateDB.
    Db(Box<DbIterator>),
    /// From a [`ReadLayer`].
    Layer(Box<dyn LayerScan>),
}

impl Scan {
    /// The next key and value, or `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Kv>> {
        match self {
            Scan::Db(it) => Ok(it.next().await?.map(|kv| Kv {
                key: kv.key,
                value: kv.value,
            })),
            Scan::Layer(m) => m.next().await,
        }
    }
}

fn scan_options(cache_blocks: bool) -> ScanOptions {
    // Read-ahead and parallel fetches: default scans are slow on S3.
    ScanOptions {
        read_ahead_bytes: 1 << 20,
        max_fetch_tasks: 4,
        cache_blocks,
        ..ScanOptions::default()
    }
}

impl Handle {
    /// One key's value.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(match self {
            Handle::Writer(db) => db.get(key).await?,
            Handle::Reader(db) => db.get(key).await?,
            Handle::Layer(l) => l.get(key).await?,
        })
    }

    /// Keys in `[start, end)`, ascending; the blocks read are kept in the
    /// process's block cache for the next reader.
    pub async fn scan(&self, start: Vec<u8>, end: Vec<u8>) -> Result<Scan> {
        self.scan_with(start, end, true).await
    }

    /// [`Handle::scan`] for a single pass over much data (a copy of a whole
    /// log): its blocks are not cached, where they would only push out the
    /// blocks pages read again and hold memory that each new block then
    /// faults in afresh (figures: docs/performance.md, "Measured choices in the code").
    pub async fn scan_once(&self, start: Vec<u8>, end: Vec<u8>) -> Result<Scan> {
        self.scan_with(start, end, false).await
    }

    async fn scan_with(&self, start: Vec<u8>, end: Vec<u8>, cache: bool) -> Result<Scan> {
        let opts = scan_options(cache);
        Ok(match self {
            Handle::Writer(db) => {
                Scan::Db(Box::new(db.scan_with_options(start..end, &opts).await?))
            }
            Handle::Reader(db) => {
                Scan::Db(Box::new(db.scan_with_options(start..end, &opts).await?))
            }
            Handle::Layer(l) => l.scan(start, end).await?,
        })
    }

    /// The last log sequence this handle shows (`as_of`), if capped.
    pub fn log_cap(&self) -> Option<u64> {
        match self {
            Handle::Layer(l) => Some(l.log_cap()),
            _ => None,
        }
    }
}

/// The exclusive upper bound of every key starting with `prefix`
/// (0xFF never occurs in UTF-8).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    end.push(0xff);
    end
}

/// Closes a read-only follower (stops its manifest poller) when the last
/// user of its `ViewStore` is gone: dropping a `DbReader` does not.
struct CloseOnDrop(Arc<DbReader>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        let reader = self.0.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = reader.close().await {
                    tracing::debug!(error = %e, "closing a reader failed");
                }
            });
        }
    }
}

/// Read access to one attempt's views and log.
#[derive(Clone)]
pub struct ViewStore {
    handle: Handle,
    /// The attempt's identity.
    pub meta: AttemptMeta,
    closer: Option<Arc<CloseOnDrop>>,
    /// The stage rows as of a log offset: every job answer needs them,
    /// and a finished job's never change.
    stages: Arc<std::sync::Mutex<Option<StagesAt>>>,
}

type StagesAt = (u64, Arc<Vec<sundial_views::stage::StageRow>>);

fn corrupt(key: &[u8], e: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        detail: e.to_string(),
    }
}

impl ViewStore {
    /// Wraps a handle; reads the attempt's identity (empty for a brand-new attempt).
    pub async fn open(handle: Handle, job: &str, attempt: &str) -> Result<Self> {
        let mut meta: AttemptMeta = match handle.get(ATTEMPT_KEY.as_bytes()).await? {
            Some(b) => rmp_serde::from_slice(&b).map_err(|e| corrupt(ATTEMPT_KEY.as_bytes(), e))?,
            None => AttemptMeta::default(),
        };
        meta.job_id = job.to_owned();
        meta.attempt_id = attempt.to_owned();
        Ok(ViewStore {
            handle,
            meta,
            closer: None,
            stages: Arc::default(),
        })
    }

    /// Makes a read-only store close its reader once the last clone of it
    /// is dropped (a writer's handle is left to its owner).
    pub fn close_on_drop(mut self) -> Self {
        if let Handle::Reader(r) = &self.handle {
            self.closer = Some(Arc::new(CloseOnDrop(r.clone())));
        }
        self
    }

    /// The underlying handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// One row of view `P`, if stored.
    pub async fn row<P: Projection>(&self, key: &str) -> Result<Option<P::Row>> {
        self.row_as(P::NAME, key).await
    }

    /// One row of type `R` stored under view `view` (a view's older row
    /// format, say), if stored.
    pub async fn row_as<R: serde::de::DeserializeOwned>(
        &self,
        view: &str,
        key: &str,
    ) -> Result<Option<R>> {
        let k = view_key(view, key);
        match self.handle.get(&k).await? {
            Some(b) => Ok(Some(
                sundial_views::decode_row(&b).map_err(|e| corrupt(&k, e))?,
            )),
            None => Ok(None),
        }
    }

    /// The job row (default when nothing was applied yet).
    pub async fn job(&self) -> Result<JobRow> {
        Ok(self
            .row::<sundial_views::job::JobView>("")
            .await?
            .unwrap_or_default())
    }

    /// Visits the rows of view `P` whose key starts with `prefix`, in key
    /// order, until `visit` returns false.
    pub async fn visit<P: Projection>(
        &self,
        prefix: &str,
        visit: impl FnMut(&str, P::Row) -> bool,
    ) -> Result<()> {
        let start = view_key(P::NAME, prefix);
        let end = prefix_end(&start);
        self.visit_range::<P>(start, end, visit).await?;
        Ok(())
    }

    /// Visits the parent rows of view `P` in key order, until `visit`
    /// returns false, skipping its child rows unread (`child_rows`).
    pub async fn visit_parents<P: Projection>(
        &self,
        mut visit: impl FnMut(&str, P::Row) -> bool,
    ) -> Result<()> {
        use sundial_views::child_rows::{CHILDREN_FROM, CHILDREN_TO};
        let start = view_key(P::NAME, "");
        let end = prefix_end(&start);
        let (below, above) = (
            view_key(P::NAME, CHILDREN_FROM),
            view_key(P::NAME, CHILDREN_TO),
        );
        if self.visit_range::<P>(start, below, &mut visit).await? {
            self.visit_range::<P>(above, end, &mut visit).await?;
        }
        Ok(())
    }

    /// Every parent row of view `P` with the key it stands for (unescaped,
    /// see `child_rows`), in key order, child rows left out unread.
    pub async fn parents<P: Projection>(&self) -> Result<Vec<(String, P::Row)>> {
        let mut out = Vec::new();
        self.visit_parents::<P>(|key, row| {
            out.push((sundial_views::child_rows::unescape(key).to_owned(), row));
            true
        })
        .await?;
        Ok(out)
    }

    /// Visits the rows of view `P` with keys in `[start, end)` (whole
    /// storage keys), in key order, until `visit` returns false; returns
    /// false when it did.
    async fn visit_range<P: Projection>(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        visit: impl FnMut(&str, P::Row) -> bool,
    ) -> Result<bool> {
        self.visit_decoded(P::NAME, start, end, visit).await
    }

    /// [`ViewStore::visit_range`] of rows of any type stored under view
    /// `view` (a view's older row format, say).
    async fn visit_decoded<R: serde::de::DeserializeOwned>(
        &self,
        view: &str,
        start: Vec<u8>,
        end: Vec<u8>,
        mut visit: impl FnMut(&str, R) -> bool,
    ) -> Result<bool> {
        let base = view_key(view, "").len();
        let mut it = self.handle.scan(start, end).await?;
        while let Some(kv) = it.next().await? {
            let row: R = sundial_views::decode_row(&kv.value).map_err(|e| corrupt(&kv.key, e))?;
            let key = std::str::from_utf8(&kv.key[base..]).unwrap_or_default();
            if !visit(key, row) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Visits rows of type `R` stored under view `view` with keys in
    /// `[from, to)` (keys within the view; `None`: to the view's end), in
    /// key order, until `visit` returns false.
    pub async fn visit_between<R: serde::de::DeserializeOwned>(
        &self,
        view: &str,
        from: &str,
        to: Option<&str>,
        visit: impl FnMut(&str, R) -> bool,
    ) -> Result<bool> {
        let end = match to {
            Some(to) => view_key(view, to),
            None => prefix_end(&view_key(view, "")),
        };
        self.visit_decoded(view, view_key(view, from), end, visit)
            .await
    }

    /// Every stage row (workers' share rows left out) as of `log_offset`
    /// (the job row's), decoded once per offset.
    pub async fn stages(
        &self,
        log_offset: u64,
    ) -> Result<Arc<Vec<sundial_views::stage::StageRow>>> {
        let cached = self
            .stages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some((at, rows)) = cached {
            if at == log_offset {
                return Ok(rows);
            }
        }
        let mut rows = Vec::new();
        self.visit_parents::<sundial_views::stage::StageView>(|_, row| {
            rows.push(row);
            true
        })
        .await?;
        let rows = Arc::new(rows);
        // Rows read after the job row may be newer than `log_offset` on a
        // live attempt: cache them under the offset read now only if it
        // did not move meanwhile.
        if self.job().await?.log_offset == log_offset {
            *self.stages.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((log_offset, rows.clone()));
        }
        Ok(rows)
    }

    /// Every row of view `P` under `prefix`, in key order.
    pub async fn all<P: Projection>(&self, prefix: &str) -> Result<Vec<P::Row>> {
        let mut out = Vec::new();
        self.visit::<P>(prefix, |_, r| {
            out.push(r);
            true
        })
        .await?;
        Ok(out)
    }

    /// The log records at sequences `seqs` (ascending; up to `as_of` on a
    /// time-travel store), reading each segment that holds some once.
    pub async fn records_at(&self, seqs: &[u64]) -> Result<Vec<LogRecord>> {
        let cap = self.handle.log_cap().unwrap_or(u64::MAX);
        let mut out = Vec::with_capacity(seqs.len());
        let mut at = 0;
        while let Some(&seq) = seqs.get(at) {
            if seq > cap {
                break;
            }
            // The segment holding `seq` is the first key at or after it.
            let mut it = self
                .handle
                .scan(
                    segment_key(seq).into_bytes(),
                    prefix_end(LOG_PREFIX.as_bytes()),
                )
                .await?;
            let Some(kv) = it.next().await? else { break };
            let seg = decode_segment(&kv.value).map_err(|e| corrupt(&kv.key, e))?;
            let last = seg.last().map_or(seq, |r| r.seq);
            for r in seg {
                while seqs.get(at).is_some_and(|s| *s < r.seq) {
                    at += 1;
                }
                if seqs.get(at) == Some(&r.seq) && r.seq <= cap {
                    out.push(r);
                    at += 1;
                }
            }
            // Past this segment (a sequence it lacks is not in the log).
            while seqs.get(at).is_some_and(|s| *s <= last) {
                at += 1;
            }
            if seqs.get(at) == Some(&seq) {
                at += 1;
            }
        }
        Ok(out)
    }

    /// Up to `limit` log records from sequence `from` on (up to `as_of`
    /// on a time-travel store).
    pub async fn log(&self, from: u64, limit: usize) -> Result<Vec<LogRecord>> {
        let cap = self.handle.log_cap().unwrap_or(u64::MAX);
        let start = segment_key(from).into_bytes();
        let mut it = self
            .handle
            .scan(start, prefix_end(LOG_PREFIX.as_bytes()))
            .await?;
        let mut out = Vec::new();
        while let Some(kv) = it.next().await? {
            let seg = decode_segment(&kv.value).map_err(|e| corrupt(&kv.key, e))?;
            for r in seg {
                if r.seq > cap {
                    return Ok(out);
                }
                if r.seq >= from {
                    out.push(r);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }
}
