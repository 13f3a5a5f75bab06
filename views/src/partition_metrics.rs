//! `stage_metrics.partition_metrics`: a free-form JSON object per partition
//! that the views only keep (the newest one per stage) and serve. Building
//! its values was most of the cost of decoding and applying these messages
//! (dozens of allocations each, then a clone into the stage row), so a JSON
//! record's object stays text until a row holding it is stored or served:
//! once per stage per batch instead of once per message. Both forms store
//! and compare as the map serde_json builds from the text, so the views'
//! bytes do not depend on which decoder read the record.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The map as serde_json builds it.
pub type Map = BTreeMap<String, Value>;

/// One stage's partition metrics, as received or as parsed.
#[derive(Clone)]
pub enum PartitionMetrics<'a> {
    /// The text of a JSON object, already checked to be one that
    /// serde_json reads (see `fast_json` in the sundial crate).
    Json(Cow<'a, str>),
    /// Parsed: from a MessagePack record, the generic decoder or a stored row.
    Map(Map),
}

impl Default for PartitionMetrics<'_> {
    fn default() -> Self {
        PartitionMetrics::Map(Map::new())
    }
}

impl PartitionMetrics<'_> {
    /// The map (parsed now if it is still text).
    pub fn to_map(&self) -> Cow<'_, Map> {
        match self {
            PartitionMetrics::Map(m) => Cow::Borrowed(m),
            // The text was checked at decode; an unreadable one (never
            // expected) reads as empty rather than failing a row write.
            PartitionMetrics::Json(text) => {
                Cow::Owned(serde_json::from_str(text).unwrap_or_default())
            }
        }
    }

    /// The same metrics, no longer borrowing the record.
    pub fn into_owned(self) -> PartitionMetrics<'static> {
        match self {
            PartitionMetrics::Json(text) => PartitionMetrics::Json(Cow::Owned(text.into_owned())),
            PartitionMetrics::Map(m) => PartitionMetrics::Map(m),
        }
    }
}

impl PartialEq for PartitionMetrics<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.to_map() == other.to_map()
    }
}

impl fmt::Debug for PartitionMetrics<'_> {
    /// The map's, whichever the form: both forms of one object print alike.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_map().fmt(f)
    }
}

impl Serialize for PartitionMetrics<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_map().serialize(s)
    }
}

impl<'de> Deserialize<'de> for PartitionMetrics<'_> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Map::deserialize(d).map(PartitionMetrics::Map)
    }
}

#[cfg(test)]
mod tests {
    use super::PartitionMetrics;
    use std::borrow::Cow;

    const TEXT: &str = r#"{"1": {"offset": 7, "lag": 0.5}, "0": {"offset": 1, "tags": ["a"]}}"#;

    #[test]
    fn text_and_map_store_the_same_bytes_and_compare_equal() {
        let text = PartitionMetrics::Json(Cow::Borrowed(TEXT));
        let map = PartitionMetrics::Map(serde_json::from_str(TEXT).unwrap());
        assert_eq!(text, map);
        assert_eq!(format!("{text:?}"), format!("{map:?}"));
        let a = rmp_serde::to_vec_named(&text).unwrap();
        assert_eq!(a, rmp_serde::to_vec_named(&map).unwrap());
        let back: PartitionMetrics = rmp_serde::from_slice(&a).unwrap();
        assert_eq!(back, text);
        assert_ne!(text, PartitionMetrics::default());
    }
}
