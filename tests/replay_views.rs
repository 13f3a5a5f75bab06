//! `sundial replay --views a,b`: some views of an attempt rebuilt in place
//! from its own log. Dropping a view's rows and rebuilding it restores the
//! exact bytes, and the other views are not written at all (a row altered
//! on purpose in another view survives the rebuild). Unknown view names
//! are a clear error listing the valid ones.

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/replay.rs"]
mod replay;

use std::path::Path;
use std::sync::Arc;

use daemon::rt;
use replay::{assert_rows_equal, replay_cmd, replay_ok, rows};
use slatedb::WriteBatch;
use sundial::Handle;
use sundial::Storage;

const JOB: &str = "fx_lineage";

/// Every key of the attempt (log, views, position, snapshot index).
fn all_keys(data: &Path) -> std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
    rt().block_on(async {
        let store = daemon::open_store(data, JOB, "a").await;
        rows(store.handle(), "").await
    })
}

/// Deletes every row of `view` and puts `extra` keys, as a writer.
fn tamper(data: &Path, view: &str, extra: &[(Vec<u8>, Vec<u8>)]) {
    rt().block_on(async {
        let storage = Storage::from_url(data.to_str().unwrap()).unwrap();
        let db = Arc::new(storage.open_writer(JOB, "a").await.unwrap());
        let doomed = rows(&Handle::Writer(db.clone()), &format!("v/{view}/")).await;
        assert!(!doomed.is_empty(), "{view} has rows");
        let mut wb = WriteBatch::new();
        for k in doomed.keys() {
            wb.delete(k);
        }
        for (k, v) in extra {
            wb.put(k, v);
        }
        db.write(wb).await.unwrap();
        db.close().await.unwrap();
    })
}

#[test]
fn dropping_views_and_rebuilding_them_restores_their_exact_bytes_and_leaves_the_others_alone() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("replay-fixtures/lineage-50k/events.ndjson.gz");
    replay_ok(
        data,
        JOB,
        10_000,
        &["--input", fixture.to_str().unwrap(), "--attempt", "a"],
    );
    let before = all_keys(data);
    let snapshots = before.keys().filter(|k| k.starts_with(b"m/snap/")).count();
    assert!(snapshots > 0, "the replay took snapshots");

    // Drop two views; alter one row of a view that is not rebuilt.
    let (canary, original) = before
        .iter()
        .find(|(k, _)| k.starts_with(b"v/worker/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    tamper(data, "stage", &[(canary.clone(), b"\x80".to_vec())]);
    tamper(data, "lineage", &[]);
    let dropped = all_keys(data);
    assert!(!dropped
        .keys()
        .any(|k| k.starts_with(b"v/stage/") || k.starts_with(b"v/lineage/")));

    let out = replay_ok(
        data,
        JOB,
        10_000,
        &["--views", "stage,lineage", "--attempt", "a"],
    );
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.contains("rebuilt=stage,lineage"), "{line}");
    let after = all_keys(data);

    // The rebuilt views: exactly the bytes they had.
    for view in ["v/stage/", "v/lineage/"] {
        let pick = |m: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>| {
            m.iter()
                .filter(|(k, _)| k.starts_with(view.as_bytes()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        assert_rows_equal(view, &pick(&after), &pick(&before));
    }
    // Everything else: untouched since the tampering (the canary kept its
    // altered bytes), but for the snapshot index, dropped on purpose.
    let others = |m: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>| {
        m.iter()
            .filter(|(k, _)| {
                !k.starts_with(b"v/stage/")
                    && !k.starts_with(b"v/lineage/")
                    && !k.starts_with(b"m/snap/")
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_rows_equal("other keys", &others(&after), &others(&dropped));
    assert_eq!(after.get(&canary).map(Vec::as_slice), Some(&b"\x80"[..]));
    assert_ne!(original, b"\x80".to_vec());
    assert!(
        !after.keys().any(|k| k.starts_with(b"m/snap/")),
        "old snapshots dropped"
    );
}

#[test]
fn unknown_views_are_a_clear_error() {
    let scratch = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("replay-fixtures/autoscale-completed/events.ndjson");
    replay_ok(
        scratch.path(),
        JOB,
        10_000,
        &["--input", fixture.to_str().unwrap(), "--attempt", "a"],
    );
    let out = replay_cmd(
        scratch.path(),
        JOB,
        10_000,
        &["--views", "stage,nope", "--attempt", "a"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"nope\"") && err.contains("lineage") && err.contains("stage"),
        "{err}"
    );
    let out = replay_cmd(
        scratch.path(),
        JOB,
        10_000,
        &["--views", "stage", "--attempt", "missing"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
