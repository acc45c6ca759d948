//! Middleware: `X-Request-Id`, per-route metrics and the request timeout.
//!
//! Plain `axum::middleware::from_fn` functions; they never look inside
//! bodies and know nothing of the API's resources.

use super::{AppState, REQUEST_ID_HEADER};
use crate::problem::{Code, Problem};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing::Instrument;

/// Longest caller-supplied request id that is echoed.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Whether a caller's request id may be echoed: 1 to 128 visible ASCII characters.
fn sane_request_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_REQUEST_ID_LEN && s.bytes().all(|b| b.is_ascii_graphic())
}

/// A fresh request id: 128 random bits in hex, or a process counter should
/// the random generator fail.
fn new_request_id() -> String {
    static FALLBACK: AtomicU64 = AtomicU64::new(0);
    match handoff_engine::keys::random_bytes::<16>() {
        Ok(bytes) => handoff_audit::hex::encode(bytes.as_ref()),
        Err(_) => format!("local-{}", FALLBACK.fetch_add(1, Ordering::Relaxed)),
    }
}

/// Echoes the caller's `X-Request-Id` if sane, else makes one; sets it on
/// the request (for handlers) and the response, and on the log span.
pub(crate) async fn request_id(mut req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| sane_request_id(s))
        .map(str::to_owned);
    let id = given.unwrap_or_else(new_request_id);
    let value = HeaderValue::from_str(&id).ok();
    if let Some(v) = &value {
        req.headers_mut().insert(REQUEST_ID_HEADER, v.clone());
    }
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    // One access-log line per request: path only (never the query or
    // headers, which may carry tokens), status and latency.
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    });
    if let Some(v) = value {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    response
}

/// A bounded method label, so made-up methods cannot grow the series count.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts requests and times them per route template (`/v1/identities/{id}`),
/// so ids never become labels.
pub(crate) async fn record_metrics(req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(req).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16().to_string();
    metrics::counter!("handoff_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("handoff_http_request_duration_seconds", "method" => method, "route" => route)
        .record(seconds);
    response
}

/// Answers `503 unavailable` when a request outlives the configured limit.
pub(crate) async fn timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_ms = limit.as_millis(), "request timed out");
            Problem::new(
                Code::Unavailable,
                format!(
                    "the request did not complete within {} ms; read the resource again before retrying a change",
                    limit.as_millis()
                ),
            )
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_echoed_only_when_sane() {
        assert!(sane_request_id("abc-123_X.y:z"));
        assert!(sane_request_id(&"a".repeat(128)));
        assert!(!sane_request_id(&"a".repeat(129)));
        assert!(!sane_request_id(""));
        assert!(!sane_request_id("a b"));
        assert!(!sane_request_id("é"));
        assert_eq!(new_request_id().len(), 32);
        assert_ne!(new_request_id(), new_request_id());
    }
}
