//! Every replay fixture through a real broker (Tansu) into the real
//! `sundial project` daemon: produced by Python's aiokafka (what Solstice
//! uses) and by rdkafka, as JSON and as MessagePack (by content and by the
//! `content-type` header), over a 1-partition unkeyed topic and a
//! 3-partition topic keyed by `source_id`. The daemon's views must equal the
//! golden views (up to what another source legitimately changes: source
//! coordinates, and with several partitions the log's interleaving).

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/produce.rs"]
mod produce;
#[path = "common/replay.rs"]
mod replay;
#[path = "common/tansu.rs"]
mod tansu;

use std::path::{Path, PathBuf};
use std::time::Duration;

use daemon::{
    assert_same, assert_sealed_summary, fixture_values, full_lineage, golden, run_to_end, snapshot,
    source_id, wait_output, Differ,
};
use produce::{produce_python, produce_rdkafka, write_records_file, Record};
use tansu::Broker;

/// (fixture folder, job id, stream file, stream is MessagePack)
const FIXTURES: &[(&str, &str, &str, bool)] = &[
    (
        "autoscale-completed",
        "fx_autoscale",
        "events.ndjson",
        false,
    ),
    ("exception-storm-failed", "fx_storm", "events.ndjson", false),
    ("lineage-50k", "fx_lineage", "events.ndjson.gz", false),
    ("msgpack-realistic", "fx_msgpack", "events.msgpack", true),
];

#[derive(Debug, Clone, Copy)]
enum Producer {
    Python,
    Rdkafka,
}

/// One way of sending a fixture.
#[derive(Debug, Clone, Copy)]
struct Combo {
    producer: Producer,
    msgpack: bool,
    partitions: i32,
    header: bool,
    /// Start the daemon before the topic exists.
    daemon_first: bool,
}

const COMBOS: &[Combo] = &[
    Combo {
        producer: Producer::Python,
        msgpack: false,
        partitions: 1,
        header: false,
        daemon_first: true,
    },
    Combo {
        producer: Producer::Rdkafka,
        msgpack: true,
        partitions: 3,
        header: true,
        daemon_first: false,
    },
    Combo {
        producer: Producer::Python,
        msgpack: true,
        partitions: 3,
        header: false,
        daemon_first: false,
    },
    Combo {
        producer: Producer::Rdkafka,
        msgpack: false,
        partitions: 1,
        header: true,
        daemon_first: false,
    },
];

fn fixture_file(dir: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("replay-fixtures")
        .join(dir)
        .join(file)
}

fn produce(broker: &Broker, topic: &str, records: &[Record], c: Combo, scratch: &Path) {
    let ct = match (c.header, c.msgpack) {
        (false, _) => None,
        (true, true) => Some("application/msgpack"),
        (true, false) => Some("application/json"),
    };
    match c.producer {
        Producer::Python => {
            let file = scratch.join(format!("{topic}.records"));
            write_records_file(&file, records);
            produce_python(&broker.addr(), topic, &file, ct, &[]);
        }
        Producer::Rdkafka => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(produce_rdkafka(&broker.addr(), topic, records, ct, 20));
        }
    }
}

fn run_combo(
    broker: &Broker,
    fx: (&str, &str, &str, bool),
    c: Combo,
    i: usize,
    reference: &[String],
) {
    let (dir, job, file, native_msgpack) = fx;
    let scratch = tempfile::tempdir().unwrap();
    let storage = scratch.path().join("data");
    let topic = format!("{job}_c{i}");
    let msgpack = c.msgpack || native_msgpack;
    let records: Vec<Record> = fixture_values(&fixture_file(dir, file))
        .into_iter()
        .map(|v| {
            let v = if msgpack && !native_msgpack {
                sundial::commands::msgpack_frame(&v)
            } else {
                v
            };
            let key = if c.partitions > 1 {
                source_id(&v)
            } else {
                None
            };
            (key, v)
        })
        .collect();
    let what = format!("{dir} via {c:?}");
    // Started first, the daemon must wait for the topic to exist.
    let early = c.daemon_first.then(|| {
        let child = daemon::project_cmd(&broker.addr(), job, &topic, &storage)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        child
    });
    broker.create_topic(&topic, c.partitions);
    let sent = Combo { msgpack, ..c };
    produce(broker, &topic, &records, sent, scratch.path());
    let out = match early {
        Some(child) => {
            let out = wait_output(child, Duration::from_secs(120), &what);
            let log = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(out.status.success(), "{what}: {log}");
            assert!(
                log.contains("waiting for the topic"),
                "{what}: the daemon waited for the topic:\n{log}"
            );
            out
        }
        None => run_to_end(&broker.addr(), job, &topic, &storage, &[]),
    };
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains(&format!("events={}", records.len())),
        "{what}: every record ingested once: {summary}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = Differ {
        interleaving: c.partitions > 1,
        poison_framing: (msgpack && !native_msgpack) || c.header,
    };
    assert_same(&what, &snapshot(&storage, job), &golden(dir), d);
    if d.interleaving {
        // The first page is in log order: compare the whole list with a
        // replay of the file.
        assert!(
            full_lineage(&storage, job) == reference,
            "{what}: the lineage list differs from the file replay's"
        );
    }
    assert_sealed_summary(&storage, job);
}

/// Views from Kafka equal the golden views, for every fixture and every way
/// of producing it.
#[test]
fn every_fixture_through_kafka_equals_its_golden_views() {
    let broker = Broker::start();
    let only = std::env::var("ONLY_FIXTURE").unwrap_or_default();
    for &fx in FIXTURES.iter().filter(|f| f.0.contains(only.as_str())) {
        // The whole lineage list of the file replayed, for the combos whose
        // first page depends on the interleaving.
        let scratch = tempfile::tempdir().unwrap();
        let file = fixture_file(fx.0, fx.2);
        replay::replay_ok(
            scratch.path(),
            fx.1,
            0,
            &["--input", file.to_str().unwrap()],
        );
        let reference = full_lineage(scratch.path(), fx.1);
        assert!(!reference.is_empty(), "{}: a lineage to compare", fx.0);
        std::thread::scope(|s| {
            for (i, &c) in COMBOS.iter().enumerate() {
                let (broker, reference) = (&broker, &reference);
                s.spawn(move || run_combo(broker, fx, c, i, reference));
            }
        });
    }
}
