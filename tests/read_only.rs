//! Nothing in `serve` writes: every file under the storage (bytes, size,
//! modification time, and the set of files) is the same after the history
//! server answered every route for every job and attempt, opened every
//! attempt through the catalog, rendered `api::snapshot` and read the whole
//! event log, and its read-only followers polled for a while.

#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::{fixture, get, get_json, get_stream_until, AUTO, LIVE, STORM};
use serde_json::Value;
use sundial::api::{self, Params};
use sundial::Catalog;
use sundial::Storage;

/// Every file under `dir`: relative path → (bytes, modification time).
fn files(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (Vec<u8>, SystemTime)>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let entry = entry.expect("dir entry");
            let path = entry.path();
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                let rel = path.strip_prefix(root).expect("under root").to_path_buf();
                out.insert(rel, (bytes, meta.modified().expect("mtime")));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn assert_same(
    before: &BTreeMap<PathBuf, (Vec<u8>, SystemTime)>,
    after: &BTreeMap<PathBuf, (Vec<u8>, SystemTime)>,
) {
    let names = |m: &BTreeMap<PathBuf, _>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(before),
        names(after),
        "the set of stored files changed"
    );
    for (path, (bytes, mtime)) in before {
        let (b, m) = &after[path];
        assert!(b == bytes, "{}: bytes changed", path.display());
        assert_eq!(m, mtime, "{}: rewritten", path.display());
    }
}

fn ids(list: &Value, field: &str) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {list}"))
        .iter()
        .map(|v| v[field].as_str().unwrap().to_owned())
        .collect()
}

/// Every route of contract §5 for one attempt of `job`.
async fn every_route(job: &str, attempt: &str) -> usize {
    let q = format!("attempt={attempt}");
    let base = format!("/api/jobs/{job}");
    let mut n = 0;
    for route in [
        "",
        "/configuration",
        "/exceptions/summary",
        "/exceptions?page_size=1000",
        "/checkpoints",
        "/timeline?page_size=1000",
        "/dead-letters?page_size=1000",
    ] {
        let sep = if route.contains('?') { '&' } else { '?' };
        get_json(&format!("{base}{route}{sep}{q}")).await;
        n += 1;
    }
    let stages = get_json(&format!("{base}/stages?{q}")).await;
    for s in ids(&stages, "stage_id") {
        get_json(&format!("{base}/stages/{s}?{q}")).await;
        get_json(&format!("{base}/stages/{s}/metrics?{q}")).await;
        get_json(&format!("{base}/stages/{s}/workers?{q}")).await;
        n += 3;
    }
    let workers = get_json(&format!("{base}/workers?page_size=1000&{q}")).await;
    for w in ids(&workers, "worker_id") {
        get_json(&format!("{base}/workers/{w}?{q}")).await;
        n += 1;
    }
    let lineage = get_json(&format!("{base}/lineage?page_size=50&{q}")).await;
    for s in ids(&lineage, "split_id") {
        get_json(&format!("{base}/lineage/{s}?{q}")).await;
        n += 1;
    }
    let mut from = 1;
    loop {
        let ev = get_json(&format!("{base}/events?from_offset={from}&limit=1000&{q}")).await;
        n += 1;
        match ev["next_offset"].as_u64() {
            Some(next) => from = next,
            None => break,
        }
    }
    let sse = get_stream_until(&format!("{base}/stream?{q}"), b"event: view").await;
    assert_eq!(sse.status, 200);
    n + 4
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_never_changes_stored_bytes() {
    let fx = fixture();
    let before = files(&fx.store);
    assert!(before.len() > 10, "the fixture stored files");

    // Over HTTP: the server's catalog, every route of every attempt.
    let mut requests = 0;
    for r in [
        "/health",
        "/metrics",
        "/api/overview",
        "/api/jobs",
        "/api/jobs?status=failed",
    ] {
        assert_eq!(get(r).await.status, 200, "{r}");
        requests += 1;
    }
    for job in [AUTO, STORM, LIVE] {
        let attempts = get_json(&format!("/api/jobs/{job}/attempts")).await;
        for a in ids(&attempts, "attempt_id") {
            requests += every_route(job, &a).await;
        }
    }

    // Directly: a second catalog over the same files, every attempt's
    // answers and its whole log.
    let catalog = Catalog::new(Storage::from_url(fx.store.to_str().unwrap()).unwrap());
    let mut attempts = 0;
    for job in catalog.jobs().await.unwrap() {
        for store in catalog.attempts(&job).await.unwrap() {
            api::snapshot(&store).await.unwrap();
            let mut p = Params::new();
            p.insert("limit".into(), "1000".into());
            let mut from = 1u64;
            loop {
                p.insert("from_offset".into(), from.to_string());
                let ev = api::events(&store, &p).await.unwrap();
                match ev["next_offset"].as_u64() {
                    Some(next) => from = next,
                    None => break,
                }
            }
            attempts += 1;
        }
    }
    assert_eq!(attempts, 4, "it_auto has two attempts, the others one");
    // Let the read-only followers poll their manifests a few times.
    tokio::time::sleep(Duration::from_millis(600)).await;
    drop(catalog);
    eprintln!("{requests} requests over {} files", before.len());
    assert_same(&before, &files(&fx.store));
}
