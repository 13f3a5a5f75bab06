//! The sequence tracker's stored row: a source's producer runs, or one
//! chunk of the sequences it has seen. Its own module so the tracker
//! (`sequences`) and the row's hand-written encoder (`sequence_bytes`)
//! share it without importing each other.

use serde::{Deserialize, Serialize};

/// One producer run of a source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Highest sequence seen in the run.
    pub max_seq: u64,
    /// Distinct sequences seen in the run.
    pub distinct: u64,
    /// Oldest event time seen in the run: a message older than a restart
    /// may be a late arrival of an earlier run.
    #[serde(default)]
    pub first_ts: Option<f64>,
}

impl Run {
    /// Sequences below the highest seen that never arrived. Saturating:
    /// a sequence 0 (producers count from 1) is one more distinct
    /// sequence than the highest can account for.
    pub(crate) fn missing(&self) -> u64 {
        self.max_seq.saturating_sub(self.distinct)
    }
}

/// A fingerprint of one applied message: its run, type and timestamp bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub run: u32,
    pub kind: u8,
    pub ts_bits: u64,
}

/// Either a source's runs (`runs`) or one chunk of its seen sequences (`seen`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SequenceRow {
    pub runs: Vec<Run>,
    /// Every message applied in the chunk, `(sequence, fingerprint)`, in
    /// sequence order and, within one sequence, in the order applied: flat,
    /// so judging a message allocates nothing. Stored as a map sequence →
    /// fingerprints (the same bytes as the map it replaced).
    #[serde(with = "seen_map")]
    pub seen: Vec<(u64, Seen)>,
}

/// `SequenceRow::seen` as a MessagePack map sequence → fingerprints.
mod seen_map {
    use std::collections::BTreeMap;

    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Seen;

    /// The fingerprints of one sequence.
    struct Group<'a>(&'a [(u64, Seen)]);

    impl Serialize for Group<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().map(|(_, seen)| seen))
        }
    }

    pub fn serialize<S: Serializer>(seen: &[(u64, Seen)], s: S) -> Result<S::Ok, S::Error> {
        let same = |a: &(u64, Seen), b: &(u64, Seen)| a.0 == b.0;
        let mut map = s.serialize_map(Some(seen.chunk_by(same).count()))?;
        for group in seen.chunk_by(same) {
            map.serialize_entry(&group[0].0, &Group(group))?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(u64, Seen)>, D::Error> {
        let map = BTreeMap::<u64, Vec<Seen>>::deserialize(d)?;
        Ok(map
            .into_iter()
            .flat_map(|(seq, seen)| seen.into_iter().map(move |s| (seq, s)))
            .collect())
    }
}
