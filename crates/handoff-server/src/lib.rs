//! Handoff's HTTP server: the admin API under `/v1/`, service endpoints
//! (`/healthz`, `/readyz`, `/metrics`, `/openapi.json`), RFC 9457 problem
//! responses, configuration, TLS and graceful shutdown.
//!
//! Handlers are thin: parse the wire type, call the engine, map the result.
//! No business rules live here.

pub mod api;
pub mod authzen_wire;
pub mod config;
pub mod delegation_wire;
pub mod metrics;
pub mod oauth_wire;
pub mod openapi;
pub mod problem;
pub mod schema;
pub mod serve;
pub mod tls;
pub mod wire;

pub use api::{AppState, app};
pub use config::{Config, ConfigError};
pub use serve::{ServeError, run};
