//! The command line: the top layer, called only by the binary. It owns the
//! clap arguments (`args`), the subcommands (`commands`; `replay` for
//! `sundial replay`) and the demo (`demo`, locally or through Kafka).
//!
//! May use every layer below: the daemon (`project`), `serve`,
//! `time_travel`, `replay`, `query`, `ingest`, `store` and the leaves.

pub mod args;
pub mod commands;
pub mod demo;
mod replay;
