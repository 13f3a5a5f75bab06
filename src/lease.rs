//! The projector's lease on an attempt: a small heartbeat object beside the
//! attempt's database, so a second projector started on the same attempt is
//! refused while the first is alive (SlateDB alone would let the newer writer
//! win and fence the running one). A lease whose heartbeat stops for three
//! intervals is stale, so a restart after a crash takes over. SlateDB's
//! fencing stays the last word: if two ever race past the lease, the older
//! writer's next write fails and it exits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::replay::now_ms;
use crate::storage::Storage;

/// The lease object's name inside the attempt's folder.
pub const LEASE_OBJECT: &str = "projector.lease";
/// Default heartbeat interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Heartbeats a contender waits for before calling a lease stale.
const STALE_BEATS: u32 = 3;

/// What the lease object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    /// Unique per process start.
    pub holder: String,
    pub pid: u32,
    pub host: String,
    /// Increases with every heartbeat.
    pub beat: u64,
    pub updated_ms: u64,
}

/// A held lease; its heartbeat runs until `release`.
pub struct Lease {
    storage: Storage,
    job: String,
    attempt: String,
    holder: String,
    lost: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

async fn read(storage: &Storage, job: &str, attempt: &str) -> Result<Option<LeaseInfo>> {
    Ok(storage
        .get_object(job, attempt, LEASE_OBJECT)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

async fn write(storage: &Storage, job: &str, attempt: &str, info: &LeaseInfo) -> Result<()> {
    let bytes = serde_json::to_vec(info).unwrap_or_default();
    storage.put_object(job, attempt, LEASE_OBJECT, bytes).await
}

impl Lease {
    /// Takes the lease on an attempt: at once when it is free, after three
    /// silent heartbeat intervals when its holder died, never while another
    /// holder's heartbeat moves (then a one-line `Busy` error).
    pub async fn acquire(
        storage: &Storage,
        job: &str,
        attempt: &str,
        interval: Duration,
    ) -> Result<Lease> {
        if let Some(first) = read(storage, job, attempt).await? {
            tracing::info!(holder = %first.holder, pid = first.pid, host = %first.host,
                "attempt has a lease; checking whether its holder is alive");
            for _ in 0..STALE_BEATS * 2 {
                tokio::time::sleep(interval / 2).await;
                match read(storage, job, attempt).await? {
                    None => break,
                    Some(now) if now != first => {
                        return Err(Error::Busy {
                            job: job.to_owned(),
                            attempt: attempt.to_owned(),
                            holder: format!("pid {} on {}", now.pid, now.host),
                        })
                    }
                    Some(_) => {}
                }
            }
            tracing::info!("lease is stale; taking over");
        }
        let holder = format!("{}-{}-{}", host(), std::process::id(), now_ms());
        let mut info = LeaseInfo {
            holder: holder.clone(),
            pid: std::process::id(),
            host: host(),
            beat: 0,
            updated_ms: now_ms(),
        };
        write(storage, job, attempt, &info).await?;
        let lost = Arc::new(AtomicBool::new(false));
        let task = {
            let (storage, job, attempt, lost) = (
                storage.clone(),
                job.to_owned(),
                attempt.to_owned(),
                lost.clone(),
            );
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(interval).await;
                    match read(&storage, &job, &attempt).await {
                        Ok(Some(cur)) if cur.holder != info.holder => {
                            tracing::error!(other = %cur.holder, "another projector took the lease");
                            lost.store(true, Ordering::Relaxed);
                            return;
                        }
                        Ok(_) => {}
                        // A storage hiccup: try again next beat.
                        Err(e) => tracing::warn!(error = %e, "lease read failed"),
                    }
                    info.beat += 1;
                    info.updated_ms = now_ms();
                    if let Err(e) = write(&storage, &job, &attempt, &info).await {
                        tracing::warn!(error = %e, "lease heartbeat failed");
                    }
                }
            })
        };
        Ok(Lease {
            storage: storage.clone(),
            job: job.to_owned(),
            attempt: attempt.to_owned(),
            holder,
            lost,
            task,
        })
    }

    /// True once another process took the lease over.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Stops the heartbeat and removes the lease if it is still ours.
    pub async fn release(self) {
        self.task.abort();
        if let Ok(Some(cur)) = read(&self.storage, &self.job, &self.attempt).await {
            if cur.holder == self.holder {
                let _ = self
                    .storage
                    .delete_object(&self.job, &self.attempt, LEASE_OBJECT)
                    .await;
            }
        }
    }
}
