//! One `exec` function per subcommand: wires the parts together and prints
//! what a user asked for (data on stdout, logs on stderr).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::args::{EndpointArgs, ProjectArgs, ReplayArgs, ServeArgs, SimulateArgs};
use crate::error::{Error, Result};
use crate::ingest::source::kafka::KafkaConfig;
use crate::project::ProjectOptions;
use crate::serve::bounds::{Bounds, ServeLimits};
use crate::serve::catalog::{Catalog, CatalogOptions};
use crate::serve::endpoint::Endpoint;
use crate::serve::http::{self, AppState};
use crate::serve::prometheus::Metrics;
use crate::shutdown::shutdown_signal;
use crate::simulate::{self, Scenario, SimConfig};
use crate::store::storage::Storage;

/// `sundial replay`.
pub async fn replay(a: ReplayArgs) -> Result<()> {
    crate::cli::replay::exec(a).await
}

/// `sundial project`.
pub async fn project(a: ProjectArgs) -> Result<()> {
    let storage = Storage::from_url(&a.storage)?;
    crate::store::storage::validate_id("job id", &a.job)?;
    let resume = a
        .resume
        .parse()
        .map_err(|e: String| Error::invalid("resume", e))?;
    let mut extra = Vec::new();
    for kv in &a.kafka_property {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Error::invalid("kafka property", format!("{kv:?}: use key=value")))?;
        extra.push((k.to_owned(), v.to_owned()));
    }
    let topic = a.topic.unwrap_or_else(|| format!("{}_state", a.job));
    let flush_interval = a.flush_ms.map_or_else(
        || storage.default_flush_interval(),
        |ms| Duration::from_millis(ms.max(1)),
    );
    let lease_interval = a.lease_ms.map_or_else(
        || crate::store::lease::default_interval(&storage),
        |ms| Duration::from_millis(ms.max(50)),
    );
    let opts = ProjectOptions {
        kafka: KafkaConfig {
            brokers: a.brokers,
            group_id: format!("sundial-{}", a.job),
            topic,
            resume,
            extra,
            max_record_bytes: a.max_record_bytes.max(1),
        },
        job: a.job.clone(),
        storage,
        attempt: a.attempt,
        new_attempt: a.new_attempt,
        http: (a.http != "none").then_some(a.http),
        endpoint: endpoint(&a.endpoint)?,
        batch_max: a.batch_max.max(1),
        linger: Duration::from_millis(a.linger_ms),
        exit_after_end: (a.exit_after_end_secs > 0.0)
            .then(|| Duration::from_secs_f64(a.exit_after_end_secs)),
        lease_interval,
        flush_interval,
    };
    let (attempt, summary) = crate::project::run(opts, shutdown_signal()).await?;
    println!("job={} attempt={attempt} {summary}", a.job);
    crate::cli::replay::warn_about_dead_letters(&summary);
    Ok(())
}

/// The endpoint settings of `serve`, `project --http` and `demo`.
pub fn endpoint(a: &EndpointArgs) -> Result<Endpoint> {
    Endpoint::new(
        &a.base_path,
        a.auth_token_file.as_deref(),
        &a.allowed_hosts,
        &a.cors_origin,
    )
}

/// `sundial serve`.
pub async fn serve(a: ServeArgs) -> Result<()> {
    let endpoint = endpoint(&a.endpoint)?;
    // Only writers create a storage directory: a typo here is an error.
    let storage = Storage::open_existing(&a.storage)?;
    // A missing bucket or bad endpoint: one clear line now, not 503s later.
    storage.check().await?;
    let defaults = CatalogOptions::for_storage(&storage);
    let options = CatalogOptions {
        max_open: a.max_open.max(1),
        idle: Duration::from_secs(a.idle_secs.max(1)),
        poll_live: a
            .live_poll_ms
            .map_or(defaults.poll_live, |ms| Duration::from_millis(ms.max(10))),
        ..defaults
    };
    let state = AppState {
        catalog: Arc::new(Catalog::with_options(storage, options)),
        metrics: Arc::new(Metrics::default()),
        live: None,
        bounds: Bounds::new(ServeLimits {
            max_connections: a.max_connections.max(1),
            header_timeout: Duration::from_secs(a.header_timeout_secs.max(1)),
            max_streams: a.max_streams,
            as_of_workers: a.max_as_of.max(1),
            as_of_queue: a.as_of_queue,
        }),
    };
    http::serve(state, &endpoint, &a.http, shutdown_signal()).await
}

/// Frames one simulated record for a MessagePack stream: maps as MessagePack,
/// anything else (poison bytes) as a MessagePack binary value.
pub fn msgpack_frame(json: &[u8]) -> Vec<u8> {
    let mp = simulate::to_msgpack(json);
    if crate::ingest::codec::detect(&mp, None) == Some(crate::ingest::codec::Format::MsgPack) {
        mp
    } else {
        rmp_serde::to_vec(serde_bytes::Bytes::new(json)).unwrap_or_default()
    }
}

/// `sundial simulate`.
pub async fn simulate(a: SimulateArgs) -> Result<()> {
    let scenario: Scenario = a
        .scenario
        .parse()
        .map_err(|e: String| Error::invalid("scenario", e))?;
    let msgpack = match a.format.as_str() {
        "ndjson" | "json" => false,
        "msgpack" => true,
        other => {
            return Err(Error::invalid(
                "format",
                format!("{other:?}: use ndjson or msgpack"),
            ))
        }
    };
    crate::store::storage::validate_id("job id", &a.job)?;
    let mut cfg = SimConfig::new(&a.job, scenario, a.events);
    cfg.seed = a.seed;
    cfg.anomalies = !a.no_anomalies;
    let out: Box<dyn Write> = if a.output == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(&a.output)
                .map_err(|e| Error::invalid("output", format!("{}: {e}", a.output)))?,
        )
    };
    let mut out = std::io::BufWriter::new(out);
    for rec in simulate::simulate(&cfg) {
        if msgpack {
            out.write_all(&msgpack_frame(&rec))?;
        } else {
            out.write_all(&rec)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}
