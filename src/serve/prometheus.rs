//! Prometheus metrics of this process (OpenMetrics text at `/metrics`).
//! Names carry the `sundial_` prefix and their unit.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use prometheus_client::registry::Unit;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    job: String,
    stage: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The process's metrics: HTTP, projector health and (in the projector) the
/// live job's stage gauges.
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteLabels, Counter>,
    /// Records ingested by this process's projector, if any.
    pub records: Counter,
    /// Dead letters seen by this process's projector.
    pub dead_letters: Counter,
    /// Duplicates seen by this process's projector.
    pub duplicates: Counter,
    /// Log sequence of the last record applied.
    pub log_offset: Gauge,
    /// Records per committed batch.
    pub batch_size: Histogram,
    /// Wall time of one batch: decode, project, commit.
    pub batch_seconds: Histogram,
    /// Event time of the newest event applied, seconds since the epoch.
    pub last_event_time: FloatGauge,
    partition_position: Family<PartitionLabels, Gauge>,
    partition_lag: Family<PartitionLabels, Gauge>,
    partition_watermark: Family<PartitionLabels, Gauge>,
    job_workers: Family<JobLabels, Gauge>,
    job_exceptions: Family<JobLabels, Gauge>,
    stage_in_rate: Family<StageLabels, FloatGauge>,
    stage_out_rate: Family<StageLabels, FloatGauge>,
    stage_queue_lag: Family<StageLabels, Gauge>,
    stage_backpressure: Family<StageLabels, Gauge>,
    stage_workers: Family<StageLabels, Gauge>,
    stage_skew: Family<StageLabels, FloatGauge>,
}

fn family<L, M>(registry: &mut Registry, name: &str, help: &str) -> Family<L, M>
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
    M: Default
        + prometheus_client::metrics::TypedMetric
        + prometheus_client::encoding::EncodeMetric
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let f = Family::<L, M>::default();
    registry.register(name, help, f.clone());
    f
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = Registry::with_prefix("sundial");
        let requests = family(&mut r, "http_requests", "HTTP requests by route and status");
        let records = Counter::default();
        r.register(
            "projector_records",
            "Records ingested (valid or not)",
            records.clone(),
        );
        let dead_letters = Counter::default();
        r.register(
            "projector_dead_letters",
            "Records rejected as dead letters",
            dead_letters.clone(),
        );
        let duplicates = Counter::default();
        r.register(
            "projector_duplicates",
            "Producer retries recognised and not counted again",
            duplicates.clone(),
        );
        let log_offset = Gauge::default();
        r.register(
            "projector_log_offset",
            "Log sequence of the last record applied",
            log_offset.clone(),
        );
        let batch_size = Histogram::new([1.0, 10.0, 100.0, 1_000.0, 4_096.0, 16_384.0, 65_536.0]);
        r.register(
            "projector_batch_size_records",
            "Records per committed batch",
            batch_size.clone(),
        );
        let batch_seconds = Histogram::new(exponential_buckets(0.000_5, 2.0, 14));
        r.register_with_unit(
            "projector_batch_duration",
            "Wall time to decode, project and commit one batch",
            Unit::Seconds,
            batch_seconds.clone(),
        );
        let last_event_time = FloatGauge::default();
        r.register(
            "projector_last_event_timestamp_seconds",
            "Event time of the newest event applied (seconds since the epoch)",
            last_event_time.clone(),
        );
        let partition_position = family(
            &mut r,
            "projector_kafka_position",
            "Next offset to apply, per partition",
        );
        let partition_lag = family(
            &mut r,
            "projector_kafka_lag_records",
            "Records between the applied position and the end of the partition",
        );
        let partition_watermark = family(
            &mut r,
            "projector_kafka_high_watermark",
            "High watermark from the last fetch response (not ListOffsets: Tansu 0.6 answers that wrong for batched records)",
        );
        let job_workers = family(&mut r, "job_workers", "Running workers of the job");
        let job_exceptions = family(&mut r, "job_exceptions", "Exceptions the job reported");
        let stage_in_rate = family(
            &mut r,
            "stage_input_records_per_second",
            "Stage input throughput in the last closed event-time window",
        );
        let stage_out_rate = family(
            &mut r,
            "stage_output_records_per_second",
            "Stage output throughput in the last closed event-time window",
        );
        let stage_queue_lag = family(
            &mut r,
            "stage_queue_lag_records",
            "Records queued before the stage",
        );
        let stage_backpressure = family(
            &mut r,
            "stage_backpressure_active",
            "1 while the stage reports backpressure",
        );
        let stage_workers = family(&mut r, "stage_workers", "Running workers of the stage");
        let stage_skew = family(
            &mut r,
            "stage_skew_ratio",
            "Busiest worker's input over the mean, in the last closed window",
        );
        Metrics {
            registry: r,
            requests,
            records,
            dead_letters,
            duplicates,
            log_offset,
            batch_size,
            batch_seconds,
            last_event_time,
            partition_position,
            partition_lag,
            partition_watermark,
            job_workers,
            job_exceptions,
            stage_in_rate,
            stage_out_rate,
            stage_queue_lag,
            stage_backpressure,
            stage_workers,
            stage_skew,
        }
    }
}

/// One stage's live figures, as the stage route answers them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageFigures {
    pub stage: String,
    pub input_per_s: f64,
    pub output_per_s: f64,
    pub queue_lag: i64,
    pub backpressure: bool,
    pub workers: i64,
    pub skew_ratio: f64,
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, route: &str, status: u16) {
        self.requests
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
                status: status.to_string(),
            })
            .inc();
    }

    /// Sets one partition's position, lag and reported watermark.
    pub fn set_partition(&self, partition: i32, position: i64, lag: i64, watermark: i64) {
        let l = PartitionLabels {
            partition: partition.to_string(),
        };
        self.partition_position.get_or_create(&l).set(position);
        self.partition_lag.get_or_create(&l).set(lag);
        self.partition_watermark.get_or_create(&l).set(watermark);
    }

    /// Sets the live job's gauges.
    pub fn set_job(&self, job: &str, workers: i64, exceptions: i64, stages: &[StageFigures]) {
        let j = JobLabels {
            job: job.to_owned(),
        };
        self.job_workers.get_or_create(&j).set(workers);
        self.job_exceptions.get_or_create(&j).set(exceptions);
        for s in stages {
            let l = StageLabels {
                job: job.to_owned(),
                stage: s.stage.clone(),
            };
            self.stage_in_rate.get_or_create(&l).set(s.input_per_s);
            self.stage_out_rate.get_or_create(&l).set(s.output_per_s);
            self.stage_queue_lag.get_or_create(&l).set(s.queue_lag);
            self.stage_backpressure
                .get_or_create(&l)
                .set(i64::from(s.backpressure));
            self.stage_workers.get_or_create(&l).set(s.workers);
            self.stage_skew.get_or_create(&l).set(s.skew_ratio);
        }
    }

    /// The classic Prometheus text format (0.0.4), for scrapers and tools
    /// that do not speak OpenMetrics (`promtool check metrics`, older
    /// Prometheus): counters are named with `_total` in HELP/TYPE, and the
    /// UNIT and EOF lines go.
    pub fn encode_text(&self) -> String {
        let om = self.encode();
        let counters: std::collections::HashSet<&str> = om
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.strip_suffix(" counter"))
            .collect();
        let mut out = String::with_capacity(om.len());
        for line in om.lines() {
            if line.starts_with("# UNIT ") || line == "# EOF" {
                continue;
            }
            let meta = ["# HELP ", "# TYPE "]
                .into_iter()
                .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
            match meta {
                Some((p, rest)) => {
                    let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                    let suffix = if counters.contains(name) {
                        "_total"
                    } else {
                        ""
                    };
                    out.push_str(&format!("{p}{name}{suffix} {tail}\n"));
                }
                None => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
