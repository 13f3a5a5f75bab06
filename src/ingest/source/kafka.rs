//! The Kafka source of the projector daemon: every partition of the job's
//! topic, assigned explicitly (no consumer-group rebalancing, no committed
//! offsets), started from the stored position, handed to the ingest loop in
//! chunks over a bounded channel.
//!
//! Resume is exact even on brokers that mishandle a fetch in the middle of a
//! record batch (Tansu 0.6 skips the rest of that batch): by default every
//! partition is re-read from its start and records below the stored position
//! are dropped here. `ResumeMode::Seek` asks the broker for the stored offset
//! instead and, when the first record it returns lies beyond it, falls back
//! to re-reading that partition.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::ingest::record::SourceRecord;

/// How the consumer gets back to the stored position after a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResumeMode {
    /// Re-read each partition from its start, dropping records below the
    /// stored position. Correct on every broker.
    #[default]
    Reread,
    /// Fetch from the stored offset; fall back to `Reread` for a partition
    /// whose first record comes back past it.
    Seek,
}

impl std::str::FromStr for ResumeMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "reread" => Ok(ResumeMode::Reread),
            "seek" => Ok(ResumeMode::Seek),
            other => Err(format!("{other:?}: use reread or seek")),
        }
    }
}

/// Where to consume from.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port…]`.
    pub brokers: String,
    /// The topic (`{job}_state` by default).
    pub topic: String,
    /// Consumer group id, for visibility in broker tools only.
    pub group_id: String,
    /// How to resume.
    pub resume: ResumeMode,
    /// Extra librdkafka properties (`key=value`), applied last.
    pub extra: Vec<(String, String)>,
    /// Records longer than this are stored cut off, as dead letters
    /// (see [`super::limit`]).
    pub max_record_bytes: usize,
}

/// What the source knows about one partition, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionStat {
    /// One past the highest offset received from the broker.
    pub fetched_end: i64,
    /// The high watermark of the last fetch response (0 = none yet).
    pub watermark: i64,
}

/// Per-partition state shared with the metrics side.
pub type Stats = Arc<Mutex<BTreeMap<i32, PartitionStat>>>;

/// Records per chunk handed to the ingest loop.
const CHUNK: usize = 4096;
/// How often the topic's metadata and watermarks are refreshed.
const REFRESH: Duration = Duration::from_secs(1);

/// The running consumer thread.
pub struct KafkaSource {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Partition statistics, updated by the consumer threads.
    pub stats: Stats,
    /// Wall-clock ms when the consumer last came back from a fetch poll
    /// that left nothing undelivered: it has handed over all it got.
    pub drained_ms: Arc<AtomicU64>,
}

impl KafkaSource {
    /// Starts consuming every partition of the topic from `positions` (next
    /// offset per partition; absent = from the start) into `tx`.
    pub fn start(
        cfg: KafkaConfig,
        positions: BTreeMap<i32, i64>,
        tx: mpsc::Sender<Vec<SourceRecord>>,
    ) -> Result<KafkaSource> {
        let consumer = Arc::new(consumer(&cfg)?);
        let stop = Arc::new(AtomicBool::new(false));
        let stats: Stats = Arc::default();
        let partitions = Arc::new(AtomicUsize::new(0));
        let drained_ms = Arc::new(AtomicU64::new(0));
        let watch = Watch {
            consumer: consumer.clone(),
            topic: cfg.topic.clone(),
            stop: stop.clone(),
            stats: stats.clone(),
            partitions: partitions.clone(),
        };
        let mut run = Run {
            consumer,
            cfg,
            tx,
            stop: stop.clone(),
            stats: stats.clone(),
            parts: BTreeMap::new(),
            positions,
            partitions,
            drained_ms: drained_ms.clone(),
        };
        let threads = vec![
            std::thread::Builder::new()
                .name("kafka-metadata".into())
                .spawn(move || watch.main())?,
            std::thread::Builder::new()
                .name("kafka-consumer".into())
                .spawn(move || run.main())?,
        ];
        Ok(KafkaSource {
            stop,
            threads,
            stats,
            drained_ms,
        })
    }

    /// Stops the consumer thread and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Join the consumer; the metadata thread may sit in a metadata
        // request for seconds and ends on its own once it sees the flag.
        if let Some(consumer) = self.threads.pop() {
            let _ = consumer.join();
        }
        self.threads.clear();
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The consumer settings the daemon reads with (also the bench's raw
/// consumer, so the two are measured alike).
pub fn consumer_config(brokers: &str, group_id: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // librdkafka's defaults read ~63 k msgs/s from Tansu here; bigger
        // fetches and a deeper local queue several times that.
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("queued.min.messages", "200000")
        .set("queued.max.messages.kbytes", "262144")
        .set("fetch.wait.max.ms", "10")
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "2000")
        .set("log_level", "4");
    c
}

fn consumer(cfg: &KafkaConfig) -> Result<BaseConsumer> {
    let mut c = consumer_config(&cfg.brokers, &cfg.group_id);
    for (k, v) in &cfg.extra {
        c.set(k, v);
    }
    c.create()
        .map_err(|e| Error::invalid("kafka configuration", e.to_string()))
}

/// Per-partition progress inside the consumer thread.
#[derive(Debug, Clone, Copy)]
struct Part {
    /// Records below this offset are already applied: drop them.
    next: i64,
    /// In seek mode, before the first record: the offset asked for.
    probing: Option<i64>,
    /// One past the highest offset received (published once per poll round).
    fetched_end: i64,
}

/// The side thread: the topic's partition count and the broker's
/// watermarks, refreshed off the fetch path (a slow metadata answer must
/// never stall consumption).
struct Watch {
    consumer: Arc<BaseConsumer>,
    topic: String,
    stop: Arc<AtomicBool>,
    stats: Stats,
    partitions: Arc<AtomicUsize>,
}

impl Watch {
    fn main(&self) {
        let mut waiting_logged = false;
        let mut unreachable_logged: Option<Instant> = None;
        while !self.stop.load(Ordering::Relaxed) {
            let n = match self.partition_count() {
                Ok(n) => n,
                Err(e) => {
                    if unreachable_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(30)) {
                        tracing::warn!(error = %e, "cannot read the topic's metadata; retrying");
                        unreachable_logged = Some(Instant::now());
                    }
                    0
                }
            };
            if n == 0 && self.partitions.load(Ordering::Relaxed) == 0 {
                if !waiting_logged {
                    tracing::info!(topic = %self.topic, "waiting for the topic to exist");
                    waiting_logged = true;
                }
                std::thread::sleep(Duration::from_millis(250));
                continue;
            }
            self.partitions.fetch_max(n, Ordering::Relaxed);
            for p in 0..self.partitions.load(Ordering::Relaxed) as i32 {
                if let Some((_, high)) = cached_watermarks(&self.consumer, &self.topic, p) {
                    let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
                    stats.entry(p).or_default().watermark = high;
                }
            }
            let until = Instant::now() + REFRESH;
            while Instant::now() < until && !self.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The topic's partition count from fresh metadata (0 = no such topic).
    fn partition_count(&self) -> Result<usize> {
        let md = self
            .consumer
            .fetch_metadata(Some(&self.topic), Duration::from_secs(5))
            .map_err(|e| Error::invalid("kafka", e.to_string()))?;
        Ok(md
            .topics()
            .iter()
            .find(|t| t.name() == self.topic && t.error().is_none())
            .map_or(0, |t| t.partitions().len()))
    }
}

/// The (low, high) watermarks librdkafka took from the last fetch response
/// (no request is sent). Not ListOffsets: Tansu 0.6 answers that with the start
/// of the last record batch + 1, while its fetch responses carry the true
/// end of the log. `None` before the first fetch.
pub fn cached_watermarks(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
) -> Option<(i64, i64)> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1_i64, -1_i64);
    // SAFETY: a live client handle, a NUL-terminated topic name and two
    // valid out-pointers; librdkafka only reads its local cache here.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some((low, high))
}

struct Run {
    consumer: Arc<BaseConsumer>,
    cfg: KafkaConfig,
    tx: mpsc::Sender<Vec<SourceRecord>>,
    stop: Arc<AtomicBool>,
    stats: Stats,
    parts: BTreeMap<i32, Part>,
    positions: BTreeMap<i32, i64>,
    partitions: Arc<AtomicUsize>,
    drained_ms: Arc<AtomicU64>,
}

impl Run {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.tx.is_closed()
    }

    fn main(&mut self) {
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut last_error: Option<(String, Instant)> = None;
        while !self.stopped() {
            let n = self.partitions.load(Ordering::Relaxed);
            if n > self.parts.len() {
                self.assign_new(n);
            }
            if self.parts.is_empty() {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            let mut timeout = Duration::from_millis(100);
            // One clock read per round of polls: they all take well under
            // a millisecond once the first returned.
            let mut arrival_ms = None;
            while chunk.len() < CHUNK {
                match self.consumer.poll(timeout) {
                    None => break,
                    Some(Ok(m)) => {
                        let (consumer, cfg) = (&self.consumer, &self.cfg);
                        let now = *arrival_ms.get_or_insert_with(now_ms);
                        if let Some(r) = accept(consumer, cfg, &mut self.parts, &m, now) {
                            chunk.push(r);
                        }
                    }
                    Some(Err(e)) => {
                        let msg = e.to_string();
                        // Broker down or restarting: librdkafka reconnects;
                        // say so once per distinct error per 10 s.
                        if last_error
                            .as_ref()
                            .is_none_or(|(m, t)| *m != msg || t.elapsed() > Duration::from_secs(10))
                        {
                            tracing::warn!(error = %msg, "kafka consumer");
                            last_error = Some((msg, Instant::now()));
                        }
                        break;
                    }
                }
                timeout = Duration::ZERO;
            }
            let drained = chunk.len() < CHUNK;
            self.publish_fetched();
            if !chunk.is_empty() {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                if self.tx.blocking_send(full).is_err() {
                    return;
                }
            }
            if drained {
                self.drained_ms.store(now_ms(), Ordering::Relaxed);
            }
        }
    }

    /// Hands what was fetched to the metrics side, before the records it
    /// covers leave this thread (the quiet exit relies on that order).
    fn publish_fetched(&self) {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        for (&p, part) in &self.parts {
            let s = stats.entry(p).or_default();
            s.fetched_end = s.fetched_end.max(part.fetched_end);
        }
    }

    /// Assigns partitions `0..n` not assigned yet.
    fn assign_new(&mut self, n: usize) {
        let mut tpl = TopicPartitionList::new();
        for p in 0..n as i32 {
            if self.parts.contains_key(&p) {
                continue;
            }
            let next = self.positions.get(&p).copied().unwrap_or(0);
            let (offset, probing) = match self.cfg.resume {
                ResumeMode::Seek if next > 0 => (Offset::Offset(next), Some(next)),
                _ => (Offset::Beginning, None),
            };
            if tpl
                .add_partition_offset(&self.cfg.topic, p, offset)
                .is_err()
            {
                continue;
            }
            self.parts.insert(
                p,
                Part {
                    next,
                    probing,
                    fetched_end: 0,
                },
            );
            tracing::info!(topic = %self.cfg.topic, partition = p, next, mode = ?self.cfg.resume, "assigned");
        }
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.incremental_assign(&tpl) {
                tracing::warn!(error = %e, "assign failed; retrying");
                for e in tpl.elements() {
                    self.parts.remove(&e.partition());
                }
            }
        }
    }
}

/// The record to ingest, or `None` when it is already applied (or the
/// broker jumped past the asked offset and the partition is re-read).
fn accept(
    consumer: &BaseConsumer,
    cfg: &KafkaConfig,
    parts: &mut BTreeMap<i32, Part>,
    m: &rdkafka::message::BorrowedMessage<'_>,
    arrival_ms: u64,
) -> Option<SourceRecord> {
    let (p, offset) = (m.partition(), m.offset());
    let part = parts.get_mut(&p)?;
    part.fetched_end = part.fetched_end.max(offset + 1);
    if let Some(asked) = part.probing.take() {
        if offset > asked {
            tracing::warn!(
                partition = p,
                asked,
                got = offset,
                "broker skipped past the stored offset; re-reading the partition from its start"
            );
            let seek = consumer.seek(&cfg.topic, p, Offset::Beginning, Duration::from_secs(5));
            if let Err(e) = seek {
                tracing::warn!(error = %e, "seek to the start failed; reassigning");
                let mut tpl = TopicPartitionList::new();
                let _ = tpl.add_partition_offset(&cfg.topic, p, Offset::Beginning);
                let _ = consumer.incremental_unassign(&tpl);
                let _ = consumer.incremental_assign(&tpl);
            }
            return None;
        }
    }
    if offset < part.next {
        return None;
    }
    part.next = offset + 1;
    let content_type = m.headers().and_then(|h| {
        h.iter()
            .find(|h| h.key.eq_ignore_ascii_case("content-type"))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    });
    let payload = m.payload().unwrap_or_default();
    let (value, content_type) = if payload.len() > cfg.max_record_bytes {
        let (kept, marked) =
            super::limit::oversize(payload, payload.len() as u64, cfg.max_record_bytes);
        (kept, Some(marked))
    } else {
        (bytes::Bytes::copy_from_slice(payload), content_type)
    };
    Some(SourceRecord {
        partition: p,
        offset,
        arrival_ms,
        content_type,
        value,
    })
}
