//! Keys for rows that belong to another row of the same view: a stage's
//! per-worker shares, a worker's history entries. Kept as rows
//! of their own so a busy parent is not rewritten whole, with every child,
//! in every batch that touches it.
//!
//! A child's key is NUL, the parent key's length in decimal, `:`, the parent
//! key, then the child's own part: unique per (parent, child), all children
//! of one parent contiguous in key order, and never a parent's key, because
//! a parent key that starts with NUL is stored as `"\0s"` + key (no child
//! key has a letter after its NUL).

use std::borrow::Cow;

use crate::projection::Keys;

/// Where a parent row is stored: its key, escaped if it starts with NUL.
pub fn parent_key(key: &str) -> Cow<'_, str> {
    if key.starts_with('\0') {
        Cow::Owned(format!("\0s{key}"))
    } else {
        Cow::Borrowed(key)
    }
}

/// The parent key a stored parent key stands for (undoes [`parent_key`]).
pub fn unescape(stored: &str) -> &str {
    stored.strip_prefix("\0s").unwrap_or(stored)
}

/// Where the child `child` of the parent keyed `parent` is stored.
pub fn child_key(parent: &str, child: &str) -> String {
    let mut k = child_prefix(parent);
    k.push_str(child);
    k
}

/// The common start of every child key of `parent`, for a prefix scan.
pub fn child_prefix(parent: &str) -> String {
    let mut digits = [0u8; 20];
    let len = decimal(parent.len(), &mut digits);
    let mut k = String::with_capacity(2 + len.len() + parent.len());
    k.push('\0');
    k.push_str(len);
    k.push(':');
    k.push_str(parent);
    k
}

/// Adds the key of `parent`'s child `child` (its parts after the prefix) to
/// `keys`, without building it apart first: views list one per record.
pub fn push_child(keys: &mut Keys, parent: &str, child: &[&str]) {
    let mut digits = [0u8; 20];
    let len = decimal(parent.len(), &mut digits);
    let mut parts: [&str; 8] = [""; 8];
    parts[..4].copy_from_slice(&["\0", len, ":", parent]);
    let n = 4 + child.len().min(4);
    parts[4..n].copy_from_slice(&child[..n - 4]);
    keys.push_parts(&parts[..n]);
}

/// `n` in decimal, written into `buf`.
fn decimal(mut n: usize, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[at..]).unwrap_or("0")
}

/// True for a stored parent key, false for a child's.
pub fn is_parent_key(key: &str) -> bool {
    !key.starts_with('\0') || key.starts_with("\0s")
}

/// Every child key (within a view) is in `[CHILDREN_FROM, CHILDREN_TO)`,
/// and no parent key is: a scan of the parents skips that range unread.
pub const CHILDREN_FROM: &str = "\u{0}0";
/// See [`CHILDREN_FROM`].
pub const CHILDREN_TO: &str = "\u{0}:";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_and_child_keys_never_meet_whatever_the_ids() {
        let ids = [
            "s1", "a", "b", "", "\0", "\0s", "\x001:ab", "1:a", "\0s\0", "a\0b",
        ];
        let mut keys = std::collections::BTreeSet::new();
        for p in ids {
            assert!(is_parent_key(&parent_key(p)), "{p:?}");
            assert_eq!(unescape(&parent_key(p)), p);
            let k = parent_key(p);
            assert!(*k < *CHILDREN_FROM || *k >= *CHILDREN_TO, "{p:?}");
            assert!(keys.insert(parent_key(p).into_owned()));
            for c in ids {
                let k = child_key(p, c);
                assert!(!is_parent_key(&k), "{p:?} {c:?}");
                assert!(k.starts_with(&child_prefix(p)));
                assert!(*CHILDREN_FROM <= *k && *k < *CHILDREN_TO, "{p:?} {c:?}");
                assert!(keys.insert(k), "{p:?} {c:?}");
            }
        }
    }

    #[test]
    fn pushed_child_keys_are_the_child_keys() {
        let mut keys = Keys::default();
        for (p, c) in [("", ""), ("s1", "w1"), ("a".repeat(1234).as_str(), "x")] {
            keys.clear();
            push_child(&mut keys, p, &["w", c]);
            assert_eq!(keys.get(0), child_key(p, &format!("w{c}")));
        }
        assert_eq!(child_prefix("abc"), "\u{0}3:abc");
    }

    #[test]
    fn a_parents_children_are_contiguous_in_key_order() {
        let parents = ["a", "ab", "b", "a\0", ""];
        let mut all: Vec<(String, &str)> = Vec::new();
        for p in parents {
            for c in ["x", "y", "z\0", ""] {
                all.push((child_key(p, c), p));
            }
        }
        all.sort();
        for p in parents {
            let at: Vec<usize> = (0..all.len()).filter(|&i| all[i].1 == p).collect();
            assert_eq!(at.last().unwrap() - at[0] + 1, at.len(), "{p:?}");
        }
    }
}
