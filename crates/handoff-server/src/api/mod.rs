//! The HTTP surface: [`app`] builds the router with every route of
//! docs/api.md, the service endpoints and the middleware stack.
//!
//! Handlers are thin (parse the wire type, call the engine, map the result)
//! and live in one module per resource. Extractors turn every rejection into
//! problem+json; middleware adds `X-Request-Id`, per-route metrics and a
//! per-request timeout. Listening, TLS and shutdown are `serve`'s business.

pub(crate) mod audit;
pub(crate) mod authzen;
pub(crate) mod client_keys;
pub(crate) mod credentials;
pub(crate) mod delegations;
mod extract;
pub(crate) mod identities;
mod middleware;
pub(crate) mod oauth;
pub(crate) mod policies;
pub(crate) mod service;
pub(crate) mod tokens;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use handoff_engine::Engine;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::time::Duration;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a request may take before it is answered with `503 unavailable`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The header that correlates a request with its log lines.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What every handler and middleware shares. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The engine that owns every use case.
    pub engine: Engine,
    /// The Prometheus recorder; `None` disables `/metrics` (404).
    pub metrics: Option<crate::metrics::Handle>,
    /// Per-request time limit.
    pub request_timeout: Duration,
    /// When true, the AuthZEN endpoints answer requests without a token
    /// (as `anonymous`); a token that is sent must still be valid.
    pub pdp_open: bool,
    /// The base URL the PDP metadata advertises (`https://pdp.example`);
    /// `None` builds it from each request's scheme and `Host`.
    pub public_url: Option<String>,
    /// Whether this server terminates TLS itself: the scheme the PDP
    /// metadata assumes when a request does not say (`X-Forwarded-Proto`).
    pub tls: bool,
}

impl AppState {
    /// State over `engine`, without metrics, with the default timeout.
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            metrics: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            pdp_open: false,
            public_url: None,
            tls: false,
        }
    }

    /// Records that connections arrive over TLS.
    #[must_use]
    pub fn with_tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Leaves the AuthZEN endpoints open to callers without a token.
    #[must_use]
    pub fn with_pdp_open(mut self, open: bool) -> Self {
        self.pdp_open = open;
        self
    }

    /// Sets the base URL the PDP metadata advertises.
    #[must_use]
    pub fn with_public_url(mut self, url: Option<String>) -> Self {
        self.public_url = url;
        self
    }

    /// Enables `/metrics` with `handle`.
    #[must_use]
    pub fn with_metrics(mut self, handle: crate::metrics::Handle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// Sets the per-request time limit.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}

/// The whole application: `/v1/` admin API, service endpoints, problem+json
/// fallbacks for unknown routes (404) and methods (405), and middleware.
pub fn app(state: AppState) -> Router {
    let v1 = Router::new()
        .route(
            "/v1/identities",
            post(identities::create).get(identities::list),
        )
        .route(
            "/v1/identities/{id}",
            get(identities::show).patch(identities::update),
        )
        .route("/v1/identities/{id}/status", post(identities::set_status))
        .route(
            "/v1/identities/{id}/credentials",
            post(credentials::issue).get(credentials::list),
        )
        .route("/v1/credentials/{credential_id}", get(credentials::show))
        .route(
            "/v1/credentials/{credential_id}/revoke",
            post(credentials::revoke),
        )
        .route("/v1/admin-tokens", post(tokens::create).get(tokens::list))
        .route("/v1/admin-tokens/{token_id}", get(tokens::show))
        .route("/v1/admin-tokens/{token_id}/revoke", post(tokens::revoke))
        .route("/v1/whoami", get(tokens::whoami))
        .route("/v1/audit", get(audit::list))
        .route("/v1/audit/verify", get(audit::verify))
        .route(
            "/v1/policies",
            put(policies::push)
                .layer(DefaultBodyLimit::max(crate::wire::MAX_POLICY_BODY_BYTES))
                .get(policies::list),
        )
        .route("/v1/policies/{version}", get(policies::show))
        .route("/v1/policies/{version}/activate", post(policies::activate))
        .route(
            "/v1/identities/{id}/keys",
            post(client_keys::add).get(client_keys::list),
        )
        .route(
            "/v1/identities/{id}/keys/{kid}/revoke",
            post(client_keys::revoke),
        )
        .route("/v1/delegations", get(delegations::list))
        .route("/v1/delegations/{id}", get(delegations::show))
        .route("/v1/delegations/{id}/revoke", post(delegations::revoke))
        .route("/v1/lineages/{txn}", get(delegations::lineage))
        .route("/v1/dev/human-tokens", post(delegations::mint_human))
        .route("/v1/keys", get(delegations::keys))
        .route("/v1/keys/rotate", post(delegations::rotate));
    // OAuth 2.0: RFC 6749/8693 token, RFC 7662, RFC 7009, RFC 8414, JWKS.
    let oauth = Router::new()
        .route("/oauth2/token", post(oauth::token))
        .route("/oauth2/introspect", post(oauth::introspect))
        .route("/oauth2/revoke", post(oauth::revoke))
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata),
        )
        .route("/.well-known/jwks.json", get(oauth::jwks));
    // AuthZEN Authorization API 1.0 §11 (transport): HTTPS POST of JSON.
    let authzen = Router::new()
        .route("/access/v1/evaluation", post(authzen::evaluation))
        .route("/access/v1/evaluations", post(authzen::evaluations))
        .route("/access/v1/search/subject", post(authzen::search_subject))
        .route("/access/v1/search/resource", post(authzen::search_resource))
        .route("/access/v1/search/action", post(authzen::search_action))
        .route(
            "/.well-known/authzen-configuration",
            get(authzen::configuration),
        );
    Router::new()
        .merge(v1)
        .merge(authzen)
        .merge(oauth)
        .route("/healthz", get(service::healthz))
        .route("/readyz", get(service::readyz))
        .route("/metrics", get(service::metrics))
        .route("/openapi.json", get(service::openapi))
        .fallback(service::no_route)
        .method_not_allowed_fallback(service::method_not_allowed)
        // Layers run outside-in from the last one added.
        .layer(from_fn_with_state(state.clone(), middleware::timeout))
        .layer(from_fn(middleware::record_metrics))
        .layer(from_fn(middleware::request_id))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Characters escaped in a path segment: everything but RFC 3986 unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `prefix/<id>` with `id` percent-encoded, for `Location` headers.
fn location(prefix: &str, id: &str) -> String {
    format!("{prefix}/{}", utf8_percent_encode(id, SEGMENT))
}

/// A `201 Created` with a `Location` header and a JSON body.
fn created(location: String, body: impl serde::Serialize) -> Response {
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_percent_encode_ids() {
        assert_eq!(
            location("/v1/identities", "human:alice@example.com"),
            "/v1/identities/human%3Aalice%40example.com"
        );
        assert_eq!(
            location("/v1/identities", "service:a.b_c-d+e"),
            "/v1/identities/service%3Aa.b_c-d%2Be"
        );
    }
}
