//! `Host` header check against DNS rebinding: a web page on an attacker's
//! name that re-resolves to 127.0.0.1 reaches the endpoint with its own
//! name in `Host`. A request whose `Host` is an IP address (as the bound
//! address is), `localhost`, or a name given in `--allowed-hosts` passes;
//! any other name gets a JSON 403. On by default when no token is set (a
//! token already stops such a page) and always when `--allowed-hosts` is
//! given; `/health` is never checked, for load balancers that send names.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::query::api::ApiError;
use crate::serve::base_path::HEALTH;

/// Which `Host` names may reach the endpoint.
#[derive(Debug, Clone, Default)]
pub enum HostPolicy {
    /// Any (a token guards the endpoint instead).
    #[default]
    Any,
    /// IP addresses, `localhost` and these names (lowercase, no port; `*`
    /// allows any).
    Names(Arc<[String]>),
}

impl HostPolicy {
    /// The policy for `--allowed-hosts` (names, `name:port` accepted) with
    /// or without a token.
    pub fn new(allowed: &[String], token: bool) -> HostPolicy {
        if token && allowed.is_empty() {
            return HostPolicy::Any;
        }
        HostPolicy::Names(allowed.iter().map(|h| host_name(h).to_owned()).collect())
    }

    /// Whether a request with this `Host` value may pass.
    pub fn allows(&self, host: &str) -> bool {
        let names = match self {
            HostPolicy::Any => return true,
            HostPolicy::Names(n) => n,
        };
        let name = host_name(host);
        name.parse::<IpAddr>().is_ok()
            || name == "localhost"
            || names.iter().any(|n| n == "*" || *n == name)
    }
}

/// The name part of a `Host` value, lowercase: `[::1]:80` → `::1`,
/// `Example.org:8080` → `example.org`.
fn host_name(host: &str) -> String {
    let h = host.trim();
    let name = match h.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => h.rsplit_once(':').map_or(h, |(n, _)| n),
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Middleware: a request whose `Host` the policy refuses is a JSON 403. A
/// request without one (HTTP/1.0 tools) passes: no browser sends that.
pub async fn check(State(policy): State<HostPolicy>, req: Request, next: Next) -> Response {
    if req.uri().path() == HEALTH {
        return next.run(req).await;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    match host {
        Some(h) if !policy.allows(&h) => ApiError {
            status: 403,
            message: format!(
                "host {:?} is not allowed: reach this server by IP address or localhost, \
                 name it in --allowed-hosts, or set a token",
                host_name(&h)
            ),
        }
        .into_response(),
        _ => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_listed_names_pass_other_names_do_not() {
        let p = HostPolicy::new(&["Portal.example:443".into()], false);
        for ok in [
            "127.0.0.1:8080",
            "[::1]:8080",
            "10.1.2.3",
            "localhost:8080",
            "portal.example",
            "PORTAL.EXAMPLE.:80",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        for no in [
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "localhost.evil",
        ] {
            assert!(!p.allows(no), "{no}");
        }
        assert!(HostPolicy::new(&[], true).allows("evil.example"));
        assert!(!HostPolicy::new(&[], false).allows("evil.example"));
        assert!(!HostPolicy::new(&["a.example".into()], true).allows("evil.example"));
        assert!(HostPolicy::new(&["*".into()], false).allows("evil.example"));
    }
}
