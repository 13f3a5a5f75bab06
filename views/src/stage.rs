//! One stage: its status, parallelism, how many workers run it now and ever
//! did, and how many records it moved: the sum over every worker that ever
//! belonged to it of that worker's latest cumulative counts (stopped ones
//! included), so a `stage_metrics` without counts or a late report never
//! zeroes or regresses it.
//!
//! Each worker's share of those sums is a row of its own, a child of the
//! stage's row ([`share_key`]), not a map inside the stage row: a stage row
//! then no longer grows with its workers, nor is it rewritten whole, every
//! worker included, in every batch that touched it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::child_rows;
use crate::counts::Counts;
use crate::event::{Message, PartitionMetrics, Payload};
use crate::projection::{Input, Keys, Projection};

/// Declared, no sign of life yet.
pub const PENDING: &str = "PENDING";
/// Started, or one of its workers did.
pub const RUNNING: &str = "RUNNING";
/// `stage_completed` arrived.
pub const COMPLETED: &str = "COMPLETED";

/// One worker's share of the stage totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Contribution {
    pub counts: Counts,
    pub stopped: bool,
}

/// Key of a stage's row (see `child_rows`).
pub fn stage_key(stage_id: &str) -> Cow<'_, str> {
    child_rows::parent_key(stage_id)
}

/// Key of the row holding `worker`'s share of `stage_id`'s totals: a child
/// of the stage's row (see `child_rows`).
pub fn share_key(stage_id: &str, worker: &str) -> String {
    child_rows::child_key(stage_id, worker)
}

/// The latest `stage_metrics` report of the stage itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reported {
    pub ts: f64,
    pub worker_count: u64,
    pub input_records: Option<u64>,
    pub output_records: Option<u64>,
    pub input_throughput: Option<f64>,
    pub output_throughput: Option<f64>,
    pub partition_metrics: PartitionMetrics<'static>,
    /// Event time of the newest report that carried each optional value: a
    /// newer report without it must not hide an older one delivered late.
    pub input_ts: Option<f64>,
    pub output_ts: Option<f64>,
    pub partition_ts: Option<f64>,
}

/// Puts `value` (reported at `ts`) into `slot` unless a newer one is there.
fn latest<T>(ts: f64, at: &mut Option<f64>, slot: &mut Option<T>, value: Option<T>) {
    if let Some(v) = value {
        if at.is_none_or(|t| ts >= t) {
            *at = Some(ts);
            *slot = Some(v);
        }
    }
}

/// The stage row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StageRow {
    pub stage_id: String,
    pub operator_type: Option<String>,
    /// PENDING, RUNNING or COMPLETED (the job's end status is applied at read).
    pub status: String,
    pub declared: bool,
    pub min_parallelism: Option<u64>,
    pub max_parallelism: Option<u64>,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    /// Shares of workers kept inside the stage row, as rows stored before
    /// shares had rows of their own hold them; each moves to its own row
    /// the first time its worker reports again. Empty in new rows.
    pub workers: BTreeMap<String, Contribution>,
    pub input_records: u64,
    pub output_records: u64,
    pub processed_count: u64,
    pub running_workers: u64,
    pub reported: Option<Reported>,
    /// Latest (event time) queue lag and backpressure flag from
    /// `stage_metrics` or `backpressure`.
    pub pressure_ts: Option<f64>,
    pub queue_lag: Option<u64>,
    pub backpressure_active: Option<bool>,
    pub slow_down_factor: Option<f64>,
    /// Event time of the value in `queue_lag`, `backpressure_active`, `slow_down_factor`.
    pub queue_lag_ts: Option<f64>,
    pub backpressure_ts: Option<f64>,
    pub slow_down_ts: Option<f64>,
    pub exception_count: u64,
    /// How many workers ever belonged to the stage, besides those still in
    /// `workers` (rows stored before shares had rows of their own).
    pub worker_total: u64,
    /// Set only in a worker's share row ([`share_key`]): that worker's
    /// share. Such a row has nothing else set.
    pub share: Option<Contribution>,
}

impl StageRow {
    fn init(&mut self, stage_id: &str) {
        if self.stage_id.is_empty() {
            self.stage_id = stage_id.to_owned();
            self.status = PENDING.to_owned();
        }
    }

    fn mark_running(&mut self, ts: f64) {
        if self.status != COMPLETED && self.status != RUNNING {
            self.status = RUNNING.to_owned();
        }
        self.start_time = Some(self.start_time.map_or(ts, |s| s.min(ts)));
    }

    /// Keeps each of lag, flag and factor from the newest report carrying it.
    fn pressure(&mut self, ts: f64, lag: Option<u64>, active: Option<bool>, factor: Option<f64>) {
        self.pressure_ts = Some(self.pressure_ts.map_or(ts, |t| t.max(ts)));
        latest(ts, &mut self.queue_lag_ts, &mut self.queue_lag, lag);
        latest(
            ts,
            &mut self.backpressure_ts,
            &mut self.backpressure_active,
            active,
        );
        latest(
            ts,
            &mut self.slow_down_ts,
            &mut self.slow_down_factor,
            factor,
        );
    }

    /// Updates one worker's share, held in `holder` (its share row), keeping
    /// the sums exact. A share still inside an older stage row moves out.
    /// Without a holder (`keys` always lists one) nothing changes.
    fn contribute(
        &mut self,
        holder: Option<&mut StageRow>,
        worker: &str,
        f: impl FnOnce(&mut Contribution),
    ) {
        let Some(holder) = holder else { return };
        let (before, was_running) = match (holder.share, self.workers.remove(worker)) {
            (Some(c), _) => (c, !c.stopped),
            (None, Some(c)) => {
                self.worker_total += 1;
                (c, !c.stopped)
            }
            (None, None) => {
                self.worker_total += 1;
                (Contribution::default(), false)
            }
        };
        let mut after = before;
        f(&mut after);
        holder.share = Some(after);
        // Saturating: workers reporting counts near u64::MAX pin the sum
        // there instead of wrapping it (or panicking in a debug build).
        let moved = |sum: u64, was: u64, now: u64| sum.saturating_sub(was).saturating_add(now);
        self.input_records = moved(
            self.input_records,
            before.counts.input_records,
            after.counts.input_records,
        );
        self.output_records = moved(
            self.output_records,
            before.counts.output_records,
            after.counts.output_records,
        );
        self.processed_count = moved(
            self.processed_count,
            before.counts.processed_count,
            after.counts.processed_count,
        );
        self.running_workers = moved(
            self.running_workers,
            u64::from(was_running),
            u64::from(!after.stopped),
        );
    }

    /// How many workers ever belonged to the stage.
    pub fn workers_ever(&self) -> u64 {
        self.worker_total + self.workers.len() as u64
    }

    /// Workers of the stage currently running (a stage that only reports
    /// `stage_metrics` gives its own count).
    pub fn worker_count(&self) -> u64 {
        match (&self.reported, self.workers_ever() == 0) {
            (Some(r), true) => r.worker_count,
            _ => self.running_workers,
        }
    }

    /// Input records: the workers' sum, or the stage's own report without workers.
    pub fn input_total(&self) -> u64 {
        match (&self.reported, self.workers_ever() == 0) {
            (Some(r), true) => r.input_records.unwrap_or(0),
            _ => self.input_records,
        }
    }

    /// Output records, as `input_total`.
    pub fn output_total(&self) -> u64 {
        match (&self.reported, self.workers_ever() == 0) {
            (Some(r), true) => r.output_records.unwrap_or(0),
            _ => self.output_records,
        }
    }

    /// Status once the job's own status is known: a job that ended settles
    /// every stage not yet COMPLETED to its final status.
    pub fn effective_status(&self, job_status: &str) -> String {
        if self.status != COMPLETED && (job_status == "COMPLETED" || job_status == "FAILED") {
            job_status.to_owned()
        } else {
            self.status.clone()
        }
    }
}

/// True for the messages that change a worker's share of its stage.
fn is_worker_report(msg: &Message) -> bool {
    matches!(
        msg.payload,
        Payload::WorkerStarted(_) | Payload::WorkerMetrics(_) | Payload::WorkerStopped(_)
    )
}

/// The stage projection.
#[derive(Debug, Default, Clone, Copy)]
pub struct StageView;

/// Calls `f` with each stage id a message touches, distinct, in message order.
fn for_stages<'m>(msg: &'m Message, mut f: impl FnMut(&'m str)) {
    match &msg.payload {
        Payload::JobStarted(p) => {
            for (i, s) in p.stages.iter().enumerate() {
                if !p.stages[..i].iter().any(|d| d.stage_id == s.stage_id) {
                    f(&s.stage_id);
                }
            }
        }
        Payload::SplitProcessed(_) => {}
        _ => msg.stage_id().into_iter().for_each(f),
    }
}

impl Projection for StageView {
    const NAME: &'static str = "stage";
    // Every message naming a stage: all but `split_processed`.
    const INTEREST: crate::Interest = crate::Interest::applied_except(crate::Kind::SplitProcessed);
    type Row = StageRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        let Some(msg) = input.applied() else { return };
        for_stages(msg, |id| keys.push(&stage_key(id)));
        // A worker report names one stage: the worker's share is its child.
        if let (Some(stage), true) = (msg.stage_id(), is_worker_report(msg)) {
            child_rows::push_child(keys, stage, &[&msg.source_id]);
        }
    }

    fn apply(&self, input: &Input, rows: &mut [&mut StageRow]) {
        let Some(msg) = input.applied() else { return };
        let ts = msg.timestamp;
        if let Payload::JobStarted(p) = &msg.payload {
            let mut ids = Vec::new();
            for_stages(msg, |id| ids.push(id));
            for (row, id) in rows.iter_mut().zip(ids) {
                row.init(id);
                let Some(decl) = p.stages.iter().find(|d| d.stage_id == id) else {
                    continue;
                };
                row.declared = true;
                // A `stage_started` already seen wins over the declaration.
                if row.operator_type.is_none() {
                    row.operator_type.clone_from(&decl.operator_type);
                }
                row.min_parallelism = row.min_parallelism.or(decl.min_parallelism);
                row.max_parallelism = row.max_parallelism.or(decl.max_parallelism);
            }
            return;
        }
        let (row, rest) = rows.split_first_mut().expect("one key at least");
        row.init(msg.stage_id().unwrap_or_default());
        // The worker's share row, listed second by `keys` for worker reports.
        let holder = rest.first_mut().map(|r| &mut **r);
        match &msg.payload {
            Payload::StageStarted(p) => {
                row.mark_running(ts);
                // Absent descriptive fields keep what the declaration said.
                if p.operator_type.is_some() {
                    row.operator_type.clone_from(&p.operator_type);
                }
                row.min_parallelism = p.min_parallelism.or(row.min_parallelism);
                row.max_parallelism = p.max_parallelism.or(row.max_parallelism);
            }
            Payload::StageCompleted => {
                row.status = COMPLETED.to_owned();
                row.end_time = Some(row.end_time.map_or(ts, |e| e.max(ts)));
            }
            Payload::StageMetrics(p) => {
                let newest = row.reported.as_ref().is_none_or(|r| ts >= r.ts);
                let r = row.reported.get_or_insert_with(Reported::default);
                if newest {
                    r.ts = ts;
                    r.worker_count = p.worker_count;
                    r.input_throughput = p.input_throughput.map(|v| v.0);
                    r.output_throughput = p.output_throughput.map(|v| v.0);
                }
                // Counts are cumulative: the newest report carrying them wins.
                latest(ts, &mut r.input_ts, &mut r.input_records, p.input_records);
                latest(
                    ts,
                    &mut r.output_ts,
                    &mut r.output_records,
                    p.output_records,
                );
                let mut pm = None;
                latest(
                    ts,
                    &mut r.partition_ts,
                    &mut pm,
                    p.partition_metrics.as_ref(),
                );
                if let Some(pm) = pm {
                    r.partition_metrics = pm.clone().into_owned();
                }
                row.pressure(ts, p.queue_lag, p.backpressure_active, None);
            }
            Payload::Backpressure(p) => {
                row.pressure(
                    ts,
                    p.queue_lag,
                    Some(p.active),
                    p.slow_down_factor.map(|f| f.0),
                );
            }
            Payload::WorkerStarted(_) => {
                row.mark_running(ts);
                row.contribute(holder, &msg.source_id, |_| {});
            }
            Payload::WorkerMetrics(p) => {
                row.mark_running(ts);
                let report = Counts {
                    ts: Some(ts),
                    input_records: p.input_records,
                    output_records: p.output_records,
                    processed_count: p.processed_count,
                    processing_time: p.processing_time.0,
                    stop: None,
                };
                row.contribute(holder, &msg.source_id, |c| {
                    c.counts.offer(report);
                });
            }
            Payload::WorkerStopped(p) => {
                row.mark_running(ts);
                row.contribute(holder, &msg.source_id, |c| {
                    c.stopped = true;
                    c.counts.offer_stop(ts, p);
                });
            }
            Payload::Exception(_) => row.exception_count += 1,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{
        share_key, stage_key, Contribution, StageRow, StageView, COMPLETED, PENDING, RUNNING,
    };
    use crate::child_rows::is_parent_key;
    use crate::testkit::*;

    fn stage(g: &Given, id: &str) -> StageRow {
        g.row::<StageView>(&stage_key(id))
    }

    fn share(g: &Given, stage: &str, worker: &str) -> Contribution {
        g.row::<StageView>(&share_key(stage, worker))
            .share
            .expect("a share row holds a share")
    }

    fn totals(s: &StageRow) -> (u64, u64, u64, u64, u64) {
        (
            s.input_total(),
            s.output_total(),
            s.processed_count,
            s.worker_count(),
            s.workers_ever(),
        )
    }

    #[test]
    fn declared_stages_start_pending() {
        let g = given(&[job_started(1.0, 1, &["src", "map"])]);
        let s = stage(&g, "src");
        assert_eq!(s.stage_id, "src");
        assert_eq!(s.status, PENDING);
        assert!(s.declared);
        assert_eq!(s.operator_type.as_deref(), Some("op_src"));
        assert_eq!((s.min_parallelism, s.max_parallelism), (Some(1), Some(4)));
        assert_eq!(s.start_time, None);
        assert_eq!(totals(&s), (0, 0, 0, 0, 0));
        assert_eq!(stage(&g, "map").status, PENDING);
        assert_eq!(g.rows::<StageView>().len(), 2);
    }

    #[test]
    fn pending_then_running_on_the_first_worker_then_completed() {
        let g = given(&[
            job_started(1.0, 1, &["s1"]),
            worker_started("w1", "s1", 5.0, 1),
        ]);
        let s = stage(&g, "s1");
        assert_eq!(s.status, RUNNING);
        assert_eq!(s.start_time, Some(5.0));
        let g = g.then(&[stage_completed("s1", 9.0, 1)]);
        let s = stage(&g, "s1");
        assert_eq!(s.status, COMPLETED);
        assert_eq!(s.end_time, Some(9.0));
        // A late worker message or stage_started does not reopen it.
        let g = g.then(&[
            worker_metrics("w1", "s1", 8.0, 2, 10, 10),
            stage_started("s1", 4.0, 2),
        ]);
        let s = stage(&g, "s1");
        assert_eq!(s.status, COMPLETED);
        assert_eq!(s.input_total(), 10);
    }

    #[test]
    fn stage_started_marks_running_with_its_parallelism() {
        let g = given(&[job_started(1.0, 1, &["s1"]), stage_started("s1", 2.0, 1)]);
        let s = stage(&g, "s1");
        assert_eq!(s.status, RUNNING);
        assert_eq!(s.start_time, Some(2.0));
        assert_eq!(s.operator_type.as_deref(), Some("map"));
        assert_eq!((s.min_parallelism, s.max_parallelism), (Some(2), Some(8)));
    }

    #[test]
    fn descriptive_fields_a_message_lacks_keep_what_another_said() {
        // A declaration with only the id, then a `stage_started` with its
        // type only: each field is the last one sent.
        let decl = envelope(
            "job_started",
            JOB,
            1.0,
            1,
            serde_json::json!({"stages": [{"stage_id": "s1"}]}),
        );
        let g = given(&[decl]);
        let s = stage(&g, "s1");
        assert!(s.declared);
        assert_eq!(
            (s.operator_type.as_deref(), s.min_parallelism),
            (None, None)
        );
        let started = envelope(
            "stage_started",
            "s1",
            2.0,
            1,
            serde_json::json!({"operator_type": "map", "min_parallelism": null}),
        );
        let g = g.then(&[started, job_started(3.0, 2, &["s1"])]);
        let s = stage(&g, "s1");
        assert_eq!(s.status, RUNNING);
        // The later full declaration fills only what was still unknown.
        assert_eq!(s.operator_type.as_deref(), Some("map"));
        assert_eq!((s.min_parallelism, s.max_parallelism), (Some(1), Some(4)));
    }

    #[test]
    fn totals_sum_every_worker_that_ever_belonged_including_stopped_ones() {
        let g = given(&[
            worker_started("w1", "s1", 1.0, 1),
            worker_started("w2", "s1", 1.0, 1),
            worker_started("w3", "s2", 1.0, 1),
            worker_metrics("w1", "s1", 2.0, 2, 100, 90),
            worker_metrics("w2", "s1", 2.0, 2, 50, 40),
            worker_metrics("w3", "s2", 2.0, 2, 7, 7),
            worker_stopped("w1", "s1", 3.0, 3, 100),
        ]);
        let s = stage(&g, "s1");
        assert_eq!(totals(&s), (150, 130, 150, 1, 2));
        assert_eq!(s.running_workers, 1);
        assert!(share(&g, "s1", "w1").stopped);
        assert!(!share(&g, "s1", "w2").stopped);
        assert_eq!(share(&g, "s1", "w2").counts.input_records, 50);
        assert_eq!(totals(&stage(&g, "s2")), (7, 7, 7, 1, 1));
        // The worker stopped; its records still count after more reports.
        let g = g.then(&[worker_metrics("w2", "s1", 4.0, 3, 80, 70)]);
        assert_eq!(totals(&stage(&g, "s1")), (180, 160, 180, 1, 2));
    }

    #[test]
    fn a_late_older_report_never_regresses_the_totals() {
        let g = given(&[
            worker_metrics("w1", "s1", 12.0, 2, 300, 200),
            worker_metrics("w1", "s1", 11.0, 1, 100, 50),
        ]);
        assert_eq!(totals(&stage(&g, "s1")), (300, 200, 300, 1, 1));
    }

    #[test]
    fn stopped_workers_are_not_revived_by_late_running_reports() {
        let g = given(&[
            worker_started("w1", "s1", 1.0, 1),
            worker_started("w2", "s1", 1.0, 1),
            worker_stopped("w1", "s1", 5.0, 3, 10),
        ]);
        assert_eq!(stage(&g, "s1").worker_count(), 1);
        let g = g.then(&[
            worker_metrics("w1", "s1", 4.0, 2, 10, 10),
            worker_metrics("w1", "s1", 6.0, 4, 12, 12),
        ]);
        let s = stage(&g, "s1");
        assert_eq!(totals(&s), (12, 12, 12, 1, 2));
        let g = g.then(&[worker_stopped("w2", "s1", 7.0, 2, 0)]);
        assert_eq!(totals(&stage(&g, "s1")), (12, 12, 12, 0, 2));
    }

    #[test]
    fn a_stop_delivered_before_the_start_leaves_the_worker_stopped() {
        let g = given(&[
            worker_stopped("w1", "s1", 5.0, 2, 10),
            worker_started("w1", "s1", 1.0, 1),
        ]);
        let s = stage(&g, "s1");
        assert_eq!(s.worker_count(), 0);
        assert_eq!(s.workers_ever(), 1);
        assert_eq!(s.processed_count, 10);
    }

    #[test]
    fn stop_with_counts_and_without() {
        let g = given(&[
            worker_metrics("w1", "s1", 1.0, 1, 10, 9),
            worker_metrics("w2", "s1", 1.0, 1, 20, 19),
            worker_stopped_counts("w1", "s1", 2.0, 2, 15, 14),
            worker_stopped("w2", "s1", 2.0, 2, 25),
        ]);
        // w1: final counts; w2: counts of its last report, final processed.
        assert_eq!(totals(&stage(&g, "s1")), (35, 33, 40, 0, 2));
    }

    #[test]
    fn workers_reporting_u64_max_records_saturate_the_stage_totals() {
        let g = given(&[
            worker_started("w1", "s1", 1.0, 1),
            worker_started("w2", "s1", 1.0, 1),
            worker_metrics("w1", "s1", 2.0, 2, u64::MAX, u64::MAX),
            worker_metrics("w2", "s1", 2.0, 2, u64::MAX, 7),
        ]);
        let s = stage(&g, "s1");
        assert_eq!((s.input_total(), s.output_total()), (u64::MAX, u64::MAX));
        assert_eq!(s.worker_count(), 2);
    }

    #[test]
    fn stage_metrics_without_counts_never_zero_the_totals() {
        let g = given(&[
            worker_metrics("w1", "s1", 1.0, 1, 10, 9),
            stage_metrics("s1", 2.0, 1, 3)
                .with("input_throughput", json!(5.0))
                .with("input_records", json!(999)),
            stage_metrics("s1", 3.0, 2, 3),
        ]);
        let s = stage(&g, "s1");
        // With workers the totals are theirs, not the stage's own report.
        assert_eq!(totals(&s), (10, 9, 10, 1, 1));
        let r = s.reported.as_ref().unwrap();
        assert_eq!(r.ts, 3.0);
        assert_eq!(r.worker_count, 3);
        assert_eq!(r.input_throughput, None);

        // A stage that only reports for itself.
        let g = given(&[
            stage_metrics("s1", 1.0, 1, 2)
                .with("input_records", json!(40))
                .with("output_records", json!(30)),
            stage_metrics("s1", 2.0, 2, 4),
        ]);
        let s = stage(&g, "s1");
        assert_eq!(totals(&s), (40, 30, 0, 4, 0));
    }

    #[test]
    fn a_late_stage_report_with_counts_counts_when_the_newer_one_had_none() {
        let g = given(&[
            stage_metrics("s1", 2.0, 2, 4),
            stage_metrics("s1", 1.0, 1, 2)
                .with("input_records", json!(40))
                .with("output_records", json!(30)),
        ]);
        let s = stage(&g, "s1");
        assert_eq!(
            (s.input_total(), s.output_total(), s.worker_count()),
            (40, 30, 4)
        );
        // But it never overrides newer counts.
        let g = g.then(&[
            stage_metrics("s1", 3.0, 3, 4).with("input_records", json!(60)),
            stage_metrics("s1", 2.5, 4, 4).with("input_records", json!(50)),
        ]);
        let s = stage(&g, "s1");
        assert_eq!((s.input_total(), s.output_total()), (60, 30));
    }

    #[test]
    fn partition_metrics_are_kept_when_a_newer_report_omits_them() {
        let g = given(&[
            stage_metrics("s1", 1.0, 1, 2).with("partition_metrics", json!({"0": {"lag": 3}})),
            stage_metrics("s1", 2.0, 2, 2),
        ]);
        let r = stage(&g, "s1").reported.unwrap();
        assert_eq!(r.partition_metrics.to_map()["0"], json!({"lag": 3}));
    }

    #[test]
    fn worker_messages_before_job_started_are_kept() {
        let g = given(&[
            worker_started("w1", "s1", 1.0, 1),
            worker_metrics("w1", "s1", 2.0, 2, 10, 8),
            exception("w1", "s1", 2.5, 3, "E", "x"),
            job_started(0.5, 1, &["s1", "s2"]),
        ]);
        let s = stage(&g, "s1");
        assert_eq!(s.status, RUNNING);
        assert!(s.declared);
        assert_eq!(s.operator_type.as_deref(), Some("op_s1"));
        assert_eq!(totals(&s), (10, 8, 10, 1, 1));
        assert_eq!(s.exception_count, 1);
        assert_eq!(s.start_time, Some(1.0));
        assert_eq!(stage(&g, "s2").status, PENDING);
        // A second job_started (a retry with another timestamp) resets nothing either.
        let g = g.then(&[job_started(0.6, 1, &["s1", "s2"])]);
        assert_eq!(stage(&g, "s1"), s);
    }

    #[test]
    fn the_job_end_settles_every_stage_not_completed() {
        let g = given(&[
            job_started(1.0, 1, &["a", "b", "c"]),
            worker_started("w1", "b", 2.0, 1),
            worker_started("w2", "c", 2.0, 1),
            stage_completed("c", 3.0, 1),
        ]);
        let (a, b, c) = (stage(&g, "a"), stage(&g, "b"), stage(&g, "c"));
        assert_eq!(
            [
                a.effective_status("RUNNING"),
                b.effective_status("RUNNING"),
                c.effective_status("RUNNING")
            ],
            [PENDING, RUNNING, COMPLETED]
        );
        assert_eq!(
            [
                a.effective_status("COMPLETED"),
                b.effective_status("COMPLETED"),
                c.effective_status("COMPLETED")
            ],
            [COMPLETED, COMPLETED, COMPLETED]
        );
        assert_eq!(
            [
                a.effective_status("FAILED"),
                b.effective_status("FAILED"),
                c.effective_status("FAILED")
            ],
            ["FAILED", "FAILED", COMPLETED]
        );
    }

    #[test]
    fn queue_lag_and_backpressure_are_the_latest_by_event_time() {
        let g = given(&[
            backpressure("s1", 10.0, 1, true, 5),
            stage_metrics("s1", 9.0, 2, 1)
                .with("queue_lag", json!(9))
                .with("backpressure_active", json!(false)),
        ]);
        let s = stage(&g, "s1");
        assert_eq!((s.queue_lag, s.backpressure_active), (Some(5), Some(true)));
        assert_eq!(s.slow_down_factor, Some(0.5));
        let g = g.then(&[stage_metrics("s1", 11.0, 3, 1).with("queue_lag", json!(2))]);
        let s = stage(&g, "s1");
        assert_eq!((s.queue_lag, s.backpressure_active), (Some(2), Some(true)));
    }

    #[test]
    fn a_newer_report_without_lag_does_not_hide_an_older_lag_delivered_late() {
        let g = given(&[
            stage_metrics("s1", 10.0, 2, 1),
            backpressure("s1", 9.0, 1, true, 7),
        ]);
        let s = stage(&g, "s1");
        assert_eq!((s.queue_lag, s.backpressure_active), (Some(7), Some(true)));
    }

    #[test]
    fn exceptions_count_on_their_stage() {
        let g = given(&[
            exception("w1", "s1", 1.0, 1, "E", "a"),
            exception("w1", "s1", 2.0, 2, "E", "b"),
            exception("w2", "s2", 2.0, 1, "E", "b"),
        ]);
        assert_eq!(stage(&g, "s1").exception_count, 2);
        assert_eq!(stage(&g, "s2").exception_count, 1);
    }

    #[test]
    fn the_stage_row_stays_small_however_many_workers_it_had() {
        let mut events = Vec::new();
        for i in 0..2000 {
            let w = format!("worker_{i:05}");
            events.push(worker_started(&w, "s1", 1.0, 1));
            events.push(worker_metrics(&w, "s1", 2.0, 2, 10, 9));
        }
        let g = given(&events);
        let s = stage(&g, "s1");
        assert_eq!(totals(&s), (20_000, 18_000, 20_000, 2000, 2000));
        assert!(s.workers.is_empty());
        let bytes = crate::projection::encode_row(&s).unwrap().len();
        assert!(bytes < 200, "stage row of {bytes} bytes");
        // One share row per worker, and only the last worker's rows change
        // with its report.
        let rows = g.rows::<StageView>();
        assert_eq!(rows.len(), 2001);
        let stage_rows = rows.iter().filter(|(k, _)| is_parent_key(k));
        assert_eq!(stage_rows.count(), 1);
        let g = g.then(&[worker_metrics("worker_00007", "s1", 3.0, 3, 15, 9)]);
        let share_7 = share_key("s1", "worker_00007");
        let changed = g.changed_in::<StageView>();
        assert_eq!(changed, [share_7.as_str(), "s1"]);
        assert_eq!(stage(&g, "s1").input_total(), 20_005);
    }

    #[test]
    fn a_stage_whose_id_looks_like_a_share_key_keeps_its_own_row() {
        // share_key("a", "b") is "\x001:ab": a stage of that id is escaped.
        let g = given(&[
            worker_metrics("b", "a", 1.0, 1, 7, 7),
            worker_metrics("w", "\x001:ab", 1.0, 1, 4, 3),
        ]);
        assert_eq!(totals(&stage(&g, "a")), (7, 7, 7, 1, 1));
        assert_eq!(share(&g, "a", "b").counts.input_records, 7);
        assert_eq!(stage(&g, "\x001:ab").input_total(), 4);
        assert_eq!(stage(&g, "\x001:ab").stage_id, "\x001:ab");
        assert_eq!(share(&g, "\x001:ab", "w").counts.input_records, 4);
    }

    #[test]
    fn shares_stored_inside_an_older_stage_row_move_out_exactly() {
        use crate::projection::encode_row;
        // A stage row as stored before shares had rows of their own: w1
        // stopped with 10 records, w2 running with 5.
        let mut old = StageRow::default();
        let g = given(&[
            worker_metrics("w1", "s1", 1.0, 1, 10, 10),
            worker_stopped("w1", "s1", 2.0, 2, 10),
            worker_metrics("w2", "s1", 1.0, 1, 5, 5),
        ]);
        let now = stage(&g, "s1");
        old.stage_id = now.stage_id.clone();
        old.status = now.status.clone();
        old.start_time = now.start_time;
        for w in ["w1", "w2"] {
            old.workers.insert(w.to_owned(), share(&g, "s1", w));
        }
        (old.input_records, old.output_records) = (now.input_records, now.output_records);
        (old.processed_count, old.running_workers) = (now.processed_count, now.running_workers);
        assert_eq!(totals(&old), (15, 15, 15, 1, 2));

        let later = [
            worker_metrics("w2", "s1", 3.0, 2, 8, 7),
            worker_started("w3", "s1", 3.0, 1),
        ];
        let rows = over_stored("stage", &[("s1", encode_row(&old).unwrap())], 10, &later);
        let decode = |k: &str| -> StageRow { crate::projection::decode_row(&rows[k]).unwrap() };
        let s = decode("s1");
        // w2 moved out to its own row, w1 (silent) stays inside, w3 is new.
        assert_eq!(s.workers.keys().collect::<Vec<_>>(), ["w1"]);
        assert_eq!(totals(&s), (18, 17, 18, 2, 3));
        assert_eq!(
            decode(&share_key("s1", "w2"))
                .share
                .unwrap()
                .counts
                .input_records,
            8
        );
        assert!(!decode(&share_key("s1", "w3")).share.unwrap().stopped);
    }
}
