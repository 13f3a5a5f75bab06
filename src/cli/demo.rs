//! `sundial demo`: a simulated realistic job replayed into local storage
//! and served. With `--brokers B` it goes through Kafka for real. The records go to `{job}_state` (created with one
//! partition when missing) through an rdkafka producer, and the projector
//! daemon (`project::run`) in this process consumes, logs, projects and
//! serves them: the same path a live Solstice job takes.

use std::collections::VecDeque;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::cli::args::{DemoArgs, ServeArgs};
use crate::cli::commands;
use crate::error::{Error, Result};
use crate::ingest::record::SourceRecord;
use crate::ingest::source::kafka::{KafkaConfig, ResumeMode};
use crate::project::{self, ProjectOptions, DEFAULT_BATCH_MAX};
use crate::replay::target::{replay_batches, DEFAULT_BATCH};
use crate::simulate::{self, Scenario, SimConfig};
use crate::store::storage::Storage;

/// `sundial demo`: simulate → replay → serve, on local disk (with
/// `--brokers`: through Kafka and the projector daemon).
pub async fn demo(a: DemoArgs) -> Result<()> {
    let job = "demo_job";
    if let Some(brokers) = &a.brokers {
        return run(&a, brokers, job).await;
    }
    // Bad endpoint flags fail before the data is built, not after.
    let endpoint = commands::endpoint(&a.endpoint)?;
    let storage = Storage::from_url(&a.storage)?;
    let cfg = SimConfig::new(job, Scenario::Realistic, a.events);
    let mut records = simulate::simulate(&cfg).enumerate();
    let arrival = crate::clock::now_ms();
    let (attempt, summary) = replay_batches(&storage, job, None, "simulate:realistic", |buf| {
        for (i, value) in records.by_ref().take(DEFAULT_BATCH) {
            buf.push(SourceRecord {
                partition: 0,
                offset: i as i64,
                arrival_ms: arrival,
                content_type: None,
                value: value.into(),
            });
        }
        Ok(buf.len() == DEFAULT_BATCH)
    })
    .await?;
    println!(
        "demo: job={job} attempt={attempt} storage={} {summary}",
        a.storage
    );
    if a.no_serve {
        return Ok(());
    }
    println!("demo: open {}  (Ctrl-C to stop)", endpoint.url(&a.http));
    commands::serve(ServeArgs {
        storage: a.storage,
        http: a.http,
        max_open: crate::serve::catalog::DEFAULT_MAX_OPEN,
        idle_secs: crate::serve::catalog::DEFAULT_IDLE.as_secs(),
        live_poll_ms: None,
        endpoint: a.endpoint,
        max_connections: crate::serve::listener::DEFAULT_MAX_CONNECTIONS,
        header_timeout_secs: crate::serve::listener::DEFAULT_HEADER_TIMEOUT.as_secs(),
        max_streams: crate::serve::stream_hub::DEFAULT_MAX_STREAMS,
        max_as_of: crate::serve::as_of_pool::DEFAULT_WORKERS,
        as_of_queue: crate::serve::as_of_pool::DEFAULT_QUEUE,
    })
    .await
}

/// After the job ended, the daemon of `--no-serve` exits once the topic was
/// quiet this long.
const QUIET_EXIT: Duration = Duration::from_secs(1);
/// Longest wait for the broker's metadata.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

fn kafka_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::invalid("kafka", format!("{what}: {e}"))
}

/// Creates `topic` with one partition unless it exists.
async fn ensure_topic(brokers: &str, topic: &str) -> Result<()> {
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| kafka_err("admin client", e))?;
    let t = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    let opts = AdminOptions::new()
        .operation_timeout(Some(METADATA_TIMEOUT))
        .request_timeout(Some(METADATA_TIMEOUT));
    let res = admin.create_topics([&t], &opts).await.map_err(|e| {
        kafka_err(
            &format!("create topic {topic} on {brokers} (are the brokers reachable?)"),
            e,
        )
    })?;
    for r in res {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(kafka_err(&format!("create topic {name}"), code)),
        }
    }
    Ok(())
}

/// Records already in partition 0 of `topic` (its high watermark).
fn records_in(brokers: &str, topic: &str) -> Result<i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| kafka_err("consumer", e))?;
    let (_, high) = c
        .fetch_watermarks(topic, 0, METADATA_TIMEOUT)
        .map_err(|e| kafka_err(&format!("watermarks of {topic} on {brokers}"), e))?;
    Ok(high)
}

/// Produces the simulated job to its topic unless the topic holds records
/// already (a second run continues the attempt fed from them instead of
/// sending the job twice), then runs the projector daemon over it: until the job ended
/// and the topic went quiet with `--no-serve`, else serving `--http` until
/// Ctrl-C.
pub async fn run(a: &DemoArgs, brokers: &str, job: &str) -> Result<()> {
    let storage = Storage::from_url(&a.storage)?;
    let flush_interval = storage.default_flush_interval();
    let lease_interval = crate::store::lease::default_interval(&storage);
    let topic = format!("{job}_state");
    ensure_topic(brokers, &topic).await?;
    let already = records_in(brokers, &topic)?;
    if already > 0 {
        println!("demo: topic {topic} already has records: projecting what it holds");
    } else {
        let cfg = SimConfig::new(job, Scenario::Realistic, a.events);
        let records: Vec<Vec<u8>> = simulate::simulate(&cfg).collect();
        // One send in flight: the topic keeps the simulated order exactly.
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("linger.ms", "5")
            .set("max.in.flight.requests.per.connection", "1")
            .set("queue.buffering.max.messages", "1000000")
            .create()
            .map_err(|e| kafka_err("producer", e))?;
        fill(&producer, &topic, &records).await?;
        println!(
            "demo: produced {} records to {topic} on {brokers}",
            records.len()
        );
    }
    let serve = !a.no_serve;
    if serve {
        println!(
            "demo: open {}  (Ctrl-C to stop)",
            commands::endpoint(&a.endpoint)?.url(&a.http)
        );
    }
    let opts = ProjectOptions {
        job: job.to_owned(),
        storage,
        kafka: KafkaConfig {
            brokers: brokers.to_owned(),
            group_id: format!("sundial-{job}"),
            topic,
            resume: ResumeMode::Reread,
            extra: Vec::new(),
            max_record_bytes: crate::ingest::source::limit::DEFAULT_MAX_RECORD_BYTES,
        },
        attempt: None,
        // Records just sent start a new attempt (an older one fed from a
        // topic of that name, on a broker since wiped, would skip them);
        // records already there continue the attempt fed from them.
        new_attempt: already == 0,
        http: serve.then(|| a.http.clone()),
        endpoint: commands::endpoint(&a.endpoint)?,
        batch_max: DEFAULT_BATCH_MAX,
        linger: Duration::from_millis(5),
        exit_after_end: (!serve).then_some(QUIET_EXIT),
        lease_interval,
        flush_interval,
    };
    let (attempt, summary) = project::run(opts, crate::shutdown::shutdown_signal()).await?;
    println!(
        "demo: job={job} attempt={attempt} storage={} {summary}",
        a.storage
    );
    Ok(())
}

/// Sends every record to partition 0 in order and waits for all deliveries.
pub async fn fill(p: &FutureProducer, topic: &str, records: &[Vec<u8>]) -> Result<()> {
    let mut pending = VecDeque::new();
    for r in records {
        let rec = FutureRecord::<(), [u8]>::to(topic).payload(r).partition(0);
        let fut = p
            .send_result(rec)
            .map_err(|(e, _)| kafka_err("enqueue", e))?;
        pending.push_back(fut);
        if pending.len() >= 50_000 {
            for f in pending.drain(..25_000) {
                f.await
                    .map_err(|e| kafka_err("produce", e))?
                    .map_err(|(e, _)| kafka_err("produce", e))?;
            }
        }
    }
    for f in pending {
        f.await
            .map_err(|e| kafka_err("produce", e))?
            .map_err(|(e, _)| kafka_err("produce", e))?;
    }
    p.flush(Duration::from_secs(30))
        .map_err(|e| kafka_err("flush", e))?;
    Ok(())
}
