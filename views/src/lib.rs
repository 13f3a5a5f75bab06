//! Sundial's views: the state-message model and the pure, deterministic
//! projections that turn a job's event log into the views users query.
//! No I/O, no clock, no randomness: the same log always yields the same rows.
//! Adding a view is one file and one line in [`registry`].

pub mod checkpoints;
pub mod child_rows;
pub mod counts;
pub mod dead_letters;
pub mod duplicates;
pub mod event;
pub mod exception_groups;
pub mod exceptions;
pub mod job;
pub mod lineage;
pub mod metrics;
pub mod partition_metrics;
pub mod partitions;
pub mod prefetch;
pub mod projection;
pub mod projector;
pub mod rollup;
pub mod runtime;
pub mod sequence_bytes;
pub mod sequence_row;
pub mod sequences;
pub mod stage;
#[cfg(test)]
pub(crate) mod testkit;
pub mod timeline;
pub mod worker;

pub use event::{Kind, Message, Payload};
pub use projection::{
    decode_row, encode_row, DeadLetter, EncodeError, Envelope, Input, Interest, Keys, Projection,
    Record,
};
pub use projector::Projector;
pub use runtime::{DynView, ViewCache};

/// Every view, in the order they are applied. `complete` says the store is
/// empty, so no row ever needs loading until one is evicted.
pub fn registry(complete: bool) -> Vec<Box<dyn DynView>> {
    fn v<P: Projection>(p: P, complete: bool) -> Box<dyn DynView> {
        Box::new(ViewCache::new(p, complete))
    }
    vec![
        v(job::JobView, complete),
        v(stage::StageView, complete),
        v(worker::WorkerView, complete),
        v(metrics::MetricsView, complete),
        v(exceptions::ExceptionView, complete),
        v(exception_groups::ExceptionGroupView, complete),
        v(lineage::LineageView, complete),
        v(checkpoints::CheckpointView, complete),
        v(dead_letters::DeadLetterView, complete),
        v(duplicates::DuplicateView, complete),
        v(timeline::TimelineView, complete),
    ]
}

/// Names of every view in [`registry`], plus the sequence tracker's.
pub fn view_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = registry(true).iter().map(|v| v.name()).collect();
    names.push(<sequences::Sequences as Projection>::NAME);
    names
}
