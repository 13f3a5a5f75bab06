//! The Grafana dashboard (`grafana/sundial.json`) against what a real
//! projector exports: the JSON parses, every panel queries Sundial metrics,
//! and every metric name any panel or template variable queries is a sample
//! of `/metrics` of a `sundial project` daemon that consumed a fixture from
//! a real Tansu broker.

#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/produce.rs"]
mod produce;
#[path = "common/tansu.rs"]
mod tansu;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use daemon::{autoscale_values, free_addr, http_get, project_cmd, terminate, wait_offset};
use produce::{produce_python, write_records_file, Record};
use serde_json::Value;
use tansu::Broker;

const JOB: &str = "fx_autoscale";
const TIMEOUT: Duration = Duration::from_secs(60);

fn dashboard() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/sundial.json");
    serde_json::from_slice(&std::fs::read(&path).expect("grafana/sundial.json"))
        .expect("grafana/sundial.json is JSON")
}

/// The `sundial_…` metric names a PromQL expression mentions.
fn names_in(expr: &str) -> Vec<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("sundial_") {
        let starts_word = !rest[..i].chars().next_back().is_some_and(is_name);
        let end = rest[i..]
            .find(|c| !is_name(c))
            .map_or(rest.len(), |e| i + e);
        if starts_word {
            out.push(rest[i..end].to_owned());
        }
        rest = &rest[end..];
    }
    out
}

/// Every panel target's `expr` (rows' nested panels included) and every
/// template variable's query.
fn queries(d: &Value) -> Vec<(String, String)> {
    fn panels(list: &Value, out: &mut Vec<(String, String)>) {
        for p in list.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?").to_owned();
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap_or_default();
                out.push((title.clone(), expr.to_owned()));
            }
            panels(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&d["panels"], &mut out);
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            let q = v["query"]["query"].as_str().or(v["query"].as_str());
            let name = format!("${}", v["name"].as_str().unwrap_or("?"));
            out.push((name, q.unwrap_or_default().to_owned()));
        }
    }
    out
}

/// The sample names of a text exposition (`name{labels} value` lines).
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// The queried names `text` does not export.
fn missing(names: &BTreeSet<String>, text: &str) -> Vec<String> {
    let have = exported(text);
    names
        .iter()
        .filter(|n| !have.contains(*n))
        .cloned()
        .collect()
}

#[test]
fn the_checks_catch_a_name_that_is_not_exported() {
    let expr = r#"rate(sundial_projector_records_total{instance=~"$i"}[5m]) / sundial_nope_total + x_sundial_other"#;
    assert_eq!(
        names_in(expr),
        ["sundial_projector_records_total", "sundial_nope_total"]
    );
    let text = "# TYPE sundial_projector_records counter\nsundial_projector_records_total 3\n";
    let names: BTreeSet<String> = names_in(expr).into_iter().collect();
    assert_eq!(missing(&names, text), ["sundial_nope_total"]);
}

#[test]
fn the_dashboard_has_the_panels_and_variables_it_promises() {
    let d = dashboard();
    assert!(d["title"].is_string() && d["uid"].is_string());
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for v in ["datasource", "job", "instance"] {
        assert!(
            vars.contains(&v),
            "template variable ${v} missing: {vars:?}"
        );
    }
    let q = queries(&d);
    assert!(q.len() >= 15, "{} queries", q.len());
    for (title, expr) in &q {
        assert!(
            !names_in(expr).is_empty(),
            "{title}: queries no Sundial metric: {expr}"
        );
    }
    let all: BTreeSet<String> = q.iter().flat_map(|(_, e)| names_in(e)).collect();
    for family in [
        "sundial_projector_records_total",
        "sundial_projector_dead_letters_total",
        "sundial_projector_duplicates_total",
        "sundial_projector_batch_size_records_bucket",
        "sundial_projector_batch_duration_seconds_bucket",
        "sundial_projector_kafka_lag_records",
        "sundial_projector_kafka_position",
        "sundial_projector_last_event_timestamp_seconds",
        "sundial_stage_input_records_per_second",
        "sundial_stage_output_records_per_second",
        "sundial_stage_queue_lag_records",
        "sundial_stage_backpressure_active",
        "sundial_stage_workers",
        "sundial_stage_skew_ratio",
        "sundial_job_exceptions",
    ] {
        assert!(all.contains(family), "no panel shows {family}");
    }
}

#[test]
fn every_metric_the_dashboard_queries_is_exported_by_a_live_projector() {
    let names: BTreeSet<String> = queries(&dashboard())
        .iter()
        .flat_map(|(_, e)| names_in(e))
        .collect();
    let broker = Broker::start();
    let scratch = tempfile::tempdir().unwrap();
    let topic = "grafana_state";
    broker.create_topic(topic, 1);
    let values = autoscale_values();
    let recs: Vec<Record> = values.iter().map(|v| (None, v.clone())).collect();
    let file = scratch.path().join("records");
    write_records_file(&file, &recs);
    produce_python(&broker.addr(), topic, &file, None, &[]);
    let addr = free_addr();
    let daemon = project_cmd(&broker.addr(), JOB, topic, &scratch.path().join("data"))
        .args(["--http", &addr, "--exit-after-end-secs", "0"])
        .spawn()
        .unwrap();
    wait_offset(&addr, JOB, values.len() as u64, TIMEOUT);
    // One API request, so the request counter has a sample.
    assert_eq!(http_get(&addr, &format!("/api/jobs/{JOB}")).unwrap().0, 200);
    // Stage gauges are recomputed about once a second after a commit:
    // scrape until every name is there or the deadline passes.
    let start = Instant::now();
    let (text, gone) = loop {
        let (status, text) = http_get(&addr, "/metrics").unwrap();
        assert_eq!(status, 200);
        let gone = missing(&names, &text);
        if gone.is_empty() || start.elapsed() > TIMEOUT {
            break (text, gone);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    terminate(&daemon);
    let _ = daemon.wait_with_output();
    assert!(
        gone.is_empty(),
        "grafana/sundial.json queries metrics /metrics does not export: {gone:?}\n{text}"
    );
}
