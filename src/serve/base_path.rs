//! The path prefix the HTTP endpoint lives under (`--base-path /solstice`),
//! for a shared host or a reverse proxy that keeps the prefix. A layer
//! strips the prefix before routing, so the router, the page and the OpenAPI
//! document know only their own paths; the page finds its prefix from its
//! document base (see `web`), so a proxy that strips the prefix needs no
//! flag at all.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::uri::PathAndQuery;
use axum::http::{header, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{Error, Result};
use crate::query::api::ApiError;

/// The route a load balancer checks: answered at the root as well as under
/// the prefix, whatever the prefix.
pub const HEALTH: &str = "/health";

/// A validated prefix: empty (the root) or `/seg[/seg…]` without a trailing
/// slash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BasePath(Arc<str>);

impl BasePath {
    /// Reads `--base-path`: `""` or `/` is the root; otherwise path segments
    /// of letters, digits and `-._~` (no `.` or `..`), a leading `/`, an
    /// optional trailing one.
    pub fn parse(s: &str) -> Result<BasePath> {
        let trimmed = s.trim_end_matches('/');
        if trimmed.is_empty() {
            return Ok(BasePath::default());
        }
        let bad = |why: &str| Error::invalid("base path", format!("{s:?}: {why}"));
        let rest = trimmed
            .strip_prefix('/')
            .ok_or_else(|| bad("start it with / (e.g. /solstice)"))?;
        for seg in rest.split('/') {
            let ok_chars = seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if seg.is_empty() || seg == "." || seg == ".." || !ok_chars {
                return Err(bad(
                    "use path segments of letters, digits and -._~ (no empty, . or .. segment)",
                ));
            }
        }
        Ok(BasePath(trimmed.into()))
    }

    /// The prefix (`""` at the root).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the endpoint lives at the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

/// Middleware: passes `{base}/rest` on as `/rest`, answers `{base}` with a
/// redirect to `{base}/` (the page resolves its links against it), passes
/// [`HEALTH`] at the root through, and answers anything else with a JSON 404.
pub async fn strip(State(base): State<BasePath>, mut req: Request, next: Next) -> Response {
    if base.is_root() || req.uri().path() == HEALTH {
        return next.run(req).await;
    }
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    match req.uri().path().strip_prefix(base.as_str()) {
        Some("") => {
            // Relative, so it holds behind a proxy that adds a prefix of its own.
            let last = base.as_str().rsplit('/').next().unwrap_or_default();
            let to = format!("{last}/{query}");
            (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, to)]).into_response()
        }
        Some(rest) if rest.starts_with('/') => {
            let mut parts = req.uri().clone().into_parts();
            match PathAndQuery::try_from(format!("{rest}{query}")) {
                Ok(pq) => parts.path_and_query = Some(pq),
                Err(_) => return ApiError::bad("bad path").into_response(),
            }
            match Uri::from_parts(parts) {
                Ok(uri) => *req.uri_mut() = uri,
                Err(_) => return ApiError::bad("bad path").into_response(),
            }
            next.run(req).await
        }
        _ => ApiError::not_found(format!(
            "no such route: this server answers under {}/",
            base.as_str()
        ))
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked_and_normalized() {
        assert!(BasePath::parse("").unwrap().is_root());
        assert!(BasePath::parse("/").unwrap().is_root());
        assert_eq!(BasePath::parse("/solstice/").unwrap().as_str(), "/solstice");
        assert_eq!(BasePath::parse("/a/b-c.d").unwrap().as_str(), "/a/b-c.d");
        for bad in ["solstice", "/a//b", "/a/../b", "/a b", "/a?b", "/%2e"] {
            assert!(BasePath::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
