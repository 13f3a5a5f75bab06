//! The history server's job listing on local disk, 50 jobs × 2 attempts
//! (see `common/jobs50.rs`): filters, order and pagination exact, the latest
//! attempt chosen by recorded creation (not by name), listing opening only
//! each job's latest attempt, and the bounded cache of read-only handles
//! (at most `max_open`, idle ones closed).

#[path = "common/jobs50.rs"]
mod jobs50;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sundial::Storage;
use sundial::SUMMARY_OBJECT;
use sundial::{Catalog, CatalogOptions};

use jobs50::{check_follow, check_listing, get_ok, job_id, populate, serve, JOBS, NEW, OLD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_50_jobs_x_2_attempts_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap().to_owned();
    let storage = Storage::from_url(&url).unwrap();
    let t = Instant::now();
    populate(&storage).await;
    eprintln!("populated {JOBS} jobs x 2 attempts in {:.2?}", t.elapsed());

    // A fresh server: the first listing reads each job's latest attempt's
    // summary and opens no database.
    let catalog = Arc::new(Catalog::with_options(
        Storage::from_url(&url).unwrap(),
        CatalogOptions {
            max_open: 1000,
            ..CatalogOptions::default()
        },
    ));
    let addr = serve(catalog.clone()).await;
    let t = Instant::now();
    let cold = get_ok(addr, "/api/jobs?page_size=100").await;
    let cold_t = t.elapsed();
    assert_eq!(cold["total"], JOBS);
    assert_eq!(catalog.open_count(), 0, "listing opened a database");

    // Without summaries (attempts of older versions) the same list comes
    // from each job's latest attempt opened, and no older attempt.
    let bare = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), bare.path());
    for i in 0..JOBS {
        for a in [OLD, NEW] {
            let f = bare.path().join(job_id(i)).join(a).join(SUMMARY_OBJECT);
            std::fs::remove_file(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        }
    }
    let opened = Arc::new(Catalog::with_options(
        Storage::from_url(bare.path().to_str().unwrap()).unwrap(),
        CatalogOptions {
            max_open: 1000,
            ..CatalogOptions::default()
        },
    ));
    let opened_addr = serve(opened.clone()).await;
    assert_eq!(get_ok(opened_addr, "/api/jobs?page_size=100").await, cold);
    assert_eq!(
        opened.open_count(),
        JOBS,
        "listing without summaries opened the latest attempt of each job, no older one"
    );
    let t = Instant::now();
    let warm = get_ok(addr, "/api/jobs?page_size=100").await;
    eprintln!(
        "list {JOBS} jobs ({} attempts): cold {cold_t:.2?}, warm {:.2?}",
        2 * JOBS,
        t.elapsed()
    );
    assert_eq!(cold, warm);
    check_listing(addr, true).await;

    // A small cache: never more than `max_open` readers, the same answers.
    let small = Arc::new(Catalog::with_options(
        Storage::from_url(&url).unwrap(),
        CatalogOptions {
            max_open: 8,
            idle: Duration::from_millis(300),
            ..CatalogOptions::default()
        },
    ));
    let small_addr = serve(small.clone()).await;
    for _ in 0..2 {
        let t = Instant::now();
        let v = get_ok(small_addr, "/api/jobs?page_size=100").await;
        eprintln!("list {JOBS} jobs with max_open=8: {:.2?}", t.elapsed());
        assert_eq!(v, warm);
        assert!(small.open_count() <= 8, "open: {}", small.open_count());
    }
    check_listing(small_addr, true).await;
    assert!(small.open_count() <= 8, "open: {}", small.open_count());
    assert!(small.open_count() > 0);
    // Idle handles are closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while small.open_count() > 0 {
        assert!(
            Instant::now() < deadline,
            "idle handles still open: {}",
            small.open_count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And reopened on demand.
    assert_eq!(get_ok(small_addr, "/api/jobs?page_size=100").await, warm);

    // The least recently used handle is the one closed when full.
    let lru = Catalog::with_options(
        Storage::from_url(&url).unwrap(),
        CatalogOptions {
            max_open: 2,
            ..CatalogOptions::default()
        },
    );
    let (a, b, c) = (job_id(0), job_id(1), job_id(2));
    for job in [&a, &b, &a, &c] {
        lru.resolve(job, None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(lru.is_open(&a, NEW), "used last but one: kept");
    assert!(!lru.is_open(&b, NEW), "least recently used: closed");
    assert!(lru.is_open(&c, NEW));
    assert_eq!(lru.open_count(), 2);
    // `?attempt=` of a closed or never opened attempt opens it again.
    assert_eq!(
        lru.resolve(&b, Some(OLD)).await.unwrap().meta.attempt_id,
        OLD
    );
    assert_eq!(lru.open_count(), 2);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// A finished attempt's first `/api/jobs/{job}` answer comes from its
/// sealed summary without opening it, and equals the answer of its views;
/// opening the attempt to write unseals it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_summary_answers_like_the_views() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap().to_owned();
    let storage = Storage::from_url(&url).unwrap();
    populate(&storage).await;
    for i in [0, 1, 2] {
        let job = job_id(i);
        for (attempt, query) in [(NEW, String::new()), (OLD, format!("?attempt={OLD}"))] {
            let sum = sundial::summary::read(&storage, &job, attempt)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{job}/{attempt}: no summary"));
            assert!(sum.sealed, "{job}/{attempt}: a finished replay seals it");
            let catalog = Arc::new(Catalog::new(Storage::from_url(&url).unwrap()));
            let addr = serve(catalog.clone()).await;
            let sealed = get_ok(addr, &format!("/api/jobs/{job}{query}")).await;
            assert!(!catalog.is_open(&job, attempt), "answered without opening");
            assert_eq!(sealed, sum.job);
            // Open it (another route), then the job route reads the views.
            let sep = if query.is_empty() { '?' } else { '&' };
            get_ok(addr, &format!("/api/jobs/{job}/stages{query}")).await;
            assert!(catalog.is_open(&job, attempt));
            let from_views = get_ok(addr, &format!("/api/jobs/{job}{query}")).await;
            assert_eq!(sealed, from_views, "{job}/{attempt}");
            assert_eq!(
                get_ok(addr, &format!("/api/jobs/{job}{query}{sep}page=1")).await,
                from_views
            );
        }
    }
    // A writer opening the attempt makes the summary stop counting.
    let job = job_id(0);
    let db = storage.open_writer(&job, NEW).await.unwrap();
    assert!(sundial::summary::read(&storage, &job, NEW)
        .await
        .unwrap()
        .is_none());
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_follows_a_live_writer_within_1s_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::from_url(dir.path().to_str().unwrap()).unwrap();
    let took = check_follow(&storage, "live-job", false).await;
    eprintln!("local disk: a live writer's batches visible to a reader after {took:.2?}");
    let took = check_follow(&storage, "restarted-job", true).await;
    eprintln!("local disk: after a projector took over an open attempt: {took:.2?}");
}
