//! The storage layer: where an attempt's bytes live and how they are laid
//! out. It owns the object store and storage URLs (`storage`), the event
//! log's key layout and segment format (`event_log`, `log_record`,
//! `segment_read`), reading views and the log back (`view_store`), view
//! snapshots for time travel (`snapshots`) and the writer's lease (`lease`).
//!
//! May use: the leaves (`error`, `clock`) and the views crate. Nothing above
//! it: it knows no source, no engine, no answer, no time travel (a read
//! layer plugs in through `view_store::ReadLayer`).

pub mod attempt_state;
pub mod event_log;
pub mod lease;
mod log_record;
mod segment_read;
pub mod snapshots;
pub mod storage;
pub mod view_store;
