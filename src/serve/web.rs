//! The web page: a single-page app (plain HTML, CSS and vanilla JS from
//! `web/`, embedded in the binary at build time, so nothing is fetched from
//! the network at run time) served beside the JSON API. It only reads the
//! `/api` routes; it owns no data and must not add API routes of its own.
//!
//! Every page is directly loadable by URL: `/` (portal) and any `/jobs/...`
//! path answer the same shell, and the script routes on `location.pathname`.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The page shell: loads the stylesheet and the scripts below.
const INDEX_HTML: &str = include_str!("../../web/index.html");

/// Embedded assets: (file name under `/assets/`, content type, bytes).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../web/app.css"),
    ),
    (
        "util.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/util.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/charts.js"),
    ),
    (
        "pages.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/pages.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/app.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../web/favicon.svg"),
    ),
];

/// The routes of the page, to merge into the API router: `/`, `/jobs/...`
/// (client-side pages), `/assets/{file}` and `/favicon.ico`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(shell))
        .route("/jobs", get(shell))
        .route("/jobs/{*page}", get(shell))
        .route("/assets/{file}", get(asset))
        .route("/favicon.ico", get(favicon))
}

async fn shell() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX_HTML,
    )
        .into_response()
}

async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            *body,
        )
            .into_response(),
        None => {
            crate::query::api::ApiError::not_found(format!("no asset {file:?}")).into_response()
        }
    }
}

/// Browsers ask for `/favicon.ico` whatever the page says; answer the SVG.
async fn favicon() -> Response {
    asset(axum::extract::Path("favicon.svg".to_owned())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_loads_every_script_and_the_stylesheet_it_embeds() {
        for (name, _, body) in ASSETS {
            assert!(!body.is_empty(), "{name} is empty");
            if name.ends_with(".js") || name.ends_with(".css") {
                assert!(
                    INDEX_HTML.contains(&format!("/assets/{name}")),
                    "index.html does not load {name}"
                );
            }
        }
    }
}
