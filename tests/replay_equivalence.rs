//! Replay from any source and time travel, byte for byte, on every fixture:
//! the live daemon's views == `replay --brokers` == `replay --from-log` ==
//! `replay --input` (the file has no Kafka coordinates: those fields are
//! the only ones left out there); `as_of` at the last offset == the current
//! views; `as_of=K` == `replay --to-offset K`, for offsets on, just after
//! and between view snapshots; bad `as_of` values are 400s over HTTP.

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/produce.rs"]
mod produce;
#[path = "common/replay.rs"]
mod replay;
#[path = "common/tansu.rs"]
mod tansu;

use std::path::{Path, PathBuf};
use std::process::Command;

use daemon::{assert_identical, assert_same, fixture_values, open_store, rt, Differ};
use replay::{assert_rows_equal, printed_attempt, replay_ok, view_rows};
use serde_json::Value;
use sundial::api;
use sundial::Storage;

/// (fixture folder, job id, stream file)
const FIXTURES: &[(&str, &str, &str)] = &[
    ("autoscale-completed", "fx_autoscale", "events.ndjson"),
    ("exception-storm-failed", "fx_storm", "events.ndjson"),
    ("lineage-50k", "fx_lineage", "events.ndjson.gz"),
    ("msgpack-realistic", "fx_msgpack", "events.msgpack"),
];

/// A small snapshot interval, so every fixture has several snapshots.
const EVERY: u64 = 3_000;
/// Records per batch of the file replays (snapshots fall on batch ends).
const BATCH: &str = "1000";

fn fixture_file(dir: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("replay-fixtures")
        .join(dir)
        .join(file)
}

/// The API snapshot and every view row of one attempt.
fn state(
    storage: &Path,
    job: &str,
    attempt: &str,
) -> (Value, std::collections::BTreeMap<Vec<u8>, Vec<u8>>) {
    rt().block_on(async {
        let store = open_store(storage, job, attempt).await;
        (
            api::snapshot(&store).await.unwrap(),
            view_rows(&store).await,
        )
    })
}

/// `as_of=k` on an attempt, through the library: API snapshot and rows.
fn state_as_of(
    storage: &Path,
    job: &str,
    attempt: &str,
    k: u64,
    bounded: bool,
) -> (Value, std::collections::BTreeMap<Vec<u8>, Vec<u8>>, u64) {
    rt().block_on(async {
        let store = open_store(storage, job, attempt).await;
        let s = Storage::from_url(storage.to_str().unwrap()).unwrap();
        // Every view up front, in one pass (the HTTP test reads them lazily).
        let all = sundial_views::view_names();
        let (past, stats) = sundial::as_of::view_at(&s, &store, k, &all).await.unwrap();
        assert!(
            !bounded || stats.replayed <= EVERY + 1_000,
            "as_of={k} replayed {} records from snapshot {}",
            stats.replayed,
            stats.snapshot
        );
        (
            api::snapshot(&past).await.unwrap(),
            view_rows(&past).await,
            stats.snapshot,
        )
    })
}

/// Every source of one fixture through Kafka, the log and the file.
fn check_fixture(broker: &tansu::Broker, fx: (&str, &str, &str)) {
    let (dir, job, file) = fx;
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let topic = format!("{job}_state");
    let values = fixture_values(&fixture_file(dir, file));
    let records: Vec<produce::Record> = values.iter().map(|v| (None, v.clone())).collect();
    broker.create_topic(&topic, 1);
    let rec_file = scratch.path().join("records");
    produce::write_records_file(&rec_file, &records);
    produce::produce_python(&broker.addr(), &topic, &rec_file, None, &[]);

    // The live daemon.
    let live_dir = scratch.path().join("live");
    let out = daemon::run_to_end(&broker.addr(), job, &topic, &live_dir, &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("events={}", values.len())));
    let live_attempt = rt().block_on(daemon::attempts(&live_dir, job)).remove(0);
    let (live_api, live_rows) = state(&live_dir, job, &live_attempt);

    // From the topic, from the daemon's log, from the file.
    let b = broker.addr();
    let from_topic = printed_attempt(&replay_ok(
        &live_dir,
        job,
        EVERY,
        &["--brokers", &b, "--topic", &topic],
    ));
    let from_log = printed_attempt(&replay_ok(
        &live_dir,
        job,
        EVERY,
        &["--from-log", &live_attempt],
    ));
    let fixture = fixture_file(dir, file);
    let from_file = printed_attempt(&replay_ok(
        &data,
        job,
        EVERY,
        &[
            "--input",
            fixture.to_str().unwrap(),
            "--attempt",
            "file",
            "--batch",
            BATCH,
        ],
    ));
    for (what, at, d) in [
        ("topic", &from_topic, &live_dir),
        ("log", &from_log, &live_dir),
    ] {
        let (a, r) = state(d, job, at);
        assert_identical(&format!("{dir}: replay from {what} vs live"), &a, &live_api);
        assert_rows_equal(
            &format!("{dir}: replay from {what} vs live rows"),
            &r,
            &live_rows,
        );
    }
    let (file_api, file_rows) = state(&data, job, &from_file);
    assert_same(
        &format!("{dir}: replay from file vs live"),
        &file_api,
        &live_api,
        Differ::default(),
    );
    // The golden views of this fixture are the file replay's.
    assert_same(
        &format!("{dir}: file vs golden"),
        &file_api,
        &daemon::golden(dir),
        Differ::default(),
    );

    // Time travel on the file attempt (and once on the live one).
    let last = file_api["job"]["log_offset"].as_u64().unwrap();
    assert_eq!(last, values.len() as u64);
    let (now_api, now_rows, _) = state_as_of(&data, job, &from_file, last, true);
    assert_identical(
        &format!("{dir}: as_of=last vs current"),
        &now_api,
        &file_api,
    );
    assert_rows_equal(&format!("{dir}: as_of=last rows"), &now_rows, &file_rows);
    let (live_now, _, _) = state_as_of(&live_dir, job, &live_attempt, last, false);
    assert_identical(&format!("{dir}: live as_of=last"), &live_now, &live_api);
    let mut ks = vec![1, last / 3, last / 2 + 7, 2 * last / 3];
    // Exactly on a snapshot of the file replay, and just after it.
    if last > 2 * EVERY + 1 {
        ks.extend([2 * EVERY, 2 * EVERY + 1]);
    }
    let mut from_snapshot = false;
    for k in ks {
        let to = printed_attempt(&replay_ok(
            &data,
            job,
            EVERY,
            &["--from-log", &from_file, "--to-offset", &k.to_string()],
        ));
        let (want_api, want_rows) = state(&data, job, &to);
        let (got_api, got_rows, snap) = state_as_of(&data, job, &from_file, k, true);
        from_snapshot |= snap > 0;
        assert_identical(
            &format!("{dir}: as_of={k} vs replay --to-offset {k}"),
            &got_api,
            &want_api,
        );
        assert_rows_equal(&format!("{dir}: as_of={k} rows"), &got_rows, &want_rows);
    }
    if last > 2 * EVERY + 1 {
        assert!(from_snapshot, "{dir}: some as_of started from a snapshot");
    }

    // A topic range, starting inside a record batch: == that log range.
    if last > 100 {
        let (lo, hi) = (last / 4, last / 2);
        let t = printed_attempt(&replay_ok(
            &live_dir,
            job,
            EVERY,
            &[
                "--brokers",
                &b,
                "--topic",
                &topic,
                "--from-offset",
                &lo.to_string(),
                "--to-offset",
                &hi.to_string(),
            ],
        ));
        let l = printed_attempt(&replay_ok(
            &live_dir,
            job,
            EVERY,
            &[
                "--from-log",
                &live_attempt,
                "--from-offset",
                &(lo + 1).to_string(),
                "--to-offset",
                &(hi + 1).to_string(),
            ],
        ));
        let (ta, tr) = state(&live_dir, job, &t);
        let (la, lr) = state(&live_dir, job, &l);
        assert_eq!(
            ta["job"]["event_count"].as_u64(),
            Some(hi - lo + 1),
            "{dir}: topic range"
        );
        assert_identical(&format!("{dir}: topic range vs log range"), &ta, &la);
        assert_rows_equal(&format!("{dir}: topic range rows"), &tr, &lr);
    }
}

#[test]
fn every_source_and_as_of_yield_the_same_views() {
    let broker = tansu::Broker::start();
    let only = std::env::var("ONLY_FIXTURE").unwrap_or_default();
    for &fx in FIXTURES.iter().filter(|f| f.0.contains(only.as_str())) {
        check_fixture(&broker, fx);
    }
}

/// `as_of` over real HTTP from `sundial serve`: the same answers as the
/// replay up to that offset; bad values are clear 400s.
#[test]
fn as_of_over_http() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path();
    let job = "fx_storm";
    let fixture = fixture_file("exception-storm-failed", "events.ndjson");
    replay_ok(
        data,
        job,
        EVERY,
        &[
            "--input",
            fixture.to_str().unwrap(),
            "--attempt",
            "full",
            "--batch",
            BATCH,
        ],
    );
    let last: u64 = state(data, job, "full").0["job"]["log_offset"]
        .as_u64()
        .unwrap();
    // Past the first snapshot (at EVERY: batches of 1 000), so the answer
    // comes from a snapshot plus the records after it.
    let k = EVERY + 500;
    assert!(k < last);
    replay_ok(
        data,
        job,
        EVERY,
        &[
            "--from-log",
            "full",
            "--to-offset",
            &k.to_string(),
            "--attempt",
            "upto",
        ],
    );
    let addr = daemon::free_addr();
    /// Kills the server even when an assertion fails.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _serve = Kill(
        Command::new(daemon::bin())
            .args(["serve", "--http", &addr])
            .arg("--storage")
            .arg(data)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let get = |path: &str| -> (u16, Value) {
        for _ in 0..200 {
            if let Some((s, b)) = daemon::http_get(&addr, path) {
                return (s, serde_json::from_str(&b).unwrap());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("no answer from {addr}{path}");
    };
    // Item routes too, on items that exist at k (each route replays only
    // the views it reads, the others when first read: all must be exact).
    let first_id = |route: &str, field: &str| -> String {
        let (_, list) = get(&format!("/api/jobs/{job}{route}?attempt=upto"));
        list["items"][0][field].as_str().unwrap().to_owned()
    };
    let stage = first_id("/stages", "stage_id");
    let worker = first_id("/workers", "worker_id");
    let mut routes: Vec<String> = [
        "",
        "/stages",
        "/workers",
        "/exceptions",
        "/exceptions/summary",
        "/checkpoints",
        "/timeline",
        "/dead-letters",
        "/lineage",
        "/configuration",
    ]
    .map(String::from)
    .to_vec();
    routes.push(format!("/stages/{stage}"));
    routes.push(format!("/stages/{stage}/metrics"));
    routes.push(format!("/stages/{stage}/workers"));
    routes.push(format!("/workers/{worker}"));
    let (_, lineage) = get(&format!("/api/jobs/{job}/lineage?attempt=upto"));
    if let Some(split) = lineage["items"][0]["split_id"].as_str() {
        routes.push(format!("/lineage/{split}"));
    }
    for route in &routes {
        let (s1, mut past) = get(&format!("/api/jobs/{job}{route}?attempt=full&as_of={k}"));
        let (s2, mut want) = get(&format!("/api/jobs/{job}{route}?attempt=upto"));
        assert_eq!((s1, s2), (200, 200), "{route}");
        past["attempt_id"] = Value::Null;
        want["attempt_id"] = Value::Null;
        assert_eq!(past, want, "GET {route}?as_of={k}");
    }
    let (s, ev) = get(&format!(
        "/api/jobs/{job}/events?attempt=full&as_of={k}&from_offset={}",
        k - 2
    ));
    assert_eq!(s, 200);
    let seqs: Vec<u64> = ev["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs.last().copied(),
        Some(k),
        "events stop at as_of: {seqs:?}"
    );
    for bad in ["0", "abc", "-1", &(last + 1).to_string()] {
        let (s, body) = get(&format!("/api/jobs/{job}?attempt=full&as_of={bad}"));
        assert_eq!(s, 400, "as_of={bad}: {body}");
        assert!(body["error"].as_str().unwrap().contains("as_of"), "{body}");
    }
    let (s, _) = get(&format!("/api/jobs/{job}/stream?as_of={k}"));
    assert_eq!(s, 400);
}
