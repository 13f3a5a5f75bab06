//! The state-message model: the envelope and one typed payload per message
//! type (contract §1). Decoding is typed (no generic JSON value on the hot
//! path) and strict: a missing required field, a wrong type, a negative count
//! or a non-finite number is a decode error, which the codec turns into a dead
//! letter. Strings borrow from the record bytes where the format allows.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

pub use crate::partition_metrics::PartitionMetrics;

/// A float that is guaranteed finite: NaN and infinities are rejected at decode.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, Serialize)]
#[serde(transparent)]
pub struct Finite(pub f64);

impl<'de> Deserialize<'de> for Finite {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if v.is_finite() {
            Ok(Finite(v))
        } else {
            Err(de::Error::custom(format_args!("non-finite number {v}")))
        }
    }
}

/// Every `message_type` the contract knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    JobStarted,
    JobCompleted,
    JobFailed,
    StageStarted,
    StageCompleted,
    StageMetrics,
    WorkerStarted,
    WorkerStopped,
    WorkerMetrics,
    Exception,
    Backpressure,
    Checkpoint,
    SplitProcessed,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 13] = [
        Kind::JobStarted,
        Kind::JobCompleted,
        Kind::JobFailed,
        Kind::StageStarted,
        Kind::StageCompleted,
        Kind::StageMetrics,
        Kind::WorkerStarted,
        Kind::WorkerStopped,
        Kind::WorkerMetrics,
        Kind::Exception,
        Kind::Backpressure,
        Kind::Checkpoint,
        Kind::SplitProcessed,
    ];

    /// The wire name (`message_type`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::JobStarted => "job_started",
            Kind::JobCompleted => "job_completed",
            Kind::JobFailed => "job_failed",
            Kind::StageStarted => "stage_started",
            Kind::StageCompleted => "stage_completed",
            Kind::StageMetrics => "stage_metrics",
            Kind::WorkerStarted => "worker_started",
            Kind::WorkerStopped => "worker_stopped",
            Kind::WorkerMetrics => "worker_metrics",
            Kind::Exception => "exception",
            Kind::Backpressure => "backpressure",
            Kind::Checkpoint => "checkpoint",
            Kind::SplitProcessed => "split_processed",
        }
    }

    /// Parses a wire name; `None` for an unknown type.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stage as declared by `job_started`: only `stage_id` is required
/// (it keys the stage row); the rest is descriptive.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct StageDecl {
    pub stage_id: String,
    #[serde(default)]
    pub operator_type: Option<String>,
    #[serde(default)]
    pub min_parallelism: Option<u64>,
    #[serde(default)]
    pub max_parallelism: Option<u64>,
}

/// `job_started`: `stages` declares the stage rows; the DAG and the
/// configuration are descriptive (absent or null: empty, Solstice's own
/// default).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobStarted {
    #[serde(default)]
    pub dag_edges: Option<BTreeMap<String, Vec<String>>>,
    pub stages: Vec<StageDecl>,
    #[serde(default)]
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `job_completed` / `job_failed`: the message type says how the job
/// ended; the payload is descriptive.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobEnded {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub duration_ms: Option<Finite>,
    #[serde(default)]
    pub final_metrics: Option<serde_json::Value>,
}

/// `stage_started`: the stage is the envelope's `source_id`; the payload
/// is descriptive, every field optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StageStarted {
    #[serde(default)]
    pub operator_type: Option<String>,
    #[serde(default)]
    pub min_parallelism: Option<u64>,
    #[serde(default)]
    pub max_parallelism: Option<u64>,
}

/// `stage_metrics`: the stage's own report; counts are optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StageMetrics<'a> {
    pub worker_count: u64,
    #[serde(default)]
    pub input_records: Option<u64>,
    #[serde(default)]
    pub output_records: Option<u64>,
    #[serde(default)]
    pub input_throughput: Option<Finite>,
    #[serde(default)]
    pub output_throughput: Option<Finite>,
    #[serde(default)]
    pub queue_lag: Option<u64>,
    #[serde(default)]
    pub backpressure_active: Option<bool>,
    #[serde(default)]
    pub partition_metrics: Option<PartitionMetrics<'a>>,
}

/// `worker_started`: the worker (`source_id`) and its stage; its
/// partitions are descriptive (absent or null: none).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkerStarted<'a> {
    #[serde(borrow)]
    pub stage_id: Cow<'a, str>,
    #[serde(default)]
    pub assigned_partitions: Option<Vec<i64>>,
}

/// `worker_stopped`: final counts are optional (the Solstice runtime omits them).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkerStopped<'a> {
    #[serde(borrow)]
    pub stage_id: Cow<'a, str>,
    #[serde(default)]
    pub reason: Option<String>,
    pub processed_count: u64,
    pub error_count: u64,
    #[serde(default)]
    pub input_records: Option<u64>,
    #[serde(default)]
    pub output_records: Option<u64>,
    #[serde(default)]
    pub processing_time: Option<Finite>,
}

/// `worker_metrics`: cumulative counters since the worker started.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkerMetrics<'a> {
    #[serde(borrow)]
    pub stage_id: Cow<'a, str>,
    pub input_records: u64,
    pub output_records: u64,
    pub processing_time: Finite,
    pub processed_count: u64,
    pub assigned_partitions: crate::partitions::Partitions,
    pub is_running: bool,
    #[serde(default)]
    pub cpu_percent: Option<Finite>,
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    #[serde(default)]
    pub gpu_percent: Option<Finite>,
}

/// `exception`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Exception<'a> {
    #[serde(borrow)]
    pub stage_id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub worker_id: Option<Cow<'a, str>>,
    pub exception_type: String,
    pub message: String,
    #[serde(default)]
    pub stacktrace: Option<String>,
    #[serde(default, borrow)]
    pub split_id: Option<Cow<'a, str>>,
}

/// `backpressure`: whether the stage is throttled; the lag and the factor
/// are descriptive.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Backpressure {
    pub active: bool,
    #[serde(default)]
    pub queue_lag: Option<u64>,
    #[serde(default)]
    pub slow_down_factor: Option<Finite>,
}

/// Checkpoint lifecycle states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointStatus {
    Triggered,
    Completed,
    Failed,
}

/// `checkpoint`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Checkpoint {
    pub checkpoint_id: u64,
    pub status: CheckpointStatus,
    pub trigger_time: Finite,
    #[serde(default)]
    pub duration_ms: Option<Finite>,
    #[serde(default)]
    pub state_size_bytes: Option<u64>,
    #[serde(default)]
    pub source_offsets: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub failure_reason: Option<String>,
}

/// `split_processed`: one split's lineage and timings. Only the ids that
/// key the lineage and the split's record counts are required: Solstice's
/// own `split_processed_message` factory sends `stage_id`, `split_id`,
/// `parent_split_ids`, `input_records`, `output_records` and
/// `processing_time` (seconds) and nothing else, while richer producers add
/// the partition, timings, sizes and payload keys. Absent or null optional
/// fields are `None` (shown as null); present ones of the wrong type are
/// still decode errors.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SplitProcessed<'a> {
    #[serde(borrow)]
    pub stage_id: Cow<'a, str>,
    #[serde(borrow)]
    pub split_id: Cow<'a, str>,
    #[serde(borrow)]
    pub parent_split_ids: Vec<Cow<'a, str>>,
    #[serde(default)]
    pub partition_id: Option<i64>,
    #[serde(default)]
    pub enqueue_time: Option<Finite>,
    #[serde(default)]
    pub dequeue_time: Option<Finite>,
    #[serde(default)]
    pub complete_time: Option<Finite>,
    #[serde(default)]
    pub queue_wait_time_ms: Option<Finite>,
    #[serde(default)]
    pub processing_time_ms: Option<Finite>,
    /// Processing time in seconds, as Solstice's factory sends it.
    #[serde(default)]
    pub processing_time: Option<Finite>,
    pub input_records: u64,
    pub output_records: u64,
    #[serde(default)]
    pub input_bytes: Option<u64>,
    #[serde(default)]
    pub output_bytes: Option<u64>,
    #[serde(default, borrow)]
    pub payload_store_key: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub payload_storage_path: Option<Cow<'a, str>>,
}

impl SplitProcessed<'_> {
    /// The processing time in milliseconds: `processing_time_ms` when sent
    /// (exact: the richer producers compute it from their own timestamps),
    /// else `processing_time` (seconds) times 1000, else `None`.
    pub fn processing_ms(&self) -> Option<f64> {
        self.processing_time_ms
            .map(|ms| ms.0)
            .or_else(|| self.processing_time.map(|s| s.0 * 1000.0))
    }
}

/// The typed payload, one variant per message type.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload<'a> {
    JobStarted(JobStarted),
    JobCompleted(JobEnded),
    JobFailed(JobEnded),
    StageStarted(StageStarted),
    StageCompleted,
    StageMetrics(StageMetrics<'a>),
    WorkerStarted(WorkerStarted<'a>),
    WorkerStopped(WorkerStopped<'a>),
    WorkerMetrics(WorkerMetrics<'a>),
    Exception(Exception<'a>),
    Backpressure(Backpressure),
    Checkpoint(Checkpoint),
    SplitProcessed(SplitProcessed<'a>),
}

/// One decoded, validated state message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message<'a> {
    pub kind: Kind,
    pub job_id: Cow<'a, str>,
    pub source_id: Cow<'a, str>,
    /// Event time, seconds since the epoch.
    pub timestamp: f64,
    pub sequence: Option<u64>,
    pub payload: Payload<'a>,
}

impl Message<'_> {
    /// The stage this message is about, when it names one.
    pub fn stage_id(&self) -> Option<&str> {
        match &self.payload {
            Payload::StageStarted(_)
            | Payload::StageCompleted
            | Payload::StageMetrics(_)
            | Payload::Backpressure(_) => Some(&self.source_id),
            Payload::WorkerStarted(p) => Some(&p.stage_id),
            Payload::WorkerStopped(p) => Some(&p.stage_id),
            Payload::WorkerMetrics(p) => Some(&p.stage_id),
            Payload::Exception(p) => Some(&p.stage_id),
            Payload::SplitProcessed(p) => Some(&p.stage_id),
            _ => None,
        }
    }
}

/// Deserializes the payload of a known kind.
struct PayloadSeed(Kind);

impl<'de> DeserializeSeed<'de> for PayloadSeed {
    type Value = Payload<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Payload<'de>, D::Error> {
        Ok(match self.0 {
            Kind::JobStarted => Payload::JobStarted(Deserialize::deserialize(d)?),
            Kind::JobCompleted => Payload::JobCompleted(Deserialize::deserialize(d)?),
            Kind::JobFailed => Payload::JobFailed(Deserialize::deserialize(d)?),
            Kind::StageStarted => Payload::StageStarted(Deserialize::deserialize(d)?),
            Kind::StageCompleted => {
                de::IgnoredAny::deserialize(d)?;
                Payload::StageCompleted
            }
            Kind::StageMetrics => Payload::StageMetrics(Deserialize::deserialize(d)?),
            Kind::WorkerStarted => Payload::WorkerStarted(Deserialize::deserialize(d)?),
            Kind::WorkerStopped => Payload::WorkerStopped(Deserialize::deserialize(d)?),
            Kind::WorkerMetrics => Payload::WorkerMetrics(Deserialize::deserialize(d)?),
            Kind::Exception => Payload::Exception(Deserialize::deserialize(d)?),
            Kind::Backpressure => Payload::Backpressure(Deserialize::deserialize(d)?),
            Kind::Checkpoint => Payload::Checkpoint(Deserialize::deserialize(d)?),
            Kind::SplitProcessed => Payload::SplitProcessed(Deserialize::deserialize(d)?),
        })
    }
}

/// Either a typed payload, or one buffered because it came before `message_type`.
// Lives on the stack for one record and is moved once into the message:
// boxing the typed payload would cost an allocation per record instead.
#[allow(clippy::large_enum_variant)]
enum PendingPayload<'de> {
    Typed(Payload<'de>),
    Buffered(serde_json::Value),
}

impl<'de> Deserialize<'de> for Message<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MessageVisitor)
    }
}

struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = Message<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a state message map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message<'de>, A::Error> {
        let mut kind: Option<Kind> = None;
        let mut job_id: Option<Cow<'de, str>> = None;
        let mut source_id: Option<Cow<'de, str>> = None;
        let mut timestamp: Option<Finite> = None;
        let mut sequence: Option<Option<u64>> = None;
        let mut payload: Option<PendingPayload<'de>> = None;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match key.0.as_ref() {
                "message_type" => {
                    let name = map.next_value::<Str<'de>>()?.0;
                    let k = Kind::parse(&name).ok_or_else(|| {
                        de::Error::custom(format_args!("unknown message_type {name:?}"))
                    })?;
                    kind = Some(k);
                }
                "job_id" => job_id = Some(map.next_value::<Str<'de>>()?.0),
                "source_id" => source_id = Some(map.next_value::<Str<'de>>()?.0),
                "timestamp" => timestamp = Some(map.next_value()?),
                "sequence" => sequence = Some(map.next_value()?),
                "payload" => {
                    payload = Some(match kind {
                        Some(k) => PendingPayload::Typed(map.next_value_seed(PayloadSeed(k))?),
                        None => PendingPayload::Buffered(map.next_value()?),
                    })
                }
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("message_type"))?;
        let payload = match payload.ok_or_else(|| de::Error::missing_field("payload"))? {
            PendingPayload::Typed(p) => p,
            PendingPayload::Buffered(v) => PayloadSeed(kind)
                .deserialize(v)
                .map_err(|e| de::Error::custom(format_args!("payload: {e}")))?,
        };
        Ok(Message {
            kind,
            job_id: job_id.ok_or_else(|| de::Error::missing_field("job_id"))?,
            source_id: source_id.ok_or_else(|| de::Error::missing_field("source_id"))?,
            timestamp: timestamp
                .ok_or_else(|| de::Error::missing_field("timestamp"))?
                .0,
            sequence: sequence.unwrap_or(None),
            payload,
        })
    }
}

/// A string that borrows when it can (serde's `Cow` alone always copies).
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::Message;

    /// Whether a `kind` message with `payload` decodes; the error if not.
    fn decodes(kind: &str, payload: &str) -> Result<(), String> {
        let text = format!(
            r#"{{"message_type": "{kind}", "job_id": "j", "source_id": "x", "timestamp": 1.5, "payload": {payload}, "sequence": 1}}"#
        );
        serde_json::from_str::<Message>(&text)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn descriptive_fields_may_be_absent_or_null_required_ones_may_not() {
        let ok = [
            ("job_started", r#"{"stages": [{"stage_id": "s"}]}"#),
            (
                "job_started",
                r#"{"dag_edges": null, "stages": [{"stage_id": "s", "operator_type": null}], "config": null}"#,
            ),
            ("job_completed", "{}"),
            ("job_failed", r#"{"status": null, "duration_ms": null}"#),
            ("stage_started", "{}"),
            (
                "stage_started",
                r#"{"operator_type": null, "max_parallelism": null}"#,
            ),
            ("stage_completed", r#"{"anything": [1]}"#),
            ("worker_started", r#"{"stage_id": "s"}"#),
            (
                "worker_started",
                r#"{"stage_id": "s", "assigned_partitions": null}"#,
            ),
            (
                "worker_stopped",
                r#"{"stage_id": "s", "processed_count": 0, "error_count": 0}"#,
            ),
            (
                "exception",
                r#"{"stage_id": "s", "exception_type": "E", "message": "m", "stacktrace": null}"#,
            ),
            ("backpressure", r#"{"active": true}"#),
            (
                "split_processed",
                r#"{"stage_id": "s", "split_id": "a", "parent_split_ids": [], "input_records": 0, "output_records": 0, "unknown": {"x": 1}}"#,
            ),
        ];
        for (kind, payload) in ok {
            assert_eq!(decodes(kind, payload), Ok(()), "{kind} {payload}");
        }
        let bad = [
            ("job_started", r#"{"stages": [{}]}"#, "stage_id"),
            (
                "job_started",
                r#"{"stages": [{"stage_id": "s", "min_parallelism": "1"}]}"#,
                "invalid type",
            ),
            ("job_completed", r#"{"status": 1}"#, "invalid type"),
            (
                "stage_started",
                r#"{"min_parallelism": -1}"#,
                "invalid value",
            ),
            (
                "worker_started",
                r#"{"assigned_partitions": [0]}"#,
                "stage_id",
            ),
            (
                "worker_stopped",
                r#"{"stage_id": "s", "error_count": 0}"#,
                "processed_count",
            ),
            (
                "worker_stopped",
                r#"{"stage_id": "s", "processed_count": 0, "error_count": 0, "reason": 5}"#,
                "invalid type",
            ),
            (
                "exception",
                r#"{"stage_id": "s", "exception_type": "E"}"#,
                "message",
            ),
            ("backpressure", r#"{"queue_lag": 1}"#, "active"),
            (
                "backpressure",
                r#"{"active": true, "slow_down_factor": "x"}"#,
                "invalid type",
            ),
            (
                "split_processed",
                r#"{"stage_id": "s", "parent_split_ids": [], "input_records": 0, "output_records": 0}"#,
                "missing field `split_id`",
            ),
            (
                "split_processed",
                r#"{"stage_id": "s", "split_id": "a", "parent_split_ids": [], "input_records": 0, "output_records": 0, "partition_id": 1.5}"#,
                "invalid type",
            ),
        ];
        for (kind, payload, why) in bad {
            let err = decodes(kind, payload).expect_err(payload);
            assert!(err.contains(why), "{kind} {payload}: {err}");
        }
    }
}
