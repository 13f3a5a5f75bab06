//! The web page end to end: `sundial demo` (simulate → replay → serve) on a
//! free port, then headless Chromium (Debian's `chromium`, driven by
//! `tests/tools/web_e2e.py` through Playwright) loads every page by URL,
//! checks it shows the job's data as the API reports it, follows links
//! (portal → job, DAG node → stage, workers pager, lineage split → child →
//! parent), pages through a job of 1 000 workers under a sticky header,
//! checks that a running job's page follows its SSE stream, and
//! fails on any console error, page error or failed load. The
//! job page's screenshot is written to `$CARGO_TARGET_TMPDIR/web_e2e/job.png`.
//! `scripts/ensure-tools.sh` installs chromium and playwright.

#[path = "common/daemon.rs"]
mod daemon;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kills the demo server when the test ends, passed or not.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromium() -> String {
    std::env::var("SUNDIAL_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

/// Stores a job that is still RUNNING under `dir`: the first half of a
/// simulated stream (no `job_completed`), replayed.
fn running_job(dir: &Path, job: &str) {
    let sim = Command::new(daemon::bin())
        .args([
            "simulate",
            "--job",
            job,
            "--events",
            "2000",
            "--no-anomalies",
        ])
        .output()
        .expect("sundial simulate");
    assert!(sim.status.success(), "{sim:?}");
    let text = String::from_utf8(sim.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let half = lines[..lines.len() / 2].join("\n") + "\n";
    assert!(!half.contains("job_completed") && half.contains("job_started"));
    replay_text(dir, job, &half);
}

/// Workers of the wide job: the pages must page through them.
const WIDE_WORKERS: usize = 1000;

/// Stores a finished job with `workers` workers under `dir`.
fn wide_job(dir: &Path, job: &str, workers: usize) {
    let msg = |kind: &str, source: &str, t: f64, payload: serde_json::Value| {
        serde_json::json!({"message_type": kind, "job_id": job, "source_id": source,
            "timestamp": t, "payload": payload, "sequence": null})
        .to_string()
    };
    let t0 = 1_767_772_800.0;
    let stages: Vec<_> = (0..4)
        .map(|i| {
            serde_json::json!({"stage_id": format!("s{i}"), "operator_type": "MapOperatorConfig",
            "min_parallelism": 1, "max_parallelism": workers})
        })
        .collect();
    let edges = serde_json::json!({"s0": ["s1"], "s1": ["s2", "s3"]});
    let mut lines = vec![msg(
        "job_started",
        job,
        t0,
        serde_json::json!({"dag_edges": edges, "stages": stages, "config": {}}),
    )];
    for w in 0..workers {
        let (id, stage) = (format!("w{w:04}"), format!("s{}", w % 4));
        let t = t0 + 0.001 * w as f64;
        lines.push(msg(
            "worker_started",
            &id,
            t,
            serde_json::json!({"stage_id": stage, "assigned_partitions": [w % 8]}),
        ));
        lines.push(msg(
            "worker_metrics",
            &id,
            t + 5.0,
            serde_json::json!({"stage_id": stage,
            "input_records": 100 + w, "output_records": 90 + w, "processing_time": 1.5,
            "processed_count": 10, "assigned_partitions": [w % 8], "is_running": true}),
        ));
    }
    lines.push(msg(
        "job_completed",
        job,
        t0 + 10.0,
        serde_json::json!({"status": "COMPLETED"}),
    ));
    replay_text(dir, job, &(lines.join("\n") + "\n"));
}

/// Replays NDJSON `text` into a new attempt of `job` under `dir`.
fn replay_text(dir: &Path, job: &str, text: &str) {
    let input = dir.join(format!("{job}.ndjson"));
    std::fs::write(&input, text).unwrap();
    let replay = Command::new(daemon::bin())
        .args(["replay", "--job", job, "--storage"])
        .arg(dir)
        .arg("--input")
        .arg(&input)
        .output()
        .expect("sundial replay");
    assert!(replay.status.success(), "{replay:?}");
    std::fs::remove_file(&input).unwrap();
}

#[test]
fn every_page_shows_the_demo_job_in_headless_chromium() {
    let data = tempfile::tempdir().unwrap();
    running_job(data.path(), "live_job");
    wide_job(data.path(), "wide_job", WIDE_WORKERS);
    let addr = daemon::free_addr();
    let mut child = Command::new(daemon::bin())
        .args(["demo", "--events", "5000", "--http", &addr])
        .arg("--storage")
        .arg(data.path())
        .env("RUST_LOG", "sundial=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sundial demo");
    let stdout = child.stdout.take().unwrap();
    let _demo = Demo(child);

    // The demo prints its figures, then the page's URL once it serves.
    let url_line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("open http"))
        .expect("sundial demo exited without printing the page URL");
    let want = format!("http://{addr}/");
    assert!(
        url_line.contains(&format!("open {want} ")),
        "demo should print the page URL {want}: {url_line:?}"
    );
    // The URL is printed just before binding: wait until the page answers.
    let mut tries = 0;
    while daemon::http_get(&addr, "/health").is_none() {
        tries += 1;
        assert!(tries < 600, "sundial demo never answered on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, shell) = daemon::http_get(&addr, "/jobs/demo_job/workers").unwrap();
    assert_eq!(status, 200, "a page path answers the page shell");
    assert!(shell.contains("/assets/app.js"), "{shell}");

    let out: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web_e2e");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/web_e2e.py");
    let run = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg(&script)
        .args([
            "--base",
            &format!("http://{addr}"),
            "--chromium",
            &chromium(),
            "--live-job",
            "live_job",
            "--wide-job",
            "wide_job",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run tests/tools/web_e2e.py (python3 with playwright)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    print!("{stdout}");
    assert!(
        run.status.success(),
        "the browser checks failed ({}):\n{stdout}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let png = out.join("job.png");
    let bytes = std::fs::read(&png).expect("job page screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
        "{} is not a real screenshot ({} bytes)",
        png.display(),
        bytes.len()
    );
    println!("job page screenshot: {}", png.display());
}
