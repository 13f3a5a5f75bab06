//! No record lost to its neighbour, with the real `sundial` binary: in a
//! MessagePack stream, bytes that do not frame become one dead letter up
//! to the next well-formed state message, and every record after them is
//! applied; the same in NDJSON (per line); a record over the size limit
//! is a dead letter that says why, kept cut off. A replay that made dead
//! letters says how many on stderr.

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/replay.rs"]
mod replay;

use std::path::Path;
use std::process::Command;

use daemon::{open_store, rt};
use replay::replay_ok;
use sundial::source::msgpack_frame::{frame, Frame};

const JOB: &str = "fx_bad";

/// A clean simulated stream (no poison, retries, late or lost messages).
fn simulate(format: &str) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_sundial"))
        .args(["simulate", "--job", JOB, "--scenario", "realistic"])
        .args(["--events", "1500", "--no-anomalies", "--format", format])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

/// The first 1 000 records of a MessagePack stream, each its own bytes.
fn msgpack_records() -> Vec<Vec<u8>> {
    let all = simulate("msgpack");
    let (mut out, mut at) = (Vec::new(), 0);
    while out.len() < 1000 {
        let Frame::Value(n) = frame(&all[at..]) else {
            panic!("the simulator's stream frames");
        };
        out.push(all[at..at + n].to_vec());
        at += n;
    }
    out
}

/// The first 1 000 lines of an NDJSON stream, each with its `\n`.
fn ndjson_records() -> Vec<Vec<u8>> {
    let all = simulate("ndjson");
    all.split_inclusive(|b| *b == b'\n')
        .take(1000)
        .map(<[u8]>::to_vec)
        .collect()
}

/// Replays `bytes` as a file; stdout and stderr.
fn replay_bytes(dir: &Path, name: &str, bytes: &[u8], extra: &[&str]) -> (String, String) {
    let input = dir.join(name);
    std::fs::write(&input, bytes).unwrap();
    let mut args = vec!["--input", input.to_str().unwrap(), "--attempt", "a"];
    args.extend(extra);
    let out = replay_ok(&dir.join("data"), JOB, 0, &args);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The dead letters stored for the attempt: (reason, preview) each.
fn dead_letters(dir: &Path) -> Vec<(String, String)> {
    rt().block_on(async {
        let store = open_store(&dir.join("data"), JOB, "a").await;
        let page = sundial::api::dead_letters(&store, &Default::default())
            .await
            .unwrap();
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["reason"].as_str().unwrap().to_owned(),
                    d["preview"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    })
}

fn assert_counts(stdout: &str, events: u64, applied: u64, dead: u64) {
    assert!(
        stdout.contains(&format!(
            " events={events} applied={applied} dead_letters={dead} duplicates=0 "
        )),
        "{stdout}"
    );
}

#[test]
fn a_malformed_msgpack_record_costs_only_its_own_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let records = msgpack_records();
    let mut stream: Vec<u8> = records[..10].concat();
    stream.push(0xc1); // a marker MessagePack never uses
    stream.extend(records[10..].concat());
    let (stdout, stderr) = replay_bytes(dir.path(), "one-bad.msgpack", &stream, &[]);
    assert_counts(&stdout, 1001, 1000, 1);
    assert!(
        stderr.contains("warning: 1 of the 1001 records are dead letters"),
        "{stderr}"
    );
    // Only the bad byte is the dead letter.
    let dead = dead_letters(dir.path());
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].1, "\\xc1", "{dead:?}");
}

#[test]
fn a_msgpack_record_that_does_not_frame_is_one_dead_letter_up_to_the_next_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut records = msgpack_records();
    // A reserved byte for record 500's map header: none of its bytes
    // frame as a state message any more.
    records[500][0] = 0xc1;
    let (stdout, stderr) = replay_bytes(dir.path(), "broken.msgpack", &records.concat(), &[]);
    assert_counts(&stdout, 1000, 999, 1);
    assert!(
        stderr.contains("warning: 1 of the 1000 records are dead letters"),
        "{stderr}"
    );
    // A stream cut short ends in one dead letter: the cut record.
    let records = msgpack_records();
    let mut cut = records[..999].concat();
    let last = &records[999];
    cut.extend(&last[..last.len() - 3]);
    let dir = tempfile::tempdir().unwrap();
    let (stdout, _) = replay_bytes(dir.path(), "cut.msgpack", &cut, &[]);
    assert_counts(&stdout, 1000, 999, 1);
}

#[test]
fn a_malformed_ndjson_line_costs_only_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let records = ndjson_records();
    let mut stream: Vec<u8> = records[..10].concat();
    stream.extend(b"{\"message_type\": \"worker_metrics\", \"job_id\": \xc1\n");
    stream.extend(records[10..].concat());
    let (stdout, stderr) = replay_bytes(dir.path(), "one-bad.ndjson", &stream, &[]);
    assert_counts(&stdout, 1001, 1000, 1);
    assert!(
        stderr.contains("warning: 1 of the 1001 records are dead letters"),
        "{stderr}"
    );
}

#[test]
fn a_clean_replay_gives_no_warning() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, stderr) =
        replay_bytes(dir.path(), "clean.ndjson", &ndjson_records().concat(), &[]);
    assert_counts(&stdout, 1000, 1000, 0);
    assert!(!stderr.contains("warning:"), "{stderr}");
}

/// A valid record `bytes` long or more: a worker exception with a long message.
fn big_record(bytes: usize) -> Vec<u8> {
    let msg = serde_json::json!({
        "message_type": "exception", "job_id": JOB, "source_id": "w_big",
        "timestamp": 1767772900.0, "sequence": null,
        "payload": {"stage_id": "source", "exception_type": "ValueError",
                    "message": "x".repeat(bytes), "stacktrace": "at f()"}
    });
    let mut line = serde_json::to_vec(&msg).unwrap();
    line.push(b'\n');
    line
}

#[test]
fn a_record_over_the_size_limit_is_a_dead_letter_that_says_why() {
    for format in ["ndjson", "msgpack"] {
        let dir = tempfile::tempdir().unwrap();
        let big = big_record(3 << 20);
        let (records, big) = if format == "ndjson" {
            (ndjson_records(), big)
        } else {
            let v: serde_json::Value = serde_json::from_slice(&big).unwrap();
            (msgpack_records(), rmp_serde::to_vec_named(&v).unwrap())
        };
        let mut stream: Vec<u8> = records[..500].concat();
        stream.extend(&big);
        stream.extend(records[500..].concat());
        let name = format!("big.{format}");
        let (stdout, _) = replay_bytes(dir.path(), &name, &stream, &[]);
        assert_counts(&stdout, 1001, 1000, 1);
        let dead = dead_letters(dir.path());
        let size = big.len() - usize::from(format == "ndjson");
        assert_eq!(
            dead[0].0,
            format!(
                "record of {size} bytes is over the limit of 1048576 bytes \
                 (--max-record-bytes); its first 1024 bytes are kept"
            ),
            "{format}"
        );
        // The limit is a flag: raised, the record is taken whole.
        let dir = tempfile::tempdir().unwrap();
        let (stdout, _) = replay_bytes(
            dir.path(),
            &name,
            &stream,
            &["--max-record-bytes", "4000000"],
        );
        assert_counts(&stdout, 1001, 1001, 0);
    }
}
