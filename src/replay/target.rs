//! `sundial replay` from a file: rebuild an attempt's log and views from a
//! recorded stream, then print one summary line. The same engine as the
//! live projector, so a replay equals the live result byte for byte.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::clock::{new_attempt_id, now_ms};
use crate::error::{Error, Result};
use crate::ingest::engine::{Engine, Totals};
use crate::ingest::prepared::{Prepared, Preparer};
use crate::ingest::record::SourceRecord;
use crate::ingest::source::file::FileSource;
use crate::replay::progress::Progress;
use crate::store::event_log::{AttemptMeta, Position, ATTEMPT_KEY, POSITION_KEY};
use crate::store::lease::{Lease, Writer};
use crate::store::storage::Storage;
use crate::store::view_store::{Handle, ViewStore};

/// Records per ingest batch (one log segment, one SlateDB write).
pub const DEFAULT_BATCH: usize = 16_384;

/// Records a replay or rebuild applies before it commits them in one write
/// (see [`Engine::group_commits`]): eight default batches, faster than
/// each batch alone or four (figures: docs/performance.md, "Measured choices in the code").
pub const GROUP: u64 = 8 * DEFAULT_BATCH as u64;

/// How a replay writes: into which attempt, whether it continues one that
/// holds records, the largest record it takes whole, progress or not.
#[derive(Debug, Clone, Copy)]
pub struct ReplayOptions<'a> {
    /// The attempt to write; `None` = a new one.
    pub attempt: Option<&'a str>,
    /// Continue an attempt that already holds records of the same source
    /// from its stored position (see [`Target::open_with`]).
    pub resume: bool,
    /// The largest record taken whole from a file or a topic (a log is
    /// replayed as stored).
    pub max_record_bytes: usize,
    /// Progress lines on stderr.
    pub progress: bool,
}

impl Default for ReplayOptions<'_> {
    fn default() -> Self {
        ReplayOptions {
            attempt: None,
            resume: false,
            max_record_bytes: crate::ingest::source::limit::DEFAULT_MAX_RECORD_BYTES,
            progress: false,
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub totals: Totals,
    pub seconds: f64,
    /// Why the first dead letter was rejected, if there was one.
    pub first_dead_letter: Option<String>,
}

impl Summary {
    /// A line for stderr whenever records became dead letters: they are
    /// stored and listed, but a replay that says nothing of them looks
    /// whole. When none at all was applied it says so, most often because
    /// the records belong to another job than `--job`: quietly storing a
    /// history of nothing but dead letters would look like a job that
    /// never ran.
    pub fn warning(&self) -> Option<String> {
        let t = &self.totals;
        if t.dead_letters == 0 {
            return None;
        }
        let reason = self.first_dead_letter.as_deref().unwrap_or("unknown");
        if t.applied == 0 {
            return Some(format!(
                "warning: none of the {} records was applied, {} are dead letters (the first: {reason})",
                t.records, t.dead_letters
            ));
        }
        Some(format!(
            "warning: {} of the {} records are dead letters, stored and listed under the job's dead-letters (the first: {reason})",
            t.dead_letters, t.records
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
    /// Held from before the first write until the attempt is sealed.
    lease: Option<Lease>,
    /// When resuming: per partition, the first offset not yet applied;
    /// records below it are dropped, never applied twice.
    skip_below: Option<BTreeMap<i32, i64>>,
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
    /// records from `source` (recorded in the attempt's identity); an
    /// attempt that already holds records is refused.
    pub async fn open(
        storage: &Storage,
        job: &str,
        attempt: Option<&str>,
        source: &str,
    ) -> Result<Target> {
        Self::open_with(storage, job, attempt, source, false).await
    }

    /// [`Target::open`]; with `resume`, an attempt that already holds
    /// records of the same `source` is continued from its stored position
    /// instead of refused (records below it are dropped as they come).
    /// Takes the attempt's writer lease first (`busy:` while another
    /// writer holds it) and marks the attempt in progress until sealed.
    pub async fn open_with(
        storage: &Storage,
        job: &str,
        attempt: Option<&str>,
        source: &str,
        resume: bool,
    ) -> Result<Target> {
        crate::store::storage::validate_id("job id", job)?;
        let attempt = match attempt {
            Some(a) => a.to_owned(),
            None => new_attempt_id(&storage.list_attempts(job).await.unwrap_or_default()),
        };
        crate::store::storage::validate_id("attempt id", &attempt)?;
        // A missing bucket: one clear line before the lease's first write.
        storage.check().await?;
        let interval = crate::store::lease::default_interval(storage);
        let lease = Lease::acquire(storage, job, &attempt, interval, Writer::Replay).await?;
        match Self::open_leased(storage, job, &attempt, source, resume).await {
            Ok(mut target) => {
                target.lease = Some(lease);
                Ok(target)
            }
            Err(e) => {
                lease.release().await;
                Err(e.or_fenced(job, &attempt))
            }
        }
    }

    async fn open_leased(
        storage: &Storage,
        job: &str,
        attempt: &str,
        source: &str,
        resume: bool,
    ) -> Result<Target> {
        let skip_below = match held(storage, job, attempt).await? {
            None => None,
            Some((position, meta)) if resume && meta.source == source => {
                tracing::info!(
                    job,
                    attempt,
                    next_seq = position.next_seq,
                    "resuming the attempt from its stored position"
                );
                Some(position.partitions)
            }
            Some((_, meta)) if resume => {
                return Err(Error::invalid(
                    "attempt",
                    format!(
                        "job={job} attempt={attempt} was fed from {}, not {source}; \
                         --resume continues an attempt from the same source only: \
                         leave out --attempt for a new attempt",
                        meta.source
                    ),
                ))
            }
            Some((position, meta)) => {
                return Err(Error::invalid(
                    "attempt",
                    format!(
                        "job={job} attempt={attempt} already holds {} records (from {}); \
                         a replay never applies records twice: pass --resume to continue \
                         it from its stored position, or leave out --attempt for a new attempt",
                        position.next_seq.saturating_sub(1),
                        meta.source
                    ),
                ))
            }
        };
        crate::store::attempt_state::begin(storage, job, attempt, Some(source)).await?;
        let db = Arc::new(storage.open_bulk_writer(job, attempt).await?);
        let meta = AttemptMeta {
            job_id: job.to_owned(),
            attempt_id: attempt.to_owned(),
            created_ms: now_ms(),
            source: source.to_owned(),
            in_progress: false,
        };
        let engine = Engine::open(db.clone(), meta).await?;
        let mut target = Target::start(
            storage,
            db,
            engine,
            attempt.to_owned(),
            true,
            Instant::now(),
        )?;
        target.skip_below = skip_below;
        Ok(target)
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
            lease: None,
            skip_below: None,
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
        mut batch: Vec<SourceRecord>,
        mut stored: Option<(u64, Bytes)>,
    ) -> Result<()> {
        if let Some(skip) = &self.skip_below {
            let before = batch.len();
            batch.retain(|r| skip.get(&r.partition).is_none_or(|next| r.offset >= *next));
            if batch.len() != before {
                // Part of the segment is gone: it is encoded anew.
                stored = None;
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        if self.lease.as_ref().is_some_and(Lease::lost) {
            return Err(self.fenced());
        }
        let pushed = self.prep.push(batch, stored).await;
        if let Some(p) = pushed.map_err(|e| e.or_fenced(&self.job, &self.attempt))? {
            self.apply(&p).await?;
        }
        Ok(())
    }

    fn fenced(&self) -> Error {
        Error::Fenced {
            job: self.job.clone(),
            attempt: self.attempt.clone(),
        }
    }

    async fn apply(&mut self, p: &Prepared) -> Result<()> {
        let applied = self.engine.ingest_prepared(p).await;
        applied.map_err(|e| e.or_fenced(&self.job, &self.attempt))?;
        self.progress.update(self.engine.totals().records);
        Ok(())
    }

    /// Makes everything durable, seals and closes the attempt, releases
    /// its lease; its id and the summary.
    pub async fn finish(mut self) -> Result<(String, Summary)> {
        let (job, attempt) = (self.job.clone(), self.attempt.clone());
        let lease = self.lease.take();
        let storage = self.storage.clone();
        let result = self.seal().await.map_err(|e| e.or_fenced(&job, &attempt));
        if result.is_ok() {
            crate::store::attempt_state::seal(&storage, &job, &attempt).await?;
        }
        if let Some(lease) = lease {
            lease.release().await;
        }
        result
    }

    async fn seal(mut self) -> Result<(String, Summary)> {
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

/// The stored position and identity of an attempt that already holds
/// records, read without opening it for writing (which would fence its
/// writer and drop its sealed summary); `None` for a new or empty one.
async fn held(
    storage: &Storage,
    job: &str,
    attempt: &str,
) -> Result<Option<(Position, AttemptMeta)>> {
    if !storage.attempt_exists(job, attempt).await? {
        return Ok(None);
    }
    let reader = storage.open_reader(job, attempt).await?;
    let corrupt = |key: &str, e: rmp_serde::decode::Error| Error::Corrupt {
        key: key.to_owned(),
        detail: e.to_string(),
    };
    let position: Option<Position> = match reader.get(POSITION_KEY).await? {
        Some(b) => Some(rmp_serde::from_slice(&b).map_err(|e| corrupt(POSITION_KEY, e))?),
        None => None,
    };
    let meta: AttemptMeta = match reader.get(ATTEMPT_KEY).await? {
        Some(b) => rmp_serde::from_slice(&b).map_err(|e| corrupt(ATTEMPT_KEY, e))?,
        None => AttemptMeta::default(),
    };
    reader.close().await?;
    Ok(position.filter(|p| p.next_seq > 1).map(|p| (p, meta)))
}
