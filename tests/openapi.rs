//! The OpenAPI document against the real server: `sundial demo` builds a
//! realistic job, `sundial serve` serves it on a free port, and
//! - the served `/api/openapi.json` is the document in the repository and a
//!   valid OpenAPI 3 document (openapi-spec-validator);
//! - every path, with its parameter examples filled in, answers 200, so the
//!   examples name real data and the response schemas get checked;
//! - schemathesis (installed by scripts/ensure-tools.sh) finds no 5xx, no
//!   response that violates its schema, no undocumented status code or
//!   content type.

#[path = "common/daemon.rs"]
mod daemon;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use daemon::{bin, free_addr, http_get, terminate, wait_output};
use serde_json::Value;

const JOB: &str = "demo_job";
const TIMEOUT: Duration = Duration::from_secs(300);
/// The SSE route never ends a response: schemathesis cannot test it (its
/// errors are checked directly).
const STREAM: &str = "/api/jobs/{job}/stream";
/// What schemathesis checks: no 5xx; every response matches its documented
/// schema, status code and content type; data that violates the document is
/// rejected with a 4xx; other methods get 405.
const CHECKS: &str = "not_a_server_error,response_schema_conformance,status_code_conformance,\
                      content_type_conformance,negative_data_rejection,unsupported_method";

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A demo job under `dir`, served by `sundial serve` on a free port.
struct Served {
    addr: String,
    server: Child,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn serve_demo(dir: &Path) -> Served {
    let out = Command::new(bin())
        .args(["demo", "--no-serve", "--events", "5000", "--storage"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sundial demo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let addr = free_addr();
    let server = Command::new(bin())
        .args(["serve", "--http", &addr, "--storage"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while http_get(&addr, "/health").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "serve never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Served { addr, server }
}

fn repo_document() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The example of each path parameter.
fn examples(doc: &Value) -> Vec<(String, String)> {
    doc["components"]["parameters"]
        .as_object()
        .unwrap()
        .values()
        .filter(|p| p["in"] == "path")
        .map(|p| {
            let name = p["name"].as_str().unwrap().to_owned();
            let ex = p["example"].as_str();
            (
                name.clone(),
                ex.unwrap_or_else(|| panic!("no example for {name}"))
                    .to_owned(),
            )
        })
        .collect()
}

/// Runs Python in `dir` (schemathesis keeps a cache in its working
/// directory: not in the repository).
fn run_python(dir: &Path, args: &[&str], what: &str) -> Output {
    let child = Command::new(python())
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e} (run scripts/ensure-tools.sh)"));
    wait_output(child, TIMEOUT, what)
}

#[test]
fn the_document_is_valid_and_schemathesis_finds_nothing_against_real_data() {
    let scratch = tempfile::tempdir().unwrap();
    let s = serve_demo(&scratch.path().join("data"));
    let doc = repo_document();

    let (status, body) = http_get(&s.addr, "/api/openapi.json").unwrap();
    assert_eq!(status, 200);
    let served: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(served, doc, "the served document is openapi/openapi.json");

    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    let check = "import json, sys\nfrom openapi_spec_validator import validate\n\
                 validate(json.load(open(sys.argv[1])))";
    let out = run_python(
        scratch.path(),
        &["-c", check, file.to_str().unwrap()],
        "openapi-spec-validator",
    );
    assert!(
        out.status.success(),
        "openapi/openapi.json is not valid OpenAPI:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The examples name real data: every route answers 200 with them.
    let ex = examples(&doc);
    for path in doc["paths"].as_object().unwrap().keys() {
        if path == STREAM {
            continue;
        }
        let mut target = path.clone();
        for (name, value) in &ex {
            target = target.replace(&format!("{{{name}}}"), value);
        }
        let (status, body) = http_get(&s.addr, &target).unwrap();
        assert_eq!(status, 200, "{target} with the document's examples: {body}");
    }
    assert!(ex.iter().any(|(n, v)| n == "job" && v == JOB));
    for (target, want) in [
        ("/api/jobs/no_such_job/stream", 404),
        ("/api/jobs/bad%20id/stream", 400),
        (
            &format!("/api/jobs/{JOB}/stream?attempt=no_such_attempt") as &str,
            404,
        ),
    ] {
        let (status, body) = http_get(&s.addr, target).unwrap();
        let err: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (status, &err["status"]),
            (want, &Value::from(want)),
            "{target}"
        );
        assert!(err["error"].is_string(), "{target}: {body}");
    }

    let url = format!("http://{}/api/openapi.json", s.addr);
    let out = run_python(
        scratch.path(),
        &[
            "-c",
            "import sys\nfrom schemathesis.cli import schemathesis\n\
             sys.argv[0] = 'schemathesis'\nsys.exit(schemathesis())",
            "run",
            &url,
            "--checks",
            CHECKS,
            "--exclude-path",
            STREAM,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "30",
            "--seed",
            "1",
            // One worker: with the seed, the same cases every run.
            "--workers",
            "1",
            "--no-color",
        ],
        "schemathesis",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    terminate(&s.server);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "Selected: a/b" and "Tested: c": every operation but the stream tested.
    let figure = |label: &str| {
        let line = text.lines().find_map(|l| l.trim().strip_prefix(label));
        line.unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
            .trim()
            .to_owned()
    };
    let selected = figure("Selected:");
    let (chosen, total) = selected.split_once('/').unwrap();
    assert_eq!(figure("Tested:"), chosen, "{text}");
    let (chosen, total): (usize, usize) = (chosen.parse().unwrap(), total.parse().unwrap());
    assert!(chosen + 1 == total && chosen >= 20, "{text}");
    assert!(text.contains("No issues found"), "{text}");
}
