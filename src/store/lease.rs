//! The writer's lease on an attempt: a small heartbeat object beside the
//! attempt's database, taken by every writer (`project`, `replay`,
//! `replay --views`), so a second writer started on the same attempt is
//! refused with one `busy:` line while the first is alive (SlateDB alone
//! would let the newer writer win and fence the running one). The object
//! is created atomically where the store can (two writers starting at the
//! same instant: one creates it, the other finds it). A lease whose
//! heartbeat stops for three intervals is stale, so a restart after a
//! crash takes over. SlateDB's fencing stays the last word: if two ever
//! race past the lease, the older writer's next write fails and it exits
//! with the one-line `fenced:` error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::store::storage::Storage;

/// The lease object's name inside the attempt's folder.
pub const LEASE_OBJECT: &str = "projector.lease";
/// Default heartbeat interval on local disk.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Default heartbeat interval on S3, where each beat is a PUT (and a GET)
/// for as long as the projector runs, busy or idle: ~17 k PUTs a day
/// instead of ~86 k, for a takeover after a crash 15 s later instead of 3.
pub const REMOTE_INTERVAL: Duration = Duration::from_secs(5);

/// The default heartbeat interval for `storage`.
pub fn default_interval(storage: &Storage) -> Duration {
    if storage.is_remote() {
        REMOTE_INTERVAL
    } else {
        DEFAULT_INTERVAL
    }
}
/// Heartbeats a contender waits for before calling a lease stale.
const STALE_BEATS: u32 = 3;

/// Which kind of writer holds a lease (named in the `busy:` error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// `sundial project`, the live daemon.
    Project,
    /// `sundial replay` from a file, a topic or a log.
    Replay,
    /// `sundial replay --views`, rebuilding views in place.
    Rebuild,
}

impl Writer {
    fn name(self) -> &'static str {
        match self {
            Writer::Project => "projector",
            Writer::Replay => "replay",
            Writer::Rebuild => "view rebuild",
        }
    }
}

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
    /// The holder's heartbeat interval, so a contender started with a
    /// shorter one still waits long enough (absent in older leases).
    #[serde(default)]
    pub interval_ms: Option<u64>,
    /// The holder's kind: `projector` (`sundial project`), `replay`,
    /// `view rebuild` (`replay --views`); absent in older leases.
    #[serde(default)]
    pub writer: Option<String>,
}

impl LeaseInfo {
    /// Whether the holder beat recently enough, by the wall clock, to be
    /// taken as alive (three of its intervals, plus a second of clock
    /// skew between hosts): what a reader that cannot wait to watch the
    /// heartbeat move (the portal choosing a job's latest attempt) uses.
    pub fn fresh(&self, now_ms: u64) -> bool {
        let interval = self
            .interval_ms
            .unwrap_or(DEFAULT_INTERVAL.as_millis() as u64);
        let window = interval.saturating_mul(u64::from(STALE_BEATS)) + 1_000;
        now_ms.saturating_sub(self.updated_ms) <= window
    }

    fn busy(&self, job: &str, attempt: &str) -> Error {
        let what = self.writer.as_deref().unwrap_or("projector");
        Error::Busy {
            job: job.to_owned(),
            attempt: attempt.to_owned(),
            holder: format!("a {what} (pid {} on {})", self.pid, self.host),
        }
    }
}

/// The attempt's lease when its holder looks alive by the wall clock
/// (see [`LeaseInfo::fresh`]), else `None`.
pub async fn live_holder(storage: &Storage, job: &str, attempt: &str) -> Result<Option<LeaseInfo>> {
    Ok(read(storage, job, attempt)
        .await?
        .filter(|l| l.fresh(now_ms())))
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
    /// Takes the lease on an attempt for `writer`: at once when it is free,
    /// after three silent heartbeat intervals when its holder died, never
    /// while another holder's heartbeat moves (then a one-line `Busy`
    /// error).
    pub async fn acquire(
        storage: &Storage,
        job: &str,
        attempt: &str,
        interval: Duration,
        writer: Writer,
    ) -> Result<Lease> {
        let holder = format!("{}-{}-{}", host(), std::process::id(), now_ms());
        let mut info = LeaseInfo {
            holder: holder.clone(),
            pid: std::process::id(),
            host: host(),
            beat: 0,
            updated_ms: now_ms(),
            interval_ms: Some(interval.as_millis() as u64),
            writer: Some(writer.name().to_owned()),
        };
        let bytes = |info: &LeaseInfo| serde_json::to_vec(info).unwrap_or_default();
        if !storage
            .create_object(job, attempt, LEASE_OBJECT, bytes(&info))
            .await?
        {
            let Some(first) = read(storage, job, attempt).await? else {
                // Released between our create and our read: try once more.
                return Self::take_free(storage, job, attempt, interval, info).await;
            };
            tracing::info!(holder = %first.holder, pid = first.pid, host = %first.host,
                "attempt has a lease; checking whether its holder is alive");
            let theirs = first.interval_ms.map_or(interval, Duration::from_millis);
            let beat = interval.max(theirs);
            for _ in 0..STALE_BEATS * 2 {
                tokio::time::sleep(beat / 2).await;
                match read(storage, job, attempt).await? {
                    None => break,
                    Some(now) if now != first => return Err(now.busy(job, attempt)),
                    Some(_) => {}
                }
            }
            tracing::info!("lease is stale; taking over");
            storage.delete_object(job, attempt, LEASE_OBJECT).await?;
            info.updated_ms = now_ms();
            return Self::take_free(storage, job, attempt, interval, info).await;
        }
        Ok(Self::start(storage, job, attempt, interval, info))
    }

    /// Creates the lease object, now that it should be absent; another
    /// writer that created it first wins (`Busy`).
    async fn take_free(
        storage: &Storage,
        job: &str,
        attempt: &str,
        interval: Duration,
        info: LeaseInfo,
    ) -> Result<Lease> {
        let bytes = serde_json::to_vec(&info).unwrap_or_default();
        if storage
            .create_object(job, attempt, LEASE_OBJECT, bytes)
            .await?
        {
            return Ok(Self::start(storage, job, attempt, interval, info));
        }
        match read(storage, job, attempt).await? {
            Some(other) => Err(other.busy(job, attempt)),
            None => Err(Error::Busy {
                job: job.to_owned(),
                attempt: attempt.to_owned(),
                holder: "another writer".to_owned(),
            }),
        }
    }

    /// Starts the heartbeat of a lease just written.
    fn start(
        storage: &Storage,
        job: &str,
        attempt: &str,
        interval: Duration,
        mut info: LeaseInfo,
    ) -> Lease {
        let holder = info.holder.clone();
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
        Lease {
            storage: storage.clone(),
            job: job.to_owned(),
            attempt: attempt.to_owned(),
            holder,
            lost,
            task,
        }
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

impl Drop for Lease {
    /// A lease dropped without `release` (an error path) stops beating, so
    /// it goes stale and the next writer takes over after three intervals.
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Runtime::new().unwrap()
    }

    #[test]
    fn a_contender_with_a_shorter_heartbeat_waits_for_the_holders() {
        rt().block_on(async {
            let storage = Storage::from_url("memory://lease-intervals").unwrap();
            let holder = Lease::acquire(
                &storage,
                "j",
                "a",
                Duration::from_millis(1000),
                Writer::Replay,
            )
            .await
            .unwrap();
            // Watching for 3 × 40 ms alone would call a lease that beats
            // every second stale most of the time.
            let contender = Lease::acquire(
                &storage,
                "j",
                "a",
                Duration::from_millis(40),
                Writer::Project,
            )
            .await;
            assert!(
                matches!(contender, Err(Error::Busy { .. })),
                "the live holder was taken over"
            );
            assert!(!holder.lost());
            holder.release().await;
        });
    }

    #[test]
    fn of_two_writers_taking_a_free_lease_at_once_exactly_one_wins() {
        rt().block_on(async {
            let storage = Storage::from_url("memory://lease-race").unwrap();
            let beat = Duration::from_millis(100);
            let (a, b) = tokio::join!(
                Lease::acquire(&storage, "j", "a", beat, Writer::Replay),
                Lease::acquire(&storage, "j", "a", beat, Writer::Project),
            );
            let (won, lost) = match (a, b) {
                (Ok(l), Err(e)) | (Err(e), Ok(l)) => (l, e),
                (a, b) => panic!("one must win: {:?} / {:?}", a.is_ok(), b.is_ok()),
            };
            let line = lost.to_string();
            assert!(
                line.starts_with("busy: job=j attempt=a is being written by a "),
                "{line}"
            );
            assert!(!won.lost());
            won.release().await;
            assert_eq!(read(&storage, "j", "a").await.unwrap(), None);
        });
    }

    #[test]
    fn a_lease_whose_holder_stopped_beating_is_taken_over() {
        rt().block_on(async {
            let storage = Storage::from_url("memory://lease-stale").unwrap();
            let dead = LeaseInfo {
                holder: "gone".into(),
                pid: 1,
                host: "h".into(),
                beat: 7,
                updated_ms: 0,
                interval_ms: Some(30),
                writer: None,
            };
            write(&storage, "j", "a", &dead).await.unwrap();
            let lease = Lease::acquire(
                &storage,
                "j",
                "a",
                Duration::from_millis(20),
                Writer::Project,
            )
            .await
            .unwrap();
            let now = read(&storage, "j", "a").await.unwrap().unwrap();
            assert_eq!(now.interval_ms, Some(20));
            assert_ne!(now.holder, "gone");
            lease.release().await;
        });
    }

    #[test]
    fn leases_beat_slower_where_each_beat_is_a_request() {
        let local = Storage::from_url("memory://lease-defaults").unwrap();
        assert_eq!(default_interval(&local), DEFAULT_INTERVAL);
        let s3 = Storage::from_url("s3://bucket/prefix").unwrap();
        assert_eq!(default_interval(&s3), REMOTE_INTERVAL);
    }
}
