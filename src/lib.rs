//! Sundial: an event-sourced projector of streaming-job state messages.
//! Records from Kafka or a file are appended to an event log in SlateDB and
//! folded into materialized views (crate `sundial-views`), served as JSON
//! over HTTP by the same code for a live job and for the history server.

pub mod api;
pub mod as_of;
pub mod bench;
pub mod bench_history;
pub mod bench_kafka;
pub mod bench_rebuild;
pub mod catalog;
pub mod cli;
pub mod codec;
pub mod commands;
pub mod cpu;
pub mod demo_kafka;
pub mod engine;
pub mod error;
pub mod event_log;
pub mod fast_json;
pub mod http;
pub mod lease;
pub mod lineage_read;
pub mod metrics;
pub mod offsets;
pub mod openapi;
pub mod overlay;
pub mod prepared;
pub mod progress;
pub mod project;
pub mod rebuild;
pub mod replay;
pub mod replay_cmd;
pub mod replay_log;
pub mod replay_topic;
pub mod segment_read;
pub mod simulate;
pub mod snapshots;
pub mod source;
pub mod storage;
pub mod summary;
pub mod view_store;
pub mod web;

pub use error::{Error, Result};
