//! Golden replay: every recorded stream under `replay-fixtures/` replayed
//! through the real engine into SlateDB, its API answers compared with the
//! reviewed `expected.json` beside it. Also: replaying twice, and with other
//! batch sizes, yields byte-identical answers. `UPDATE_GOLDEN=1` rewrites the
//! expected files (review the diff before committing).

use std::path::PathBuf;
use std::sync::Arc;

use sundial::api;
use sundial::replay_file;
use sundial::Storage;
use sundial::{Handle, ViewStore};

/// (fixture folder, job id, stream file)
const FIXTURES: &[(&str, &str, &str)] = &[
    ("autoscale-completed", "fx_autoscale", "events.ndjson"),
    ("exception-storm-failed", "fx_storm", "events.ndjson"),
    ("lineage-50k", "fx_lineage", "events.ndjson.gz"),
    ("msgpack-realistic", "fx_msgpack", "events.msgpack"),
    ("solstice-defaults", "fx_sol_defaults", "events.ndjson"),
    ("solstice-full", "fx_sol_full", "events.ndjson"),
];

/// The fixtures of exactly what Solstice's message factories send: clean
/// streams, every record applied.
fn is_solstice(dir: &str) -> bool {
    dir.starts_with("solstice-")
}

fn fixture(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("replay-fixtures")
        .join(dir)
}

/// Replays a fixture into a fresh store and renders every answer.
async fn replay_snapshot(dir: &str, job: &str, file: &str, batch: usize) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let storage = Storage::from_url(tmp.path().to_str().unwrap()).unwrap();
    let input = fixture(dir).join(file);
    let (attempt, summary) = replay_file(
        &storage,
        job,
        Some("golden"),
        input.to_str().unwrap(),
        batch,
    )
    .await
    .unwrap();
    assert!(summary.totals.records > 0);
    let reader = storage.open_reader(job, &attempt).await.unwrap();
    let store = ViewStore::open(Handle::Reader(Arc::new(reader)), job, &attempt)
        .await
        .unwrap();
    let snap = api::snapshot(&store).await.unwrap();
    serde_json::to_string_pretty(&snap).unwrap() + "\n"
}

/// Contract §2 facts every snapshot must satisfy, whatever the stream.
fn assert_invariants(dir: &str, snap: &serde_json::Value) {
    let job = &snap["job"];
    let stages = snap["stages"]["items"].as_array().unwrap();
    let workers = snap["workers"].as_object().unwrap();
    let sum = |items: &[serde_json::Value], f: &str| {
        items.iter().map(|v| v[f].as_u64().unwrap()).sum::<u64>()
    };
    assert_eq!(
        job["total_input_records"].as_u64().unwrap(),
        sum(stages, "input_records"),
        "{dir}: job totals sum the stages"
    );
    assert_eq!(
        job["total_output_records"].as_u64().unwrap(),
        sum(stages, "output_records"),
        "{dir}"
    );
    for st in stages {
        let id = st["stage_id"].as_str().unwrap();
        let mine: Vec<serde_json::Value> = workers
            .values()
            .filter(|w| w["stage_id"] == id)
            .cloned()
            .collect();
        assert_eq!(
            st["input_records"].as_u64().unwrap(),
            sum(&mine, "input_records"),
            "{dir}/{id}: stage = sum of ALL its workers"
        );
        assert_eq!(
            st["output_records"].as_u64().unwrap(),
            sum(&mine, "output_records"),
            "{dir}/{id}"
        );
        assert_eq!(
            st["total_workers"].as_u64().unwrap(),
            mine.len() as u64,
            "{dir}/{id}"
        );
        let running = mine.iter().filter(|w| w["status"] == "RUNNING").count() as u64;
        assert_eq!(
            st["worker_count"].as_u64().unwrap(),
            running,
            "{dir}/{id}: worker_count = running"
        );
        if job["status"] != "RUNNING" {
            assert_ne!(
                st["status"], "RUNNING",
                "{dir}/{id}: stages settle when the job ends"
            );
        }
    }
    let c = &snap["checkpoints"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    assert_eq!(
        n(&c["completed"]) + n(&c["failed"]) + n(&c["in_progress"]),
        n(&c["count"]),
        "{dir}"
    );
    assert_eq!(
        c["history"].as_array().unwrap().len() as u64,
        n(&c["count"]),
        "{dir}"
    );
    let ex = &snap["exception_summary"];
    let by_type: u64 = ex["by_type"].as_object().unwrap().values().map(n).sum();
    assert_eq!(
        n(&ex["total"]),
        n(&job["exception_count"]),
        "{dir}: exceptions are never trimmed"
    );
    assert_eq!(by_type, n(&ex["total"]), "{dir}");
    assert_eq!(
        n(&snap["dead_letters"]["total"]),
        n(&job["dead_letter_count"]),
        "{dir}"
    );
    if is_solstice(dir) {
        assert_solstice(dir, snap);
    } else {
        assert!(
            n(&job["dead_letter_count"]) > 0 && n(&job["duplicate_count"]) > 0,
            "{dir}: fixtures carry anomalies"
        );
    }
    assert_eq!(
        n(&snap["lineage"]["total"]),
        n(&job["split_count"]),
        "{dir}"
    );
    let times = |list: &serde_json::Value| -> Vec<f64> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["timestamp"].as_f64().unwrap())
            .collect()
    };
    let tl = times(&snap["timeline"]);
    assert!(
        tl.windows(2).all(|w| w[0] <= w[1]),
        "{dir}: timeline in event-time order"
    );
    let exs = times(&snap["exceptions"]);
    assert!(
        exs.windows(2).all(|w| w[0] >= w[1]),
        "{dir}: exceptions newest first"
    );
}

/// A Solstice factory fixture: every record applied (no dead letter, no
/// duplicate, nothing missing), and the lineage of the three-stage job with
/// a merge: parents as sent, children derived from them.
fn assert_solstice(dir: &str, snap: &serde_json::Value) {
    let job = &snap["job"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    let records = n(&job["event_count"]);
    assert!(records > 20, "{dir}: {job}");
    assert_eq!(n(&job["dead_letter_count"]), 0, "{dir}");
    assert_eq!(n(&job["duplicate_count"]), 0, "{dir}");
    assert_eq!(n(&job["missing_count"]), 0, "{dir}");
    let splits = snap["lineage"]["items"].as_array().unwrap();
    let ids = |v: &serde_json::Value| -> Vec<String> {
        let mut out: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        out.sort();
        out
    };
    let mut got: Vec<(String, String, Vec<String>, Vec<String>)> = splits
        .iter()
        .map(|s| {
            (
                s["split_id"].as_str().unwrap().to_owned(),
                s["stage_id"].as_str().unwrap().to_owned(),
                ids(&s["parents"]),
                ids(&s["children"]),
            )
        })
        .collect();
    got.sort();
    let v = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let row = |id: &str, stage: &str, parents: &[&str], children: &[&str]| {
        (id.to_owned(), stage.to_owned(), v(parents), v(children))
    };
    assert_eq!(
        got,
        vec![
            row("map_s0", "map", &["source_s0"], &["sink_s0"]),
            row("map_s1", "map", &["source_s1"], &["sink_s0"]),
            row("sink_s0", "sink", &["map_s0", "map_s1"], &[]),
            row("source_s0", "source", &[], &["map_s0"]),
            row("source_s1", "source", &[], &["map_s1"]),
        ],
        "{dir}: lineage"
    );
    // What the producer did not send is null; what it sent is shown.
    const OPTIONAL: [&str; 9] = [
        "partition_id",
        "enqueue_time",
        "dequeue_time",
        "complete_time",
        "queue_wait_time_ms",
        "input_bytes",
        "output_bytes",
        "payload_store_key",
        "payload_storage_path",
    ];
    for s in splits {
        assert!(
            s["processing_time_ms"].as_f64().unwrap() > 0.0,
            "{dir}: {s}"
        );
        for f in OPTIONAL {
            let sent = dir == "solstice-full";
            assert_eq!(!s[f].is_null(), sent, "{dir}: {f} sent: {sent}: {s}");
        }
    }
}

async fn check(dir: &str, job: &str, file: &str) {
    let got = replay_snapshot(dir, job, file, 4096).await;
    assert_invariants(dir, &serde_json::from_str(&got).unwrap());
    let path = fixture(dir).join("expected.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 once)", path.display()));
    if got != want {
        let at = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{dir}: answers differ from expected.json at line {}:\n got: {}\nwant: {}",
            at + 1,
            got.lines().nth(at).unwrap_or(""),
            want.lines().nth(at).unwrap_or("")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscale_completed_matches_golden() {
    let (d, j, f) = FIXTURES[0];
    check(d, j, f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exception_storm_failed_matches_golden() {
    let (d, j, f) = FIXTURES[1];
    check(d, j, f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lineage_50k_matches_golden() {
    let (d, j, f) = FIXTURES[2];
    check(d, j, f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_realistic_matches_golden() {
    let (d, j, f) = FIXTURES[3];
    check(d, j, f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solstice_defaults_matches_golden() {
    let (d, j, f) = FIXTURES[4];
    check(d, j, f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solstice_full_matches_golden() {
    let (d, j, f) = FIXTURES[5];
    check(d, j, f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_is_byte_identical_twice_and_across_batch_sizes() {
    for &(d, j, f) in &[FIXTURES[0], FIXTURES[3], FIXTURES[4]] {
        let a = replay_snapshot(d, j, f, 4096).await;
        let b = replay_snapshot(d, j, f, 4096).await;
        assert_eq!(a, b, "{d}: two replays differ");
        let c = replay_snapshot(d, j, f, 97).await;
        assert_eq!(a, c, "{d}: batch size changed the views");
    }
}

/// Contract §2 end to end: a `split_processed` without its `split_id`
/// (from Solstice's factory shape, between two good ones of the same
/// producer) is a dead letter with the reason, and its sequence arrived:
/// nothing is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_without_a_required_field_is_a_dead_letter_not_a_lost_message() {
    let tmp = tempfile::tempdir().unwrap();
    let split = |seq: u64, id: Option<&str>| {
        let id = id.map_or(String::new(), |i| format!("\"split_id\": \"{i}\", "));
        format!(
            r#"{{"message_type": "split_processed", "job_id": "fx_dead", "source_id": "w0", "timestamp": {seq}.5, "payload": {{"stage_id": "s", {id}"parent_split_ids": [], "input_records": 1, "output_records": 1, "processing_time": 0.5}}, "sequence": {seq}}}"#
        )
    };
    let lines = [split(1, Some("a")), split(2, None), split(3, Some("c"))];
    let input = tmp.path().join("in.ndjson");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let storage = Storage::from_url(tmp.path().join("data").to_str().unwrap()).unwrap();
    let (attempt, _) = replay_file(&storage, "fx_dead", None, input.to_str().unwrap(), 4096)
        .await
        .unwrap();
    let reader = storage.open_reader("fx_dead", &attempt).await.unwrap();
    let store = ViewStore::open(Handle::Reader(Arc::new(reader)), "fx_dead", &attempt)
        .await
        .unwrap();
    let snap = api::snapshot(&store).await.unwrap();
    let job = &snap["job"];
    assert_eq!(job["dead_letter_count"], 1, "{job}");
    assert_eq!(job["missing_count"], 0, "{job}");
    assert_eq!(job["split_count"], 2, "{job}");
    let dead = &snap["dead_letters"]["items"][0];
    assert_eq!(dead["offset"], 2, "{dead}");
    let reason = dead["reason"].as_str().unwrap();
    assert!(reason.contains("missing field `split_id`"), "{reason}");
}
