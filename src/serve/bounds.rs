//! Every bound one HTTP server keeps on what clients can make it hold:
//! open connections and the time to send a request head
//! (`listener`), `as_of` answers built at once and waiting
//! (`as_of_pool`), open streams (`stream_hub`). Set from `serve`'s and
//! `project`'s flags; the defaults suit a 2-core machine.

use std::sync::Arc;
use std::time::Duration;

use crate::serve::as_of_pool::AsOfPool;
use crate::serve::listener::ConnLimits;
use crate::serve::stream_hub::StreamHub;

/// The configured numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Time a client has to send a whole request head.
    pub header_timeout: Duration,
    /// Most `/stream` clients at once.
    pub max_streams: usize,
    /// `as_of` answers built at once (threads of their own).
    pub as_of_workers: usize,
    /// `as_of` requests waiting beyond those.
    pub as_of_queue: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        let conn = ConnLimits::default();
        ServeLimits {
            max_connections: conn.max_connections,
            header_timeout: conn.header_timeout,
            max_streams: crate::serve::stream_hub::DEFAULT_MAX_STREAMS,
            as_of_workers: crate::serve::as_of_pool::DEFAULT_WORKERS,
            as_of_queue: crate::serve::as_of_pool::DEFAULT_QUEUE,
        }
    }
}

/// The bounds in force, shared by the handlers of one server.
#[derive(Clone)]
pub struct Bounds {
    /// Connection bounds, applied by the accept loop.
    pub conn: ConnLimits,
    /// Where `as_of` answers are built.
    pub as_of: Arc<AsOfPool>,
    /// Open streams and their shared polls.
    pub streams: Arc<StreamHub>,
}

impl Bounds {
    /// The bounds `limits` describes.
    pub fn new(limits: ServeLimits) -> Self {
        Bounds {
            conn: ConnLimits {
                max_connections: limits.max_connections.max(1),
                header_timeout: limits.header_timeout,
            },
            as_of: Arc::new(AsOfPool::new(limits.as_of_workers, limits.as_of_queue)),
            streams: Arc::new(StreamHub::new(limits.max_streams)),
        }
    }
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds::new(ServeLimits::default())
    }
}
