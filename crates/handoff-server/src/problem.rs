//! RFC 9457 problem details: the one error body of the admin API, and the
//! one mapping from [`EngineError`] (and from axum's extractor rejections)
//! to HTTP.
//!
//! Clients get a stable `type` (`urn:handoff:problem:<code>`) and a safe
//! `detail`; storage and IO failures are logged here and reach the client
//! only as a generic `internal` problem. This module decides nothing about
//! business rules.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use handoff_core::Invalid;
use handoff_engine::EngineError;
use serde::{Deserialize, Serialize};

/// The media type of every error body (RFC 9457 §3).
pub const CONTENT_TYPE: &str = "application/problem+json";

/// Prefix of every problem `type`.
pub const TYPE_PREFIX: &str = "urn:handoff:problem:";

/// The stable machine codes of docs/api.md, one per HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 400: malformed JSON, wrong types, unknown fields, invalid ids or values.
    InvalidRequest,
    /// 401: missing or invalid bearer token.
    Unauthenticated,
    /// 403: the token's role may not do this.
    Forbidden,
    /// 404: unknown identity, credential, token or route.
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 409: duplicate, invalid transition, already revoked, state forbids it.
    Conflict,
    /// 413: body over the limit.
    PayloadTooLarge,
    /// 415: body without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// 422: ownership rule broken.
    Unprocessable,
    /// 503: the audit log cannot be written, or the request timed out.
    Unavailable,
    /// 500: anything else.
    Internal,
}

impl Code {
    /// Every code, for tests and documentation.
    pub const ALL: [Self; 11] = [
        Self::InvalidRequest,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Conflict,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::Unprocessable,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The code as it appears at the end of the problem `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid-request",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::Unprocessable => "unprocessable",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status of this code.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short, fixed summary of the problem type (RFC 9457 §3.1.3).
    pub fn title(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid request",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not found",
            Self::MethodNotAllowed => "method not allowed",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload too large",
            Self::UnsupportedMediaType => "unsupported media type",
            Self::Unprocessable => "unprocessable",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal error",
        }
    }
}

/// What a client is told when the server itself failed.
const INTERNAL_DETAIL: &str =
    "the server failed to handle the request; the cause is in the server log";

/// A problem details document (RFC 9457), as sent to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "urn:handoff:problem:not-found",
    "title": "not found",
    "status": 404,
    "detail": "identity \"agent:x\" does not exist"
}))]
pub struct Problem {
    /// `urn:handoff:problem:<code>`; stable, for machines.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence; safe to show.
    pub detail: String,
    /// A URI reference for this occurrence, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Extension member: every problem found in a refused policy pack,
    /// each `{file, line, column, message}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<serde_json::Value>>,
}

impl Problem {
    /// A problem of `code` with a client-safe `detail`.
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("{TYPE_PREFIX}{}", code.as_str()),
            title: code.title().to_owned(),
            status: code.status().as_u16(),
            detail: detail.into(),
            instance: None,
            errors: None,
        }
    }

    /// Sets the `instance` member.
    #[must_use]
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// The code at the end of `type`.
    pub fn code(&self) -> &str {
        self.kind.strip_prefix(TYPE_PREFIX).unwrap_or(&self.kind)
    }

    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// A 401 for a missing or malformed `Authorization` header.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, detail)
    }

    /// A 415 for a body that is not declared as JSON.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            Code::UnsupportedMediaType,
            "the request body must be json with content-type application/json",
        )
    }

    /// A 500 whose real cause goes to the log only.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(Code::Internal, INTERNAL_DETAIL)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = match serde_json::to_vec(&self) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "problem document could not be serialized");
                return status.into_response();
            }
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        // RFC 6750 §3: a 401 names the scheme the client should use.
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// THE mapping from engine errors to HTTP (see docs/api.md, Errors).
impl From<EngineError> for Problem {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Invalid(e) => Self::new(Code::InvalidRequest, e.message),
            EngineError::NotFound(m) => Self::new(Code::NotFound, m),
            EngineError::Conflict(m) => Self::new(Code::Conflict, m),
            EngineError::Transition(e) => Self::new(Code::Conflict, e.to_string()),
            EngineError::Owner(e) => Self::new(Code::Unprocessable, e.to_string()),
            EngineError::InvalidPack(diagnostics) => {
                let mut p = Self::new(
                    Code::Unprocessable,
                    format!(
                        "the policy pack is invalid: {} problem(s); nothing was changed",
                        diagnostics.len()
                    ),
                );
                p.errors = Some(
                    diagnostics
                        .iter()
                        .filter_map(|d| serde_json::to_value(d).ok())
                        .collect(),
                );
                p
            }
            EngineError::Unauthenticated(m) => Self::new(Code::Unauthenticated, m),
            EngineError::Forbidden(m) => Self::new(Code::Forbidden, m),
            e @ EngineError::AuditUnavailable => Self::new(Code::Unavailable, e.to_string()),
            EngineError::Unavailable(m) => {
                tracing::error!(error = %m, "storage unavailable");
                Self::new(
                    Code::Unavailable,
                    "the database is unavailable; retry later",
                )
            }
            e @ (EngineError::Store(_) | EngineError::Io(_)) => Self::internal(&e),
        }
    }
}

impl From<Invalid> for Problem {
    fn from(e: Invalid) -> Self {
        EngineError::Invalid(e).into()
    }
}

/// Body rejections: 413 and 415 keep their status, everything else is a 400.
impl From<JsonRejection> for Problem {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                Code::PayloadTooLarge,
                format!(
                    "the request body is larger than this route accepts ({} bytes; {} for policy packs)",
                    crate::api::MAX_BODY_BYTES,
                    crate::wire::MAX_POLICY_BODY_BYTES
                ),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::unsupported_media_type(),
            _ => match r {
                JsonRejection::JsonDataError(e) => Self::new(
                    Code::InvalidRequest,
                    format!("invalid request body: {}", innermost(&e)),
                ),
                JsonRejection::JsonSyntaxError(e) => Self::new(
                    Code::InvalidRequest,
                    format!("malformed json: {}", innermost(&e)),
                ),
                other => Self::new(
                    Code::InvalidRequest,
                    format!("the request body could not be read: {}", innermost(&other)),
                ),
            },
        }
    }
}

impl From<QueryRejection> for Problem {
    fn from(r: QueryRejection) -> Self {
        Self::new(
            Code::InvalidRequest,
            format!("invalid query: {}", innermost(&r)),
        )
    }
}

impl From<PathRejection> for Problem {
    fn from(r: PathRejection) -> Self {
        match r {
            // Every path parameter is a string, so decoding is what failed.
            PathRejection::FailedToDeserializePathParams(_) => Self::new(
                Code::InvalidRequest,
                "the path parameter is not valid percent-encoded utf-8",
            ),
            other => Self::internal(&other.body_text()),
        }
    }
}

/// The deepest cause of an extractor rejection: serde's own message, without
/// axum's capitalised preamble.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use handoff_core::identity::OwnerError;
    use handoff_core::status::TransitionError;
    use handoff_core::{IdentityId, Status};

    fn id() -> IdentityId {
        IdentityId::parse("human:alice").unwrap()
    }

    #[test]
    fn engine_errors_map_to_the_documented_table() {
        let table: Vec<(EngineError, u16, &str)> = vec![
            (Invalid::new("id", "bad id").into(), 400, "invalid-request"),
            (EngineError::NotFound("gone".into()), 404, "not-found"),
            (EngineError::Conflict("dup".into()), 409, "conflict"),
            (
                TransitionError {
                    from: Status::Disabled,
                    to: Status::Active,
                }
                .into(),
                409,
                "conflict",
            ),
            (OwnerError::Missing.into(), 422, "unprocessable"),
            (OwnerError::NotAllowed.into(), 422, "unprocessable"),
            (OwnerError::NotHuman(id()).into(), 422, "unprocessable"),
            (OwnerError::Unknown(id()).into(), 422, "unprocessable"),
            (OwnerError::Inactive(id()).into(), 422, "unprocessable"),
            (EngineError::Unauthenticated("no"), 401, "unauthenticated"),
            (EngineError::Forbidden("no"), 403, "forbidden"),
            (EngineError::AuditUnavailable, 503, "unavailable"),
            (
                EngineError::Unavailable("pool closed".into()),
                503,
                "unavailable",
            ),
            (EngineError::Store("disk on fire".into()), 500, "internal"),
            (
                EngineError::Io("/secret/path: denied".into()),
                500,
                "internal",
            ),
        ];
        for (error, status, code) in table {
            let shown = error.to_string();
            let p = Problem::from(error);
            assert_eq!(p.status, status, "{shown}");
            assert_eq!(p.kind, format!("urn:handoff:problem:{code}"), "{shown}");
            assert_eq!(p.code(), code);
            assert_eq!(
                p.title,
                Code::ALL
                    .iter()
                    .find(|c| c.as_str() == code)
                    .unwrap()
                    .title()
            );
        }
    }

    #[test]
    fn client_safe_messages_are_passed_through() {
        let p = Problem::from(EngineError::NotFound(
            "identity \"agent:x\" does not exist".into(),
        ));
        assert_eq!(p.detail, "identity \"agent:x\" does not exist");
        let p = Problem::from(EngineError::Owner(OwnerError::Unknown(id())));
        assert_eq!(p.detail, "owner \"human:alice\" does not exist");
    }

    #[test]
    fn internal_details_never_reach_the_client() {
        for e in [
            EngineError::Store("database error: /var/lib/handoff/handoff.db locked".into()),
            EngineError::Io("/etc/keys/hmac.key: permission denied".into()),
        ] {
            let p = Problem::from(e);
            assert_eq!(p.detail, INTERNAL_DETAIL);
            assert!(!p.detail.contains('/'));
        }
    }

    #[test]
    fn codes_and_statuses_are_consistent() {
        for code in Code::ALL {
            let p = Problem::new(code, "x");
            assert_eq!(p.status_code(), code.status());
            assert_eq!(p.code(), code.as_str());
            assert!(p.title.chars().all(|c| !c.is_uppercase()));
        }
    }

    #[test]
    fn responses_carry_the_problem_media_type_and_bearer_challenge() {
        let r = Problem::unauthenticated("missing token").into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let r = Problem::new(Code::Conflict, "dup").into_response();
        assert_eq!(r.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn serialized_form_matches_rfc_9457_members() {
        let p = Problem::new(Code::NotFound, "gone").with_instance("/v1/x");
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "type": "urn:handoff:problem:not-found",
                "title": "not found",
                "status": 404,
                "detail": "gone",
                "instance": "/v1/x"
            })
        );
        let v = serde_json::to_value(Problem::new(Code::Internal, "x")).unwrap();
        assert!(v.get("instance").is_none());
    }
}
