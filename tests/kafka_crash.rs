//! Exactly once across crashes, on a real broker (Tansu 0.6): the daemon
//! killed with SIGKILL at random moments while a batching producer writes a
//! 200 k-event stream ends with views byte-equal to a replay of the stream;
//! resuming in the middle of a record batch (which Tansu cannot fetch from)
//! loses nothing, by re-reading and by seek-with-fallback; a broker restart
//! mid-stream is survived; a long flush interval (fewer object-store
//! requests) delays durability, never visibility, and loses nothing.

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/produce.rs"]
mod produce;
#[path = "common/tansu.rs"]
mod tansu;

use std::path::Path;
use std::time::Duration;

use daemon::{
    assert_identical, assert_same, attempts, autoscale_values, free_addr, golden, live_offset,
    open_store, project_cmd, rt, run_to_end, snapshot, wait_offset, wait_output, Differ,
};
use produce::{produce_python, produce_rdkafka, write_records_file, Record};
use rdkafka::consumer::Consumer;
use rdkafka::{Message, Offset, TopicPartitionList};
use sundial::replay_batches;
use sundial::SourceRecord;
use sundial::Storage;
use tansu::Broker;

const TIMEOUT: Duration = Duration::from_secs(120);

/// Replays `values` as partition 0, offsets 0.. into `attempt` of `job`
/// under `dir`, recorded as fed from `topic` (what the daemon would have
/// stored had it consumed them).
fn replay_as_kafka(dir: &Path, job: &str, attempt: &str, topic: &str, values: &[Vec<u8>]) {
    let storage = Storage::from_url(dir.to_str().unwrap()).unwrap();
    let mut done = false;
    rt().block_on(replay_batches(
        &storage,
        job,
        Some(attempt),
        &format!("kafka:{topic}"),
        |buf| {
            if !done {
                buf.extend(values.iter().enumerate().map(|(i, v)| SourceRecord {
                    partition: 0,
                    offset: i as i64,
                    arrival_ms: 0,
                    content_type: None,
                    value: v.clone().into(),
                }));
                done = true;
            }
            Ok(false)
        },
    ))
    .unwrap();
}

/// The snapshot of a replay of `values` (the golden views of a stream).
fn replay_snapshot(job: &str, values: &[Vec<u8>]) -> serde_json::Value {
    let tmp = tempfile::tempdir().unwrap();
    replay_as_kafka(tmp.path(), job, "golden", "file", values);
    rt().block_on(async {
        sundial::api::snapshot(&open_store(tmp.path(), job, "golden").await)
            .await
            .unwrap()
    })
}

/// The stored `log_offset` of the one attempt under `dir` (0 before any).
fn stored_offset(dir: &Path, job: &str) -> u64 {
    rt().block_on(async {
        match attempts(dir, job).await.pop() {
            Some(a) => {
                open_store(dir, job, &a)
                    .await
                    .job()
                    .await
                    .unwrap()
                    .log_offset
            }
            None => 0,
        }
    })
}

/// A small deterministic generator for the kill moments.
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn killed_ten_times_while_a_batching_producer_writes_ends_exact() {
    let job = "crash_job";
    let topic = "crash_job_state";
    let cfg =
        sundial::simulate::SimConfig::new(job, sundial::simulate::Scenario::Realistic, 206_000);
    let values: Vec<Vec<u8>> = sundial::simulate::simulate(&cfg).collect();
    assert!(values.len() >= 200_000, "{} events", values.len());
    let want = replay_snapshot(job, &values);

    let broker = Broker::start();
    broker.create_topic(topic, 1);
    let scratch = tempfile::tempdir().unwrap();
    let storage = scratch.path().join("data");
    let file = scratch.path().join("stream.records");
    let recs: Vec<Record> = values.iter().map(|v| (None, v.clone())).collect();
    write_records_file(&file, &recs);
    // aiokafka with its default batching, paced so the kills land while
    // the stream is being written.
    let producer = {
        let (addr, file) = (broker.addr(), file.clone());
        std::thread::spawn(move || produce_python(&addr, topic, &file, None, &["--rate", "8000"]))
    };
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261128);
    let mut rng = Lcg(seed);
    let mut moments = Vec::new();
    let mut applied = Vec::new();
    for _ in 0..10 {
        let mut child = project_cmd(&broker.addr(), job, topic, &storage)
            .spawn()
            .unwrap();
        let ms = 400 + rng.below(1200);
        moments.push(ms);
        std::thread::sleep(Duration::from_millis(ms));
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        applied.push(stored_offset(&storage, job));
    }
    // The kills landed mid-stream: progress was made between kills, and
    // most of them found the stream unfinished.
    let n = values.len() as u64;
    assert!(applied.windows(2).all(|w| w[0] <= w[1]), "{applied:?}");
    assert!(applied.iter().any(|&a| a > 0), "{applied:?}");
    assert!(
        applied.iter().filter(|&&a| a < n).count() >= 8,
        "kills mid-stream: applied {applied:?} of {n}"
    );
    assert_eq!(producer.join().unwrap(), values.len());
    let out = run_to_end(&broker.addr(), job, topic, &storage, &[]);
    let got = snapshot(&storage, job);
    assert_eq!(
        got["job"]["log_offset"],
        values.len(),
        "seed {seed}, kills after {moments:?} ms"
    );
    // Byte for byte: the golden replay fed the same partition and offsets.
    assert_identical(
        &format!(
            "after 10 kills (seed {seed}, after {moments:?} ms)\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        &got,
        &want,
    );
}

/// The first offset the broker returns when asked for `offset`.
fn first_offset_from(broker: &Broker, topic: &str, offset: i64) -> Option<i64> {
    let c = broker.consumer();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .unwrap();
    c.assign(&tpl).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            return Some(m.offset());
        }
    }
    None
}

#[test]
fn resuming_inside_a_record_batch_loses_nothing() {
    let job = "fx_autoscale";
    let topic = "midbatch_state";
    let values = autoscale_values();
    let broker = Broker::start();
    broker.create_topic(topic, 1);
    let recs: Vec<Record> = values.iter().map(|v| (None, v.clone())).collect();
    // Two produce rounds with a long linger: two big record batches.
    let rt = rt();
    rt.block_on(produce_rdkafka(
        &broker.addr(),
        topic,
        &recs[..3000],
        None,
        1000,
    ));
    rt.block_on(produce_rdkafka(
        &broker.addr(),
        topic,
        &recs[3000..],
        None,
        1000,
    ));
    // The premise: asked for offset 1000, inside the first batch, Tansu
    // answers from the next batch on; a plain seek would lose 1000..2999.
    let first = first_offset_from(&broker, topic, 1000);
    assert!(
        first.is_some_and(|o| o > 1000),
        "expected Tansu to skip the rest of the batch, got {first:?}"
    );
    for mode in ["reread", "seek"] {
        let scratch = tempfile::tempdir().unwrap();
        let storage = scratch.path().join("data");
        // A previous run applied offsets 0..999 and stopped.
        replay_as_kafka(&storage, job, "resumed", topic, &values[..1000]);
        let out = run_to_end(
            &broker.addr(),
            job,
            topic,
            &storage,
            &["--attempt", "resumed", "--resume", mode],
        );
        let log = String::from_utf8_lossy(&out.stderr);
        if mode == "seek" {
            assert!(
                log.contains("broker skipped past the stored offset"),
                "{log}"
            );
        }
        assert!(String::from_utf8_lossy(&out.stdout)
            .contains(&format!("events={}", values.len() - 1000)));
        assert_same(
            &format!("resume by {mode} from offset 1000"),
            &snapshot(&storage, job),
            &golden("autoscale-completed"),
            Differ::default(),
        );
    }
}

#[test]
fn a_broker_restart_mid_stream_is_survived() {
    let job = "fx_autoscale";
    let topic = "restart_state";
    let values = autoscale_values();
    let half = values.len() / 2;
    let mut broker = Broker::start_persistent();
    broker.create_topic(topic, 1);
    let scratch = tempfile::tempdir().unwrap();
    let storage = scratch.path().join("data");
    let send = |broker: &Broker, part: &[Vec<u8>], name: &str| {
        let recs: Vec<Record> = part.iter().map(|v| (None, v.clone())).collect();
        let file = scratch.path().join(name);
        write_records_file(&file, &recs);
        produce_python(&broker.addr(), topic, &file, None, &[]);
    };
    send(&broker, &values[..half], "first.records");
    let addr = free_addr();
    let daemon = project_cmd(&broker.addr(), job, topic, &storage)
        .args(["--http", &addr])
        .spawn()
        .unwrap();
    wait_offset(&addr, job, half as u64, TIMEOUT);
    broker.restart();
    send(&broker, &values[half..], "rest.records");
    let out = wait_output(daemon, TIMEOUT, "projector across a broker restart");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same(
        "across a broker restart",
        &snapshot(&storage, job),
        &golden("autoscale-completed"),
        Differ::default(),
    );
}

#[test]
fn killed_before_a_long_flush_interval_ended_loses_nothing() {
    let job = "fx_autoscale";
    let topic = "slowflush_state";
    let values = autoscale_values();
    let n = values.len() as u64;
    let broker = Broker::start();
    broker.create_topic(topic, 1);
    let recs: Vec<Record> = values.iter().map(|v| (None, v.clone())).collect();
    rt().block_on(produce_rdkafka(&broker.addr(), topic, &recs, None, 5));
    let scratch = tempfile::tempdir().unwrap();
    let storage = scratch.path().join("data");
    let addr = free_addr();
    let mut daemon = project_cmd(&broker.addr(), job, topic, &storage)
        .args(["--http", &addr, "--exit-after-end-secs", "0"])
        .args(["--flush-ms", "600000"])
        .spawn()
        .unwrap();
    // Every record is visible live at once...
    wait_offset(&addr, job, n, TIMEOUT);
    // ...while none is durable yet: the default interval (100 ms) would
    // have made them all durable well within this pause.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(live_offset(&addr, job), n);
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let durable = stored_offset(&storage, job);
    assert!(
        durable < n,
        "{durable} of {n} records were durable before the 10-minute flush interval ended"
    );
    // The restart reads again what was not durable and ends exact.
    run_to_end(&broker.addr(), job, topic, &storage, &[]);
    assert_same(
        "restart after a crash with nothing flushed",
        &snapshot(&storage, job),
        &golden("autoscale-completed"),
        Differ::default(),
    );
}
