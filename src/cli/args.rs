//! The command line (contract §4): clap definitions only. Doc comments are
//! the `--help` text; each subcommand runs in `commands`.

use clap::{Args, Parser, Subcommand};

/// Sundial: exact, durable, replayable views of streaming-job state.
#[derive(Debug, Parser)]
#[command(name = "sundial", version, about, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Project a job's Kafka topic into an attempt and serve it live.
    Project(ProjectArgs),
    /// Rebuild an attempt's log and views from a recorded stream.
    Replay(ReplayArgs),
    /// Serve every job and attempt under a storage URL, read-only.
    Serve(ServeArgs),
    /// Write a simulated Solstice job stream (NDJSON or MessagePack).
    Simulate(SimulateArgs),
    /// Simulate a realistic job, replay it into ./sundial-data and serve it.
    Demo(DemoArgs),
    /// Measure decode, apply, storage and replay rates on this machine
    /// (with --brokers: the daemon's consume rate and latency).
    Bench(BenchArgs),
}

/// `sundial bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// How many simulated records to measure with.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: usize,
    /// Scratch directory (emptied first).
    #[arg(long, default_value = "./sundial-bench")]
    pub dir: String,
    /// Measure the projector daemon against this Kafka broker instead.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Records per second of the latency run (with --brokers).
    #[arg(long, default_value_t = 10_000)]
    pub latency_rate: u64,
    /// Measure the history server instead: a job of --events events, one of
    /// 10 000 and this many tiny ones, served by `sundial serve`.
    #[arg(long)]
    pub history_jobs: Option<usize>,
    /// With --history-jobs: measure the jobs a previous run left in --dir
    /// instead of building them again.
    #[arg(long, requires = "history_jobs")]
    pub reuse: bool,
    /// Measure rebuilding views from the log and `as_of` on a job of
    /// --events events instead.
    #[arg(long, conflicts_with_all = ["brokers", "history_jobs"])]
    pub rebuild: bool,
    /// With --rebuild: only build the job and time `as_of` (no rebuilt
    /// attempts: a third of the disk).
    #[arg(long, requires = "rebuild")]
    pub as_of_only: bool,
}

/// `sundial project`.
#[derive(Debug, Args)]
pub struct ProjectArgs {
    /// Job id (the topic is {job}_state unless --topic is given).
    #[arg(long, env = "SUNDIAL_JOB")]
    pub job: String,
    /// Kafka bootstrap servers, host:port[,host:port…].
    #[arg(long, env = "SUNDIAL_BROKERS")]
    pub brokers: String,
    /// Storage URL: a path, file://…, s3://bucket/prefix or memory://.
    #[arg(long, env = "SUNDIAL_STORAGE")]
    pub storage: String,
    /// Topic to consume (default {job}_state).
    #[arg(long)]
    pub topic: Option<String>,
    /// Attempt id to write (default: the latest attempt fed from this topic,
    /// so a restart resumes it; else a new one).
    #[arg(long)]
    pub attempt: Option<String>,
    /// Start a new attempt even if one is fed from this topic already.
    #[arg(long, conflicts_with = "attempt")]
    pub new_attempt: bool,
    /// Address of the live HTTP API (`none` to serve nothing).
    #[arg(long, default_value = "127.0.0.1:8080", env = "SUNDIAL_HTTP")]
    pub http: String,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    /// Records per atomic batch at most.
    #[arg(long, default_value_t = crate::project::DEFAULT_BATCH_MAX)]
    pub batch_max: usize,
    /// Milliseconds to wait for more records after a batch's first one.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// After job_completed/job_failed, exit once the topic was quiet this
    /// many seconds (0 = keep running until a signal).
    #[arg(long, default_value_t = 30.0)]
    pub exit_after_end_secs: f64,
    /// How to get back to the stored position: `reread` each partition from
    /// its start and skip what was applied (correct on every broker), or
    /// `seek` to it (faster; for brokers that serve fetches from the middle
    /// of a record batch — Tansu 0.6 does not).
    #[arg(long, default_value = "reread")]
    pub resume: String,
    /// Extra librdkafka property, key=value (repeatable).
    #[arg(long = "kafka-property")]
    pub kafka_property: Vec<String>,
    /// Milliseconds between making written batches durable (default 100 on
    /// local disk, 1000 on S3, where each is a PUT request while records
    /// flow). Live views are visible at once either way and a crash loses
    /// nothing (what was not durable is read again from the broker); a
    /// separate `sundial serve` sees the job up to this much later.
    #[arg(long)]
    pub flush_ms: Option<u64>,
    /// Lease heartbeat in ms (default 1000 on local disk, 5000 on S3; each
    /// is one object write): a restart after a crash waits three of them.
    #[arg(long)]
    pub lease_ms: Option<u64>,
    /// The largest record taken whole, in bytes; a longer one is stored
    /// cut to its first 1 KiB and becomes a dead letter saying why.
    #[arg(long, default_value_t = crate::ingest::source::limit::DEFAULT_MAX_RECORD_BYTES, env = "SUNDIAL_MAX_RECORD_BYTES")]
    pub max_record_bytes: usize,
}

/// `sundial replay`: from a file, a topic or an attempt's log into a new
/// attempt; or, with --views, some views of an attempt rebuilt in place.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("from").required(true).args(["input", "brokers", "from_log", "views"])))]
pub struct ReplayArgs {
    /// Job id (the topic is {job}_state).
    #[arg(long, env = "SUNDIAL_JOB")]
    pub job: String,
    /// Storage URL: a path, file://…, s3://bucket/prefix or memory://.
    #[arg(long, env = "SUNDIAL_STORAGE")]
    pub storage: String,
    /// Input file of records (NDJSON or MessagePack stream); `-` for stdin.
    #[arg(long)]
    pub input: Option<String>,
    /// Replay a Kafka topic from these bootstrap servers.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Topic to replay (default {job}_state).
    #[arg(long, requires = "brokers")]
    pub topic: Option<String>,
    /// Replay the log of this existing attempt of the job.
    #[arg(long)]
    pub from_log: Option<String>,
    /// First record: log sequence (--from-log, from 1), record index
    /// (--input, from 0) or, with --brokers, the Kafka offset of every
    /// partition (`N`) or of some (`P:N,P:N`; others start at 0).
    #[arg(long, value_name = "N | P:N,…")]
    pub from_offset: Option<String>,
    /// Last record, included (same forms as --from-offset; with --brokers,
    /// partitions not listed go to their end).
    #[arg(long, value_name = "N | P:N,…")]
    pub to_offset: Option<String>,
    /// With --brokers: start at each partition's first record at or after
    /// this time (seconds since the epoch; Kafka ListOffsets by time).
    #[arg(long, requires = "brokers", conflicts_with = "from_offset")]
    pub from_time: Option<f64>,
    /// Rebuild these views (comma-separated) of --attempt (default: the
    /// latest attempt) in place from its own log; other views untouched.
    #[arg(long, conflicts_with_all = ["input", "brokers", "from_log", "from_offset", "to_offset"])]
    pub views: Option<String>,
    /// Attempt id to write (default: a new one from the clock). An attempt
    /// that already holds records is refused unless --resume is given.
    #[arg(long)]
    pub attempt: Option<String>,
    /// Continue --attempt from its stored position when it already holds
    /// records from the same source (a replay that stopped part-way):
    /// records already applied are skipped, never applied twice.
    #[arg(long, requires = "attempt", conflicts_with = "views")]
    pub resume: bool,
    /// The largest record taken whole from --input or --brokers, in bytes;
    /// a longer one is stored cut to its first 1 KiB and becomes a dead
    /// letter saying why (a log is replayed as stored).
    #[arg(long, default_value_t = crate::ingest::source::limit::DEFAULT_MAX_RECORD_BYTES, env = "SUNDIAL_MAX_RECORD_BYTES")]
    pub max_record_bytes: usize,
    /// Records per batch and log segment (--input); a replay commits
    /// batches ~131 k records at a time.
    #[arg(long, default_value_t = crate::replay::target::DEFAULT_BATCH)]
    pub batch: usize,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// `sundial serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Storage URL to serve.
    #[arg(long, env = "SUNDIAL_STORAGE")]
    pub storage: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "SUNDIAL_HTTP")]
    pub http: String,
    /// Most attempts kept open at once (read-only handles; least recently
    /// used closed first).
    #[arg(long, default_value_t = crate::serve::catalog::DEFAULT_MAX_OPEN, env = "SUNDIAL_MAX_OPEN")]
    pub max_open: usize,
    /// Seconds after which an unused attempt handle is closed.
    #[arg(long, default_value_t = crate::serve::catalog::DEFAULT_IDLE.as_secs(), env = "SUNDIAL_IDLE_SECS")]
    pub idle_secs: u64,
    /// Milliseconds between looks for new data in an attempt a projector is
    /// writing (default 100 on local disk, 1000 on S3, where each look is
    /// ~10 requests; match the projectors' `--flush-ms`).
    #[arg(long)]
    pub live_poll_ms: Option<u64>,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    /// Most connections open at once; more wait in the listen backlog.
    #[arg(long, default_value_t = crate::serve::listener::DEFAULT_MAX_CONNECTIONS, env = "SUNDIAL_MAX_CONNECTIONS")]
    pub max_connections: usize,
    /// Seconds a client has to send a whole request head (idle keep-alive
    /// connections are closed after as long).
    #[arg(long, default_value_t = crate::serve::listener::DEFAULT_HEADER_TIMEOUT.as_secs(), env = "SUNDIAL_HEADER_TIMEOUT_SECS")]
    pub header_timeout_secs: u64,
    /// Most `/stream` clients at once; past it a 503 with Retry-After.
    #[arg(long, default_value_t = crate::serve::stream_hub::DEFAULT_MAX_STREAMS, env = "SUNDIAL_MAX_STREAMS")]
    pub max_streams: usize,
    /// `as_of` answers built at once, each on a thread of its own (each
    /// holds up to one snapshot interval of replayed rows).
    #[arg(long, default_value_t = crate::serve::as_of_pool::DEFAULT_WORKERS, env = "SUNDIAL_MAX_AS_OF")]
    pub max_as_of: usize,
    /// `as_of` requests waiting for a builder; past them a 503 with
    /// Retry-After.
    #[arg(long, default_value_t = crate::serve::as_of_pool::DEFAULT_QUEUE, env = "SUNDIAL_AS_OF_QUEUE")]
    pub as_of_queue: usize,
}

/// `sundial simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Job id written into every message.
    #[arg(long, default_value = "demo_job")]
    pub job: String,
    /// autoscale, exception-storm, lineage or realistic.
    #[arg(long, default_value = "realistic")]
    pub scenario: String,
    /// About how many records to write.
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    /// Seed of the simulation (same seed, same bytes).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// ndjson or msgpack.
    #[arg(long, default_value = "ndjson")]
    pub format: String,
    /// Leave out poison records, retries, late and lost messages.
    #[arg(long)]
    pub no_anomalies: bool,
    /// Output file; `-` for stdout.
    #[arg(long, default_value = "-")]
    pub output: String,
}

/// `sundial demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to keep the demo's data.
    #[arg(long, default_value = "./sundial-data")]
    pub storage: String,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: String,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    /// About how many records the simulated job sends.
    #[arg(long, default_value_t = 50_000)]
    pub events: usize,
    /// Build the data, print the figures and exit without serving.
    #[arg(long)]
    pub no_serve: bool,
    /// Go through Kafka for real: produce the job to `demo_job_state` on
    /// these bootstrap servers (host:port) and project it with the daemon.
    #[arg(long)]
    pub brokers: Option<String>,
}

/// How the HTTP endpoint meets the network (`serve`, `project --http`,
/// `demo`): a path prefix, an access token, allowed `Host` names, CORS.
#[derive(Debug, Clone, Default, Args)]
pub struct EndpointArgs {
    /// Serve every route, the page and /metrics under this prefix (e.g.
    /// /solstice), for a reverse proxy that keeps the prefix; /health also
    /// answers at the root. A proxy that strips the prefix needs no flag.
    #[arg(long, default_value = "", env = "SUNDIAL_BASE_PATH")]
    pub base_path: String,
    /// Require `Authorization: Bearer <token>` on the API and /metrics; the
    /// file holds the token (at least 16 characters). Or set the token in
    /// SUNDIAL_AUTH_TOKEN. /health and the page's shell stay open.
    #[arg(long, env = "SUNDIAL_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<std::path::PathBuf>,
    /// Host names (comma-separated) the server answers besides IP addresses
    /// and localhost: other `Host` headers get a 403 (DNS rebinding). On
    /// without a token; with one, only when this is given. `*`: any.
    #[arg(long, value_delimiter = ',', env = "SUNDIAL_ALLOWED_HOSTS")]
    pub allowed_hosts: Vec<String>,
    /// Let a page on this origin (scheme://host[:port]) read the API
    /// (CORS; repeatable). Off by default.
    #[arg(long)]
    pub cors_origin: Vec<String>,
}
