//! The read side of time travel: an attempt's views as of a past log
//! offset, as the rows a replay from a snapshot changed (in memory) over
//! that snapshot (a read-only SlateDB checkpoint). Log reads go to the
//! attempt itself, capped at the offset. Built by `as_of`; read-only.

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use slatedb::DbReader;

use crate::error::Result;
use crate::event_log::LOG_PREFIX;
use crate::view_store::{Handle, Kv, Scan};

/// Rows as of a log offset: `rows` over `base`.
pub struct Overlay {
    /// The snapshot the replay started from (`None`: from an empty store).
    base: Option<Arc<DbReader>>,
    /// Every row the replay from the snapshot changed, final bytes.
    rows: BTreeMap<Vec<u8>, Bytes>,
    /// The attempt itself, for its log.
    log: Handle,
    as_of: u64,
}

impl Overlay {
    /// An overlay of `rows` on `base`, reading the log from `log`.
    pub fn new(
        base: Option<Arc<DbReader>>,
        rows: BTreeMap<Vec<u8>, Bytes>,
        log: Handle,
        as_of: u64,
    ) -> Self {
        Overlay {
            base,
            rows,
            log,
            as_of,
        }
    }

    /// The log offset the views stand at.
    pub fn as_of(&self) -> u64 {
        self.as_of
    }

    /// Rows the replay changed.
    pub fn changed_rows(&self) -> usize {
        self.rows.len()
    }

    /// One key's value as of the offset.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        if key.starts_with(LOG_PREFIX.as_bytes()) {
            return self.log.get(key).await;
        }
        if let Some(v) = self.rows.get(key) {
            return Ok(Some(v.clone()));
        }
        match &self.base {
            Some(b) => Ok(b.get(key).await?),
            None => Ok(None),
        }
    }

    /// Keys in `[start, end)` as of the offset, ascending.
    pub async fn scan(&self, start: Vec<u8>, end: Vec<u8>) -> Result<Scan> {
        if start.starts_with(LOG_PREFIX.as_bytes()) {
            return self.log.scan(start, end).await;
        }
        let mem: VecDeque<(Bytes, Bytes)> = self
            .rows
            .range(start.clone()..end.clone())
            .map(|(k, v)| (Bytes::copy_from_slice(k), v.clone()))
            .collect();
        let db = match &self.base {
            Some(b) => Some(Handle::Reader(b.clone()).scan(start, end).await?),
            None => None,
        };
        Ok(Scan::Merged(Box::new(MergedScan {
            db,
            db_next: None,
            primed: false,
            mem,
        })))
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        // Dropping a DbReader does not stop its tasks: close it.
        if let (Some(reader), Ok(rt)) = (self.base.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(async move {
                if let Err(e) = reader.close().await {
                    tracing::debug!(error = %e, "closing a snapshot reader failed");
                }
            });
        }
    }
}

/// A snapshot's scan merged with the overlay's rows in the same range.
pub struct MergedScan {
    db: Option<Scan>,
    db_next: Option<Kv>,
    primed: bool,
    mem: VecDeque<(Bytes, Bytes)>,
}

impl MergedScan {
    async fn pull(&mut self) -> Result<()> {
        self.db_next = match &mut self.db {
            Some(it) => Box::pin(it.next()).await?,
            None => None,
        };
        Ok(())
    }

    /// The next key in order; the overlay's value wins over the snapshot's.
    pub async fn next(&mut self) -> Result<Option<Kv>> {
        if !self.primed {
            self.primed = true;
            self.pull().await?;
        }
        let take_mem = match (&self.db_next, self.mem.front()) {
            (None, None) => return Ok(None),
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (Some(d), Some((k, _))) => {
                if k.as_ref() == d.key.as_ref() {
                    // Same key: the overlay's newer bytes, the snapshot's dropped.
                    self.pull().await?;
                    true
                } else {
                    k.as_ref() < d.key.as_ref()
                }
            }
        };
        if take_mem {
            Ok(self.mem.pop_front().map(|(key, value)| Kv { key, value }))
        } else {
            let out = self.db_next.take();
            self.pull().await?;
            Ok(out)
        }
    }
}
