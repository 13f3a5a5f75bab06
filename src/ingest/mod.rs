//! The ingest layer: turning raw records into log segments and view rows.
//! It owns the source record type (`record`), the codec and its fast JSON
//! reader (`codec`, `fast_json`), the sources (`source`: a file or stdin,
//! Kafka), decoding (`decode`), batch preparation ahead of the engine
//! (`prepared`) and the engine that commits a batch's segment and rows
//! together (`engine`).
//!
//! May use: `store` and the leaves (`error`, `clock`, `simulate` in tests).

pub mod codec;
pub mod decode;
pub mod engine;
mod fast_json;
pub(crate) mod prepared;
pub mod record;
pub mod source;
