//! The web page: a single-page app (plain HTML, CSS and vanilla JS from
//! `web/`, embedded in the binary at build time, so nothing is fetched from
//! the network at run time) served beside the JSON API. It only reads the
//! `/api` routes; it owns no data and must not add API routes of its own.
//!
//! Every page is directly loadable by URL: `/` (portal) and any `/jobs/...`
//! path answer the same shell, and the script routes on `location.pathname`.
//!
//! Nothing in the page is absolute: the shell's `<base href>` is relative
//! (`../../` from `/jobs/j/workers`), computed from the path the server saw,
//! so the page and all its links, API calls and its stream resolve under
//! whatever prefix the browser used, whether a proxy kept that prefix
//! (`--base-path`) or stripped it.

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

/// The shell for a request to `path` (after the base path): its relative
/// `<base href>` leads back to the page's root, and it tells the script
/// whether the API wants a token.
fn shell_for(path: &str, token: bool) -> String {
    let depth = path.matches('/').count().saturating_sub(1);
    let base = if depth == 0 {
        "./".to_owned()
    } else {
        "../".repeat(depth)
    };
    INDEX_HTML
        .replacen(
            r#"<base href="./">"#,
            &format!(r#"<base href="{base}">"#),
            1,
        )
        .replacen(
            r#"<meta name="sundial-auth" content="none">"#,
            if token {
                r#"<meta name="sundial-auth" content="bearer">"#
            } else {
                r#"<meta name="sundial-auth" content="none">"#
            },
            1,
        )
}

async fn shell(
    uri: axum::http::Uri,
    token: Option<axum::Extension<crate::serve::auth::TokenRequired>>,
) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        shell_for(uri.path(), token.is_some()),
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
                    INDEX_HTML.contains(&format!("\"assets/{name}\"")),
                    "index.html does not load {name}"
                );
            }
        }
    }

    #[test]
    fn the_base_href_leads_back_to_the_root_from_any_depth() {
        for (path, base) in [
            ("/", "./"),
            ("/jobs", "./"),
            ("/jobs/", "../"),
            ("/jobs/j", "../"),
            ("/jobs/j/workers/w1", "../../../"),
        ] {
            let html = shell_for(path, false);
            assert!(html.contains(&format!(r#"<base href="{base}">"#)), "{path}");
            assert!(html.contains(r#"content="none""#), "{path}");
        }
        assert!(shell_for("/", true).contains(r#"<meta name="sundial-auth" content="bearer">"#));
    }
}
