//! The command line (contract §4): clap definitions only. Doc comments are
//! the `--help` text; each subcommand runs in `commands`.

use clap::{Args, Parser, Subcommand};

/// Sundial: exact, durable, replayable views of streaming-job state.
#[derive(Debug, Parser)]
#[command(name = "sundial", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Rebuild an attempt's log and views from a recorded stream.
    Replay(ReplayArgs),
    /// Serve every job and attempt under a storage URL, read-only.
    Serve(ServeArgs),
    /// Write a simulated Solstice job stream (NDJSON or MessagePack).
    Simulate(SimulateArgs),
    /// Simulate a realistic job, replay it into ./sundial-data and serve it.
    Demo(DemoArgs),
    /// Measure decode, apply, storage and replay rates on this machine.
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
}

/// `sundial replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Job id (the topic is {job}_state).
    #[arg(long, env = "SUNDIAL_JOB")]
    pub job: String,
    /// Storage URL: a path, file://…, s3://bucket/prefix or memory://.
    #[arg(long, env = "SUNDIAL_STORAGE")]
    pub storage: String,
    /// Input file of records (NDJSON or MessagePack stream); `-` for stdin.
    #[arg(long)]
    pub input: String,
    /// Attempt id to write (default: a new one from the clock).
    #[arg(long)]
    pub attempt: Option<String>,
    /// Records per atomic batch.
    #[arg(long, default_value_t = crate::replay::DEFAULT_BATCH)]
    pub batch: usize,
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
    /// About how many records the simulated job sends.
    #[arg(long, default_value_t = 50_000)]
    pub events: usize,
    /// Build the data, print the figures and exit without serving.
    #[arg(long)]
    pub no_serve: bool,
}
