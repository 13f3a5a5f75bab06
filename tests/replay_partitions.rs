//! `sundial replay --brokers` with offsets per partition: on a 3-partition
//! topic keyed by `source_id`, `--from-offset P:N,…` and `--to-offset P:N,…`
//! replay exactly those ranges (unlisted partitions from their start or to
//! their end), in offset order within each partition; malformed values,
//! partitions the topic lacks and ends before starts are exit-2 errors.

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/produce.rs"]
mod produce;
#[path = "common/replay.rs"]
mod replay;
#[path = "common/tansu.rs"]
mod tansu;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use daemon::{open_store, rt};
use replay::{printed_attempt, replay_cmd, replay_ok};

const JOB: &str = "fx_autoscale";

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("replay-fixtures/autoscale-completed/events.ndjson")
}

/// The (partition, offset) of every log record of an attempt, in log order.
fn logged(storage: &Path, attempt: &str) -> (Vec<(i32, i64)>, u64) {
    rt().block_on(async {
        let store = open_store(storage, JOB, attempt).await;
        let records = store.log(1, usize::MAX).await.unwrap();
        let count = store.job().await.unwrap().event_count;
        (
            records.iter().map(|r| (r.partition, r.offset)).collect(),
            count,
        )
    })
}

/// `replay --brokers --from-offset FROM --to-offset TO` into a new attempt:
/// its id, the coordinates of its log records and its event count.
fn replay_range(
    data: &Path,
    broker: &str,
    topic: &str,
    from: &str,
    to: &str,
) -> (String, Vec<(i32, i64)>, u64) {
    let args = [
        "--brokers",
        broker,
        "--topic",
        topic,
        "--from-offset",
        from,
        "--to-offset",
        to,
    ];
    let attempt = printed_attempt(&replay_ok(data, JOB, 1_000, &args));
    let (got, count) = logged(data, &attempt);
    (attempt, got, count)
}

#[test]
fn per_partition_offsets_replay_exactly_those_ranges() {
    let broker = tansu::Broker::start();
    let topic = "parts_state";
    broker.create_topic(topic, 3);
    let records = produce::fixture_records(&fixture(), true, false);
    let placed = rt().block_on(produce::produce_rdkafka(
        &broker.addr(),
        topic,
        &records,
        None,
        5,
    ));
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for &(p, o) in &placed {
        let end = ends.entry(p).or_insert(0);
        *end = (*end).max(o + 1);
    }
    assert_eq!(ends.len(), 3, "keyed records reach all three partitions");
    // Partition 0 in its middle third, partition 1 from its start to its
    // middle, partition 2 from its middle to its end.
    let (from0, to0) = (ends[&0] / 3, 2 * ends[&0] / 3);
    let to1 = ends[&1] / 2;
    let from2 = ends[&2] / 2;
    let want: BTreeSet<(i32, i64)> = placed
        .iter()
        .copied()
        .filter(|&(p, o)| match p {
            0 => (from0..=to0).contains(&o),
            1 => o <= to1,
            _ => o >= from2,
        })
        .collect();

    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path();
    let b = broker.addr();
    let (from, to) = (format!("0:{from0},2:{from2}"), format!("0:{to0}, 1:{to1}"));
    let (attempt, got, count) = replay_range(data, &b, topic, &from, &to);
    assert_eq!(
        count,
        want.len() as u64,
        "event_count of the replayed range"
    );
    assert_eq!(got.len(), want.len(), "log records of the replayed range");
    assert_eq!(
        got.iter().copied().collect::<BTreeSet<_>>(),
        want,
        "exactly the asked ranges"
    );
    for p in 0..3 {
        let offsets: Vec<i64> = got.iter().filter(|r| r.0 == p).map(|r| r.1).collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "partition {p} in offset order"
        );
    }

    // One number still means every partition.
    let (_, got, _) = replay_range(data, &b, topic, "5", "9");
    let want: BTreeSet<(i32, i64)> = (0..3).flat_map(|p| (5..=9).map(move |o| (p, o))).collect();
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);

    // Clear errors, exit 2, nothing replayed.
    let cases: [(&[&str], &str); 4] = [
        (
            &["--brokers", &b, "--topic", topic, "--from-offset", "3:0"],
            "partition 3",
        ),
        (
            &[
                "--brokers",
                &b,
                "--topic",
                topic,
                "--from-offset",
                "0:9",
                "--to-offset",
                "0:4",
            ],
            "below the start",
        ),
        (
            &["--brokers", &b, "--topic", topic, "--to-offset", "0:x"],
            "PARTITION:OFFSET",
        ),
        (
            &["--from-log", &attempt, "--from-offset", "0:5"],
            "--brokers only",
        ),
    ];
    for (args, says) in cases {
        let out = replay_cmd(data, JOB, 1_000, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?} says {says:?}: {err}");
    }
}
