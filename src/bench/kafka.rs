//! `sundial bench --brokers B`: the projector daemon's figures against a real
//! broker, side by side with the broker's own raw consume rate:
//! 1. pre-fill a topic with a simulated realistic stream;
//! 2. raw consume: the same tuned consumer reading it all, doing nothing;
//! 3. the daemon: from an empty attempt to every record visible over HTTP;
//! 4. latency: records produced at a steady rate into a live daemon, each
//!    timed from its send to the moment `/api/jobs/{job}` shows it applied.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::rate;
use sundial::demo::fill;
use sundial::simulate::{self, Scenario, SimConfig};
use sundial::source::kafka::{KafkaConfig, ResumeMode};
use sundial::Storage;
use sundial::{run_daemon, ProjectOptions, DEFAULT_BATCH_MAX, DEFAULT_LINGER};
use sundial::{Error, Result};

fn kafka_err(e: impl std::fmt::Display) -> Error {
    Error::invalid("kafka", e.to_string())
}

async fn create_topic(brokers: &str, topic: &str) -> Result<()> {
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(kafka_err)?;
    let t = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    let res = admin
        .create_topics([&t], &AdminOptions::new())
        .await
        .map_err(kafka_err)?;
    for r in res {
        if let Err((name, code)) = r {
            return Err(kafka_err(format!("create topic {name}: {code}")));
        }
    }
    Ok(())
}

fn producer(brokers: &str, linger_ms: &str) -> Result<FutureProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", linger_ms)
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create()
        .map_err(kafka_err)
}

/// Reads `n` records of partition 0 with the daemon's consumer settings.
fn raw_consume(brokers: &str, topic: &str, n: usize) -> Result<f64> {
    let c: BaseConsumer = sundial::source::kafka::consumer_config(brokers, "sundial-bench-raw")
        .create()
        .map_err(kafka_err)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .map_err(kafka_err)?;
    c.assign(&tpl).map_err(kafka_err)?;
    let t = Instant::now();
    let (mut got, mut bytes) = (0usize, 0usize);
    while got < n {
        if t.elapsed() > Duration::from_secs(300) {
            return Err(kafka_err(format!("raw consume stalled at {got}/{n}")));
        }
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.map_err(kafka_err)?;
            bytes += rdkafka::Message::payload(&m).map_or(0, <[u8]>::len);
            got += 1;
        }
    }
    std::hint::black_box(bytes);
    Ok(t.elapsed().as_secs_f64())
}

/// One GET over a fresh connection; the body.
async fn get(addr: &str, path: &str) -> Option<String> {
    super::http_get(addr, path).await.ok().map(|(_, body)| body)
}

async fn log_offset(addr: &str, job: &str) -> u64 {
    let body = get(addr, &format!("/api/jobs/{job}")).await;
    body.and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
        .and_then(|v| v["log_offset"].as_u64())
        .unwrap_or(0)
}

/// Starts a daemon in this process; returns its HTTP address and a stopper.
fn start_daemon(
    brokers: &str,
    job: &str,
    topic: &str,
    storage: &Storage,
) -> Result<(
    String,
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
)> {
    let addr = super::net::free_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let opts = ProjectOptions {
        job: job.to_owned(),
        storage: storage.clone(),
        kafka: KafkaConfig {
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            group_id: format!("sundial-bench-{job}"),
            resume: ResumeMode::Reread,
            extra: Vec::new(),
            max_record_bytes: sundial::source::limit::DEFAULT_MAX_RECORD_BYTES,
        },
        attempt: Some("bench".into()),
        new_attempt: false,
        http: Some(addr.clone()),
        endpoint: Default::default(),
        batch_max: DEFAULT_BATCH_MAX,
        linger: DEFAULT_LINGER,
        exit_after_end: None,
        lease_interval: sundial::lease::DEFAULT_INTERVAL,
        flush_interval: storage.default_flush_interval(),
    };
    // Its own runtime on its own threads, as in the `project` command.
    let task = std::thread::spawn(move || {
        let rt = match tokio::runtime::Runtime::new() {
            Ok(rt) => rt,
            Err(e) => return eprintln!("bench daemon: {e}"),
        };
        let run = run_daemon(opts, async {
            let _ = stopped.await;
        });
        if let Err(e) = rt.block_on(run) {
            eprintln!("bench daemon: {e}");
        }
    });
    Ok((addr, stop, task))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs the Kafka measurements against `brokers` with `events` records.
pub async fn run(brokers: &str, events: usize, dir: &str, latency_rate: u64) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    let storage = Storage::from_url(dir)?;
    let stamp = sundial::now_ms();
    let job = format!("bench_{stamp}");
    let topic = format!("{job}_state");
    let records: Vec<Vec<u8>> =
        simulate::simulate(&SimConfig::new(&job, Scenario::Realistic, events)).collect();
    let n = records.len();
    create_topic(brokers, &topic).await?;
    let t = Instant::now();
    fill(&producer(brokers, "20")?, &topic, &records).await?;
    println!(
        "kafka produce (rdkafka, linger 20 ms):  {}",
        rate(n, t.elapsed().as_secs_f64())
    );

    let (b, tp) = (brokers.to_owned(), topic.clone());
    let cpu = crate::bench::cpu::Meter::start();
    let secs = tokio::task::spawn_blocking(move || raw_consume(&b, &tp, n))
        .await
        .map_err(kafka_err)??;
    println!(
        "kafka raw consume (no processing):     {}; {}",
        rate(n, secs),
        cpu.per_event(n as u64)
    );

    let t = Instant::now();
    let cpu = crate::bench::cpu::Meter::start();
    let (addr, stop, task) = start_daemon(brokers, &job, &topic, &storage)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while log_offset(&addr, &job).await < n as u64 {
        if Instant::now() > deadline {
            return Err(kafka_err("the daemon did not catch up within 600 s"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "sundial project, pre-filled topic:     {} (durable log + views, visible over HTTP); {}",
        rate(n, t.elapsed().as_secs_f64()),
        cpu.per_event(n as u64)
    );
    let _ = stop.send(());
    let _ = tokio::task::spawn_blocking(move || task.join()).await;

    latency(brokers, &storage, latency_rate).await
}

/// Produce→visible latency at `per_s` records per second for ~10 s.
async fn latency(brokers: &str, storage: &Storage, per_s: u64) -> Result<()> {
    let job = format!("lat_{}", sundial::now_ms());
    let topic = format!("{job}_state");
    let total = (per_s * 10) as usize;
    let records: Vec<Vec<u8>> =
        simulate::simulate(&SimConfig::new(&job, Scenario::Realistic, total + 100))
            .take(total)
            .collect();
    create_topic(brokers, &topic).await?;
    let (addr, stop, task) = start_daemon(brokers, &job, &topic, storage)?;
    // Wait until the daemon serves (an empty job is a 404: poll /health).
    let ready = Instant::now();
    while get(&addr, "/health").await.is_none() {
        if ready.elapsed() > Duration::from_secs(30) {
            return Err(kafka_err("the daemon did not start"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let p = producer(brokers, "1")?;
    let sent = Arc::new(std::sync::Mutex::new(vec![None::<Instant>; records.len()]));
    let seen = Arc::new(std::sync::Mutex::new(Vec::<(Instant, u64)>::new()));
    let poller = {
        let (addr, job, seen) = (addr.clone(), job.clone(), seen.clone());
        let n = records.len() as u64;
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let off = log_offset(&addr, &job).await;
                seen.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((Instant::now(), off));
                if off >= n || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let tick = Duration::from_millis(10);
    let per_tick = (per_s as usize / 100).max(1);
    let start = Instant::now();
    let mut futs = Vec::new();
    for (i, chunk) in records.chunks(per_tick).enumerate() {
        tokio::time::sleep_until((start + tick * i as u32).into()).await;
        for (j, r) in chunk.iter().enumerate() {
            let rec = FutureRecord::<(), [u8]>::to(&topic).payload(r).partition(0);
            sent.lock().unwrap_or_else(|e| e.into_inner())[i * per_tick + j] = Some(Instant::now());
            futs.push(
                p.send_result(rec)
                    .map_err(|(e, _)| kafka_err(format!("enqueue: {e}")))?,
            );
        }
    }
    for f in futs {
        f.await.map_err(kafka_err)?.map_err(|(e, _)| kafka_err(e))?;
    }
    let _ = poller.await;
    let _ = stop.send(());
    let _ = tokio::task::spawn_blocking(move || task.join()).await;
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let sent = sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut lat = Vec::with_capacity(sent.len());
    let mut k = 0;
    for (i, s) in sent.iter().enumerate() {
        let Some(s) = s else { continue };
        // First poll that showed record i (log sequence i + 1) applied.
        while k < seen.len() && seen[k].1 < i as u64 + 1 {
            k += 1;
        }
        if k == seen.len() {
            break;
        }
        lat.push(seen[k].0.saturating_duration_since(*s).as_secs_f64() * 1e3);
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "produce->visible over HTTP at {per_s}/s:   p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} of {} records timed)",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
        lat.len(),
        sent.len()
    );
    Ok(())
}
