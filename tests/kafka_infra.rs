//! The Kafka test infrastructure against a real broker (Tansu 0.6): both
//! producers deliver a fixture byte-exact, a persistent broker keeps records
//! and offsets across a restart, and the Tansu quirks a consumer has to live
//! with are measured (`cargo test --test kafka_infra -- --nocapture` prints
//! them).
//!
//! Needs `tansu`, `python3` with aiokafka and moto[server]:
//! `scripts/ensure-tools.sh`.

#[path = "common/produce.rs"]
mod produce;
#[path = "common/tansu.rs"]
mod tansu;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use produce::{
    fixture_path, fixture_records, produce_python, produce_rdkafka, write_records_file, Record,
};
use rdkafka::consumer::Consumer;
use rdkafka::{Message, Offset, TopicPartitionList};
use tansu::{consume, Broker, Consumed};

const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Multiset of (key, value).
fn multiset<'a>(
    it: impl Iterator<Item = (&'a Option<Vec<u8>>, &'a Vec<u8>)>,
) -> BTreeMap<(Option<Vec<u8>>, Vec<u8>), usize> {
    let mut m = BTreeMap::new();
    for (k, v) in it {
        *m.entry((k.clone(), v.clone())).or_insert(0) += 1;
    }
    m
}

/// Values per key, in the order given (records without key left out).
fn per_key<'a>(
    it: impl Iterator<Item = (&'a Option<Vec<u8>>, &'a Vec<u8>)>,
) -> HashMap<Vec<u8>, Vec<Vec<u8>>> {
    let mut m: HashMap<Vec<u8>, Vec<Vec<u8>>> = HashMap::new();
    for (k, v) in it {
        if let Some(k) = k {
            m.entry(k.clone()).or_default().push(v.clone());
        }
    }
    m
}

fn by_partition_offset(mut got: Vec<Consumed>) -> Vec<Consumed> {
    got.sort_by_key(|c| (c.partition, c.offset));
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rdkafka_producers_deliver_a_fixture_byte_exact() {
    let broker = Broker::start();
    broker.create_topic("infra_py", 1);
    broker.create_topic("infra_rd", 3);
    let fixture = fixture_path("autoscale-completed");

    // Python (aiokafka, default batching): unkeyed JSON lines, one partition,
    // content-type header.
    let plain = fixture_records(&fixture, false, false);
    assert!(plain.len() > 5000, "fixture has {} records", plain.len());
    assert!(
        plain
            .iter()
            .any(|(_, v)| serde_json::from_slice::<serde_json::Value>(v).is_err()),
        "the fixture should carry poison lines"
    );
    let file = broker.dir().join("plain.records");
    write_records_file(&file, &plain);
    let addr = broker.addr();
    let n = tokio::task::spawn_blocking({
        let (addr, file) = (addr.clone(), file.clone());
        move || produce_python(&addr, "infra_py", &file, Some("application/json"), &[])
    })
    .await
    .unwrap();
    assert_eq!(n, plain.len());

    // rdkafka (linger 20 ms, idempotent): keyed by source_id, MessagePack,
    // three partitions.
    let keyed = fixture_records(&fixture, true, true);
    assert!(keyed.iter().any(|(k, _)| k.is_none()), "poison has no key");
    assert!(keyed.iter().filter(|(k, _)| k.is_some()).count() > 5000);
    let coords = produce_rdkafka(&addr, "infra_rd", &keyed, Some("application/msgpack"), 20).await;
    assert_eq!(coords.len(), keyed.len());

    // One partition: exactly the sent sequence, offsets 0.., byte-exact.
    let got = broker.consume_all("infra_py", plain.len(), READ_TIMEOUT);
    let got = by_partition_offset(got);
    for (i, (c, (k, v))) in got.iter().zip(&plain).enumerate() {
        assert_eq!((c.partition, c.offset), (0, i as i64), "record {i}");
        assert_eq!(&c.key, k, "key of record {i}");
        assert!(c.value == *v, "value of record {i} differs");
        assert_eq!(c.header("content-type"), Some(&b"application/json"[..]));
    }

    // Three partitions: multiset equal, per-key order kept, and every record
    // at the coordinates its delivery report gave.
    let got = broker.consume_all("infra_rd", keyed.len(), READ_TIMEOUT);
    let got = by_partition_offset(got);
    assert!(
        (0..3).all(|p| got.iter().any(|c| c.partition == p)),
        "keyed records should spread over all 3 partitions"
    );
    assert!(
        multiset(got.iter().map(|c| (&c.key, &c.value)))
            == multiset(keyed.iter().map(|(k, v)| (k, v))),
        "records read back differ from those sent (as a multiset)"
    );
    let (got_keys, sent_keys) = (
        per_key(got.iter().map(|c| (&c.key, &c.value))),
        per_key(keyed.iter().map(|(k, v)| (k, v))),
    );
    assert_eq!(got_keys.len(), sent_keys.len(), "number of keys");
    for (k, sent) in &sent_keys {
        assert!(
            got_keys.get(k) == Some(sent),
            "order of key {:?} not kept",
            String::from_utf8_lossy(k)
        );
    }
    let at: HashMap<(i32, i64), &Consumed> =
        got.iter().map(|c| ((c.partition, c.offset), c)).collect();
    for (i, ((k, v), coord)) in keyed.iter().zip(&coords).enumerate() {
        let c = at
            .get(coord)
            .unwrap_or_else(|| panic!("record {i}: nothing at {coord:?}"));
        assert!(
            &c.key == k && &c.value == v,
            "record {i} at {coord:?} differs"
        );
        assert_eq!(c.header("content-type"), Some(&b"application/msgpack"[..]));
    }

    // Fact (a): ListOffsets' high watermark vs the true end of the log.
    let (low, high) = broker.list_watermarks("infra_py", 0);
    eprintln!(
        "fact (a) aiokafka default batching, 1 partition: ListOffsets (low, high) = ({low}, {high}), true end {}",
        plain.len()
    );
    for p in 0..3 {
        let end = got.iter().filter(|c| c.partition == p).count();
        let (low, high) = broker.list_watermarks("infra_rd", p);
        eprintln!(
            "fact (a) rdkafka linger 20 ms, partition {p}/3: ListOffsets (low, high) = ({low}, {high}), true end {end}"
        );
    }
}

/// Asserts `got` equals `want`, naming the first difference.
fn assert_same(got: &[Record], want: &[Record], what: &str) {
    if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
        panic!("{what}: record {i} is {:?}, want {:?}", got[i], want[i]);
    }
    assert_eq!(got.len(), want.len(), "{what}: number of records");
}

/// Records `from..to` of a small deterministic stream (`r{i}` values).
fn numbered(from: usize, to: usize) -> Vec<Record> {
    (from..to)
        .map(|i| {
            (
                Some(format!("k{}", i % 7).into_bytes()),
                format!("r{i}").into_bytes(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_broker_keeps_records_and_offsets_across_restart() {
    let mut broker = Broker::start_persistent();
    broker.create_topic("infra_persist", 1);
    // Six producers of 100 records each: at least six batches.
    for chunk in 0..6 {
        let records = numbered(chunk * 100, (chunk + 1) * 100);
        let coords = produce_rdkafka(&broker.addr(), "infra_persist", &records, None, 10).await;
        assert_eq!(
            (coords.first(), coords.last()),
            (
                Some(&(0, chunk as i64 * 100)),
                Some(&(0, chunk as i64 * 100 + 99))
            ),
            "offsets of chunk {chunk}"
        );
    }

    broker.restart();
    assert_eq!(broker.starts(), 2);
    broker.wait_for_topic("infra_persist", 1);
    let got = by_partition_offset(broker.consume_all("infra_persist", 600, READ_TIMEOUT));
    assert!(got.iter().enumerate().all(|(i, c)| c.offset == i as i64));
    let got: Vec<Record> = got.into_iter().map(|c| (c.key, c.value)).collect();
    assert_same(&got, &numbered(0, 600), "before the restart, read after it");

    // New producers after the restart continue the offsets.
    let coords = produce_rdkafka(
        &broker.addr(),
        "infra_persist",
        &numbered(600, 900),
        None,
        10,
    )
    .await;
    assert_eq!(
        (coords.first(), coords.last()),
        (Some(&(0, 600)), Some(&(0, 899))),
        "offsets must continue after the restart"
    );
    let file = broker.dir().join("persist.records");
    write_records_file(&file, &numbered(900, 1000));
    produce_python(&broker.addr(), "infra_persist", &file, None, &[]);
    let got = by_partition_offset(broker.consume_all("infra_persist", 1000, READ_TIMEOUT));
    assert!(got.iter().enumerate().all(|(i, c)| c.offset == i as i64));
    let got: Vec<Record> = got.into_iter().map(|c| (c.key, c.value)).collect();
    assert_same(&got, &numbered(0, 1000), "after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_broker_forgets_on_restart() {
    let mut broker = Broker::start();
    broker.create_topic("infra_mem", 1);
    produce_rdkafka(&broker.addr(), "infra_mem", &numbered(0, 10), None, 0).await;
    broker.restart();
    assert_eq!(
        broker.partitions("infra_mem"),
        0,
        "memory:// should start empty"
    );
}

/// The first record a fresh consumer assigned at `offset` gets within
/// `wait`, if any.
fn first_offset_from(broker: &Broker, topic: &str, offset: i64, wait: Duration) -> Option<i64> {
    let c = broker.consumer();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .unwrap();
    c.assign(&tpl).unwrap();
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            return Some(m.expect("consumer error").offset());
        }
    }
    None
}

/// Facts (a), (b), (c) about Tansu 0.6 with multi-record batches, printed
/// with `--nocapture`. Asserts only what a consumer may rely on (and that
/// nothing before the asked offset comes back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_quirks_with_multi_record_batches() {
    const N: usize = 5000;
    let broker = Broker::start();
    let records: Vec<Record> = (0..N)
        .map(|i| {
            (
                None,
                format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(80)).into_bytes(),
            )
        })
        .collect();
    // aiokafka: 16 KiB batches (~150 of these records each).
    broker.create_topic("quirks_py", 1);
    let file = broker.dir().join("quirks.records");
    write_records_file(&file, &records);
    produce_python(&broker.addr(), "quirks_py", &file, None, &[]);
    // rdkafka, linger 50 ms: batches up to 1 MB, so here one or two.
    broker.create_topic("quirks_rd", 1);
    produce_rdkafka(&broker.addr(), "quirks_rd", &records, None, 50).await;

    for (topic, producer, probes) in [
        (
            "quirks_py",
            "aiokafka default batching",
            &[1_i64, 2, 100, 2500][..],
        ),
        ("quirks_rd", "rdkafka linger 50 ms", &[1, 2500][..]),
    ] {
        // (a) ListOffsets latest vs the true end.
        let (low, high) = broker.list_watermarks(topic, 0);
        let consumer = broker.consumer();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)
            .unwrap();
        let all = consume(&consumer, &tpl, N, READ_TIMEOUT);
        assert!(
            all.iter().zip(&records).all(|(c, (_, v))| &c.value == v),
            "{topic}: records differ"
        );
        let fetch_high = tansu::cached_watermarks(&consumer, topic, 0).map(|(_, h)| h);
        eprintln!(
            "fact (a) {topic} ({producer}), {N} records: ListOffsets (low, high) = ({low}, {high}); \
             fetch-response high watermark {fetch_high:?}; true end {N}"
        );
        assert!(high <= N as i64);

        // (c) Offset::Beginning re-reads the partition fully, also on the
        // same consumer after a re-assign.
        let again = consume(&consumer, &tpl, N, READ_TIMEOUT);
        assert_eq!(
            again, all,
            "{topic}: Offset::Beginning must re-read everything"
        );
        eprintln!("fact (c) {topic}: Offset::Beginning re-read all {N} records (same consumer, re-assigned)");

        // (b) assign inside a batch: what comes first?
        for &k in probes {
            let first = first_offset_from(&broker, topic, k, Duration::from_millis(1500));
            eprintln!("fact (b) {topic}: assign at offset {k}: first record {first:?}");
            if let Some(f) = first {
                assert!(
                    f >= k,
                    "{topic}: a fetch at {k} returned the earlier offset {f}"
                );
            }
        }
    }
}
