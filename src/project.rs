//! `sundial project`: the per-job projector daemon. Consumes every partition
//! of the job's topic, commits each batch (log segment, changed view rows,
//! per-partition position) in one SlateDB write, serves the job live over
//! HTTP and exits cleanly on a signal or after the job ended and went quiet.
//! While records keep coming, the next batches are decoded on a thread of
//! their own as the engine applies the one before; when the source runs
//! dry, every batch received is applied before waiting for more.
//!
//! Exactly once: the position only moves inside the batch that applied the
//! records, and the source drops everything below it on restart.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::clock::{new_attempt_id, now_ms};
use crate::error::{Error, Result};
use crate::ingest::engine::{Engine, Totals};
use crate::ingest::prepared::{Prepared, Preparer};
use crate::ingest::record::SourceRecord;
use crate::ingest::source::kafka::{KafkaConfig, KafkaSource, Stats};
use crate::query::api::{self, Params, StatusOrRunning};
use crate::replay::target::Summary;
use crate::serve::catalog::Catalog;
use crate::serve::http::{self, AppState, LiveFeed};
use crate::serve::prometheus::{Metrics, StageFigures};
use crate::store::event_log::AttemptMeta;
use crate::store::lease::{Lease, Writer};
use crate::store::storage::Storage;
use crate::store::view_store::{Handle, ViewStore};

/// Default records per batch.
pub const DEFAULT_BATCH_MAX: usize = 16_384;
/// Default wait for more records after the first of a batch.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(5);

/// Everything `sundial project` needs.
pub struct ProjectOptions {
    pub job: String,
    pub storage: Storage,
    pub kafka: KafkaConfig,
    /// Attempt to write; `None` = the job's latest attempt fed from this
    /// topic, or a new one.
    pub attempt: Option<String>,
    /// Always start a new attempt.
    pub new_attempt: bool,
    /// Serve the HTTP API here while running.
    pub http: Option<String>,
    /// Base path, token and the other endpoint settings of that API.
    pub endpoint: crate::serve::endpoint::Endpoint,
    pub batch_max: usize,
    pub linger: Duration,
    /// Exit this long after the job ended with nothing new (`None`: never).
    pub exit_after_end: Option<Duration>,
    pub lease_interval: Duration,
    /// How often SlateDB makes written batches durable (see
    /// [`crate::store::storage::REMOTE_FLUSH`]); the attempt summary is stored at
    /// most every [`summary_interval`] of it.
    pub flush_interval: Duration,
}

/// How often the attempt summary (`serve`'s list entry) is stored while
/// records flow: every second, or every five flushes when flushes are
/// further apart (5 s on S3 by default), adding at most a fifth to the
/// writes' requests; never less often than every 30 s, so a job list stays
/// current whatever `--flush-ms` says.
pub fn summary_interval(flush: Duration) -> Duration {
    GAUGES_EVERY.max(flush * 5).min(SUMMARY_AT_LEAST_EVERY)
}

/// The longest a running projector leaves its summary unwritten.
const SUMMARY_AT_LEAST_EVERY: Duration = Duration::from_secs(30);

/// Picks the attempt to write: the given one, else the latest attempt fed
/// from the same topic (so a restart resumes it), else a new one.
async fn choose_attempt(o: &ProjectOptions, source: &str) -> Result<String> {
    if let Some(a) = &o.attempt {
        return Ok(a.clone());
    }
    let names = o.storage.list_attempts(&o.job).await?;
    if !o.new_attempt {
        let catalog = Catalog::new(o.storage.clone());
        if let Ok(stores) = catalog.attempts(&o.job).await {
            if let Some(s) = stores.iter().find(|s| s.meta.source == source) {
                return Ok(s.meta.attempt_id.clone());
            }
        }
    }
    Ok(new_attempt_id(&names))
}

/// Runs the daemon until `shutdown` resolves or the job ended and went
/// quiet; returns the attempt id and what it ingested.
pub async fn run(
    o: ProjectOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(String, Summary)> {
    crate::store::storage::validate_id("job id", &o.job)?;
    let source = format!("kafka:{}", o.kafka.topic);
    let attempt = choose_attempt(&o, &source).await?;
    crate::store::storage::validate_id("attempt id", &attempt)?;
    // Bind first: a bad address is a usage error before anything is taken.
    let listener = match &o.http {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr.clone())
                .await
                .map_err(|e| Error::invalid("http address", format!("{addr}: {e}")))?,
        ),
        None => None,
    };
    let lease = Lease::acquire(
        &o.storage,
        &o.job,
        &attempt,
        o.lease_interval,
        Writer::Project,
    )
    .await?;
    let result = run_leased(&o, &attempt, &source, listener, &lease, shutdown).await;
    lease.release().await;
    result
        .map(|s| (attempt.clone(), s))
        .map_err(|e| e.or_fenced(&o.job, &attempt))
}

async fn run_leased(
    o: &ProjectOptions,
    attempt: &str,
    source: &str,
    listener: Option<tokio::net::TcpListener>,
    lease: &Lease,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Summary> {
    let db = Arc::new(
        o.storage
            .open_writer_with(&o.job, attempt, o.flush_interval)
            .await?,
    );
    let meta = AttemptMeta {
        job_id: o.job.clone(),
        attempt_id: attempt.to_owned(),
        created_ms: now_ms(),
        source: source.to_owned(),
        in_progress: false,
    };
    let engine = Engine::open(db.clone(), meta).await?;
    let store = Arc::new(ViewStore::open(Handle::Writer(db.clone()), &o.job, attempt).await?);
    let metrics = Arc::new(Metrics::default());
    let (offset_tx, offset_rx) = watch::channel(store.job().await?.log_offset);
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = listener.map(|l| {
        let catalog = Arc::new(Catalog::new(o.storage.clone()));
        catalog.register(store.clone());
        let state = AppState {
            catalog,
            metrics: metrics.clone(),
            live: Some(LiveFeed {
                job: o.job.clone(),
                attempt: attempt.to_owned(),
                offsets: offset_rx,
            }),
            bounds: Default::default(),
        };
        tokio::spawn(http::serve_listener(state, o.endpoint.clone(), l, async {
            let _ = http_stopped.await;
        }))
    });
    tracing::info!(job = %o.job, attempt, topic = %o.kafka.topic, resume_from = ?engine.position().partitions, "projecting");
    let mut daemon = Daemon {
        o,
        engine,
        store,
        metrics,
        offset_tx,
        stats: Stats::default(),
        started: Instant::now(),
        last_gauges: None,
        gauges_stale: false,
        last_summary: None,
        summary_stale: false,
    };
    let outcome = daemon.consume(lease, shutdown).await;
    let _ = stop_http.send(());
    if let Some(mut s) = server {
        // Graceful for plain requests; open `/stream`s do not hold us up.
        if tokio::time::timeout(Duration::from_secs(2), &mut s)
            .await
            .is_err()
        {
            s.abort();
        }
    }
    let mut flushed = daemon.engine.flush().await;
    if flushed.is_ok() && outcome.is_ok() {
        flushed = crate::query::summary::write(&o.storage, &daemon.store, true).await;
    }
    let summary = Summary {
        totals: daemon.engine.totals(),
        seconds: daemon.started.elapsed().as_secs_f64(),
        first_dead_letter: daemon.engine.first_dead_letter().map(str::to_owned),
    };
    drop(daemon);
    let closed = db.close().await;
    outcome?;
    flushed?;
    closed?;
    Ok(summary)
}

struct Daemon<'o> {
    o: &'o ProjectOptions,
    engine: Engine,
    store: Arc<ViewStore>,
    metrics: Arc<Metrics>,
    offset_tx: watch::Sender<u64>,
    stats: Stats,
    started: Instant,
    last_gauges: Option<Instant>,
    gauges_stale: bool,
    last_summary: Option<Instant>,
    summary_stale: bool,
}

/// Dead letters with nothing applied before the daemon warns that the
/// topic seems to carry another job's records (once per run).
const ALL_DEAD_WARNING: u64 = 1_000;
/// How often idle-time work runs (quiet-exit check, lag gauges, lease).
const TICK: Duration = Duration::from_millis(250);
/// How often the job's stage gauges are recomputed from the views.
const GAUGES_EVERY: Duration = Duration::from_secs(1);

impl Daemon<'_> {
    async fn consume(
        &mut self,
        lease: &Lease,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let (tx, mut rx) = mpsc::channel::<Vec<SourceRecord>>(16);
        let mut source = KafkaSource::start(
            self.o.kafka.clone(),
            self.engine.position().partitions.clone(),
            tx,
        )?;
        self.stats = source.stats.clone();
        let mut ended = self.store.job().await?.status_or_running() != "RUNNING";
        let mut last_record = Instant::now();
        let mut batch: Vec<SourceRecord> = Vec::new();
        let mut prep = Preparer::start(&self.o.job, self.engine.next_seq(), true)?;
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let result = loop {
            let linger = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = &mut shutdown => {
                    tracing::info!("signal: flushing and stopping");
                    break Ok(());
                }
                chunk = rx.recv() => match chunk {
                    Some(c) => {
                        if batch.is_empty() {
                            deadline = Some(tokio::time::Instant::now() + self.o.linger);
                        }
                        batch.extend(c);
                        while batch.len() < self.o.batch_max {
                            match rx.try_recv() {
                                Ok(c) => batch.extend(c),
                                Err(_) => break,
                            }
                        }
                        last_record = Instant::now();
                    }
                    None => break Err(Error::invalid("kafka", "the consumer stopped")),
                },
                _ = linger => {}
                _ = tick.tick() => {}
            }
            let due = deadline.is_some_and(|d| d <= tokio::time::Instant::now());
            if !batch.is_empty() && (batch.len() >= self.o.batch_max || due) {
                // More records already waiting: the batch is prepared while
                // the one before is applied. None: everything sent is
                // applied now, so nothing waits on the next batch.
                let more = !rx.is_empty();
                match self.commit(&mut prep, &mut batch, more).await {
                    Ok(e) => ended |= e,
                    Err(e) => break Err(e),
                }
                deadline = None;
            }
            self.update_lag();
            self.refresh_gauges().await;
            if lease.lost() || self.engine.fenced() {
                break Err(Error::Fenced {
                    job: self.o.job.clone(),
                    attempt: self.store.meta.attempt_id.clone(),
                });
            }
            if let (true, Some(quiet)) = (ended, self.o.exit_after_end) {
                if batch.is_empty()
                    && prep.in_flight() == 0
                    && rx.is_empty()
                    && last_record.elapsed() >= quiet
                    && self.caught_up(&source)
                {
                    tracing::info!("the job ended and the topic is quiet: stopping");
                    break Ok(());
                }
            }
        };
        // Records already fetched are committed before stopping; what is
        // still in flight is read again by the next start.
        if result.is_ok() {
            self.commit(&mut prep, &mut batch, false).await?;
        }
        drop(rx);
        source.stop();
        let stats = self.stats.lock().map(|s| s.clone()).unwrap_or_default();
        tracing::info!(position = ?self.engine.position().partitions, fetched = ?stats, "stopped");
        result
    }

    /// Hands `batch` (emptied; it may be empty) to the preparing thread and
    /// ingests, each atomically, the batches prepared before it: all of
    /// them unless `more` records are already waiting, then only what keeps
    /// [`crate::ingest::prepared::AHEAD`] in flight. True once the job ended.
    async fn commit(
        &mut self,
        prep: &mut Preparer,
        batch: &mut Vec<SourceRecord>,
        more: bool,
    ) -> Result<bool> {
        let mut ended = false;
        if !batch.is_empty() {
            if let Some(p) = prep.push(std::mem::take(batch), None).await? {
                ended |= self.ingest(&p).await?;
            }
        }
        if !more {
            while let Some(p) = prep.recv().await? {
                ended |= self.ingest(&p).await?;
            }
        }
        Ok(ended)
    }

    /// Ingests one prepared batch atomically and publishes the new state;
    /// true once the job ended.
    async fn ingest(&mut self, p: &Prepared) -> Result<bool> {
        let before = self.engine.totals();
        let t = Instant::now();
        self.engine.ingest_prepared(p).await?;
        self.metrics
            .batch_seconds
            .observe(t.elapsed().as_secs_f64());
        self.metrics.batch_size.observe(p.len() as f64);
        let after = self.engine.totals();
        let d = |f: fn(&Totals) -> u64| f(&after) - f(&before);
        self.metrics.records.inc_by(d(|t| t.records));
        self.metrics.dead_letters.inc_by(d(|t| t.dead_letters));
        self.metrics.duplicates.inc_by(d(|t| t.duplicates));
        if after.applied == 0
            && before.dead_letters < ALL_DEAD_WARNING
            && after.dead_letters >= ALL_DEAD_WARNING
        {
            tracing::warn!(
                dead_letters = after.dead_letters,
                first = self.engine.first_dead_letter().unwrap_or("unknown"),
                "no record applied yet, every one a dead letter: is --job right?"
            );
        }
        self.after_commit().await
    }

    /// Publishes the new state; true once the job ended.
    async fn after_commit(&mut self) -> Result<bool> {
        let job = self.store.job().await?;
        self.metrics.log_offset.set(job.log_offset as i64);
        if let Some(t) = job.newest_event_time {
            self.metrics.last_event_time.set(t);
        }
        // Position and lag before telling anyone: a reader woken by the new
        // offset must find `/metrics` agreeing with it.
        self.update_lag();
        self.offset_tx.send_replace(job.log_offset);
        self.gauges_stale = true;
        self.summary_stale = true;
        self.refresh_gauges().await;
        Ok(job.status_or_running() != "RUNNING")
    }

    /// Recomputes the stage gauges when commits happened since, at most
    /// once per `GAUGES_EVERY`, and stores the attempt summary at most once
    /// per [`summary_interval`].
    async fn refresh_gauges(&mut self) {
        if self.gauges_stale && self.last_gauges.is_none_or(|t| t.elapsed() >= GAUGES_EVERY) {
            self.gauges_stale = false;
            self.last_gauges = Some(Instant::now());
            self.job_gauges().await;
        }
        // The list entry `serve` shows without opening the attempt.
        let every = summary_interval(self.o.flush_interval);
        if self.summary_stale && self.last_summary.is_none_or(|t| t.elapsed() >= every) {
            self.summary_stale = false;
            self.last_summary = Some(Instant::now());
            if let Err(e) = crate::query::summary::write(&self.o.storage, &self.store, false).await
            {
                tracing::warn!(error = %e, "could not store the attempt summary");
            }
        }
    }

    /// Stage gauges from the same answers the stage routes give.
    async fn job_gauges(&self) {
        let mut all = Params::new();
        all.insert("page_size".into(), "1000".into());
        let Ok(stages) = api::stages(&self.store, &all).await else {
            return;
        };
        let num = |v: &Value, f: &str| v[f].as_f64().unwrap_or(0.0);
        let figures: Vec<StageFigures> = stages["items"]
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|s| StageFigures {
                stage: s["stage_id"].as_str().unwrap_or_default().to_owned(),
                input_per_s: num(s, "input_throughput"),
                output_per_s: num(s, "output_throughput"),
                queue_lag: num(s, "queue_lag") as i64,
                backpressure: s["backpressure_active"].as_bool().unwrap_or(false),
                workers: num(s, "worker_count") as i64,
                skew_ratio: num(s, "skew_ratio"),
            })
            .collect();
        let workers = figures.iter().map(|f| f.workers).sum();
        let exceptions = self.store.job().await.map_or(0, |j| j.exception_count) as i64;
        self.metrics
            .set_job(&self.o.job, workers, exceptions, &figures);
    }

    /// True when the consumer is alive, has handed over everything it
    /// fetched, and all of that is applied: "quiet" then means the topic
    /// is quiet, not that the consumer stalled.
    fn caught_up(&self, source: &KafkaSource) -> bool {
        let drained = source.drained_ms.load(std::sync::atomic::Ordering::Relaxed);
        if now_ms().saturating_sub(drained) > 1_000 {
            return false;
        }
        let stats = self.stats.lock().map(|s| s.clone()).unwrap_or_default();
        let pos = &self.engine.position().partitions;
        // Applied all that was fetched, and fetched up to the end the last
        // fetch response reported (a re-read below the position is not
        // "caught up" while it runs).
        stats.iter().all(|(p, s)| {
            pos.get(p).copied().unwrap_or(0) >= s.fetched_end && s.fetched_end >= s.watermark
        })
    }

    /// Per-partition position and lag: the end of the partition is the high
    /// watermark of the last fetch response (or what was fetched, if more),
    /// never ListOffsets, which Tansu 0.6 answers wrong.
    fn update_lag(&self) {
        let stats = self
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        for (p, s) in stats {
            let pos = self
                .engine
                .position()
                .partitions
                .get(&p)
                .copied()
                .unwrap_or(0);
            let end = s.fetched_end.max(s.watermark);
            self.metrics
                .set_partition(p, pos, (end - pos).max(0), s.watermark);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_stored_every_second_or_five_flushes_and_at_least_every_30_s() {
        let ms = Duration::from_millis;
        assert_eq!(summary_interval(ms(100)), ms(1000));
        assert_eq!(summary_interval(ms(1000)), ms(5000));
        assert_eq!(summary_interval(ms(600_000)), ms(30_000));
    }
}
