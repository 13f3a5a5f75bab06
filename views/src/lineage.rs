//! Split lineage: every split with its stage, worker, timings and sizes, the
//! parents it named and the children that later named it. A child may name a
//! parent before the parent's own message arrives; the parent row then exists
//! with only its children until it does.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::event::Payload;
use crate::projection::{Input, Keys, Projection};

/// One split.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SplitRow {
    pub split_id: String,
    /// False while only children have named it.
    pub processed: bool,
    pub offset: u64,
    pub stage_id: String,
    pub worker_id: String,
    pub partition_id: i64,
    pub timestamp: f64,
    pub enqueue_time: f64,
    pub dequeue_time: f64,
    pub complete_time: f64,
    pub queue_wait_time_ms: f64,
    pub processing_time_ms: f64,
    pub input_records: u64,
    pub output_records: u64,
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub payload_store_key: String,
    pub payload_storage_path: Option<String>,
    pub parents: Vec<String>,
    pub children: BTreeSet<String>,
}

/// The lineage projection.
#[derive(Debug, Default, Clone, Copy)]
pub struct LineageView;

impl Projection for LineageView {
    const NAME: &'static str = "lineage";
    type Row = SplitRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        let Some(msg) = input.applied() else { return };
        let Payload::SplitProcessed(p) = &msg.payload else {
            return;
        };
        keys.push(&p.split_id);
        for parent in &p.parent_split_ids {
            if !keys.iter().any(|k| k == parent.as_ref()) {
                keys.push(parent);
            }
        }
    }

    fn apply(&self, input: &Input, rows: &mut [SplitRow]) {
        let Some(msg) = input.applied() else { return };
        let Payload::SplitProcessed(p) = &msg.payload else {
            return;
        };
        let (split, parents) = rows.split_first_mut().expect("one key at least");
        let children = std::mem::take(&mut split.children);
        *split = SplitRow {
            split_id: p.split_id.to_string(),
            processed: true,
            offset: input.seq,
            stage_id: p.stage_id.to_string(),
            worker_id: msg.source_id.to_string(),
            partition_id: p.partition_id,
            timestamp: msg.timestamp,
            enqueue_time: p.enqueue_time.0,
            dequeue_time: p.dequeue_time.0,
            complete_time: p.complete_time.0,
            queue_wait_time_ms: p.queue_wait_time_ms.0,
            processing_time_ms: p.processing_time_ms.0,
            input_records: p.input_records,
            output_records: p.output_records,
            input_bytes: p.input_bytes,
            output_bytes: p.output_bytes,
            payload_store_key: p.payload_store_key.clone(),
            payload_storage_path: p.payload_storage_path.clone(),
            parents: p.parent_split_ids.iter().map(|s| s.to_string()).collect(),
            children,
        };
        // Same order and de-duplication as `keys`.
        let mut names: Vec<&str> = Vec::with_capacity(parents.len());
        for id in &p.parent_split_ids {
            if id.as_ref() != p.split_id.as_ref() && !names.contains(&id.as_ref()) {
                names.push(id);
            }
        }
        for (parent, name) in parents.iter_mut().zip(names) {
            if parent.split_id.is_empty() {
                // Named before its own message arrived.
                parent.split_id = name.to_owned();
            }
            parent.children.insert(p.split_id.to_string());
        }
    }
}
