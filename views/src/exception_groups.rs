//! Exceptions grouped by (stage, type, normalised message): how often each
//! kind of failure happened, when first and last, and which workers and
//! splits it hit. Normalising replaces numbers and hex ids, so "row 17" and
//! "row 18" are one group.
//!
//! The workers and splits a group hit are not stored with it: during an
//! exception storm a group hits tens of thousands of splits, and a group
//! row holding them all was rewritten whole in every batch (rows of their
//! own cost as much again per exception as the exception record). They are
//! derived when read from the exception records, which are never trimmed
//! and name both ([`Members`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::event::Payload;
use crate::exceptions::ExceptionRow;
use crate::projection::{Input, Keys, Projection};

/// Longest normalised message kept in a group key.
const MAX_MESSAGE: usize = 200;

/// One group of alike exceptions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExceptionGroupRow {
    pub stage_id: String,
    pub exception_type: String,
    pub normalized_message: String,
    pub count: u64,
    pub first_seen: Option<f64>,
    pub last_seen: Option<f64>,
    /// A message and stack trace of the first occurrence (by event time).
    pub sample_message: String,
    pub sample_stacktrace: String,
    /// Filled only in rows stored before members were derived from the
    /// exception records (see [`Members`]); empty in new rows, and never
    /// read: the records hold every member these name.
    pub workers: BTreeSet<String>,
    pub splits: BTreeSet<String>,
}

/// The key of a group: stage, type and normalised message.
pub fn group_key(stage_id: &str, exception_type: &str, message: &str) -> String {
    format!(
        "{stage_id}\u{1f}{exception_type}\u{1f}{}",
        normalize_message(message)
    )
}

/// The workers and splits each group hit, gathered from exception records.
#[derive(Debug, Default)]
pub struct Members {
    by_group: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
}

impl Members {
    /// Counts one exception record towards its group.
    pub fn add(&mut self, e: &ExceptionRow) {
        let key = group_key(&e.stage_id, &e.exception_type, &e.message);
        let (workers, splits) = self.by_group.entry(key).or_default();
        if let Some(w) = &e.worker_id {
            workers.insert(w.clone());
        }
        if let Some(s) = &e.split_id {
            splits.insert(s.clone());
        }
    }

    /// The workers and splits of the group keyed `group`, each in id order.
    pub fn take(&mut self, group: &str) -> (BTreeSet<String>, BTreeSet<String>) {
        self.by_group.remove(group).unwrap_or_default()
    }
}

/// Replaces hex ids (`0x…`, or 8+ hex digits and dashes mixing digits and
/// letters, like a UUID or `ps_1f78a15d`) with `<hex>` and other digit runs
/// with `<n>`, collapses whitespace and truncates, so messages that differ
/// only in ids group. Ids are found in words (runs of ASCII letters, digits
/// and `-`), so punctuation or a `prefix_` around them does not hide them.
pub fn normalize_message(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(MAX_MESSAGE));
    for (i, token) in msg.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let mut rest = token;
        while !rest.is_empty() {
            let end = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
            if end == 0 {
                let c = rest.chars().next().expect("rest is not empty");
                out.push(c);
                rest = &rest[c.len_utf8()..];
                continue;
            }
            push_word(&mut out, &rest[..end]);
            rest = &rest[end..];
        }
        if out.len() >= MAX_MESSAGE {
            break;
        }
    }
    if out.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

/// Appends one word, normalised.
fn push_word(out: &mut String, word: &str) {
    let prefixed_hex = word.len() > 2
        && (word.starts_with("0x") || word.starts_with("0X"))
        && word[2..].chars().all(|c| c.is_ascii_hexdigit());
    // All digits is a number, not an id: `row 12345678` groups with `row 17`.
    let long_hex = word.len() >= 8
        && word.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        && word.chars().any(|c| c.is_ascii_digit())
        && word.chars().any(|c| c.is_ascii_alphabetic());
    if prefixed_hex || long_hex {
        out.push_str("<hex>");
        return;
    }
    let mut in_digits = false;
    for c in word.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push_str("<n>");
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
    }
}

/// The exception-groups projection.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExceptionGroupView;

impl Projection for ExceptionGroupView {
    const NAME: &'static str = "exception_group";
    const INTEREST: crate::Interest = crate::Interest::kinds(&[crate::Kind::Exception]);
    type Row = ExceptionGroupRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        if let Some(msg) = input.applied() {
            if let Payload::Exception(p) = &msg.payload {
                keys.push(&group_key(&p.stage_id, &p.exception_type, &p.message));
            }
        }
    }

    fn apply(&self, input: &Input, rows: &mut [&mut ExceptionGroupRow]) {
        let Some(msg) = input.applied() else { return };
        let Payload::Exception(p) = &msg.payload else {
            return;
        };
        let g = &mut rows[0];
        let ts = msg.timestamp;
        if g.count == 0 {
            g.stage_id = p.stage_id.to_string();
            g.exception_type = p.exception_type.clone();
            g.normalized_message = normalize_message(&p.message);
        }
        if g.first_seen.is_none_or(|f| ts < f) {
            g.first_seen = Some(ts);
            g.sample_message = p.message.clone();
            g.sample_stacktrace = p.stacktrace.clone().unwrap_or_default();
        }
        g.last_seen = Some(g.last_seen.map_or(ts, |l| l.max(ts)));
        g.count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::{normalize_message, ExceptionGroupView, Members};
    use crate::exceptions::ExceptionView;
    use crate::testkit::*;

    /// The group's workers and splits, as the API derives them from the
    /// exception records.
    fn members(g: &Given, group: &str) -> (Vec<String>, Vec<String>) {
        let mut m = Members::default();
        for (_, e) in g.rows::<ExceptionView>() {
            m.add(&e);
        }
        let (w, s) = m.take(group);
        (w.into_iter().collect(), s.into_iter().collect())
    }

    #[test]
    fn normalising_replaces_numbers_and_hex_ids_and_collapses_whitespace() {
        let cases = [
            ("row 17 is bad", "row <n> is bad"),
            ("row 18 is bad", "row <n> is bad"),
            ("timeout after 30s", "timeout after <n>s"),
            ("v1.2.3", "v<n>.<n>.<n>"),
            (
                "split 123e4567-e89b-12d3-a456-426614174000 failed",
                "split <hex> failed",
            ),
            ("object deadbeef12 gone", "object <hex> gone"),
            // Long hex without any digit is a word, not an id.
            ("deadbeefcafe", "deadbeefcafe"),
            ("  many   spaces\tand\nlines ", "many spaces and lines"),
            // Ids inside punctuation, and 0x addresses, are ids too.
            ("<Obj object at 0x7f3a2b1c4d50>", "<Obj object at <hex>>"),
            ("<Obj object at 0x7f00aa00bb11>", "<Obj object at <hex>>"),
            ("key=deadbeef12, retry", "key=<hex>, retry"),
            ("key=cafe1234abcd, retry", "key=<hex>, retry"),
            ("worker_12 (attempt 3/5)", "worker_<n> (attempt <n>/<n>)"),
            (
                "timed out for key ps_1f78a15d",
                "timed out for key ps_<hex>",
            ),
            (
                "timed out for key ps_0e939b3e",
                "timed out for key ps_<hex>",
            ),
            ("row 12345678", "row <n>"),
            ("on 2024-01-05", "on <n>-<n>-<n>"),
            ("0x", "<n>x"),
            ("naïve 12€", "naïve <n>€"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_message(input), want, "{input:?}");
        }
    }

    #[test]
    fn normalising_truncates_to_200_bytes_on_a_char_boundary() {
        let long = "é".repeat(300);
        let n = normalize_message(&long);
        assert_eq!(n.len(), 200);
        assert_eq!(n, "é".repeat(100));
        let odd = format!("a{}", "é".repeat(300));
        let n = normalize_message(&odd);
        assert_eq!(n.len(), 199);
        assert!(n.starts_with('a'));
        let words = "word ".repeat(100);
        assert_eq!(normalize_message(&words).len(), 200);
    }

    #[test]
    fn alike_exceptions_group_with_count_times_workers_and_splits() {
        let g = given(&[
            exception("w1", "s1", 20.0, 1, "ValueError", "bad row 17")
                .with("split_id", serde_json::json!("sp1")),
            exception("w2", "s1", 10.0, 1, "ValueError", "bad row 18")
                .with("split_id", serde_json::json!("sp2")),
            exception("w1", "s1", 30.0, 2, "ValueError", "bad row 19"),
            // Other stage, other type, other message: other groups.
            exception("w3", "s2", 15.0, 1, "ValueError", "bad row 1"),
            exception("w1", "s1", 15.0, 3, "KeyError", "bad row 1"),
            exception("w1", "s1", 15.0, 4, "ValueError", "missing column"),
        ]);
        assert_eq!(g.rows::<ExceptionGroupView>().len(), 4);
        let key = "s1\u{1f}ValueError\u{1f}bad row <n>";
        let grp = g.row::<ExceptionGroupView>(key);
        assert_eq!(grp.stage_id, "s1");
        assert_eq!(grp.exception_type, "ValueError");
        assert_eq!(grp.normalized_message, "bad row <n>");
        assert_eq!(grp.count, 3);
        assert_eq!(grp.first_seen, Some(10.0));
        assert_eq!(grp.last_seen, Some(30.0));
        // The sample is the first occurrence by event time, not by arrival.
        assert_eq!(grp.sample_message, "bad row 18");
        assert_eq!(grp.sample_stacktrace, "Traceback: bad row 18");
        assert_eq!(
            members(&g, key),
            (
                vec!["w1".into(), "w2".into()],
                vec!["sp1".into(), "sp2".into()]
            )
        );
        assert!(grp.workers.is_empty() && grp.splits.is_empty());
        assert_eq!(
            g.row::<ExceptionGroupView>("s2\u{1f}ValueError\u{1f}bad row <n>")
                .count,
            1
        );
        assert_eq!(
            g.row::<ExceptionGroupView>("s1\u{1f}KeyError\u{1f}bad row <n>")
                .count,
            1
        );
    }

    #[test]
    fn a_duplicate_exception_is_not_counted_twice() {
        let e = exception("w1", "s1", 20.0, 1, "E", "x 1");
        let g = given(&[e.clone(), e]);
        assert_eq!(g.row::<ExceptionGroupView>("s1\u{1f}E\u{1f}x <n>").count, 1);
    }

    #[test]
    fn a_storm_leaves_the_group_row_small_and_its_members_come_from_the_records() {
        let mut events = Vec::new();
        for i in 0..3000u64 {
            let w = format!("w{}", i % 7);
            events.push(
                exception(
                    &w,
                    "s1",
                    i as f64,
                    i + 1,
                    "ValueError",
                    &format!("bad row {i}"),
                )
                .with("split_id", serde_json::json!(format!("split-{}", i % 1000))),
            );
        }
        let g = given(&events);
        let key = "s1\u{1f}ValueError\u{1f}bad row <n>";
        let grp = g.row::<ExceptionGroupView>(key);
        assert_eq!(grp.count, 3000);
        let bytes = crate::projection::encode_row(&grp).unwrap().len();
        assert!(bytes < 300, "group row of {bytes} bytes");
        let (w, s) = members(&g, key);
        assert_eq!((w.len(), s.len()), (7, 1000));
        assert_eq!((w[0].as_str(), s[0].as_str()), ("w0", "split-0"));
        // Another group's records stay out of it.
        assert_eq!(
            members(&g, "s1\u{1f}KeyError\u{1f}bad row <n>"),
            (vec![], vec![])
        );
    }
}
