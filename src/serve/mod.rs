//! The serving layer: the HTTP face of the answers. It owns the axum router
//! (`http`), the web UI's assets (`web`), the OpenAPI document (`openapi`),
//! the Prometheus metrics of the server (`prometheus`) and the catalog of
//! jobs and open attempts (`catalog`).
//!
//! May use: `time_travel`, `query`, `store` and the leaves (and the lower
//! layers through them).

pub mod catalog;
pub mod http;
pub mod openapi;
pub mod prometheus;
mod web;
