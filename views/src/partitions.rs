//! The partition numbers a `worker_metrics` report carries, held inline up
//! to a handful: two thirds of a job's records are such reports, and a
//! `Vec` per report was an allocation on the decoding thread and a free on
//! another one, for a list of a few numbers.

use std::fmt;
use std::ops::Deref;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// Numbers held without allocating.
const INLINE: usize = 8;

/// A list of partition numbers: inline up to [`INLINE`], on the heap past.
/// Reads, compares and prints as the slice it holds.
#[derive(Clone)]
pub enum Partitions {
    /// Up to [`INLINE`] numbers: the first `len` of `items`.
    Inline { len: u8, items: [i64; INLINE] },
    /// More numbers than fit inline.
    Heap(Vec<i64>),
}

impl Partitions {
    /// Appends one number.
    pub fn push(&mut self, value: i64) {
        match self {
            Partitions::Inline { len, items } if usize::from(*len) < INLINE => {
                items[usize::from(*len)] = value;
                *len += 1;
            }
            Partitions::Inline { len, items } => {
                let mut v = items[..usize::from(*len)].to_vec();
                v.push(value);
                *self = Partitions::Heap(v);
            }
            Partitions::Heap(v) => v.push(value),
        }
    }
}

impl Default for Partitions {
    fn default() -> Self {
        Partitions::Inline {
            len: 0,
            items: [0; INLINE],
        }
    }
}

impl Deref for Partitions {
    type Target = [i64];

    fn deref(&self) -> &[i64] {
        match self {
            Partitions::Inline { len, items } => &items[..usize::from(*len)],
            Partitions::Heap(v) => v,
        }
    }
}

impl PartialEq for Partitions {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl fmt::Debug for Partitions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Extend<i64> for Partitions {
    fn extend<I: IntoIterator<Item = i64>>(&mut self, iter: I) {
        for v in iter {
            self.push(v);
        }
    }
}

impl FromIterator<i64> for Partitions {
    fn from_iter<I: IntoIterator<Item = i64>>(iter: I) -> Self {
        let mut out = Partitions::default();
        out.extend(iter);
        out
    }
}

impl<'de> Deserialize<'de> for Partitions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = Partitions;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of partition numbers")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Partitions, A::Error> {
                let mut out = Partitions::default();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(List)
    }
}

#[cfg(test)]
mod tests {
    use super::Partitions;

    #[test]
    fn reads_prints_and_compares_as_the_vec_it_replaced_inline_or_not() {
        for n in [0usize, 1, 7, 8, 9, 40] {
            let v: Vec<i64> = (0..n as i64).map(|i| i * 3 - 5).collect();
            let text = serde_json::to_string(&v).unwrap();
            let p: Partitions = serde_json::from_str(&text).unwrap();
            assert_eq!(&*p, v.as_slice(), "{n}");
            assert_eq!(format!("{p:?}"), format!("{v:?}"));
            assert_eq!(p, v.iter().copied().collect::<Partitions>());
            assert!(matches!(p, Partitions::Inline { .. }) == (n <= 8), "{n}");
            let packed = rmp_serde::to_vec(&v).unwrap();
            assert_eq!(rmp_serde::from_slice::<Partitions>(&packed).unwrap(), p);
        }
        assert!(serde_json::from_str::<Partitions>("[1, \"x\"]").is_err());
        assert!(serde_json::from_str::<Partitions>("{}").is_err());
    }
}
