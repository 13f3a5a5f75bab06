//! How much of an exception's `message` and `stacktrace` a list answer
//! carries: at most `LISTED_TEXT_BYTES` of each (cut on a character
//! boundary), so one hostile 50 MB message does not make every page of
//! `/exceptions` 50 MB. Such a record says `"truncated": true`; the full
//! text stays stored and `/exceptions/{offset}` serves it.

use serde_json::{json, Value};
use sundial_views::exceptions::ExceptionRow;

/// Bytes of `message` and of `stacktrace` kept in list answers.
pub const LISTED_TEXT_BYTES: usize = 4096;

/// `text` cut to at most `max` bytes on a character boundary, and whether
/// anything was cut.
fn cut(text: &str, max: usize) -> (&str, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

/// An exception record as a list answer shows it.
pub fn listed(e: &ExceptionRow) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    let (message, m_cut) = cut(&e.message, LISTED_TEXT_BYTES);
    let stacktrace = e.stacktrace.as_deref().map(|t| cut(t, LISTED_TEXT_BYTES));
    let s_cut = stacktrace.is_some_and(|(_, c)| c);
    if m_cut || s_cut {
        v["message"] = json!(message);
        v["stacktrace"] = json!(stacktrace.map(|(t, _)| t));
        v["truncated"] = json!(true);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_on_a_char_boundary_and_marked() {
        let e = ExceptionRow {
            message: "é".repeat(LISTED_TEXT_BYTES),
            stacktrace: Some("short".into()),
            ..ExceptionRow::default()
        };
        let v = listed(&e);
        let m = v["message"].as_str().unwrap();
        assert!(m.len() <= LISTED_TEXT_BYTES && m.len() >= LISTED_TEXT_BYTES - 1);
        assert!(m.chars().all(|c| c == 'é'));
        assert_eq!(v["stacktrace"], "short");
        assert_eq!(v["truncated"], true);
    }

    #[test]
    fn short_texts_are_shown_whole_and_unmarked() {
        let e = ExceptionRow {
            message: "boom".into(),
            stacktrace: Some("at x".into()),
            ..ExceptionRow::default()
        };
        let v = listed(&e);
        assert_eq!(v, serde_json::to_value(&e).unwrap());
        assert!(v.get("truncated").is_none());
    }
}
