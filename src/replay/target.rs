//! `sundial replay` from a file: rebuild an attempt's log and views from a
//! recorded stream, then print one summary line. The same engine as the
//! live projector, so a replay equals the live result byte for byte.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::clock::{new_attempt_id, now_ms};
use crate::error::Result;
use crate::ingest::engine::{Engine, Totals};
use crate::ingest::prepared::{Prepared, Preparer};
use crate::ingest::record::SourceRecord;
use crate::ingest::source::file::FileSource;
use crate::replay::progress::Progress;
use crate::store::event_log::AttemptMeta;
use crate::store::storage::Storage;
use crate::store::view_store::{Handle, ViewStore};

/// Records per ingest batch (one log segment, one SlateDB write).
pub const DEFAULT_BATCH: usize = 16_384;

/// Records a replay or rebuild applies before it commits them in one write
/// (see [`Engine::group_commits`]): eight default batches, faster than
/// each batch alone or four (figures: docs/performance.md, "Measured choices in the code").
pub const GROUP: u64 = 8 * DEFAULT_BATCH as u64;

/// What a replay did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub totals: Totals,
    pub seconds: f64,
    /// Why the first dead letter was rejected, if there was one.
    pub first_dead_letter: Option<String>,
}

impl Summary {
    /// A line for stderr when records came in but none was applied: every
    /// one was a dead letter, most often because they belong to another
    /// job than `--job`. Quietly storing a history of nothing but dead
    /// letters would look like a job that never ran.
    pub fn warning(&self) -> Option<String> {
        let t = &self.totals;
        if t.applied > 0 || t.dead_letters == 0 {
            return None;
        }
        let reason = self.first_dead_letter.as_deref().unwrap_or("unknown");
        Some(format!(
            "warning: none of the {} records was applied, {} are dead letters (the first: {reason})",
            t.records, t.dead_letters
        ))
    }

    /// Records per second, wall clock.
    pub fn rate(&self) -> f64 {
        self.totals.records as f64 / self.seconds.max(1e-9)
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "events={} applied={} dead_letters={} duplicates={} seconds={:.3} events_per_s={:.0}",
            self.totals.records,
            self.totals.applied,
            self.totals.dead_letters,
            self.totals.duplicates,
            self.seconds,
            self.rate()
        )
    }
}

/// Replays `input` into attempt `attempt` of `job` (a new attempt if `None`);
/// returns the attempt id and the summary.
pub async fn replay_file(
    storage: &Storage,
    job: &str,
    attempt: Option<&str>,
    input: &str,
    batch: usize,
) -> Result<(String, Summary)> {
    let mut source = FileSource::open(input)?;
    let batch = batch.max(1);
    replay_batches(storage, job, attempt, &format!("file:{input}"), |buf| {
        source.next_batch(batch, buf)
    })
    .await
}

/// Replays the batches `next` fills (it returns false after the last one)
/// into an attempt of `job`; returns the attempt id and the summary.
pub async fn replay_batches(
    storage: &Storage,
    job: &str,
    attempt: Option<&str>,
    source: &str,
    mut next: impl FnMut(&mut Vec<SourceRecord>) -> Result<bool>,
) -> Result<(String, Summary)> {
    let mut target = Target::open(storage, job, attempt, source).await?;
    loop {
        let mut buf = Vec::new();
        let more = next(&mut buf)?;
        target.ingest(buf).await?;
        if !more {
            break;
        }
    }
    target.finish().await
}

/// The attempt a replay or a rebuild writes, and the one commit loop they
/// share: an engine over the attempt, fed batch by batch by any source,
/// its writes pipelined and its commits grouped ([`GROUP`]), batches
/// decoded ahead on a thread of their own while the engine projects, then
/// flushed, sealed with a summary and closed by [`Target::finish`];
/// progress on stderr.
pub struct Target {
    engine: Engine,
    prep: Preparer,
    db: Arc<slatedb::Db>,
    storage: Storage,
    job: String,
    attempt: String,
    started: Instant,
    progress: Progress,
}

impl Target {
    /// Opens attempt `attempt` of `job` (a new one if `None`) to replay
    /// records from `source` (recorded in the attempt's identity).
    pub async fn open(
        storage: &Storage,
        job: &str,
        attempt: Option<&str>,
        source: &str,
    ) -> Result<Target> {
        crate::store::storage::validate_id("job id", job)?;
        let attempt = match attempt {
            Some(a) => a.to_owned(),
            None => new_attempt_id(&storage.list_attempts(job).await.unwrap_or_default()),
        };
        let db = Arc::new(storage.open_bulk_writer(job, &attempt).await?);
        let meta = AttemptMeta {
            job_id: job.to_owned(),
            attempt_id: attempt.clone(),
            created_ms: now_ms(),
            source: source.to_owned(),
        };
        let engine = Engine::open(db.clone(), meta).await?;
        Target::start(storage, db, engine, attempt, true, Instant::now())
    }

    /// The target over `engine`, already open on `db` (attempt `attempt`
    /// of the engine's job); its log written when `log`; the summary's
    /// time counted from `started`.
    pub(crate) fn start(
        storage: &Storage,
        db: Arc<slatedb::Db>,
        mut engine: Engine,
        attempt: String,
        log: bool,
        started: Instant,
    ) -> Result<Target> {
        engine.pipeline_writes();
        engine.group_commits(GROUP);
        let job = engine.job_id().to_owned();
        let prep = Preparer::start_single(&job, engine.next_seq(), log)?;
        Ok(Target {
            engine,
            prep,
            db,
            storage: storage.clone(),
            job,
            attempt,
            started,
            progress: Progress::new("replay", None, false),
        })
    }

    /// Reports progress on stderr, towards `total` records when known.
    pub fn show_progress(&mut self, total: Option<u64>) {
        self.progress = Progress::new("replay", total, true);
    }

    /// Reports progress as `what` when `show`, towards `total` records.
    pub(crate) fn progress_as(&mut self, what: &str, total: Option<u64>, show: bool) {
        self.progress = Progress::new(what, total, show);
    }

    /// The total once known after the start (for the ETA).
    pub fn set_total(&mut self, total: u64) {
        self.progress.set_total(total);
    }

    /// Decodes, projects and commits one batch (an empty one is skipped).
    pub async fn ingest(&mut self, batch: Vec<SourceRecord>) -> Result<()> {
        self.ingest_segment(batch, None).await
    }

    /// [`Target::ingest`] of a batch that may have been read whole from a
    /// stored log segment (its first sequence and bytes): those bytes are
    /// stored again as they are when the batch lands on the same sequences.
    pub async fn ingest_segment(
        &mut self,
        batch: Vec<SourceRecord>,
        stored: Option<(u64, Bytes)>,
    ) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        if let Some(p) = self.prep.push(batch, stored).await? {
            self.apply(&p).await?;
        }
        Ok(())
    }

    async fn apply(&mut self, p: &Prepared) -> Result<()> {
        self.engine.ingest_prepared(p).await?;
        self.progress.update(self.engine.totals().records);
        Ok(())
    }

    /// Makes everything durable, closes the attempt; its id and the summary.
    pub async fn finish(mut self) -> Result<(String, Summary)> {
        while let Some(p) = self.prep.recv().await? {
            self.apply(&p).await?;
        }
        self.engine.flush().await?;
        // Sealed: nothing is committed after it.
        let store =
            ViewStore::open(Handle::Writer(self.db.clone()), &self.job, &self.attempt).await?;
        crate::query::summary::write(&self.storage, &store, true).await?;
        drop(store);
        self.progress.finish();
        let summary = Summary {
            totals: self.engine.totals(),
            seconds: self.started.elapsed().as_secs_f64(),
            first_dead_letter: self.engine.first_dead_letter().map(str::to_owned),
        };
        drop(self.engine);
        self.db.close().await?;
        Ok((self.attempt, summary))
    }
}
