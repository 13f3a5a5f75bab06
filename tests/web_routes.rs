//! The web page's routes over a real socket, beside the API: page paths
//! answer the HTML shell, every embedded asset is served with its content
//! type, and anything else stays a JSON 404 (the API's routes unchanged).
//! What the page shows is `web_e2e`'s job (a real browser).

#[allow(dead_code)] // the helpers http_api uses and this file does not
mod common;

use common::{get, get_json, AUTO};

#[tokio::test]
async fn page_paths_answer_the_shell_that_loads_the_embedded_assets() {
    for path in [
        "/",
        "/jobs",
        &format!("/jobs/{AUTO}"),
        &format!("/jobs/{AUTO}/workers?page=2&page_size=10"),
        &format!("/jobs/{AUTO}/lineage/some_split"),
    ] {
        let r = get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("text/html")),
            "{path}"
        );
        let html = r.text();
        for asset in ["app.css", "util.js", "charts.js", "pages.js", "app.js"] {
            assert!(
                html.contains(&format!("\"assets/{asset}\"")),
                "{path}: {asset}"
            );
        }
    }
}

#[tokio::test]
async fn assets_are_served_with_their_type_and_unknown_ones_are_a_json_404() {
    for (path, kind, needle) in [
        ("/assets/app.js", "text/javascript", "function render("),
        (
            "/assets/pages.js",
            "text/javascript",
            "async function jobPage(",
        ),
        ("/assets/app.css", "text/css", "position: sticky"),
        ("/assets/favicon.svg", "image/svg+xml", "<svg"),
        ("/favicon.ico", "image/svg+xml", "<svg"),
    ] {
        let r = get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with(kind)),
            "{path}: {:?}",
            r.header("content-type")
        );
        assert!(r.text().contains(needle), "{path}");
    }
    for path in ["/assets/nope.js", "/assets/..%2Fsrc%2Fweb.rs", "/nope"] {
        let r = get(path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json()["status"], 404, "{path}");
    }
    // The API beside the page is unchanged.
    assert_eq!(get_json(&format!("/api/jobs/{AUTO}")).await["job_id"], AUTO);
    assert_eq!(get("/api/nope").await.status, 404);
}
