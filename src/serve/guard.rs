//! Per-request bounds checked before any route runs: a URI longer than
//! `MAX_URI_BYTES` is a JSON 414, a declared body over `MAX_BODY_BYTES` a
//! JSON 413 (the API is read-only: no route reads a body), and an answer
//! not started within `REQUEST_TIMEOUT` a JSON 503 with `Retry-After` (a
//! stream's answer starts at once; only its start is timed).

use std::time::Duration;

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::query::api::ApiError;

/// Longest request target (path and query) answered.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest request body declared with `Content-Length`.
pub const MAX_BODY_BYTES: u64 = 64 * 1024;
/// Longest a request may wait for its answer to start (an `as_of` queued
/// behind others included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The middleware (`axum::middleware::from_fn(guard)`).
pub async fn guard(req: Request, next: Next) -> Response {
    let uri_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return ApiError {
            status: 414,
            message: format!("uri too long: {uri_len} bytes, at most {MAX_URI_BYTES}"),
        }
        .into_response();
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return ApiError {
            status: 413,
            message: format!(
                "request body too large: at most {MAX_BODY_BYTES} bytes (the API is read-only, use GET)"
            ),
        }
        .into_response();
    }
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError {
            status: 503,
            message: format!(
                "no answer within {} s: the server is busy, retry shortly",
                REQUEST_TIMEOUT.as_secs()
            ),
        }
        .into_response(),
    }
}
