//! How the HTTP endpoint meets the network: the prefix it lives under, who
//! may read it (a bearer token, the `Host` names it answers), response
//! compression and CORS. Each is a layer of its own module wrapped around
//! `http::router`, which stays the map of routes; this module only orders
//! them.

use std::path::Path;

use axum::http::{header, HeaderValue, Method};
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::Router;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::{Error, Result};
use crate::serve::auth::{self, Token};
use crate::serve::base_path::{self, BasePath};
use crate::serve::host_check::{self, HostPolicy};

/// The endpoint settings shared by `serve`, `project --http` and `demo`.
/// The default: at the root, no token, `Host` checked, no CORS.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Where every route lives (`--base-path`).
    pub base_path: BasePath,
    /// The bearer token the API and `/metrics` require, if any.
    pub token: Option<Token>,
    /// Which `Host` names may reach it.
    pub hosts: HostPolicy,
    /// Origins a browser may read the API from (`--cors-origin`); none: no
    /// CORS headers at all.
    pub cors_origins: Vec<HeaderValue>,
}

impl Default for Endpoint {
    fn default() -> Self {
        Endpoint {
            base_path: BasePath::default(),
            token: None,
            hosts: HostPolicy::new(&[], false),
            cors_origins: Vec::new(),
        }
    }
}

impl Endpoint {
    /// The settings of the command-line flags (`--base-path`,
    /// `--auth-token-file`, `--allowed-hosts`, `--cors-origin`), the token
    /// read from its file or from [`auth::TOKEN_ENV`].
    pub fn new(
        base_path: &str,
        auth_token_file: Option<&Path>,
        allowed_hosts: &[String],
        cors_origins: &[String],
    ) -> Result<Endpoint> {
        let env_token = std::env::var(auth::TOKEN_ENV)
            .ok()
            .filter(|t| !t.is_empty());
        let token = match (auth_token_file, env_token) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "auth token",
                    format!(
                        "both --auth-token-file and {} are set: use one",
                        auth::TOKEN_ENV
                    ),
                ))
            }
            (Some(path), None) => Some(Token::from_file(path)?),
            (None, Some(t)) => Some(Token::new(&t, auth::TOKEN_ENV)?),
            (None, None) => None,
        };
        let cors_origins = cors_origins
            .iter()
            .map(|o| {
                let origin = o.trim_end_matches('/');
                let host = origin
                    .strip_prefix("https://")
                    .or_else(|| origin.strip_prefix("http://"));
                let ok = host.is_some_and(|h| !h.is_empty() && !h.contains('/'));
                HeaderValue::from_str(origin)
                    .ok()
                    .filter(|_| ok)
                    .ok_or_else(|| {
                        Error::invalid(
                            "cors origin",
                            format!("{o:?}: use scheme://host[:port], e.g. https://dash.example"),
                        )
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Endpoint {
            base_path: BasePath::parse(base_path)?,
            hosts: HostPolicy::new(allowed_hosts, token.is_some()),
            token,
            cors_origins,
        })
    }

    /// `router` behind the layers, outermost first: CORS (answers preflight
    /// requests itself), compression (gzip or br as the client accepts;
    /// never the SSE stream), the base path, the `Host` check, the token.
    pub fn wrap(&self, router: Router) -> Router {
        let cors = (!self.cors_origins.is_empty()).then(|| {
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(self.cors_origins.clone()))
                .allow_methods([Method::GET, Method::HEAD])
                .allow_headers([header::AUTHORIZATION, header::ACCEPT])
        });
        let service = ServiceBuilder::new()
            .option_layer(cors)
            .layer(CompressionLayer::new())
            .layer(axum::middleware::map_response(unbuffered_sse))
            .layer(from_fn_with_state(self.base_path.clone(), base_path::strip))
            .layer(from_fn_with_state(self.hosts.clone(), host_check::check))
            .layer(from_fn_with_state(self.token.clone(), auth::require))
            .service(router);
        Router::new().fallback_service(service)
    }

    /// The page's address on `addr` (for a line telling the user where it is).
    pub fn url(&self, addr: &str) -> String {
        format!("http://{addr}{}/", self.base_path.as_str())
    }
}

/// Tells a buffering reverse proxy (nginx) to pass the SSE stream on as it
/// comes instead of holding it back: `X-Accel-Buffering: no`.
async fn unbuffered_sse(mut res: Response) -> Response {
    let sse = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if sse {
        res.headers_mut()
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    res
}
