//! The replay layer: batch runs that feed the engine from a finished
//! source. It owns the commit loop every replay shares (`target`), file and
//! stdin replays (in `target`), topic replays (`topic`, with Kafka offset
//! ranges in `offsets`), replays from an attempt's own log (`log`), view
//! rebuilds in place (`rebuild`) and the progress line (`progress`).
//!
//! May use: `query` (the summary), `ingest`, `store` and the leaves.

pub mod log;
pub(crate) mod offsets;
mod progress;
pub mod rebuild;
pub mod target;
pub(crate) mod topic;
