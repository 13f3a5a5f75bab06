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

/// One stage as declared by `job_started`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct StageDecl {
    pub stage_id: String,
    pub operator_type: String,
    pub min_parallelism: u64,
    pub max_parallelism: u64,
}

/// `job_started`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobStarted {
    pub dag_edges: BTreeMap<String, Vec<String>>,
    pub stages: Vec<StageDecl>,
    pub config: serde_json::Map<String, serde_json::Value>,
}

/// `job_completed` / `job_failed`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobEnded {
    pub status: String,
    #[serde(default)]
    pub duration_ms: Option<Finite>,
    #[serde(default)]
    pub final_metrics: Option<serde_json::Value>,
}

/// `stage_started`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StageStarted {
    pub operator_type: String,
    pub min_parallelism: u64,
    pub max_parallelism: u64,
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

/// `worker_started`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkerStarted<'a> {
    #[serde(borrow)]
    pub stage_id: Cow<'a, str>,
    pub assigned_partitions: Vec<i64>,
}

/// `worker_stopped`: final counts are optional (the Solstice runtime omits them).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkerStopped<'a> {
    #[serde(borrow)]
    pub stage_id: Cow<'a, str>,
    pub reason: String,
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
    pub stacktrace: String,
    #[serde(default, borrow)]
    pub split_id: Option<Cow<'a, str>>,
}

/// `backpressure`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Backpressure {
    pub active: bool,
    pub queue_lag: u64,
    pub slow_down_factor: Finite,
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

/// `split_processed`: one split's lineage and timings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SplitProcessed<'a> {
    #[serde(borrow)]
    pub stage_id: Cow<'a, str>,
    #[serde(borrow)]
    pub split_id: Cow<'a, str>,
    #[serde(borrow)]
    pub parent_split_ids: Vec<Cow<'a, str>>,
    pub partition_id: i64,
    pub enqueue_time: Finite,
    pub dequeue_time: Finite,
    pub complete_time: Finite,
    pub queue_wait_time_ms: Finite,
    pub processing_time_ms: Finite,
    pub input_records: u64,
    pub output_records: u64,
    pub input_bytes: u64,
    pub output_bytes: u64,
    #[serde(borrow)]
    pub payload_store_key: Cow<'a, str>,
    #[serde(default, borrow)]
    pub payload_storage_path: Option<Cow<'a, str>>,
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
