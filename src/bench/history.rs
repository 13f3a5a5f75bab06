//! `sundial bench --history`: the history server's figures. Builds a big
//! finished job, a small one and many tiny ones under one local directory,
//! starts `sundial serve` over it as a separate process, and times the first
//! HTTP answer for each job (opening it cold), the job list, and the
//! server's resident memory after listing every job.

use std::time::{Duration, Instant};

use sundial::simulate::{self, Scenario, SimConfig};
use sundial::SourceRecord;
use sundial::Storage;
use sundial::{replay_batches, DEFAULT_BATCH};
use sundial::{Error, Result};

/// What to build before measuring.
#[derive(Debug, Clone, Copy)]
pub struct HistoryBench {
    /// Events of the big job.
    pub big_events: usize,
    /// Events of the small job.
    pub small_events: usize,
    /// Tiny jobs to list (besides the two above).
    pub jobs: usize,
    /// Measure the jobs already under the directory (built by an earlier
    /// run with the same sizes) instead of building them.
    pub reuse: bool,
}

/// Replays a simulated realistic job of about `events` records into
/// `attempt` of `job` (shared with the rebuild bench).
pub(crate) async fn build_simulated(
    storage: &Storage,
    job: &str,
    attempt: &str,
    events: usize,
) -> Result<sundial::Summary> {
    let cfg = SimConfig::new(job, Scenario::Realistic, events);
    let mut records = simulate::simulate(&cfg).enumerate();
    let (_, summary) = replay_batches(storage, job, Some(attempt), "simulate", |buf| {
        for (i, value) in records.by_ref().take(DEFAULT_BATCH) {
            buf.push(SourceRecord {
                partition: 0,
                offset: i as i64,
                arrival_ms: 0,
                content_type: None,
                value: value.into(),
            });
        }
        Ok(buf.len() == DEFAULT_BATCH)
    })
    .await?;
    Ok(summary)
}

/// Replays a simulated realistic job of about `events` records.
async fn build_job(storage: &Storage, job: &str, events: usize) -> Result<u64> {
    Ok(build_simulated(storage, job, "a1", events)
        .await?
        .totals
        .records)
}

/// `http_get` timed: (status, body bytes, elapsed).
async fn timed_get(addr: &str, path: &str) -> Result<(u16, usize, Duration)> {
    let t = Instant::now();
    let (status, body) = super::http_get(addr, path).await?;
    Ok((status, body.len(), t.elapsed()))
}

fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Builds the jobs under `dir` (or reuses them) and prints the figures.
pub async fn run(b: HistoryBench, dir: &str) -> Result<()> {
    let (big, small) = if b.reuse {
        let storage = Storage::from_url(dir)?;
        (
            built_events(&storage, "hist_big").await?,
            built_events(&storage, "hist_small").await?,
        )
    } else {
        build_all(b, dir).await?
    };
    let addr = super::net::free_addr()?;
    let exe = std::env::current_exe()?;
    let mut server = std::process::Command::new(exe)
        .args(["serve", "--storage", dir, "--http", &addr])
        .env("RUST_LOG", "warn")
        .spawn()?;
    let started = Instant::now();
    while timed_get(&addr, "/health").await.is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = server.kill();
            return Err(Error::invalid("bench", "sundial serve did not start"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let result = measure(&addr, server.id(), big, small, b.jobs + 2).await;
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// Builds the big, the small and the tiny jobs under `dir` (emptied first).
async fn build_all(b: HistoryBench, dir: &str) -> Result<(u64, u64)> {
    let _ = std::fs::remove_dir_all(dir);
    let storage = Storage::from_url(dir)?;
    let t = Instant::now();
    let big = build_job(&storage, "hist_big", b.big_events).await?;
    println!(
        "built hist_big:   {big} events in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let small = build_job(&storage, "hist_small", b.small_events).await?;
    let t = Instant::now();
    for i in 0..b.jobs {
        build_job(&storage, &format!("hist_tiny_{i:05}"), 50).await?;
    }
    println!(
        "built hist_small ({small} events) and {} tiny jobs in {:.1} s",
        b.jobs,
        t.elapsed().as_secs_f64()
    );
    Ok((big, small))
}

/// Events of a job an earlier run built (from its sealed summary).
async fn built_events(storage: &Storage, job: &str) -> Result<u64> {
    sundial::summary::read(storage, job, "a1")
        .await?
        .and_then(|s| s.entry["log_offset"].as_u64())
        .ok_or_else(|| Error::invalid("bench", format!("--reuse: no finished {job} here")))
}

async fn measure(addr: &str, pid: u32, big: u64, small: u64, jobs: usize) -> Result<()> {
    println!(
        "serve RSS at start:                  {:.0} MB",
        rss_mb(pid).unwrap_or(f64::NAN)
    );
    // The server's own first request (connection set-up, lazy statics) is
    // not either job's cost: a tiny job takes it.
    timed_get(addr, "/api/jobs/hist_tiny_00000").await?;
    for (job, n) in [("hist_big", big), ("hist_small", small)] {
        let (status, _, cold) = timed_get(addr, &format!("/api/jobs/{job}")).await?;
        let (_, _, warm) = timed_get(addr, &format!("/api/jobs/{job}")).await?;
        let (_, _, stages) = timed_get(addr, &format!("/api/jobs/{job}/stages")).await?;
        let (_, _, again) = timed_get(addr, &format!("/api/jobs/{job}/stages")).await?;
        println!(
            "first answer, {job} ({n} events): {} cold (status {status}), {} warm; \
             first answer opening its database (stages) {}, then {}",
            ms(cold),
            ms(warm),
            ms(stages),
            ms(again)
        );
    }
    let (status, bytes, cold) = timed_get(addr, "/api/jobs?page_size=1000").await?;
    let (_, _, warm) = timed_get(addr, "/api/jobs?page_size=1000").await?;
    println!(
        "list {jobs} jobs (page_size 1000):     {} cold (status {status}, {bytes} bytes), {} warm",
        ms(cold),
        ms(warm)
    );
    println!(
        "serve RSS after listing:             {:.0} MB",
        rss_mb(pid).unwrap_or(f64::NAN)
    );
    Ok(())
}
