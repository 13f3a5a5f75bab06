//! Where attempts live: a storage URL (plain path, `file://`, `s3://`,
//! `memory://`) becomes an object store, and `{base}/{job}/{attempt}/` a
//! SlateDB database in it. Owns id validation (ids are path segments), job
//! and attempt discovery, and opening a database as its one writer or as a
//! read-only follower.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use object_store::path::Path;
use object_store::{memory::InMemory, ObjectStore, ObjectStoreExt};
use slatedb::config::DbReaderOptions;
use slatedb::db_cache::moka::{MokaCache, MokaCacheOptions};
use slatedb::db_cache::{DbCache, SplitCache};
use slatedb::{Db, DbReader, DbReaderMode, Settings};

use crate::error::{Error, Result};
use crate::store::event_log::AttemptMeta;

/// Name of the summary object in an attempt's directory.
pub const SUMMARY_OBJECT: &str = "summary.json";

/// How often a read-only follower looks for a writer's new data.
pub const READER_POLL: Duration = Duration::from_millis(100);

/// How often a writer makes what it wrote durable on local disk or in
/// memory, where a write costs nothing: SlateDB's own default.
pub const LOCAL_FLUSH: Duration = Duration::from_millis(100);
/// The same on S3, where every flush is a PUT request while records flow:
/// 1 s is ~86 k PUTs a day per live job instead of ~864 k (SlateDB puts the
/// 100 ms default at ~$130 a month on S3 standard). Nothing is lost by
/// waiting longer: a crash re-reads the records that were not yet durable.
pub const REMOTE_FLUSH: Duration = Duration::from_secs(1);

/// L0 tables a writer may hold before it waits for compaction (SlateDB's
/// default is 8). Every view snapshot flushes the memtable into one, and
/// the compactor looks for work every 5 s: a rebuild taking a snapshot
/// every half second stalled at 8 for most of its time (figures: docs/performance.md, "Measured choices in the code").
/// A point read checks each table's bloom filter first.
pub const L0_MAX_SSTS: usize = 32;

/// Bytes of SST blocks kept in memory, shared by every database this
/// process opens.
pub const BLOCK_CACHE_BYTES: u64 = 256 << 20;
/// Bytes of SST indexes and filters kept in memory, shared likewise.
pub const META_CACHE_BYTES: u64 = 64 << 20;

/// The process's one cache of SST blocks, indexes and filters, for
/// read-only handles (`serve`, `as_of`). Without it
/// (SlateDB builds none unless asked) every read fetched its table's index,
/// filter and block from the store again (figures: docs/performance.md, "Measured choices in the code"). One cache for
/// all handles, not SlateDB's default 640 MB each, so `serve`'s memory stays
/// bounded however many attempts it opens.
fn db_cache() -> Arc<dyn DbCache> {
    static CACHE: OnceLock<Arc<dyn DbCache>> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            let moka = |bytes| -> Arc<dyn DbCache> {
                Arc::new(MokaCache::new_with_opts(MokaCacheOptions {
                    max_capacity: bytes,
                    time_to_live: None,
                    time_to_idle: None,
                }))
            };
            Arc::new(
                SplitCache::new()
                    .with_block_cache(Some(moka(BLOCK_CACHE_BYTES)))
                    .with_meta_cache(Some(moka(META_CACHE_BYTES)))
                    .build(),
            )
        })
        .clone()
}

/// The object beside an attempt's database recording its identity and
/// creation time (JSON `AttemptMeta`), so the latest attempt of a job can be
/// picked without opening every attempt's database.
pub const ATTEMPT_OBJECT: &str = "attempt.json";

/// A storage URL resolved to an object store and a path prefix in it.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    url: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.url)
    }
}

/// Checks that `id` is a safe path segment: `[A-Za-z0-9._-]{1,128}`, not `.`/`..`.
pub fn validate_id(what: &'static str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            what,
            format!("{id:?}: use 1-128 characters of A-Z a-z 0-9 . _ - (not . or ..)"),
        ))
    }
}

fn memory_stores() -> &'static Mutex<HashMap<String, Arc<InMemory>>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

impl Storage {
    /// Resolves a storage URL. `memory://NAME` stores live as long as the process.
    pub fn from_url(url: &str) -> Result<Self> {
        let (store, prefix): (Arc<dyn ObjectStore>, String) =
            if let Some(name) = url.strip_prefix("memory://") {
                let mut stores = memory_stores().lock().unwrap_or_else(|e| e.into_inner());
                let s = stores.entry(name.to_owned()).or_default().clone();
                (s, String::new())
            } else if let Some(rest) = url.strip_prefix("s3://") {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(Error::invalid("storage url", format!("{url}: no bucket")));
                }
                let s3 = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|e| Error::invalid("storage url", format!("{url}: {e}")))?;
                (Arc::new(s3), prefix.trim_matches('/').to_owned())
            } else if url.contains("://") && !url.starts_with("file://") {
                return Err(Error::invalid(
                    "storage url",
                    format!("{url}: use a path, file://, s3:// or memory://"),
                ));
            } else {
                let path = url.strip_prefix("file://").unwrap_or(url);
                std::fs::create_dir_all(path).map_err(|e| {
                    Error::invalid(
                        "storage url",
                        format!("{url}: cannot create directory: {e}"),
                    )
                })?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(path)
                    .map_err(|e| Error::invalid("storage url", format!("{url}: {e}")))?;
                (Arc::new(fs), String::new())
            };
        Ok(Storage {
            store,
            prefix: Path::from(prefix),
            url: url.to_owned(),
        })
    }

    /// Resolves a storage URL that must already hold data: a local path
    /// that does not exist is an `Invalid` error instead of a new empty
    /// directory (for readers such as `serve`; only writers create it).
    pub fn open_existing(url: &str) -> Result<Self> {
        let local = !url.contains("://") || url.starts_with("file://");
        if local {
            let path = url.strip_prefix("file://").unwrap_or(url);
            if !std::path::Path::new(path).is_dir() {
                return Err(Error::invalid(
                    "storage url",
                    format!("{url}: no such directory (only writers create one: project, replay --input/--brokers)"),
                ));
            }
        }
        Self::from_url(url)
    }

    /// The URL this storage was opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bucket of an `s3://` URL.
    fn bucket(&self) -> Option<&str> {
        let rest = self.url.strip_prefix("s3://")?;
        Some(rest.split_once('/').map_or(rest, |(b, _)| b))
    }

    /// An object-store error as a one-line error that says what to do: a
    /// missing bucket or an unreachable endpoint names the bucket and URL.
    fn store_error(&self, e: object_store::Error) -> Error {
        let text = e.to_string().replace(['\n', '\r'], " ");
        let Some(bucket) = self.bucket() else {
            return e.into();
        };
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .or_else(|_| std::env::var("AWS_ENDPOINT"))
            .unwrap_or_else(|_| "the default AWS endpoint".to_owned());
        if text.contains("NoSuchBucket") || text.contains("does not exist") {
            Error::invalid(
                "storage url",
                format!(
                    "{}: bucket {bucket:?} does not exist at {endpoint}; create it \
                     (aws s3 mb s3://{bucket}) or fix the URL / AWS_ENDPOINT_URL",
                    self.url
                ),
            )
        } else if matches!(e, object_store::Error::Generic { .. }) {
            Error::Unavailable(format!(
                "{}: bucket {bucket:?} at {endpoint} failed: {text}; check AWS_ENDPOINT_URL, \
                 AWS_REGION and the AWS_* credentials",
                self.url
            ))
        } else {
            e.into()
        }
    }

    /// Checks that the storage answers (the bucket exists, credentials work)
    /// with one listing; fails fast with a one-line error otherwise.
    pub async fn check(&self) -> Result<()> {
        self.store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(())
    }

    /// The id that keeps an attempt's entries apart from every other
    /// database's in the shared cache (the same for all its readers: SST
    /// ids are unique within one database).
    fn cache_id(&self, job: &str, attempt: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.url(), job, attempt).hash(&mut h);
        h.finish()
    }

    /// The database path of an attempt.
    pub fn db_path(&self, job: &str, attempt: &str) -> Path {
        self.prefix.clone().join(job).join(attempt)
    }

    fn settings(flush: Duration) -> Settings {
        Settings {
            object_store_max_retries: Some(3),
            flush_interval: Some(flush),
            l0_max_ssts: L0_MAX_SSTS,
            l0_max_ssts_per_key: L0_MAX_SSTS,
            ..Settings::default()
        }
    }

    /// Whether every object written costs a request to a remote service.
    pub fn is_remote(&self) -> bool {
        self.url.starts_with("s3://")
    }

    /// How often a writer here makes its writes durable unless told
    /// otherwise: [`REMOTE_FLUSH`] on S3, [`LOCAL_FLUSH`] elsewhere.
    pub fn default_flush_interval(&self) -> Duration {
        if self.is_remote() {
            REMOTE_FLUSH
        } else {
            LOCAL_FLUSH
        }
    }

    /// Opens an attempt as its only writer (fencing any older writer), with
    /// the storage's default flush interval. A new attempt also gets its
    /// `attempt.json` (creation time) beside it.
    pub async fn open_writer(&self, job: &str, attempt: &str) -> Result<Db> {
        self.open_writer_with(job, attempt, self.default_flush_interval())
            .await
    }

    /// [`Storage::open_writer`], making writes durable every `flush` (the
    /// write-ahead log's object interval) rather than the default.
    pub async fn open_writer_with(&self, job: &str, attempt: &str, flush: Duration) -> Result<Db> {
        self.open_writer_settings(job, attempt, Self::settings(flush))
            .await
    }

    /// [`Storage::open_writer`] for a replay or rebuild: without SlateDB's
    /// write-ahead log, writes become durable when the memtable is flushed
    /// (every 64 MB, at every view snapshot and at the end) instead of
    /// being written twice, to the log first (figures: docs/performance.md, "Measured choices in the code"). A crash loses what was not
    /// flushed, never the consistency of what was: each flush holds whole
    /// batches, the position with them. Nobody follows a replay live.
    pub async fn open_bulk_writer(&self, job: &str, attempt: &str) -> Result<Db> {
        let settings = Settings {
            wal_enabled: false,
            ..Self::settings(self.default_flush_interval())
        };
        self.open_writer_settings(job, attempt, settings).await
    }

    async fn open_writer_settings(
        &self,
        job: &str,
        attempt: &str,
        settings: Settings,
    ) -> Result<Db> {
        validate_id("job id", job)?;
        validate_id("attempt id", attempt)?;
        // SlateDB would report a missing bucket less clearly (or keep retrying).
        self.check().await?;
        let existed = self.attempt_exists(job, attempt).await?;
        // A summary sealed by an earlier writer stops being the truth now.
        self.delete_object(job, attempt, SUMMARY_OBJECT).await?;
        let created_ms = crate::clock::now_ms();
        let db = Db::builder(self.db_path(job, attempt), self.store.clone())
            .with_settings(settings)
            // The writer reads little (rows its cache evicted); a block
            // cache there slowed `replay` down (docs/performance.md).
            .with_db_cache_disabled()
            .build()
            .await?;
        if !existed
            && self
                .get_object(job, attempt, ATTEMPT_OBJECT)
                .await?
                .is_none()
        {
            let meta = AttemptMeta {
                job_id: job.to_owned(),
                attempt_id: attempt.to_owned(),
                created_ms,
                source: String::new(),
                in_progress: false,
            };
            let bytes = serde_json::to_vec(&meta).unwrap_or_default();
            self.put_object(job, attempt, ATTEMPT_OBJECT, bytes).await?;
        }
        Ok(db)
    }

    /// The creation time recorded in an attempt's `attempt.json`, or `None`
    /// when it has none (attempts made before it existed).
    pub async fn attempt_created_ms(&self, job: &str, attempt: &str) -> Result<Option<u64>> {
        Ok(self
            .get_object(job, attempt, ATTEMPT_OBJECT)
            .await?
            .and_then(|b| serde_json::from_slice::<AttemptMeta>(&b).ok())
            .map(|m| m.created_ms))
    }

    /// Opens an attempt read-only, following its writer if one is live.
    pub async fn open_reader(&self, job: &str, attempt: &str) -> Result<DbReader> {
        self.open_reader_polling(job, attempt, READER_POLL).await
    }

    /// `open_reader` looking for the writer's new data every `poll` (each
    /// look lists the store: a slower poll for attempts nobody writes).
    pub async fn open_reader_polling(
        &self,
        job: &str,
        attempt: &str,
        poll: Duration,
    ) -> Result<DbReader> {
        validate_id("job id", job)?;
        validate_id("attempt id", attempt)?;
        if !self.attempt_exists(job, attempt).await? {
            return Err(Error::NotFound(format!("job={job} attempt={attempt}")));
        }
        // FollowLatest writes nothing to the store: a reader never changes it.
        self.reader(job, attempt, poll, DbReaderMode::FollowLatest)
            .await
    }

    /// A read-only handle in `mode`, on the shared read cache.
    async fn reader(
        &self,
        job: &str,
        attempt: &str,
        poll: Duration,
        mode: DbReaderMode,
    ) -> Result<DbReader> {
        let options = DbReaderOptions {
            manifest_poll_interval: poll,
            object_store_max_retries: Some(3),
            ..DbReaderOptions::default()
        };
        Ok(
            DbReader::builder(self.db_path(job, attempt), self.store.clone())
                .with_options(options)
                .with_db_cache(db_cache(), self.cache_id(job, attempt))
                .with_reader_mode(mode)
                .build()
                .await?,
        )
    }

    /// Opens an attempt read-only pinned to one of its checkpoints (a view
    /// snapshot, see `snapshots`): it never follows later writes.
    pub async fn open_checkpoint(
        &self,
        job: &str,
        attempt: &str,
        checkpoint: uuid::Uuid,
    ) -> Result<DbReader> {
        validate_id("job id", job)?;
        validate_id("attempt id", attempt)?;
        // A pinned checkpoint never changes: the poll interval is moot.
        let poll = DbReaderOptions::default().manifest_poll_interval;
        self.reader(job, attempt, poll, DbReaderMode::Checkpoint(checkpoint))
            .await
    }

    /// A small object beside an attempt's database (`{job}/{attempt}/{name}`),
    /// or `None` when absent.
    pub async fn get_object(
        &self,
        job: &str,
        attempt: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>> {
        let path = self.db_path(job, attempt).join(name);
        match self.store.get(&path).await {
            Ok(r) => Ok(Some(r.bytes().await?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a small object beside an attempt's database.
    pub async fn put_object(
        &self,
        job: &str,
        attempt: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<()> {
        let path = self.db_path(job, attempt).join(name);
        self.store.put(&path, bytes.into()).await?;
        Ok(())
    }

    /// Writes a small object beside an attempt's database only if it does
    /// not exist yet (an atomic create where the store has one): false
    /// when another process created it first. A store without conditional
    /// writes overwrites instead (the lease's heartbeat check then tells
    /// the loser it lost).
    pub async fn create_object(
        &self,
        job: &str,
        attempt: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<bool> {
        use slatedb::object_store::{PutMode, PutOptions};
        let path = self.db_path(job, attempt).join(name);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self.store.put_opts(&path, bytes.clone().into(), opts).await {
            Ok(_) => Ok(true),
            Err(slatedb::object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(slatedb::object_store::Error::NotImplemented { .. }) => {
                self.store.put(&path, bytes.into()).await?;
                Ok(true)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a small object beside an attempt's database (absent is fine).
    pub async fn delete_object(&self, job: &str, attempt: &str, name: &str) -> Result<()> {
        let path = self.db_path(job, attempt).join(name);
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn children(&self, at: &Path) -> Result<Vec<String>> {
        let listing = self
            .store
            .list_with_delimiter(Some(at))
            .await
            .map_err(|e| self.store_error(e))?;
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .filter(|n| validate_id("id", n).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every job id under the base, sorted.
    pub async fn list_jobs(&self) -> Result<Vec<String>> {
        self.children(&self.prefix).await
    }

    /// Every attempt folder name of a job, sorted, without checking that each
    /// holds a database (one listing).
    pub async fn list_attempt_dirs(&self, job: &str) -> Result<Vec<String>> {
        validate_id("job id", job)?;
        self.children(&self.prefix.clone().join(job)).await
    }

    /// Every attempt id of a job that holds a database, sorted by name.
    pub async fn list_attempts(&self, job: &str) -> Result<Vec<String>> {
        validate_id("job id", job)?;
        let mut out = Vec::new();
        for a in self.children(&self.prefix.clone().join(job)).await? {
            if self.attempt_exists(job, &a).await? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// True when the attempt has a SlateDB manifest.
    pub async fn attempt_exists(&self, job: &str, attempt: &str) -> Result<bool> {
        let manifest = self.db_path(job, attempt).join("manifest");
        let listing = self
            .store
            .list_with_delimiter(Some(&manifest))
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(!listing.objects.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_path_segments() {
        for ok in ["job-1", "a.b_c", "X"] {
            assert!(validate_id("id", ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(129);
        for bad in ["", ".", "..", "a/b", "a\0b", "a b", "%2e", long.as_str()] {
            assert!(validate_id("id", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_resolve() {
        assert!(Storage::from_url("memory://t").is_ok());
        assert!(Storage::from_url("ftp://x").is_err());
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::from_url(&format!("file://{}", dir.path().display())).unwrap();
        assert_eq!(s.db_path("j", "a").as_ref(), "j/a");
        assert!(!s.is_remote());
        assert_eq!(s.default_flush_interval(), LOCAL_FLUSH);
        let s3 = Storage::from_url("s3://bucket/prefix").unwrap();
        assert!(s3.is_remote());
        assert_eq!(s3.default_flush_interval(), REMOTE_FLUSH);
    }
}
