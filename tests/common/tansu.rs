//! A real Kafka-compatible broker for integration tests: Tansu 0.6
//! (`tansu broker`), spawned on a free 127.0.0.1 port, killed on drop.
//!
//! Include it from a test file with
//! `#[path = "common/tansu.rs"] mod tansu;` (tools: `scripts/ensure-tools.sh`).
//!
//! - [`Broker::start`]: `memory://` storage, fast, lost on restart.
//! - [`Broker::start_persistent`]: `s3://` storage on a `moto_server` (local
//!   S3) that the harness starts too, so [`Broker::restart`] keeps every
//!   topic and record and offsets go on where they stopped.
//!
//! Tansu 0.6 quirks a consumer must live with (measured by
//! `tests/kafka_infra.rs`, `-- --nocapture` prints them):
//! - ListOffsets(latest) (`fetch_watermarks`, `Offset::End`) answers the
//!   base offset of the most recently *modified* batch object + 1, not the
//!   end of the log: below the true end after multi-record batches (aiokafka
//!   5 000 records: 4 959; rdkafka, one batch: 1), and with `s3://` (1 s
//!   object timestamps) the first batch written in the last second. The high
//!   watermark of fetch responses ([`cached_watermarks`]) is the true end.
//! - A fetch at an offset inside a batch returns only the batches whose base
//!   offset is at or after it: the rest of that batch is skipped (aiokafka
//!   batches: assign at 1, first record 152), and inside the last batch
//!   nothing comes at all (rdkafka puts up to 1 MB in one batch).
//! - `Offset::Beginning` re-reads a partition fully.
//! - Idempotent rdkafka producers work; aiokafka's `enable_idempotence`
//!   does not (InitProducerId v<3 is refused).
//!
//! Environment: `TANSU` (binary), `TANSU_LOG` (its RUST_LOG, default warn),
//! `TANSU_KEEP` (keep the temp dir with `tansu.log`, `moto.log`).
#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

/// How long a broker (or moto) may take to answer after spawning.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a created topic may take to show in metadata.
const TOPIC_TIMEOUT: Duration = Duration::from_secs(20);

/// The `tansu` binary: `$TANSU`, else `tansu` on PATH, else `$CARGO_HOME/bin`.
pub fn tansu_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TANSU") {
        return PathBuf::from(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("tansu");
            if p.is_file() {
                return p;
            }
        }
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    let p = cargo_home.join("bin").join("tansu");
    assert!(
        p.is_file(),
        "tansu not found ($TANSU, PATH, {}): run scripts/ensure-tools.sh",
        p.display()
    );
    p
}

/// A free TCP port on 127.0.0.1 (bound then released: racy only in theory).
pub fn free_port() -> u16 {
    net::free_port().expect("bind 127.0.0.1:0")
}

/// The loopback helpers the benches use too (one file, included). A test
/// that includes two of these helper files gets it twice, harmlessly.
#[allow(clippy::duplicate_mod)]
#[path = "../../src/bench/net.rs"]
mod net;

/// The last `n` lines of a log file, for panic messages.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Environment variables `tansu` (clap `env = …`) or object_store read that
/// must not leak from the caller's environment into the broker.
const TANSU_ENV: &[&str] = &[
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "DATA_LAKE",
    "AWS_ENDPOINT",
    "AWS_ENDPOINT_URL",
    "AWS_ALLOW_HTTP",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_PROFILE",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
];

/// A local S3 (`python3 -m moto.server`) holding one bucket, killed on drop.
pub struct Moto {
    child: Child,
    port: u16,
    bucket: String,
}

impl Moto {
    /// Starts moto on a free port and creates `bucket`.
    pub fn start(dir: &Path, bucket: &str) -> Moto {
        let port = free_port();
        let log = dir.join("moto.log");
        let out = File::create(&log).expect("create moto.log");
        let err = out.try_clone().expect("clone moto.log");
        let child = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn python3 -m moto.server (run scripts/ensure-tools.sh)");
        let mut moto = Moto {
            child,
            port,
            bucket: bucket.to_string(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match http_put(port, &format!("/{bucket}")) {
                Ok(200) => break,
                Ok(status) => panic!("moto: PUT /{bucket} answered {status}"),
                Err(_) => {}
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited ({status}):\n{}", log_tail(&log, 30));
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {port} within {START_TIMEOUT:?}:\n{}",
                log_tail(&log, 30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `AWS_*` variables that point object_store (tansu) at this moto.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal `PUT path` with an empty body; returns the HTTP status.
fn http_put(port: u16, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let head = String::from_utf8_lossy(&buf);
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad HTTP answer: {head:.80}")))
}

/// One record read back from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Consumed {
    fn from_message<M: Message>(m: &M) -> Consumed {
        let headers = m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        Consumed {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().unwrap_or_default().to_vec(),
            headers,
        }
    }

    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// A running (or stopped) Tansu broker on 127.0.0.1.
pub struct Broker {
    port: u16,
    storage: String,
    env: Vec<(&'static str, String)>,
    child: Option<Child>,
    log: PathBuf,
    starts: u32,
    // Dropped after the broker (fields drop in order; Drop kills first).
    moto: Option<Moto>,
    dir: tempfile::TempDir,
}

impl Broker {
    /// A broker with `memory://` storage: everything is lost on restart.
    pub fn start() -> Broker {
        Self::launch("memory://tansu/".into(), None, tempdir())
    }

    /// A broker with `s3://tansu/` storage on a local moto S3 started for
    /// it: topics, records and offsets survive [`Broker::restart`].
    pub fn start_persistent() -> Broker {
        let dir = tempdir();
        let moto = Moto::start(dir.path(), "tansu");
        Self::launch("s3://tansu/".into(), Some(moto), dir)
    }

    fn launch(storage: String, moto: Option<Moto>, dir: tempfile::TempDir) -> Broker {
        let env = moto.as_ref().map(Moto::env).unwrap_or_default();
        let mut b = Broker {
            port: free_port(),
            storage,
            env,
            child: None,
            log: dir.path().join("tansu.log"),
            starts: 0,
            moto,
            dir,
        };
        b.spawn();
        b
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `tcp://127.0.0.1:PORT`, for tansu's own CLI.
    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    pub fn storage_url(&self) -> &str {
        &self.storage
    }

    /// The broker's log (stdout and stderr of every start, appended).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// A scratch directory that lives as long as the broker.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(tansu_bin());
        cmd.current_dir(self.dir.path()); // tansu loads ./.env: keep it ours
        for k in TANSU_ENV {
            cmd.env_remove(k);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.env(
            "RUST_LOG",
            std::env::var("TANSU_LOG").unwrap_or_else(|_| "warn".into()),
        );
        cmd
    }

    /// Starts the broker process and waits until it answers. On the first
    /// start a port taken meanwhile (tansu exits with AddrInUse) is retried
    /// on a fresh port; a restart keeps its port.
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        for attempt in 1.. {
            match self.spawn_once() {
                Ok(()) => return,
                Err(why)
                    if self.starts == 0 && why.contains("ddress already in use") && attempt < 5 =>
                {
                    self.port = free_port();
                }
                Err(why) => panic!("{why}"),
            }
        }
    }

    fn spawn_once(&mut self) -> Result<(), String> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open tansu.log");
        let err = out.try_clone().expect("clone tansu.log");
        let url = self.url();
        let readies_before = self.readies();
        let child = self
            .command()
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                &self.storage,
            ])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", tansu_bin().display()));
        self.child = Some(child);
        match self.wait_ready(readies_before) {
            Ok(()) => {
                self.starts += 1;
                Ok(())
            }
            Err(why) => {
                self.stop();
                Err(why)
            }
        }
    }

    /// How many times the log says tansu bound its listener ("ready in").
    fn readies(&self) -> usize {
        std::fs::read(&self.log)
            .map(|t| String::from_utf8_lossy(&t).matches("ready in").count())
            .unwrap_or(0)
    }

    /// Polls until this process logged that it is listening (so the port is
    /// ours, not another broker's) and a metadata request succeeds.
    fn wait_ready(&mut self, readies_before: usize) -> Result<(), String> {
        let consumer = self.consumer();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(format!(
                    "tansu broker exited ({status}) on port {}:\n{}",
                    self.port,
                    log_tail(&self.log, 30)
                ));
            }
            if self.readies() > readies_before {
                if let Ok(md) = consumer.fetch_metadata(None, Duration::from_millis(500)) {
                    if !md.brokers().is_empty() {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "tansu broker on {} not answering metadata after {START_TIMEOUT:?}:\n{}",
                    self.addr(),
                    log_tail(&self.log, 30)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the broker (SIGKILL: acknowledged writes must already be
    /// durable) and waits for it to exit. Storage (moto) stays up.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the broker if running and starts it again on the same port and
    /// storage; returns once it answers Kafka requests again.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + START_TIMEOUT;
        // The port must be free again before tansu can bind it.
        while TcpListener::bind(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "port {} still busy after stop",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.spawn();
    }

    /// How many times the broker process was started.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// A client config pointing at this broker (add what you need).
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.addr())
            .set("broker.address.family", "v4")
            .set("log_level", "3");
        c
    }

    /// A consumer for `assign` + `poll`, never committing (librdkafka wants
    /// a `group.id` for `assign`; each consumer gets its own).
    pub fn consumer(&self) -> BaseConsumer {
        static GROUP: AtomicU32 = AtomicU32::new(0);
        let group = format!(
            "sundial-test-{}-{}",
            std::process::id(),
            GROUP.fetch_add(1, Ordering::Relaxed)
        );
        self.client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .create()
            .expect("create BaseConsumer")
    }

    /// Creates `name` with `partitions` partitions (tansu's CLI) and waits
    /// until metadata shows every partition with a leader.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        let out = self
            .command()
            .args([
                "topic",
                "create",
                "--broker",
                &self.url(),
                "--partitions",
                &partitions.to_string(),
                name,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run tansu topic create");
        assert!(
            out.status.success(),
            "tansu topic create {name} --partitions {partitions}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.wait_for_topic(name, partitions);
    }

    /// Waits until metadata shows `name` with `partitions` led partitions.
    pub fn wait_for_topic(&self, name: &str, partitions: i32) {
        let consumer = self.consumer();
        let deadline = Instant::now() + TOPIC_TIMEOUT;
        let mut last = String::new();
        loop {
            match consumer.fetch_metadata(Some(name), Duration::from_secs(2)) {
                Ok(md) => {
                    if let Some(t) = md.topics().iter().find(|t| t.name() == name) {
                        let led = t.partitions().iter().filter(|p| p.leader() >= 0).count();
                        if t.error().is_none() && led == partitions as usize {
                            return;
                        }
                        last = format!("error {:?}, {led} led partitions", t.error());
                    }
                }
                Err(e) => last = e.to_string(),
            }
            assert!(
                Instant::now() < deadline,
                "topic {name} ({partitions} partitions) not in metadata after {TOPIC_TIMEOUT:?}: {last}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The partition count of `topic` in metadata (0 when unknown).
    pub fn partitions(&self, topic: &str) -> i32 {
        let md = self
            .consumer()
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("metadata for {topic}: {e}"));
        md.topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| t.partitions().len() as i32)
    }

    /// Reads `expected` records from every partition of `topic`, from the
    /// beginning, in per-partition offset order (partitions interleaved).
    /// Panics after `timeout` with how many arrived; see [`consume`].
    pub fn consume_all(&self, topic: &str, expected: usize, timeout: Duration) -> Vec<Consumed> {
        let n = self.partitions(topic);
        assert!(n > 0, "topic {topic} has no partitions");
        let mut tpl = TopicPartitionList::new();
        for p in 0..n {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .expect("add partition");
        }
        consume(&self.consumer(), &tpl, expected, timeout)
    }

    /// Reads `expected` records of one partition starting at `offset`.
    pub fn consume_from(
        &self,
        topic: &str,
        partition: i32,
        offset: Offset,
        expected: usize,
        timeout: Duration,
    ) -> Vec<Consumed> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, offset)
            .expect("add partition");
        consume(&self.consumer(), &tpl, expected, timeout)
    }

    /// ListOffsets (low, high) of a partition: on Tansu 0.6 `high` is the
    /// base offset of the last batch + 1, NOT the end of the log.
    pub fn list_watermarks(&self, topic: &str, partition: i32) -> (i64, i64) {
        self.consumer()
            .fetch_watermarks(topic, partition, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("fetch_watermarks {topic}/{partition}: {e}"))
    }
}

/// The (low, high) watermarks librdkafka cached from fetch responses (no
/// request): on Tansu 0.6 this `high` is the true end of the log, unlike
/// ListOffsets'. `None` before a fetch.
#[allow(unused_imports)]
pub use sundial::source::kafka::cached_watermarks;

/// Assigns `tpl` and polls until `expected` records arrived, then checks for
/// ~300 ms that no extra record follows.
pub fn consume(
    consumer: &BaseConsumer,
    tpl: &TopicPartitionList,
    expected: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    consumer.assign(tpl).expect("assign");
    let mut got = Vec::with_capacity(expected);
    let deadline = Instant::now() + timeout;
    while got.len() < expected {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {expected} records within {timeout:?} ({:?})",
            got.len(),
            tpl
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => got.push(Consumed::from_message(&m)),
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    let settle = Instant::now() + Duration::from_millis(300);
    while Instant::now() < settle {
        if let Some(r) = consumer.poll(Duration::from_millis(100)) {
            let m = r.unwrap_or_else(|e| panic!("consumer error: {e}"));
            panic!(
                "more than {expected} records: extra at {}/{}",
                m.partition(),
                m.offset()
            );
        }
    }
    got
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sundial-tansu-")
        .tempdir()
        .expect("create temp dir")
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("TANSU_KEEP").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!("tansu: kept {}", self.dir.path().display());
        }
        if std::thread::panicking() {
            eprintln!(
                "tansu log ({}), last lines:\n{}",
                self.log.display(),
                log_tail(&self.log, 20)
            );
        }
    }
}
