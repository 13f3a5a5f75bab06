//! Bounded time travel: every `as_of` answer is built on a runtime of its
//! own with `workers` threads, never on the server's async workers, so
//! decoding and replaying up to a snapshot interval of records never
//! stalls `/health` or other routes. At most `workers` answers are built at
//! once and `queue` more wait; past that a request is refused at once with
//! a 503 (and `Retry-After`), so memory stays at most `workers`
//! reconstructions (plus `as_of`'s small cache) whatever the number of
//! clients. The runtime starts on first use and ends with the pool.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

use crate::query::api::ApiError;

/// Default number of `as_of` answers built at once.
pub const DEFAULT_WORKERS: usize = 2;
/// Default number of `as_of` requests waiting for a worker.
pub const DEFAULT_QUEUE: usize = 16;

/// The time-travel runtime and its admission bound.
pub struct AsOfPool {
    workers: usize,
    queue: usize,
    /// Requests admitted and not yet finished (building or waiting).
    admitted: Arc<AtomicUsize>,
    /// One permit per answer built at once.
    building: Arc<Semaphore>,
    runtime: OnceLock<Option<tokio::runtime::Runtime>>,
}

impl AsOfPool {
    /// A pool building `workers` answers at once (at least 1) on as many
    /// threads, with `queue` waiting places.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        AsOfPool {
            workers,
            queue,
            admitted: Arc::new(AtomicUsize::new(0)),
            building: Arc::new(Semaphore::new(workers)),
            runtime: OnceLock::new(),
        }
    }

    /// Requests being built or waiting now.
    pub fn admitted(&self) -> usize {
        self.admitted.load(Ordering::Relaxed)
    }

    fn runtime(&self) -> Option<&tokio::runtime::Runtime> {
        self.runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(self.workers)
                    .thread_name("sundial-as-of")
                    .enable_all()
                    .build()
                    .map_err(|e| tracing::warn!(error = %e, "cannot start the as_of runtime"))
                    .ok()
            })
            .as_ref()
    }

    /// Runs `answer` on the time-travel runtime when there is room, else a
    /// 503. A request whose client left before its turn is skipped.
    pub async fn run<T: Send + 'static>(
        &self,
        answer: impl Future<Output = Result<T, ApiError>> + Send + 'static,
    ) -> Result<T, ApiError> {
        let cap = self.workers + self.queue;
        let taken = self
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            });
        if taken.is_err() {
            return Err(busy(cap));
        }
        let admitted = Admitted(self.admitted.clone());
        let Some(rt) = self.runtime() else {
            return Err(busy(cap));
        };
        let building = self.building.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        rt.spawn(async move {
            let Ok(permit) = building.acquire_owned().await else {
                return;
            };
            if tx.is_closed() {
                return;
            }
            let out = answer.await;
            // Released before the answer is handed over: once a caller
            // has its answer, its place is free.
            drop((permit, admitted));
            let _ = tx.send(out);
        });
        rx.await.unwrap_or_else(|_| Err(busy(cap)))
    }
}

impl Drop for AsOfPool {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which an async context forbids.
        if let Some(Some(rt)) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Releases an admission when the work is done (or dropped unrun).
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn busy(cap: usize) -> ApiError {
    ApiError {
        status: 503,
        message: format!("busy: {cap} as_of answers are being built or waiting; retry shortly"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_workers_and_queue_requests_get_503_and_the_rest_their_answer() {
        let pool = Arc::new(AsOfPool::new(1, 2));
        let (go_tx, go_rx) = tokio::sync::watch::channel(false);
        let mut waiting = Vec::new();
        for i in 0..3 {
            let (pool, mut go) = (pool.clone(), go_rx.clone());
            waiting.push(tokio::spawn(async move {
                pool.run(async move {
                    let _ = go.wait_for(|g| *g).await;
                    Ok(i)
                })
                .await
            }));
        }
        while pool.admitted() < 3 {
            tokio::task::yield_now().await;
        }
        let refused = pool.run(async { Ok(9) }).await.unwrap_err();
        assert_eq!(refused.status, 503);
        go_tx.send(true).unwrap();
        let mut answers = Vec::new();
        for w in waiting {
            answers.push(w.await.unwrap().unwrap());
        }
        assert_eq!(answers, vec![0, 1, 2]);
        assert_eq!(pool.admitted(), 0);
        assert_eq!(pool.run(async { Ok(7) }).await.unwrap(), 7);
    }

    #[test]
    fn answers_are_built_off_the_calling_thread() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let pool = AsOfPool::new(1, 0);
        let here = std::thread::current().id();
        let there = rt
            .block_on(pool.run(async { Ok(std::thread::current().id()) }))
            .unwrap();
        assert_ne!(here, there);
    }
}
