//! The serving layer: the HTTP face of the answers. It owns the axum router
//! (`http`), the web UI's assets (`web`), the OpenAPI document (`openapi`),
//! the Prometheus metrics of the server (`prometheus`) and the catalog of
//! jobs and open attempts (`catalog`); how that face meets the network
//! (`endpoint`: a base path, a token, the `Host` check, compression, CORS,
//! each a layer of its own module); and the bounds on what clients can
//! make a server hold (`bounds`: connections in `listener`, `guard`,
//! `head_errors`; `as_of` work in `as_of_pool`; streams in `stream_hub`).
//!
//! May use: `time_travel`, `query`, `store` and the leaves (and the lower
//! layers through them).

pub mod as_of_pool;
pub mod auth;
pub mod base_path;
pub mod bounds;
pub mod catalog;
pub mod endpoint;
mod guard;
mod head_errors;
pub mod host_check;
pub mod http;
pub mod listener;
pub mod openapi;
pub mod prometheus;
pub mod stream_hub;
mod web;
