//! Which jobs and attempts exist under a storage URL, and their open
//! read handles. A job resolves to its latest attempt by recorded creation
//! time (not by name), read from the small `attempt.json` beside each
//! attempt, passing over a replay left unfinished (`attempt_state`), so listing jobs opens only each job's latest attempt (older
//! attempts without `attempt.json` are opened once to read their identity).
//! Open read-only handles live in a bounded cache: at most `max_open`, the
//! least recently used closed first, idle ones closed after `idle`. Every
//! open follower polls the store: one whose attempt has a projector's lease
//! (a live writer) every `poll_live` (new events show within it), any other
//! every `poll_idle`; an idle-polled handle in use checks for a lease again
//! every half second and is reopened live when a projector appeared. A live
//! projector registers its writer's handle here (never evicted) so its own
//! HTTP API reads the freshest state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::error::{Error, Result};
use crate::store::attempt_state::{self, AttemptState};
use crate::store::lease::LEASE_OBJECT;
use crate::store::storage::{validate_id, Storage, READER_POLL};
use crate::store::view_store::{Handle, ViewStore};

/// Default bound on open read-only handles.
pub const DEFAULT_MAX_OPEN: usize = 64;
/// Default time after which an unused read-only handle is closed.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(60);
/// Default poll interval of a follower of an attempt without a projector's
/// lease (each poll is a few requests: on S3 they add up over many handles).
pub const DEFAULT_POLL_IDLE: Duration = Duration::from_secs(10);
/// How often a handle in use looks for a projector's lease again.
const LEASE_RECHECK_US: u64 = 500_000;

/// Bounds of the handle cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogOptions {
    /// Most read-only handles kept open at once (at least 1).
    pub max_open: usize,
    /// A handle unused this long is closed.
    pub idle: Duration,
    /// Poll interval of a follower of an attempt with a live projector.
    pub poll_live: Duration,
    /// Poll interval of a follower of any other attempt.
    pub poll_idle: Duration,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        CatalogOptions {
            max_open: DEFAULT_MAX_OPEN,
            idle: DEFAULT_IDLE,
            poll_live: READER_POLL,
            poll_idle: DEFAULT_POLL_IDLE,
        }
    }
}

impl CatalogOptions {
    /// The defaults for `storage`: on S3 a live attempt is polled as often
    /// as its projector makes writes durable there by default
    /// ([`crate::store::storage::REMOTE_FLUSH`]), not ten times as often. Each
    /// poll of SlateDB's reader is ~10 requests (a gallop of HEADs for the
    /// newest WAL object, the manifest, the GC boundary): at 100 ms a
    /// followed attempt cost ~100 requests a second per `serve` replica.
    pub fn for_storage(storage: &Storage) -> Self {
        CatalogOptions {
            poll_live: if storage.is_remote() {
                crate::store::storage::REMOTE_FLUSH
            } else {
                READER_POLL
            },
            ..CatalogOptions::default()
        }
    }
}

type Key = (String, String);

/// One cached handle.
struct Slot {
    store: Arc<ViewStore>,
    /// Microseconds since the catalog's epoch at the last use.
    last_used: AtomicU64,
    /// A registered writer: never evicted.
    pinned: bool,
    /// Opened with the live poll interval.
    live: bool,
    /// Microseconds since the catalog's epoch at the last look for a lease.
    lease_checked: AtomicU64,
}

struct Cache {
    slots: DashMap<Key, Slot>,
    epoch: Instant,
}

impl Cache {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Closes (drops; the last user closes it) readers unused for `idle`.
    fn sweep(&self, idle: Duration) {
        let cutoff = self.now().saturating_sub(idle.as_micros() as u64);
        self.slots
            .retain(|_, s| s.pinned || s.last_used.load(Ordering::Relaxed) > cutoff);
    }

    /// Drops least recently used readers until at most `max` are cached.
    fn evict_to(&self, max: usize) {
        loop {
            let mut readers = 0;
            let mut oldest: Option<(u64, Key)> = None;
            for e in self.slots.iter() {
                if e.pinned {
                    continue;
                }
                readers += 1;
                let t = e.last_used.load(Ordering::Relaxed);
                if oldest.as_ref().is_none_or(|(o, _)| t < *o) {
                    oldest = Some((t, e.key().clone()));
                }
            }
            match oldest {
                Some((_, key)) if readers > max => {
                    self.slots.remove(&key);
                }
                _ => return,
            }
        }
    }
}

/// Jobs, attempts and open handles over one storage.
pub struct Catalog {
    storage: Storage,
    options: CatalogOptions,
    cache: Arc<Cache>,
    /// Recorded creation time of every attempt seen (it never changes).
    created: DashMap<Key, u64>,
    /// On S3: each job's latest attempt and when it was listed.
    latest: DashMap<String, (Instant, String)>,
}

/// How long a job's latest attempt, once found, is reused on S3 before its
/// attempts are listed again: a page redraw asks several routes at once and
/// each listed them (a LIST request, priced like a PUT). A new attempt shows
/// up at most this much later.
const LATEST_TTL: Duration = Duration::from_secs(1);

impl Catalog {
    /// A catalog over `storage` with the default bounds; nothing is opened
    /// until asked.
    pub fn new(storage: Storage) -> Self {
        let options = CatalogOptions::for_storage(&storage);
        Self::with_options(storage, options)
    }

    /// A catalog with the given cache bounds. Inside a Tokio runtime a
    /// background task closes idle handles (it ends with the catalog).
    pub fn with_options(storage: Storage, options: CatalogOptions) -> Self {
        let options = CatalogOptions {
            max_open: options.max_open.max(1),
            ..options
        };
        let cache = Arc::new(Cache {
            slots: DashMap::new(),
            epoch: Instant::now(),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak: Weak<Cache> = Arc::downgrade(&cache);
            let every =
                (options.idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(15));
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match weak.upgrade() {
                        Some(c) => c.sweep(options.idle),
                        None => return,
                    }
                }
            });
        }
        Catalog {
            storage,
            options,
            cache,
            created: DashMap::new(),
            latest: DashMap::new(),
        }
    }

    /// The storage it reads.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The cache bounds.
    pub fn options(&self) -> CatalogOptions {
        self.options
    }

    /// True when the attempt's handle is in the cache now.
    pub fn is_open(&self, job: &str, attempt: &str) -> bool {
        self.cache
            .slots
            .contains_key(&(job.to_owned(), attempt.to_owned()))
    }

    /// Read-only handles open in the cache now (registered writers excluded).
    pub fn open_count(&self) -> usize {
        self.cache.slots.iter().filter(|s| !s.pinned).count()
    }

    /// Makes `store` the handle for its attempt (the live projector's writer).
    pub fn register(&self, store: Arc<ViewStore>) {
        let key = (store.meta.job_id.clone(), store.meta.attempt_id.clone());
        self.created
            .entry(key.clone())
            .or_insert(store.meta.created_ms);
        let slot = Slot {
            store,
            last_used: AtomicU64::new(self.cache.now()),
            pinned: true,
            live: true,
            lease_checked: AtomicU64::new(0),
        };
        self.cache.slots.insert(key, slot);
    }

    /// Every job id, sorted.
    pub async fn jobs(&self) -> Result<Vec<String>> {
        let mut jobs = self.storage.list_jobs().await?;
        for e in self.cache.slots.iter() {
            if e.pinned && !jobs.contains(&e.key().0) {
                jobs.push(e.key().0.clone());
            }
        }
        jobs.sort();
        Ok(jobs)
    }

    /// The cached handle, if any, and whether it should be reopened live
    /// (it polls slowly and it is time to look for a projector's lease).
    fn cached(&self, key: &Key) -> Option<(Arc<ViewStore>, bool)> {
        let slot = self.cache.slots.get(key)?;
        let now = self.cache.now();
        slot.last_used.store(now, Ordering::Relaxed);
        let recheck = !slot.live
            && now.saturating_sub(slot.lease_checked.load(Ordering::Relaxed)) >= LEASE_RECHECK_US;
        if recheck {
            slot.lease_checked.store(now, Ordering::Relaxed);
        }
        Some((slot.store.clone(), recheck))
    }

    async fn has_lease(&self, job: &str, attempt: &str) -> Result<bool> {
        Ok(self
            .storage
            .get_object(job, attempt, LEASE_OBJECT)
            .await?
            .is_some())
    }

    /// One attempt's store, opened read-only on first use and cached.
    pub async fn attempt(&self, job: &str, attempt: &str) -> Result<Arc<ViewStore>> {
        validate_id("job id", job)?;
        validate_id("attempt id", attempt)?;
        let key = (job.to_owned(), attempt.to_owned());
        if let Some((store, recheck)) = self.cached(&key) {
            if !recheck || !self.has_lease(job, attempt).await? {
                return Ok(store);
            }
            // A projector started writing: follow it closely from now on.
            self.cache
                .slots
                .remove_if(&key, |_, s| !s.live && !s.pinned);
        }
        let live = self.has_lease(job, attempt).await?;
        let poll = if live {
            self.options.poll_live
        } else {
            self.options.poll_idle
        };
        let reader = self.storage.open_reader_polling(job, attempt, poll).await?;
        let store = Arc::new(
            ViewStore::open(Handle::Reader(Arc::new(reader)), job, attempt)
                .await?
                .close_on_drop(),
        );
        self.created
            .entry(key.clone())
            .or_insert(store.meta.created_ms);
        let store = {
            // A racing open of the same attempt may have won: use its handle
            // (ours closes when dropped).
            let now = self.cache.now();
            let slot = self.cache.slots.entry(key).or_insert(Slot {
                store,
                last_used: AtomicU64::new(0),
                pinned: false,
                live,
                lease_checked: AtomicU64::new(now),
            });
            slot.last_used.store(now, Ordering::Relaxed);
            slot.store.clone()
        };
        self.cache.evict_to(self.options.max_open);
        Ok(store)
    }

    /// The recorded creation time of an attempt: from `attempt.json`, else
    /// (older attempts) from its database; `None` when it holds no database.
    async fn created_ms(&self, job: &str, attempt: &str) -> Result<Option<u64>> {
        let key = (job.to_owned(), attempt.to_owned());
        if let Some(c) = self.created.get(&key) {
            return Ok(Some(*c));
        }
        let created = match self.storage.attempt_created_ms(job, attempt).await? {
            Some(c) => c,
            None => {
                if !self.storage.attempt_exists(job, attempt).await? {
                    return Ok(None);
                }
                self.attempt(job, attempt).await?.meta.created_ms
            }
        };
        self.created.insert(key, created);
        Ok(Some(created))
    }

    /// A job's attempt ids with their recorded creation time, newest first,
    /// opening no database that has an `attempt.json`.
    pub async fn attempt_ids(&self, job: &str) -> Result<Vec<(String, u64)>> {
        validate_id("job id", job)?;
        let mut names = self.storage.list_attempt_dirs(job).await?;
        for e in self.cache.slots.iter() {
            if e.pinned && e.key().0 == job && !names.contains(&e.key().1) {
                names.push(e.key().1.clone());
            }
        }
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            if let Some(c) = self.created_ms(job, &n).await? {
                out.push((n, c));
            }
        }
        out.sort_by(|a, b| (b.1, &b.0).cmp(&(a.1, &a.0)));
        Ok(out)
    }

    /// A job's latest attempt (by recorded creation), `None` when it has
    /// none; a job with a single attempt costs one listing and no read.
    pub async fn latest_attempt(&self, job: &str) -> Result<Option<String>> {
        validate_id("job id", job)?;
        if let Some(e) = self.latest.get(job) {
            if e.0.elapsed() < LATEST_TTL {
                return Ok(Some(e.1.clone()));
            }
        }
        let latest = self.list_latest_attempt(job).await?;
        if let (Some(a), true) = (&latest, self.storage.is_remote()) {
            self.latest
                .insert(job.to_owned(), (Instant::now(), a.clone()));
        }
        Ok(latest)
    }

    async fn list_latest_attempt(&self, job: &str) -> Result<Option<String>> {
        let names = self.storage.list_attempt_dirs(job).await?;
        let pinned = self
            .cache
            .slots
            .iter()
            .any(|e| e.pinned && e.key().0 == job && !names.contains(&e.key().1));
        if names.len() == 1 && !pinned {
            return Ok(names.into_iter().next());
        }
        let ids = self.attempt_ids(job).await?;
        // A replay that died part-way is skipped for the last complete (or
        // live) attempt before it; the newest one still stands when every
        // attempt is unfinished.
        for (a, _) in &ids {
            let ours = self
                .cache
                .slots
                .get(&(job.to_owned(), a.clone()))
                .is_some_and(|s| s.pinned);
            if ours
                || attempt_state::state(&self.storage, job, a).await? != AttemptState::Unfinished
            {
                return Ok(Some(a.clone()));
            }
        }
        Ok(ids.into_iter().next().map(|(a, _)| a))
    }

    /// A job's attempts, newest (by recorded creation) first, each opened.
    pub async fn attempts(&self, job: &str) -> Result<Vec<Arc<ViewStore>>> {
        let ids = self.attempt_ids(job).await?;
        let mut out = Vec::with_capacity(ids.len());
        for (n, _) in ids {
            out.push(self.attempt(job, &n).await?);
        }
        Ok(out)
    }

    /// The named attempt, or the job's latest (the only one opened).
    pub async fn resolve(&self, job: &str, attempt: Option<&str>) -> Result<Arc<ViewStore>> {
        match attempt {
            Some(a) => self.attempt(job, a).await,
            None => {
                let latest = self
                    .latest_attempt(job)
                    .await?
                    .ok_or_else(|| Error::NotFound(format!("job={job}")))?;
                self.attempt(job, &latest).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_attempts_on_s3_are_polled_as_often_as_their_projector_flushes() {
        let local = Storage::from_url("memory://catalog-poll").unwrap();
        assert_eq!(CatalogOptions::for_storage(&local).poll_live, READER_POLL);
        let s3 = Storage::from_url("s3://bucket/prefix").unwrap();
        let o = CatalogOptions::for_storage(&s3);
        assert_eq!(o.poll_live, crate::store::storage::REMOTE_FLUSH);
        assert_eq!(o.poll_idle, DEFAULT_POLL_IDLE);
    }
}
