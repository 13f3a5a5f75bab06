//! The ingest loop's core: one batch of raw records in, one atomic SlateDB
//! write out (a replay's write holds several batches), holding the batch's
//! log segment, every view row it changed (each once, however often it
//! changed) and the new position. A crash at any instant therefore leaves
//! views equal to a replay of the stored log.
//! Never awaits durability per batch; `flush` does, at the end.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use slatedb::{Db, WriteBatch};
use sundial_views::projector::{Entry, Outcome};
use sundial_views::Projector;

use crate::error::{Error, Result};
use crate::ingest::decode::entry;
use crate::ingest::prepared::{encode_segment, Prepared, SegmentPlan};
use crate::ingest::record::SourceRecord;
use crate::store::event_log::{
    segment_key, view_key, AttemptMeta, Position, ATTEMPT_KEY, POSITION_KEY,
};
use crate::store::view_store::Handle;

/// Rows kept in memory per view before the least recently used are dropped.
const CACHE_ROWS: usize = 200_000;
/// Row loads in flight at once when a batch needs rows from storage.
const LOAD_CONCURRENCY: usize = 32;

/// Counters over everything this engine ingested.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub records: u64,
    pub applied: u64,
    pub dead_letters: u64,
    pub duplicates: u64,
    pub batches: u64,
}

/// Projects records of one job attempt into its database.
pub struct Engine {
    db: Arc<Db>,
    job_id: String,
    projector: Projector,
    position: Position,
    totals: Totals,
    /// False when rebuilding views in place: no log segment, no position.
    write_log: bool,
    /// Take a view snapshot every this many log sequences (0 = never).
    snapshot_every: u64,
    /// The first sequence at or past which the next snapshot is due.
    next_snapshot: u64,
    /// A snapshot begun and not indexed yet.
    pending_snapshot: Option<crate::store::snapshots::Pending>,
    /// Why this engine's first dead letter was rejected, if it met one.
    first_dead: Option<String>,
    /// True when a batch's write may still be going on while the next
    /// batch is projected (see [`Engine::pipeline_writes`]).
    pipelined: bool,
    /// The last batch's write, when pipelined and not awaited yet.
    in_flight: Option<tokio::task::JoinHandle<std::result::Result<(), slatedb::Error>>>,
    /// Records applied before a commit (see [`Engine::group_commits`]).
    group: u64,
    /// Records applied since the last commit, and their log segments.
    open: (u64, WriteBatch),
}

impl Engine {
    /// Opens the engine over an attempt's database, resuming at its stored
    /// position, and records the attempt's identity if it is new.
    pub async fn open(db: Arc<Db>, meta: AttemptMeta) -> Result<Engine> {
        let position = match db.get(POSITION_KEY).await? {
            Some(b) => rmp_serde::from_slice(&b).map_err(|e| Error::Corrupt {
                key: POSITION_KEY.into(),
                detail: e.to_string(),
            })?,
            None => Position {
                next_seq: 1,
                ..Position::default()
            },
        };
        if db.get(ATTEMPT_KEY).await?.is_none() {
            db.put(
                ATTEMPT_KEY,
                rmp_serde::to_vec_named(&meta).unwrap_or_default(),
            )
            .await?;
            // Durable now, not at the first flush interval: a projector
            // killed before that would otherwise leave an attempt its
            // restart cannot tell was fed from the same topic, and start
            // another.
            db.flush().await?;
        }
        let fresh = position.next_seq <= 1;
        let every = crate::store::snapshots::every();
        let next_snapshot = crate::store::snapshots::next_boundary(position.next_seq - 1, every);
        Ok(Engine {
            db,
            job_id: meta.job_id,
            projector: Projector::new(fresh),
            position,
            totals: Totals::default(),
            write_log: true,
            snapshot_every: every,
            next_snapshot,
            pending_snapshot: None,
            first_dead: None,
            pipelined: false,
            in_flight: None,
            group: 1,
            open: (0, WriteBatch::new()),
        })
    }

    /// An engine that rebuilds only the named views of an attempt in place
    /// from its log (fed again from sequence 1): the same projection code,
    /// writing only those views' rows (their old rows must be deleted
    /// first), never the log, the position or a snapshot.
    pub fn rebuild(db: Arc<Db>, job_id: &str, views: &[&str]) -> Result<Engine> {
        let projector = Projector::only(views, true).map_err(|e| Error::invalid("views", e))?;
        Ok(Engine {
            db,
            job_id: job_id.to_owned(),
            projector,
            position: Position {
                next_seq: 1,
                ..Position::default()
            },
            totals: Totals::default(),
            write_log: false,
            snapshot_every: 0,
            next_snapshot: u64::MAX,
            pending_snapshot: None,
            first_dead: None,
            pipelined: false,
            in_flight: None,
            group: 1,
            open: (0, WriteBatch::new()),
        })
    }

    /// Where the engine stands: next log sequence and source offsets.
    pub fn position(&self) -> &Position {
        &self.position
    }

    /// What this engine ingested since it opened.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Why the first dead letter this engine met was rejected: the hint a
    /// replay gives when nothing at all was applied (a wrong `--job`, say).
    pub fn first_dead_letter(&self) -> Option<&str> {
        self.first_dead.as_deref()
    }

    /// The database it writes.
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// Lets each batch's write go on while the next batch is projected:
    /// it is awaited before the next write, before any row is read back,
    /// and by [`Engine::flush`]. Batches stay atomic and in order; only
    /// the moment a write's error is seen moves, one batch later. For
    /// replays and rebuilds, where waiting for SlateDB to take each batch
    /// left a core idle (~8 % of the main thread's time); the daemon keeps
    /// every batch written before it takes the next.
    pub fn pipeline_writes(&mut self) {
        self.pipelined = true;
    }

    /// Commits batches together, once at least `records` records are
    /// applied, instead of each alone: one write holds their log segments,
    /// the view rows they changed (each once, with its last value) and the
    /// position after the last of them, still atomic, so a crash leaves
    /// views equal to the stored log. A row changed by several of them is
    /// encoded and written once instead of once per batch: a rebuild
    /// rewrote every active worker's rows (metrics, sequence chunks) each
    /// 16 384 records, ~180 MB of rows for a 5 M-event job. For replays and
    /// rebuilds, which nobody reads until they end; the daemon commits each
    /// batch as it comes, so its views are never behind its log. A view
    /// snapshot falling due commits the batches before it at once.
    pub fn group_commits(&mut self, records: u64) {
        self.group = records.max(1);
    }

    /// Decodes, projects and commits one batch atomically, with the batches
    /// before it when commits are grouped (prepared here, in line: a
    /// [`crate::ingest::prepared::Preparer`] does it ahead instead).
    pub async fn ingest(&mut self, batch: Vec<SourceRecord>) -> Result<()> {
        let plan = if self.write_log {
            SegmentPlan::Encode
        } else {
            SegmentPlan::None
        };
        let p = Prepared::new(batch, &self.job_id, self.position.next_seq, plan);
        self.ingest_prepared(&p).await
    }

    /// The job this engine projects.
    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// The sequence the next record ingested gets (where a
    /// [`crate::ingest::prepared::Preparer`] feeding this engine starts).
    pub fn next_seq(&self) -> u64 {
        self.position.next_seq
    }

    /// Projects one prepared batch and commits it atomically: its log
    /// segment, every view row it changed and the new position in one
    /// write (with the batches before it, see [`Engine::group_commits`]).
    pub async fn ingest_prepared(&mut self, p: &Prepared) -> Result<()> {
        if p.is_empty() {
            return Ok(());
        }
        let (batch, decoded) = (p.records(), p.decoded());
        let first = self.position.next_seq;
        // Prepared for other sequences (never, fed in order): encoded here.
        let segment = match p.segment_at(first)? {
            Some(s) => s,
            None if self.write_log => encode_segment(batch, first, &mut Default::default())?,
            None => Bytes::new(),
        };
        if self.projector.may_miss() {
            // Rows are read back only once the last batch's rows are written.
            self.settle().await?;
        }
        let handle = Handle::Writer(self.db.clone());
        load_rows(
            &mut self.projector,
            &handle,
            first,
            decoded.iter().map(entry),
        )
        .await?;
        let entries: Vec<Entry> = decoded.iter().map(entry).collect();
        let outcomes = self.projector.apply_batch(first, &entries);
        for outcome in outcomes {
            match outcome {
                Outcome::Applied => self.totals.applied += 1,
                Outcome::Duplicate => self.totals.duplicates += 1,
                Outcome::Dead => self.totals.dead_letters += 1,
            }
        }
        if self.first_dead.is_none() && self.totals.dead_letters > 0 {
            self.first_dead = decoded
                .iter()
                .find_map(|d| d.as_ref().err())
                .map(|d| d.reason.clone());
        }
        let last = first + batch.len() as u64 - 1;
        self.position.next_seq = last + 1;
        if self.write_log {
            self.open
                .1
                .put_bytes(segment_key(last).into_bytes().into(), segment);
            // Per run of one partition's records, not per record: a batch
            // is usually one long run per partition.
            for run in batch.chunk_by(|a, b| a.partition == b.partition) {
                let end = run.iter().map(|r| r.offset + 1).max().unwrap_or(0);
                let next = self
                    .position
                    .partitions
                    .entry(run[0].partition)
                    .or_insert(0);
                *next = (*next).max(end);
            }
        }
        self.totals.records += batch.len() as u64;
        self.totals.batches += 1;
        self.open.0 += batch.len() as u64;
        let snapshot_due = self.write_log && self.snapshot_every > 0 && last >= self.next_snapshot;
        if self.open.0 >= self.group || snapshot_due {
            self.commit().await?;
        }
        self.projector.evict(CACHE_ROWS);
        if snapshot_due {
            // After the batch's write: the snapshot holds exactly the views
            // as of `last`, a batch boundary. It is stored while the next
            // batches go on (waiting for it stalled ingest ~0.2 s each time).
            self.settle().await?;
            self.index_pending_snapshot().await?;
            let pending = crate::store::snapshots::Pending::begin(&self.db, last).await?;
            self.pending_snapshot = Some(pending);
            self.next_snapshot = crate::store::snapshots::next_boundary(last, self.snapshot_every);
        }
        Ok(())
    }

    /// Writes the batches applied since the last commit as one: their log
    /// segments, the view rows they changed and the position.
    async fn commit(&mut self) -> Result<()> {
        let (records, mut wb) = std::mem::replace(&mut self.open, (0, WriteBatch::new()));
        if records == 0 {
            return Ok(());
        }
        // Handed over as they are (`put` would copy key and row again).
        self.projector.drain_dirty(&mut |view, key, bytes| {
            wb.put_bytes(view_key(view, key).into(), bytes.into())
        })?;
        if !self.write_log {
            // A batch may change none of the views being rebuilt.
            if !wb.is_empty() {
                self.write(wb).await?;
            }
            return Ok(());
        }
        if self.pending_snapshot.as_ref().is_some_and(|p| p.is_done()) {
            if let Some(p) = self.pending_snapshot.take() {
                p.index_into(&mut wb).await?;
            }
        }
        wb.put(
            POSITION_KEY,
            rmp_serde::to_vec_named(&self.position).unwrap_or_default(),
        );
        self.write(wb).await
    }

    /// True once SlateDB closed the database because a newer writer
    /// opened the attempt. Its background tasks may notice that after this
    /// writer's last write, and a daemon with no records left to write
    /// would otherwise never hear of it.
    pub fn fenced(&self) -> bool {
        matches!(
            self.db.subscribe().borrow().close_reason,
            Some(slatedb::CloseReason::Fenced)
        )
    }

    /// Waits until everything written so far is durable, the last
    /// snapshot begun included (and indexed).
    pub async fn flush(&mut self) -> Result<()> {
        self.commit().await?;
        self.settle().await?;
        self.index_pending_snapshot().await?;
        self.db.flush().await?;
        Ok(())
    }

    /// Writes one batch: at once, or when pipelined after the last one
    /// finished, in a task of its own.
    async fn write(&mut self, wb: WriteBatch) -> Result<()> {
        self.settle().await?;
        if !self.pipelined {
            self.db.write(wb).await?;
            return Ok(());
        }
        let db = self.db.clone();
        self.in_flight = Some(tokio::spawn(async move { db.write(wb).await.map(drop) }));
        Ok(())
    }

    /// Waits for the write still going on, if any; its error is this one's.
    async fn settle(&mut self) -> Result<()> {
        let Some(write) = self.in_flight.take() else {
            return Ok(());
        };
        match write.await {
            Ok(done) => Ok(done?),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(Error::Unavailable(format!("write of a batch stopped: {e}"))),
        }
    }

    /// Waits for the snapshot begun last, if any, and writes its index entry.
    async fn index_pending_snapshot(&mut self) -> Result<()> {
        if let Some(p) = self.pending_snapshot.take() {
            let mut wb = WriteBatch::new();
            p.index_into(&mut wb).await?;
            self.db.write(wb).await?;
        }
        Ok(())
    }
}

/// Loads into `projector` the stored rows the records from sequence `first`
/// on need (those it has not cached), from `handle`: the engine's own
/// database, or a snapshot when answering `as_of`.
pub(crate) async fn load_rows<'m, 'a: 'm>(
    projector: &mut Projector,
    handle: &Handle,
    first: u64,
    entries: impl Iterator<Item = Entry<'m, 'a>>,
) -> Result<()> {
    if !projector.may_miss() {
        return Ok(());
    }
    let mut wanted = Vec::new();
    for (i, e) in entries.enumerate() {
        projector.misses(first + i as u64, e, &mut wanted);
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let mut seen = HashSet::new();
    wanted.retain(|w| seen.insert(w.clone()));
    // Futures made up front: a closure inside the stream type trips
    // rustc's higher-ranked `Send` check in the HTTP handlers.
    let loads: Vec<_> = wanted
        .into_iter()
        .map(|(view, key)| load_one(handle.clone(), view, key))
        .collect();
    let loaded: Vec<(&'static str, String, Option<bytes::Bytes>)> = stream::iter(loads)
        .buffer_unordered(LOAD_CONCURRENCY)
        .try_collect()
        .await?;
    for (view, key, bytes) in loaded {
        projector
            .load(view, &key, bytes.as_deref())
            .map_err(|e| Error::Corrupt {
                key: format!("v/{view}/{key}"),
                detail: e.to_string(),
            })?;
    }
    Ok(())
}

async fn load_one(
    handle: Handle,
    view: &'static str,
    key: String,
) -> Result<(&'static str, String, Option<bytes::Bytes>)> {
    let bytes = handle.get(&view_key(view, &key)).await?;
    Ok((view, key, bytes))
}

#[cfg(test)]
mod tests {
    use super::{Engine, SourceRecord};
    use crate::store::event_log::AttemptMeta;
    use crate::store::storage::Storage;
    use std::sync::Arc;

    async fn engine(name: &str, pipelined: bool) -> (Engine, Arc<slatedb::Db>) {
        let storage = Storage::from_url(&format!("memory://{name}")).unwrap();
        let db = Arc::new(storage.open_bulk_writer("j1", "a1").await.unwrap());
        let meta = AttemptMeta {
            job_id: "j1".into(),
            attempt_id: "a1".into(),
            created_ms: 0,
            source: String::new(),
            in_progress: false,
        };
        let mut engine = Engine::open(db.clone(), meta).await.unwrap();
        if pipelined {
            engine.pipeline_writes();
        }
        (engine, db)
    }

    fn batch() -> Vec<SourceRecord> {
        vec![SourceRecord {
            value: bytes::Bytes::from_static(b"not json"),
            ..SourceRecord::default()
        }]
    }

    #[tokio::test]
    async fn a_pipelined_write_reports_its_failure_one_step_later() {
        let (mut plain, db) = engine("engine-write-plain", false).await;
        plain.ingest(batch()).await.unwrap();
        db.close().await.unwrap();
        assert!(plain.ingest(batch()).await.is_err());

        let (mut piped, db) = engine("engine-write-piped", true).await;
        piped.ingest(batch()).await.unwrap();
        piped.flush().await.unwrap();
        db.close().await.unwrap();
        // Handed to a task: the failure is seen by the next step.
        piped.ingest(batch()).await.unwrap();
        let err = piped.ingest(batch()).await.unwrap_err();
        assert!(err.to_string().contains("closed"), "{err}");
    }

    fn records(n: usize) -> Vec<SourceRecord> {
        use crate::simulate::{simulate, Scenario, SimConfig};
        simulate(&SimConfig::new("j1", Scenario::Realistic, n))
            .enumerate()
            .map(|(i, v)| SourceRecord {
                offset: i as i64,
                value: v.into(),
                ..SourceRecord::default()
            })
            .collect()
    }

    async fn stored(db: &slatedb::Db) -> Vec<(bytes::Bytes, bytes::Bytes)> {
        let mut it = db.scan(Vec::<u8>::new()..).await.unwrap();
        let mut out = Vec::new();
        while let Some(kv) = it.next().await.unwrap() {
            out.push((kv.key, kv.value));
        }
        out
    }

    #[tokio::test]
    async fn grouped_commits_store_what_batch_by_batch_commits_store() {
        let recs = records(3_000);
        let batches: Vec<Vec<SourceRecord>> = recs.chunks(250).map(<[_]>::to_vec).collect();
        let (mut each, each_db) = engine("engine-group-each", false).await;
        for b in &batches {
            each.ingest(b.clone()).await.unwrap();
        }
        each.flush().await.unwrap();

        let (mut grouped, db) = engine("engine-group-grouped", true).await;
        grouped.group_commits(1_000);
        for b in &batches[..3] {
            grouped.ingest(b.clone()).await.unwrap();
        }
        // 750 records applied, none committed: no position, no log yet.
        grouped.settle().await.unwrap();
        assert_eq!(stored(&db).await.len(), 1, "only the attempt's identity");
        for b in &batches[3..] {
            grouped.ingest(b.clone()).await.unwrap();
        }
        grouped.flush().await.unwrap();
        let (a, b) = (stored(&each_db).await, stored(&db).await);
        assert!(a.len() > 500, "{} rows", a.len());
        assert_eq!(a.len(), b.len());
        assert!(a == b, "every log segment, view row and the position alike");
    }
}
