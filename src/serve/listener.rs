//! Accepting HTTP connections within bounds: at most `max_connections`
//! open at once (the accept loop waits for a free slot; the kernel's
//! backlog holds the rest), a request head must arrive within
//! `header_timeout` (hyper's own timer: a client sending half a header, or
//! an idle keep-alive connection, is closed then) and fit in
//! `max_head_bytes`, HTTP/2 clients get a few streams each. Hyper's own
//! 400/414/431 answers come back in the API's JSON error shape
//! (`head_errors`). Owns no routes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::serve::head_errors::{JsonHeadErrors, MAX_HEAD_BYTES};

/// Default bound on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;
/// Default time a client has to send a whole request head.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent requests on one HTTP/2 connection.
const H2_STREAMS: u32 = 16;
/// How long a shutdown waits for open responses (streams never end).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The connection bounds of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Most connections open at once (at least 1).
    pub max_connections: usize,
    /// A request head not complete this long after the server began to
    /// wait for it closes the connection.
    pub header_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves,
/// then lets open responses finish for a few seconds.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_STREAMS)
        .max_header_list_size(MAX_HEAD_BYTES as u32);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let tcp = tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let io = TokioIo::new(JsonHeadErrors::new(tcp));
        let conn = builder
            .serve_connection_with_upgrades(io, TowerToHyperService::new(app.clone()))
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client going away mid-answer is not the server's error.
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    Ok(())
}

/// After a failed accept: a connection reset before it was accepted is
/// nothing; anything else (out of file descriptors) is logged and the loop
/// waits a little, so it does not spin while the process has no fds left.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %e, "accept failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
