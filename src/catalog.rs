//! Which jobs and attempts exist under a storage URL, and their open
//! read handles. A job resolves to its latest attempt by recorded creation
//! time (not by name). A live projector registers its writer's handle here
//! so its own HTTP API reads the freshest state.

use std::sync::Arc;

use dashmap::DashMap;

use crate::error::{Error, Result};
use crate::storage::{validate_id, Storage};
use crate::view_store::{Handle, ViewStore};

/// Jobs, attempts and open handles over one storage.
pub struct Catalog {
    storage: Storage,
    open: DashMap<(String, String), Arc<ViewStore>>,
}

impl Catalog {
    /// A catalog over `storage`; nothing is opened until asked.
    pub fn new(storage: Storage) -> Self {
        Catalog {
            storage,
            open: DashMap::new(),
        }
    }

    /// The storage it reads.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Makes `store` the handle for its attempt (the live projector's writer).
    pub fn register(&self, store: Arc<ViewStore>) {
        let key = (store.meta.job_id.clone(), store.meta.attempt_id.clone());
        self.open.insert(key, store);
    }

    /// Every job id, sorted.
    pub async fn jobs(&self) -> Result<Vec<String>> {
        let mut jobs = self.storage.list_jobs().await?;
        for e in self.open.iter() {
            if !jobs.contains(&e.key().0) {
                jobs.push(e.key().0.clone());
            }
        }
        jobs.sort();
        Ok(jobs)
    }

    /// One attempt's store, opened read-only on first use.
    pub async fn attempt(&self, job: &str, attempt: &str) -> Result<Arc<ViewStore>> {
        validate_id("job id", job)?;
        validate_id("attempt id", attempt)?;
        let key = (job.to_owned(), attempt.to_owned());
        if let Some(s) = self.open.get(&key) {
            return Ok(s.clone());
        }
        let reader = self.storage.open_reader(job, attempt).await?;
        let store =
            Arc::new(ViewStore::open(Handle::Reader(Arc::new(reader)), job, attempt).await?);
        Ok(self.open.entry(key).or_insert(store).clone())
    }

    /// A job's attempts, newest (by recorded creation) first.
    pub async fn attempts(&self, job: &str) -> Result<Vec<Arc<ViewStore>>> {
        validate_id("job id", job)?;
        let mut names = self.storage.list_attempts(job).await?;
        for e in self.open.iter() {
            if e.key().0 == job && !names.contains(&e.key().1) {
                names.push(e.key().1.clone());
            }
        }
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            out.push(self.attempt(job, &n).await?);
        }
        out.sort_by(|a, b| {
            (b.meta.created_ms, &b.meta.attempt_id).cmp(&(a.meta.created_ms, &a.meta.attempt_id))
        });
        Ok(out)
    }

    /// The named attempt, or the job's latest.
    pub async fn resolve(&self, job: &str, attempt: Option<&str>) -> Result<Arc<ViewStore>> {
        match attempt {
            Some(a) => self.attempt(job, a).await,
            None => self
                .attempts(job)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| Error::NotFound(format!("job={job}"))),
        }
    }
}
