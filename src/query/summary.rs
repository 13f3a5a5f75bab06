//! The attempt summary object (`summary.json` beside an attempt's database):
//! the job view and the job's list entry as the writer last committed them.
//! Listing 1 000 jobs must not open 1 000 databases, opening a finished job
//! must not wait for its database whatever its size, and `serve` never
//! writes; so the writer keeps this small copy: `project` at most once per
//! second while it commits, and every writer once more, *sealed*, after its
//! last commit when it closes cleanly. Opening an attempt for writing
//! deletes it first (`Storage::open_writer`), so a sealed summary always
//! equals the views: nothing was written after it. An unsealed one may be a
//! second behind (or more, after a crash): lists use it, the job route
//! reads the views instead. Attempts without it (older ones, or a writer
//! that just opened) are opened and summarised from their views.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::query::api;
use crate::store::storage::{Storage, SUMMARY_OBJECT};
use crate::store::view_store::ViewStore;

/// What `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptSummary {
    /// Written after the writer's last commit: equal to the views.
    pub sealed: bool,
    /// The job's entry in `/api/jobs`.
    pub entry: Value,
    /// The answer of `/api/jobs/{job}`.
    pub job: Value,
}

/// Computes the attempt's summary from its views and stores it; `sealed`
/// only when nothing will be committed after it.
pub async fn write(storage: &Storage, store: &ViewStore, sealed: bool) -> Result<()> {
    let job = api::job(store)
        .await
        .map_err(|e| Error::invalid("summary", e.message))?;
    let summary = AttemptSummary {
        sealed,
        entry: api::list_entry(&job, store.meta.created_ms),
        job,
    };
    let bytes =
        serde_json::to_vec(&summary).map_err(|e| Error::invalid("summary", e.to_string()))?;
    storage
        .put_object(
            &store.meta.job_id,
            &store.meta.attempt_id,
            SUMMARY_OBJECT,
            bytes,
        )
        .await
}

/// The stored summary of an attempt; `None` when absent or unreadable
/// (then the caller summarises the views themselves).
pub async fn read(storage: &Storage, job: &str, attempt: &str) -> Result<Option<AttemptSummary>> {
    let Some(bytes) = storage.get_object(job, attempt, SUMMARY_OBJECT).await? else {
        return Ok(None);
    };
    let summary: Option<AttemptSummary> = serde_json::from_slice(&bytes).ok();
    // Only a summary of this very attempt counts (a copied directory keeps
    // the old names inside).
    Ok(summary.filter(|s| {
        [&s.entry, &s.job]
            .iter()
            .all(|v| v["job_id"] == job && v["attempt_id"] == attempt)
    }))
}
