//! The endpoint settings over real sockets, against `sundial serve` of a
//! job `sundial demo` builds: a base path, a bearer token (every route of
//! the OpenAPI document, read from the document itself, answers 401 without
//! it and 200 with it; `/health` stays open), the `Host` check, CORS, and
//! gzip / br compression (an exception page of over 1 MB).

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/raw_http.rs"]
mod raw_http;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use daemon::{bin, free_addr, terminate};
use raw_http::{get, request, wait_healthy};
use serde_json::Value;

const JOB: &str = "demo_job";
const TOKEN: &str = "s3cret-token-0123456789abcdef";
const PREFIX: &str = "/solstice";

/// A `sundial serve`, killed when the test ends.
struct Server {
    addr: String,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo job under `dir`.
fn demo_data(dir: &Path) {
    let out = Command::new(bin())
        .args(["demo", "--no-serve", "--events", "5000", "--storage"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `sundial serve` of `dir` with `args`, `env`, stderr to `log`.
fn serve(dir: &Path, args: &[&str], env: &[(&str, &str)], log: &Path) -> Server {
    let addr = free_addr();
    let child = Command::new(bin())
        .args(["serve", "--http", &addr, "--storage"])
        .arg(dir)
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "sundial=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    wait_healthy(&addr);
    Server { addr, child }
}

fn repo_document() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Every path of the document with its parameter examples filled in.
fn documented_targets(doc: &Value) -> Vec<String> {
    let params = doc["components"]["parameters"].as_object().unwrap();
    doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|path| {
            params
                .values()
                .filter(|p| p["in"] == "path")
                .fold(path.clone(), |t, p| {
                    t.replace(
                        &format!("{{{}}}", p["name"].as_str().unwrap()),
                        p["example"].as_str().unwrap(),
                    )
                })
        })
        .collect()
}

#[test]
fn with_a_token_every_documented_route_wants_it_and_health_stays_open() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    demo_data(&data);
    let token_file = scratch.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let log = scratch.path().join("serve.log");
    let s = serve(
        &data,
        &[
            "--base-path",
            PREFIX,
            "--auth-token-file",
            token_file.to_str().unwrap(),
        ],
        &[],
        &log,
    );
    let bearer = format!("Bearer {TOKEN}");
    let with = [("Authorization", bearer.as_str())];
    let wrong = [("Authorization", "Bearer s3cret-token-0123456789abcdeX")];

    // The document as served under the prefix is the repository's.
    let doc = get(&s.addr, &format!("{PREFIX}/api/openapi.json"), &with).json();
    assert_eq!(doc, repo_document());
    let targets = documented_targets(&doc);
    assert!(targets.len() >= 20, "{targets:?}");
    let mut guarded = 0;
    for t in &targets {
        let at = format!("{PREFIX}{t}");
        if t == "/health" {
            for target in ["/health", at.as_str()] {
                for h in [&with[..], &[]] {
                    assert_eq!(get(&s.addr, target, h).status, 200, "{target}");
                }
            }
            continue;
        }
        for (h, what) in [(&[][..], "no token"), (&wrong[..], "a wrong token")] {
            let a = get(&s.addr, &at, h);
            assert_eq!(a.status, 401, "{at} with {what}");
            assert_eq!(a.json()["status"], 401, "{at}");
            assert!(a.json()["error"].is_string(), "{at}");
            assert_eq!(
                a.header("www-authenticate"),
                Some("Bearer realm=\"sundial\"")
            );
        }
        assert_eq!(get(&s.addr, &at, &with).status, 200, "{at} with the token");
        // Without the prefix nothing is there, token or not.
        assert_eq!(get(&s.addr, t, &with).status, 404, "{t}");
        guarded += 1;
    }
    assert_eq!(guarded, targets.len() - 1);
    // A lower-case scheme is still the bearer scheme.
    let lower = format!("bearer {TOKEN}");
    let jobs = format!("{PREFIX}/api/jobs");
    assert_eq!(
        get(&s.addr, &jobs, &[("authorization", &lower)]).status,
        200
    );
    // The page's shell and assets load without the token (they hold no
    // data) and tell the script to ask for one.
    let shell = get(&s.addr, &format!("{PREFIX}/jobs/{JOB}/workers"), &[]);
    assert_eq!(shell.status, 200);
    let html = String::from_utf8(shell.body).unwrap();
    assert!(html.contains(r#"<base href="../../">"#), "{html}");
    assert!(html.contains(r#"<meta name="sundial-auth" content="bearer">"#));
    assert_eq!(
        get(&s.addr, &format!("{PREFIX}/assets/app.js"), &[]).status,
        200
    );
    // The bare prefix leads to the page's root.
    let r = get(&s.addr, &format!("{PREFIX}?status=running"), &[]);
    assert_eq!(
        (r.status, r.header("location")),
        (308, Some("solstice/?status=running"))
    );
    // No CORS unless asked for.
    let r = get(
        &s.addr,
        &jobs,
        &[
            ("Authorization", &bearer),
            ("Origin", "https://dash.example"),
        ],
    );
    assert_eq!(r.header("access-control-allow-origin"), None);
    // The token reaches no log line.
    terminate(&s.child);
    drop(s);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("serving http"), "{text}");
    assert!(!text.contains(TOKEN), "the token is in the log:\n{text}");

    // The token from the environment instead of a file works the same.
    let s = serve(&data, &[], &[("SUNDIAL_AUTH_TOKEN", TOKEN)], &log);
    assert_eq!(get(&s.addr, "/metrics", &[]).status, 401);
    assert_eq!(get(&s.addr, "/metrics", &with).status, 200);
    assert_eq!(get(&s.addr, "/health", &[]).status, 200);
}

#[test]
fn bad_endpoint_flags_are_usage_errors() {
    let scratch = tempfile::tempdir().unwrap();
    let short = scratch.path().join("short");
    std::fs::write(&short, "abc\n").unwrap();
    for (args, needle) in [
        (vec!["--base-path", "solstice"], "base path"),
        (vec!["--base-path", "/a/../b"], "base path"),
        (
            vec!["--auth-token-file", short.to_str().unwrap()],
            "at least 16",
        ),
        (
            vec!["--auth-token-file", "/nonexistent/token"],
            "auth token file",
        ),
        (vec!["--cors-origin", "dash.example"], "cors origin"),
    ] {
        let out = Command::new(bin())
            .args(["serve", "--http", &free_addr(), "--storage"])
            .arg(scratch.path())
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(needle),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn without_a_token_host_names_are_checked_and_cors_is_opt_in() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    demo_data(&data);
    let s = serve(
        &data,
        &[
            "--allowed-hosts",
            "portal.example",
            "--cors-origin",
            "https://dash.example",
        ],
        &[],
        &scratch.path().join("serve.log"),
    );
    let port = s.addr.rsplit(':').next().unwrap();
    for host in [
        s.addr.clone(),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        "portal.example".to_owned(),
        format!("Portal.Example:{port}"),
    ] {
        assert_eq!(
            get(&s.addr, "/api/jobs", &[("Host", &host)]).status,
            200,
            "{host}"
        );
    }
    // A page on another name that resolves here (DNS rebinding).
    for target in ["/api/jobs", "/", "/metrics"] {
        let a = get(
            &s.addr,
            target,
            &[("Host", &format!("rebind.evil.example:{port}"))],
        );
        assert_eq!(a.status, 403, "{target}");
        assert_eq!(a.json()["status"], 403);
    }
    let evil = format!("rebind.evil.example:{port}");
    assert_eq!(get(&s.addr, "/health", &[("Host", &evil)]).status, 200);

    // CORS for the one origin asked for, a preflight included.
    let origin = ("Origin", "https://dash.example");
    let a = get(&s.addr, "/api/jobs", &[origin]);
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("https://dash.example")
    );
    let a = get(&s.addr, "/api/jobs", &[("Origin", "https://other.example")]);
    assert_eq!(a.header("access-control-allow-origin"), None);
    let pre = request(
        &s.addr,
        "OPTIONS",
        "/api/jobs",
        &[
            origin,
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "authorization"),
        ],
    );
    assert_eq!(pre.status, 200);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("https://dash.example")
    );
    assert!(pre
        .header("access-control-allow-headers")
        .is_some_and(|h| h.contains("authorization")));
}

/// Frames of the Ray and asyncio machinery a real worker's traceback runs
/// through before the operator's own: the simulator's traces are short.
const DEEP_FRAMES: &str = "  File \"/usr/lib/python3.11/asyncio/events.py\", line 80, in _run\n    self._context.run(self._callback, *self._args)\n  File \"/opt/venv/lib/python3.11/site-packages/ray/_private/async_compat.py\", line 22, in wrapper\n    return await fn(*args, **kwargs)\n  File \"/opt/venv/lib/python3.11/site-packages/ray/actor.py\", line 1402, in _actor_method_call\n    return await method(self, *args, **kwargs)\n  File \"/opt/solstice/solstice/runtime/stage_worker.py\", line 301, in _handle_batch\n    for split, payload in batch:\n";

/// Stores an exception-storm job with realistically deep tracebacks: its
/// exception page of 1000 is over 1 MB.
fn storm_data(dir: &Path, job: &str) {
    let sim = Command::new(bin())
        .args([
            "simulate",
            "--scenario",
            "exception-storm",
            "--events",
            "20000",
            "--job",
            job,
        ])
        .output()
        .unwrap();
    assert!(sim.status.success());
    let mut text = String::new();
    for line in String::from_utf8_lossy(&sim.stdout).lines() {
        match serde_json::from_str::<Value>(line) {
            Ok(mut v) if v["message_type"] == "exception" => {
                let trace = v["payload"]["stacktrace"].as_str().unwrap_or_default();
                let deep = trace.replacen(
                    "(most recent call last):\n",
                    &format!("(most recent call last):\n{DEEP_FRAMES}"),
                    1,
                );
                v["payload"]["stacktrace"] = Value::from(deep);
                text += &v.to_string();
            }
            _ => text += line,
        }
        text.push('\n');
    }
    let input = dir.join("storm.ndjson");
    std::fs::write(&input, text).unwrap();
    let replay = Command::new(bin())
        .args(["replay", "--quiet", "--job", job, "--storage"])
        .arg(dir.join("data"))
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
}

#[test]
fn answers_are_compressed_when_the_client_accepts_it_and_the_stream_is_not() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    demo_data(&data);
    storm_data(scratch.path(), "storm_job");
    let s = serve(&data, &[], &[], &scratch.path().join("serve.log"));
    let page = "/api/jobs/storm_job/exceptions?page_size=1000";
    let plain = get(&s.addr, page, &[]);
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), None);
    assert!(
        plain.body.len() >= 1_000_000,
        "the page is {} bytes",
        plain.body.len()
    );
    let want = plain.json();

    let gz = get(&s.addr, page, &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut body = Vec::new();
    flate2::read::GzDecoder::new(&gz.body[..])
        .read_to_end(&mut body)
        .unwrap();
    assert_eq!(body, plain.body, "gzip decodes to the same bytes");
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), want);

    let br = get(&s.addr, page, &[("Accept-Encoding", "br")]);
    assert_eq!(br.header("content-encoding"), Some("br"));
    let mut body = Vec::new();
    brotli_decompressor::Decompressor::new(&br.body[..], 4096)
        .read_to_end(&mut body)
        .unwrap();
    assert_eq!(body, plain.body, "br decodes to the same bytes");
    println!(
        "exception page of {} bytes: gzip {} bytes ({:.1}x smaller), br {} bytes ({:.1}x)",
        plain.body.len(),
        gz.body.len(),
        plain.body.len() as f64 / gz.body.len() as f64,
        br.body.len(),
        plain.body.len() as f64 / br.body.len() as f64,
    );
    assert!(gz.body.len() * 4 < plain.body.len() && br.body.len() < gz.body.len());

    // The page and the metrics too; the stream never (it must flow).
    for target in ["/", "/assets/pages.js", "/metrics", "/api/openapi.json"] {
        let a = get(&s.addr, target, &[("Accept-Encoding", "gzip, br")]);
        assert_eq!(a.status, 200, "{target}");
        assert!(a.header("content-encoding").is_some(), "{target}");
    }
    let sse = get(
        &s.addr,
        &format!("/api/jobs/{JOB}/stream"),
        &[("Accept-Encoding", "gzip, br")],
    );
    assert_eq!(sse.status, 200);
    assert_eq!(sse.header("content-type"), Some("text/event-stream"));
    assert_eq!(sse.header("content-encoding"), None);
    assert_eq!(sse.header("x-accel-buffering"), Some("no"));
}
