//! Replays and raw view rows for the replay / rebuild / time-travel tests:
//! the `sundial replay` binary run as users run it, and every stored view
//! row of an attempt read back for byte-for-byte comparisons.
//!
//! Include with `#[path = "common/replay.rs"] mod replay;` (after `daemon`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use sundial::{Handle, ViewStore};

/// Runs `sundial replay` with `args` against `storage` (snapshots every
/// `every` log sequences) and returns its output, asserting success.
pub fn replay_ok(storage: &Path, job: &str, every: u64, args: &[&str]) -> Output {
    let out = replay_cmd(storage, job, every, args);
    assert!(
        out.status.success(),
        "sundial replay {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `sundial replay` with `args`, whatever its outcome.
pub fn replay_cmd(storage: &Path, job: &str, every: u64, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sundial"))
        .args(["replay", "--job", job, "--quiet"])
        .arg("--storage")
        .arg(storage)
        .args(args)
        .env("SUNDIAL_SNAPSHOT_EVERY", every.to_string())
        .env("RUST_LOG", "sundial=info")
        .output()
        .expect("run sundial replay")
}

/// Every key under `prefix` of a store, with its bytes.
pub async fn rows(handle: &Handle, prefix: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let start = prefix.as_bytes().to_vec();
    let mut end = start.clone();
    end.push(0xff);
    let mut it = handle.scan(start, end).await.unwrap();
    let mut out = BTreeMap::new();
    while let Some(kv) = it.next().await.unwrap() {
        out.insert(kv.key.to_vec(), kv.value.to_vec());
    }
    out
}

/// Every view row of a store (`v/…`).
pub async fn view_rows(store: &ViewStore) -> BTreeMap<Vec<u8>, Vec<u8>> {
    rows(store.handle(), "v/").await
}

/// Asserts two row sets are identical, naming the first differing key.
pub fn assert_rows_equal(
    what: &str,
    got: &BTreeMap<Vec<u8>, Vec<u8>>,
    want: &BTreeMap<Vec<u8>, Vec<u8>>,
) {
    assert!(!want.is_empty(), "{what}: nothing to compare");
    if got == want {
        return;
    }
    let keys: std::collections::BTreeSet<&Vec<u8>> = got.keys().chain(want.keys()).collect();
    for k in keys {
        if got.get(k) != want.get(k) {
            panic!(
                "{what}: {} rows vs {}; first difference at key {:?} (got {} bytes, want {} bytes)",
                got.len(),
                want.len(),
                String::from_utf8_lossy(k),
                got.get(k).map_or(0, Vec::len),
                want.get(k).map_or(0, Vec::len),
            );
        }
    }
}

/// The attempt id a `sundial replay` printed.
pub fn printed_attempt(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("attempt="))
        .unwrap_or_else(|| panic!("no attempt= in {text}"))
        .to_owned()
}
