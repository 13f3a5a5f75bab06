//! Writers of an attempt that can never double-apply, with the real
//! `sundial` binary on a temp dir: a replay into an attempt that already
//! holds records is refused (exit 2, naming `--resume`) without touching
//! it, or continued with `--resume` to views byte-identical to one whole
//! replay; two replays into one attempt at once: one wins, the other exits
//! 1 with the one-line `busy:` error; a replay killed mid-way leaves an
//! attempt marked unfinished that `serve` lists but does not take for the
//! job's latest.

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/replay.rs"]
mod replay;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use daemon::{free_addr, http_get, open_store, rt, wait_output};
use replay::{assert_rows_equal, replay_cmd, replay_ok, view_rows};
use serde_json::Value;

const JOB: &str = "fx_storm";
const TIMEOUT: Duration = Duration::from_secs(60);

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("replay-fixtures/exception-storm-failed/events.ndjson")
}

fn input() -> String {
    fixture().to_string_lossy().into_owned()
}

/// Every view row of attempt `attempt`.
fn rows_of(data: &Path, attempt: &str) -> std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
    rt().block_on(async { view_rows(&open_store(data, JOB, attempt).await).await })
}

/// The one line a failed command printed on stderr.
fn one_error_line(out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "one error line, got:\n{stderr}");
    lines[0].to_owned()
}

#[test]
fn a_replay_into_an_attempt_that_holds_records_is_refused_and_changes_nothing() {
    let data = tempfile::tempdir().unwrap();
    replay_ok(
        data.path(),
        JOB,
        0,
        &["--input", &input(), "--attempt", "a"],
    );
    let before = rows_of(data.path(), "a");
    let summary = std::fs::read(data.path().join(JOB).join("a").join("summary.json")).unwrap();

    let out = replay_cmd(
        data.path(),
        JOB,
        0,
        &["--input", &input(), "--attempt", "a"],
    );
    assert_eq!(out.status.code(), Some(2), "refused as a usage error");
    let line = one_error_line(&out);
    assert!(
        line.contains("attempt=a already holds 5850 records") && line.contains("--resume"),
        "names what it holds and the flag that continues it: {line}"
    );
    assert_rows_equal(
        "after a refused replay",
        &rows_of(data.path(), "a"),
        &before,
    );
    assert_eq!(
        std::fs::read(data.path().join(JOB).join("a").join("summary.json")).unwrap(),
        summary,
        "the sealed summary is untouched"
    );

    // Another source is refused even with --resume.
    let other = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("replay-fixtures/autoscale-completed/events.ndjson");
    let out = replay_cmd(
        data.path(),
        JOB,
        0,
        &[
            "--input",
            other.to_str().unwrap(),
            "--attempt",
            "a",
            "--resume",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(one_error_line(&out).contains("from the same source only"));
    assert_rows_equal(
        "after a refused resume",
        &rows_of(data.path(), "a"),
        &before,
    );

    // Resuming a complete attempt applies nothing.
    let out = replay_ok(
        data.path(),
        JOB,
        0,
        &["--input", &input(), "--attempt", "a", "--resume"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" events=0 applied=0 "), "{stdout}");
    assert_rows_equal(
        "after resuming a complete attempt",
        &rows_of(data.path(), "a"),
        &before,
    );
}

#[test]
fn a_resumed_replay_equals_one_whole_replay_byte_for_byte() {
    let data = tempfile::tempdir().unwrap();
    let input = input();
    replay_ok(
        data.path(),
        JOB,
        1000,
        &["--input", &input, "--attempt", "whole"],
    );
    // Stopped part-way (here: at a record index), then continued.
    replay_ok(
        data.path(),
        JOB,
        1000,
        &[
            "--input",
            &input,
            "--attempt",
            "parts",
            "--to-offset",
            "2999",
            "--batch",
            "700",
        ],
    );
    let out = replay_ok(
        data.path(),
        JOB,
        1000,
        &[
            "--input",
            &input,
            "--attempt",
            "parts",
            "--resume",
            "--batch",
            "700",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" events=2850 "), "only the rest: {stdout}");
    assert_rows_equal(
        "resumed vs whole",
        &rows_of(data.path(), "parts"),
        &rows_of(data.path(), "whole"),
    );
}

/// `sundial replay --input -` into `attempt`, fed by the test through stdin.
fn replay_from_stdin(data: &Path, attempt: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sundial"))
        .args([
            "replay",
            "--job",
            JOB,
            "--quiet",
            "--input",
            "-",
            "--attempt",
            attempt,
        ])
        .arg("--storage")
        .arg(data)
        .env("RUST_LOG", "sundial=info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn of_two_replays_into_one_attempt_at_once_one_wins_the_other_is_busy() {
    let data = tempfile::tempdir().unwrap();
    let lines = std::fs::read(fixture()).unwrap();
    // Both start at once; neither input ends until the loser is known.
    let mut a = replay_from_stdin(data.path(), "same");
    let mut b = replay_from_stdin(data.path(), "same");
    let half = lines.len() / 2;
    let cut = half + lines[half..].iter().position(|c| *c == b'\n').unwrap() + 1;
    for c in [&mut a, &mut b] {
        // The loser may have exited already: its pipe is closed.
        let _ = c.stdin.as_mut().unwrap().write_all(&lines[..cut]);
    }
    let start = Instant::now();
    let (loser, mut winner) = loop {
        if a.try_wait().unwrap().is_some() {
            break (a, b);
        }
        if b.try_wait().unwrap().is_some() {
            break (b, a);
        }
        assert!(start.elapsed() < TIMEOUT, "neither replay gave way");
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = wait_output(loser, TIMEOUT, "losing replay");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = one_error_line(&out);
    assert!(
        line.starts_with(
            "error: busy: job=fx_storm attempt=same is being written by a replay (pid"
        ),
        "the one-line busy error, got: {line}"
    );
    assert!(!line.contains("Closed error"), "{line}");
    let mut stdin = winner.stdin.take().unwrap();
    stdin.write_all(&lines[cut..]).unwrap();
    drop(stdin);
    let out = wait_output(winner, TIMEOUT, "winning replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(" events=5850 "));

    // The winner's attempt equals a replay that ran alone.
    replay_ok(
        data.path(),
        JOB,
        250_000,
        &["--input", &input(), "--attempt", "alone"],
    );
    assert_rows_equal(
        "winner vs alone",
        &rows_of(data.path(), "same"),
        &rows_of(data.path(), "alone"),
    );
}

/// `sundial serve` over `data` on a free port; killed when dropped.
struct Serve(Child, String);

impl Serve {
    fn start(data: &Path) -> Serve {
        let addr = free_addr();
        let child = Command::new(env!("CARGO_BIN_EXE_sundial"))
            .args(["serve", "--http", &addr])
            .arg("--storage")
            .arg(data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while http_get(&addr, "/health").is_none() {
            assert!(start.elapsed() < TIMEOUT, "serve did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Serve(child, addr)
    }

    fn json(&self, path: &str) -> Value {
        let (status, body) = http_get(&self.1, path).unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_replay_killed_mid_way_is_listed_unfinished_and_the_complete_attempt_stays_latest() {
    let data = tempfile::tempdir().unwrap();
    replay_ok(
        data.path(),
        JOB,
        0,
        &["--input", &input(), "--attempt", "complete"],
    );
    let serve = Serve::start(data.path());
    let complete = serve.json(&format!("/api/jobs/{JOB}"));
    assert_eq!(complete["attempt_id"], "complete");

    // A newer replay, fed half its input, snapshots (memtable flushes)
    // every 500 records so part of it is durable, then killed.
    let lines = std::fs::read(fixture()).unwrap();
    let mut partial = Command::new(env!("CARGO_BIN_EXE_sundial"))
        .args([
            "replay",
            "--job",
            JOB,
            "--quiet",
            "--input",
            "-",
            "--attempt",
            "partial",
        ])
        .args(["--batch", "250"])
        .arg("--storage")
        .arg(data.path())
        .env("SUNDIAL_SNAPSHOT_EVERY", "500")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let half = lines.len() / 2;
    let cut = half + lines[half..].iter().position(|c| *c == b'\n').unwrap() + 1;
    let mut stdin = partial.stdin.take().unwrap();
    stdin.write_all(&lines[..cut]).unwrap();
    stdin.flush().unwrap();
    // While it writes, it is the job's latest, in progress.
    let start = Instant::now();
    let row = loop {
        let list = serve.json(&format!("/api/jobs/{JOB}/attempts"));
        let row = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["attempt_id"] == "partial" && a["log_offset"].as_u64() > Some(0))
            .cloned();
        if let Some(row) = row {
            break row;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "the partial replay never showed: {list}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(row["state"], "in_progress", "{row}");
    assert_eq!(
        serve.json(&format!("/api/jobs/{JOB}"))["attempt_id"],
        "partial"
    );

    partial.kill().unwrap(); // SIGKILL
    partial.wait().unwrap();
    drop(stdin);
    // Once its lease went stale, the complete attempt is the latest again.
    let start = Instant::now();
    let list = loop {
        let list = serve.json(&format!("/api/jobs/{JOB}/attempts"));
        if list["items"][0]["state"] == "unfinished" {
            break list;
        }
        assert!(start.elapsed() < TIMEOUT, "never unfinished: {list}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "both listed: {list}");
    assert_eq!(items[0]["attempt_id"], "partial");
    assert_eq!(items[1]["attempt_id"], "complete");
    assert_eq!(items[1]["state"], "complete");
    assert_eq!(
        serve.json(&format!("/api/jobs/{JOB}")),
        complete,
        "job page"
    );
    let jobs = serve.json("/api/jobs");
    assert_eq!(
        jobs["items"][0]["attempt_id"], "complete",
        "job list: {jobs}"
    );
    // Explicitly asked for, the partial attempt still answers.
    let p = serve.json(&format!("/api/jobs/{JOB}?attempt=partial"));
    assert!(p["log_offset"].as_u64().unwrap() < 5850, "{p}");

    // Resumed to its end, it is complete and the latest.
    // (the same source: stdin again).
    let out = Command::new(env!("CARGO_BIN_EXE_sundial"))
        .args([
            "replay",
            "--job",
            JOB,
            "--quiet",
            "--input",
            "-",
            "--attempt",
            "partial",
        ])
        .args(["--resume", "--batch", "250"])
        .arg("--storage")
        .arg(data.path())
        .env("SUNDIAL_SNAPSHOT_EVERY", "500")
        .stdin(std::fs::File::open(fixture()).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = serve.json(&format!("/api/jobs/{JOB}/attempts"));
    assert_eq!(list["items"][0]["state"], "complete", "{list}");
    assert_eq!(
        serve.json(&format!("/api/jobs/{JOB}"))["attempt_id"],
        "partial"
    );
    assert_rows_equal(
        "resumed after kill -9 vs whole",
        &rows_of(data.path(), "partial"),
        &rows_of(data.path(), "complete"),
    );
}
