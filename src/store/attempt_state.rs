//! Whether an attempt is complete. A replay (or an in-place view rebuild)
//! marks its attempt `"in_progress": true` in `attempt.json` before its
//! first write and clears the mark once it sealed the attempt; the lease
//! object beside it says whether its writer is still alive. So a replay
//! killed mid-way leaves an attempt that is *unfinished* (marked, nobody
//! holds it): readers prefer the last complete attempt over it, still
//! listing it. The daemon never marks its attempt: it is the job's live
//! attempt whether or not it runs, and a restart resumes it.
//!
//! What other tools rely on (`sundial gc` among them): an attempt whose
//! `attempt.json` has `"in_progress": true`, or whose `projector.lease`
//! is fresh, is being written or was left unfinished; absent or false
//! means complete.

use crate::error::Result;
use crate::store::event_log::AttemptMeta;
use crate::store::lease;
use crate::store::storage::{Storage, ATTEMPT_OBJECT};

/// Where an attempt stands, as readers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptState {
    /// Sealed by its last writer, or written by the daemon.
    Complete,
    /// Being written now by a replay or rebuild whose lease is alive.
    InProgress,
    /// Marked in progress, and no live writer holds it: a replay that died.
    Unfinished,
}

impl AttemptState {
    /// The name the API gives it (`complete`, `in_progress`, `unfinished`).
    pub fn name(self) -> &'static str {
        match self {
            AttemptState::Complete => "complete",
            AttemptState::InProgress => "in_progress",
            AttemptState::Unfinished => "unfinished",
        }
    }
}

/// The attempt's `attempt.json`, `None` when absent or unreadable.
pub async fn read_meta(storage: &Storage, job: &str, attempt: &str) -> Result<Option<AttemptMeta>> {
    Ok(storage
        .get_object(job, attempt, ATTEMPT_OBJECT)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

async fn write_meta(storage: &Storage, meta: &AttemptMeta) -> Result<()> {
    let bytes = serde_json::to_vec(meta).unwrap_or_default();
    storage
        .put_object(&meta.job_id, &meta.attempt_id, ATTEMPT_OBJECT, bytes)
        .await
}

/// Marks the attempt in progress before a replay or rebuild writes it,
/// creating `attempt.json` (now as its creation time) when the attempt is
/// new; `source` is recorded when given or when none was. The writer must
/// hold the attempt's lease.
pub async fn begin(
    storage: &Storage,
    job: &str,
    attempt: &str,
    source: Option<&str>,
) -> Result<()> {
    let mut meta = read_meta(storage, job, attempt)
        .await?
        .unwrap_or_else(|| AttemptMeta {
            job_id: job.to_owned(),
            attempt_id: attempt.to_owned(),
            created_ms: crate::clock::now_ms(),
            ..AttemptMeta::default()
        });
    if let Some(s) = source {
        meta.source = s.to_owned();
    }
    meta.in_progress = true;
    write_meta(storage, &meta).await
}

/// Clears the mark once the writer sealed the attempt (its last commit is
/// durable and its sealed summary stored).
pub async fn seal(storage: &Storage, job: &str, attempt: &str) -> Result<()> {
    match read_meta(storage, job, attempt).await? {
        Some(mut meta) if meta.in_progress => {
            meta.in_progress = false;
            write_meta(storage, &meta).await
        }
        _ => Ok(()),
    }
}

/// Where the attempt stands: marked or not, and if marked whether a live
/// writer holds its lease (two small reads; one when unmarked).
pub async fn state(storage: &Storage, job: &str, attempt: &str) -> Result<AttemptState> {
    let marked = read_meta(storage, job, attempt)
        .await?
        .is_some_and(|m| m.in_progress);
    if !marked {
        return Ok(AttemptState::Complete);
    }
    Ok(match lease::live_holder(storage, job, attempt).await? {
        Some(_) => AttemptState::InProgress,
        None => AttemptState::Unfinished,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::lease::{Lease, Writer};
    use std::time::Duration;

    #[test]
    fn a_marked_attempt_is_unfinished_without_a_live_writer_and_complete_once_sealed() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let s = Storage::from_url("memory://attempt-state").unwrap();
            assert_eq!(state(&s, "j", "a").await.unwrap(), AttemptState::Complete);
            let lease = Lease::acquire(&s, "j", "a", Duration::from_millis(50), Writer::Replay)
                .await
                .unwrap();
            begin(&s, "j", "a", Some("file:x")).await.unwrap();
            let meta = read_meta(&s, "j", "a").await.unwrap().unwrap();
            assert!(meta.in_progress);
            assert_eq!(meta.source, "file:x");
            assert_eq!(state(&s, "j", "a").await.unwrap(), AttemptState::InProgress);
            // Dropped without release: the heartbeat stops, the object stays.
            drop(lease);
            tokio::time::sleep(Duration::from_millis(1_300)).await;
            assert_eq!(state(&s, "j", "a").await.unwrap(), AttemptState::Unfinished);
            begin(&s, "j", "a", None).await.unwrap();
            seal(&s, "j", "a").await.unwrap();
            let sealed = read_meta(&s, "j", "a").await.unwrap().unwrap();
            assert_eq!(
                (
                    sealed.in_progress,
                    sealed.created_ms,
                    sealed.source.as_str()
                ),
                (false, meta.created_ms, "file:x"),
                "sealing keeps the creation time and source"
            );
            assert_eq!(state(&s, "j", "a").await.unwrap(), AttemptState::Complete);
            // Older readers see no field at all on a complete attempt.
            let raw = s
                .get_object("j", "a", ATTEMPT_OBJECT)
                .await
                .unwrap()
                .unwrap();
            assert!(!String::from_utf8(raw).unwrap().contains("in_progress"));
        });
    }
}
