//! `sundial replay --views a,b`: rebuild some views of an existing attempt
//! in place from its own log, so a fixed or new projection reaches old
//! jobs. Deletes the named views' rows, then replays the whole log through
//! the engine's projector restricted to those views (`Engine::rebuild`):
//! the other views' rows, the log and the position are never written.
//! Holds the attempt's projector lease meanwhile, so it never races a live
//! projector. The attempt's old view snapshots are dropped (they hold the
//! old rows): `as_of` on it then replays from the start of the log.

use std::sync::Arc;
use std::time::Instant;

use slatedb::WriteBatch;

use crate::error::{Error, Result};
use crate::ingest::engine::Engine;
use crate::ingest::record::SourceRecord;
use crate::replay::log::{to_source, LogReader, ReadAhead, SeqRange};
use crate::replay::target::{Summary, Target};
use crate::store::event_log::{view_key, VIEW_PREFIX};
use crate::store::lease::{Lease, Writer};
use crate::store::storage::Storage;
use crate::store::view_store::Handle;

/// Row deletions per write.
const DELETE_BATCH: usize = 10_000;

/// Parses `a,b` into view names, checking each (an unknown one is an error
/// listing the valid ones).
pub fn parse_views(list: &str) -> Result<Vec<&'static str>> {
    let valid = sundial_views::view_names();
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match valid.iter().find(|v| **v == name) {
            Some(v) if !out.contains(v) => out.push(*v),
            Some(_) => {}
            None => {
                return Err(Error::invalid(
                    "views",
                    format!("unknown view {name:?}: use some of {}", valid.join(",")),
                ))
            }
        }
    }
    if out.is_empty() {
        return Err(Error::invalid(
            "views",
            format!("none given: use some of {}", valid.join(",")),
        ));
    }
    Ok(out)
}

/// Deletes every row of `view`; returns how many.
async fn delete_view(db: &Arc<slatedb::Db>, view: &str) -> Result<u64> {
    let handle = Handle::Writer(db.clone());
    let start = view_key(view, "");
    debug_assert!(start.starts_with(VIEW_PREFIX.as_bytes()));
    let mut end = start.clone();
    end.push(0xff);
    let mut it = handle.scan(start, end).await?;
    let (mut wb, mut in_batch, mut n) = (WriteBatch::new(), 0, 0);
    while let Some(kv) = it.next().await? {
        wb.delete(kv.key);
        in_batch += 1;
        n += 1;
        if in_batch == DELETE_BATCH {
            db.write(std::mem::take(&mut wb)).await?;
            in_batch = 0;
        }
    }
    if !wb.is_empty() {
        db.write(wb).await?;
    }
    Ok(n)
}

/// Rebuilds `views` of attempt `attempt` of `job` in place from its log.
pub async fn rebuild_views(
    storage: &Storage,
    job: &str,
    attempt: &str,
    views: &[&str],
    progress: bool,
) -> Result<Summary> {
    crate::store::storage::validate_id("job id", job)?;
    crate::store::storage::validate_id("attempt id", attempt)?;
    if !storage.attempt_exists(job, attempt).await? {
        return Err(Error::NotFound(format!("job={job} attempt={attempt}")));
    }
    let lease = Lease::acquire(
        storage,
        job,
        attempt,
        crate::store::lease::default_interval(storage),
        Writer::Rebuild,
    )
    .await?;
    // Half-rebuilt views are not the truth: readers prefer the attempt
    // before this one until it is sealed again.
    let result = async {
        crate::store::attempt_state::begin(storage, job, attempt, None).await?;
        let summary = rebuild_leased(storage, job, attempt, views, progress).await?;
        crate::store::attempt_state::seal(storage, job, attempt).await?;
        Ok(summary)
    }
    .await
    .map_err(|e: Error| e.or_fenced(job, attempt));
    lease.release().await;
    result
}

async fn rebuild_leased(
    storage: &Storage,
    job: &str,
    attempt: &str,
    views: &[&str],
    progress: bool,
) -> Result<Summary> {
    let db = Arc::new(storage.open_bulk_writer(job, attempt).await?);
    let started = Instant::now();
    // Checked before anything is deleted.
    let engine = Engine::rebuild(db.clone(), job, views)?;
    for v in views {
        let n = delete_view(&db, v).await?;
        tracing::info!(view = v, rows = n, "view dropped for rebuild");
    }
    let dropped = crate::store::snapshots::forget_all(&db).await?;
    tracing::info!(snapshots = dropped, "old view snapshots dropped");
    let total = match db.get(crate::store::event_log::POSITION_KEY).await? {
        Some(b) => rmp_serde::from_slice::<crate::store::event_log::Position>(&b)
            .ok()
            .map(|p| p.next_seq.saturating_sub(1)),
        None => None,
    };
    let all = SeqRange::new(None, None)?;
    let mut log = ReadAhead::start(LogReader::open_once(&Handle::Writer(db.clone()), all).await?);
    // No log written: the records are the log's own.
    let mut target = Target::start(storage, db, engine, attempt.to_owned(), false, started)?;
    target.progress_as("rebuild", total, progress);
    while let Some((seg, _)) = log.next().await? {
        let batch: Vec<SourceRecord> = seg.into_iter().map(to_source).collect();
        target.ingest(batch).await?;
    }
    drop(log);
    Ok(target.finish().await?.1)
}
