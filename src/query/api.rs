//! The answers of the HTTP API (contract §5) as JSON values, computed from
//! one attempt's stored views. Shared by the live projector, the history
//! server and the golden-file tests, so all three agree byte for byte.
//! Parameters are validated here: a bad one is a 400, an unknown id a 404.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sundial_views::checkpoints::{CheckpointView, SUMMARY_KEY};
use sundial_views::child_rows::parent_key;
use sundial_views::dead_letters::DeadLetterView;
use sundial_views::exception_groups::{ExceptionGroupRow, ExceptionGroupView, Members};
use sundial_views::exceptions::ExceptionView;
use sundial_views::job::JobRow;
use sundial_views::metrics::{last_closed_window, window_key, window_prefix, MetricsView};
use sundial_views::rollup;
use sundial_views::stage::{stage_key, StageRow, StageView};
use sundial_views::timeline::TimelineView;
use sundial_views::worker::{history_prefix, merge_history, WorkerEvent, WorkerRow, WorkerView};

use crate::store::view_store::ViewStore;

pub use crate::query::params::{opt_num, ApiError, ApiResult, Page, Params};

fn filter<'p>(p: &'p Params, name: &str) -> Option<&'p str> {
    p.get(name).map(String::as_str).filter(|s| !s.is_empty())
}

/// The job view.
pub async fn job(store: &ViewStore) -> ApiResult {
    let job = store.job().await?;
    let stages = store.stages(job.log_offset).await?;
    Ok(job_json(store, &job, &stages))
}

fn job_json(store: &ViewStore, job: &JobRow, stages: &[StageRow]) -> Value {
    json!({
        "job_id": store.meta.job_id,
        "attempt_id": store.meta.attempt_id,
        "status": job.status_or_running(),
        "final_status": job.final_status,
        "start_time": job.start_time,
        "end_time": job.end_time,
        "duration_ms": job.duration_ms,
        "dag_edges": job.dag_edges,
        "stage_count": job.stage_count,
        "worker_count": saturating_sum(stages.iter().map(|s| s.worker_count())),
        "total_workers": saturating_sum(stages.iter().map(|s| s.workers_ever())),
        "total_input_records": saturating_sum(stages.iter().map(|s| s.input_total())),
        "total_output_records": saturating_sum(stages.iter().map(|s| s.output_total())),
        "exception_count": job.exception_count,
        "dead_letter_count": job.dead_letter_count,
        "duplicate_count": job.duplicate_count,
        "missing_count": job.missing_count,
        "split_count": job.split_count,
        "event_count": job.event_count,
        "log_offset": job.log_offset,
        "first_event_time": job.first_event_time,
        "newest_event_time": job.newest_event_time,
    })
}

/// The job's status, RUNNING before any message set one.
pub trait StatusOrRunning {
    /// RUNNING, COMPLETED or FAILED.
    fn status_or_running(&self) -> &str;
}

impl StatusOrRunning for JobRow {
    fn status_or_running(&self) -> &str {
        if self.status.is_empty() {
            sundial_views::job::RUNNING
        } else {
            &self.status
        }
    }
}

/// A short summary of the job for lists.
pub async fn job_summary(store: &ViewStore) -> ApiResult {
    Ok(list_entry(&job(store).await?, store.meta.created_ms))
}

/// The list entry cut from the job view's answer (`job`).
pub fn list_entry(job: &Value, created_ms: u64) -> Value {
    let keep = [
        "job_id",
        "attempt_id",
        "status",
        "start_time",
        "end_time",
        "duration_ms",
        "stage_count",
        "worker_count",
        "total_input_records",
        "total_output_records",
        "exception_count",
        "dead_letter_count",
        "log_offset",
    ];
    let mut out = serde_json::Map::new();
    for k in keep {
        out.insert(k.to_owned(), job[k].clone());
    }
    out.insert("created_ms".into(), json!(created_ms));
    Value::Object(out)
}

/// `config` and `dag_edges` from `job_started`.
pub async fn configuration(store: &ViewStore) -> ApiResult {
    let job = store.job().await?;
    Ok(json!({"config": job.config, "dag_edges": job.dag_edges, "stages": job.stages}))
}

async fn stage_json(store: &ViewStore, job: &JobRow, row: &StageRow) -> Result<Value, ApiError> {
    let point = match job.newest_event_time {
        Some(newest) => store
            .row::<MetricsView>(&window_key(&row.stage_id, last_closed_window(newest)))
            .await?
            .map(|w| w.point()),
        None => None,
    };
    let reported = row.reported.as_ref();
    let tp = |computed: Option<f64>, rep: Option<f64>| computed.or(rep).unwrap_or(0.0);
    let computed = point.as_ref().filter(|p| p.workers_reporting > 0);
    let upstream: Vec<&String> = job
        .dag_edges
        .iter()
        .filter(|(_, down)| down.contains(&row.stage_id))
        .map(|(up, _)| up)
        .collect();
    Ok(json!({
        "stage_id": row.stage_id,
        "operator_type": row.operator_type,
        "status": row.effective_status(job.status_or_running()),
        "min_parallelism": row.min_parallelism,
        "max_parallelism": row.max_parallelism,
        "start_time": row.start_time,
        "end_time": row.end_time,
        "worker_count": row.worker_count(),
        "total_workers": row.workers_ever(),
        "input_records": row.input_total(),
        "output_records": row.output_total(),
        "processed_count": row.processed_count,
        "input_throughput": tp(computed.map(|p| p.input_throughput), reported.and_then(|r| r.input_throughput)),
        "output_throughput": tp(computed.map(|p| p.output_throughput), reported.and_then(|r| r.output_throughput)),
        "queue_lag": row.queue_lag,
        "backpressure_active": row.backpressure_active.unwrap_or(false),
        "slow_down_factor": row.slow_down_factor,
        "exception_count": row.exception_count,
        "partition_metrics": reported.map(|r| r.partition_metrics.to_map().into_owned()).unwrap_or_default(),
        "skew_ratio": point.as_ref().and_then(|p| p.skew_ratio),
        "metrics_window_start": point.as_ref().map(|p| p.start_time),
        "upstream": upstream,
        "downstream": job.dag_edges.get(&row.stage_id).cloned().unwrap_or_default(),
    }))
}

/// Every stage, paged.
pub async fn stages(store: &ViewStore, p: &Params) -> ApiResult {
    let page = Page::from_params(p)?;
    let job = store.job().await?;
    let mut items = Vec::new();
    for row in store.stages(job.log_offset).await?.iter() {
        items.push(stage_json(store, &job, row).await?);
    }
    Ok(page.cut(items))
}

async fn stage_row(store: &ViewStore, stage: &str) -> Result<StageRow, ApiError> {
    store
        .row::<StageView>(&stage_key(stage))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("stage {stage:?} not found")))
}

/// One stage.
pub async fn stage(store: &ViewStore, stage: &str) -> ApiResult {
    let row = stage_row(store, stage).await?;
    let job = store.job().await?;
    stage_json(store, &job, &row).await
}

/// A stage's closed metric windows within `[start_time, end_time]`, rolled
/// up into `step` seconds when asked (the stored windows are 1 s).
pub async fn stage_metrics(store: &ViewStore, stage: &str, p: &Params) -> ApiResult {
    stage_row(store, stage).await?;
    let start: Option<f64> = opt_num(p, "start_time")?;
    let end: Option<f64> = opt_num(p, "end_time")?;
    let step: u32 = opt_num(p, "step")?.unwrap_or(1);
    if !(1..=rollup::MAX_STEP_S).contains(&step) {
        return Err(ApiError::bad(format!(
            "step={step}: use whole seconds from 1 to {}",
            rollup::MAX_STEP_S
        )));
    }
    let job = store.job().await?;
    let last = job.newest_event_time.map(last_closed_window);
    let mut points = Vec::new();
    store
        .visit::<MetricsView>(&window_prefix(stage), |_, row| {
            if last.is_none_or(|l| row.start > l) {
                return false;
            }
            let pt = row.point();
            if start.is_none_or(|s| pt.end_time > s) && end.is_none_or(|e| pt.start_time < e) {
                points.push(pt);
            }
            true
        })
        .await?;
    let points = rollup::rollup(&points, step);
    let window_s = sundial_views::metrics::WINDOW_S.max(f64::from(step));
    Ok(json!({"stage_id": stage, "window_s": window_s, "points": points}))
}

/// A worker's whole history: entries stored inside its row (older rows)
/// merged with the entries of their own rows.
async fn history(store: &ViewStore, w: &WorkerRow) -> Result<Vec<WorkerEvent>, ApiError> {
    let mut own = Vec::new();
    store
        .visit::<WorkerView>(&history_prefix(&w.worker_id), |_, e| {
            own.extend(e.event);
            true
        })
        .await?;
    Ok(merge_history(&w.events, own))
}

fn worker_json(w: &WorkerRow, newest: Option<f64>, events: Option<&[WorkerEvent]>) -> Value {
    let mut v = json!({
        "worker_id": w.worker_id,
        "stage_id": w.stage_id,
        "status": w.status,
        "health": w.health(newest),
        "last_seen": w.last_seen,
        "start_time": w.start_time,
        "end_time": w.end_time,
        "input_records": w.counts.input_records,
        "output_records": w.counts.output_records,
        "processed_count": w.counts.processed_count,
        "processing_time": w.counts.processing_time,
        "error_count": w.error_count,
        "stop_reason": w.stop_reason,
        "assigned_partitions": w.assigned_partitions,
        "cpu_percent": w.cpu_percent,
        "memory_bytes": w.memory_bytes,
        "gpu_percent": w.gpu_percent,
        "exception_count": w.exception_count,
    });
    if let Some(events) = events {
        v["events"] = serde_json::to_value(events).unwrap_or_default();
    }
    v
}

/// Workers, filtered by `stage_id` and `status`, paged.
pub async fn workers(store: &ViewStore, p: &Params, stage: Option<&str>) -> ApiResult {
    let page = Page::from_params(p)?;
    if let Some(s) = stage {
        stage_row(store, s).await?;
    }
    let stage = stage.or_else(|| filter(p, "stage_id"));
    let status = filter(p, "status").map(str::to_ascii_uppercase);
    if let Some(s) = status
        .as_deref()
        .filter(|s| !matches!(*s, "RUNNING" | "STOPPED"))
    {
        return Err(ApiError::bad(format!(
            "status={s:?}: use running or stopped"
        )));
    }
    let newest = store.job().await?.newest_event_time;
    let (mut total, skip) = (0u64, page.skip());
    let mut items = Vec::new();
    store
        .visit_parents::<WorkerView>(|_, w| {
            if stage.is_some_and(|s| s != w.stage_id)
                || status.as_ref().is_some_and(|s| *s != w.status)
            {
                return true;
            }
            if total >= skip && (items.len() as u64) < page.page_size {
                items.push(worker_json(&w, newest, None));
            }
            total += 1;
            true
        })
        .await?;
    Ok(page.wrap(items, total))
}

/// One worker with its lifecycle history.
pub async fn worker(store: &ViewStore, worker: &str) -> ApiResult {
    let w = store
        .row::<WorkerView>(&parent_key(worker))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("worker {worker:?} not found")))?;
    let newest = store.job().await?.newest_event_time;
    let events = history(store, &w).await?;
    Ok(worker_json(&w, newest, Some(&events)))
}

/// Exception records, newest first, filtered by stage and type, paged.
pub async fn exceptions(store: &ViewStore, p: &Params) -> ApiResult {
    let page = Page::from_params(p)?;
    let stage = filter(p, "stage_id");
    let kind = filter(p, "exception_type");
    let (mut total, skip) = (0u64, page.skip());
    let mut items = Vec::new();
    store
        .visit::<ExceptionView>("", |_, e| {
            if stage.is_some_and(|s| s != e.stage_id) || kind.is_some_and(|k| k != e.exception_type)
            {
                return true;
            }
            if total >= skip && (items.len() as u64) < page.page_size {
                items.push(crate::query::exception_text::listed(&e));
            }
            total += 1;
            true
        })
        .await?;
    Ok(page.wrap(items, total))
}

/// One exception record, by its log offset, with its full message and
/// stacktrace (list answers cut them, see `exception_text`).
pub async fn exception(store: &ViewStore, offset: &str) -> ApiResult {
    let offset: u64 = offset.parse().map_err(|_| {
        ApiError::bad(format!(
            "exception {offset:?}: use the record's offset (a whole number)"
        ))
    })?;
    let mut found = None;
    store
        .visit::<ExceptionView>("", |_, e| {
            if e.offset == offset {
                found = Some(e);
                return false;
            }
            true
        })
        .await?;
    let e = found
        .ok_or_else(|| ApiError::not_found(format!("exception at offset {offset} not found")))?;
    Ok(serde_json::to_value(&e).unwrap_or_default())
}

/// `members=true|false` (default true): whether the exception summary
/// lists each group's workers and splits.
fn members_param(p: &Params) -> Result<bool, ApiError> {
    match filter(p, "members") {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(s) => Err(ApiError::bad(format!("members={s:?}: use true or false"))),
    }
}

/// Exception totals by type and the groups, most frequent first, each with
/// the workers and splits it hit unless `members=false`: those are derived
/// from every exception record (most of a second in a storm of half a
/// million), the totals and groups from a few group rows.
pub async fn exception_summary(store: &ViewStore, p: &Params) -> ApiResult {
    let with_members = members_param(p)?;
    let mut groups = Vec::new();
    store
        .visit::<ExceptionGroupView>("", |key, g| {
            groups.push((key.to_owned(), g));
            true
        })
        .await?;
    // Each group's workers and splits, from the (never trimmed) records.
    let mut members = Members::default();
    if with_members {
        store
            .visit::<ExceptionView>("", |_, e| {
                members.add(&e);
                true
            })
            .await?;
    }
    let groups: Vec<ExceptionGroupRow> = groups
        .into_iter()
        .map(|(key, g)| {
            let (workers, splits) = members.take(&key);
            ExceptionGroupRow {
                workers,
                splits,
                ..g
            }
        })
        .collect();
    let mut by_type: BTreeMap<&str, u64> = BTreeMap::new();
    for g in &groups {
        *by_type.entry(&g.exception_type).or_default() += g.count;
    }
    let total: u64 = groups.iter().map(|g| g.count).sum();
    let mut sorted: Vec<&_> = groups.iter().collect();
    // Most frequent first; key order (stable sort) breaks ties.
    sorted.sort_by_key(|g| std::cmp::Reverse(g.count));
    let groups: Vec<Value> = sorted
        .into_iter()
        .map(|g| {
            let mut v = serde_json::to_value(g).unwrap_or_default();
            if with_members {
                v["worker_count"] = json!(g.workers.len());
                v["split_count"] = json!(g.splits.len());
            } else if let Some(o) = v.as_object_mut() {
                o.remove("workers");
                o.remove("splits");
            }
            v
        })
        .collect();
    Ok(json!({"total": total, "by_type": by_type, "group_count": groups.len(), "groups": groups}))
}

/// Processed splits, filtered by stage, paged (see `lineage_read`).
pub async fn lineage(store: &ViewStore, p: &Params) -> ApiResult {
    crate::query::lineage_read::lineage(store, p).await
}

/// One split with its parents and children (see `lineage_read`).
pub async fn split(store: &ViewStore, split: &str) -> ApiResult {
    crate::query::lineage_read::split(store, split).await
}

/// Checkpoint counts and history (by id).
pub async fn checkpoints(store: &ViewStore) -> ApiResult {
    let mut summary = None;
    let mut history = Vec::new();
    store
        .visit::<CheckpointView>("", |k, c| {
            if k == SUMMARY_KEY {
                summary = Some(c);
            } else {
                history.push(json!({
                    "checkpoint_id": c.checkpoint_id,
                    "status": c.status,
                    "source_id": c.source_id,
                    "trigger_time": c.trigger_time,
                    "completion_time": c.completion_time,
                    "duration_ms": c.duration_ms,
                    "state_size_bytes": c.state_size_bytes,
                    "source_offsets": c.source_offsets,
                    "failure_reason": c.failure_reason,
                }));
            }
            true
        })
        .await?;
    let s = summary.unwrap_or_default();
    Ok(json!({
        "count": s.count,
        "completed": s.completed,
        "failed": s.failed,
        "in_progress": s.in_progress,
        "latest_completed_id": s.latest_completed_id,
        "history": history,
    }))
}

/// Lifecycle events in event-time order, paged.
pub async fn timeline(store: &ViewStore, p: &Params) -> ApiResult {
    let page = Page::from_params(p)?;
    let (mut total, skip) = (0u64, page.skip());
    let mut items = Vec::new();
    store
        .visit::<TimelineView>("", |_, t| {
            if total >= skip && (items.len() as u64) < page.page_size {
                items.push(serde_json::to_value(&t).unwrap_or_default());
            }
            total += 1;
            true
        })
        .await?;
    Ok(page.wrap(items, total))
}

/// Dead letters in log order, paged.
pub async fn dead_letters(store: &ViewStore, p: &Params) -> ApiResult {
    let page = Page::from_params(p)?;
    let (mut total, skip) = (0u64, page.skip());
    let mut items = Vec::new();
    store
        .visit::<DeadLetterView>("", |_, d| {
            if total >= skip && (items.len() as u64) < page.page_size {
                items.push(serde_json::to_value(&d).unwrap_or_default());
            }
            total += 1;
            true
        })
        .await?;
    Ok(page.wrap(items, total))
}

/// Largest `limit` of the events route.
pub const MAX_EVENTS: u64 = 1000;

/// The raw log from `from_offset`, decoded where possible.
pub async fn events(store: &ViewStore, p: &Params) -> ApiResult {
    let from: u64 = opt_num(p, "from_offset")?.unwrap_or(1).max(1);
    let limit: u64 = opt_num(p, "limit")?.unwrap_or(100);
    if !(1..=MAX_EVENTS).contains(&limit) {
        return Err(ApiError::bad(format!(
            "limit={limit}: use 1 to {MAX_EVENTS}"
        )));
    }
    let job_id = store.meta.job_id.clone();
    let records = store.log(from, limit as usize).await?;
    let items: Vec<Value> = records
        .iter()
        .map(|r| {
            let decoded = decode_any(&r.value, r.content_type.as_deref());
            let verdict = crate::ingest::codec::decode(&r.value, r.content_type.as_deref(), &job_id);
            json!({
                "offset": r.seq,
                "partition": r.partition,
                "source_offset": r.offset,
                "arrival_ms": r.arrival_ms,
                "valid": verdict.is_ok(),
                "reason": verdict.err(),
                "message": decoded,
                "raw_preview": if decoded.is_none() { Some(crate::ingest::codec::preview(&r.value)) } else { None },
            })
        })
        .collect();
    let next = records.last().map(|r| r.seq + 1);
    Ok(json!({"items": items, "from_offset": from, "limit": limit, "next_offset": next}))
}

/// A record as a generic JSON value (for display), whatever its format.
fn decode_any(bytes: &[u8], content_type: Option<&str>) -> Option<Value> {
    match crate::ingest::codec::detect(bytes, content_type)? {
        crate::ingest::codec::Format::Json => serde_json::from_slice(bytes).ok(),
        crate::ingest::codec::Format::MsgPack => rmp_serde::from_slice(bytes).ok(),
    }
}

/// The whole set of answers for one attempt, for golden files and for
/// replay-equivalence checks: every route's first page, large pages.
pub async fn snapshot(store: &ViewStore) -> ApiResult {
    let mut big = Params::new();
    big.insert("page_size".into(), "1000".into());
    let first = Params::new();
    let mut out = serde_json::Map::new();
    out.insert("job".into(), job(store).await?);
    out.insert("configuration".into(), configuration(store).await?);
    out.insert("stages".into(), stages(store, &big).await?);
    let mut metrics = serde_json::Map::new();
    let mut workers_by_id = serde_json::Map::new();
    let log_offset = store.job().await?.log_offset;
    for s in store.stages(log_offset).await?.iter() {
        metrics.insert(
            s.stage_id.clone(),
            stage_metrics(store, &s.stage_id, &Params::new()).await?,
        );
    }
    out.insert("stage_metrics".into(), Value::Object(metrics));
    let newest = store.job().await?.newest_event_time;
    for (id, w) in store.parents::<WorkerView>().await? {
        let events = history(store, &w).await?;
        workers_by_id.insert(id, worker_json(&w, newest, Some(&events)));
    }
    out.insert("workers".into(), Value::Object(workers_by_id));
    out.insert("exceptions".into(), exceptions(store, &first).await?);
    out.insert(
        "exception_summary".into(),
        exception_summary(store, &Params::new()).await?,
    );
    out.insert("lineage".into(), lineage(store, &first).await?);
    out.insert("checkpoints".into(), checkpoints(store).await?);
    out.insert("timeline".into(), timeline(store, &first).await?);
    out.insert("dead_letters".into(), dead_letters(store, &big).await?);
    Ok(Value::Object(out))
}
/// A sum of counts that stops at `u64::MAX` instead of wrapping (or
/// panicking in a debug build) when producers report hostile counts.
fn saturating_sum(counts: impl Iterator<Item = u64>) -> u64 {
    counts.fold(0, u64::saturating_add)
}
