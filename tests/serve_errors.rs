//! Errors that say what they are, through the real binary and real
//! sockets: a storage directory that does not exist is refused by readers
//! (exit 2, nothing created), a port in use is exit 1, hyper's own 414 /
//! 431 answers and every float parameter's NaN / infinity come back as
//! JSON 4xx, and exception texts are cut in lists but whole on their own
//! route.

mod serve_proc;

use std::io::Write;
use std::process::Command;

use serde_json::{json, Value};
use serve_proc::{get, raw, sundial, Serve};

const JOB: &str = "err_job";

#[test]
fn readers_refuse_a_storage_directory_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    let missing = missing.to_str().unwrap();
    let serve = Command::new(sundial())
        .args(["serve", "--storage", missing, "--http", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(2), "{serve:?}");
    let err = String::from_utf8_lossy(&serve.stderr);
    assert!(err.contains("no such directory"), "{err}");
    let replay = Command::new(sundial())
        .args([
            "replay",
            "--job",
            JOB,
            "--storage",
            missing,
            "--from-log",
            "a1",
        ])
        .output()
        .unwrap();
    assert_eq!(replay.status.code(), Some(2), "{replay:?}");
    assert!(String::from_utf8_lossy(&replay.stderr).contains("no such directory"));
    assert!(!dir.path().join("typo").exists(), "a reader created it");
}

#[test]
fn a_port_in_use_is_exit_1_not_a_bad_argument() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(sundial())
        .args(["serve", "--storage", dir.path().to_str().unwrap()])
        .args(["--http", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen on"), "{err}");
}

/// A small job plus one exception whose message and stacktrace are 20 kB.
fn small_job(dir: &std::path::Path) -> (u64, String) {
    let input = dir.join("in.ndjson");
    let sim = Command::new(sundial())
        .args(["simulate", "--job", JOB, "--scenario", "autoscale"])
        .args(["--events", "2000", "--output", input.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(sim.status.success(), "{sim:?}");
    let long = "x".repeat(20_000);
    // An event time inside the job's: one second after its first record.
    let bytes = std::fs::read(&input).unwrap();
    let at = bytes
        .split(|b| *b == b'\n')
        .find_map(|l| serde_json::from_slice::<Value>(l).ok()?["timestamp"].as_f64())
        .unwrap()
        + 1.0;
    let line = json!({
        "message_type": "exception", "job_id": JOB, "source_id": "source_w0_long",
        "timestamp": at,
        "payload": {"stage_id": "source", "worker_id": "source_w0_long",
            "exception_type": "HugeError", "message": long, "stacktrace": long},
        "sequence": 1
    });
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap();
    writeln!(f, "{line}").unwrap();
    let records = std::fs::read(&input)
        .unwrap()
        .iter()
        .filter(|b| **b == b'\n')
        .count() as u64;
    let storage = dir.join("data");
    let rep = Command::new(sundial())
        .args(["replay", "--job", JOB, "--attempt", "a1", "--quiet"])
        .args(["--storage", storage.to_str().unwrap()])
        .args(["--input", input.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(rep.status.success(), "{rep:?}");
    (records, long)
}

fn assert_json_error(status: u16, body: &str, want: u16) -> Value {
    assert_eq!(status, want, "{body}");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert_eq!(v["status"], want, "{v}");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    v
}

#[test]
fn hostile_requests_get_json_errors_and_long_exception_texts_are_cut_in_lists() {
    let dir = tempfile::tempdir().unwrap();
    let (records, long) = small_job(dir.path());
    let server = Serve::start(&dir.path().join("data"), &[]);
    let addr = server.addr;

    // Past the router's URI bound (8 KiB) and past hyper's head buffer.
    let (st, _, body) = get(addr, &format!("/api/jobs?prefix={}", "a".repeat(10_000)));
    assert_json_error(st, &body, 414);
    let (st, _, body) = get(addr, &format!("/api/jobs?prefix={}", "a".repeat(40_000)));
    assert_json_error(st, &body, 431);
    let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    let (st, _, body) = raw(
        addr,
        &format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n{many}Connection: close\r\n\r\n"),
    );
    assert_json_error(st, &body, 431);
    let (st, _, body) = raw(addr, "NOT HTTP AT ALL\r\n\r\n");
    assert_json_error(st, &body, 400);

    // Every float parameter refuses NaN and infinities alike.
    let stage = "source";
    for q in [
        format!("/api/jobs/{JOB}/stages/{stage}/metrics?start_time=NaN"),
        format!("/api/jobs/{JOB}/stages/{stage}/metrics?end_time=inf"),
        format!("/api/jobs/{JOB}/stages/{stage}/metrics?start_time=-infinity"),
        "/api/jobs?since=NaN".to_owned(),
        "/api/jobs?until=inf".to_owned(),
    ] {
        let (st, _, body) = get(addr, &q);
        let v = assert_json_error(st, &body, 400);
        assert!(
            v["error"].as_str().unwrap().contains("finite number"),
            "{q}: {v}"
        );
    }
    let (st, _, body) = get(
        addr,
        &format!("/api/jobs/{JOB}/stages/{stage}/metrics?start_time=0"),
    );
    assert_eq!(st, 200, "{body}");

    // The long exception: cut in the list, whole on its own route.
    let (st, _, body) = get(addr, &format!("/api/jobs/{JOB}/exceptions?page_size=1000"));
    assert_eq!(st, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    let items = list["items"].as_array().unwrap();
    let huge: Vec<&Value> = items
        .iter()
        .filter(|e| e["exception_type"] == "HugeError")
        .collect();
    assert_eq!(huge.len(), 1, "{list}");
    let listed = huge[0];
    assert_eq!(listed["truncated"], true);
    assert_eq!(listed["message"].as_str().unwrap().len(), 4096);
    assert_eq!(listed["stacktrace"].as_str().unwrap().len(), 4096);
    assert_eq!(listed["offset"], records, "the line appended last");
    for e in items.iter().filter(|e| e["exception_type"] != "HugeError") {
        assert!(e.get("truncated").is_none(), "{e}");
    }
    let (st, _, body) = get(addr, &format!("/api/jobs/{JOB}/exceptions/{records}"));
    assert_eq!(st, 200, "{body}");
    let full: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(full["message"], long.as_str());
    assert_eq!(full["stacktrace"], long.as_str());
    assert!(full.get("truncated").is_none());
    let (st, _, body) = get(addr, &format!("/api/jobs/{JOB}/exceptions/1"));
    assert_json_error(st, &body, 404);
    let (st, _, body) = get(addr, &format!("/api/jobs/{JOB}/exceptions/abc"));
    assert_json_error(st, &body, 400);
    // The summary route is still the summary.
    let (st, _, body) = get(addr, &format!("/api/jobs/{JOB}/exceptions/summary"));
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("by_type"));
}
