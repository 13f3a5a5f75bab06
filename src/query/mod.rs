//! The query layer: the answers of the HTTP API as JSON, computed from one
//! attempt's stored views. It owns the answers (`api`), what they share
//! (`params`: parameters, paging, the error), lineage reads (`lineage_read`)
//! and the stored `summary.json` of an attempt (`summary`).
//!
//! May use: `store`, `ingest` (the codec, to show raw records) and the
//! leaves. Knows no HTTP and no time travel: a time-travel store is a
//! `ViewStore` like any other.

pub mod api;
pub mod exception_text;
mod lineage_read;
mod params;
pub mod summary;
