//! Optional bearer-token access (`--auth-token-file FILE` or the
//! `SUNDIAL_AUTH_TOKEN` variable): with a token set, every `/api/…` route
//! and `/metrics` answer a JSON 401 unless the request carries
//! `Authorization: Bearer <token>`. `/health` and the page itself (HTML,
//! scripts, styles: no data) stay open, so the page can load and ask for
//! the token, and a load balancer can check the process.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::query::api::ApiError;

/// The environment variable that may hold the token itself.
pub const TOKEN_ENV: &str = "SUNDIAL_AUTH_TOKEN";

/// The shortest token accepted: a guessable token protects nothing.
const MIN_LEN: usize = 16;

/// A bearer token. Its `Debug` never shows it, so it cannot reach a log.
#[derive(Clone)]
pub struct Token(Arc<[u8]>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    /// A token from its text (surrounding whitespace dropped): at least 16
    /// visible ASCII characters, as a header value can carry them.
    pub fn new(text: &str, from: &str) -> Result<Token> {
        let t = text.trim();
        if t.len() < MIN_LEN || !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "auth token",
                format!(
                    "{from}: use at least {MIN_LEN} visible ASCII characters \
                     (e.g. `openssl rand -hex 32`)"
                ),
            ));
        }
        Ok(Token(t.as_bytes().into()))
    }

    /// The token in `path` (one line).
    pub fn from_file(path: &Path) -> Result<Token> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid("auth token file", format!("{}: {e}", path.display())))?;
        Token::new(&text, &path.display().to_string())
    }

    /// Whether `presented` is the token. Constant time in the bytes
    /// compared (`subtle`): a timing probe learns at most the length.
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.0.as_ref().ct_eq(presented).into()
    }
}

/// Marks requests to an endpoint that wants a token, for the page shell
/// (it asks for the token before its first API call instead of failing).
#[derive(Debug, Clone, Copy)]
pub struct TokenRequired;

/// Whether `path` (after the base path) needs the token: the API and the
/// metrics; not `/health`, not the page's shell and assets.
fn protected(path: &str) -> bool {
    path == "/metrics" || path == "/api" || path.starts_with("/api/")
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(req: &Request) -> Option<&[u8]> {
    let v = req.headers().get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = v.split_at(v.iter().position(|b| *b == b' ')?);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| rest.trim_ascii())
}

/// Middleware: with a token set, a protected route without it is a 401 in
/// the API's JSON error shape, with `WWW-Authenticate: Bearer`.
pub async fn require(State(token): State<Option<Token>>, mut req: Request, next: Next) -> Response {
    let Some(token) = token else {
        return next.run(req).await;
    };
    req.extensions_mut().insert(TokenRequired);
    if protected(req.uri().path()) && !bearer(&req).is_some_and(|t| token.matches(t)) {
        let mut res = ApiError {
            status: 401,
            message: "missing or wrong token: send Authorization: Bearer <token>".into(),
        }
        .into_response();
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"sundial\""),
        );
        return res;
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_whole() {
        let t = Token::new(" 0123456789abcdef\n", "test").unwrap();
        assert!(t.matches(b"0123456789abcdef"));
        assert!(!t.matches(b"0123456789abcde"));
        assert!(!t.matches(b"0123456789abcdef0"));
        assert!(!t.matches(b""));
        assert!(Token::new("short", "test").is_err());
        assert!(Token::new("0123456789 abcdef", "test").is_err());
        assert_eq!(format!("{t:?}"), "Token(…)");
    }

    #[test]
    fn the_api_and_metrics_are_protected_the_page_and_health_are_not() {
        for p in ["/api/jobs", "/api/openapi.json", "/api", "/metrics"] {
            assert!(protected(p), "{p}");
        }
        for p in ["/health", "/", "/jobs/x", "/assets/app.js", "/apix"] {
            assert!(!protected(p), "{p}");
        }
    }
}
