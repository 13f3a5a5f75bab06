//! Shared setup of the HTTP integration tests: simulated streams replayed
//! through the real engine into a temporary directory, the real router
//! served on `127.0.0.1:0` from a background runtime (once per test binary),
//! and a tiny HTTP/1.1 client over `tokio::net::TcpStream`.
//!
//! The streams are also read independently here (`Expect`), so the tests can
//! check the server's answers against facts of the stream, not against
//! themselves.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;
use sundial::replay_file;
use sundial::simulate::{simulate, Scenario, SimConfig};
use sundial::Catalog;
use sundial::Metrics;
use sundial::Storage;
use sundial::{router, AppState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Autoscale job (completes), replayed twice: `OLD_ATTEMPT` then `NEW_ATTEMPT`.
pub const AUTO: &str = "it_auto";
/// Exception-storm job (fails).
pub const STORM: &str = "it_storm";
/// A realistic job cut off mid-stream (still running).
pub const LIVE: &str = "it_live";
/// The first (older) attempt of `AUTO`: a shorter stream.
pub const OLD_ATTEMPT: &str = "a1_old";
/// The second (latest) attempt of `AUTO`.
pub const NEW_ATTEMPT: &str = "a2_new";

/// Records of the older `AUTO` attempt's stream.
const AUTO_OLD_EVENTS: usize = 3_000;
/// Records of the latest `AUTO` attempt's stream.
const AUTO_EVENTS: usize = 5_000;
/// Records of the `STORM` stream.
const STORM_EVENTS: usize = 3_000;
/// Records of the `LIVE` stream kept (out of a longer simulated one).
const LIVE_EVENTS: usize = 1_200;

/// Upper bound for one request, so a hung server fails the test instead of
/// blocking it forever (not a timing assertion).
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Facts of one simulated stream, read without Sundial's decoder.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// Records in the stream, valid or not (= the log's last sequence).
    pub records: u64,
    /// Stage ids in `job_started` order.
    pub stages: Vec<String>,
    /// `dag_edges` of `job_started`.
    pub dag_edges: Value,
    /// `config` of `job_started`.
    pub config: Value,
    /// Every worker that started, with its stage.
    pub workers: BTreeMap<String, String>,
    /// Distinct exception messages (producer retries removed).
    pub exceptions: u64,
    /// Distinct checkpoint ids.
    pub checkpoints: BTreeSet<u64>,
    /// `job_completed` / `job_failed` status, if the stream has one.
    pub final_status: Option<String>,
}

impl Expect {
    fn read(job: &str, records: &[Vec<u8>]) -> Expect {
        let mut e = Expect {
            records: records.len() as u64,
            ..Expect::default()
        };
        let mut seen_exceptions = HashSet::new();
        for rec in records {
            let Ok(v) = serde_json::from_slice::<Value>(rec) else {
                continue;
            };
            if v["job_id"] != job {
                continue;
            }
            let p = &v["payload"];
            match v["message_type"].as_str().unwrap_or("") {
                "job_started" if e.stages.is_empty() => {
                    e.stages = p["stages"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|s| s["stage_id"].as_str().map(str::to_owned))
                        .collect();
                    e.dag_edges = p["dag_edges"].clone();
                    e.config = p["config"].clone();
                }
                "worker_started" => {
                    let (Some(w), Some(s)) = (v["source_id"].as_str(), p["stage_id"].as_str())
                    else {
                        continue;
                    };
                    e.workers.insert(w.to_owned(), s.to_owned());
                }
                "exception" => {
                    let key = (
                        v["source_id"].to_string(),
                        v["sequence"].to_string(),
                        v["timestamp"].to_string(),
                    );
                    if v["sequence"].is_null() || seen_exceptions.insert(key) {
                        e.exceptions += 1;
                    }
                }
                "checkpoint" => {
                    if let Some(id) = p["checkpoint_id"].as_u64() {
                        e.checkpoints.insert(id);
                    }
                }
                "job_completed" | "job_failed" => {
                    e.final_status = p["status"].as_str().map(str::to_owned);
                }
                _ => {}
            }
        }
        e
    }
}

/// The running test server and what its data holds.
pub struct Fixture {
    pub addr: SocketAddr,
    /// The storage directory the server reads (used by `tests/read_only.rs`).
    #[allow(dead_code)]
    pub store: PathBuf,
    /// Latest attempt of `AUTO`.
    pub auto: Expect,
    /// Older attempt of `AUTO`.
    pub auto_old: Expect,
    pub storm: Expect,
    pub live: Expect,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

/// The shared server, started on first use.
pub fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(start)
}

/// The server's address.
pub fn addr() -> SocketAddr {
    fixture().addr
}

/// A directory for this process's data under Cargo's per-target temporary
/// folder; folders of earlier test processes that are gone are removed.
fn data_dir() -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    if let Ok(entries) = std::fs::read_dir(base) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix("http_api-") else {
                continue;
            };
            if cfg!(target_os = "linux") && !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = base.join(format!("http_api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test data dir");
    dir
}

/// Writes `records` as NDJSON to `path`.
fn write_ndjson(path: &Path, records: &[Vec<u8>]) {
    let mut out = Vec::new();
    for r in records {
        out.extend_from_slice(r);
        out.push(b'\n');
    }
    std::fs::write(path, out).expect("write stream");
}

fn records(job: &str, scenario: Scenario, n: usize, seed: u64, anomalies: bool) -> Vec<Vec<u8>> {
    let mut cfg = SimConfig::new(job, scenario, n);
    cfg.seed = seed;
    cfg.anomalies = anomalies;
    simulate(&cfg).collect()
}

async fn prepare(dir: &Path) -> (Storage, Fixture) {
    let store_dir = dir.join("store");
    let input_dir = dir.join("input");
    std::fs::create_dir_all(&input_dir).expect("create input dir");
    let storage = Storage::from_url(store_dir.to_str().expect("utf-8 temp path")).expect("storage");

    // (job, attempt, records), replayed in this order: the older AUTO attempt first.
    let auto_old = records(AUTO, Scenario::Autoscale, AUTO_OLD_EVENTS, 1, true);
    let auto = records(AUTO, Scenario::Autoscale, AUTO_EVENTS, 42, true);
    let storm = records(STORM, Scenario::ExceptionStorm, STORM_EVENTS, 42, true);
    let mut live = records(LIVE, Scenario::Realistic, 4 * LIVE_EVENTS, 42, false);
    live.truncate(LIVE_EVENTS);
    let runs: [(&str, &str, &[Vec<u8>]); 4] = [
        (AUTO, OLD_ATTEMPT, &auto_old),
        (STORM, "s1", &storm),
        (LIVE, "l1", &live),
        (AUTO, NEW_ATTEMPT, &auto),
    ];
    for (job, attempt, recs) in runs {
        let file = input_dir.join(format!("{job}-{attempt}.ndjson"));
        write_ndjson(&file, recs);
        let (id, summary) = replay_file(&storage, job, Some(attempt), file.to_str().unwrap(), 1024)
            .await
            .unwrap_or_else(|e| panic!("replay {job}/{attempt}: {e}"));
        assert_eq!(id, attempt);
        assert_eq!(summary.totals.records, recs.len() as u64, "{job}/{attempt}");
        // Attempts are ordered by creation time in milliseconds: keep them apart.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let fx = Fixture {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        store: store_dir.clone(),
        auto: Expect::read(AUTO, &auto),
        auto_old: Expect::read(AUTO, &auto_old),
        storm: Expect::read(STORM, &storm),
        live: Expect::read(LIVE, &live),
    };
    (storage, fx)
}

fn start() -> Fixture {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("http-test-server".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("server runtime");
            rt.block_on(async move {
                let dir = data_dir();
                let (storage, mut fx) = prepare(&dir).await;
                let state = AppState {
                    catalog: Arc::new(Catalog::new(storage)),
                    metrics: Arc::new(Metrics::default()),
                    live: None,
                    bounds: Default::default(),
                };
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind 127.0.0.1:0");
                fx.addr = listener.local_addr().expect("local addr");
                tx.send(fx).expect("send fixture");
                axum::serve(listener, router(state)).await.expect("serve");
            });
        })
        .expect("spawn server thread");
    rx.recv()
        .expect("test server failed to start (see the panic of thread http-test-server)")
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Splits a raw response into status, headers and the rest.
fn parse_head(raw: &[u8]) -> (u16, Vec<(String, String)>, &[u8]) {
    let end = find(raw, b"\r\n\r\n").unwrap_or_else(|| {
        panic!(
            "no end of headers in {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(500)])
        )
    });
    let head = std::str::from_utf8(&raw[..end]).expect("headers are ASCII");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(
        parts.next(),
        Some("HTTP/1.1"),
        "status line {status_line:?}"
    );
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, &raw[end + 4..])
}

/// Decodes a complete `Transfer-Encoding: chunked` body.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let eol = find(rest, b"\r\n").expect("chunk size line");
        let size_text = std::str::from_utf8(&rest[..eol]).expect("chunk size is ASCII");
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .unwrap_or_else(|_| panic!("chunk size {size_text:?}"));
        rest = &rest[eol + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        assert_eq!(&rest[size..size + 2], b"\r\n", "chunk terminator");
        rest = &rest[size + 2..];
    }
}

async fn send(method: &str, target: &str) -> TcpStream {
    send_with(method, target, "").await
}

/// Sends a request with extra header lines (each ending in `\r\n`).
async fn send_with(method: &str, target: &str, headers: &str) -> TcpStream {
    let mut conn = TcpStream::connect(addr()).await.expect("connect");
    let req =
        format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n");
    conn.write_all(req.as_bytes()).await.expect("send request");
    conn
}

/// Sends `method target` and reads the whole answer.
pub async fn request(method: &str, target: &str) -> Response {
    request_with(method, target, "").await
}

/// `request` with extra header lines (each ending in `\r\n`).
pub async fn request_with(method: &str, target: &str, headers: &str) -> Response {
    let read = async {
        let mut conn = send_with(method, target, headers).await;
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).await.expect("read response");
        raw
    };
    let raw = tokio::time::timeout(IO_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| panic!("{method} {target}: no complete answer"));
    let (status, headers, rest) = parse_head(&raw);
    let mut r = Response {
        status,
        headers,
        body: Vec::new(),
    };
    r.body = if r
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)
    } else if let Some(len) = r.header("content-length") {
        let len: usize = len.parse().expect("content-length");
        assert_eq!(rest.len(), len, "{method} {target}: body length");
        rest.to_vec()
    } else {
        rest.to_vec()
    };
    r
}

/// `GET target`.
pub async fn get(target: &str) -> Response {
    request("GET", target).await
}

/// `GET target`, asserting 200 and a JSON body.
pub async fn get_json(target: &str) -> Value {
    let r = get(target).await;
    assert_eq!(r.status, 200, "GET {target}: {}", r.text());
    r.json()
}

/// Opens `target` as an event stream and reads until `until` shows up in the
/// raw bytes after the headers; returns status, headers and those bytes, then
/// drops the connection.
pub async fn get_stream_until(target: &str, until: &[u8]) -> Response {
    let read = async {
        let mut conn = send("GET", target).await;
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = conn.read(&mut buf).await.expect("read stream");
            raw.extend_from_slice(&buf[..n]);
            let body_start = find(&raw, b"\r\n\r\n").map(|i| i + 4);
            let done = body_start.is_some_and(|b| find(&raw[b..], until).is_some());
            if n == 0 || done {
                return raw;
            }
        }
    };
    let raw = tokio::time::timeout(IO_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| panic!("GET {target}: {until:?} never arrived"));
    let (status, headers, rest) = parse_head(&raw);
    Response {
        status,
        headers,
        body: rest.to_vec(),
    }
}
