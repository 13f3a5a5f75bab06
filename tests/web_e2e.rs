//! The web page end to end: `sundial demo` (simulate → replay → serve) on a
//! free port, then headless Chromium (Debian's `chromium`, driven by
//! `tests/tools/web_e2e.py` through Playwright) loads every page by URL,
//! checks it shows the job's data as the API reports it, follows links
//! (portal → job, DAG node → stage, workers pager, lineage split → child →
//! parent), pages through a job of 1 000 workers under a sticky header,
//! checks that a running job's page follows its SSE stream, and
//! fails on any console error, page error or failed load. The
//! job page's screenshot is written to `$CARGO_TARGET_TMPDIR/web_e2e/job.png`.
//! The same browser checks pass again behind a real reverse proxy (nginx):
//! under `/solstice` with the prefix kept (`--base-path /solstice`) and a
//! token the page asks for once, and under `/stripped` with the prefix
//! removed (the server at its root, no flag).
//! `scripts/ensure-tools.sh` installs chromium, playwright and nginx.

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/nginx.rs"]
mod nginx;
#[path = "common/raw_http.rs"]
mod raw_http;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// One browser at a time: two at once on a small machine slow each other
/// past the checks' timeouts.
static BROWSER: Mutex<()> = Mutex::new(());

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
    assert!(shell.contains(r#"src="assets/app.js""#), "{shell}");
    assert!(shell.contains(r#"<base href="../../">"#), "{shell}");

    browse(&format!("http://{addr}"), None, "web_e2e");
}

/// Runs `tests/tools/web_e2e.py` over the page at `base` (its root, with
/// any prefix), logging in with `token` when given; its screenshot goes to
/// `$CARGO_TARGET_TMPDIR/{name}/job.png`.
fn browse(base: &str, token: Option<&str>, name: &str) {
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let out: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/web_e2e.py");
    let mut cmd = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()));
    cmd.arg(&script).args([
        "--base",
        base,
        "--chromium",
        &chromium(),
        "--live-job",
        "live_job",
        "--wide-job",
        "wide_job",
    ]);
    if let Some(t) = token {
        cmd.args(["--token", t]);
    }
    let run = cmd
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run tests/tools/web_e2e.py (python3 with playwright)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    print!("{stdout}");
    assert!(
        run.status.success(),
        "the browser checks at {base} failed ({}):\n{stdout}\n{}",
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

/// A `sundial serve` of `dir` on `addr` with `args`.
fn serve(dir: &Path, addr: &str, args: &[&str]) -> Demo {
    let child = Command::new(daemon::bin())
        .args(["serve", "--http", addr, "--storage"])
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "sundial=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sundial serve");
    raw_http::wait_healthy(addr);
    Demo(child)
}

#[test]
fn every_page_works_behind_nginx_with_the_prefix_kept_and_a_token_or_stripped() {
    let data = tempfile::tempdir().unwrap();
    running_job(data.path(), "live_job");
    wide_job(data.path(), "wide_job", WIDE_WORKERS);
    let demo = Command::new(daemon::bin())
        .args(["demo", "--no-serve", "--events", "5000", "--storage"])
        .arg(data.path())
        .output()
        .expect("sundial demo");
    assert!(demo.status.success(), "{demo:?}");
    let token = "e2e-token-0123456789abcdef";
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, token).unwrap();
    let (keep, strip) = (daemon::free_addr(), daemon::free_addr());
    let _keep = serve(
        data.path(),
        &keep,
        &[
            "--base-path",
            "/solstice",
            "--auth-token-file",
            token_file.to_str().unwrap(),
        ],
    );
    let _strip = serve(data.path(), &strip, &[]);
    let proxy = nginx::start(&daemon::free_addr(), &keep, &strip);

    browse(
        &format!("http://{}/solstice", proxy.addr),
        Some(token),
        "web_e2e_solstice",
    );
    browse(
        &format!("http://{}/stripped", proxy.addr),
        None,
        "web_e2e_stripped",
    );
    let log = proxy.access_log();
    assert!(log.contains("GET /solstice/api/jobs/") && log.contains("GET /stripped/api/jobs/"));
    assert!(!log.contains(token), "the token is in a URL nginx logged");
}
