//! `sundial bench`: the benchmarks behind the binary's `bench` subcommand.
//! Compiled into the binary only (`main.rs` declares this module); the
//! library never sees it, so product code cannot import it. It uses the
//! library's public API like any other client.
//!
//! `ingest`: the ingest path on simulated records; `history`: the history
//! server over many jobs; `kafka`: the daemon against a real broker;
//! `rebuild`: rebuilds and `as_of` on a long log; `cpu`: CPU time meters;
//! `net`: loopback helpers, shared with the integration tests.

pub mod cpu;
pub mod history;
pub mod ingest;
pub mod kafka;
pub mod net;
pub mod rebuild;

use std::time::Duration;

use sundial::{Error, Result};

/// `n` events in `secs` as a rate, with the figures it comes from and the
/// process's peak resident memory since the figure printed before it
/// ([`cpu::peak_rss`]).
pub fn rate(n: usize, secs: f64) -> String {
    format!(
        "{:.0} events/s ({n} events in {secs:.3} s, {})",
        n as f64 / secs.max(1e-9),
        cpu::peak_rss()
    )
}

/// [`net::http_get`] from async code (on a blocking thread): (status, body).
pub async fn http_get(addr: &str, path: &str) -> Result<(u16, String)> {
    let (addr, path) = (addr.to_owned(), path.to_owned());
    tokio::task::spawn_blocking(move || net::http_get(&addr, &path, Duration::from_secs(30)))
        .await
        .map_err(|e| Error::invalid("http", e.to_string()))?
        .map_err(Error::from)
}
