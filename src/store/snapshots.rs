//! Periodic view snapshots, the starting points of time travel (`as_of`).
//! Every `DEFAULT_EVERY` log sequences the engine, right after the batch
//! that crosses the boundary, begins a SlateDB checkpoint (a pinned,
//! read-only version of the whole database: log, every view row, position
//! — no copy of the rows) and, once it is stored, records it under
//! `m/snap/{last_seq:016x}` → checkpoint id. Boundaries fall on batch
//! ends, so a snapshot holds exactly the views as of a log sequence. Owns
//! that key layout; never writes views.

use slatedb::config::{CheckpointOptions, CheckpointScope};
use slatedb::CheckpointCreateResult;
use slatedb::{Db, WriteBatch};

use crate::error::{Error, Result};
use crate::store::view_store::Handle;

/// Log sequences between snapshots. `as_of=K` replays at most this many
/// records (plus one ingest batch) from the nearest snapshot at or before
/// K. Each snapshot flushes the memtable and pins its tables: every
/// 250 000 costs within the run-to-run noise where every 100 000 halved
/// the rate, and keeps the worst `as_of` to a quarter of a million records
/// (figures: docs/performance.md, "Measured choices in the code").
pub const DEFAULT_EVERY: u64 = 250_000;

/// The snapshot interval: `SUNDIAL_SNAPSHOT_EVERY` (log sequences; 0 =
/// no snapshots) when set, else [`DEFAULT_EVERY`].
pub fn every() -> u64 {
    std::env::var("SUNDIAL_SNAPSHOT_EVERY")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_EVERY)
}

/// Prefix of the snapshot index.
pub const SNAPSHOT_PREFIX: &str = "m/snap/";

/// Key of the snapshot taken after sequence `seq`.
pub fn snapshot_key(seq: u64) -> String {
    format!("{SNAPSHOT_PREFIX}{seq:016x}")
}

/// The first boundary (a multiple of `every`) after sequence `last`;
/// `u64::MAX` when snapshots are off.
pub fn next_boundary(last: u64, every: u64) -> u64 {
    if every == 0 {
        return u64::MAX;
    }
    (last / every + 1).saturating_mul(every)
}

/// A snapshot begun but maybe not stored yet: its checkpoint flushes the
/// memtable in the background while ingest goes on, and it is indexed (by
/// a later batch, or at flush) only once stored, so `as_of` never finds a
/// checkpoint that does not exist. A crash before that loses the snapshot,
/// never a view: `as_of` then starts from the one before.
pub struct Pending {
    seq: u64,
    stored: tokio::task::JoinHandle<std::result::Result<CheckpointCreateResult, slatedb::Error>>,
}

impl Pending {
    /// Begins a snapshot of `db` as of its last finished write (log
    /// sequence `seq`); writes after this call are not in it.
    pub async fn begin(db: &Db, seq: u64) -> Result<Pending> {
        let options = CheckpointOptions {
            name: Some(format!("sundial-snapshot-{seq}")),
            ..CheckpointOptions::default()
        };
        let handle = db.begin_checkpoint(CheckpointScope::All, &options).await?;
        Ok(Pending {
            seq,
            stored: tokio::spawn(handle.wait()),
        })
    }

    /// True once the checkpoint is stored (or failed).
    pub fn is_done(&self) -> bool {
        self.stored.is_finished()
    }

    /// Waits until the checkpoint is stored and puts its index entry in `wb`.
    pub async fn index_into(self, wb: &mut WriteBatch) -> Result<()> {
        let cp = self
            .stored
            .await
            .map_err(|e| Error::Unavailable(format!("snapshot {}: {e}", self.seq)))??;
        wb.put(snapshot_key(self.seq), cp.id.to_string().as_bytes());
        tracing::debug!(seq = self.seq, checkpoint = %cp.id, "view snapshot");
        Ok(())
    }
}

/// Every indexed snapshot of an attempt: (log sequence, checkpoint id), ascending.
pub async fn list(handle: &Handle) -> Result<Vec<(u64, uuid::Uuid)>> {
    let start = SNAPSHOT_PREFIX.as_bytes().to_vec();
    let mut end = start.clone();
    end.push(0xff);
    let mut it = handle.scan(start, end).await?;
    let mut out = Vec::new();
    while let Some(kv) = it.next().await? {
        let corrupt = |detail: &str| Error::Corrupt {
            key: String::from_utf8_lossy(&kv.key).into_owned(),
            detail: detail.to_owned(),
        };
        let hex = std::str::from_utf8(&kv.key[SNAPSHOT_PREFIX.len()..]).unwrap_or_default();
        let seq = u64::from_str_radix(hex, 16).map_err(|_| corrupt("bad sequence"))?;
        let id = std::str::from_utf8(&kv.value)
            .ok()
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .ok_or_else(|| corrupt("bad checkpoint id"))?;
        out.push((seq, id));
    }
    Ok(out)
}

/// Removes the snapshot index (after views were rebuilt in place, the old
/// snapshots hold the old rows); the checkpoints themselves are left to
/// expire with the attempt.
pub async fn forget_all(db: &std::sync::Arc<Db>) -> Result<usize> {
    let handle = Handle::Writer(db.clone());
    let snaps = list(&handle).await?;
    let mut wb = WriteBatch::new();
    for (seq, _) in &snaps {
        wb.delete(snapshot_key(*seq));
    }
    if !wb.is_empty() {
        db.write(wb).await?;
    }
    Ok(snaps.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_are_multiples_of_every() {
        assert_eq!(next_boundary(0, 100), 100);
        assert_eq!(next_boundary(99, 100), 100);
        assert_eq!(next_boundary(100, 100), 200);
        assert_eq!(next_boundary(16_383, 100_000), 100_000);
        assert_eq!(next_boundary(5, 0), u64::MAX);
        assert!(snapshot_key(255) < snapshot_key(256));
    }
}
