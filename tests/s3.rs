//! S3 end to end on a real S3-protocol server (`moto_server`, started here):
//! golden fixtures replayed into `s3://bucket/prefix` give the same answers
//! as on local disk, read through the history server's read-only path
//! (catalog → `Storage::open_reader`); 50 jobs × 2 attempts listed, filtered
//! and paged exactly as on local disk, without the server changing any
//! object; a reader follows a live writer within 1 s; a missing bucket fails
//! fast with a one-line error naming it.
//!
//! The storage reads endpoint and credentials from `AWS_*` variables, which
//! are process-wide: this binary has ONE test that sets them once.

#[path = "common/jobs50.rs"]
mod jobs50;
#[path = "common/tansu.rs"]
mod tansu;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sundial::api;
use sundial::replay_file;
use sundial::Catalog;
use sundial::Storage;
use tansu::Moto;

const BUCKET: &str = "sundial-s3";

/// (fixture folder, job id, stream file)
const FIXTURES: &[(&str, &str, &str)] = &[
    ("autoscale-completed", "fx_autoscale", "events.ndjson"),
    ("msgpack-realistic", "fx_msgpack", "events.msgpack"),
];

fn fixture(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("replay-fixtures")
        .join(dir)
}

/// A snapshot without its attempt id (the only field that names storage).
fn strip_attempt(mut v: Value) -> Value {
    if let Some(job) = v.get_mut("job").and_then(Value::as_object_mut) {
        job.remove("attempt_id");
    }
    v
}

fn point_env_at(moto: &Moto) {
    for (k, _) in moto.env() {
        std::env::remove_var(k);
    }
    for (k, v) in [
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
    ] {
        std::env::set_var(k, v);
    }
}

async fn golden_on_s3(storage: &Storage) {
    for &(dir, job, file) in FIXTURES {
        let input = fixture(dir).join(file);
        let t = Instant::now();
        let (attempt, summary) = replay_file(storage, job, None, input.to_str().unwrap(), 4096)
            .await
            .unwrap_or_else(|e| panic!("replay {dir} into s3: {e}"));
        eprintln!(
            "s3 replay {dir}: {} records in {:.2?}",
            summary.totals.records,
            t.elapsed()
        );
        // The history server's path: a fresh catalog, the latest attempt, read-only.
        let catalog = Catalog::new(Storage::from_url(storage.url()).unwrap());
        assert!(catalog.jobs().await.unwrap().contains(&job.to_owned()));
        let store = catalog.resolve(job, None).await.unwrap();
        assert_eq!(store.meta.attempt_id, attempt);
        let t = Instant::now();
        let got = api::snapshot(&store).await.unwrap();
        eprintln!("s3 snapshot {dir}: {:.2?}", t.elapsed());
        let want: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(dir).join("expected.json")).unwrap(),
        )
        .unwrap();
        let (got, want) = (strip_attempt(got), strip_attempt(want));
        if got != want {
            let g = serde_json::to_string_pretty(&got).unwrap();
            let w = serde_json::to_string_pretty(&want).unwrap();
            let at = g
                .lines()
                .zip(w.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "{dir}: s3 answers differ from expected.json at line {}:\n got: {}\nwant: {}",
                at + 1,
                g.lines().nth(at).unwrap_or(""),
                w.lines().nth(at).unwrap_or("")
            );
        }
    }
}

/// 50 jobs × 2 attempts on S3: listing, filters, pagination and the latest
/// attempt exactly as on local disk.
async fn jobs50_on_s3() {
    let url = format!("s3://{BUCKET}/jobs50");
    let storage = Storage::from_url(&url).unwrap();
    let t = Instant::now();
    jobs50::populate(&storage).await;
    eprintln!(
        "s3: populated {} jobs x 2 attempts in {:.2?}",
        jobs50::JOBS,
        t.elapsed()
    );
    let before = objects().await;
    let catalog = Arc::new(Catalog::new(Storage::from_url(&url).unwrap()));
    let addr = jobs50::serve(catalog.clone()).await;
    let t = Instant::now();
    let cold = jobs50::get_ok(addr, "/api/jobs?page_size=100").await;
    let cold_t = t.elapsed();
    assert_eq!(
        catalog.open_count(),
        0,
        "listing read the attempts' summaries, opened no database"
    );
    let t = Instant::now();
    let warm = jobs50::get_ok(addr, "/api/jobs?page_size=100").await;
    eprintln!(
        "s3: list {} jobs: cold {cold_t:.2?}, warm {:.2?}",
        jobs50::JOBS,
        t.elapsed()
    );
    assert_eq!(cold, warm);
    jobs50::check_listing(addr, false).await;
    // Let the followers poll a few more times: serving wrote nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(before == objects().await, "serving changed the bucket");
}

/// Every object in the bucket: path, size, ETag and modification time.
async fn objects() -> Vec<(String, u64, Option<String>, String)> {
    use futures::TryStreamExt;
    use slatedb::object_store::ObjectStore;
    let s3 = slatedb::object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(BUCKET)
        .build()
        .unwrap();
    let mut out: Vec<_> = s3
        .list(None)
        .map_ok(|m| {
            (
                m.location.to_string(),
                m.size,
                m.e_tag,
                m.last_modified.to_rfc3339(),
            )
        })
        .try_collect()
        .await
        .unwrap();
    out.sort();
    assert!(out.len() > 100, "the bucket holds the jobs");
    out
}

async fn missing_bucket_fails_fast() {
    let url = "s3://no-such-bucket-sundial/data";
    let storage = Storage::from_url(url).unwrap();
    let input = fixture(FIXTURES[0].0).join(FIXTURES[0].2);
    let t = Instant::now();
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        replay_file(&storage, "j", None, input.to_str().unwrap(), 4096),
    )
    .await
    .expect("replay into a missing bucket must fail within 30 s")
    .expect_err("replay into a missing bucket must fail")
    .to_string();
    eprintln!("writer, missing bucket ({:.2?}): {err}", t.elapsed());
    assert!(!err.contains('\n'), "one line: {err}");
    assert!(
        err.contains("no-such-bucket-sundial"),
        "names the bucket: {err}"
    );
    assert!(err.contains("create"), "says what to do: {err}");

    // The reader side (what `serve` does first) fails the same way.
    let t = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(30), storage.check())
        .await
        .expect("check of a missing bucket must fail within 30 s")
        .expect_err("check of a missing bucket must fail")
        .to_string();
    eprintln!("reader, missing bucket ({:.2?}): {err}", t.elapsed());
    assert!(!err.contains('\n'), "one line: {err}");
    assert!(
        err.contains("no-such-bucket-sundial"),
        "names the bucket: {err}"
    );
    let catalog = Catalog::new(storage);
    let err = tokio::time::timeout(Duration::from_secs(30), catalog.jobs())
        .await
        .expect("listing a missing bucket must fail within 30 s")
        .expect_err("listing a missing bucket must fail")
        .to_string();
    assert!(
        err.contains("no-such-bucket-sundial"),
        "names the bucket: {err}"
    );
}

/// On S3 a job's latest attempt is reused for up to a second (its attempts
/// are listed with LIST requests, priced like PUTs): a newer attempt still
/// shows within that.
async fn a_new_attempt_shows_within_a_second(storage: &Storage) {
    let job = "relisted";
    let db = storage.open_writer(job, "first").await.unwrap();
    db.close().await.unwrap();
    let catalog = Catalog::new(Storage::from_url(storage.url()).unwrap());
    let latest = catalog.latest_attempt(job).await.unwrap();
    assert_eq!(latest.as_deref(), Some("first"));
    // A later creation time than the first's, to the millisecond.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let db = storage.open_writer(job, "second").await.unwrap();
    db.close().await.unwrap();
    let t = Instant::now();
    loop {
        let latest = catalog.latest_attempt(job).await.unwrap();
        if latest.as_deref() == Some("second") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "the latest attempt is still {latest:?} 3 s after a newer one was created"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_golden_and_missing_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::start(dir.path(), BUCKET);
    point_env_at(&moto);
    let storage = Storage::from_url(&format!("s3://{BUCKET}/history")).unwrap();
    storage.check().await.expect("the bucket exists");
    golden_on_s3(&storage).await;
    // Before the 50 jobs' followers load the (single-process) S3 server.
    let t = Instant::now();
    let took = jobs50::check_follow(&storage, "live-job", false).await;
    eprintln!(
        "s3: a live writer's batches visible to a reader after {took:.2?} ({:.2?} in all)",
        t.elapsed()
    );
    let took = jobs50::check_follow(&storage, "restarted-job", true).await;
    eprintln!("s3: after a projector took over an open attempt: {took:.2?}");
    a_new_attempt_shows_within_a_second(&storage).await;
    jobs50_on_s3().await;
    missing_bucket_fails_fast().await;
}
