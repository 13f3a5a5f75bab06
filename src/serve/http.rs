//! The HTTP layer: routes of contract §5 mapped onto `api` queries over the
//! catalog, the same for a live projector and the history server. Every
//! error a client can cause is a JSON 400/404, never a 500: malformed paths
//! and query strings included.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::Stream;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::query::api::{self, ApiError, ApiResult, Params};
use crate::serve::catalog::Catalog;
use crate::serve::prometheus::Metrics;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    pub catalog: Arc<Catalog>,
    pub metrics: Arc<Metrics>,
    /// The job a live projector in this process writes, if any: its
    /// `/stream` wakes on each commit instead of polling.
    pub live: Option<LiveFeed>,
    /// What clients may make this server hold (connections, `as_of`
    /// work, streams).
    pub bounds: crate::serve::bounds::Bounds,
}

/// Commit notifications of the live projector.
#[derive(Clone)]
pub struct LiveFeed {
    pub job: String,
    pub attempt: String,
    /// The log offset after each commit.
    pub offsets: tokio::sync::watch::Receiver<u64>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Every 503 is a bound hit or a storage hiccup: worth a retry.
            return (status, [(header::RETRY_AFTER, "1")], Json(self.body())).into_response();
        }
        (status, Json(self.body())).into_response()
    }
}

/// Path parameters whose rejection is a JSON 400.
pub struct P<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| P(p.0))
            .map_err(|e| ApiError::bad(format!("bad path: {e}")))
    }
}

/// Query parameters parsed leniently into a map; a malformed string is a 400.
pub struct Q(pub Params);

impl<S: Send + Sync> FromRequestParts<S> for Q {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let RawQuery(raw) = RawQuery::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad(e.to_string()))?;
        // The decoder takes a stray `%` literally; a malformed escape is a 400.
        let hex2 = |s: &str| {
            s.get(..2)
                .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
        };
        if raw
            .as_deref()
            .is_some_and(|r| !r.split('%').skip(1).all(hex2))
        {
            return Err(ApiError::bad(
                "bad query string: a % must start a %XX escape",
            ));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
            .map_err(|e| ApiError::bad(format!("bad query string: {e}")))?;
        Ok(Q(pairs.into_iter().collect::<HashMap<_, _>>()))
    }
}

/// The router over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(crate::serve::openapi::document))
        .route("/api/overview", get(overview))
        .route("/api/jobs", get(jobs))
        .route("/api/jobs/{job}", get(job))
        .route("/api/jobs/{job}/attempts", get(attempts))
        .route("/api/jobs/{job}/configuration", get(configuration))
        .route("/api/jobs/{job}/stages", get(stages))
        .route("/api/jobs/{job}/stages/{stage}", get(stage))
        .route("/api/jobs/{job}/stages/{stage}/metrics", get(stage_metrics))
        .route("/api/jobs/{job}/stages/{stage}/workers", get(stage_workers))
        .route("/api/jobs/{job}/workers", get(workers))
        .route("/api/jobs/{job}/workers/{worker}", get(worker))
        .route("/api/jobs/{job}/exceptions", get(exceptions))
        .route("/api/jobs/{job}/exceptions/summary", get(exception_summary))
        .route("/api/jobs/{job}/exceptions/{offset}", get(exception))
        .route("/api/jobs/{job}/lineage", get(lineage))
        .route("/api/jobs/{job}/lineage/{split}", get(split))
        .route("/api/jobs/{job}/checkpoints", get(checkpoints))
        .route("/api/jobs/{job}/timeline", get(timeline))
        .route("/api/jobs/{job}/dead-letters", get(dead_letters))
        .route("/api/jobs/{job}/events", get(events))
        .route("/api/jobs/{job}/stream", get(stream))
        .merge(crate::serve::web::router())
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError {
                status: 405,
                message: "method not allowed: the API is read-only, use GET".into(),
            }
        })
        .with_state(state)
}

/// OpenMetrics when the scraper asks for it (Prometheus does), else the
/// classic text format.
async fn metrics(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            s.metrics.encode(),
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            s.metrics.encode_text(),
        )
            .into_response()
    }
}

fn done(s: &AppState, route: &'static str, r: ApiResult) -> Result<Json<Value>, ApiError> {
    s.metrics
        .request(route, r.as_ref().map_or_else(|e| e.status, |_| 200));
    r.map(Json)
}

/// The attempt a job route asks for (`attempt`), as of `as_of` when given;
/// `route` tells which views an `as_of` answer needs.
async fn resolve(
    s: &AppState,
    route: &str,
    job: &str,
    q: &Params,
) -> Result<Arc<crate::store::view_store::ViewStore>, ApiError> {
    let attempt = q
        .get("attempt")
        .map(String::as_str)
        .filter(|a| !a.is_empty());
    let store = s.catalog.resolve(job, attempt).await?;
    match as_of_param(q) {
        // Time travel: the views right after that log sequence.
        Some(k) => crate::time_travel::as_of::serve(
            s.catalog.storage(),
            &store,
            k,
            crate::time_travel::as_of::views_for(route),
        )
        .await
        .map_err(Into::into),
        None => Ok(store),
    }
}

fn as_of_param(q: &Params) -> Option<&str> {
    q.get("as_of").map(String::as_str).filter(|k| !k.is_empty())
}

/// A job route's answer: `answer` over the store `resolve` gives. With
/// `as_of`, the attempt's read handle is taken here (the catalog's polls
/// stay on the server's runtime) and the time-travel store is built and
/// read in the bounded `as_of` pool, off the async workers.
async fn job_answer<F, Fut>(
    s: &AppState,
    route: &'static str,
    job: String,
    q: Params,
    answer: F,
) -> ApiResult
where
    F: FnOnce(Arc<crate::store::view_store::ViewStore>, Params) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ApiResult> + Send,
{
    if as_of_param(&q).is_none() {
        let store = resolve(s, route, &job, &q).await?;
        return answer(store, q).await;
    }
    let attempt = q
        .get("attempt")
        .map(String::as_str)
        .filter(|a| !a.is_empty());
    let live = s.catalog.resolve(&job, attempt).await?;
    let storage = s.catalog.storage().clone();
    s.bounds
        .as_of
        .run(async move {
            let k = as_of_param(&q).unwrap_or_default();
            let store = crate::time_travel::as_of::serve(
                &storage,
                &live,
                k,
                crate::time_travel::as_of::views_for(route),
            )
            .await?;
            answer(store, q).await
        })
        .await
}

/// Job summaries opened at once while listing.
const LIST_CONCURRENCY: usize = 32;

/// A job's list entry: its latest attempt's stored summary when that
/// attempt is not open here (no database opened), else from its views;
/// `None` when the job vanished meanwhile.
async fn list_entry(s: &AppState, job: &str) -> Result<Option<Value>, ApiError> {
    let gone = |e: &crate::error::Error| e.kind() == crate::error::ErrorKind::NotFound;
    let latest = match s.catalog.latest_attempt(job).await {
        Ok(Some(latest)) => latest,
        Ok(None) => return Ok(None),
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if !s.catalog.is_open(job, &latest) {
        if let Some(sum) = crate::query::summary::read(s.catalog.storage(), job, &latest).await? {
            return Ok(Some(sum.entry));
        }
    }
    let store = match s.catalog.attempt(job, &latest).await {
        Ok(st) => st,
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    api::job_summary(&store).await.map(Some)
}

/// The summary of every job whose id starts with `prefix` (its latest
/// attempt only), newest first: by `start_time` (jobs that never started
/// last), then by the attempt's creation, then by id.
async fn summaries(s: &AppState, prefix: Option<&str>) -> Result<Vec<Value>, ApiError> {
    use futures::StreamExt;
    let jobs: Vec<String> = s
        .catalog
        .jobs()
        .await?
        .into_iter()
        .filter(|j| prefix.is_none_or(|p| j.starts_with(p)))
        .collect();
    let found: Vec<Result<Option<Value>, ApiError>> = futures::stream::iter(jobs)
        .map(|job| async move { list_entry(s, &job).await })
        .buffered(LIST_CONCURRENCY)
        .collect()
        .await;
    let mut out = Vec::with_capacity(found.len());
    for f in found {
        out.extend(f?);
    }
    let key = |v: &Value| {
        (
            v["start_time"].as_f64().unwrap_or(f64::NEG_INFINITY),
            v["created_ms"].as_u64().unwrap_or(0),
            v["job_id"].as_str().unwrap_or("").to_owned(),
        )
    };
    out.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        kb.0.total_cmp(&ka.0)
            .then(kb.1.cmp(&ka.1))
            .then(kb.2.cmp(&ka.2))
    });
    Ok(out)
}

async fn overview(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let r = async {
        let all = summaries(&s, None).await?;
        let count = |st: &str| all.iter().filter(|v| v["status"] == st).count();
        Ok(json!({
            "total": all.len(),
            "running": count("RUNNING"),
            "completed": count("COMPLETED"),
            "failed": count("FAILED"),
        }))
    }
    .await;
    done(&s, "overview", r)
}

/// `GET /api/jobs`: `status` (running, completed, failed), `prefix` (of the
/// job id), `since` / `until` (seconds since the epoch: `since <= start_time
/// < until`), newest first, paged.
async fn jobs(State(s): State<AppState>, Q(q): Q) -> Result<Json<Value>, ApiError> {
    let r = async {
        let page = api::Page::from_params(&q)?;
        let status = match q.get("status").map(|v| v.to_ascii_uppercase()) {
            None => None,
            Some(v) if v.is_empty() => None,
            Some(v) if ["RUNNING", "COMPLETED", "FAILED"].contains(&v.as_str()) => Some(v),
            Some(v) => {
                return Err(ApiError::bad(format!(
                    "status={v:?}: use running, completed or failed"
                )))
            }
        };
        let prefix = q
            .get("prefix")
            .map(String::as_str)
            .filter(|p| !p.is_empty());
        if let Some(p) = prefix {
            crate::store::storage::validate_id("prefix", p)?;
        }
        let since: Option<f64> = api::opt_num(&q, "since")?;
        let until: Option<f64> = api::opt_num(&q, "until")?;
        for (name, v) in [("since", since), ("until", until)] {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(ApiError::bad(format!(
                    "{name}: use seconds since the epoch"
                )));
            }
        }
        if let (Some(a), Some(b)) = (since, until) {
            if a > b {
                return Err(ApiError::bad(format!(
                    "since={a} is after until={b}: use since <= until"
                )));
            }
        }
        let all: Vec<Value> = summaries(&s, prefix)
            .await?
            .into_iter()
            .filter(|v| status.as_ref().is_none_or(|st| v["status"] == st.as_str()))
            .filter(|v| {
                let start = v["start_time"].as_f64();
                let after = since.is_none_or(|a| start.is_some_and(|t| t >= a));
                let before = until.is_none_or(|b| start.is_some_and(|t| t < b));
                after && before
            })
            .collect();
        Ok(page.cut(all))
    }
    .await;
    done(&s, "jobs", r)
}

macro_rules! job_route {
    ($name:ident, $route:literal, |$store:ident, $q:ident| $body:expr) => {
        async fn $name(
            State(s): State<AppState>,
            P(job): P<String>,
            Q(q): Q,
        ) -> Result<Json<Value>, ApiError> {
            let r = job_answer(&s, $route, job, q, |$store, $q| async move {
                let _ = &$q;
                $body.await
            })
            .await;
            done(&s, $route, r)
        }
    };
}

macro_rules! job_item_route {
    ($name:ident, $route:literal, |$store:ident, $id:ident, $q:ident| $body:expr) => {
        async fn $name(
            State(s): State<AppState>,
            P((job, $id)): P<(String, String)>,
            Q(q): Q,
        ) -> Result<Json<Value>, ApiError> {
            let r = job_answer(&s, $route, job, q, |$store, $q| async move {
                let _ = &$q;
                $body.await
            })
            .await;
            done(&s, $route, r)
        }
    };
}

async fn job(
    State(s): State<AppState>,
    P(job): P<String>,
    Q(q): Q,
) -> Result<Json<Value>, ApiError> {
    let r = async {
        if let Some(v) = sealed_job(&s, &job, &q).await? {
            return Ok(v);
        }
        job_answer(&s, "job", job, q, |store, _| async move {
            api::job(&store).await
        })
        .await
    }
    .await;
    done(&s, "job", r)
}

/// The job view from a sealed summary, when the attempt asked for (or the
/// latest) is not open here and its writer sealed it: a finished job's
/// first answer without opening its database, whatever its size.
async fn sealed_job(s: &AppState, job: &str, q: &Params) -> Result<Option<Value>, ApiError> {
    if q.keys().any(|k| k != "attempt") {
        return Ok(None);
    }
    crate::store::storage::validate_id("job id", job)?;
    let attempt = match q.get("attempt").filter(|a| !a.is_empty()) {
        Some(a) => {
            crate::store::storage::validate_id("attempt id", a)?;
            a.clone()
        }
        None => match s.catalog.latest_attempt(job).await? {
            Some(latest) => latest,
            None => return Ok(None),
        },
    };
    if s.catalog.is_open(job, &attempt) {
        return Ok(None);
    }
    Ok(
        crate::query::summary::read(s.catalog.storage(), job, &attempt)
            .await?
            .filter(|sum| sum.sealed)
            .map(|sum| sum.job),
    )
}
job_route!(configuration, "configuration", |store, q| {
    api::configuration(&store)
});
job_route!(stages, "stages", |store, q| api::stages(&store, &q));
job_route!(workers, "workers", |store, q| api::workers(
    &store, &q, None
));
job_route!(exceptions, "exceptions", |store, q| api::exceptions(
    &store, &q
));
job_route!(exception_summary, "exception_summary", |store, q| {
    api::exception_summary(&store, &q)
});
job_route!(lineage, "lineage", |store, q| api::lineage(&store, &q));
job_route!(checkpoints, "checkpoints", |store, q| api::checkpoints(
    &store
));
job_route!(timeline, "timeline", |store, q| api::timeline(&store, &q));
job_route!(dead_letters, "dead_letters", |store, q| api::dead_letters(
    &store, &q
));
job_route!(events, "events", |store, q| api::events(&store, &q));
job_item_route!(stage, "stage", |store, id, q| api::stage(&store, &id));
job_item_route!(stage_metrics, "stage_metrics", |store, id, q| {
    api::stage_metrics(&store, &id, &q)
});
job_item_route!(stage_workers, "stage_workers", |store, id, q| api::workers(
    &store,
    &q,
    Some(&id)
));
job_item_route!(worker, "worker", |store, id, q| api::worker(&store, &id));
job_item_route!(exception, "exception", |store, id, q| api::exception(
    &store, &id
));
job_item_route!(split, "split", |store, id, q| api::split(&store, &id));

async fn attempts(
    State(s): State<AppState>,
    P(job): P<String>,
    Q(q): Q,
) -> Result<Json<Value>, ApiError> {
    let r = async {
        let page = api::Page::from_params(&q)?;
        let list = s.catalog.attempt_ids(&job).await?;
        if list.is_empty() {
            return Err(ApiError::not_found(format!("job {job:?} not found")));
        }
        let total = list.len() as u64;
        let mut items = Vec::new();
        // Only this page's attempts, one open at a time: the handle cache
        // stays bounded.
        let skip = page.skip().min(usize::MAX as u64) as usize;
        for (attempt, _) in list.into_iter().skip(skip).take(page.page_size as usize) {
            let state =
                crate::store::attempt_state::state(s.catalog.storage(), &job, &attempt).await?;
            let st = match s.catalog.attempt(&job, &attempt).await {
                Ok(st) => st,
                // A replay that died before its database existed.
                Err(e) if e.kind() == crate::error::ErrorKind::NotFound => {
                    let meta =
                        crate::store::attempt_state::read_meta(s.catalog.storage(), &job, &attempt)
                            .await?
                            .unwrap_or_default();
                    items.push(json!({
                        "attempt_id": attempt,
                        "created_ms": meta.created_ms,
                        "source": meta.source,
                        "status": "RUNNING",
                        "state": state.name(),
                        "log_offset": 0,
                    }));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let j = st.job().await?;
            items.push(json!({
                "attempt_id": st.meta.attempt_id,
                "created_ms": st.meta.created_ms,
                "source": st.meta.source,
                "status": if j.status.is_empty() { "RUNNING".to_owned() } else { j.status },
                "state": state.name(),
                "log_offset": j.log_offset,
            }));
        }
        let mut v = page.wrap(items, total);
        v["job_id"] = json!(job);
        Ok(v)
    }
    .await;
    done(&s, "attempts", r)
}

/// `GET /api/jobs/{job}/stream`: the job view now and after each change,
/// through the server's shared polls (`stream_hub`), within `--max-streams`.
async fn stream(
    State(s): State<AppState>,
    P(job): P<String>,
    Q(q): Q,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    if q.contains_key("as_of") {
        return Err(ApiError::bad(
            "as_of: the past does not change; use the other job routes",
        ));
    }
    let attempt = resolve(&s, "stream", &job, &q)
        .await?
        .meta
        .attempt_id
        .clone();
    let feed = s
        .live
        .filter(|l| l.job == job && l.attempt == attempt)
        .map(|l| l.offsets);
    let sub = match s.bounds.streams.subscribe(&s.catalog, &job, &attempt, feed) {
        Ok(sub) => sub,
        Err(e) => {
            s.metrics.request("stream", e.status);
            return Err(e);
        }
    };
    s.metrics.request("stream", 200);
    let events = futures::stream::unfold(sub, |mut sub| async move {
        loop {
            sub.views.changed().await.ok()?;
            let view = sub.views.borrow_and_update().clone();
            if let Some(view) = view {
                let ev = Event::default().event("view").data(&*view);
                return Some((Ok(ev), sub));
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// Serves `router` behind `endpoint` on `addr` until `shutdown` resolves.
pub async fn serve(
    state: AppState,
    endpoint: &crate::serve::endpoint::Endpoint,
    addr: &str,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> crate::error::Result<()> {
    // A port in use is not a bad argument (exit 1, not 2).
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        crate::error::Error::Io(std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr}: {e}"),
        ))
    })?;
    serve_listener(state, endpoint.clone(), listener, shutdown).await
}

/// Serves `router` behind `endpoint` on a bound listener until `shutdown`
/// resolves.
pub async fn serve_listener(
    state: AppState,
    endpoint: crate::serve::endpoint::Endpoint,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> crate::error::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, base_path = endpoint.base_path.as_str(),
        token = endpoint.token.is_some(), "serving http");
    let limits = state.bounds.conn;
    let app = endpoint
        .wrap(router(state))
        .layer(axum::middleware::from_fn(crate::serve::guard::guard));
    crate::serve::listener::serve(listener, app, limits, shutdown).await?;
    Ok(())
}
