//! Split lineage: which splits were processed, by whom, with which parents,
//! and which later splits named each one as a parent (its children).
//!
//! Stored as an index over the log, not a row per split: the log already
//! holds every `split_processed` record whole, and a row per split was the
//! costliest write of a busy job (a SlateDB row costs ~4 µs of CPU however
//! small). One index row covers [`RANGE`] log sequences: which of them are
//! applied `split_processed` records, a 32-bit fingerprint of every split
//! id they name (their own and their parents'), and how many per stage.
//! The read side finds the ranges that may name a split by fingerprint,
//! decodes those records from the log and builds the answer with
//! [`Lineage`]. Attempts written before keep one [`SplitRow`] per split
//! under the split's id; those still read.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::event::{Message, Payload, SplitProcessed};
use crate::projection::{hex16, Input, Keys, Projection};

/// Log sequences per index row.
pub const RANGE: u64 = 1024;

/// Every index row's key starts with this; a split id never does (the
/// rows of older attempts are keyed by split id).
pub const INDEX_PREFIX: &str = "\0i";

/// The index range of log sequence `seq`.
pub fn range_of(seq: u64) -> u64 {
    seq / RANGE
}

/// The key of index range `range`.
pub fn range_key(range: u64) -> String {
    let mut k = String::with_capacity(INDEX_PREFIX.len() + 16);
    k.push_str(INDEX_PREFIX);
    k.push_str(hex16(range).as_str());
    k
}

/// The range an index key stands for; `None` for any other key (a split
/// row of an older attempt).
pub fn range_of_key(key: &str) -> Option<u64> {
    let hex = key.strip_prefix(INDEX_PREFIX)?;
    u64::from_str_radix(hex, 16).ok()
}

/// A stable 32-bit fingerprint of a split id (stored: never change it).
pub fn fingerprint(id: &str) -> u32 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let b = id.as_bytes();
    let mut h: u64 = b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    for &x in chunks.remainder() {
        h = (h.rotate_left(5) ^ u64::from(x)).wrapping_mul(K);
    }
    // MurmurHash3's finalizer: every input bit moves the top 32.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h >> 32) as u32
}

/// One index row: the applied `split_processed` records of one range of
/// [`RANGE`] log sequences.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LineageRow {
    /// Bit `i` (byte `i / 8`, bit `i % 8`) set: the record at the range's
    /// first sequence + `i` is one.
    #[serde(with = "serde_bytes")]
    pub records: Vec<u8>,
    /// Little-endian 32-bit fingerprints of the split ids those records
    /// name, each record's own id then its parents', in log order.
    #[serde(with = "serde_bytes")]
    pub fingerprints: Vec<u8>,
    /// Records per stage.
    pub stages: BTreeMap<String, u64>,
}

impl LineageRow {
    /// Log sequences of the records in this row of range `range`, ascending.
    pub fn seqs(&self, range: u64) -> Vec<u64> {
        let first = range * RANGE;
        let mut out = Vec::new();
        for (i, byte) in self.records.iter().enumerate() {
            for bit in 0..8 {
                if byte >> bit & 1 == 1 {
                    out.push(first + (i * 8 + bit) as u64);
                }
            }
        }
        out
    }

    /// False when none of its records names a split of fingerprint `fp`.
    pub fn may_name(&self, fp: u32) -> bool {
        self.fingerprints
            .chunks_exact(4)
            .any(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) == fp)
    }

    /// Records of stage `stage` (every stage when `None`).
    pub fn count(&self, stage: Option<&str>) -> u64 {
        match stage {
            Some(s) => self.stages.get(s).copied().unwrap_or(0),
            None => self.stages.values().sum(),
        }
    }

    fn add(&mut self, seq: u64, p: &SplitProcessed) {
        let at = (seq % RANGE) as usize;
        if self.records.len() <= at / 8 {
            self.records.resize(at / 8 + 1, 0);
        }
        self.records[at / 8] |= 1 << (at % 8);
        self.fingerprints
            .extend_from_slice(&fingerprint(&p.split_id).to_le_bytes());
        for parent in parents(p) {
            self.fingerprints
                .extend_from_slice(&fingerprint(parent).to_le_bytes());
        }
        match self.stages.get_mut(p.stage_id.as_ref()) {
            Some(n) => *n += 1,
            None => {
                self.stages.insert(p.stage_id.to_string(), 1);
            }
        }
    }
}

/// The parents a split names, without repeats or itself, in first-named order.
pub fn parents<'p>(p: &'p SplitProcessed) -> Vec<&'p str> {
    let mut names: Vec<&str> = Vec::with_capacity(p.parent_split_ids.len());
    for id in &p.parent_split_ids {
        if id.as_ref() != p.split_id.as_ref() && !names.contains(&id.as_ref()) {
            names.push(id);
        }
    }
    names
}

/// One split as served: the record of its latest processing, its parents
/// and its children. The row type of older attempts' per-split rows too.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SplitRow {
    pub split_id: String,
    /// False while only children have named it.
    pub processed: bool,
    pub offset: u64,
    pub stage_id: String,
    pub worker_id: String,
    /// The descriptive fields below are `None` (served as null) when the
    /// producer did not send them (Solstice's own factory sends none).
    pub partition_id: Option<i64>,
    pub timestamp: f64,
    pub enqueue_time: Option<f64>,
    pub dequeue_time: Option<f64>,
    pub complete_time: Option<f64>,
    pub queue_wait_time_ms: Option<f64>,
    /// `processing_time_ms` as sent, else `processing_time` (seconds) × 1000.
    pub processing_time_ms: Option<f64>,
    pub input_records: u64,
    pub output_records: u64,
    pub input_bytes: Option<u64>,
    pub output_bytes: Option<u64>,
    pub payload_store_key: Option<String>,
    pub payload_storage_path: Option<String>,
    pub parents: Vec<String>,
    pub children: BTreeSet<String>,
}

impl SplitRow {
    /// The processing the applied message at log sequence `seq` records,
    /// children not filled in; `None` unless it is a `split_processed`.
    pub fn of(msg: &Message, seq: u64) -> Option<SplitRow> {
        let Payload::SplitProcessed(p) = &msg.payload else {
            return None;
        };
        Some(SplitRow {
            split_id: p.split_id.to_string(),
            processed: true,
            offset: seq,
            stage_id: p.stage_id.to_string(),
            worker_id: msg.source_id.to_string(),
            partition_id: p.partition_id,
            timestamp: msg.timestamp,
            enqueue_time: p.enqueue_time.map(|t| t.0),
            dequeue_time: p.dequeue_time.map(|t| t.0),
            complete_time: p.complete_time.map(|t| t.0),
            queue_wait_time_ms: p.queue_wait_time_ms.map(|t| t.0),
            processing_time_ms: p.processing_ms(),
            input_records: p.input_records,
            output_records: p.output_records,
            input_bytes: p.input_bytes,
            output_bytes: p.output_bytes,
            payload_store_key: p.payload_store_key.as_deref().map(str::to_owned),
            payload_storage_path: p.payload_storage_path.as_deref().map(str::to_owned),
            parents: parents(p).into_iter().map(str::to_owned).collect(),
            children: BTreeSet::new(),
        })
    }
}

/// What the records of some index ranges say about one split id: its
/// latest processing and every split naming it as a parent. Feed it the
/// applied records of every range whose row [`LineageRow::may_name`] it.
#[derive(Debug, Clone, Default)]
pub struct Lineage {
    id: String,
    latest: Option<SplitRow>,
    children: BTreeSet<String>,
    named: bool,
}

impl Lineage {
    /// Gathers the lineage of split `id`.
    pub fn of(id: &str) -> Self {
        Lineage {
            id: id.to_owned(),
            ..Lineage::default()
        }
    }

    /// Takes in the applied message at log sequence `seq` (any kind; feed
    /// them in log order).
    pub fn add(&mut self, msg: &Message, seq: u64) {
        let Payload::SplitProcessed(p) = &msg.payload else {
            return;
        };
        if p.split_id == self.id {
            self.latest = SplitRow::of(msg, seq);
        } else if parents(p).contains(&self.id.as_str()) {
            self.named = true;
            self.children.insert(p.split_id.to_string());
        }
    }

    /// The children found, sorted.
    pub fn children(&self) -> &BTreeSet<String> {
        &self.children
    }

    /// The split as served: its latest processing, or (never processed
    /// but named as a parent) its id and children; `None` when unknown.
    pub fn split(self) -> Option<SplitRow> {
        match self.latest {
            Some(mut row) => {
                row.children = self.children;
                Some(row)
            }
            None if self.named => Some(SplitRow {
                split_id: self.id,
                children: self.children,
                ..SplitRow::default()
            }),
            None => None,
        }
    }
}

/// The lineage projection: the index rows described in the module doc.
#[derive(Debug, Default, Clone, Copy)]
pub struct LineageView;

impl Projection for LineageView {
    const NAME: &'static str = "lineage";
    const INTEREST: crate::Interest = crate::Interest::kinds(&[crate::Kind::SplitProcessed]);
    type Row = LineageRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        let Some(msg) = input.applied() else { return };
        if let Payload::SplitProcessed(_) = &msg.payload {
            keys.push(&range_key(range_of(input.seq)));
        }
    }

    fn apply(&self, input: &Input, rows: &mut [&mut LineageRow]) {
        let Some(msg) = input.applied() else { return };
        if let Payload::SplitProcessed(p) = &msg.payload {
            rows[0].add(input.seq, p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    /// The lineage of `id` as the read side builds it: from every applied
    /// record of every range whose row may name it.
    fn lineage(g: &Given, evs: &[Ev], id: &str) -> Option<SplitRow> {
        let fp = fingerprint(id);
        let mut l = Lineage::of(id);
        for (key, row) in g.rows::<LineageView>() {
            let range = range_of_key(&key).expect("an index key");
            if !row.may_name(fp) {
                continue;
            }
            for seq in row.seqs(range) {
                let text = match &evs[seq as usize - 1] {
                    Ev::Msg(v) => v.to_string(),
                    Ev::Dead(_) => panic!("a dead letter indexed at {seq}"),
                };
                let m: Message = serde_json::from_str(&text).unwrap();
                l.add(&m, seq);
            }
        }
        l.split()
    }

    fn ids(set: impl IntoIterator<Item = String>) -> Vec<String> {
        set.into_iter().collect()
    }

    #[test]
    fn a_split_keeps_its_stage_worker_timings_and_sizes() {
        let evs = [split("w1", "s1", "a", &[], 10.0, 1)];
        let g = given(&evs);
        let a = lineage(&g, &evs, "a").unwrap();
        assert!(a.processed);
        assert_eq!(a.split_id, "a");
        assert_eq!(a.offset, 1);
        assert_eq!((a.stage_id.as_str(), a.worker_id.as_str()), ("s1", "w1"));
        assert_eq!(a.partition_id, Some(3));
        assert_eq!(a.timestamp, 10.0);
        assert_eq!(
            (a.enqueue_time, a.dequeue_time, a.complete_time),
            (Some(9.5), Some(9.75), Some(10.0))
        );
        assert_eq!(
            (a.queue_wait_time_ms, a.processing_time_ms),
            (Some(250.0), Some(250.0))
        );
        assert_eq!(
            (
                a.input_records,
                a.output_records,
                a.input_bytes,
                a.output_bytes
            ),
            (10, 8, Some(1000), Some(800))
        );
        assert_eq!(a.payload_store_key.as_deref(), Some("payload/a"));
        assert_eq!(a.payload_storage_path, None);
        assert!(a.parents.is_empty());
        assert!(a.children.is_empty());
        assert_eq!(lineage(&g, &evs, "b"), None);
    }

    #[test]
    fn a_split_as_solstice_sends_it_shows_its_descriptive_fields_as_none() {
        let evs = [solstice_split("w1", "s1", "a", &[], 10.0, 1, 0.25)];
        let g = given(&evs);
        assert_eq!(g.outcomes(), &[crate::projector::Outcome::Applied]);
        let a = lineage(&g, &evs, "a").unwrap();
        assert!(a.processed);
        assert_eq!((a.stage_id.as_str(), a.worker_id.as_str()), ("s1", "w1"));
        assert_eq!((a.input_records, a.output_records), (10, 8));
        // `processing_time` is in seconds.
        assert_eq!(a.processing_time_ms, Some(250.0));
        assert_eq!(a.partition_id, None);
        assert_eq!(
            (a.enqueue_time, a.dequeue_time, a.complete_time),
            (None, None, None)
        );
        assert_eq!(a.queue_wait_time_ms, None);
        assert_eq!((a.input_bytes, a.output_bytes), (None, None));
        assert_eq!((a.payload_store_key, a.payload_storage_path), (None, None));
    }

    #[test]
    fn processing_time_ms_wins_over_processing_time_when_both_are_sent() {
        let mut both = solstice_split("w1", "s1", "a", &[], 10.0, 1, 9.0);
        if let Ev::Msg(v) = &mut both {
            v["payload"]["processing_time_ms"] = serde_json::json!(125.5);
        }
        let evs = [both];
        let a = lineage(&given(&evs), &evs, "a").unwrap();
        assert_eq!(a.processing_time_ms, Some(125.5));
    }

    #[test]
    fn children_are_derived_from_later_splits_parents() {
        let evs = [
            split("w1", "s1", "a", &[], 10.0, 1),
            split("w2", "s2", "b", &["a"], 11.0, 1),
            split("w2", "s2", "c", &["a"], 12.0, 2),
        ];
        let g = given(&evs);
        let a = lineage(&g, &evs, "a").unwrap();
        assert_eq!(ids(a.children), ["b", "c"]);
        assert!(a.parents.is_empty());
        let b = lineage(&g, &evs, "b").unwrap();
        assert_eq!(b.parents, ["a"]);
        assert!(b.children.is_empty());
    }

    #[test]
    fn a_parent_named_before_its_own_message_keeps_its_children() {
        let evs = vec![split("w2", "s2", "b", &["a"], 11.0, 1)];
        let g = given(&evs);
        let a = lineage(&g, &evs, "a").unwrap();
        assert!(!a.processed);
        assert_eq!(a.split_id, "a");
        assert_eq!(a.stage_id, "");
        assert_eq!(ids(a.children.clone()), ["b"]);
        let mut evs = evs;
        evs.push(split("w1", "s1", "a", &[], 10.0, 1));
        let g = g.then(&evs[1..]);
        let a = lineage(&g, &evs, "a").unwrap();
        assert!(a.processed);
        assert_eq!(a.stage_id, "s1");
        assert_eq!(ids(a.children), ["b"]);
    }

    #[test]
    fn a_merge_names_two_parents() {
        let evs = [
            split("w1", "s1", "a", &[], 10.0, 1),
            split("w1", "s1", "b", &[], 10.5, 2),
            split("w2", "s2", "m", &["a", "b", "a"], 11.0, 1),
        ];
        let g = given(&evs);
        assert_eq!(lineage(&g, &evs, "m").unwrap().parents, ["a", "b"]);
        assert_eq!(ids(lineage(&g, &evs, "a").unwrap().children), ["m"]);
        assert_eq!(ids(lineage(&g, &evs, "b").unwrap().children), ["m"]);
    }

    #[test]
    fn a_split_naming_itself_as_parent_is_not_its_own_parent_or_child() {
        let evs = [split("w1", "s1", "a", &["a", "p"], 10.0, 1)];
        let g = given(&evs);
        let a = lineage(&g, &evs, "a").unwrap();
        assert_eq!(a.parents, ["p"]);
        assert!(a.children.is_empty());
        assert_eq!(ids(lineage(&g, &evs, "p").unwrap().children), ["a"]);
    }

    #[test]
    fn a_split_processed_again_is_served_as_its_latest_processing() {
        let evs = [
            split("w1", "s1", "a", &["p"], 10.0, 1),
            split("w2", "s2", "b", &["a"], 11.0, 1),
            split("w3", "s1", "a", &["q"], 12.0, 1),
        ];
        let g = given(&evs);
        let a = lineage(&g, &evs, "a").unwrap();
        assert_eq!((a.offset, a.worker_id.as_str()), (3, "w3"));
        assert_eq!(a.parents, ["q"]);
        assert_eq!(ids(a.children), ["b"], "children of every processing");
        assert_eq!(ids(lineage(&g, &evs, "p").unwrap().children), ["a"]);
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

    #[test]
    fn one_row_indexes_a_range_of_sequences_with_counts_per_stage() {
        let mut evs = Vec::new();
        for i in 0..(RANGE + 5) {
            evs.push(split(
                "w1",
                if i % 3 == 0 { "s1" } else { "s2" },
                &format!("x{i}"),
                &[],
                1.0,
                i + 1,
            ));
            evs.push(worker_metrics("w1", "s1", 1.0, i + 1, i, i));
        }
        let g = given(&evs);
        let rows = g.rows::<LineageView>();
        assert_eq!(rows.len(), 3, "sequences 1..=2058 span ranges 0, 1 and 2");
        let mut seqs = Vec::new();
        let mut total = 0;
        for (key, row) in &rows {
            let range = range_of_key(key).unwrap();
            assert!(key.starts_with(INDEX_PREFIX));
            for s in row.seqs(range) {
                assert_eq!(range_of(s), range);
                seqs.push(s);
            }
            total += row.count(None);
            assert_eq!(
                row.count(None),
                row.count(Some("s1")) + row.count(Some("s2"))
            );
            assert_eq!(row.fingerprints.len() as u64, 4 * row.count(None));
        }
        let want: Vec<u64> = (0..RANGE + 5).map(|i| 2 * i + 1).collect();
        assert_eq!(seqs, want, "every split record, none of the others");
        assert_eq!(total, RANGE + 5);
        assert_eq!(range_of_key("x12"), None);
        assert!(range_key(1) < range_key(2) && range_key(255) < range_key(256));
    }

    #[test]
    fn fingerprints_are_stable() {
        // Stored in index rows: a change here breaks every older attempt.
        assert_eq!(fingerprint(""), fingerprint(""));
        assert_ne!(fingerprint("a"), fingerprint("b"));
        assert_eq!(fingerprint("source_split_4"), 0x5a8b_3f7e);
        assert_eq!(fingerprint("map_source_split_12345678"), 0x6666_87ec);
    }
}
