//! Exceptions grouped by (stage, type, normalised message): how often each
//! kind of failure happened, when first and last, and which workers and
//! splits it hit. Normalising replaces numbers and hex ids, so "row 17" and
//! "row 18" are one group.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::event::Payload;
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
    pub workers: BTreeSet<String>,
    pub splits: BTreeSet<String>,
}

/// Replaces digit runs with `<n>` and long hex tokens with `<hex>`, collapses
/// whitespace and truncates, so messages that differ only in ids group.
pub fn normalize_message(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(MAX_MESSAGE));
    for (i, token) in msg.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let hexish = token.len() >= 8
            && token.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
            && token.chars().any(|c| c.is_ascii_digit());
        if hexish {
            out.push_str("<hex>");
            continue;
        }
        let mut in_digits = false;
        for c in token.chars() {
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

/// The exception-groups projection.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExceptionGroupView;

impl Projection for ExceptionGroupView {
    const NAME: &'static str = "exception_group";
    type Row = ExceptionGroupRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        if let Some(msg) = input.applied() {
            if let Payload::Exception(p) = &msg.payload {
                keys.push_fmt(format_args!(
                    "{}\u{1f}{}\u{1f}{}",
                    p.stage_id,
                    p.exception_type,
                    normalize_message(&p.message)
                ));
            }
        }
    }

    fn apply(&self, input: &Input, rows: &mut [ExceptionGroupRow]) {
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
            g.sample_stacktrace = p.stacktrace.clone();
        }
        g.last_seen = Some(g.last_seen.map_or(ts, |l| l.max(ts)));
        g.count += 1;
        if let Some(w) = &p.worker_id {
            g.workers.insert(w.to_string());
        }
        if let Some(s) = &p.split_id {
            g.splits.insert(s.to_string());
        }
    }
}
