//! The serving layer: the HTTP face of the answers. It owns the axum router
//! (`http`), the web UI's assets (`web`), the OpenAPI document (`openapi`),
//! the Prometheus metrics of the server (`prometheus`) and the catalog of
//! jobs and open attempts (`catalog`); and how that face meets the network
//! (`endpoint`: a base path, a token, the `Host` check, compression, CORS,
//! each a layer of its own module).
//!
//! May use: `time_travel`, `query`, `store` and the leaves (and the lower
//! layers through them).

pub mod auth;
pub mod base_path;
pub mod catalog;
pub mod endpoint;
pub mod host_check;
pub mod http;
pub mod openapi;
pub mod prometheus;
mod web;
