//! Sundial: an event-sourced projector of streaming-job state messages.
//! Records from Kafka or a file are appended to an event log in SlateDB and
//! folded into materialized views (crate `sundial-views`), served as JSON
//! over HTTP by the same code for a live job and for the history server.
//!
//! The modules are layers, each importing only those below it (checked by
//! `scripts/check-layers.py`, part of the test command); they are private,
//! and the names below are the library's API: what the binary, its
//! benchmarks and the tests use.
//!
//! ```text
//! cli            the command line (called by the binary)
//! project        the projector daemon: Kafka -> engine -> HTTP, live
//! serve          axum router, web assets, OpenAPI, Prometheus, catalog
//! time_travel    views as of a past log offset
//! replay         file / topic / log replays, rebuilds, the commit loop
//! query          the API's answers, from stored views
//! ingest         sources, codec, batch preparation, the engine
//! store          object store, event log, view rows, snapshots, lease
//! error, clock, shutdown, simulate: leaves any layer may use
//! ```

mod cli;
mod clock;
mod error;
mod ingest;
mod project;
mod query;
mod replay;
mod serve;
mod shutdown;
pub mod simulate;
mod store;
mod time_travel;

pub use clock::now_ms;
pub use error::{Error, ErrorKind, Result};

// Storage and reading it back.
pub use store::lease::{self, Lease};
pub use store::storage::{Storage, LOCAL_FLUSH, READER_POLL, SUMMARY_OBJECT};
pub use store::view_store::{Handle, ViewStore};
pub use store::{attempt_state, event_log, snapshots};

// Ingest.
pub use ingest::engine::Engine;
pub use ingest::record::SourceRecord;
pub use ingest::{codec, decode, source};

// Answers and replays.
pub use query::{api, summary};
pub use replay::log::{replay_from_log, SeqRange};
pub use replay::rebuild::rebuild_views;
pub use replay::target::{replay_batches, replay_file, ReplayOptions, Summary, DEFAULT_BATCH};
pub use time_travel::as_of;

// Serving, the daemon, the command line.
pub use cli::args::{Cli, Command};
pub use cli::{commands, demo};
pub use project::{run as run_daemon, ProjectOptions, DEFAULT_BATCH_MAX, DEFAULT_LINGER};
pub use serve::bounds::{Bounds, ServeLimits};
pub use serve::catalog::{Catalog, CatalogOptions};
pub use serve::http::{router, AppState};
pub use serve::prometheus::Metrics;
