//! The live `/stream` of job views, shared: at most `max_streams` open per
//! server (past that a 503 with `Retry-After`), and one poll per attempt
//! however many clients follow it. The poll wakes on the live projector's
//! commits when it runs in this process, else every `STREAM_POLL`; it takes
//! the attempt's store from the catalog for each look only (so followed
//! attempts count against `--max-open` like any other read), publishes the
//! job view when the log offset moved, and ends once its last client left.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::query::api::{self, ApiError};
use crate::serve::catalog::Catalog;

/// Default bound on open streams per server.
pub const DEFAULT_MAX_STREAMS: usize = 256;
/// How often an attempt without a live feed here is looked at.
pub const STREAM_POLL: Duration = Duration::from_millis(200);

/// The newest job view of one attempt, as JSON text (`None` before the
/// first look found it).
type View = Option<Arc<str>>;
type Key = (String, String);

/// Open streams and the polls behind them.
pub struct StreamHub {
    max_streams: usize,
    slots: Arc<Semaphore>,
    feeds: Mutex<HashMap<Key, Arc<watch::Sender<View>>>>,
}

/// One client's place: the views of its attempt as they change. Dropping
/// it frees the stream slot.
pub struct Subscription {
    /// Every new job view (the current one first, once known).
    pub views: watch::Receiver<View>,
    _slot: OwnedSemaphorePermit,
}

impl StreamHub {
    /// A hub allowing `max_streams` open streams.
    pub fn new(max_streams: usize) -> Self {
        StreamHub {
            max_streams,
            slots: Arc::new(Semaphore::new(max_streams)),
            feeds: Mutex::new(HashMap::new()),
        }
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.max_streams - self.slots.available_permits()
    }

    /// Attempts polled now (one per attempt followed, whatever the clients).
    pub fn polls(&self) -> usize {
        self.feeds.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// A place following `job`'s `attempt`, or a 503 when every slot is
    /// taken. `live` is the commit feed of a projector writing that very
    /// attempt in this process.
    pub fn subscribe(
        self: &Arc<Self>,
        catalog: &Arc<Catalog>,
        job: &str,
        attempt: &str,
        live: Option<watch::Receiver<u64>>,
    ) -> Result<Subscription, ApiError> {
        let slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError {
                status: 503,
                message: format!(
                    "busy: {} streams are open on this server (--max-streams); retry shortly",
                    self.max_streams
                ),
            })?;
        let key = (job.to_owned(), attempt.to_owned());
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        let feed = feeds.entry(key.clone()).or_insert_with(|| {
            let feed = Arc::new(watch::channel(None).0);
            tokio::spawn(poll(self.clone(), catalog.clone(), key, feed.clone(), live));
            feed
        });
        let mut views = feed.subscribe();
        // The current view (if known yet) is the stream's first event.
        views.mark_changed();
        Ok(Subscription { views, _slot: slot })
    }
}

/// The one poll of an attempt; ends when no client follows it any more.
async fn poll(
    hub: Arc<StreamHub>,
    catalog: Arc<Catalog>,
    key: Key,
    feed: Arc<watch::Sender<View>>,
    mut live: Option<watch::Receiver<u64>>,
) {
    let mut last = None;
    loop {
        {
            // Under the lock a new client cannot subscribe meanwhile.
            let mut feeds = hub.feeds.lock().unwrap_or_else(|e| e.into_inner());
            if feed.receiver_count() == 0 {
                feeds.remove(&key);
                return;
            }
        }
        if let Ok(store) = catalog.attempt(&key.0, &key.1).await {
            let offset = store.job().await.map(|j| j.log_offset).ok();
            if offset.is_some() && offset != last {
                if let Ok(view) = api::job(&store).await {
                    feed.send_replace(Some(Arc::from(view.to_string())));
                    last = offset;
                }
            }
        }
        let next = async {
            match live.as_mut() {
                Some(rx) => {
                    if rx.changed().await.is_err() {
                        live = None;
                    }
                }
                None => tokio::time::sleep(STREAM_POLL).await,
            }
        };
        tokio::select! {
            _ = next => {}
            _ = feed.closed() => {}
        }
    }
}
