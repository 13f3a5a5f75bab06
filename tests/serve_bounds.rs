//! Hostile load on the real `sundial serve` binary over real sockets, on a
//! job of over 250 k events built here with the simulator and a replay:
//! 100 concurrent distinct `as_of`, 500 connections each sending half a
//! request head, 3 000 clients of `/stream`. Asserted: every answer is
//! right or a 503 with `Retry-After`, the server's resident memory stays
//! under the bounds the README states, half-sent heads are closed, streams
//! over `--max-streams` are refused and those under it get the view, and
//! `/health` answers throughout. Latencies are printed (`--nocapture`),
//! never asserted. Run with `cargo test --release --test serve_bounds --
//! --nocapture` for the README's figures.

mod serve_proc;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use serve_proc::{get, sundial, Serve, IO_TIMEOUT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const JOB: &str = "big_job";
/// Simulated records (the realistic scenario writes about this many).
const EVENTS: &str = "260000";
const MIB: u64 = 1024 * 1024;
/// Resident memory `serve` stays under during 100 concurrent `as_of`.
const AS_OF_RSS_BOUND: u64 = 512 * MIB;
/// Resident memory `serve` stays under with 3 000 stream clients.
const STREAMS_RSS_BOUND: u64 = 256 * MIB;
/// `--max-streams` of the stream run.
const MAX_STREAMS: usize = 256;
const STREAM_CLIENTS: usize = 3000;
/// `--header-timeout-secs` of the half-header run.
const HEADER_TIMEOUT_SECS: u64 = 3;

/// Simulates and replays the job into `dir/data`.
fn build_job(dir: &Path) {
    let input = dir.join("big.ndjson");
    let sim = Command::new(sundial())
        .args(["simulate", "--job", JOB, "--events", EVENTS])
        .args(["--output", input.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(sim.status.success(), "{sim:?}");
    let rep = Command::new(sundial())
        .args(["replay", "--job", JOB, "--attempt", "a1", "--quiet"])
        .args(["--storage", dir.join("data").to_str().unwrap()])
        .args(["--input", input.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(rep.status.success(), "{rep:?}");
    std::fs::remove_file(&input).unwrap();
}

/// Status, lower-cased head and body of `GET path` (connection closed).
async fn aget(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String, String)> {
    let mut s = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr)).await??;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(IO_TIMEOUT, s.read_to_end(&mut buf)).await??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_ascii_lowercase(), body.to_owned()))
}

/// A 503 of a bound: JSON error shape and `Retry-After`.
fn assert_busy(head: &str, body: &str) {
    assert!(head.contains("\r\nretry-after: "), "{head}");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(v["status"], 503, "{v}");
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("busy")),
        "{v}"
    );
}

/// Samples the server's RSS every 20 ms until `stop`; the peak.
fn rss_sampler(pid: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            peak = peak.max(serve_proc::rss_of(pid));
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    })
}

/// Asks `/health` (a new connection each time) every 25 ms until `stop`;
/// every latency, in microseconds. Each must be a 200.
async fn health_prober(addr: SocketAddr, stop: Arc<AtomicBool>) -> Vec<u64> {
    let mut lat = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let (st, _, body) = aget(addr, "/health").await.expect("/health answers");
        assert_eq!(st, 200, "{body}");
        lat.push(t.elapsed().as_micros() as u64);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    lat
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn report_health(what: &str, mut lat: Vec<u64>) {
    lat.sort_unstable();
    println!(
        "{what}: /health n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0)
    );
}

async fn as_of_storm(server: &Serve, last: u64) {
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = rss_sampler(server.child.id(), stop.clone());
    let health = tokio::spawn(health_prober(addr, stop.clone()));
    let started = Instant::now();
    // Distinct offsets spread over the log before the first snapshot
    // (250 000): each replays up to a quarter of a million records.
    let ks: Vec<u64> = (0..100u64)
        .map(|i| 1 + i * (last.min(249_999) / 100))
        .collect();
    let mut tasks = Vec::new();
    for k in ks {
        tasks.push(tokio::spawn(async move {
            let (st, head, body) = aget(addr, &format!("/api/jobs/{JOB}?as_of={k}"))
                .await
                .expect("an as_of answer");
            (k, st, head, body)
        }));
    }
    let (mut ok, mut busy) = (0, 0);
    for t in tasks {
        let (k, st, head, body) = t.await.unwrap();
        match st {
            200 => {
                let v: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(v["log_offset"], k, "as_of={k}: {v}");
                assert!(v["event_count"].as_u64().unwrap() <= k, "{v}");
                ok += 1;
            }
            503 => {
                assert_busy(&head, &body);
                busy += 1;
            }
            other => panic!("as_of={k}: {other} {body}"),
        }
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let lat = health.await.unwrap();
    let peak = sampler.join().unwrap();
    println!(
        "as_of: 100 concurrent -> {ok} answered, {busy} refused (503) in {:.1} s; serve peak RSS {} MiB",
        took.as_secs_f64(),
        peak / MIB
    );
    report_health("as_of", lat);
    assert!(ok >= 1, "no as_of answered at all");
    assert_eq!(ok + busy, 100);
    assert!(
        peak < AS_OF_RSS_BOUND,
        "serve RSS {} MiB over the bound",
        peak / MIB
    );
    // Once the storm passed, an as_of is answered again.
    let (st, _, body) = aget(addr, &format!("/api/jobs/{JOB}?as_of=12345"))
        .await
        .unwrap();
    assert_eq!(st, 200, "{body}");
}

async fn half_headers(server: &Serve) {
    let addr = server.addr;
    let mut conns = Vec::new();
    for _ in 0..500 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .await
            .unwrap();
        conns.push(s);
    }
    let sent = Instant::now();
    // A new client is served meanwhile.
    let (st, _, body) = aget(addr, "/health").await.expect("health meanwhile");
    assert_eq!(st, 200, "{body}");
    let (st, _, _) = aget(addr, &format!("/api/jobs/{JOB}")).await.unwrap();
    assert_eq!(st, 200);
    let served_after = sent.elapsed();
    // Each half-sent head is closed by the server: end of stream (or a
    // reset), never an answer, long before the generous I/O bound.
    let closed = Arc::new(AtomicU64::new(0));
    let mut waits = Vec::new();
    for mut s in conns {
        let closed = closed.clone();
        waits.push(tokio::spawn(async move {
            let mut buf = [0u8; 256];
            let r = tokio::time::timeout(IO_TIMEOUT, s.read(&mut buf)).await;
            let closed_now = match r {
                Ok(Ok(0)) | Ok(Err(_)) => true,
                Ok(Ok(_)) => false,
                Err(_) => false,
            };
            if closed_now {
                closed.fetch_add(1, Ordering::Relaxed);
            }
            sent.elapsed()
        }));
    }
    let mut last = Duration::ZERO;
    for w in waits {
        last = last.max(w.await.unwrap());
    }
    println!(
        "half headers: 500 connections, a new client served after {:.0} ms, all closed by the server {:.1} s after sending (timeout {HEADER_TIMEOUT_SECS} s)",
        served_after.as_secs_f64() * 1000.0,
        last.as_secs_f64()
    );
    assert_eq!(closed.load(Ordering::Relaxed), 500);
}

/// One stream client: `Ok(Some(view))` when it got the stream and its
/// first view, `Ok(None)` when refused with a proper 503. Keeps the
/// connection open until `release`.
async fn stream_client(
    addr: SocketAddr,
    release: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<Option<Value>> {
    let mut s = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr)).await??;
    // HTTP/1.0: the stream comes unchunked, closed by the server.
    let req = format!("GET /api/jobs/{JOB}/stream HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(IO_TIMEOUT, s.read(&mut chunk)).await??;
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let head = head.to_ascii_lowercase();
            if head.starts_with("http/1.0 503") || head.starts_with("http/1.1 503") {
                if n != 0 {
                    s.read_to_end(&mut buf).await?;
                }
                let text = String::from_utf8_lossy(&buf).into_owned();
                let (head, body) = text.split_once("\r\n\r\n").unwrap();
                assert_busy(&head.to_ascii_lowercase(), body);
                return Ok(None);
            }
            assert!(head.contains(" 200 "), "{head}");
            if let Some(rest) = body.split("event: view\ndata: ").nth(1) {
                if let Some((data, _)) = rest.split_once('\n') {
                    let view: Value = serde_json::from_str(data).unwrap();
                    let mut release = release;
                    let _ = release.wait_for(|r| *r).await;
                    return Ok(Some(view));
                }
            }
        }
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

async fn stream_flood(server: &Serve, last: u64) {
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = rss_sampler(server.child.id(), stop.clone());
    let health = tokio::spawn(health_prober(addr, stop.clone()));
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let served = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..STREAM_CLIENTS {
        let (rx, served) = (release_rx.clone(), served.clone());
        clients.push(tokio::spawn(async move {
            let r = stream_client(addr, rx).await;
            if matches!(r, Ok(Some(_))) {
                served.fetch_add(1, Ordering::Relaxed);
            }
            r
        }));
    }
    // Every client under the cap holds its stream until all were answered.
    let started = Instant::now();
    while served.load(Ordering::Relaxed) < MAX_STREAMS as u64 && started.elapsed() < IO_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the refused ones finish, then release the streams.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_held = server.rss();
    release_tx.send(true).unwrap();
    let (mut ok, mut refused) = (0, 0);
    for c in clients {
        match c.await.unwrap().expect("a stream client's answer") {
            Some(view) => {
                assert_eq!(view["job_id"], JOB);
                assert_eq!(view["log_offset"], last);
                ok += 1;
            }
            None => refused += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    let lat = health.await.unwrap();
    let peak = sampler.join().unwrap();
    println!(
        "streams: {STREAM_CLIENTS} clients -> {ok} streaming, {refused} refused (503); serve RSS {} MiB with the streams open, peak {} MiB",
        rss_held / MIB,
        peak / MIB
    );
    report_health("streams", lat);
    assert_eq!(ok, MAX_STREAMS);
    assert_eq!(refused, STREAM_CLIENTS - MAX_STREAMS);
    assert!(
        peak < STREAMS_RSS_BOUND,
        "serve RSS {} MiB over the bound",
        peak / MIB
    );
}

#[test]
fn hostile_load_stays_within_the_bounds() {
    let dir = tempfile::tempdir().unwrap();
    build_job(dir.path());
    let data = dir.path().join("data");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let server = Serve::start(&data, &[]);
    let (st, _, body) = get(server.addr, &format!("/api/jobs/{JOB}"));
    assert_eq!(st, 200, "{body}");
    let job: Value = serde_json::from_str(&body).unwrap();
    let last = job["log_offset"].as_u64().unwrap();
    assert!(last >= 250_000, "the job has {last} events");
    rt.block_on(as_of_storm(&server, last));
    drop(server);

    let header_timeout = HEADER_TIMEOUT_SECS.to_string();
    let server = Serve::start(&data, &["--header-timeout-secs", &header_timeout]);
    rt.block_on(half_headers(&server));
    drop(server);

    let max_streams = MAX_STREAMS.to_string();
    let server = Serve::start(&data, &["--max-streams", &max_streams]);
    rt.block_on(stream_flood(&server, last));
}
