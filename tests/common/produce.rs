//! Two independent producers for the Kafka integration tests, both sending
//! exactly what a test prepared:
//!
//! - [`produce_python`]: `tests/tools/produce.py` (aiokafka, default
//!   batching), the Solstice-style Python producer, fed a records file;
//! - [`produce_rdkafka`]: an rdkafka `FutureProducer` with `linger.ms`
//!   (batches) and idempotence (per-partition order kept across retries).
//!
//! Records file: frames of `u32 BE key_len` (0xFFFFFFFF = no key), key bytes,
//! `u32 BE value_len`, value bytes.
//!
//! Include with `#[path = "common/produce.rs"] mod produce;`.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

/// One record to send: (key, value).
pub type Record = (Option<Vec<u8>>, Vec<u8>);

const NO_KEY: u32 = u32::MAX;

/// The Python producer script.
pub fn produce_py() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/produce.py")
}

/// `replay-fixtures/NAME/events.ndjson` (absolute).
pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("replay-fixtures")
        .join(name)
        .join("events.ndjson")
}

/// Encodes `records` in the records-file format.
pub fn encode_records(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        match key {
            Some(k) => {
                out.extend_from_slice(&(k.len() as u32).to_be_bytes());
                out.extend_from_slice(k);
            }
            None => out.extend_from_slice(&NO_KEY.to_be_bytes()),
        }
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
    }
    out
}

/// Decodes a records file (panics on a truncated frame or a null value).
pub fn decode_records(mut data: &[u8]) -> Vec<Record> {
    fn field(data: &mut &[u8]) -> Option<Vec<u8>> {
        let (len, rest) = data.split_at_checked(4).expect("truncated length");
        let len = u32::from_be_bytes(len.try_into().unwrap());
        if len == NO_KEY {
            *data = rest;
            return None;
        }
        let (bytes, rest) = rest
            .split_at_checked(len as usize)
            .expect("truncated field");
        *data = rest;
        Some(bytes.to_vec())
    }
    let mut out = Vec::new();
    while !data.is_empty() {
        let key = field(&mut data);
        let value = field(&mut data).expect("null value in records file");
        out.push((key, value));
    }
    out
}

/// Writes `records` to `path` as a records file.
pub fn write_records_file(path: &Path, records: &[Record]) {
    std::fs::write(path, encode_records(records))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

pub fn read_records_file(path: &Path) -> Vec<Record> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    decode_records(&data)
}

/// The raw lines of an NDJSON file (`.gz` too), byte-exact, without the
/// `\n` (a `\r` before it is kept); empty lines are skipped.
pub fn fixture_lines(path: &Path) -> Vec<Vec<u8>> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let data = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("gunzip {}: {e}", path.display()));
        out
    } else {
        raw
    };
    data.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// The `source_id` of a JSON record, if it parses and has a string one.
pub fn source_id(line: &[u8]) -> Option<Vec<u8>> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    v.get("source_id")?.as_str().map(|s| s.as_bytes().to_vec())
}

/// Records of an NDJSON fixture, one per line, in file order. Value: the
/// line bytes (poison kept byte-exact), or with `msgpack` the record as
/// MessagePack (`sundial::commands::msgpack_frame`: poison becomes a msgpack
/// binary). Key: the record's `source_id` when `keyed` and the line parses,
/// else none.
pub fn fixture_records(path: &Path, keyed: bool, msgpack: bool) -> Vec<Record> {
    fixture_lines(path)
        .into_iter()
        .map(|line| {
            let key = if keyed { source_id(&line) } else { None };
            let value = if msgpack {
                sundial::commands::msgpack_frame(&line)
            } else {
                line
            };
            (key, value)
        })
        .collect()
}

/// Runs `tests/tools/produce.py` for `file` (a records file) and asserts it
/// succeeded and reported every record; returns the number produced.
/// `extra_args`: e.g. `["--linger-ms", "5"]`, `["--rate", "2000"]`,
/// `["--partition", "0"]`.
pub fn produce_python(
    broker: &str,
    topic: &str,
    file: &Path,
    content_type: Option<&str>,
    extra_args: &[&str],
) -> usize {
    let expected = read_records_file(file).len();
    let mut cmd = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()));
    cmd.arg(produce_py())
        .args(["--brokers", broker, "--topic", topic, "--records"])
        .arg(file);
    if let Some(ct) = content_type {
        cmd.args(["--content-type", ct]);
    }
    cmd.args(extra_args);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run python3 {}: {e}", produce_py().display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "produce.py --topic {topic} failed ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let produced: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("produced "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("produce.py printed no `produced N`: {stdout}"));
    assert_eq!(
        produced, expected,
        "produce.py sent {produced} of {expected}"
    );
    produced
}

/// Sends `records` in order with an rdkafka `FutureProducer` (`linger.ms`
/// batching, idempotent so per-partition order survives retries), awaits
/// every delivery and returns each record's (partition, offset), in input
/// order. Keyless records go where librdkafka's partitioner puts them.
pub async fn produce_rdkafka(
    broker: &str,
    topic: &str,
    records: &[Record],
    content_type: Option<&str>,
    linger_ms: u32,
) -> Vec<(i32, i64)> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("broker.address.family", "v4")
        .set("linger.ms", linger_ms.to_string())
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "30000")
        .set("log_level", "3")
        .create()
        .expect("create FutureProducer");
    let headers = content_type.map(|ct| {
        OwnedHeaders::new().insert(Header {
            key: "content-type",
            value: Some(ct),
        })
    });
    let mut pending = Vec::with_capacity(records.len());
    for (key, value) in records {
        let mut rec = FutureRecord::<[u8], [u8]>::to(topic).payload(value.as_slice());
        if let Some(k) = key {
            rec = rec.key(k.as_slice());
        }
        if let Some(h) = &headers {
            rec = rec.headers(h.clone());
        }
        loop {
            match producer.send_result(rec) {
                Ok(fut) => {
                    pending.push(fut);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    // Let librdkafka drain its queue (serves delivery reports).
                    producer.poll(Duration::from_millis(10));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => panic!("produce to {topic}: {e}"),
            }
        }
    }
    let mut coords = Vec::with_capacity(pending.len());
    for (i, fut) in pending.into_iter().enumerate() {
        match tokio::time::timeout(Duration::from_secs(60), fut).await {
            Ok(Ok(Ok(d))) => coords.push((d.partition, d.offset)),
            Ok(Ok(Err((e, _)))) => panic!("record {i} to {topic} not delivered: {e}"),
            Ok(Err(_)) => panic!("record {i} to {topic}: delivery future cancelled"),
            Err(_) => panic!("record {i} to {topic}: no delivery report within 60 s"),
        }
    }
    producer
        .flush(Duration::from_secs(10))
        .expect("flush producer");
    coords
}
