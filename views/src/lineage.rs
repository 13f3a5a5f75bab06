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
        // Same order and de-duplication as `keys`; a split is not its own parent.
        let mut names: Vec<&str> = Vec::with_capacity(parents.len());
        for id in &p.parent_split_ids {
            if id.as_ref() != p.split_id.as_ref() && !names.contains(&id.as_ref()) {
                names.push(id);
            }
        }
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
            parents: names.iter().map(|s| s.to_string()).collect(),
            children,
        };
        for (parent, name) in parents.iter_mut().zip(names) {
            if parent.split_id.is_empty() {
                // Named before its own message arrived.
                parent.split_id = name.to_owned();
            }
            parent.children.insert(p.split_id.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LineageView;
    use crate::testkit::*;

    fn ids(set: impl IntoIterator<Item = String>) -> Vec<String> {
        set.into_iter().collect()
    }

    #[test]
    fn a_split_keeps_its_stage_worker_timings_and_sizes() {
        let g = given(&[split("w1", "s1", "a", &[], 10.0, 1)]);
        let a = g.row::<LineageView>("a");
        assert!(a.processed);
        assert_eq!(a.split_id, "a");
        assert_eq!(a.offset, 1);
        assert_eq!((a.stage_id.as_str(), a.worker_id.as_str()), ("s1", "w1"));
        assert_eq!(a.partition_id, 3);
        assert_eq!(a.timestamp, 10.0);
        assert_eq!(
            (a.enqueue_time, a.dequeue_time, a.complete_time),
            (9.5, 9.75, 10.0)
        );
        assert_eq!((a.queue_wait_time_ms, a.processing_time_ms), (250.0, 250.0));
        assert_eq!(
            (
                a.input_records,
                a.output_records,
                a.input_bytes,
                a.output_bytes
            ),
            (10, 8, 1000, 800)
        );
        assert_eq!(a.payload_store_key, "payload/a");
        assert_eq!(a.payload_storage_path, None);
        assert!(a.parents.is_empty());
        assert!(a.children.is_empty());
    }

    #[test]
    fn children_are_derived_from_later_splits_parents() {
        let g = given(&[
            split("w1", "s1", "a", &[], 10.0, 1),
            split("w2", "s2", "b", &["a"], 11.0, 1),
            split("w2", "s2", "c", &["a"], 12.0, 2),
        ]);
        let a = g.row::<LineageView>("a");
        assert_eq!(ids(a.children), ["b", "c"]);
        assert!(a.parents.is_empty());
        assert_eq!(g.row::<LineageView>("b").parents, ["a"]);
        assert!(g.row::<LineageView>("b").children.is_empty());
    }

    #[test]
    fn a_parent_named_before_its_own_message_keeps_its_children() {
        let g = given(&[split("w2", "s2", "b", &["a"], 11.0, 1)]);
        let a = g.row::<LineageView>("a");
        assert!(!a.processed);
        assert_eq!(a.split_id, "a");
        assert_eq!(a.stage_id, "");
        assert_eq!(ids(a.children.clone()), ["b"]);
        let g = g.then(&[split("w1", "s1", "a", &[], 10.0, 1)]);
        let a = g.row::<LineageView>("a");
        assert!(a.processed);
        assert_eq!(a.stage_id, "s1");
        assert_eq!(ids(a.children), ["b"]);
    }

    #[test]
    fn a_merge_names_two_parents() {
        let g = given(&[
            split("w1", "s1", "a", &[], 10.0, 1),
            split("w1", "s1", "b", &[], 10.5, 2),
            split("w2", "s2", "m", &["a", "b", "a"], 11.0, 1),
        ]);
        assert_eq!(g.row::<LineageView>("m").parents, ["a", "b"]);
        assert_eq!(ids(g.row::<LineageView>("a").children), ["m"]);
        assert_eq!(ids(g.row::<LineageView>("b").children), ["m"]);
    }

    #[test]
    fn a_split_naming_itself_as_parent_is_not_its_own_parent_or_child() {
        let g = given(&[split("w1", "s1", "a", &["a", "p"], 10.0, 1)]);
        let a = g.row::<LineageView>("a");
        assert_eq!(a.parents, ["p"]);
        assert!(a.children.is_empty());
        assert_eq!(ids(g.row::<LineageView>("p").children), ["a"]);
    }

    #[test]
    fn a_duplicate_split_changes_nothing() {
        let s = split("w2", "s2", "b", &["a"], 11.0, 1);
        let g = given(std::slice::from_ref(&s));
        let before = g.rows::<LineageView>();
        let g = g.then(&[s]);
        assert_eq!(g.rows::<LineageView>(), before);
        assert_eq!(
            g.changed(),
            vec![("duplicate", "00000000000000000002"), ("job", "")]
        );
    }
}
