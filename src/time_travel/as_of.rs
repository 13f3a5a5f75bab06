//! Time travel: an attempt's views as they stood right after log sequence
//! K (`?as_of=K` on the job routes). Starts from the nearest view snapshot
//! at or before K (`snapshots`; an empty store when there is none), replays
//! the log records after it up to K through the same projector as the
//! engine, keeping the changed rows in memory, and answers from those rows
//! over the snapshot (`overlay`). Never replays from the start of a long
//! log; never writes.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::store::storage::Storage;
use crate::store::view_store::{Handle, ViewStore};
use crate::time_travel::overlay::Overlay;

/// What building a time-travel view cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsOfStats {
    /// The snapshot it started from (0 = none).
    pub snapshot: u64,
    /// Log records replayed after it.
    pub replayed: u64,
    /// Rows those records changed.
    pub changed_rows: usize,
}

/// Parses `as_of` (a log sequence from 1).
pub fn parse(s: &str) -> Result<u64> {
    s.parse::<u64>().ok().filter(|k| *k >= 1).ok_or_else(|| {
        Error::invalid(
            "as_of",
            format!("{s:?}: use a log offset (sequence) from 1, at most the job's log_offset"),
        )
    })
}

/// The views of `live`'s attempt as of log sequence `as_of`, with `views`
/// replayed up front in one pass (any other view is replayed when first
/// read). A sequence past the attempt's last one is an `Invalid` error
/// (HTTP 400) naming it.
pub async fn view_at(
    storage: &Storage,
    live: &ViewStore,
    as_of: u64,
    views: &[&'static str],
) -> Result<(ViewStore, AsOfStats)> {
    let (store, _, stats) = build(storage, live, as_of, views).await?;
    Ok((store, stats))
}

/// [`view_at`], with the overlay the store reads through.
async fn build(
    storage: &Storage,
    live: &ViewStore,
    as_of: u64,
    views: &[&'static str],
) -> Result<(ViewStore, Arc<Overlay>, AsOfStats)> {
    let last = live.job().await?.log_offset;
    if as_of > last {
        return Err(Error::invalid(
            "as_of",
            format!("{as_of} is past the last log offset {last}: use 1..={last}"),
        ));
    }
    let (job, attempt) = (live.meta.job_id.as_str(), live.meta.attempt_id.as_str());
    let snap = crate::store::snapshots::list(live.handle())
        .await?
        .into_iter()
        .take_while(|(seq, _)| *seq <= as_of)
        .last();
    let (from, base) = match snap {
        Some((seq, id)) => (
            seq,
            Some(Arc::new(storage.open_checkpoint(job, attempt, id).await?)),
        ),
        None => (0, None),
    };
    let overlay = Arc::new(Overlay::new(base, from, live.clone(), as_of));
    overlay.replay(views).await?;
    let stats = AsOfStats {
        snapshot: from,
        replayed: overlay.replayed_records().await,
        changed_rows: overlay.changed_rows().await,
    };
    let mut store = ViewStore::open(Handle::Layer(overlay.clone()), job, attempt).await?;
    store.meta = live.meta.clone();
    Ok((store, overlay, stats))
}

/// Recently built time-travel stores, by attempt and offset: paging through
/// a past view asks for the same offset again and again.
type Cache = std::sync::Mutex<Vec<((String, String, String, u64), Cached)>>;

/// A cached store and the overlay it reads through (to replay more views).
type Cached = (Arc<ViewStore>, Arc<Overlay>);

fn cache() -> &'static Cache {
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Time-travel stores kept (each holds at most one snapshot interval of
/// changed rows).
const CACHED: usize = 4;

/// `view_at` for the HTTP layer: parses `as_of`, reuses a store built for
/// the same attempt and offset (the past never changes, unless views are
/// rebuilt in place, which clears this cache in the process doing it).
/// `views` are those the request will read (replayed in one pass when the
/// store is built; others are replayed when first read).
pub async fn serve(
    storage: &Storage,
    live: &ViewStore,
    as_of: &str,
    views: &[&'static str],
) -> Result<Arc<ViewStore>> {
    let k = parse(as_of)?;
    let id = (
        storage.url().to_owned(),
        live.meta.job_id.clone(),
        live.meta.attempt_id.clone(),
        k,
    );
    let hit = {
        let c = cache().lock().unwrap_or_else(|e| e.into_inner());
        c.iter().find(|(key, _)| *key == id).map(|(_, s)| s.clone())
    };
    if let Some((store, overlay)) = hit {
        overlay.replay(views).await?;
        return Ok(store);
    }
    let (store, overlay, stats) = build(storage, live, k, views).await?;
    tracing::debug!(
        as_of = k,
        snapshot = stats.snapshot,
        replayed = stats.replayed,
        "as_of view built"
    );
    let store = Arc::new(store);
    let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
    c.retain(|(key, _)| *key != id);
    c.push((id, (store.clone(), overlay)));
    if c.len() > CACHED {
        c.remove(0);
    }
    Ok(store)
}

/// The views each job route reads (by its metrics name), replayed in one
/// pass for an `as_of` request; a view missing here costs one more pass
/// when the route reads it, never a wrong answer.
pub fn views_for(route: &str) -> &'static [&'static str] {
    match route {
        "job" => &["job", "stage"],
        "stages" | "stage" => &["job", "stage", "metrics"],
        "configuration" => &["job", "stage", "metrics"],
        "stage_metrics" => &["job", "metrics"],
        "workers" | "stage_workers" | "worker" => &["job", "worker"],
        "exceptions" | "exception" => &["exception"],
        "exception_summary" => &["exception_group", "exception"],
        "lineage" | "split" => &["lineage"],
        "checkpoints" => &["checkpoint"],
        "timeline" => &["timeline"],
        "dead_letters" => &["dead_letter"],
        _ => &[],
    }
}

/// Forgets every cached time-travel store (after an in-place rebuild).
pub fn clear_cache() {
    cache().lock().unwrap_or_else(|e| e.into_inner()).clear();
}
