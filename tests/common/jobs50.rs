//! 50 jobs × 2 attempts for the history server's listing tests, on any
//! storage: `populate` writes them, `serve` puts the real router over a
//! catalog on `127.0.0.1:0`, `check_listing` checks `/api/jobs` (filters,
//! order, pagination), `/attempts` and `?attempt=` exactly.
//!
//! Job `i` (0..50) is `etl-NN` for i < 20, else `ml-NN`. Its first attempt,
//! `zz-first` (a name that sorts LAST), is replayed before every second
//! attempt `aa-second`: the latest attempt by recorded creation is
//! `aa-second`, never the one a name sort would pick. The first attempt only
//! started (RUNNING) at `start(i) - 50`; the second started at
//! `start(i) = BASE + 100 i` and is COMPLETED (i % 3 == 0), FAILED (1) or
//! still RUNNING (2).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sundial::replay_batches;
use sundial::Catalog;
use sundial::Metrics;
use sundial::SourceRecord;
use sundial::Storage;
use sundial::{router, AppState};

/// The loopback helpers the benches use too (one file, included). A test
/// that includes two of these helper files gets it twice, harmlessly.
#[allow(clippy::duplicate_mod)]
#[path = "../../src/bench/net.rs"]
mod net;

pub const JOBS: usize = 50;
pub const OLD: &str = "zz-first";
pub const NEW: &str = "aa-second";
pub const BASE: f64 = 1_767_000_000.0;

pub fn job_id(i: usize) -> String {
    if i < 20 {
        format!("etl-{i:02}")
    } else {
        format!("ml-{i:02}")
    }
}

pub fn start(i: usize) -> f64 {
    BASE + 100.0 * i as f64
}

pub fn status(i: usize) -> &'static str {
    ["COMPLETED", "FAILED", "RUNNING"][i % 3]
}

fn record(v: Value) -> SourceRecord {
    SourceRecord {
        partition: -1,
        offset: 0,
        arrival_ms: 0,
        content_type: None,
        value: serde_json::to_vec(&v).unwrap().into(),
    }
}

fn stream(job: &str, started: f64, end: Option<&str>) -> Vec<SourceRecord> {
    let mut out = vec![record(json!({
        "message_type": "job_started", "job_id": job, "source_id": job,
        "timestamp": started, "sequence": 1,
        "payload": {
            "dag_edges": {"src": ["sink"]},
            "stages": [
                {"stage_id": "src", "operator_type": "Source", "min_parallelism": 1, "max_parallelism": 1},
                {"stage_id": "sink", "operator_type": "Sink", "min_parallelism": 1, "max_parallelism": 1}
            ],
            "config": {}
        }
    }))];
    if let Some(st) = end {
        let kind = if st == "COMPLETED" {
            "job_completed"
        } else {
            "job_failed"
        };
        out.push(record(json!({
            "message_type": kind, "job_id": job, "source_id": job,
            "timestamp": started + 10.0, "sequence": 2,
            "payload": {"status": st, "duration_ms": 10_000, "final_metrics": {}}
        })));
    }
    for (n, r) in out.iter_mut().enumerate() {
        r.offset = n as i64;
    }
    out
}

async fn replay(storage: &Storage, job: &str, attempt: &str, records: Vec<SourceRecord>) {
    let mut once = Some(records);
    let (id, _) = replay_batches(storage, job, Some(attempt), "test:jobs50", |buf| {
        buf.extend(once.take().unwrap_or_default());
        Ok(false)
    })
    .await
    .unwrap_or_else(|e| panic!("replay {job}/{attempt}: {e}"));
    assert_eq!(id, attempt);
}

/// Writes the 50 jobs × 2 attempts: every first attempt, then every second
/// (a few jobs at once).
pub async fn populate(storage: &Storage) {
    use futures::StreamExt;
    futures::stream::iter(0..JOBS)
        .map(|i| async move {
            replay(
                storage,
                &job_id(i),
                OLD,
                stream(&job_id(i), start(i) - 50.0, None),
            )
            .await
        })
        .buffer_unordered(4)
        .collect::<Vec<()>>()
        .await;
    // Creation times are milliseconds: keep the two rounds apart.
    tokio::time::sleep(Duration::from_millis(5)).await;
    futures::stream::iter(0..JOBS)
        .map(|i| async move {
            let end = Some(status(i)).filter(|s| *s != "RUNNING");
            replay(storage, &job_id(i), NEW, stream(&job_id(i), start(i), end)).await
        })
        .buffer_unordered(4)
        .collect::<Vec<()>>()
        .await;
}

/// Serves the real router over `catalog` on a free port of 127.0.0.1.
pub async fn serve(catalog: Arc<Catalog>) -> SocketAddr {
    let state = AppState {
        catalog,
        metrics: Arc::new(Metrics::default()),
        live: None,
        bounds: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    addr
}

/// `GET target`: status and JSON body.
pub async fn get(addr: SocketAddr, target: &str) -> (u16, Value) {
    let path = target.to_owned();
    let (status, body) = tokio::task::spawn_blocking(move || {
        net::http_get(&addr.to_string(), &path, Duration::from_secs(30))
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("GET {target}: {e}"));
    let body = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("GET {target}: {status} body not JSON ({e}): {body}"));
    (status, body)
}

/// `GET target`, asserting 200.
pub async fn get_ok(addr: SocketAddr, target: &str) -> Value {
    let (status, v) = get(addr, target).await;
    assert_eq!(status, 200, "GET {target}: {v}");
    v
}

fn job_ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {v}"))
        .iter()
        .map(|j| j["job_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Job ids of `0..JOBS` passing `keep`, newest start first.
fn want(keep: impl Fn(usize) -> bool) -> Vec<String> {
    (0..JOBS).rev().filter(|&i| keep(i)).map(job_id).collect()
}

/// Every page of `/api/jobs?{query}` at `page_size` 10: the job ids in order,
/// checking the page fields and the total on each page.
async fn all_pages(addr: SocketAddr, query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut total = None;
    for page in 1.. {
        let v = get_ok(addr, &format!("/api/jobs?{query}&page_size=10&page={page}")).await;
        assert_eq!(v["page"], page, "{query}");
        assert_eq!(v["page_size"], 10, "{query}");
        let t = v["total"].as_u64().unwrap();
        assert_eq!(
            *total.get_or_insert(t),
            t,
            "{query}: total stable across pages"
        );
        let ids = job_ids(&v);
        assert!(ids.len() <= 10);
        if ids.is_empty() {
            assert_eq!(out.len() as u64, t, "{query}: pages add up to the total");
            return out;
        }
        out.extend(ids);
    }
    unreachable!()
}

/// Checks listing, filters, pagination, latest-attempt choice and
/// `?attempt=` over the 50 populated jobs. `every_page`: walk every filter
/// through pages of 10 (else one page of 100 per filter: a slow store).
pub async fn check_listing(addr: SocketAddr, every_page: bool) {
    // Everything, newest start first, each job's latest attempt.
    let v = get_ok(addr, "/api/jobs?page_size=100").await;
    assert_eq!(v["total"], JOBS);
    let items = v["items"].as_array().unwrap();
    assert_eq!(job_ids(&v), want(|_| true));
    for item in items {
        let id = item["job_id"].as_str().unwrap();
        let i: usize = id.rsplit('-').next().unwrap().parse().unwrap();
        assert_eq!(
            item["attempt_id"], NEW,
            "{id}: latest by creation, not by name"
        );
        assert_eq!(item["start_time"], start(i), "{id}");
        assert_eq!(item["status"], status(i), "{id}");
    }
    assert_eq!(all_pages(addr, "").await, want(|_| true));
    let v = get_ok(addr, "/api/jobs?page_size=10&page=5").await;
    assert_eq!(job_ids(&v), want(|_| true)[40..50]);

    // Filters, alone and together, through every page.
    let cases: Vec<(String, Vec<String>)> = vec![
        ("status=completed".into(), want(|i| i % 3 == 0)),
        ("status=FAILED".into(), want(|i| i % 3 == 1)),
        ("status=running".into(), want(|i| i % 3 == 2)),
        ("prefix=etl-".into(), want(|i| i < 20)),
        ("prefix=ml-4".into(), want(|i| (40..50).contains(&i))),
        ("prefix=nope".into(), vec![]),
        (
            "prefix=etl-&status=failed".into(),
            want(|i| i < 20 && i % 3 == 1),
        ),
        // `since` is inclusive, `until` exclusive.
        (format!("since={}", start(10)), want(|i| i >= 10)),
        (format!("until={}", start(20)), want(|i| i < 20)),
        (
            format!("since={}&until={}", start(10), start(20)),
            want(|i| (10..20).contains(&i)),
        ),
        (
            format!(
                "since={}&until={}&status=running&prefix=ml-",
                start(5) - 1.0,
                start(35) + 1.0
            ),
            want(|i| (20..=35).contains(&i) && i % 3 == 2),
        ),
    ];
    for (query, expected) in &cases {
        let got = if every_page {
            all_pages(addr, query).await
        } else {
            let v = get_ok(addr, &format!("/api/jobs?{query}&page_size=100")).await;
            assert_eq!(v["total"], expected.len(), "/api/jobs?{query}");
            job_ids(&v)
        };
        assert_eq!(&got, expected, "/api/jobs?{query}");
    }

    // Bad filters are 400s.
    for bad in [
        "status=done",
        "since=yesterday",
        "until=NaN",
        "prefix=a%2Fb",
        "since=20&until=10",
    ] {
        let (status, v) = get(addr, &format!("/api/jobs?{bad}")).await;
        assert_eq!(status, 400, "/api/jobs?{bad}: {v}");
        assert_eq!(v["status"], 400);
    }

    // Attempts newest first; `?attempt=` picks the older one.
    for i in [0, 1, 2, 49] {
        let job = job_id(i);
        let v = get_ok(addr, &format!("/api/jobs/{job}/attempts")).await;
        assert_eq!(v["total"], 2, "{job}");
        let list = v["items"].as_array().unwrap();
        assert_eq!(list[0]["attempt_id"], NEW, "{job}");
        assert_eq!(list[1]["attempt_id"], OLD, "{job}");
        assert!(list[0]["created_ms"].as_u64() > list[1]["created_ms"].as_u64());
        assert_eq!(list[0]["status"], status(i));
        assert_eq!(list[1]["status"], "RUNNING");
        let latest = get_ok(addr, &format!("/api/jobs/{job}")).await;
        assert_eq!(latest["attempt_id"], NEW);
        assert_eq!(latest["start_time"], start(i));
        let old = get_ok(addr, &format!("/api/jobs/{job}?attempt={OLD}")).await;
        assert_eq!(old["attempt_id"], OLD);
        assert_eq!(old["status"], "RUNNING");
        assert_eq!(old["start_time"], start(i) - 50.0);
        let stages = get_ok(addr, &format!("/api/jobs/{job}/stages?attempt={OLD}")).await;
        assert_eq!(stages["total"], 2);
    }
    let (status, _) = get(addr, "/api/jobs/etl-00?attempt=nope").await;
    assert_eq!(status, 404);

    let o = get_ok(addr, "/api/overview").await;
    assert_eq!(
        o,
        json!({"total": 50, "completed": 17, "failed": 17, "running": 16})
    );
}

fn worker_started(job: &str, k: usize, at: f64) -> SourceRecord {
    record(json!({
        "message_type": "worker_started", "job_id": job, "source_id": format!("w{k}"),
        "timestamp": at, "sequence": 1,
        "payload": {"stage_id": "src", "assigned_partitions": [0]}
    }))
}

/// A live writer (the projector's engine, under its lease, durable every
/// 100 ms) commits batches while a fresh read-only catalog follows it: each
/// batch must show in the reader's job view and event log within 1 s. Returns how long each one took.
/// `takeover`: the projector takes its lease only after the history server
/// opened the attempt (a projector restarted on an attempt being read).
pub async fn check_follow(storage: &Storage, job: &str, takeover: bool) -> Vec<Duration> {
    use sundial::api::{self, Params};
    use sundial::event_log::AttemptMeta;
    use sundial::Engine;

    let attempt = "live";
    // Like the projector: a lease, then the one writer.
    let take_lease = || {
        sundial::lease::Lease::acquire(
            storage,
            job,
            attempt,
            Duration::from_secs(1),
            sundial::lease::Writer::Project,
        )
    };
    let mut lease = None;
    if !takeover {
        lease = Some(take_lease().await.unwrap());
    }
    // Durable every 100 ms (`--flush-ms 100`), on S3 too: what is timed
    // here is the reader's following, not the writer's flush interval.
    let db = Arc::new(
        storage
            .open_writer_with(job, attempt, sundial::LOCAL_FLUSH)
            .await
            .unwrap(),
    );
    let meta = AttemptMeta {
        job_id: job.to_owned(),
        attempt_id: attempt.to_owned(),
        created_ms: sundial::now_ms(),
        source: "test:follow".into(),
        in_progress: false,
    };
    let mut engine = Engine::open(db.clone(), meta).await.unwrap();
    let mut next = 0i64;
    let mut batch = |mut recs: Vec<SourceRecord>| {
        for r in &mut recs {
            r.offset = next;
            next += 1;
        }
        recs
    };
    engine.ingest(batch(stream(job, BASE, None))).await.unwrap();

    // Polling every 100 ms, on S3 too (where `serve` polls every 1 s by
    // default, as often as projectors flush there).
    let catalog = Catalog::with_options(
        Storage::from_url(storage.url()).unwrap(),
        sundial::CatalogOptions {
            poll_live: sundial::READER_POLL,
            ..Default::default()
        },
    );
    let store = catalog.resolve(job, None).await.unwrap();
    assert_eq!(store.meta.attempt_id, attempt);
    if takeover {
        lease = Some(take_lease().await.unwrap());
    }

    let mut took = Vec::new();
    for k in 0..5u64 {
        let recs = batch(vec![
            worker_started(job, 2 * k as usize, BASE + 1.0 + k as f64),
            worker_started(job, 2 * k as usize + 1, BASE + 1.5 + k as f64),
        ]);
        let want = 1 + 2 * (k + 1);
        let t = Instant::now();
        engine.ingest(recs).await.unwrap();
        loop {
            let store = catalog.resolve(job, None).await.unwrap();
            let mut p = Params::new();
            p.insert("from_offset".into(), want.to_string());
            let ev = api::events(&store, &p).await.unwrap();
            if store.job().await.unwrap().log_offset == want
                && ev["items"].as_array().is_some_and(|a| a.len() == 1)
            {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(1),
                "batch {k}: the reader did not see log offset {want} within 1 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        took.push(t.elapsed());
    }
    drop(engine);
    db.close().await.unwrap();
    if let Some(l) = lease {
        l.release().await;
    }
    took
}
