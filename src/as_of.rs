//! Time travel: an attempt's views as they stood right after log sequence
//! K (`?as_of=K` on the job routes). Starts from the nearest view snapshot
//! at or before K (`snapshots`; an empty store when there is none), replays
//! the log records after it up to K through the same projector as the
//! engine, keeping the changed rows in memory, and answers from those rows
//! over the snapshot (`overlay`). Never replays from the start of a long
//! log; never writes.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use sundial_views::Projector;

use crate::engine::{decode_batch, entry, load_rows, SourceRecord};
use crate::error::{Error, Result};
use crate::event_log::view_key;
use crate::overlay::Overlay;
use crate::storage::Storage;
use crate::view_store::{Handle, ViewStore};

/// Records decoded and applied at a time.
const CHUNK: usize = 16_384;

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

/// The views of `live`'s attempt as of log sequence `as_of`. A sequence past
/// the attempt's last one is a `Invalid` error (HTTP 400) naming it.
pub async fn view_at(
    storage: &Storage,
    live: &ViewStore,
    as_of: u64,
) -> Result<(ViewStore, AsOfStats)> {
    let last = live.job().await?.log_offset;
    if as_of > last {
        return Err(Error::invalid(
            "as_of",
            format!("{as_of} is past the last log offset {last}: use 1..={last}"),
        ));
    }
    let (job, attempt) = (live.meta.job_id.as_str(), live.meta.attempt_id.as_str());
    let snap = crate::snapshots::list(live.handle())
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
    let mut projector = Projector::new(base.is_none());
    let base_handle = base.clone().map(Handle::Reader);
    let empty = Handle::Overlay(Arc::new(Overlay::new(
        None,
        BTreeMap::new(),
        live.handle().clone(),
        0,
    )));
    let loader = base_handle.as_ref().unwrap_or(&empty);
    let mut next = from + 1;
    let mut replayed = 0;
    while next <= as_of {
        let want = (as_of - next + 1).min(CHUNK as u64) as usize;
        let records: Vec<SourceRecord> = live
            .log(next, want)
            .await?
            .into_iter()
            .map(|r| SourceRecord {
                partition: r.partition,
                offset: r.offset,
                arrival_ms: r.arrival_ms,
                content_type: r.content_type,
                value: r.value,
            })
            .collect();
        if records.is_empty() {
            return Err(Error::Corrupt {
                key: format!("l/ at {next}"),
                detail: "the log ends before the job's log_offset".into(),
            });
        }
        let decoded = decode_batch(&records, job);
        load_rows(&mut projector, loader, next, decoded.iter().map(entry)).await?;
        let entries: Vec<_> = decoded.iter().map(entry).collect();
        projector.apply_batch(next, &entries);
        next += records.len() as u64;
        replayed += records.len() as u64;
    }
    let mut rows = BTreeMap::new();
    projector.drain_dirty(&mut |view, key, bytes| {
        rows.insert(view_key(view, key), Bytes::from(bytes));
    });
    let stats = AsOfStats {
        snapshot: from,
        replayed,
        changed_rows: rows.len(),
    };
    let overlay = Overlay::new(base, rows, live.handle().clone(), as_of);
    let mut store = ViewStore::open(Handle::Overlay(Arc::new(overlay)), job, attempt).await?;
    store.meta = live.meta.clone();
    Ok((store, stats))
}

/// Recently built time-travel stores, by attempt and offset: paging through
/// a past view asks for the same offset again and again.
type Cache = std::sync::Mutex<Vec<((String, String, String, u64), Arc<ViewStore>)>>;

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
pub async fn serve(storage: &Storage, live: &ViewStore, as_of: &str) -> Result<Arc<ViewStore>> {
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
    if let Some(store) = hit {
        return Ok(store);
    }
    let (store, stats) = view_at(storage, live, k).await?;
    tracing::debug!(
        as_of = k,
        snapshot = stats.snapshot,
        replayed = stats.replayed,
        "as_of view built"
    );
    let store = Arc::new(store);
    let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
    c.retain(|(key, _)| *key != id);
    c.push((id, store.clone()));
    if c.len() > CACHED {
        c.remove(0);
    }
    Ok(store)
}

/// Forgets every cached time-travel store (after an in-place rebuild).
pub fn clear_cache() {
    cache().lock().unwrap_or_else(|e| e.into_inner()).clear();
}
