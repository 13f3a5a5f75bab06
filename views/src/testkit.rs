//! Given/then helpers for the view tests: build state messages from compact
//! JSON or small builders, fold them through a fresh `Projector` in order,
//! and read back any row from the bytes the projector hands out.
//!
//! ```ignore
//! let g = given(&[worker_started("w1", "s1", 10.0, 1), worker_metrics("w1", "s1", 11.0, 2, 5, 4)]);
//! assert_eq!(g.row::<StageView>("s1").input_records, 5);
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::checkpoints::{CheckpointRow, CheckpointView, SUMMARY_KEY};
use crate::job::{JobRow, JobView};
use crate::projection::{decode_row, DeadLetter, Projection};
use crate::projector::{Entry, Outcome, Projector};
use crate::Message;

/// The job every builder speaks for.
pub const JOB: &str = "j1";

/// One record to feed the projector.
#[derive(Debug, Clone)]
pub enum Ev {
    /// A state message, as the JSON a producer sends.
    Msg(Value),
    /// A record the codec rejected.
    Dead(DeadLetter),
}

impl Ev {
    /// The same message with `"sequence": null`.
    pub fn no_seq(self) -> Ev {
        match self {
            Ev::Msg(mut v) => {
                v["sequence"] = Value::Null;
                Ev::Msg(v)
            }
            d => d,
        }
    }

    /// The same message with another payload field set.
    pub fn with(self, field: &str, value: Value) -> Ev {
        match self {
            Ev::Msg(mut v) => {
                v["payload"][field] = value;
                Ev::Msg(v)
            }
            d => d,
        }
    }
}

/// A message from its JSON text (must be a JSON object).
pub fn msg(json: &str) -> Ev {
    Ev::Msg(serde_json::from_str(json).expect("test message is JSON"))
}

/// A message of `kind` from `source` at event time `ts` with sequence `seq`.
pub fn envelope(kind: &str, source: &str, ts: f64, seq: u64, payload: Value) -> Ev {
    Ev::Msg(json!({
        "message_type": kind,
        "job_id": JOB,
        "source_id": source,
        "timestamp": ts,
        "sequence": seq,
        "payload": payload,
    }))
}

/// A dead letter with `reason`.
pub fn dead(reason: &str) -> Ev {
    Ev::Dead(DeadLetter {
        reason: reason.to_owned(),
        preview: "{not json".to_owned(),
        partition: 0,
        offset: 7,
        envelope: None,
    })
}

/// A dead letter with `reason` whose envelope was readable: `source` sent
/// it with sequence `seq` at event time `ts` (payload rejected).
pub fn dead_with_envelope(reason: &str, kind: &str, source: &str, ts: f64, seq: u64) -> Ev {
    Ev::Dead(DeadLetter {
        reason: reason.to_owned(),
        preview: "{\"message_type\": ...".to_owned(),
        partition: 0,
        offset: 7,
        envelope: Some(crate::projection::Envelope {
            source_id: source.to_owned(),
            kind: crate::Kind::parse(kind),
            sequence: seq,
            timestamp: ts,
        }),
    })
}

/// `job_started` declaring `stages` in a chain (s[0] → s[1] → ...).
pub fn job_started(ts: f64, seq: u64, stages: &[&str]) -> Ev {
    let decls: Vec<Value> = stages
        .iter()
        .map(|s| json!({"stage_id": s, "operator_type": format!("op_{s}"), "min_parallelism": 1, "max_parallelism": 4}))
        .collect();
    let mut edges = serde_json::Map::new();
    for w in stages.windows(2) {
        edges.insert(w[0].to_string(), json!([w[1]]));
    }
    envelope(
        "job_started",
        JOB,
        ts,
        seq,
        json!({"dag_edges": edges, "stages": decls, "config": {"parallelism": 2}}),
    )
}

/// `job_completed`.
pub fn job_completed(ts: f64, seq: u64) -> Ev {
    envelope(
        "job_completed",
        JOB,
        ts,
        seq,
        json!({"status": "completed"}),
    )
}

/// `job_failed`.
pub fn job_failed(ts: f64, seq: u64) -> Ev {
    envelope("job_failed", JOB, ts, seq, json!({"status": "failed"}))
}

/// `stage_started`.
pub fn stage_started(stage: &str, ts: f64, seq: u64) -> Ev {
    envelope(
        "stage_started",
        stage,
        ts,
        seq,
        json!({"operator_type": "map", "min_parallelism": 2, "max_parallelism": 8}),
    )
}

/// `stage_completed`.
pub fn stage_completed(stage: &str, ts: f64, seq: u64) -> Ev {
    envelope("stage_completed", stage, ts, seq, json!({}))
}

/// `stage_metrics` with only the required `worker_count`; add fields with `with`.
pub fn stage_metrics(stage: &str, ts: f64, seq: u64, worker_count: u64) -> Ev {
    envelope(
        "stage_metrics",
        stage,
        ts,
        seq,
        json!({"worker_count": worker_count}),
    )
}

/// `backpressure`.
pub fn backpressure(stage: &str, ts: f64, seq: u64, active: bool, lag: u64) -> Ev {
    envelope(
        "backpressure",
        stage,
        ts,
        seq,
        json!({"active": active, "queue_lag": lag, "slow_down_factor": 0.5}),
    )
}

/// `worker_started`.
pub fn worker_started(worker: &str, stage: &str, ts: f64, seq: u64) -> Ev {
    envelope(
        "worker_started",
        worker,
        ts,
        seq,
        json!({"stage_id": stage, "assigned_partitions": [0, 1]}),
    )
}

/// `worker_metrics` with cumulative `input` / `output` (processed = input).
pub fn worker_metrics(worker: &str, stage: &str, ts: f64, seq: u64, input: u64, output: u64) -> Ev {
    envelope(
        "worker_metrics",
        worker,
        ts,
        seq,
        json!({
            "stage_id": stage, "input_records": input, "output_records": output,
            "processing_time": input as f64 / 100.0, "processed_count": input,
            "assigned_partitions": [0, 1], "is_running": true,
        }),
    )
}

/// `worker_stopped` without final counts (as the Solstice runtime sends it).
pub fn worker_stopped(worker: &str, stage: &str, ts: f64, seq: u64, processed: u64) -> Ev {
    envelope(
        "worker_stopped",
        worker,
        ts,
        seq,
        json!({"stage_id": stage, "reason": "scale_down", "processed_count": processed, "error_count": 1}),
    )
}

/// `worker_stopped` with final cumulative counts.
pub fn worker_stopped_counts(
    worker: &str,
    stage: &str,
    ts: f64,
    seq: u64,
    input: u64,
    output: u64,
) -> Ev {
    worker_stopped(worker, stage, ts, seq, input)
        .with("input_records", json!(input))
        .with("output_records", json!(output))
        .with("processing_time", json!(input as f64 / 100.0))
}

/// An `exception` sent by `worker` of `stage`.
pub fn exception(worker: &str, stage: &str, ts: f64, seq: u64, ty: &str, message: &str) -> Ev {
    envelope(
        "exception",
        worker,
        ts,
        seq,
        json!({
            "stage_id": stage, "worker_id": worker, "exception_type": ty,
            "message": message, "stacktrace": format!("Traceback: {message}"),
        }),
    )
}

/// A `checkpoint` of `status` (triggered, completed, failed).
pub fn checkpoint(id: u64, status: &str, ts: f64, seq: u64) -> Ev {
    envelope(
        "checkpoint",
        JOB,
        ts,
        seq,
        json!({"checkpoint_id": id, "status": status, "trigger_time": ts}),
    )
}

/// A `split_processed` by `worker` of `stage` naming `parents`.
pub fn split(worker: &str, stage: &str, id: &str, parents: &[&str], ts: f64, seq: u64) -> Ev {
    envelope(
        "split_processed",
        worker,
        ts,
        seq,
        json!({
            "stage_id": stage, "split_id": id, "parent_split_ids": parents,
            "partition_id": 3, "enqueue_time": ts - 0.5, "dequeue_time": ts - 0.25,
            "complete_time": ts, "queue_wait_time_ms": 250.0, "processing_time_ms": 250.0,
            "input_records": 10, "output_records": 8, "input_bytes": 1000, "output_bytes": 800,
            "payload_store_key": format!("payload/{id}"),
        }),
    )
}

/// A `split_processed` exactly as Solstice's `split_processed_message`
/// factory writes it: ids, counts and `processing_time` in seconds only.
pub fn solstice_split(
    worker: &str,
    stage: &str,
    id: &str,
    parents: &[&str],
    ts: f64,
    seq: u64,
    processing_time: f64,
) -> Ev {
    envelope(
        "split_processed",
        worker,
        ts,
        seq,
        json!({
            "stage_id": stage, "split_id": id, "parent_split_ids": parents,
            "input_records": 10, "output_records": 8, "processing_time": processing_time,
        }),
    )
}

/// A projector fed in order, with every row it handed out.
pub struct Given {
    projector: Projector,
    seq: u64,
    rows: BTreeMap<(&'static str, String), Vec<u8>>,
    outcomes: Vec<Outcome>,
    changed: BTreeSet<(&'static str, String)>,
}

/// A fresh projector fed `events` in order (log sequence from 1).
pub fn given(events: &[Ev]) -> Given {
    Given {
        projector: Projector::new(true),
        seq: 0,
        rows: BTreeMap::new(),
        outcomes: Vec::new(),
        changed: BTreeSet::new(),
    }
    .then(events)
}

/// Applies one record to `projector` at log sequence `seq`.
pub fn apply(projector: &mut Projector, seq: u64, ev: &Ev) -> Outcome {
    match ev {
        Ev::Msg(v) => {
            let text = v.to_string();
            let m: Message = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("test message does not decode: {e}: {text}"));
            projector.apply(seq, Entry::Valid(&m))
        }
        Ev::Dead(d) => projector.apply(seq, Entry::Dead(d)),
    }
}

/// Feeds `events` (log sequences from `first`) to a projector over a store
/// holding the `stored` rows of view `view` (as older code wrote them), and
/// returns the rows of that view the events changed, by key.
pub fn over_stored(
    view: &'static str,
    stored: &[(&str, Vec<u8>)],
    first: u64,
    events: &[Ev],
) -> BTreeMap<String, Vec<u8>> {
    let mut p = Projector::new(false);
    for (key, bytes) in stored {
        p.load(view, key, Some(bytes)).expect("stored row decodes");
    }
    for (i, ev) in events.iter().enumerate() {
        apply(&mut p, first + i as u64, ev);
    }
    let mut rows = BTreeMap::new();
    p.drain_dirty(&mut |v, key, bytes| {
        if v == view {
            rows.insert(key.to_owned(), bytes);
        }
    })
    .unwrap();
    rows
}

impl Given {
    /// Feeds more records; `changed` then lists the rows whose bytes these changed.
    pub fn then(mut self, events: &[Ev]) -> Given {
        self.changed.clear();
        for ev in events {
            self.seq += 1;
            let outcome = apply(&mut self.projector, self.seq, ev);
            self.outcomes.push(outcome);
            let (rows, changed) = (&mut self.rows, &mut self.changed);
            self.projector
                .drain_dirty(&mut |view, key, bytes| {
                    let k = (view, key.to_owned());
                    if rows.get(&k) != Some(&bytes) {
                        changed.insert(k.clone());
                        rows.insert(k, bytes);
                    }
                })
                .unwrap();
        }
        self
    }

    /// The row `key` of view `P`, if ever written.
    pub fn try_row<P: Projection>(&self, key: &str) -> Option<P::Row> {
        self.rows
            .get(&(P::NAME, key.to_owned()))
            .map(|b| decode_row(b).expect("row decodes"))
    }

    /// The row `key` of view `P` (panics when never written).
    pub fn row<P: Projection>(&self, key: &str) -> P::Row {
        self.try_row::<P>(key)
            .unwrap_or_else(|| panic!("no row {key:?} in view {}", P::NAME))
    }

    /// Every row of view `P`, in key order.
    pub fn rows<P: Projection>(&self) -> Vec<(String, P::Row)> {
        self.rows
            .iter()
            .filter(|((v, _), _)| *v == P::NAME)
            .map(|((_, k), b)| (k.clone(), decode_row(b).expect("row decodes")))
            .collect()
    }

    /// The job row.
    pub fn job(&self) -> JobRow {
        self.row::<JobView>("")
    }

    /// The checkpoint summary row.
    pub fn checkpoints(&self) -> CheckpointRow {
        self.row::<CheckpointView>(SUMMARY_KEY)
    }

    /// What happened to each record, in order.
    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }

    /// Keys of the rows of view `P` whose bytes the last `given` / `then`
    /// changed, in key order.
    pub fn changed_in<P: Projection>(&self) -> Vec<&str> {
        self.changed
            .iter()
            .filter(|(v, _)| *v == P::NAME)
            .map(|(_, k)| k.as_str())
            .collect()
    }

    /// Rows (view, key) whose bytes the last `given` / `then` changed.
    pub fn changed(&self) -> Vec<(&'static str, &str)> {
        self.changed.iter().map(|(v, k)| (*v, k.as_str())).collect()
    }

    /// Every row's latest bytes.
    pub fn bytes(&self) -> &BTreeMap<(&'static str, String), Vec<u8>> {
        &self.rows
    }
}

/// A busy job touching every view: reordered, retried, lost and dead
/// records, a producer restart, exceptions, checkpoints and lineage.
pub fn scenario() -> Vec<Ev> {
    let mut evs = vec![
        worker_started("w1", "map", 100.2, 1),
        job_started(100.0, 1, &["src", "map", "sink"]),
        worker_started("w0", "src", 100.1, 1),
        worker_started("w2", "map", 100.3, 1),
        dead("payload: missing field `stage_id`"),
    ];
    let mut seq = [1u64; 3];
    for t in 0..40u64 {
        let ts = 101.0 + t as f64 * 0.37;
        for (i, (w, stage)) in [("w0", "src"), ("w1", "map"), ("w2", "map")]
            .into_iter()
            .enumerate()
        {
            seq[i] += 1;
            let n = (t + 1) * (10 + i as u64 * 7);
            let m = worker_metrics(w, stage, ts + i as f64 * 0.01, seq[i], n, n - n / 10);
            if t % 11 == 3 && i == 1 {
                continue; // lost
            }
            evs.push(m.clone());
            if t % 7 == 2 {
                evs.push(m); // retried
            }
        }
        if t % 5 == 0 {
            evs.push(
                stage_metrics("map", ts, t + 2, 2)
                    .with("queue_lag", serde_json::json!(t * 3))
                    .with("backpressure_active", serde_json::json!(t % 2 == 0)),
            );
            evs.push(split("w0", "src", &format!("sp{t}"), &[], ts, 1000 + t));
            evs.push(split(
                "w1",
                "map",
                &format!("m{t}"),
                &[&format!("sp{t}"), "sp0"],
                ts + 0.1,
                2000 + t,
            ));
        }
        if t % 9 == 4 {
            evs.push(exception(
                "w2",
                "map",
                ts,
                3000 + t,
                "ValueError",
                &format!("bad row {t}"),
            ));
            evs.push(checkpoint(t, "triggered", ts, 4000 + t));
        }
        if t % 9 == 6 {
            evs.push(checkpoint(t - 2, "completed", ts, 4100 + t));
        }
    }
    // Reordered: a late, older report, a stop, then a revival attempt.
    evs.push(worker_metrics("w1", "map", 105.0, 5000, 1, 1));
    evs.push(worker_stopped("w2", "map", 116.0, 6000, 999));
    evs.push(worker_metrics("w2", "map", 117.0, 6001, 2000, 1900));
    // w0's producer restarts: sequence back to 1.
    evs.push(worker_metrics("w0", "src", 118.0, 1, 900, 900));
    evs.push(backpressure("map", 118.5, 7000, true, 77));
    evs.push(stage_completed("src", 119.0, 8000));
    evs.push(job_failed(120.0, 9000));
    evs
}
