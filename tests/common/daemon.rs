//! Running the real `sundial project` binary in tests, reading what it
//! stored, and comparing view snapshots across sources.
//!
//! Include with `#[path = "common/daemon.rs"] mod daemon;`.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sundial::api;
use sundial::source::file::FileSource;
use sundial::SourceRecord;
use sundial::Storage;
use sundial::{Handle, ViewStore};

/// The `sundial` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sundial")
}

/// `sundial project` arguments for a test: no HTTP unless asked, a short
/// quiet period after the job ends, a fast lease.
pub fn project_cmd(broker: &str, job: &str, topic: &str, storage: &Path) -> Command {
    let mut c = Command::new(bin());
    c.args([
        "project",
        "--job",
        job,
        "--brokers",
        broker,
        "--topic",
        topic,
    ])
    .arg("--storage")
    .arg(storage)
    .args(["--http", "none", "--exit-after-end-secs", "1.5"])
    .args(["--lease-ms", "200"])
    .env("RUST_LOG", "sundial=info")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

/// Waits for a child with a deadline; kills it and panics past it.
pub fn wait_output(mut child: Child, timeout: Duration, what: &str) -> Output {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().expect("collect output"),
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("collect output");
                panic!(
                    "{what}: still running after {timeout:?}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("{what}: wait: {e}"),
        }
    }
}

/// Runs a daemon to its own exit (the job ended and the topic went quiet)
/// and asserts it succeeded.
pub fn run_to_end(broker: &str, job: &str, topic: &str, storage: &Path, extra: &[&str]) -> Output {
    let child = project_cmd(broker, job, topic, storage)
        .args(extra)
        .spawn()
        .expect("spawn sundial project");
    let out = wait_output(child, Duration::from_secs(120), "sundial project");
    assert!(
        out.status.success(),
        "sundial project failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every record of a fixture stream file (NDJSON, .gz or MessagePack), as
/// the file source reads it.
pub fn fixture_values(path: &Path) -> Vec<Vec<u8>> {
    let mut src = FileSource::open(path.to_str().unwrap()).expect("open fixture");
    let mut out = Vec::new();
    loop {
        let mut buf: Vec<SourceRecord> = Vec::new();
        let more = src.next_batch(10_000, &mut buf).expect("read fixture");
        out.extend(buf.into_iter().map(|r| r.value.to_vec()));
        if !more {
            return out;
        }
    }
}

/// The `source_id` of a JSON or MessagePack record, if it parses.
pub fn source_id(value: &[u8]) -> Option<Vec<u8>> {
    let v: Value = serde_json::from_slice(value)
        .ok()
        .or_else(|| rmp_serde::from_slice(value).ok())?;
    v.get("source_id")?.as_str().map(|s| s.as_bytes().to_vec())
}

/// A read-only store over one attempt under a local directory.
pub async fn open_store(dir: &Path, job: &str, attempt: &str) -> ViewStore {
    let storage = Storage::from_url(dir.to_str().unwrap()).unwrap();
    let reader = storage.open_reader(job, attempt).await.unwrap();
    ViewStore::open(Handle::Reader(Arc::new(reader)), job, attempt)
        .await
        .unwrap()
}

/// The attempts of `job` under a local directory.
pub async fn attempts(dir: &Path, job: &str) -> Vec<String> {
    let storage = Storage::from_url(dir.to_str().unwrap()).unwrap();
    storage.list_attempts(job).await.unwrap()
}

/// A current-thread runtime for the blocking tests.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The API snapshot of the one attempt of `job` under `storage`.
pub fn snapshot(storage: &Path, job: &str) -> Value {
    rt().block_on(async {
        let attempts = attempts(storage, job).await;
        assert_eq!(attempts.len(), 1, "one attempt of {job}: {attempts:?}");
        api::snapshot(&open_store(storage, job, &attempts[0]).await)
            .await
            .unwrap()
    })
}

/// Asserts that the one attempt of `job` was sealed by its writer's clean
/// exit and that its summary answers exactly like its views.
pub fn assert_sealed_summary(storage: &Path, job: &str) {
    rt().block_on(async {
        let attempt = attempts(storage, job).await.remove(0);
        let st = Storage::from_url(storage.to_str().unwrap()).unwrap();
        let sum = sundial::summary::read(&st, job, &attempt)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{job}: no summary.json"));
        assert!(sum.sealed, "{job}: a clean exit seals the summary");
        let store = open_store(storage, job, &attempt).await;
        assert_eq!(sum.job, api::job(&store).await.unwrap(), "{job}: job view");
        assert_eq!(
            sum.entry,
            api::job_summary(&store).await.unwrap(),
            "{job}: list entry"
        );
    })
}

/// The records of the autoscale-completed fixture.
pub fn autoscale_values() -> Vec<Vec<u8>> {
    fixture_values(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("replay-fixtures/autoscale-completed/events.ndjson"),
    )
}

/// A fixture's golden snapshot.
pub fn golden(dir: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("replay-fixtures")
        .join(dir)
        .join("expected.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// What may differ between sources of the same stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct Differ {
    /// Several partitions: the log's interleaving (log sequences, the order
    /// of equal-time items, which splits the first lineage page lists: it
    /// is in log order) depends on the consumer.
    pub interleaving: bool,
    /// Poison records re-framed as MessagePack, or parsed as the
    /// `content-type` header says: other dead-letter text.
    pub poison_framing: bool,
}

/// Drops what legitimately differs (source coordinates always; more per
/// `d`) and, for another interleaving, sorts every array canonically and
/// leaves out the first lineage page's items (compare [`full_lineage`]
/// instead).
pub fn normalize(v: &Value, d: Differ) -> Value {
    let mut v = v.clone();
    if d.interleaving {
        if let Some(l) = v.get_mut("lineage").and_then(Value::as_object_mut) {
            l.remove("items");
        }
    }
    let v = &v;
    fn walk(v: &Value, d: Differ, in_dead: bool) -> Value {
        match v {
            Value::Object(m) => {
                let mut out = serde_json::Map::new();
                for (k, x) in m {
                    let drop = matches!(
                        k.as_str(),
                        "source_partition" | "source_offset" | "attempt_id"
                    ) || (d.interleaving && k == "offset")
                        || (d.poison_framing
                            && in_dead
                            && matches!(k.as_str(), "preview" | "reason"));
                    if !drop {
                        out.insert(k.clone(), walk(x, d, in_dead || k == "dead_letters"));
                    }
                }
                Value::Object(out)
            }
            Value::Array(a) => {
                let mut items: Vec<Value> = a.iter().map(|x| walk(x, d, in_dead)).collect();
                if d.interleaving {
                    items.sort_by_key(|x| x.to_string());
                }
                Value::Array(items)
            }
            x => x.clone(),
        }
    }
    walk(v, d, false)
}

/// Every item of every page of the lineage list of the one attempt of
/// `job`, as a sorted list of canonical texts without log offsets: equal
/// for every interleaving of the same stream.
pub fn full_lineage(storage: &Path, job: &str) -> Vec<String> {
    rt().block_on(async {
        let attempts = attempts(storage, job).await;
        let store = open_store(storage, job, &attempts[0]).await;
        let mut out = Vec::new();
        for page in 1.. {
            let p = api::Params::from([
                ("page".to_owned(), page.to_string()),
                ("page_size".to_owned(), "1000".to_owned()),
            ]);
            let v = api::lineage(&store, &p).await.unwrap();
            let items = v["items"].as_array().unwrap();
            out.extend(items.iter().map(|i| {
                let mut i = i.clone();
                i.as_object_mut().unwrap().remove("offset");
                i.to_string()
            }));
            if items.is_empty() || out.len() as u64 >= v["total"].as_u64().unwrap() {
                break;
            }
        }
        out.sort();
        out
    })
}

/// Asserts two snapshots are equal after `normalize`, naming the first
/// differing top-level part.
pub fn assert_same(what: &str, got: &Value, want: &Value, d: Differ) {
    let (g, w) = (normalize(got, d), normalize(want, d));
    if g == w {
        return;
    }
    for (k, wv) in w.as_object().unwrap() {
        let gv = &g[k];
        if gv != wv {
            let gs = serde_json::to_string_pretty(gv).unwrap();
            let ws = serde_json::to_string_pretty(wv).unwrap();
            let line = gs
                .lines()
                .zip(ws.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "{what}: `{k}` differs from the golden view at line {line}:\n got: {}\nwant: {}",
                gs.lines()
                    .skip(line.saturating_sub(3))
                    .take(8)
                    .collect::<Vec<_>>()
                    .join("\n"),
                ws.lines()
                    .skip(line.saturating_sub(3))
                    .take(8)
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        }
    }
    panic!("{what}: snapshots differ");
}

/// The loopback helpers the benches use too (one file, included). A test
/// that includes two of these helper files gets it twice, harmlessly.
#[allow(clippy::duplicate_mod)]
#[path = "../../src/bench/net.rs"]
mod net;

/// A free loopback address for a daemon's `--http`.
pub fn free_addr() -> String {
    net::free_addr().expect("bind 127.0.0.1:0")
}

/// One HTTP/1.1 GET: (status, body); `None` when nothing listens.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    net::http_get(addr, path, Duration::from_secs(10)).ok()
}

/// The live job's `log_offset` over HTTP (0 while it has none).
pub fn live_offset(addr: &str, job: &str) -> u64 {
    http_get(addr, &format!("/api/jobs/{job}"))
        .filter(|(s, _)| *s == 200)
        .and_then(|(_, b)| serde_json::from_str::<Value>(&b).ok())
        .and_then(|v| v["log_offset"].as_u64())
        .unwrap_or(0)
}

/// Polls until the live job's `log_offset` reaches `n`; panics after `timeout`.
pub fn wait_offset(addr: &str, job: &str, n: u64, timeout: Duration) {
    let start = Instant::now();
    loop {
        let got = live_offset(addr, job);
        if got >= n {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "log_offset {got} < {n} after {timeout:?} at {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGTERM (a clean stop) to a child.
pub fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// Asserts two snapshots are byte-identical as pretty JSON, but for the
/// attempt id (the only field that names where they were stored).
pub fn assert_identical(what: &str, got: &Value, want: &Value) {
    let render = |v: &Value| {
        let mut v = v.clone();
        v["job"]["attempt_id"] = Value::Null;
        serde_json::to_string_pretty(&v).unwrap()
    };
    let (g, w) = (render(got), render(want));
    if let Some((i, (a, b))) = g
        .lines()
        .zip(w.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
    {
        panic!("{what}: line {i} differs:\n got: {a}\nwant: {b}");
    }
    assert_eq!(g.len(), w.len(), "{what}: one snapshot is longer");
}
