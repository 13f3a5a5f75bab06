//! The time-travel layer: an attempt's views as they stood at a past log
//! offset (`?as_of=K`). It owns building and caching those stores
//! (`as_of`) and the overlay of replayed rows over a snapshot that they
//! read through (`overlay`, a `view_store::ReadLayer`).
//!
//! May use: `replay` (its log reader), `query`, `ingest`, `store` and the
//! leaves.

pub mod as_of;
mod overlay;
