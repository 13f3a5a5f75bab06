//! `sundial replay --brokers B --topic T`: rebuild a new attempt from a
//! Kafka topic, every partition from an offset (or the first record at or
//! after a timestamp) up to an optional last offset, else up to the end the
//! broker reports when the replay starts. Reuses the daemon's Kafka source,
//! so a start offset inside a record batch is handled the same way on Tansu
//! 0.6 (each partition re-read from its start, earlier records dropped).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::TopicPartitionList;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::ingest::record::SourceRecord;
use crate::ingest::source::kafka::{consumer_config, KafkaConfig, KafkaSource, ResumeMode};
use crate::replay::offsets::Offsets;
use crate::replay::target::{ReplayOptions, Summary, Target, DEFAULT_BATCH};
use crate::store::storage::Storage;

/// Where a topic replay starts and ends.
#[derive(Debug, Clone, Default)]
pub struct TopicRange {
    /// First offset of every partition or of some (default 0).
    pub from_offset: Option<Offsets>,
    /// Or: the first record at or after this time, ms since the epoch.
    pub from_time_ms: Option<i64>,
    /// Last offset, included, of every partition or of some (default: the end).
    pub to_offset: Option<Offsets>,
}

impl TopicRange {
    /// The last offset to replay of partition `p`, included.
    fn last(&self, p: i32) -> i64 {
        self.to_offset
            .as_ref()
            .and_then(|o| o.of(p))
            .unwrap_or(i64::MAX - 1)
    }

    /// Refuses partitions the topic lacks and ends before starts.
    fn check(&self, n: i32, from: &BTreeMap<i32, i64>) -> Result<()> {
        for (flag, o) in [
            ("from offset", &self.from_offset),
            ("to offset", &self.to_offset),
        ] {
            let listed = o.as_ref().map(Offsets::partitions).unwrap_or_default();
            if let Some(p) = listed.into_iter().find(|p| *p >= n) {
                return Err(Error::invalid(
                    flag,
                    format!("partition {p}: the topic has partitions 0 to {}", n - 1),
                ));
            }
        }
        for (p, start) in from {
            let last = self.last(*p);
            if last < *start {
                return Err(Error::invalid(
                    "offsets",
                    format!("partition {p}: --to-offset {last} is below the start {start}"),
                ));
            }
        }
        Ok(())
    }
}

/// The records a topic replay will ingest, once every partition's end
/// (one past its last offset to replay) is known or it counts as `empty`;
/// `None` before. Ends come from the brokers' fetch responses: an estimate.
fn expected_total(
    n: i32,
    from: &BTreeMap<i32, i64>,
    end: &BTreeMap<i32, i64>,
    empty: impl Fn(i32) -> bool,
) -> Option<u64> {
    let mut total = 0u64;
    for p in 0..n {
        match end.get(&p) {
            Some(e) => {
                let start = from.get(&p).copied().unwrap_or(0);
                total += u64::try_from(e - start).unwrap_or(0);
            }
            None if empty(p) => {}
            None => return None,
        }
    }
    Some(total)
}

/// How long the replay waits with nothing arriving before it stops short
/// of the end the broker reported (a broker whose watermark is wrong).
const IDLE_LIMIT: Duration = Duration::from_secs(15);
/// After this long without a reported end, a partition counts as empty.
const EMPTY_AFTER: Duration = Duration::from_secs(10);

fn metadata_consumer(brokers: &str, job: &str) -> Result<BaseConsumer> {
    consumer_config(brokers, &format!("sundial-replay-{job}"))
        .create()
        .map_err(|e| Error::invalid("kafka configuration", e.to_string()))
}

/// The topic's partition count; an error when it does not exist.
fn partitions(consumer: &BaseConsumer, topic: &str) -> Result<i32> {
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| Error::Unavailable(format!("kafka metadata for topic {topic:?}: {e}")))?;
    let n = md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map_or(0, |t| t.partitions().len() as i32);
    if n == 0 {
        return Err(Error::invalid(
            "topic",
            format!("{topic:?} does not exist on the broker (or has no partitions)"),
        ));
    }
    Ok(n)
}

/// Per partition, the first offset at or after `ms` (ListOffsets by time).
fn offsets_for_time(
    consumer: &BaseConsumer,
    topic: &str,
    n: i32,
    ms: i64,
) -> Result<BTreeMap<i32, i64>> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..n {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Offset(ms))
            .map_err(|e| Error::invalid("from time", e.to_string()))?;
    }
    let found = consumer
        .offsets_for_times(tpl, Duration::from_secs(10))
        .map_err(|e| {
            Error::Unavailable(format!(
                "kafka offsets for time {ms} ms on {topic:?}: {e} (does the broker support ListOffsets by timestamp?)"
            ))
        })?;
    let mut out = BTreeMap::new();
    for e in found.elements() {
        let off = match e.offset() {
            rdkafka::Offset::Offset(o) => o,
            // No record at or after that time: nothing to replay there.
            _ => i64::MAX,
        };
        out.insert(e.partition(), off);
    }
    Ok(out)
}

/// Replays `topic` into an attempt of `job` as `opts` say.
pub async fn replay_topic(
    storage: &Storage,
    job: &str,
    brokers: &str,
    topic: &str,
    range: TopicRange,
    opts: ReplayOptions<'_>,
) -> Result<(String, Summary)> {
    crate::store::storage::validate_id("job id", job)?;
    let meta = metadata_consumer(brokers, job)?;
    let (n, from) = {
        let topic = topic.to_owned();
        let range = range.clone();
        tokio::task::spawn_blocking(move || -> Result<(i32, BTreeMap<i32, i64>)> {
            let n = partitions(&meta, &topic)?;
            let from = match range.from_time_ms {
                Some(ms) => offsets_for_time(&meta, &topic, n, ms)?,
                None => (0..n)
                    .map(|p| {
                        let start = range.from_offset.as_ref().and_then(|o| o.of(p));
                        (p, start.unwrap_or(0).max(0))
                    })
                    .collect(),
            };
            range.check(n, &from)?;
            Ok((n, from))
        })
        .await
        .map_err(|e| Error::Unavailable(format!("kafka metadata task: {e}")))??
    };
    let source = format!("replay:kafka:{topic}");
    let mut target = Target::open_with(storage, job, opts.attempt, &source, opts.resume).await?;
    if opts.progress {
        target.show_progress(None);
    }
    let (tx, mut rx) = mpsc::channel::<Vec<SourceRecord>>(16);
    let cfg = KafkaConfig {
        brokers: brokers.to_owned(),
        topic: topic.to_owned(),
        group_id: format!("sundial-replay-{job}"),
        resume: ResumeMode::Reread,
        extra: Vec::new(),
        max_record_bytes: opts.max_record_bytes,
    };
    let mut source = KafkaSource::start(cfg, from.clone(), tx)?;
    // Per partition: one past the last offset to replay, once known.
    let mut end: BTreeMap<i32, i64> = BTreeMap::new();
    let mut received: BTreeMap<i32, i64> = from.clone();
    let mut batch: Vec<SourceRecord> = Vec::new();
    let mut idle = Instant::now();
    let started = Instant::now();
    let mut total_known = false;
    loop {
        let chunk = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await;
        match chunk {
            Ok(Some(records)) => {
                idle = Instant::now();
                for r in records {
                    let got = received.entry(r.partition).or_insert(0);
                    *got = (*got).max(r.offset + 1);
                    if r.offset <= range.last(r.partition) {
                        batch.push(r);
                    }
                }
            }
            Ok(None) => return Err(Error::Unavailable("kafka consumer stopped".into())),
            Err(_) => {}
        }
        if batch.len() >= DEFAULT_BATCH || (!batch.is_empty() && rx.is_empty()) {
            target.ingest(std::mem::take(&mut batch)).await?;
        }
        {
            let stats = source.stats.lock().unwrap_or_else(|e| e.into_inner());
            for (p, s) in stats.iter().filter(|(_, s)| s.watermark > 0) {
                end.entry(*p)
                    .or_insert(s.watermark.min(range.last(*p).saturating_add(1)));
            }
        }
        // A partition that reported no end after a few seconds of fetching
        // is empty (an empty partition's watermark is 0, like "none yet").
        let empty_ok = started.elapsed() > EMPTY_AFTER;
        let empty = |p: i32| empty_ok && received.get(&p) == from.get(&p);
        if !total_known {
            if let Some(total) = expected_total(n, &from, &end, empty) {
                target.set_total(total);
                total_known = true;
            }
        }
        let done = (0..n).all(|p| {
            let end = end.get(&p).copied().or(empty(p).then_some(0));
            end.is_some_and(|e| {
                e <= from.get(&p).copied().unwrap_or(0)
                    || received.get(&p).copied().unwrap_or(0) >= e
            })
        });
        if done && batch.is_empty() {
            break;
        }
        if idle.elapsed() > IDLE_LIMIT {
            tracing::warn!(
                ?end,
                ?received,
                "nothing arrived for {IDLE_LIMIT:?}; stopping short of the end the broker reported"
            );
            break;
        }
    }
    source.stop();
    target.ingest(batch).await?;
    target.finish().await
}

#[cfg(test)]
mod tests {
    use super::expected_total;
    use std::collections::BTreeMap;

    #[test]
    fn the_total_is_known_once_every_partition_has_an_end() {
        let from = BTreeMap::from([(0, 0), (1, 100), (2, 5)]);
        let mut end = BTreeMap::from([(0, 40), (1, 150)]);
        assert_eq!(expected_total(3, &from, &end, |_| false), None);
        // Partition 2 empty (nothing fetched past its start).
        assert_eq!(expected_total(3, &from, &end, |p| p == 2), Some(90));
        end.insert(2, 5);
        assert_eq!(expected_total(3, &from, &end, |_| false), Some(90));
        // An end below the start (a lagging hint) counts nothing.
        end.insert(2, 1);
        assert_eq!(expected_total(3, &from, &end, |_| false), Some(90));
        end.insert(2, 25);
        assert_eq!(expected_total(3, &from, &end, |_| false), Some(110));
    }
}
