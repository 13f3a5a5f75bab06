//! `sundial bench --rebuild`: the figures of replay and time travel on a
//! long job. Builds a job of `--events` simulated records on local disk
//! (streamed, never all in memory), then times rebuilding every view from
//! its log into a new attempt (with and without view snapshots), the first
//! `as_of` answer in the middle of the log (cold: a fresh reader each),
//! and the disk each attempt takes.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use sundial::Result;
use sundial::SeqRange;
use sundial::Storage;
use sundial::{Handle, ViewStore};

const JOB: &str = "rebuild_bench";

/// Bytes under a directory.
fn disk(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn mb(b: u64) -> String {
    format!("{:.0} MB", b as f64 / 1e6)
}

/// Runs the measurements over `events` records under `dir` (emptied
/// first); only the build and `as_of` when `as_of_only`.
pub async fn run(events: usize, dir: &str, as_of_only: bool) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    let storage = Storage::from_url(dir)?;
    let s = crate::bench::history::build_simulated(&storage, JOB, "source", events).await?;
    println!(
        "build the job (simulate + replay, snapshots every {}): {s}, {}",
        sundial::snapshots::every(),
        crate::bench::cpu::peak_rss()
    );
    let base = Path::new(dir).join(JOB);
    println!(
        "disk, job with snapshots:   {}",
        mb(disk(&base.join("source")))
    );

    if !as_of_only {
        rebuild_into_new(&storage, &base).await?;
    }
    let reader = Arc::new(storage.open_reader(JOB, "source").await?);
    let store = ViewStore::open(Handle::Reader(reader.clone()), JOB, "source").await?;
    let last = store.job().await?.log_offset;
    let every = sundial::snapshots::every().max(1);
    let mid = last / 2;
    // Right after a snapshot, half way, and just before the next one (worst).
    let at_snap = mid / every * every;
    for k in [mid, at_snap + every / 2, at_snap + every - 1] {
        let k = k.clamp(1, last);
        let cold = Arc::new(storage.open_reader(JOB, "source").await?);
        let live = ViewStore::open(Handle::Reader(cold.clone()), JOB, "source").await?;
        let t = Instant::now();
        let (past, stats) =
            sundial::as_of::view_at(&storage, &live, k, sundial::as_of::views_for("job")).await?;
        let answer = sundial::api::job(&past)
            .await
            .map_err(|e| sundial::Error::invalid("as_of", e.message))?;
        let secs = t.elapsed().as_secs_f64();
        // Another page of the same past: its views replay on first read.
        let t = Instant::now();
        let p = sundial::api::Params::from([("page_size".to_owned(), "100".to_owned())]);
        sundial::api::workers(&past, &p, None)
            .await
            .map_err(|e| sundial::Error::invalid("as_of", e.message))?;
        let workers_ms = t.elapsed().as_secs_f64() * 1000.0;
        println!(
            "as_of={k} of {last}: first answer (job page) {:.0} ms, then the workers page {workers_ms:.0} ms (snapshot {}, {} records replayed, {} rows changed; log_offset {})",
            secs * 1000.0,
            stats.snapshot,
            stats.replayed,
            stats.changed_rows,
            answer["log_offset"]
        );
        drop(past);
        drop(live);
        cold.close().await?;
    }
    drop(store);
    reader.close().await?;

    if !as_of_only {
        let views = sundial_views::view_names();
        let s = sundial::rebuild_views(&storage, JOB, "rebuild", &views, false).await?;
        println!(
            "rebuild every view in place (--views all): {s}, {}",
            crate::bench::cpu::peak_rss()
        );
    }
    Ok(())
}

/// Rebuilds every view of the job from its log into new attempts, with
/// and without snapshots.
async fn rebuild_into_new(storage: &Storage, base: &Path) -> Result<()> {
    let all = SeqRange::new(None, None)?;
    let cpu = crate::bench::cpu::Meter::start();
    let (_, s) = sundial::replay_from_log(storage, JOB, "source", all, into("rebuild")).await?;
    println!("rebuild every view from the log (new attempt, with snapshots): {s}");
    println!(
        "  {}, {}",
        cpu.per_event(s.totals.records),
        crate::bench::cpu::peak_rss()
    );
    println!(
        "disk, rebuilt attempt:      {}",
        mb(disk(&base.join("rebuild")))
    );

    // SAFETY of set_var: nothing else in this process reads the
    // environment concurrently while the bench runs.
    std::env::set_var("SUNDIAL_SNAPSHOT_EVERY", "0");
    let cpu = crate::bench::cpu::Meter::start();
    let (_, s) = sundial::replay_from_log(storage, JOB, "source", all, into("nosnap")).await?;
    std::env::remove_var("SUNDIAL_SNAPSHOT_EVERY");
    println!("rebuild every view from the log (new attempt, no snapshots):   {s}");
    println!(
        "  {}, {}",
        cpu.per_event(s.totals.records),
        crate::bench::cpu::peak_rss()
    );
    println!(
        "disk, rebuilt without snapshots: {}",
        mb(disk(&base.join("nosnap")))
    );

    Ok(())
}

/// Options of a rebuild into a new attempt named `attempt`.
fn into(attempt: &str) -> sundial::ReplayOptions<'_> {
    sundial::ReplayOptions {
        attempt: Some(attempt),
        ..Default::default()
    }
}
