//! Every exception, newest first, never trimmed: which stage, worker and
//! split it hit, with its stack trace. Keys order records by event time,
//! newest first, so a page is one forward scan.

use serde::{Deserialize, Serialize};

use crate::event::Payload;
use crate::projection::{Input, Keys, Projection};

/// One exception record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExceptionRow {
    pub offset: u64,
    pub timestamp: f64,
    pub source_id: String,
    pub stage_id: String,
    pub worker_id: Option<String>,
    pub exception_type: String,
    pub message: String,
    /// Null when the producer sent none.
    pub stacktrace: Option<String>,
    pub split_id: Option<String>,
}

/// The exception-records projection.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExceptionView;

/// Sort key that puts newer event times (then later offsets) first.
pub fn newest_first_key(ts: f64, seq: u64) -> String {
    let micros = (ts * 1e6).round().max(0.0) as u64;
    format!("{:016x}{:016x}", u64::MAX - micros, u64::MAX - seq)
}

impl Projection for ExceptionView {
    const NAME: &'static str = "exception";
    const INTEREST: crate::Interest = crate::Interest::kinds(&[crate::Kind::Exception]);
    const APPEND_ONLY: bool = true;
    type Row = ExceptionRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        if let Some(msg) = input.applied() {
            if matches!(msg.payload, Payload::Exception(_)) {
                keys.push(&newest_first_key(msg.timestamp, input.seq));
            }
        }
    }

    fn apply(&self, input: &Input, rows: &mut [&mut ExceptionRow]) {
        let Some(msg) = input.applied() else { return };
        let Payload::Exception(p) = &msg.payload else {
            return;
        };
        *rows[0] = ExceptionRow {
            offset: input.seq,
            timestamp: msg.timestamp,
            source_id: msg.source_id.to_string(),
            stage_id: p.stage_id.to_string(),
            worker_id: p.worker_id.as_ref().map(|w| w.to_string()),
            exception_type: p.exception_type.clone(),
            message: p.message.clone(),
            stacktrace: p.stacktrace.clone(),
            split_id: p.split_id.as_ref().map(|s| s.to_string()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::{newest_first_key, ExceptionRow, ExceptionView};
    use crate::testkit::*;

    #[test]
    fn records_are_keyed_newest_first_by_event_time_then_offset() {
        let g = given(&[
            exception("w1", "s1", 10.0, 1, "ValueError", "a"),
            exception("w1", "s1", 30.0, 2, "ValueError", "b"),
            exception("w2", "s1", 20.0, 1, "KeyError", "c"),
            exception("w3", "s2", 30.0, 1, "KeyError", "d"),
        ]);
        let order: Vec<(f64, String)> = g
            .rows::<ExceptionView>()
            .into_iter()
            .map(|(_, r)| (r.timestamp, r.message))
            .collect();
        assert_eq!(
            order,
            vec![
                (30.0, "d".to_owned()),
                (30.0, "b".to_owned()),
                (20.0, "c".to_owned()),
                (10.0, "a".to_owned()),
            ]
        );
        assert!(newest_first_key(2.0, 1) < newest_first_key(1.0, 9));
        assert!(newest_first_key(1.0, 9) < newest_first_key(1.0, 8));
    }

    #[test]
    fn a_record_keeps_everything_the_exception_said() {
        let g = given(&[exception("w1", "s1", 10.0, 1, "ValueError", "bad row 7")
            .with("split_id", serde_json::json!("sp9"))]);
        let rows = g.rows::<ExceptionView>();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0, newest_first_key(10.0, 1));
        assert_eq!(
            rows[0].1,
            ExceptionRow {
                offset: 1,
                timestamp: 10.0,
                source_id: "w1".into(),
                stage_id: "s1".into(),
                worker_id: Some("w1".into()),
                exception_type: "ValueError".into(),
                message: "bad row 7".into(),
                stacktrace: Some("Traceback: bad row 7".into()),
                split_id: Some("sp9".into()),
            }
        );
    }

    #[test]
    fn duplicates_are_not_recorded_twice_but_null_sequences_are_never_duplicates() {
        let e = exception("w1", "s1", 10.0, 1, "E", "x");
        let g = given(&[e.clone(), e.clone()]);
        assert_eq!(g.rows::<ExceptionView>().len(), 1);
        let g = given(&[e.clone().no_seq(), e.no_seq()]);
        assert_eq!(g.rows::<ExceptionView>().len(), 2);
    }

    #[test]
    fn exceptions_are_never_trimmed() {
        let events: Vec<Ev> = (1..=500)
            .map(|i| exception("w1", "s1", i as f64, i, "E", "x"))
            .collect();
        let g = given(&events);
        assert_eq!(g.rows::<ExceptionView>().len(), 500);
        assert_eq!(g.job().exception_count, 500);
    }
}
