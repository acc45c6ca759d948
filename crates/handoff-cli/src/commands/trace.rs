//! `handoff trace`: the whole lineage a token, delegation or lineage id
//! belongs to, as a tree.
//!
//! A token is decoded only to read its `jti` (the id of the delegation it
//! carries). Its signature is NOT checked: the decoded claims only choose
//! what to ask the server, and everything printed comes from the server.

use crate::client::{ApiError, Client, segment};
use crate::output::{self, Format};
use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use std::process::ExitCode;

/// Longest token accepted for decoding; anything longer is not a token
/// this server issued.
const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// Runs `handoff trace TARGET`.
pub(crate) async fn run(client: &Client, format: Format, target: &str) -> anyhow::Result<ExitCode> {
    let target = target.trim();
    let (lineage_id, focus, detail) = if looks_like_jwt(target) {
        let claims = unverified_claims(target)?;
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .context("the token has no jti claim, so it names no delegation")?;
        let detail = delegation(client, jti).await?.ok_or_else(|| {
            anyhow!(
                "the token's delegation \"{jti}\" is unknown to the server \
                 (a human's token becomes part of a lineage only when it is exchanged)"
            )
        })?;
        (lineage_of(&detail)?, Some(jti.to_owned()), Some(detail))
    } else {
        match delegation(client, target).await? {
            Some(detail) => (lineage_of(&detail)?, Some(target.to_owned()), Some(detail)),
            None => (target.to_owned(), None, None),
        }
    };

    let path = format!("/v1/lineages/{}", segment(&lineage_id)?);
    let lineage = match client.get(&path, &[]).await {
        Ok(lineage) => lineage,
        Err(e) if focus.is_none() && is_not_found(&e) => {
            bail!("no delegation or lineage \"{target}\"")
        }
        Err(e) => return Err(e),
    };
    let delegations = lineage
        .get("delegations")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);

    match format {
        Format::Json => output::json(&json!({
            "lineage": lineage.get("lineage").cloned().unwrap_or(Value::String(lineage_id)),
            "focus": focus,
            "delegations": delegations,
        }))?,
        Format::Table => {
            let root = lineage
                .get("lineage")
                .and_then(Value::as_str)
                .unwrap_or(&lineage_id);
            output::line(&format!(
                "lineage {root} ({} delegations)",
                delegations.len()
            ))?;
            output::line(output::lineage_tree(delegations, focus.as_deref()).trim_end())?;
            if let (Some(focus), Some(detail)) = (&focus, &detail) {
                output::line(&live_line(focus, detail))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `GET /v1/delegations/{id}`, or `None` when the server has no such
/// delegation.
async fn delegation(client: &Client, id: &str) -> anyhow::Result<Option<Value>> {
    let path = format!("/v1/delegations/{}", segment(id)?);
    match client.get(&path, &[]).await {
        Ok(detail) => Ok(Some(detail)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `e` is the server's 404 (or a 400 for an id of the wrong shape,
/// which names nothing either).
fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ApiError>()
        .is_some_and(|api| matches!(api.status, StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST))
}

/// The lineage id of a `GET /v1/delegations/{id}` answer.
fn lineage_of(detail: &Value) -> anyhow::Result<String> {
    detail
        .get("delegation")
        .and_then(|d| d.get("lineage"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .context("the server's answer names no lineage")
}

/// `* ID: live`, or why the traced delegation's chain is not live.
fn live_line(focus: &str, detail: &Value) -> String {
    match detail.get("live").and_then(Value::as_bool) {
        Some(true) => format!("* {focus}: live"),
        Some(false) => {
            let reason = detail
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            format!("* {focus}: not live: {reason}")
        }
        None => format!("* {focus}"),
    }
}

/// Whether `text` has the shape of a compact JWS: three base64url parts.
fn looks_like_jwt(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
}

/// The payload of a compact JWT (RFC 7519 §7.2 steps 1–7 without checking
/// the signature): base64url-decoded, as a JSON object. Only to pick what
/// to ask the server; never to decide anything.
fn unverified_claims(token: &str) -> anyhow::Result<Map<String, Value>> {
    if token.len() > MAX_TOKEN_BYTES {
        bail!("the token is longer than {MAX_TOKEN_BYTES} bytes");
    }
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        bail!("the token is not a JWT: it does not have three parts");
    };
    // RFC 7515 §2: base64url without padding; tolerate padding anyway.
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| anyhow!("the token's payload is not base64url"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => bail!("the token's payload is not a JSON object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        URL_SAFE_NO_PAD.encode(text)
    }

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"EdDSA","typ":"at+jwt"}"#),
            b64(payload)
        )
    }

    #[test]
    fn the_payload_is_decoded_without_verification() {
        let token = jwt(
            r#"{"jti":"dlg_0123456789abcdef0123456789abcdef","sub":"human:alice@example.com","scope":"read ü"}"#,
        );
        assert!(looks_like_jwt(&token));
        let claims = unverified_claims(&token).unwrap();
        assert_eq!(claims["jti"], "dlg_0123456789abcdef0123456789abcdef");
        assert_eq!(claims["scope"], "read ü");
        // Padded base64url is tolerated.
        let padded = format!("{}.{}==.sig", b64("{}"), b64(r#"{"a":1}"#));
        assert_eq!(unverified_claims(&padded).unwrap()["a"], 1);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        assert!(!looks_like_jwt("dlg_0123456789abcdef0123456789abcdef"));
        assert!(!looks_like_jwt("a..c"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a.b c.d"));
        let e = unverified_claims("a.b").unwrap_err();
        assert!(e.to_string().contains("three parts"), "{e}");
        let e = unverified_claims("a.!!!.c").unwrap_err();
        assert!(e.to_string().contains("base64url"), "{e}");
        let e = unverified_claims(&format!("a.{}.c", b64("[1]"))).unwrap_err();
        assert!(e.to_string().contains("JSON object"), "{e}");
        let long = format!("a.{}.c", "A".repeat(MAX_TOKEN_BYTES));
        assert!(unverified_claims(&long).is_err());
    }

    #[test]
    fn the_live_line_says_why_not() {
        let id = "dlg_0123456789abcdef0123456789abcdef";
        assert_eq!(
            live_line(id, &json!({"live": true})),
            format!("* {id}: live")
        );
        assert_eq!(
            live_line(
                id,
                &json!({"live": false, "reason": "an ancestor was revoked"})
            ),
            format!("* {id}: not live: an ancestor was revoked")
        );
    }

    #[test]
    fn the_lineage_is_read_from_the_detail() {
        let detail = json!({"delegation": {"lineage": "dlg_root"}});
        assert_eq!(lineage_of(&detail).unwrap(), "dlg_root");
        assert!(lineage_of(&json!({})).is_err());
    }
}
