//! Solstice's own wire format through a real broker: the two factory
//! fixtures (`replay-fixtures/solstice-*`, exactly what Solstice's message
//! factories send) produced to Tansu the way Solstice sends them — aiokafka,
//! one producer per source (runner, stage masters, workers), one
//! `send_and_wait` per message, sequences from 1 per producer, a
//! one-partition unkeyed `{job}_state` topic — and followed by the real
//! `sundial project` daemon. Every message must be applied (no dead letter,
//! nothing missing) and the views must equal the reviewed golden views.

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/produce.rs"]
mod produce;
#[path = "common/tansu.rs"]
mod tansu;

use daemon::{assert_same, golden, run_to_end, snapshot, Differ};
use produce::{fixture_path, fixture_records, produce_python, write_records_file};
use tansu::Broker;

#[test]
fn solstice_factory_messages_through_kafka_are_all_applied() {
    let broker = Broker::start();
    for (dir, job) in [
        ("solstice-defaults", "fx_sol_defaults"),
        ("solstice-full", "fx_sol_full"),
    ] {
        let scratch = tempfile::tempdir().unwrap();
        let storage = scratch.path().join("data");
        let topic = format!("{job}_state");
        broker.create_topic(&topic, 1);
        let records = fixture_records(&fixture_path(dir), false, false);
        let file = scratch.path().join("records");
        write_records_file(&file, &records);
        produce_python(&broker.addr(), &topic, &file, None, &["--per-source"]);
        let out = run_to_end(&broker.addr(), job, &topic, &storage, &[]);
        let summary = String::from_utf8_lossy(&out.stdout);
        assert!(
            summary.contains(&format!("events={}", records.len())),
            "{dir}: every record ingested once: {summary}"
        );
        let snap = snapshot(&storage, job);
        let j = &snap["job"];
        assert_eq!(j["event_count"], records.len(), "{dir}: {j}");
        assert_eq!(j["dead_letter_count"], 0, "{dir}: {j}");
        assert_eq!(j["duplicate_count"], 0, "{dir}: {j}");
        assert_eq!(j["missing_count"], 0, "{dir}: {j}");
        assert_eq!(snap["lineage"]["total"], 5, "{dir}");
        // Sent one at a time to one partition, the log is the file's order.
        assert_same(dir, &snap, &golden(dir), Differ::default());
    }
}
