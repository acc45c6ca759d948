//! Service endpoints that need no token (`/healthz`, `/readyz`,
//! `/metrics`, `/openapi.json`) and the problem+json fallbacks for unknown
//! routes and methods.

use super::AppState;
use crate::problem::{Code, Problem};
use crate::wire::Health;
use axum::Json;
use axum::extract::State;
use axum::http::{Method, Uri, header};
use axum::response::{IntoResponse, Response};

/// Longest piece of a request path echoed in a problem.
const MAX_ECHOED_PATH: usize = 128;

/// Liveness: the process answers.
#[utoipa::path(
    get, path = "/healthz", tag = "service", operation_id = "healthz",
    responses((status = 200, description = "the process is up", body = Health))
)]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// Readiness: the store answers, the audit appender runs and, on a shared
/// database, this node keeps up with the others' changes.
#[utoipa::path(
    get, path = "/readyz", tag = "service", operation_id = "readyz",
    responses(
        (status = 200, description = "ready to serve", body = Health),
        (status = 503, description = "the store, the audit appender or the change feed is down", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub(crate) async fn readyz(State(s): State<AppState>) -> Result<Json<Health>, Problem> {
    if s.engine.ready().await {
        Ok(Json(Health {
            status: "ready".to_owned(),
        }))
    } else {
        Err(Problem::new(
            Code::Unavailable,
            "the store, the audit appender or the feed of other nodes' changes is not available",
        ))
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    get, path = "/metrics", tag = "service", operation_id = "metrics",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 404, description = "metrics are disabled", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn metrics(State(s): State<AppState>) -> Response {
    if s.metrics.is_none() {
        return Problem::new(Code::NotFound, "metrics are disabled on this server").into_response();
    }
    let text = crate::metrics::render(&s);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// This API's OpenAPI 3.1 description.
#[utoipa::path(
    get, path = "/openapi.json", tag = "service", operation_id = "openapi",
    responses((status = 200, description = "the OpenAPI document", body = Object))
)]
pub(crate) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::json(),
    )
        .into_response()
}

/// Quotes at most [`MAX_ECHOED_PATH`] bytes of a request path.
fn echoed(uri: &Uri) -> String {
    let path = uri.path();
    let mut end = path.len().min(MAX_ECHOED_PATH);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    let cut = path.get(..end).unwrap_or_default();
    if end < path.len() {
        format!("\"{cut}…\"")
    } else {
        format!("\"{cut}\"")
    }
}

/// `404 not-found` for a path no route matches.
pub(crate) async fn no_route(uri: Uri) -> Problem {
    Problem::new(Code::NotFound, format!("no route matches {}", echoed(&uri)))
}

/// `405 method-not-allowed` for a known path with another method.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Problem {
    Problem::new(
        Code::MethodNotAllowed,
        format!("method {method} is not allowed on {}", echoed(&uri)),
    )
}
