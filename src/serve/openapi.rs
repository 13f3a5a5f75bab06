//! The OpenAPI 3 document of the HTTP API (contract §5), served at
//! `/api/openapi.json`. It is a static file (`openapi/openapi.json`) embedded
//! at build time; the tests below fail when a route of `http::router` is
//! missing from it (or it documents one the router lacks), and
//! `tests/openapi.rs` runs schemathesis against it over real data.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The document, as served.
pub const DOCUMENT: &str = include_str!("../../openapi/openapi.json");

/// `GET /api/openapi.json`.
pub async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT).into_response()
}

/// The API routes `.route("…")` registers in `src` (the router's source):
/// those under `/api/` plus `/health` and `/metrics` (web-page routes are
/// not part of the API).
#[cfg(test)]
fn api_routes(src: &str) -> Vec<String> {
    let mut out: Vec<String> = src
        .split(".route(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|p| p.starts_with("/api/") || *p == "/api" || *p == "/health" || *p == "/metrics")
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn doc() -> Value {
        serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
    }

    /// Follows a local `$ref` (`#/components/...`).
    fn deref<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling $ref {r}")),
            None => v,
        }
    }

    #[test]
    fn every_route_of_the_router_is_documented_and_nothing_else() {
        let routes: BTreeSet<String> = api_routes(include_str!("http.rs")).into_iter().collect();
        assert!(
            routes.contains("/api/jobs/{job}"),
            "route scan found {routes:?}"
        );
        let documented: BTreeSet<String> = doc()["paths"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let missing: Vec<_> = routes.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routes).collect();
        assert!(
            missing.is_empty(),
            "routes missing from openapi/openapi.json: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "documented routes the router lacks: {extra:?}"
        );
    }

    #[test]
    fn the_route_scan_sees_new_routes_and_skips_web_pages() {
        let src = r#"Router::new().route("/", get(page)).route("/assets/{*f}", get(a))
            .route("/health", get(h)).route("/api/new/{x}", get(n))"#;
        assert_eq!(api_routes(src), ["/api/new/{x}", "/health"]);
    }

    #[test]
    fn every_operation_declares_its_parameters_and_error_shapes() {
        let d = doc();
        assert!(d["openapi"].as_str().unwrap().starts_with("3."));
        for (path, item) in d["paths"].as_object().unwrap() {
            let op = &item["get"];
            assert!(op.is_object(), "{path}: no GET");
            assert!(op["responses"]["200"].is_object(), "{path}: no 200");
            let params: Vec<&Value> = op["parameters"]
                .as_array()
                .map(|a| a.iter().map(|p| deref(&d, p)).collect())
                .unwrap_or_default();
            let named = |n: &str, at: &str| params.iter().any(|p| p["name"] == n && p["in"] == at);
            // Every `{name}` in the path is a declared path parameter.
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                let name = seg.trim_matches(|c| c == '{' || c == '}');
                assert!(
                    named(name, "path"),
                    "{path}: path parameter {name} undeclared"
                );
            }
            let job_route = path.starts_with("/api/jobs/{job}");
            if job_route && path != "/api/jobs/{job}/attempts" {
                assert!(named("attempt", "query"), "{path}: no ?attempt=");
            }
            if !params.is_empty() {
                assert!(op["responses"]["400"].is_object(), "{path}: no 400");
            }
            if path.contains('{') {
                assert!(op["responses"]["404"].is_object(), "{path}: no 404");
            }
            // The server takes an empty query value as the default.
            for p in params.iter().filter(|p| p["in"] == "query") {
                let numeric = matches!(p["schema"]["type"].as_str(), Some("integer" | "number"));
                assert!(
                    !numeric || p["allowEmptyValue"] == true,
                    "{path}: ?{}= is accepted empty",
                    p["name"]
                );
            }
            if params.iter().any(|p| p["name"] == "page") {
                assert!(
                    named("page_size", "query"),
                    "{path}: page without page_size"
                );
            }
            for (code, r) in op["responses"].as_object().unwrap() {
                let r = deref(&d, r);
                if code != "200" {
                    let schema = &r["content"]["application/json"]["schema"];
                    assert_eq!(
                        schema["$ref"], "#/components/schemas/Error",
                        "{path} {code}: not the JSON error shape"
                    );
                }
            }
        }
    }

    #[test]
    fn every_ref_resolves() {
        fn walk(d: &Value, v: &Value) {
            match v {
                Value::Object(m) => {
                    if m.contains_key("$ref") {
                        deref(d, v);
                    }
                    m.values().for_each(|x| walk(d, x));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(d, x)),
                _ => {}
            }
        }
        let d = doc();
        walk(&d, &d);
    }
}
