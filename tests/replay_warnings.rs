//! What `sundial replay` tells its user beside the summary line: a replay
//! whose every record is a dead letter (the records of another job, most
//! often a mistyped `--job`) says so on stderr and names the reason, and a
//! replay with some dead letters says how many (a clean one says nothing:
//! `replay_bad_records`).

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/replay.rs"]
mod replay;

use std::path::Path;

use replay::replay_ok;

fn fixture() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("replay-fixtures/autoscale-completed/events.ndjson")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_replay_of_another_jobs_records_warns_and_names_the_job() {
    let scratch = tempfile::tempdir().unwrap();
    let out = replay_ok(
        scratch.path(),
        "fx_autoscal",
        10_000,
        &["--input", &fixture()],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains(" applied=0 "), "{stdout}");
    // Every line of the fixture is a record (a few are poison on purpose).
    let bytes = std::fs::read(fixture()).unwrap();
    let lines = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert!(stdout.contains(&format!("events={lines} ")), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "warning: none of the {lines} records was applied, {lines} are dead letters"
        )) && stderr.contains("job_id=fx_autoscale does not match the projector's job=fx_autoscal"),
        "{stderr}"
    );
    // Still stored: the dead letters are the history of what came in.
    assert!(
        stdout.contains(&format!(" dead_letters={lines} ")),
        "{stdout}"
    );
}

#[test]
fn a_replay_with_some_dead_letters_says_how_many() {
    let scratch = tempfile::tempdir().unwrap();
    let out = replay_ok(
        scratch.path(),
        "fx_autoscale",
        10_000,
        &["--input", &fixture()],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The fixture's 8 poison records (see replay-fixtures/README.md).
    assert!(stdout.contains(" dead_letters=8 "), "{stdout}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0]
            .starts_with("warning: 8 of the 5878 records are dead letters, stored and listed"),
        "{stderr}"
    );
    assert!(!stdout.contains(" applied=0 "));
}
