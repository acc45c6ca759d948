//! `handoff delegate`: one call to the OAuth token endpoint, a token
//! exchange (RFC 8693 §2.1) or a `client_credentials` grant (RFC 6749
//! §4.4), authenticated as the agent or service that receives the token.
//!
//! The server decides whether the handoff is allowed; this module only
//! builds the request and tells a refused handoff (exit 3) from a failure
//! (exit 1). The access token is printed alone on standard output so
//! `TOKEN=$(handoff delegate …)` captures it.

use crate::DelegateArgs;
use crate::client::{Client, OAuthError};
use crate::output::{self, Format};
use anyhow::{Context, bail};
use serde_json::Value;
use std::io::Read;
use std::process::ExitCode;

/// Exit status of a handoff the server refused.
pub(crate) const EXIT_DENIED: u8 = crate::EXIT_BROKEN;

use handoff_engine::delegation::TOKEN_EXCHANGE;

/// The type of an actor token: Handoff's own tokens are access tokens.
const ACCESS_TOKEN_TYPE: &str = handoff_engine::delegation::token_type::ACCESS_TOKEN;

/// OAuth error codes that mean "this handoff is not allowed" rather than
/// "the request could not be served": the client authenticated, and the
/// server refused what it asked for (RFC 6749 §5.2, RFC 8693 §2.2.2).
const DENIALS: &[&str] = &[
    "invalid_scope",
    "invalid_target",
    "invalid_request",
    "invalid_grant",
    "unauthorized_client",
    "access_denied",
];

/// Runs `handoff delegate`.
pub(crate) async fn run(
    client: &Client,
    format: Format,
    args: DelegateArgs,
) -> anyhow::Result<ExitCode> {
    let subject = match args.subject_token.as_deref() {
        Some("-") => Some(read_stdin_token()?),
        Some(token) => Some(non_empty(token, "--subject-token")?),
        None => None,
    };
    let actor = args
        .actor_token
        .as_deref()
        .map(|t| non_empty(t, "--actor-token"))
        .transpose()?;
    let lifetime = args.lifetime.map(|s| s.to_string());

    let mut form: Vec<(&str, &str)> = Vec::new();
    match &subject {
        Some(token) => {
            form.push(("grant_type", TOKEN_EXCHANGE));
            form.push(("subject_token", token));
            form.push(("subject_token_type", args.subject_token_type.as_urn()));
        }
        None => form.push(("grant_type", "client_credentials")),
    }
    if let Some(token) = &actor {
        form.push(("actor_token", token));
        form.push(("actor_token_type", ACCESS_TOKEN_TYPE));
    }
    if let Some(scope) = &args.scope {
        form.push(("scope", scope));
    }
    form.extend(args.audience.iter().map(|a| ("audience", a.as_str())));
    form.extend(args.resource.iter().map(|r| ("resource", r.as_str())));
    if let Some(seconds) = &lifetime {
        // Handoff's extension: the server caps it at the parent's expiry.
        form.push(("requested_lifetime", seconds));
    }

    let issued = match client
        .token(args.client_id.trim(), args.client_secret.trim(), &form)
        .await
    {
        Ok(issued) => issued,
        Err(e) => return refused(e),
    };
    match format {
        Format::Json => output::json(&issued)?,
        Format::Table => {
            let token = issued
                .get("access_token")
                .and_then(Value::as_str)
                .context("the server's answer holds no access token")?;
            let scope = issued.get("scope").and_then(Value::as_str).unwrap_or("");
            let expires = issued
                .get("expires_in")
                .and_then(Value::as_u64)
                .map_or_else(|| "unknown".to_owned(), |s| format!("{s}s"));
            eprintln!(
                "issued a token for {} (scope \"{scope}\", expires in {expires})",
                args.client_id.trim()
            );
            output::line(token)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A refused handoff is printed here and exits 3; anything else goes back
/// to `main`, which prints it and exits 1.
fn refused(e: anyhow::Error) -> anyhow::Result<ExitCode> {
    match e.downcast_ref::<OAuthError>() {
        Some(denied) if is_denial(denied) => {
            eprintln!("error: {denied}");
            Ok(ExitCode::from(EXIT_DENIED))
        }
        _ => Err(e),
    }
}

/// Whether `e` refuses the handoff (exit 3) rather than fails (exit 1).
fn is_denial(e: &OAuthError) -> bool {
    DENIALS.contains(&e.error.as_str())
}

/// `token` trimmed, or an error naming `flag` when nothing is left.
fn non_empty(token: &str, flag: &str) -> anyhow::Result<String> {
    let token = token.trim();
    if token.is_empty() {
        bail!("{flag} is empty");
    }
    Ok(token.to_owned())
}

/// The subject token from standard input (`--subject-token -`).
fn read_stdin_token() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .lock()
        .read_to_string(&mut text)
        .context("cannot read the subject token from standard input")?;
    non_empty(&text, "the subject token on standard input")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth(error: &str) -> OAuthError {
        OAuthError {
            error: error.to_owned(),
            description: Some("why".to_owned()),
        }
    }

    #[test]
    fn refusals_and_failures_are_told_apart() {
        for code in [
            "invalid_scope",
            "invalid_target",
            "invalid_request",
            "unauthorized_client",
        ] {
            assert!(is_denial(&oauth(code)), "{code}");
        }
        for code in ["invalid_client", "server_error", "temporarily_unavailable"] {
            assert!(!is_denial(&oauth(code)), "{code}");
        }
    }

    #[test]
    fn a_denied_handoff_exits_3_and_a_failure_is_returned() {
        let code = refused(oauth("invalid_scope").into()).unwrap();
        assert_eq!(code, ExitCode::from(EXIT_DENIED));
        let e = refused(oauth("invalid_client").into()).unwrap_err();
        assert_eq!(e.to_string(), "invalid_client: why");
        assert!(refused(anyhow::anyhow!("could not connect")).is_err());
    }

    #[test]
    fn empty_tokens_are_refused() {
        assert_eq!(non_empty(" abc\n", "--subject-token").unwrap(), "abc");
        let e = non_empty(" \n", "--subject-token").unwrap_err();
        assert_eq!(e.to_string(), "--subject-token is empty");
    }
}
