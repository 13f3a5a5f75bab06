//! The values of `--from-offset` and `--to-offset`: one offset for every
//! partition (`N`), or offsets per partition (`P:N[,P:N…]`), so a topic
//! replay can start and stop each partition where the user, or an earlier
//! attempt's stored position, says. Offsets in different partitions of a
//! topic are unrelated numbers; one value for all of them is rarely right.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// An offset for every partition, or one per listed partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offsets {
    /// The same offset everywhere (the only form for a log or a file).
    Every(u64),
    /// Per partition; a partition not listed keeps the default.
    Per(BTreeMap<i32, u64>),
}

impl Offsets {
    /// Parses `N` or `P:N[,P:N…]`; `what` names the flag in errors.
    pub fn parse(what: &'static str, text: &str) -> Result<Offsets> {
        let bad = |detail: String| {
            Error::invalid(
                what,
                format!("{detail}: use N, or PARTITION:OFFSET[,PARTITION:OFFSET…]"),
            )
        };
        let number = |s: &str| -> Result<u64> {
            s.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| i64::try_from(*n).is_ok())
                .ok_or_else(|| bad(format!("{s:?} is not an offset")))
        };
        let text = text.trim();
        if !text.contains(':') {
            return Ok(Offsets::Every(number(text)?));
        }
        let mut per = BTreeMap::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (p, n) = item
                .split_once(':')
                .ok_or_else(|| bad(format!("{item:?} has no partition")))?;
            let p: i32 = p
                .trim()
                .parse()
                .ok()
                .filter(|p| *p >= 0)
                .ok_or_else(|| bad(format!("{p:?} is not a partition")))?;
            if per.insert(p, number(n)?).is_some() {
                return Err(bad(format!("partition {p} given twice")));
            }
        }
        if per.is_empty() {
            return Err(bad(format!("{text:?} names no partition")));
        }
        Ok(Offsets::Per(per))
    }

    /// The single offset of a source without partitions (a log, a file).
    pub fn single(&self, what: &'static str) -> Result<u64> {
        match self {
            Offsets::Every(n) => Ok(*n),
            Offsets::Per(_) => Err(Error::invalid(
                what,
                "offsets per partition (P:N) apply to --brokers only; give one number",
            )),
        }
    }

    /// The offset of partition `p`, `None` when it is not listed.
    pub fn of(&self, p: i32) -> Option<i64> {
        let n = match self {
            Offsets::Every(n) => Some(*n),
            Offsets::Per(map) => map.get(&p).copied(),
        };
        // `parse` keeps every offset within i64.
        n.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
    }

    /// Partitions named explicitly (none for `Every`).
    pub fn partitions(&self) -> Vec<i32> {
        match self {
            Offsets::Every(_) => Vec::new(),
            Offsets::Per(map) => map.keys().copied().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_number_or_a_list_per_partition() {
        assert_eq!(Offsets::parse("x", " 42 ").unwrap(), Offsets::Every(42));
        let per = Offsets::parse("x", "0:10, 2:7,").unwrap();
        assert_eq!(per.of(0), Some(10));
        assert_eq!(per.of(1), None);
        assert_eq!(per.of(2), Some(7));
        assert_eq!(per.partitions(), vec![0, 2]);
        assert_eq!(Offsets::Every(5).of(9), Some(5));
        assert_eq!(
            per.single("x").unwrap_err().kind(),
            crate::error::ErrorKind::Invalid
        );
        assert_eq!(Offsets::Every(3).single("x").unwrap(), 3);
    }

    #[test]
    fn malformed_values_are_clear_errors() {
        for bad in [
            "",
            "-1",
            "abc",
            "0:",
            ":5",
            "x:5",
            "-1:5",
            "0:1,0:2",
            "0:-3",
            ",",
            "1:2:3",
            "9223372036854775808",
        ] {
            let err = Offsets::parse("from offset", bad).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::Invalid, "{bad:?}");
            assert!(
                err.to_string().contains("PARTITION:OFFSET"),
                "{bad:?}: {err}"
            );
        }
    }
}
