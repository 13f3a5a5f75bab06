//! The live daemon against a real broker: one projector per attempt (a
//! second is refused while the first goes on; a writer that lost the
//! attempt to SlateDB fencing stops with one line), `/metrics` that
//! `promtool` accepts, and `/stream` pushing view changes as they commit.

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/produce.rs"]
mod produce;
#[path = "common/tansu.rs"]
mod tansu;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use daemon::{
    assert_same, autoscale_values, free_addr, golden, http_get, project_cmd, snapshot, terminate,
    wait_offset, wait_output, Differ,
};
use produce::{produce_python, write_records_file, Record};
use tansu::Broker;

const JOB: &str = "fx_autoscale";
const TIMEOUT: Duration = Duration::from_secs(60);

/// Produces `values` unkeyed with the Python producer.
fn send(broker: &Broker, topic: &str, values: &[Vec<u8>], scratch: &Path, name: &str) {
    let recs: Vec<Record> = values.iter().map(|v| (None, v.clone())).collect();
    let file = scratch.join(name);
    write_records_file(&file, &recs);
    produce_python(&broker.addr(), topic, &file, None, &[]);
}

/// A broker with the first half of the fixture produced and a daemon that
/// has applied it, serving HTTP and never exiting on its own.
struct Running {
    broker: Broker,
    scratch: tempfile::TempDir,
    storage: PathBuf,
    topic: String,
    addr: String,
    daemon: Child,
    values: Vec<Vec<u8>>,
    half: usize,
}

fn running(topic: &str) -> Running {
    let broker = Broker::start();
    let scratch = tempfile::tempdir().unwrap();
    let storage = scratch.path().join("data");
    let values = autoscale_values();
    let half = values.len() / 2;
    broker.create_topic(topic, 1);
    send(
        &broker,
        topic,
        &values[..half],
        scratch.path(),
        "first.records",
    );
    let addr = free_addr();
    let daemon = project_cmd(&broker.addr(), JOB, topic, &storage)
        .args(["--http", &addr, "--exit-after-end-secs", "0"])
        .spawn()
        .unwrap();
    wait_offset(&addr, JOB, half as u64, TIMEOUT);
    Running {
        broker,
        scratch,
        storage,
        topic: topic.to_owned(),
        addr,
        daemon,
        values,
        half,
    }
}

impl Running {
    fn send_rest(&self) {
        send(
            &self.broker,
            &self.topic,
            &self.values[self.half..],
            self.scratch.path(),
            "rest.records",
        );
    }
}

/// Asserts the process failed with status 1; its last stderr line.
fn failed_with_one_line(out: &std::process::Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    last_line(&out.stderr)
}

fn last_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_second_projector_is_refused_and_the_first_goes_on() {
    let r = running("fence_state");
    // Same job, topic and storage: it picks the attempt the first one writes.
    let second = project_cmd(&r.broker.addr(), JOB, &r.topic, &r.storage)
        .spawn()
        .unwrap();
    let out = wait_output(second, TIMEOUT, "second projector");
    let line = failed_with_one_line(&out);
    assert!(
        line.starts_with("error: busy: job=fx_autoscale attempt=")
            && line.contains("stop that writer"),
        "one-line refusal, got: {line}"
    );
    // The first one still consumes, to the end.
    r.send_rest();
    wait_offset(&r.addr, JOB, r.values.len() as u64, TIMEOUT);
    terminate(&r.daemon);
    let out = wait_output(r.daemon, TIMEOUT, "first projector");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same(
        "after a refused second projector",
        &snapshot(&r.storage, JOB),
        &golden("autoscale-completed"),
        Differ::default(),
    );
}

/// Opens the daemon's attempt as a writer that bypassed the lease (as a
/// racing start could): SlateDB fences the daemon. Returns the attempt id,
/// the newer writer and the runtime to close it on.
fn fence(r: &Running) -> (String, slatedb::Db, tokio::runtime::Runtime) {
    let (_, body) = http_get(&r.addr, &format!("/api/jobs/{JOB}")).unwrap();
    let attempt = serde_json::from_str::<serde_json::Value>(&body).unwrap()["attempt_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let storage = sundial::Storage::from_url(r.storage.to_str().unwrap()).unwrap();
    let newer = rt.block_on(storage.open_writer(JOB, &attempt)).unwrap();
    (attempt, newer, rt)
}

/// Asserts the daemon's output ends in the one-line fencing error.
fn assert_fenced_line(out: &std::process::Output, attempt: &str) {
    let line = failed_with_one_line(out);
    assert!(
        line.starts_with(&format!(
            "error: fenced: another writer opened this attempt (job={JOB} attempt={attempt})"
        )),
        "one-line fencing error, got: {line}"
    );
}

#[test]
fn a_writer_fenced_by_a_newer_one_stops_with_one_line() {
    let r = running("zombie_state");
    let (attempt, newer, rt) = fence(&r);
    r.send_rest();
    let out = wait_output(r.daemon, TIMEOUT, "fenced projector");
    assert_fenced_line(&out, &attempt);
    rt.block_on(newer.close()).unwrap();
}

#[test]
fn an_idle_writer_fenced_by_a_newer_one_stops_with_one_line_too() {
    // No record follows the fence: only SlateDB's own tasks notice it.
    let r = running("idle_zombie_state");
    let (attempt, newer, rt) = fence(&r);
    let out = wait_output(r.daemon, TIMEOUT, "idle fenced projector");
    assert_fenced_line(&out, &attempt);
    rt.block_on(newer.close()).unwrap();
}

/// Reads SSE `view` events until one carries `log_offset >= n`.
fn read_view_events_until(reader: &mut impl BufRead, n: u64, timeout: Duration) -> Vec<u64> {
    let start = Instant::now();
    let mut offsets = Vec::new();
    let mut line = String::new();
    loop {
        assert!(
            start.elapsed() < timeout,
            "no view event reached {n}: saw {offsets:?}"
        );
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("stream closed; saw {offsets:?}");
        }
        if let Some(data) = line.strip_prefix("data: ") {
            let v: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
            let off = v["log_offset"].as_u64().unwrap();
            offsets.push(off);
            if off >= n {
                return offsets;
            }
        }
    }
}

#[test]
fn metrics_pass_promtool_and_the_stream_pushes_each_commit() {
    let r = running("live_state");
    // Stage gauges follow the commits (recomputed at most once a second):
    // wait until they cover the first half.
    let position = format!(
        "sundial_projector_kafka_position{{partition=\"0\"}} {}\n",
        r.half
    );
    let start = Instant::now();
    let text = loop {
        let (status, text) = http_get(&r.addr, "/metrics").unwrap();
        assert_eq!(status, 200);
        let settled = text.contains(&position) && text.contains("sundial_stage_workers{");
        if settled || start.elapsed() > Duration::from_secs(10) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for name in [
        "sundial_projector_records_total",
        "sundial_projector_dead_letters_total",
        "sundial_projector_duplicates_total",
        "sundial_projector_batch_size_records_bucket",
        "sundial_projector_batch_duration_seconds_bucket",
        "sundial_projector_last_event_timestamp_seconds",
        "sundial_projector_kafka_position{partition=\"0\"}",
        "sundial_projector_kafka_lag_records{partition=\"0\"}",
        "sundial_stage_input_records_per_second{",
        "sundial_stage_queue_lag_records{",
        "sundial_stage_backpressure_active{",
        "sundial_stage_workers{",
        "sundial_stage_skew_ratio{",
        "sundial_job_workers{job=\"fx_autoscale\"}",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}:\n{text}");
    }
    assert!(
        text.contains(&position),
        "position after the first half: {position}\n{text}"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/ensure-tools.sh installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The stream: the current view at once, then the commits of new records.
    let mut s = std::net::TcpStream::connect(&r.addr).unwrap();
    // A real Host: any other name is refused (DNS rebinding; see host_check).
    write!(
        s,
        "GET /api/jobs/{JOB}/stream HTTP/1.1\r\nHost: {}\r\n\r\n",
        r.addr
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut reader = BufReader::new(s);
    let first = read_view_events_until(&mut reader, r.half as u64, TIMEOUT);
    assert_eq!(
        first,
        vec![r.half as u64],
        "the first event is the current view"
    );
    r.send_rest();
    let later = read_view_events_until(&mut reader, r.values.len() as u64, TIMEOUT);
    assert!(
        later.windows(2).all(|w| w[0] < w[1]),
        "offsets only grow: {later:?}"
    );
    // The lag gauge is set after each commit's view event went out: it
    // reaches 0 once everything is applied (checked for up to 10 s).
    let lag = "sundial_projector_kafka_lag_records{partition=\"0\"} 0\n";
    let start = Instant::now();
    let text = loop {
        let (_, text) = http_get(&r.addr, "/metrics").unwrap();
        if text.contains(lag) || start.elapsed() > Duration::from_secs(10) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        text.contains(lag),
        "no lag once everything is applied:\n{text}"
    );
    terminate(&r.daemon);
    let out = wait_output(r.daemon, TIMEOUT, "projector");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
