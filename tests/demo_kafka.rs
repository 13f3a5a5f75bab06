//! `sundial demo --brokers`: the demo's simulated job produced to a real
//! Tansu broker and projected by the daemon in the same process gives the
//! views the file path gives (up to source coordinates); a second run
//! projects what the topic holds instead of sending the job twice; a run
//! against a fresh broker starts a new attempt; and the serving run answers
//! the API while it follows the topic.

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/tansu.rs"]
mod tansu;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use daemon::{
    assert_same, attempts, bin, free_addr, http_get, open_store, rt, snapshot, terminate,
    wait_offset, wait_output, Differ,
};
use serde_json::Value;
use sundial::api;
use tansu::Broker;

const JOB: &str = "demo_job";
const EVENTS: &str = "5000";
const TIMEOUT: Duration = Duration::from_secs(120);

fn demo(storage: &Path, extra: &[&str]) -> Output {
    let child = Command::new(bin())
        .args(["demo", "--no-serve", "--events", EVENTS, "--storage"])
        .arg(storage)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, TIMEOUT, "sundial demo");
    assert!(
        out.status.success(),
        "sundial demo {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_demo_through_kafka_equals_the_demo_from_the_file() {
    let broker = Broker::start();
    let scratch = tempfile::tempdir().unwrap();
    let (via_kafka, via_file) = (scratch.path().join("kafka"), scratch.path().join("file"));

    let first = demo(&via_kafka, &["--brokers", &broker.addr()]);
    assert!(stdout(&first).contains("produced"), "{}", stdout(&first));
    demo(&via_file, &[]);
    let want = snapshot(&via_file, JOB);
    let records = want["job"]["event_count"].as_u64().unwrap();
    assert!(records > 4_000, "the demo job has {records} records");
    assert!(want["job"]["dead_letter_count"].as_u64().unwrap() > 0);
    assert!(want["exception_summary"]["total"].as_u64().unwrap() > 0);
    assert!(want["checkpoints"]["count"].as_u64().unwrap() > 0);
    let got = snapshot(&via_kafka, JOB);
    assert_eq!(got["job"]["status"], "COMPLETED");
    assert_same("demo --brokers", &got, &want, Differ::default());

    // Again: the topic holds the job already, so nothing is sent twice and
    // the attempt fed from it is resumed, unchanged.
    let again = demo(&via_kafka, &["--brokers", &broker.addr()]);
    assert!(
        stdout(&again).contains("already has records"),
        "{}",
        stdout(&again)
    );
    assert_eq!(rt().block_on(attempts(&via_kafka, JOB)).len(), 1);
    assert_same(
        "demo --brokers, again",
        &snapshot(&via_kafka, JOB),
        &want,
        Differ::default(),
    );

    // A fresh broker (the old topic gone): the job is sent again into a new
    // attempt, which the old one's stored position must not cut short.
    let fresh = Broker::start();
    let third = demo(&via_kafka, &["--brokers", &fresh.addr()]);
    assert!(stdout(&third).contains("produced"), "{}", stdout(&third));
    let newest = rt().block_on(async {
        let all = attempts(&via_kafka, JOB).await;
        assert_eq!(all.len(), 2, "{all:?}");
        let latest = all.iter().max().unwrap();
        api::snapshot(&open_store(&via_kafka, JOB, latest).await)
            .await
            .unwrap()
    });
    assert_same(
        "demo --brokers, fresh broker",
        &newest,
        &want,
        Differ::default(),
    );
    drop(fresh);

    // Serving: the live daemon answers the API once it has applied the job.
    let addr = free_addr();
    let serving = Command::new(bin())
        .args(["demo", "--events", EVENTS, "--brokers", &broker.addr()])
        .args(["--http", &addr, "--storage"])
        .arg(scratch.path().join("served"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_offset(&addr, JOB, records, TIMEOUT);
    let (status, body) =
        http_get(&addr, &format!("/api/jobs/{JOB}/stages?page_size=1000")).unwrap();
    assert_eq!(status, 200, "{body}");
    let stages: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stages, want["stages"], "stages served live");
    terminate(&serving);
    let out = wait_output(serving, TIMEOUT, "sundial demo (serving)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).contains(&format!("open http://{addr}/")),
        "{}",
        stdout(&out)
    );
}
