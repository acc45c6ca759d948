//! Extractors whose every rejection is problem+json: the bearer token and
//! the admin it authenticates, JSON bodies, queries and path ids.
//!
//! They parse and authenticate; deciding what a caller may do is the
//! engine's job (`Admin::require_write`), called here only so that a
//! read-only token learns it is refused before its body is examined.

use super::AppState;
use crate::problem::{Code, Problem};
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Json, Path, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use handoff_core::{AdminTokenId, CredentialId, IdentityId, Invalid};
use handoff_engine::{Actor, Admin};
use serde::de::DeserializeOwned;
use serde_json::Value;

const MISSING_BEARER: &str =
    "missing or malformed authorization: send \"Authorization: Bearer <token>\"";

/// The secret of an `Authorization: Bearer …` header (RFC 6750 §2.1).
pub(crate) struct Bearer(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Problem::unauthenticated(MISSING_BEARER))?;
        match value.split_once(' ') {
            // The scheme is case-insensitive (RFC 9110 §11.1).
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
            {
                Ok(Self(token.trim().to_owned()))
            }
            _ => Err(Problem::unauthenticated(MISSING_BEARER)),
        }
    }
}

/// A caller holding any valid admin token (admin or auditor).
pub(crate) struct Reader(pub(crate) Admin);

impl FromRequestParts<AppState> for Reader {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let Bearer(secret) = Bearer::from_request_parts(parts, state).await?;
        Ok(Self(state.engine.authenticate_admin(&secret).await?))
    }
}

/// A caller whose admin token may change state.
pub(crate) struct Writer(pub(crate) Admin);

impl FromRequestParts<AppState> for Writer {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let Reader(admin) = Reader::from_request_parts(parts, state).await?;
        admin.require_write()?;
        Ok(Self(admin))
    }
}

/// A caller of the AuthZEN API: a `pdp` or `admin` token or a credential;
/// nobody at all when the state leaves the PDP open and no
/// `Authorization` header is sent (a present but invalid one is still 401).
pub(crate) struct Evaluator(pub(crate) Actor);

impl FromRequestParts<AppState> for Evaluator {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        if state.pdp_open && !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(Self(Actor::Anonymous));
        }
        let Bearer(secret) = Bearer::from_request_parts(parts, state).await?;
        Ok(Self(state.engine.authenticate_evaluator(&secret).await?))
    }
}

/// The header that asks for reasons and errors in AuthZEN decisions.
pub(crate) const EXPLAIN_HEADER: &str = "x-handoff-explain";

/// Whether the caller sent `X-Handoff-Explain: true`; 400 for a value
/// other than `true` or `false`.
pub(crate) struct Explain(pub(crate) bool);

impl<S: Send + Sync> FromRequestParts<S> for Explain {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        match parts.headers.get(EXPLAIN_HEADER).map(|v| v.as_bytes()) {
            None | Some(b"false") => Ok(Self(false)),
            Some(b"true") => Ok(Self(true)),
            Some(_) => Err(Problem::new(
                Code::InvalidRequest,
                "x-handoff-explain must be \"true\" or \"false\"",
            )),
        }
    }
}

/// An AuthZEN JSON body: every way it can be unreadable (another content
/// type, empty, malformed, not an object, missing or mistyped members) is a
/// 400, as AuthZEN 1.0 §10 has it; only an oversized body keeps its 413.
/// Unknown members are ignored.
pub(crate) struct AuthzenJson<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AuthzenJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(req.headers()) {
            return Err(Problem::new(
                Code::InvalidRequest,
                "the request body must be json with content-type application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| Problem::from(JsonRejection::from(e)))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Problem::new(
                Code::InvalidRequest,
                "the request body is empty",
            ));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Problem::new(Code::InvalidRequest, format!("malformed json: {e}")))?;
        let Value::Object(object) = value else {
            return Err(Problem::new(
                Code::InvalidRequest,
                "the request body must be a json object",
            ));
        };
        serde_json::from_value(Value::Object(object))
            .map(Self)
            .map_err(|e| Problem::new(Code::InvalidRequest, format!("invalid request body: {e}")))
    }
}

/// A JSON object body; 400 for bad JSON, a non-object or bad fields, 413
/// when too large, 415 for another content type.
pub(crate) struct JsonBody<T>(pub(crate) T);

/// Whether the request says its body is JSON (`application/json` or `+json`).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(req.headers()) {
            return Err(Problem::unsupported_media_type());
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| Problem::from(JsonRejection::from(e)))?;
        // Serde would also read a struct from an array; the API takes objects only.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(Problem::new(
                Code::InvalidRequest,
                "the request body must be a json object",
            ));
        }
        Json::<T>::from_bytes(&bytes)
            .map(|Json(v)| Self(v))
            .map_err(Problem::from)
    }
}

/// A query string; 400 for unknown parameters or wrong types.
pub(crate) struct QueryParams<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(Problem::from)
    }
}

/// An id that can appear as the last parameter of a route.
pub(crate) trait PathParam: Sized {
    /// Validates the percent-decoded segment.
    fn parse_segment(s: &str) -> Result<Self, Invalid>;
}

impl PathParam for IdentityId {
    fn parse_segment(s: &str) -> Result<Self, Invalid> {
        Self::parse(s)
    }
}

impl PathParam for CredentialId {
    fn parse_segment(s: &str) -> Result<Self, Invalid> {
        Self::parse(s)
    }
}

impl PathParam for crate::wire::PolicyVersionNumber {
    fn parse_segment(s: &str) -> Result<Self, Invalid> {
        Self::parse(s)
    }
}

impl PathParam for handoff_core::DelegationId {
    fn parse_segment(s: &str) -> Result<Self, Invalid> {
        Self::parse(s)
    }
}

impl PathParam for AdminTokenId {
    fn parse_segment(s: &str) -> Result<Self, Invalid> {
        Self::parse(s)
    }
}

/// The route's single path parameter, percent-decoded by axum and
/// validated with the core parser; 400 when invalid.
pub(crate) struct PathId<T>(pub(crate) T);

impl<T: PathParam, S: Send + Sync> FromRequestParts<S> for PathId<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await?;
        Ok(Self(T::parse_segment(&raw)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    #[test]
    fn json_media_types_are_recognised() {
        let with = |ct: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/jsonx"));
        assert!(!with("text/json"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
