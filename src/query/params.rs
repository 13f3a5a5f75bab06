//! What every answer shares: its query parameters, paging, and the error
//! it becomes (status and a message safe to show).

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::error::{Error, ErrorKind};

/// Query parameters as given.
pub type Params = HashMap<String, String>;

/// An API error: the status and a message safe to show.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    /// 400 with a message.
    pub fn bad(message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            message: message.into(),
        }
    }

    /// 404 with a message.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: 404,
            message: message.into(),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({"error": self.message, "status": self.status})
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e.kind() {
            ErrorKind::Invalid => ApiError::bad(e.to_string()),
            ErrorKind::NotFound => ApiError::not_found(e.to_string()),
            _ => {
                tracing::warn!(error = %e, "read failed");
                ApiError {
                    status: 503,
                    message: "storage unavailable, retry shortly".to_owned(),
                }
            }
        }
    }
}

/// The result of an API query.
pub type ApiResult = Result<Value, ApiError>;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: u64,
    pub page_size: u64,
}

impl Page {
    /// Reads `page` (from 1) and `page_size` (1–1000, default 100); an
    /// empty value is the default, as for every query parameter.
    pub fn from_params(p: &Params) -> Result<Page, ApiError> {
        let page =
            match p.get("page").filter(|s| !s.is_empty()) {
                None => 1,
                Some(s) => s.parse::<u64>().ok().filter(|v| *v >= 1).ok_or_else(|| {
                    ApiError::bad(format!("page={s:?}: use a whole number from 1"))
                })?,
            };
        let page_size = match p.get("page_size").filter(|s| !s.is_empty()) {
            None => 100,
            Some(s) => s
                .parse::<u64>()
                .ok()
                .filter(|v| (1..=1000).contains(v))
                .ok_or_else(|| {
                    ApiError::bad(format!(
                        "page_size={s:?}: use a whole number from 1 to 1000"
                    ))
                })?,
        };
        Ok(Page { page, page_size })
    }

    /// Items before this page.
    pub fn skip(&self) -> u64 {
        (self.page - 1).saturating_mul(self.page_size)
    }

    /// Wraps one page of `items` (already cut) with the total.
    pub fn wrap(&self, items: Vec<Value>, total: u64) -> Value {
        json!({"items": items, "page": self.page, "page_size": self.page_size, "total": total})
    }

    /// Cuts the page out of a full list.
    pub fn cut(&self, all: Vec<Value>) -> Value {
        let total = all.len() as u64;
        let items = all
            .into_iter()
            .skip(self.skip().min(usize::MAX as u64) as usize)
            .take(self.page_size as usize)
            .collect();
        self.wrap(items, total)
    }
}

/// An optional number parameter. NaN and infinities are refused the same
/// way for every parameter (Rust's float parser accepts them).
pub fn opt_num<T: std::str::FromStr>(p: &Params, name: &str) -> Result<Option<T>, ApiError> {
    match p.get(name) {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) if s.parse::<f64>().is_ok_and(|v| !v.is_finite()) => Err(ApiError::bad(format!(
            "{name}={s:?}: use a finite number (not NaN or infinity)"
        ))),
        Some(s) => s
            .parse::<T>()
            .map(Some)
            .map_err(|_| ApiError::bad(format!("{name}={s:?}: not a number"))),
    }
}
