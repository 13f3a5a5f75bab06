//! The job's lifecycle in event-time order: job, stage and worker starts and
//! ends, exceptions and finished checkpoints. Metrics are not lifecycle and
//! stay out. Keys sort by event time, then log sequence.

use serde::{Deserialize, Serialize};

use crate::event::{CheckpointStatus, Payload};
use crate::projection::{Input, Keys, Projection};

/// One lifecycle event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimelineRow {
    pub timestamp: f64,
    pub offset: u64,
    pub event: String,
    pub source_id: String,
    pub stage_id: Option<String>,
    pub detail: String,
}

/// The timeline projection.
#[derive(Debug, Default, Clone, Copy)]
pub struct TimelineView;

fn detail(payload: &Payload) -> Option<String> {
    Some(match payload {
        Payload::JobStarted(p) => format!("{} stages", p.stages.len()),
        Payload::JobCompleted(p) | Payload::JobFailed(p) => p.status.clone().unwrap_or_default(),
        Payload::StageStarted(p) => p.operator_type.clone().unwrap_or_default(),
        Payload::StageCompleted => String::new(),
        Payload::WorkerStarted(p) => format!(
            "partitions {:?}",
            p.assigned_partitions.as_deref().unwrap_or_default()
        ),
        Payload::WorkerStopped(p) => p.reason.clone().unwrap_or_default(),
        Payload::Exception(p) => format!("{}: {}", p.exception_type, p.message),
        Payload::Checkpoint(p) if p.status != CheckpointStatus::Triggered => {
            format!("checkpoint {} {:?}", p.checkpoint_id, p.status).to_lowercase()
        }
        _ => return None,
    })
}

impl Projection for TimelineView {
    const NAME: &'static str = "timeline";
    const INTEREST: crate::Interest = crate::Interest::kinds(&[
        crate::Kind::JobStarted,
        crate::Kind::JobCompleted,
        crate::Kind::JobFailed,
        crate::Kind::StageStarted,
        crate::Kind::StageCompleted,
        crate::Kind::WorkerStarted,
        crate::Kind::WorkerStopped,
        crate::Kind::Exception,
        crate::Kind::Checkpoint,
    ]);
    const APPEND_ONLY: bool = true;
    type Row = TimelineRow;

    fn keys(&self, input: &Input, keys: &mut Keys) {
        if let Some(msg) = input.applied() {
            if detail(&msg.payload).is_some() {
                let micros = (msg.timestamp * 1e6).round().max(0.0) as u64;
                keys.push_fmt(format_args!("{micros:016x}{:016x}", input.seq));
            }
        }
    }

    fn apply(&self, input: &Input, rows: &mut [&mut TimelineRow]) {
        let Some(msg) = input.applied() else { return };
        let Some(detail) = detail(&msg.payload) else {
            return;
        };
        *rows[0] = TimelineRow {
            timestamp: msg.timestamp,
            offset: input.seq,
            event: msg.kind.as_str().to_owned(),
            source_id: msg.source_id.to_string(),
            stage_id: msg.stage_id().map(str::to_owned),
            detail,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::TimelineView;
    use crate::testkit::*;

    #[test]
    fn lifecycle_events_in_event_time_order_without_metrics() {
        let g = given(&[
            worker_started("w1", "s1", 2.0, 1),
            job_started(1.0, 1, &["s1"]),
            worker_metrics("w1", "s1", 3.0, 2, 5, 5),
            stage_metrics("s1", 3.0, 1, 1),
            backpressure("s1", 3.0, 2, true, 1),
            split("w1", "s1", "sp", &[], 3.0, 3),
            checkpoint(1, "triggered", 3.5, 2),
            checkpoint(1, "completed", 4.0, 3),
            exception("w1", "s1", 4.0, 4, "E", "boom"),
            stage_started("s1", 1.5, 3),
            worker_stopped("w1", "s1", 5.0, 5, 5),
            stage_completed("s1", 5.5, 4),
            job_completed(6.0, 4),
        ]);
        let got: Vec<(f64, u64, String, String, Option<String>, String)> = g
            .rows::<TimelineView>()
            .into_iter()
            .map(|(_, r)| {
                (
                    r.timestamp,
                    r.offset,
                    r.event,
                    r.source_id,
                    r.stage_id,
                    r.detail,
                )
            })
            .collect();
        let s1 = || Some("s1".to_owned());
        let want = vec![
            (
                1.0,
                2,
                "job_started".into(),
                JOB.into(),
                None,
                "1 stages".into(),
            ),
            (
                1.5,
                10,
                "stage_started".into(),
                "s1".into(),
                s1(),
                "map".into(),
            ),
            (
                2.0,
                1,
                "worker_started".into(),
                "w1".into(),
                s1(),
                "partitions [0, 1]".into(),
            ),
            (
                4.0,
                8,
                "checkpoint".into(),
                JOB.into(),
                None,
                "checkpoint 1 completed".into(),
            ),
            (
                4.0,
                9,
                "exception".into(),
                "w1".into(),
                s1(),
                "E: boom".into(),
            ),
            (
                5.0,
                11,
                "worker_stopped".into(),
                "w1".into(),
                s1(),
                "scale_down".into(),
            ),
            (
                5.5,
                12,
                "stage_completed".into(),
                "s1".into(),
                s1(),
                String::new(),
            ),
            (
                6.0,
                13,
                "job_completed".into(),
                JOB.into(),
                None,
                "completed".into(),
            ),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn duplicates_and_dead_letters_stay_off_the_timeline() {
        let e = worker_started("w1", "s1", 2.0, 1);
        let g = given(&[e.clone(), e, dead("x")]);
        assert_eq!(g.rows::<TimelineView>().len(), 1);
    }
}
