//! The HTTP side of the CLI: one client per invocation that knows the
//! server address and the bearer token, builds URLs with percent-encoded
//! path segments, and turns RFC 9457 problem answers and transport failures
//! into one-line errors. The OAuth token endpoint is the exception to the
//! bearer token: its caller authenticates as an agent or service with a
//! client secret, and its errors are RFC 6749 §5.2 `{"error", ...}` bodies.
//!
//! It does not know any endpoint's meaning; the command modules do.

use crate::Global;
use anyhow::{Context, anyhow, bail};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::CONTENT_TYPE;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;
use std::error::Error as StdError;
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// Where `handoff serve` writes the bootstrap admin token by default.
const DEFAULT_TOKEN_FILE: &str = "handoff-data/admin-token";

/// Everything but RFC 3986 unreserved characters is encoded in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What `application/x-www-form-urlencoded` leaves as is (WHATWG URL
/// standard's urlencoded serializer); a space becomes `%20`, which every
/// form decoder reads as a space.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// The media type of an OAuth request body.
const FORM_MEDIA_TYPE: &str = "application/x-www-form-urlencoded";

/// How long to wait for a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for one whole answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the token came from, to explain a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenSource {
    /// `--token` or `HANDOFF_TOKEN`.
    Given,
    /// `./handoff-data/admin-token`.
    File,
    /// No token at all.
    Missing,
}

/// A client of one Handoff server.
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    // Never printed: no Debug, no Display.
    token: Option<String>,
    token_source: TokenSource,
}

/// An error answer from the server.
#[derive(Debug)]
pub(crate) struct ApiError {
    /// The HTTP status.
    pub(crate) status: StatusCode,
    /// The problem's `detail` (or `title`, or the status text).
    pub(crate) detail: String,
    /// A hint for the user, if there is an obvious next step.
    pub(crate) hint: Option<&'static str>,
    /// The problem's `errors` member (a refused policy pack), each as
    /// `file:line:column: message`.
    pub(crate) errors: Vec<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.detail, self.status.as_u16())?;
        if let Some(hint) = self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl StdError for ApiError {}

/// An OAuth error answer (RFC 6749 §5.2, RFC 8693 §2.2.2) from the token
/// endpoint.
#[derive(Debug)]
pub(crate) struct OAuthError {
    /// The registered error code, e.g. `invalid_scope`.
    pub(crate) error: String,
    /// The server's `error_description`, if any.
    pub(crate) description: Option<String>,
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            Some(description) => write!(f, "{}: {description}", self.error),
            None => write!(f, "{}", self.error),
        }
    }
}

impl StdError for OAuthError {}

impl Client {
    /// A client for the server and token named by the global options.
    pub(crate) fn new(global: &Global) -> anyhow::Result<Self> {
        let base = normalize_addr(&global.addr)?;
        let (token, token_source) = match global.token.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => (Some(t.to_owned()), TokenSource::Given),
            _ => match read_default_token(Path::new(DEFAULT_TOKEN_FILE))? {
                Some(t) => (Some(t), TokenSource::File),
                None => (None, TokenSource::Missing),
            },
        };
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("handoff-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT);
        if let Some(path) = &global.ca_cert {
            let pem = std::fs::read(path).with_context(|| {
                format!("cannot read the CA certificate \"{}\"", path.display())
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("\"{}\" holds no PEM certificate", path.display()))?;
            if certs.is_empty() {
                bail!("\"{}\" holds no PEM certificate", path.display());
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().context("cannot set up the HTTP client")?;
        Ok(Self {
            http,
            base,
            token,
            token_source,
        })
    }

    /// `GET path?query`.
    pub(crate) async fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        self.send(self.http.get(self.url(path)).query(query)).await
    }

    /// `POST path` with a JSON body, or none.
    pub(crate) async fn post(&self, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let req = self.http.post(self.url(path));
        let req = match body {
            Some(body) => req.json(body),
            None => req,
        };
        self.send(req).await
    }

    /// `PUT path` with a JSON body; the answer with its status (a PUT
    /// tells "created" from "unchanged" by 201 and 200).
    pub(crate) async fn put(
        &self,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.send_with_status(self.http.put(self.url(path)).json(body))
            .await
    }

    /// `PATCH path` with a JSON body.
    pub(crate) async fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.patch(self.url(path)).json(body)).await
    }

    /// `POST /oauth2/token` with the parameters `form`, authenticated as the
    /// client `client_id` with `client_secret` (HTTP Basic, RFC 6749
    /// §2.3.1: both form-urlencoded first). The admin token is not sent.
    /// An OAuth error answer becomes an [`OAuthError`].
    pub(crate) async fn token(
        &self,
        client_id: &str,
        client_secret: &str,
        form: &[(&str, &str)],
    ) -> anyhow::Result<Value> {
        let req = self
            .http
            .post(self.url("/oauth2/token"))
            .basic_auth(form_encode(client_id), Some(form_encode(client_secret)))
            .header(CONTENT_TYPE, FORM_MEDIA_TYPE)
            .body(form_body(form));
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
        if status.is_success() {
            return serde_json::from_slice(&body).with_context(|| {
                format!("the server at {} answered with invalid JSON", self.base)
            });
        }
        match oauth_error(&body) {
            Some(e) => Err(e.into()),
            None => Err(self.problem(status, &body).into()),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, req: RequestBuilder) -> anyhow::Result<Value> {
        Ok(self.send_with_status(req).await?.1)
    }

    async fn send_with_status(&self, req: RequestBuilder) -> anyhow::Result<(StatusCode, Value)> {
        let req = match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        };
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| self.transport_error(&e))?;
        if status.is_success() {
            if body.is_empty() {
                return Ok((status, Value::Null));
            }
            let value = serde_json::from_slice(&body).with_context(|| {
                format!("the server at {} answered with invalid JSON", self.base)
            })?;
            return Ok((status, value));
        }
        Err(self.problem(status, &body).into())
    }

    /// Reads an error answer (problem+json, or anything else).
    fn problem(&self, status: StatusCode, body: &[u8]) -> ApiError {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let field = |name: &str| {
            parsed
                .as_ref()
                .and_then(|v| v.get(name))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let detail = field("detail")
            .or_else(|| field("title"))
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_lowercase());
        let hint = match (status, self.token_source) {
            (StatusCode::UNAUTHORIZED, TokenSource::Missing) => Some(
                "no token given: pass --token, set HANDOFF_TOKEN, or run where \
                 ./handoff-data/admin-token exists",
            ),
            _ => None,
        };
        let errors = parsed
            .as_ref()
            .and_then(|v| v.get("errors"))
            .and_then(Value::as_array)
            .map(|list| list.iter().map(diagnostic_line).collect())
            .unwrap_or_default();
        ApiError {
            status,
            detail,
            hint,
            errors,
        }
    }

    fn transport_error(&self, e: &reqwest::Error) -> anyhow::Error {
        let cause = root_cause(e);
        if e.is_connect() {
            let mut msg = format!("could not connect to {}: {cause}", self.base);
            if cause.contains("certificate") || cause.contains("Certificate") {
                msg.push_str(
                    "\nhint: pass --ca-cert FILE to trust the server's certificate authority",
                );
            } else {
                msg.push_str("\nhint: is the server running? start one with `handoff serve`");
            }
            anyhow!(msg)
        } else if e.is_timeout() {
            anyhow!("the server at {} did not answer in time", self.base)
        } else {
            anyhow!("request to {} failed: {cause}", self.base)
        }
    }
}

/// An RFC 6749 §5.2 error body (400 or 401), if `body` is one.
fn oauth_error(body: &[u8]) -> Option<OAuthError> {
    let parsed: Value = serde_json::from_slice(body).ok()?;
    let error = parsed.get("error").and_then(Value::as_str)?;
    if error.is_empty() {
        return None;
    }
    let description = parsed
        .get("error_description")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    Some(OAuthError {
        error: error.to_owned(),
        description,
    })
}

/// One name or value, `application/x-www-form-urlencoded`.
fn form_encode(text: &str) -> String {
    utf8_percent_encode(text, FORM).to_string()
}

/// An `application/x-www-form-urlencoded` body of `pairs`, in order.
fn form_body(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{}={}", form_encode(name), form_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One entry of a problem's `errors` member as `file:line:column: message`
/// (or its JSON text when it has another shape).
fn diagnostic_line(entry: &Value) -> String {
    let text = |key: &str| entry.get(key).and_then(Value::as_str);
    let number = |key: &str| entry.get(key).and_then(Value::as_u64);
    match (
        text("file"),
        number("line"),
        number("column"),
        text("message"),
    ) {
        (Some(file), Some(line), Some(column), Some(message)) => {
            format!("{file}:{line}:{column}: {message}")
        }
        _ => entry.to_string(),
    }
}

/// The innermost error message of a chain.
fn root_cause(e: &(dyn StdError + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// `host:port` becomes `http://host:port`; a trailing `/` is dropped.
fn normalize_addr(addr: &str) -> anyhow::Result<String> {
    let addr = addr.trim().trim_end_matches('/');
    if addr.is_empty() {
        bail!("the server address is empty");
    }
    let full = if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_owned()
    } else if addr.contains("://") {
        bail!("the server address \"{addr}\" must start with http:// or https://");
    } else {
        format!("http://{addr}")
    };
    reqwest::Url::parse(&full).with_context(|| format!("invalid server address \"{addr}\""))?;
    Ok(full)
}

/// Reads the bootstrap token file if it exists.
fn read_default_token(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim();
            Ok((!token.is_empty()).then(|| token.to_owned()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!(
            "cannot read the admin token file \"{}\": {e}",
            path.display()
        )),
    }
}

/// One percent-encoded path segment (an identity, credential or token id).
pub(crate) fn segment(id: &str) -> anyhow::Result<String> {
    // "." and ".." would be resolved as dot-segments by the URL parser, even
    // encoded, and address another resource; no valid id looks like that.
    if id.is_empty() || id == "." || id == ".." {
        bail!("invalid id \"{id}\"");
    }
    Ok(utf8_percent_encode(id, SEGMENT).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_encoded_as_one_segment() {
        assert_eq!(
            segment("human:alice@example.com").unwrap(),
            "human%3Aalice%40example.com"
        );
        assert_eq!(
            segment("agent:a/b?c#d e").unwrap(),
            "agent%3Aa%2Fb%3Fc%23d%20e"
        );
        assert_eq!(segment("cred_AZaz09-._~").unwrap(), "cred_AZaz09-._~");
        assert_eq!(segment("agent:ü").unwrap(), "agent%3A%C3%BC");
        assert!(segment("..").is_err());
        assert!(segment("").is_err());
    }

    #[test]
    fn addresses_are_normalized() {
        assert_eq!(
            normalize_addr("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_addr("localhost:8080").unwrap(),
            "http://localhost:8080"
        );
        assert_eq!(
            normalize_addr("https://h.example").unwrap(),
            "https://h.example"
        );
        assert!(normalize_addr("ftp://h.example").is_err());
        assert!(normalize_addr("").is_err());
    }

    #[test]
    fn the_default_token_file_is_trimmed_and_optional() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-token");
        assert_eq!(read_default_token(&path).unwrap(), None);
        std::fs::write(&path, "hfa_secret\n").unwrap();
        assert_eq!(
            read_default_token(&path).unwrap().as_deref(),
            Some("hfa_secret")
        );
        std::fs::write(&path, "  \n").unwrap();
        assert_eq!(read_default_token(&path).unwrap(), None);
    }

    #[test]
    fn forms_are_urlencoded() {
        assert_eq!(form_encode("agent:bot"), "agent%3Abot");
        assert_eq!(
            form_body(&[
                ("scope", "read write"),
                ("audience", "https://a.example/x?y=1&z")
            ]),
            "scope=read%20write&audience=https%3A%2F%2Fa.example%2Fx%3Fy%3D1%26z"
        );
        assert_eq!(form_encode("hfc_AZaz09-._*"), "hfc_AZaz09-._*");
        assert_eq!(form_body(&[]), "");
    }

    #[test]
    fn oauth_errors_are_read_from_their_body() {
        let body = br#"{"error":"invalid_scope","error_description":"\"write\" is not in the parent's scope"}"#;
        let e = oauth_error(body).unwrap();
        assert_eq!(e.error, "invalid_scope");
        assert_eq!(
            e.to_string(),
            "invalid_scope: \"write\" is not in the parent's scope"
        );
        let e = oauth_error(br#"{"error":"invalid_client"}"#).unwrap();
        assert_eq!(e.to_string(), "invalid_client");
        assert!(oauth_error(b"<html>").is_none());
        assert!(oauth_error(br#"{"detail":"no route"}"#).is_none());
    }

    /// A client pointed at a closed port; only its parsing is exercised.
    fn offline_client() -> Client {
        let global = Global {
            addr: "http://127.0.0.1:1".into(),
            token: Some("t".into()),
            output: crate::output::Format::Table,
            log_format: None,
            ca_cert: None,
        };
        Client::new(&global).unwrap()
    }

    #[test]
    fn problems_show_detail_and_status() {
        let client = offline_client();
        let body = br#"{"type":"urn:handoff:problem:conflict","title":"Conflict","status":409,"detail":"identity \"human:a\" already exists"}"#;
        let e = client.problem(StatusCode::CONFLICT, body);
        assert_eq!(e.to_string(), "identity \"human:a\" already exists (409)");
        let e = client.problem(StatusCode::BAD_GATEWAY, b"<html>");
        assert_eq!(e.to_string(), "bad gateway (502)");
        assert!(e.errors.is_empty());
    }

    #[test]
    fn pack_problems_keep_every_diagnostic() {
        let client = offline_client();
        let body = br#"{"status":422,"detail":"the policy pack is invalid","errors":[{"file":"a.cedar","line":2,"column":5,"message":"unexpected token"},{"odd":1}]}"#;
        let e = client.problem(StatusCode::UNPROCESSABLE_ENTITY, body);
        assert_eq!(
            e.errors,
            vec![
                "a.cedar:2:5: unexpected token".to_owned(),
                "{\"odd\":1}".to_owned()
            ]
        );
    }
}
