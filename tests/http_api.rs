//! HTTP API over a real socket (contract §5): every route answered by the
//! real router for simulated jobs replayed into SlateDB (see `common`), its
//! status, JSON shape and values that follow from the simulated streams; bad
//! parameters answered with a JSON 400/404, and no request a client can send
//! answered with a 500.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{
    fixture, get, get_json, get_stream_until, request, Expect, AUTO, LIVE, NEW_ATTEMPT,
    OLD_ATTEMPT, STORM,
};
use serde_json::{json, Value};
use sundial::simulate::POISON_RECORDS;

/// Fields the contract lists for `GET /api/jobs/{job}`.
const JOB_FIELDS: &[&str] = &[
    "job_id",
    "attempt_id",
    "status",
    "start_time",
    "end_time",
    "duration_ms",
    "dag_edges",
    "stage_count",
    "total_input_records",
    "total_output_records",
    "exception_count",
    "dead_letter_count",
    "duplicate_count",
    "missing_count",
    "log_offset",
];

/// Fields the contract lists for `GET /api/jobs/{job}/stages/{stage}`.
const STAGE_FIELDS: &[&str] = &[
    "stage_id",
    "operator_type",
    "status",
    "min_parallelism",
    "max_parallelism",
    "worker_count",
    "total_workers",
    "input_records",
    "output_records",
    "input_throughput",
    "output_throughput",
    "queue_lag",
    "backpressure_active",
    "exception_count",
    "partition_metrics",
    "skew_ratio",
];

/// Fields the contract lists for `GET /api/jobs/{job}/workers/{worker}`.
const WORKER_FIELDS: &[&str] = &[
    "worker_id",
    "stage_id",
    "status",
    "health",
    "last_seen",
    "start_time",
    "end_time",
    "input_records",
    "output_records",
    "processed_count",
    "processing_time",
    "assigned_partitions",
    "events",
];

fn has_fields(v: &Value, fields: &[&str], what: &str) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {v}"));
    for f in fields {
        assert!(obj.contains_key(*f), "{what}: no field {f:?} in {v}");
    }
}

fn items(v: &Value) -> &Vec<Value> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items array in {v}"))
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_owned())
        .collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn int(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not a whole number: {v}"))
}

/// A paged list: checks the envelope and returns it.
async fn page(target: &str, want_page: u64, want_size: u64) -> Value {
    let v = get_json(target).await;
    assert_eq!(v["page"], want_page, "{target}: page");
    assert_eq!(v["page_size"], want_size, "{target}: page_size");
    assert!(v["total"].is_u64(), "{target}: total");
    assert!(
        items(&v).len() as u64 <= want_size,
        "{target}: page too long"
    );
    v
}

/// Every item of a paged list (pages of 1000), checking `total`.
async fn all_items(target: &str) -> Vec<Value> {
    let sep = if target.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    for n in 1.. {
        let v = page(&format!("{target}{sep}page_size=1000&page={n}"), n, 1000).await;
        let got = items(&v);
        out.extend(got.iter().cloned());
        let total = int(&v["total"]) as usize;
        if got.is_empty() || out.len() >= total {
            assert_eq!(out.len(), total, "{target}: items across pages vs total");
            break;
        }
    }
    out
}

fn expect_of(job: &str) -> &'static Expect {
    let fx = fixture();
    match job {
        AUTO => &fx.auto,
        STORM => &fx.storm,
        LIVE => &fx.live,
        _ => unreachable!("{job}"),
    }
}

// ---------------------------------------------------------------- routes

#[tokio::test]
async fn health_is_ok() {
    let r = get("/health").await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    assert_eq!(r.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn metrics_are_openmetrics_when_asked_else_classic_text() {
    // Make sure one labelled sample exists whatever ran before.
    get_json(&format!("/api/jobs/{AUTO}/checkpoints")).await;
    let accept = "Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n";
    let r = common::request_with("GET", "/metrics", accept).await;
    assert_eq!(r.status, 200);
    let ct = r.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = r.text();
    assert!(
        text.contains("# TYPE sundial_http_requests counter"),
        "{text}"
    );
    assert!(
        text.contains(r#"sundial_http_requests_total{route="checkpoints",status="200"} "#),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");

    let r = get("/metrics").await;
    let ct = r.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = r.text();
    assert!(
        text.contains("# TYPE sundial_http_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains("# HELP sundial_http_requests_total "),
        "{text}"
    );
    assert!(
        text.contains(r#"sundial_http_requests_total{route="checkpoints",status="200"} "#),
        "{text}"
    );
    assert!(
        !text.contains("# EOF") && !text.contains("# UNIT"),
        "{text}"
    );
}

#[tokio::test]
async fn overview_counts_jobs_by_status() {
    let v = get_json("/api/overview").await;
    assert_eq!(
        v,
        json!({"total": 3, "running": 1, "completed": 1, "failed": 1})
    );
}

#[tokio::test]
async fn jobs_lists_summaries_newest_first() {
    let v = page("/api/jobs", 1, 100).await;
    assert_eq!(v["total"], 3);
    let ids: Vec<&str> = items(&v)
        .iter()
        .map(|j| j["job_id"].as_str().unwrap())
        .collect();
    // Newest attempt first: AUTO's second attempt was replayed last.
    assert_eq!(ids, [AUTO, LIVE, STORM]);
    for j in items(&v) {
        has_fields(
            j,
            &["job_id", "attempt_id", "status", "log_offset"],
            "summary",
        );
        let job = j["job_id"].as_str().unwrap();
        assert_eq!(j["log_offset"], expect_of(job).records, "{job}");
    }
    assert_eq!(items(&v)[0]["attempt_id"], NEW_ATTEMPT);

    let small = page("/api/jobs?page_size=10&page=2", 2, 10).await;
    assert_eq!(small["total"], 3);
    assert!(items(&small).is_empty());
}

#[tokio::test]
async fn jobs_filter_by_status() {
    for (status, want) in [
        ("failed", STORM),
        ("completed", AUTO),
        ("running", LIVE),
        ("FAILED", STORM),
    ] {
        let v = get_json(&format!("/api/jobs?status={status}")).await;
        assert_eq!(v["total"], 1, "status={status}: {v}");
        let only = &items(&v)[0];
        assert_eq!(only["job_id"], want, "status={status}");
        assert_eq!(only["status"], status.to_ascii_uppercase());
    }
}

#[tokio::test]
async fn job_view_of_each_scenario() {
    for (job, status) in [(AUTO, "COMPLETED"), (STORM, "FAILED"), (LIVE, "RUNNING")] {
        let e = expect_of(job);
        let v = get_json(&format!("/api/jobs/{job}")).await;
        has_fields(&v, JOB_FIELDS, job);
        assert_eq!(v["job_id"], job);
        assert_eq!(v["status"], status, "{job}");
        assert_eq!(v["log_offset"], e.records, "{job}");
        assert_eq!(v["stage_count"], e.stages.len(), "{job}");
        assert_eq!(v["dag_edges"], e.dag_edges, "{job}");
        assert_eq!(v["exception_count"], e.exceptions, "{job}");
        assert!(num(&v["start_time"]) > 0.0, "{job}");
        assert!(int(&v["total_input_records"]) > 0, "{job}");
        assert!(int(&v["total_output_records"]) > 0, "{job}");
        if status == "RUNNING" {
            assert_eq!(e.final_status, None);
            assert_eq!(v["end_time"], Value::Null, "{job}");
            assert_eq!(v["dead_letter_count"], 0, "{job}");
        } else {
            assert_eq!(e.final_status.as_deref(), Some(status));
            assert!(num(&v["end_time"]) > num(&v["start_time"]), "{job}");
            assert!(num(&v["duration_ms"]) > 0.0, "{job}");
            assert_eq!(v["dead_letter_count"], POISON_RECORDS, "{job}");
            // Anomalies on: producer retries and one lost message.
            assert!(int(&v["duplicate_count"]) > 0, "{job}");
            assert!(int(&v["missing_count"]) > 0, "{job}");
        }
    }
    let v = get_json(&format!("/api/jobs/{AUTO}")).await;
    assert_eq!(v["attempt_id"], NEW_ATTEMPT);
}

#[tokio::test]
async fn attempts_newest_first_and_attempt_selects_older() {
    let fx = fixture();
    let v = get_json(&format!("/api/jobs/{AUTO}/attempts")).await;
    assert_eq!(v["job_id"], AUTO);
    let list = items(&v);
    let ids: Vec<&str> = list
        .iter()
        .map(|a| a["attempt_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [NEW_ATTEMPT, OLD_ATTEMPT]);
    assert!(int(&list[0]["created_ms"]) > int(&list[1]["created_ms"]));
    assert_eq!(list[0]["log_offset"], fx.auto.records);
    assert_eq!(list[1]["log_offset"], fx.auto_old.records);
    assert_eq!(list[0]["status"], "COMPLETED");
    assert_eq!(list[1]["status"], "COMPLETED");

    let old = get_json(&format!("/api/jobs/{AUTO}?attempt={OLD_ATTEMPT}")).await;
    assert_eq!(old["attempt_id"], OLD_ATTEMPT);
    assert_eq!(old["log_offset"], fx.auto_old.records);
    assert_ne!(fx.auto_old.records, fx.auto.records);
    // Every job route honours it, e.g. the log.
    let last = fx.auto_old.records;
    let ev = get_json(&format!(
        "/api/jobs/{AUTO}/events?attempt={OLD_ATTEMPT}&from_offset={last}"
    ))
    .await;
    assert_eq!(items(&ev).len(), 1);
    assert_eq!(items(&ev)[0]["offset"], last);
    // The explicit latest attempt equals the default.
    let new = get_json(&format!("/api/jobs/{AUTO}?attempt={NEW_ATTEMPT}")).await;
    assert_eq!(new, get_json(&format!("/api/jobs/{AUTO}")).await);

    let single = get_json(&format!("/api/jobs/{STORM}/attempts")).await;
    assert_eq!(items(&single).len(), 1);
    assert_eq!(items(&single)[0]["status"], "FAILED");
}

#[tokio::test]
async fn configuration_is_job_started_config_and_dag() {
    let e = &fixture().auto;
    let v = get_json(&format!("/api/jobs/{AUTO}/configuration")).await;
    assert_eq!(v["config"], e.config);
    assert_eq!(v["dag_edges"], e.dag_edges);
    assert!(v["dag_edges"].as_object().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn stages_list_every_dag_stage() {
    for (job, status) in [(AUTO, "COMPLETED"), (STORM, "FAILED")] {
        let e = expect_of(job);
        let v = page(&format!("/api/jobs/{job}/stages"), 1, 100).await;
        assert_eq!(v["total"], e.stages.len(), "{job}");
        let got: BTreeSet<&str> = items(&v)
            .iter()
            .map(|s| s["stage_id"].as_str().unwrap())
            .collect();
        let want: BTreeSet<&str> = e.stages.iter().map(String::as_str).collect();
        assert_eq!(got, want, "{job}");
        // Every stage of the DAG is a known stage.
        for (up, downs) in e.dag_edges.as_object().unwrap() {
            assert!(want.contains(up.as_str()), "{job}: {up}");
            for d in strs(downs) {
                assert!(want.contains(d.as_str()), "{job}: {d}");
            }
        }
        let job_view = get_json(&format!("/api/jobs/{job}")).await;
        let (mut input, mut output) = (0, 0);
        for s in items(&v) {
            has_fields(s, STAGE_FIELDS, job);
            // Stages never completed by a message take the job's final status.
            assert_eq!(s["status"], status, "{job} {}", s["stage_id"]);
            assert_eq!(s["worker_count"], 0, "{job}: all workers stopped");
            input += int(&s["input_records"]);
            output += int(&s["output_records"]);
        }
        assert_eq!(job_view["total_input_records"], input, "{job}");
        assert_eq!(job_view["total_output_records"], output, "{job}");
    }
}

#[tokio::test]
async fn stage_by_id() {
    let e = &fixture().auto;
    for stage in &e.stages {
        let v = get_json(&format!("/api/jobs/{AUTO}/stages/{stage}")).await;
        has_fields(&v, STAGE_FIELDS, stage);
        assert_eq!(v["stage_id"], *stage);
        assert!(v["operator_type"].as_str().is_some_and(|o| !o.is_empty()));
        let started = e.workers.values().filter(|s| *s == stage).count();
        assert_eq!(v["total_workers"], started, "{stage}");
        assert!(int(&v["min_parallelism"]) <= int(&v["max_parallelism"]));
        assert!(v["partition_metrics"].is_object(), "{stage}");
        assert!(v["backpressure_active"].is_boolean(), "{stage}");
    }
    // The live job has running workers somewhere.
    let live = page(&format!("/api/jobs/{LIVE}/stages"), 1, 100).await;
    let running: u64 = items(&live).iter().map(|s| int(&s["worker_count"])).sum();
    assert!(running > 0, "{live}");
}

#[tokio::test]
async fn stage_metrics_windows_are_ordered_and_closed() {
    let job = get_json(&format!("/api/jobs/{AUTO}")).await;
    let newest = num(&job["newest_event_time"]);
    for stage in &fixture().auto.stages {
        let target = format!("/api/jobs/{AUTO}/stages/{stage}/metrics");
        let v = get_json(&target).await;
        assert_eq!(v["stage_id"], *stage);
        let width = num(&v["window_s"]);
        assert_eq!(width, 1.0);
        let points = v["points"].as_array().unwrap();
        assert!(points.len() > 10, "{stage}: {} windows", points.len());
        let mut prev = f64::NEG_INFINITY;
        for p in points {
            let (start, end) = (num(&p["start_time"]), num(&p["end_time"]));
            assert!(start > prev, "{stage}: windows out of order at {start}");
            assert_eq!(end - start, width, "{stage}: window width");
            assert!(end + 3.0 <= newest, "{stage}: window {start} not closed");
            has_fields(
                p,
                &[
                    "input_throughput",
                    "output_throughput",
                    "queue_lag",
                    "backpressure_active",
                    "skew_ratio",
                ],
                stage,
            );
            prev = start;
        }
        // A time range keeps exactly the overlapping windows.
        let (lo, hi) = (num(&points[2]["start_time"]), num(&points[5]["end_time"]));
        let cut = get_json(&format!("{target}?start_time={lo}&end_time={hi}")).await;
        let want: Vec<&Value> = points
            .iter()
            .filter(|p| num(&p["end_time"]) > lo && num(&p["start_time"]) < hi)
            .collect();
        let got: Vec<&Value> = cut["points"].as_array().unwrap().iter().collect();
        assert_eq!(got, want, "{stage}: range {lo}..{hi}");
        assert_eq!(got.len(), 4, "{stage}");
    }
}

/// The seed's 30 s metrics snapshots, rolled up from the stored 1 s windows
/// of a finished job: each bucket holds the records of its windows, the
/// latest queue lag and the most workers reporting.
#[tokio::test]
async fn stage_metrics_roll_up_into_30s_snapshots() {
    let mut counted = 0;
    for stage in &fixture().auto.stages {
        let target = format!("/api/jobs/{AUTO}/stages/{stage}/metrics");
        let windows = get_json(&target).await["points"]
            .as_array()
            .unwrap()
            .clone();
        let v = get_json(&format!("{target}?step=30")).await;
        assert_eq!(num(&v["window_s"]), 30.0);
        let snaps = v["points"].as_array().unwrap();
        let bucket = |p: &Value| (num(&p["start_time"]) / 30.0).floor() * 30.0;
        let starts: BTreeSet<i64> = windows.iter().map(|w| bucket(w) as i64).collect();
        let got: Vec<i64> = snaps.iter().map(|p| num(&p["start_time"]) as i64).collect();
        assert_eq!(got, starts.iter().copied().collect::<Vec<_>>(), "{stage}");
        for snap in snaps {
            let start = num(&snap["start_time"]);
            assert_eq!(num(&snap["end_time"]) - start, 30.0);
            let inside: Vec<&Value> = windows.iter().filter(|w| bucket(w) == start).collect();
            let by_workers = inside.iter().any(|w| int(&w["workers_reporting"]) > 0);
            if by_workers {
                for field in ["input_throughput", "output_throughput"] {
                    let records: f64 = inside
                        .iter()
                        .filter(|w| int(&w["workers_reporting"]) > 0)
                        .map(|w| num(&w[field]))
                        .sum();
                    let got = num(&snap[field]) * 30.0;
                    let close = (got - records).abs() < 1e-6 * records.max(1.0);
                    assert!(close, "{stage}@{start} {field}: {got} != {records}");
                }
                counted += 1;
            }
            let lag = inside.iter().rev().find(|w| !w["queue_lag"].is_null());
            assert_eq!(
                snap["queue_lag"],
                lag.map_or(Value::Null, |w| w["queue_lag"].clone()),
                "{stage}@{start}"
            );
            let most = inside.iter().map(|w| int(&w["workers_reporting"])).max();
            assert_eq!(
                int(&snap["workers_reporting"]),
                most.unwrap(),
                "{stage}@{start}"
            );
        }
        // One-second steps are the stored windows themselves.
        assert_eq!(
            get_json(&format!("{target}?step=1")).await["points"],
            Value::Array(windows)
        );
    }
    assert!(counted > 1, "{counted} buckets with workers' counts");
    let stage = &fixture().auto.stages[0];
    for bad in ["0", "-30", "1.5", "x", "86401"] {
        assert_error(
            &format!("/api/jobs/{AUTO}/stages/{stage}/metrics?step={bad}"),
            400,
        )
        .await;
    }
}

#[tokio::test]
async fn stage_workers_are_only_that_stages() {
    let e = &fixture().auto;
    for stage in &e.stages {
        let got = all_items(&format!("/api/jobs/{AUTO}/stages/{stage}/workers")).await;
        let want: BTreeSet<&str> = e
            .workers
            .iter()
            .filter(|(_, s)| *s == stage)
            .map(|(w, _)| w.as_str())
            .collect();
        assert!(!want.is_empty(), "{stage}");
        let ids: BTreeSet<&str> = got
            .iter()
            .map(|w| w["worker_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, want, "{stage}");
        for w in &got {
            assert_eq!(w["stage_id"], *stage);
        }
    }
}

#[tokio::test]
async fn workers_list_filter_and_fetch_by_id() {
    let e = &fixture().auto;
    let all = all_items(&format!("/api/jobs/{AUTO}/workers")).await;
    let ids: Vec<&str> = all
        .iter()
        .map(|w| w["worker_id"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = e.workers.keys().map(String::as_str).collect();
    assert_eq!(ids, want, "every started worker, in id order");

    // Paging cuts the same list.
    let p2 = page(
        &format!("/api/jobs/{AUTO}/workers?page=2&page_size=10"),
        2,
        10,
    )
    .await;
    assert_eq!(p2["total"], all.len());
    assert_eq!(items(&p2).as_slice(), &all[10..20]);
    // Small pages are what people and scripts ask for: 1 to 9 too.
    for size in [1, 3] {
        let small = page(
            &format!("/api/jobs/{AUTO}/workers?page=3&page_size={size}"),
            3,
            size,
        )
        .await;
        assert_eq!(small["total"], all.len());
        assert_eq!(
            items(&small).as_slice(),
            &all[2 * size as usize..3 * size as usize]
        );
    }

    // A worker found in the list can be fetched, with its history.
    for w in [&all[0], &all[all.len() / 2], &all[all.len() - 1]] {
        let id = w["worker_id"].as_str().unwrap();
        let one = get_json(&format!("/api/jobs/{AUTO}/workers/{id}")).await;
        has_fields(&one, WORKER_FIELDS, id);
        assert_eq!(one["worker_id"], id);
        assert_eq!(one["stage_id"], e.workers[id], "{id}");
        assert_eq!(one["stage_id"], w["stage_id"]);
        assert_eq!(one["status"], "STOPPED", "{id}: job completed");
        assert_eq!(one["health"], "STOPPED", "{id}");
        let events = one["events"].as_array().unwrap();
        assert_eq!(events[0]["event"], "worker_started", "{id}");
        assert_eq!(events.last().unwrap()["event"], "worker_stopped", "{id}");
    }

    // Filters.
    let stage = &e.stages[0];
    let by_stage = all_items(&format!("/api/jobs/{AUTO}/workers?stage_id={stage}")).await;
    let n = e.workers.values().filter(|s| *s == stage).count();
    assert_eq!(by_stage.len(), n);
    assert!(by_stage.iter().all(|w| w["stage_id"] == *stage));
    let stopped = page(&format!("/api/jobs/{AUTO}/workers?status=stopped"), 1, 100).await;
    assert_eq!(stopped["total"], all.len());
    let running = page(&format!("/api/jobs/{AUTO}/workers?status=RUNNING"), 1, 100).await;
    assert_eq!(running["total"], 0);

    // The live job has running workers, each with a health verdict.
    let live = all_items(&format!("/api/jobs/{LIVE}/workers?status=running")).await;
    assert!(!live.is_empty());
    for w in &live {
        assert_eq!(w["status"], "RUNNING");
        let h = w["health"].as_str().unwrap();
        assert!(["HEALTHY", "STALE", "LOST"].contains(&h), "{h}");
    }
}

#[tokio::test]
async fn exceptions_newest_first_and_filtered() {
    let e = &fixture().storm;
    let all = all_items(&format!("/api/jobs/{STORM}/exceptions")).await;
    assert_eq!(all.len() as u64, e.exceptions);
    assert!(all.len() > 100, "a storm: {}", all.len());
    for pair in all.windows(2) {
        let a = (num(&pair[0]["timestamp"]), int(&pair[0]["offset"]));
        let b = (num(&pair[1]["timestamp"]), int(&pair[1]["offset"]));
        assert!(a.0 > b.0 || (a.0 == b.0 && a.1 > b.1), "{a:?} before {b:?}");
    }
    for x in &all {
        has_fields(
            x,
            &["exception_type", "message", "stage_id", "timestamp"],
            "exception",
        );
    }
    // The job failed on its error budget: the newest exception says so.
    assert_eq!(all[0]["exception_type"], "RuntimeError");

    let p2 = page(
        &format!("/api/jobs/{STORM}/exceptions?page=2&page_size=10"),
        2,
        10,
    )
    .await;
    assert_eq!(items(&p2).as_slice(), &all[10..20]);

    let summary = get_json(&format!("/api/jobs/{STORM}/exceptions/summary")).await;
    let by_type = summary["by_type"].as_object().unwrap();
    for (kind, count) in by_type {
        let f = all_items(&format!(
            "/api/jobs/{STORM}/exceptions?exception_type={kind}"
        ))
        .await;
        assert_eq!(f.len() as u64, int(count), "{kind}");
        assert!(f.iter().all(|x| x["exception_type"] == *kind), "{kind}");
    }
    let stage = all[0]["stage_id"].as_str().unwrap();
    let f = all_items(&format!("/api/jobs/{STORM}/exceptions?stage_id={stage}")).await;
    let want = all.iter().filter(|x| x["stage_id"] == stage).count();
    assert_eq!(f.len(), want);
}

#[tokio::test]
async fn exception_summary_adds_up() {
    let e = &fixture().storm;
    let v = get_json(&format!("/api/jobs/{STORM}/exceptions/summary")).await;
    has_fields(&v, &["total", "by_type", "groups"], "summary");
    assert_eq!(v["total"], e.exceptions);
    let by_type: u64 = v["by_type"].as_object().unwrap().values().map(int).sum();
    assert_eq!(by_type, e.exceptions);
    let groups = v["groups"].as_array().unwrap();
    assert!(!groups.is_empty());
    let counts: Vec<u64> = groups.iter().map(|g| int(&g["count"])).collect();
    assert_eq!(counts.iter().sum::<u64>(), e.exceptions);
    assert!(
        counts.windows(2).all(|w| w[0] >= w[1]),
        "most frequent first"
    );
}

#[tokio::test]
async fn an_exception_summary_without_members_is_the_summary_less_them() {
    let full = get_json(&format!("/api/jobs/{STORM}/exceptions/summary")).await;
    let lean = get_json(&format!(
        "/api/jobs/{STORM}/exceptions/summary?members=false"
    ))
    .await;
    let explicit = get_json(&format!(
        "/api/jobs/{STORM}/exceptions/summary?members=true"
    ))
    .await;
    assert_eq!(explicit, full);
    let mut want = full.clone();
    let groups = want["groups"].as_array_mut().unwrap();
    assert!(groups
        .iter()
        .any(|g| !g["splits"].as_array().unwrap().is_empty()));
    for g in groups {
        let g = g.as_object_mut().unwrap();
        for member in ["workers", "splits", "worker_count", "split_count"] {
            assert!(g.remove(member).is_some(), "{member}");
        }
    }
    assert_eq!(lean, want);
}

#[tokio::test]
async fn lineage_children_name_their_parents() {
    let all = all_items(&format!("/api/jobs/{AUTO}/lineage")).await;
    assert!(!all.is_empty());
    let stages: BTreeSet<&str> = fixture().auto.stages.iter().map(String::as_str).collect();
    for s in &all {
        assert_eq!(s["processed"], true);
        assert!(stages.contains(s["stage_id"].as_str().unwrap()), "{s}");
    }
    let with_children: Vec<&Value> = all
        .iter()
        .filter(|s| s["children"].as_array().is_some_and(|c| !c.is_empty()))
        .collect();
    assert!(!with_children.is_empty(), "no split has children");
    for parent in with_children.iter().take(5) {
        let id = parent["split_id"].as_str().unwrap();
        let one = get_json(&format!("/api/jobs/{AUTO}/lineage/{id}")).await;
        assert_eq!(one["split_id"], id);
        assert_eq!(one["children"], parent["children"]);
        for child in strs(&one["children"]) {
            let c = get_json(&format!("/api/jobs/{AUTO}/lineage/{child}")).await;
            assert_eq!(c["split_id"], child);
            assert!(strs(&c["parents"]).contains(&id.to_owned()), "{child}: {c}");
        }
    }
    // A parent named by a processed split is fetchable and lists it.
    let named = all
        .iter()
        .find(|s| s["parents"].as_array().is_some_and(|p| !p.is_empty()))
        .unwrap();
    let pid = named["parents"][0].as_str().unwrap();
    let p = get_json(&format!("/api/jobs/{AUTO}/lineage/{pid}")).await;
    assert!(strs(&p["children"]).contains(&named["split_id"].as_str().unwrap().to_owned()));

    let stage = all[0]["stage_id"].as_str().unwrap();
    let f = all_items(&format!("/api/jobs/{AUTO}/lineage?stage_id={stage}")).await;
    assert_eq!(
        f.len(),
        all.iter().filter(|s| s["stage_id"] == stage).count()
    );
}

#[tokio::test]
async fn checkpoints_add_up() {
    for job in [AUTO, STORM] {
        let e = expect_of(job);
        let v = get_json(&format!("/api/jobs/{job}/checkpoints")).await;
        has_fields(
            &v,
            &[
                "count",
                "completed",
                "failed",
                "in_progress",
                "latest_completed_id",
                "history",
            ],
            job,
        );
        let count = int(&v["count"]);
        assert_eq!(count, e.checkpoints.len() as u64, "{job}");
        assert_eq!(
            int(&v["completed"]) + int(&v["failed"]) + int(&v["in_progress"]),
            count,
            "{job}"
        );
        let history = v["history"].as_array().unwrap();
        let ids: BTreeSet<u64> = history.iter().map(|c| int(&c["checkpoint_id"])).collect();
        assert_eq!(ids, e.checkpoints, "{job}");
        let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
        for c in history {
            *by_status.entry(c["status"].as_str().unwrap()).or_default() += 1;
        }
        assert_eq!(
            by_status.get("COMPLETED").copied().unwrap_or(0),
            int(&v["completed"])
        );
        assert_eq!(
            by_status.get("FAILED").copied().unwrap_or(0),
            int(&v["failed"])
        );
        let latest = history
            .iter()
            .filter(|c| c["status"] == "COMPLETED")
            .map(|c| int(&c["checkpoint_id"]))
            .max();
        assert_eq!(v["latest_completed_id"], json!(latest), "{job}");
        assert!(int(&v["completed"]) > 0, "{job}");
    }
}

#[tokio::test]
async fn timeline_in_event_time_order() {
    let e = &fixture().auto;
    let all = all_items(&format!("/api/jobs/{AUTO}/timeline")).await;
    for pair in all.windows(2) {
        let a = (num(&pair[0]["timestamp"]), int(&pair[0]["offset"]));
        let b = (num(&pair[1]["timestamp"]), int(&pair[1]["offset"]));
        assert!(a.0 < b.0 || (a.0 == b.0 && a.1 < b.1), "{a:?} before {b:?}");
    }
    let count = |kind: &str| all.iter().filter(|t| t["event"] == kind).count();
    assert_eq!(count("job_started"), 1);
    assert_eq!(count("job_completed"), 1);
    assert_eq!(count("worker_started"), e.workers.len());
    assert_eq!(count("exception") as u64, e.exceptions);
    assert_eq!(all.last().unwrap()["event"], "job_completed");
    // Metrics are not lifecycle.
    assert_eq!(count("worker_metrics"), 0);
    assert_eq!(count("stage_metrics"), 0);
}

#[tokio::test]
async fn dead_letters_have_reasons_and_match_the_log() {
    let records = fixture().storm.records;
    let v = page(&format!("/api/jobs/{STORM}/dead-letters"), 1, 100).await;
    assert_eq!(v["total"], POISON_RECORDS);
    let list = items(&v);
    assert_eq!(list.len(), POISON_RECORDS);
    let mut prev = 0;
    for d in list {
        has_fields(d, &["offset", "reason", "preview"], "dead letter");
        let offset = int(&d["offset"]);
        assert!(offset > prev && offset <= records, "{offset}");
        prev = offset;
        assert!(d["reason"].as_str().is_some_and(|r| !r.is_empty()), "{d}");
        assert!(d["preview"].as_str().is_some_and(|r| !r.is_empty()), "{d}");
        // The log holds the same record, marked invalid with the same reason.
        let ev = get_json(&format!(
            "/api/jobs/{STORM}/events?from_offset={offset}&limit=1"
        ))
        .await;
        let rec = &items(&ev)[0];
        assert_eq!(rec["offset"], offset);
        assert_eq!(rec["valid"], false, "{rec}");
        assert_eq!(rec["reason"], d["reason"]);
    }
    let live = get_json(&format!("/api/jobs/{LIVE}/dead-letters")).await;
    assert_eq!(live["total"], 0);
}

#[tokio::test]
async fn events_page_through_the_log() {
    let fx = fixture();
    let v = get_json(&format!("/api/jobs/{AUTO}/events?from_offset=1&limit=5")).await;
    let offsets: Vec<u64> = items(&v).iter().map(|r| int(&r["offset"])).collect();
    assert_eq!(offsets, [1, 2, 3, 4, 5]);
    assert_eq!(v["next_offset"], 6);
    for r in items(&v) {
        has_fields(r, &["offset", "valid", "message"], "event");
        assert_eq!(r["valid"], true, "{r}");
        assert_eq!(r["message"]["job_id"], AUTO);
    }
    let next = get_json(&format!("/api/jobs/{AUTO}/events?from_offset=6&limit=5")).await;
    assert_eq!(items(&next)[0]["offset"], 6);

    // Default limit 100 from the start; the end of the log.
    let first = get_json(&format!("/api/jobs/{AUTO}/events")).await;
    assert_eq!(items(&first).len(), 100);
    assert_eq!(items(&first)[0]["offset"], 1);
    let n = fx.auto.records;
    let tail = get_json(&format!(
        "/api/jobs/{AUTO}/events?from_offset={}&limit=1000",
        n - 1
    ))
    .await;
    let offsets: Vec<u64> = items(&tail).iter().map(|r| int(&r["offset"])).collect();
    assert_eq!(offsets, [n - 1, n]);
    let past = get_json(&format!("/api/jobs/{AUTO}/events?from_offset={}", n + 1)).await;
    assert!(items(&past).is_empty());
    assert_eq!(past["next_offset"], Value::Null);
}

#[tokio::test]
async fn stream_sends_a_first_view_event() {
    let r = get_stream_until(&format!("/api/jobs/{STORM}/stream"), b"\n\n").await;
    assert_eq!(r.status, 200);
    let ct = r.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let text = r.text();
    let at = text
        .find("event: view\n")
        .unwrap_or_else(|| panic!("{text:?}"));
    let data_line = text[at..]
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no data line in {text:?}"));
    let view: Value = serde_json::from_str(data_line).expect("data is JSON");
    assert_eq!(view["job_id"], STORM);
    assert_eq!(view["status"], "FAILED");
    assert_eq!(view["log_offset"], fixture().storm.records);
}

// ---------------------------------------------------------------- errors

/// Asserts `target` answers `status` with a JSON `{"error", "status"}` body.
async fn assert_error(target: &str, status: u16) {
    let r = get(target).await;
    assert_eq!(r.status, status, "GET {target}: {}", r.text());
    let v = r.json();
    assert_eq!(v["status"], status, "GET {target}: {v}");
    assert!(
        v["error"].as_str().is_some_and(|e| !e.is_empty()),
        "GET {target}: {v}"
    );
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "GET {target}"
    );
}

#[tokio::test]
async fn unknown_things_are_404() {
    let stage = &fixture().auto.stages[0];
    for target in [
        "/api/jobs/no_such_job".to_owned(),
        "/api/jobs/no_such_job/stages".to_owned(),
        "/api/jobs/no_such_job/attempts".to_owned(),
        "/api/jobs/no_such_job/events".to_owned(),
        "/api/jobs/no_such_job/stream".to_owned(),
        format!("/api/jobs/{AUTO}?attempt=no_such_attempt"),
        format!("/api/jobs/{AUTO}/stages/no_such_stage"),
        format!("/api/jobs/{AUTO}/stages/no_such_stage/metrics"),
        format!("/api/jobs/{AUTO}/stages/no_such_stage/workers"),
        format!("/api/jobs/{AUTO}/workers/no_such_worker"),
        format!("/api/jobs/{AUTO}/lineage/no_such_split"),
        // A stage of another job is not this job's.
        format!("/api/jobs/{STORM}/stages/detect"),
        // Unknown routes.
        "/no/such/route".to_owned(),
        "/api".to_owned(),
        format!("/api/jobs/{AUTO}/nope"),
        format!("/api/jobs/{AUTO}/stages/{stage}/nope"),
    ] {
        assert_error(&target, 404).await;
    }
}

#[tokio::test]
async fn bad_parameters_are_400() {
    let stage = &fixture().auto.stages[0];
    let long = "a".repeat(300);
    let w = format!("/api/jobs/{AUTO}/workers");
    let targets = [
        // Paging.
        format!("{w}?page=-1"),
        format!("{w}?page=0"),
        format!("{w}?page=abc"),
        format!("{w}?page=1.5"),
        format!("{w}?page_size=1000000000000"),
        format!("{w}?page_size=0"),
        format!("{w}?page_size=1001"),
        "/api/jobs?page=0".to_owned(),
        format!("/api/jobs/{AUTO}/exceptions?page_size=-3"),
        format!("/api/jobs/{AUTO}/lineage?page=abc"),
        format!("/api/jobs/{AUTO}/timeline?page=-1"),
        format!("/api/jobs/{AUTO}/dead-letters?page_size=0"),
        format!("/api/jobs/{AUTO}/stages?page=%FF"),
        format!("/api/jobs/{AUTO}/stages/{stage}/workers?page=0"),
        // Events.
        format!("/api/jobs/{AUTO}/events?limit=0"),
        format!("/api/jobs/{AUTO}/events?limit=1001"),
        format!("/api/jobs/{AUTO}/events?limit=-1"),
        format!("/api/jobs/{AUTO}/events?from_offset=abc"),
        format!("/api/jobs/{AUTO}/events?from_offset=-1"),
        format!("/api/jobs/{AUTO}/events?from_offset=99999999999999999999999"),
        // Times.
        format!("/api/jobs/{AUTO}/stages/{stage}/metrics?start_time=abc"),
        format!("/api/jobs/{AUTO}/stages/{stage}/metrics?end_time=1e"),
        // Job status filter.
        "/api/jobs?status=bogus".to_owned(),
        format!("/api/jobs/{AUTO}/exceptions/summary?members=yes"),
        // Ids that cannot be path segments.
        "/api/jobs/..".to_owned(),
        "/api/jobs/../stages".to_owned(),
        "/api/jobs/%2e%2e".to_owned(),
        "/api/jobs/%2E%2E/checkpoints".to_owned(),
        "/api/jobs/a%00b".to_owned(),
        "/api/jobs/%00".to_owned(),
        "/api/jobs/a%2Fb".to_owned(),
        "/api/jobs/..%2F..%2Fetc".to_owned(),
        "/api/jobs/a%20b".to_owned(),
        format!("/api/jobs/{long}"),
        format!("/api/jobs/{long}/attempts"),
        "/api/jobs/%FF".to_owned(),
        "/api/jobs/%FF/stages".to_owned(),
        format!("/api/jobs/{AUTO}/stages/%FF"),
        format!("/api/jobs/{AUTO}/workers/%C3%28"),
        format!("/api/jobs/{AUTO}?attempt=.."),
        format!("/api/jobs/{AUTO}?attempt=%2e%2e"),
        format!("/api/jobs/{AUTO}?attempt=a%2Fb"),
        format!("/api/jobs/{AUTO}/timeline?attempt={long}"),
        // Malformed query strings.
        format!("/api/jobs/{AUTO}?%zz"),
        format!("/api/jobs/{AUTO}/workers?page=%zz"),
    ];
    for target in &targets {
        assert_error(target, 400).await;
    }
}

/// Every route with hostile parameters: never a 500, and a JSON error body
/// whenever it is an error.
#[tokio::test]
async fn no_500_anywhere() {
    let fx = fixture();
    let stage = fx.auto.stages[0].clone();
    let worker = fx.auto.workers.keys().next().unwrap().clone();
    let split = {
        let v = get_json(&format!("/api/jobs/{AUTO}/lineage?page_size=10")).await;
        items(&v)[0]["split_id"].as_str().unwrap().to_owned()
    };
    let long = "x".repeat(5000);
    let jobs = [
        AUTO.to_owned(),
        "..".to_owned(),
        "%2e%2e".to_owned(),
        "%FF".to_owned(),
        "a%00".to_owned(),
        "%2F".to_owned(),
        "nope".to_owned(),
        "a".repeat(300),
    ];
    let ids = [
        "%FF".to_owned(),
        "..".to_owned(),
        "%00".to_owned(),
        "%2F%2F".to_owned(),
        "%E2%80%AE".to_owned(),
        "x".repeat(1000),
    ];
    let queries = [
        "".to_owned(),
        "?page=-1".to_owned(),
        "?page=0".to_owned(),
        "?page=18446744073709551615&page_size=1000".to_owned(),
        "?page=18446744073709551616".to_owned(),
        "?page=9999999999999&page_size=10".to_owned(),
        "?page_size=".to_owned(),
        "?page=".to_owned(),
        "?limit=0".to_owned(),
        "?limit=1000&from_offset=18446744073709551615".to_owned(),
        "?from_offset=0&limit=1".to_owned(),
        "?start_time=NaN&end_time=-inf".to_owned(),
        "?start_time=1e308&end_time=-1e308".to_owned(),
        "?status=%00".to_owned(),
        "?status=running".to_owned(),
        "?stage_id=%FF&status=%FF&exception_type=%FF".to_owned(),
        format!("?stage_id={long}"),
        "?attempt=".to_owned(),
        "?attempt=%00".to_owned(),
        "?attempt=..".to_owned(),
        "?attempt=nope".to_owned(),
        "?%zz".to_owned(),
        "?a=b=c&&&=&%".to_owned(),
        "?page=1&page=2&page=abc".to_owned(),
        "?+=+&;=;".to_owned(),
    ];
    let routes = |job: &str, id: &str| {
        let s = if id.is_empty() { stage.as_str() } else { id };
        let w = if id.is_empty() { worker.as_str() } else { id };
        let sp = if id.is_empty() { split.as_str() } else { id };
        vec![
            "/health".to_owned(),
            "/metrics".to_owned(),
            "/api/overview".to_owned(),
            "/api/jobs".to_owned(),
            format!("/api/jobs/{job}"),
            format!("/api/jobs/{job}/attempts"),
            format!("/api/jobs/{job}/configuration"),
            format!("/api/jobs/{job}/stages"),
            format!("/api/jobs/{job}/stages/{s}"),
            format!("/api/jobs/{job}/stages/{s}/metrics"),
            format!("/api/jobs/{job}/stages/{s}/workers"),
            format!("/api/jobs/{job}/workers"),
            format!("/api/jobs/{job}/workers/{w}"),
            format!("/api/jobs/{job}/exceptions"),
            format!("/api/jobs/{job}/exceptions/summary"),
            format!("/api/jobs/{job}/lineage"),
            format!("/api/jobs/{job}/lineage/{sp}"),
            format!("/api/jobs/{job}/checkpoints"),
            format!("/api/jobs/{job}/timeline"),
            format!("/api/jobs/{job}/dead-letters"),
            format!("/api/jobs/{job}/events"),
            format!("/api/jobs/{job}/stream"),
        ]
    };
    let mut targets = Vec::new();
    for q in &queries {
        for r in routes(AUTO, "") {
            targets.push(format!("{r}{q}"));
        }
    }
    for job in &jobs {
        for r in routes(job, "") {
            targets.push(r);
        }
    }
    for id in &ids {
        for r in routes(AUTO, id) {
            targets.push(r);
        }
    }
    let mut checked = 0;
    for target in &targets {
        let r = if target.contains("/stream") {
            // A good stream never ends: read up to its first event only.
            get_stream_until(target, b"\n\n").await
        } else {
            get(target).await
        };
        assert!(r.status < 500, "GET {target}: {} {}", r.status, r.text());
        if r.status >= 400 {
            let v = r.json();
            assert_eq!(v["status"], r.status, "GET {target}: {v}");
            assert!(v["error"].is_string(), "GET {target}: {v}");
        }
        checked += 1;
    }
    // Other methods on a read-only API.
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        for target in ["/health".to_owned(), format!("/api/jobs/{AUTO}")] {
            let r = request(method, &target).await;
            assert!(r.status < 500, "{method} {target}: {}", r.status);
            assert!(r.status >= 400, "{method} {target}: {}", r.status);
            checked += 1;
        }
    }
    assert_eq!(checked, targets.len() + 8);
}
