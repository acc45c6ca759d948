//! Wire types of the OAuth endpoints: form parsing with RFC 6749's rules,
//! client authentication input, responses and the error format.
//!
//! OAuth endpoints answer errors in RFC 6749 §5.2 form
//! (`{"error", "error_description"}`), not problem+json: every OAuth
//! client library reads that shape. Responses carry `Cache-Control:
//! no-store` (RFC 6749 §5.1).

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use handoff_engine::{ClientAuth, OAuthError};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `client_assertion_type` of RFC 7523 §2.2.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest value of any one parameter, in bytes (tokens are ≤ 16 KiB).
pub const MAX_PARAM_BYTES: usize = 16 * 1024;

/// Most values of a repeatable parameter (`audience`, `resource`).
pub const MAX_REPEATED: usize = 16;

/// Parameters that may appear more than once (RFC 8693 §2.1).
const REPEATABLE: [&str; 2] = ["audience", "resource"];

/// An OAuth error, answered in RFC 6749 §5.2 form.
#[derive(Debug)]
pub struct OAuthProblem(pub OAuthError);

/// The body of an OAuth error (RFC 6749 §5.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// The error code.
    #[schema(example = "invalid_scope")]
    pub error: String,
    /// What went wrong, naming the rule.
    pub error_description: String,
}

impl From<OAuthError> for OAuthProblem {
    fn from(e: OAuthError) -> Self {
        Self(e)
    }
}

impl From<handoff_engine::EngineError> for OAuthProblem {
    fn from(e: handoff_engine::EngineError) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for OAuthProblem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let body = OAuthErrorBody {
            error: self.0.code.to_owned(),
            error_description: self.0.description,
        };
        let mut response = (status, no_store(), Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6749 §5.2: a 401 names the scheme the client may use.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"handoff\""),
            );
        }
        response
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache`.
pub fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// A parsed `application/x-www-form-urlencoded` body. `Debug` shows the
/// parameter names only: values hold secrets and tokens.
#[derive(Default)]
pub struct Form {
    single: BTreeMap<String, String>,
    repeated: BTreeMap<String, Vec<String>>,
}

impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.single.keys().chain(self.repeated.keys()))
            .finish()
    }
}

impl Form {
    /// Parses a form body: the content type must be form-urlencoded, no
    /// single-valued parameter may repeat (RFC 6749 §3.2), values are
    /// bounded; unknown parameters are kept and ignored by callers (§3.2).
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let essence = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if essence.as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let mut form = Self::default();
        for (key, value) in form_urlencoded::parse(body) {
            if value.len() > MAX_PARAM_BYTES || key.len() > 64 {
                return Err(OAuthError::invalid_request(format!(
                    "parameter \"{}\" is too long",
                    handoff_core::identity::shorten(&key)
                )));
            }
            if REPEATABLE.contains(&key.as_ref()) {
                let values = form.repeated.entry(key.into_owned()).or_default();
                if values.len() >= MAX_REPEATED {
                    return Err(OAuthError::invalid_request(format!(
                        "at most {MAX_REPEATED} audience and resource values each"
                    )));
                }
                values.push(value.into_owned());
            } else if form.single.contains_key(key.as_ref()) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter \"{}\" is repeated",
                    handoff_core::identity::shorten(&key)
                )));
            } else {
                form.single.insert(key.into_owned(), value.into_owned());
            }
        }
        Ok(form)
    }

    /// A single-valued parameter; an empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.single
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A required parameter.
    pub fn require(&self, key: &str) -> Result<&str, OAuthError> {
        self.get(key)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter \"{key}\"")))
    }

    /// Every value of a repeatable parameter.
    pub fn all(&self, key: &str) -> &[String] {
        self.repeated.get(key).map_or(&[], Vec::as_slice)
    }
}

/// Client credentials as sent: from `Authorization: Basic` or the body.
/// `Debug` shows the client id only.
pub struct ClientInput {
    client_id: Option<String>,
    secret: Option<String>,
    assertion: Option<String>,
}

impl std::fmt::Debug for ClientInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientInput")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ClientInput {
    /// Reads the client's authentication; more than one method is an error
    /// (RFC 6749 §2.3). `None` when the request carries none.
    pub fn read(headers: &HeaderMap, form: &Form) -> Result<Option<Self>, OAuthError> {
        let basic = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .map(|(_, value)| decode_basic(value.trim()))
            .transpose()?;
        let assertion = match (
            form.get("client_assertion_type"),
            form.get("client_assertion"),
        ) {
            (Some(JWT_BEARER_ASSERTION), Some(a)) => Some(a.to_owned()),
            (None, None) => None,
            (Some(t), Some(_)) if t != JWT_BEARER_ASSERTION => {
                return Err(OAuthError::invalid_request(
                    "unsupported client_assertion_type",
                ));
            }
            _ => {
                return Err(OAuthError::invalid_request(
                    "client_assertion and client_assertion_type go together",
                ));
            }
        };
        let post_secret = form.get("client_secret").map(ToOwned::to_owned);
        let methods = [basic.is_some(), post_secret.is_some(), assertion.is_some()]
            .iter()
            .filter(|m| **m)
            .count();
        if methods > 1 {
            return Err(OAuthError::invalid_request(
                "use exactly one client authentication method",
            ));
        }
        let body_id = form.get("client_id").map(ToOwned::to_owned);
        if let Some((id, secret)) = basic {
            if body_id.as_ref().is_some_and(|b| *b != id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the authorization header",
                ));
            }
            return Ok(Some(Self {
                client_id: Some(id),
                secret: Some(secret),
                assertion: None,
            }));
        }
        if methods == 0 {
            return Ok(None);
        }
        Ok(Some(Self {
            client_id: body_id,
            secret: post_secret,
            assertion,
        }))
    }

    /// The engine's view of it.
    pub fn auth(&self) -> ClientAuth<'_> {
        match (&self.assertion, &self.secret) {
            (Some(a), _) => ClientAuth::Assertion {
                client_id: self.client_id.as_deref(),
                assertion: a,
            },
            (None, secret) => ClientAuth::Secret {
                client_id: self.client_id.as_deref(),
                secret: secret.as_deref().unwrap_or_default(),
            },
        }
    }
}

/// RFC 6749 §2.3.1: `base64(urlencode(id) ":" urlencode(secret))`.
fn decode_basic(value: &str) -> Result<(String, String), OAuthError> {
    let bad = || OAuthError::invalid_client();
    if value.len() > MAX_PARAM_BYTES {
        return Err(bad());
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    // Handoff's secrets never hold ':', so the last one separates them even
    // when a client did not percent-encode an id like `agent:bot`.
    let (id, secret) = text.rsplit_once(':').ok_or_else(bad)?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad())
    };
    Ok((decode(id)?, decode(secret)?))
}

/// The form of `POST /oauth2/token` (RFC 6749 §4.4.2, RFC 8693 §2.1),
/// documented for OpenAPI; the handler reads the form itself.
#[derive(Debug, ToSchema)]
#[allow(
    dead_code,
    reason = "a schema only: the handler parses the form by RFC 6749's rules"
)]
pub struct TokenForm {
    /// The grant.
    #[schema(value_type = String, pattern = "^(client_credentials|urn:ietf:params:oauth:grant-type:token-exchange)$")]
    pub grant_type: String,
    /// Token exchange: the token of the delegation being narrowed.
    pub subject_token: Option<String>,
    /// Token exchange: its type.
    #[schema(pattern = "^urn:ietf:params:oauth:token-type:(access_token|jwt|id_token)$")]
    pub subject_token_type: Option<String>,
    /// A token whose current actor is the authenticated client.
    pub actor_token: Option<String>,
    /// Its type (with `actor_token`).
    pub actor_token_type: Option<String>,
    /// Requested scope, space-separated.
    pub scope: Option<String>,
    /// Requested audience (repeatable).
    pub audience: Option<String>,
    /// Requested resource (repeatable).
    pub resource: Option<String>,
    /// Requested token type.
    pub requested_token_type: Option<String>,
    /// Requested lifetime in seconds (Handoff's extension).
    pub requested_lifetime: Option<String>,
    /// `client_secret_post`: the client's id.
    pub client_id: Option<String>,
    /// `client_secret_post`: its credential.
    pub client_secret: Option<String>,
    /// `private_key_jwt`: `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    pub client_assertion_type: Option<String>,
    /// `private_key_jwt`: the signed assertion.
    pub client_assertion: Option<String>,
}

/// The form of `POST /oauth2/introspect` (RFC 7662 §2.1) and
/// `POST /oauth2/revoke` (RFC 7009 §2.1).
#[derive(Debug, ToSchema)]
#[allow(
    dead_code,
    reason = "a schema only: the handler parses the form by RFC 6749's rules"
)]
pub struct TokenParam {
    /// The token.
    pub token: String,
    /// A hint about its type; ignored.
    pub token_type_hint: Option<String>,
    /// `client_secret_post`: the client's id.
    pub client_id: Option<String>,
    /// `client_secret_post`: its credential.
    pub client_secret: Option<String>,
}

/// A successful token response (RFC 6749 §5.1, RFC 8693 §2.2.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The signed JWT.
    pub access_token: String,
    /// `urn:ietf:params:oauth:token-type:access_token`.
    pub issued_token_type: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// The granted scope.
    pub scope: String,
}

impl From<handoff_engine::Issued> for TokenResponse {
    fn from(i: handoff_engine::Issued) -> Self {
        Self {
            access_token: i.access_token,
            issued_token_type: i.issued_token_type.to_owned(),
            token_type: "Bearer".into(),
            expires_in: i.expires_in,
            scope: i.scope,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> Result<Form, OAuthError> {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        Form::parse(&h, body.as_bytes())
    }

    #[test]
    fn forms_refuse_repeats_except_audience_and_resource() {
        let f = form("grant_type=x&audience=a&audience=b&resource=r&scope=").unwrap();
        assert_eq!(f.get("grant_type"), Some("x"));
        assert_eq!(f.all("audience"), ["a", "b"]);
        assert_eq!(f.get("scope"), None);
        let e = form("scope=a&scope=b").unwrap_err();
        assert_eq!(e.code, "invalid_request");
        assert!(e.description.contains("repeated"));
        assert!(form(&format!("x={}", "a".repeat(MAX_PARAM_BYTES + 1))).is_err());
        assert!(Form::parse(&HeaderMap::new(), b"a=b").is_err());
    }

    #[test]
    fn debug_output_never_shows_secrets_or_tokens() {
        let f =
            form("client_id=agent:bot&client_secret=hfc_secret&subject_token=eyJtoken").unwrap();
        let shown = format!("{f:?}");
        assert!(shown.contains("client_secret"), "{shown}");
        assert!(
            !shown.contains("hfc_secret") && !shown.contains("eyJtoken"),
            "{shown}"
        );
        let input = ClientInput::read(&HeaderMap::new(), &f).unwrap().unwrap();
        let shown = format!("{input:?} {:?}", input.auth());
        assert!(shown.contains("agent:bot"), "{shown}");
        assert!(!shown.contains("hfc_secret"), "{shown}");
    }

    #[test]
    fn basic_credentials_are_url_decoded() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("agent%3Abot:hfc_x%2By");
        assert_eq!(
            decode_basic(&encoded).unwrap(),
            ("agent:bot".into(), "hfc_x+y".into())
        );
        assert!(decode_basic("!!").is_err());
    }

    #[test]
    fn two_client_authentication_methods_are_refused() {
        let mut h = HeaderMap::new();
        let basic = base64::engine::general_purpose::STANDARD.encode("agent:bot:s");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {basic}")).unwrap(),
        );
        let f = form("client_secret=s").unwrap();
        assert!(ClientInput::read(&h, &f).is_err());
        let unencoded = ClientInput::read(&h, &form("").unwrap()).unwrap().unwrap();
        assert_eq!(unencoded.client_id.as_deref(), Some("agent:bot"));
        let none = ClientInput::read(&HeaderMap::new(), &form("client_id=agent:bot").unwrap());
        assert!(none.unwrap().is_none());
    }
}
