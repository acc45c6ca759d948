//! The HTTP side of the CLI: one client per invocation that knows the
//! server address and the bearer token, builds URLs with percent-encoded
//! path segments, and turns RFC 9457 problem answers and transport failures
//! into one-line errors.
//!
//! It does not know any endpoint's meaning; the command modules do.

use crate::Global;
use anyhow::{Context, anyhow, bail};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
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
