//! `handoff token …` (admin API tokens and, for development, humans'
//! tokens) and `handoff whoami`.

use crate::TokenCommand;
use crate::client::{ApiError, Client, segment};
use crate::commands::credential::print_secret;
use crate::output::{self, Format};
use anyhow::Context;
use reqwest::StatusCode;
use serde_json::{Map, Value};
use std::process::ExitCode;

/// Runs one `token` subcommand.
pub(crate) async fn run(
    client: &Client,
    format: Format,
    cmd: TokenCommand,
) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCommand::Create {
            name,
            role,
            expires_in,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), Value::String(name));
            body.insert("role".into(), Value::String(role.as_str().to_owned()));
            if let Some(seconds) = expires_in {
                body.insert("expires_in".into(), Value::from(seconds));
            }
            let created = client
                .post("/v1/admin-tokens", Some(&Value::Object(body)))
                .await?;
            print_secret(format, &created, "token")?;
        }
        TokenCommand::List => {
            let list = client.get("/v1/admin-tokens", &[]).await?;
            match format {
                Format::Json => output::json(&list)?,
                Format::Table => output::tokens(output::items(&list))?,
            }
        }
        TokenCommand::MintHuman {
            human,
            scope,
            lifetime,
        } => return mint_human(client, format, &human, scope, lifetime).await,
        TokenCommand::Revoke { token } => {
            let path = format!("/v1/admin-tokens/{}/revoke", segment(&token)?);
            let revoked = client.post(&path, None).await?;
            match format {
                Format::Json => output::json(&revoked)?,
                Format::Table => output::token(&revoked)?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `token mint-human`: a development token for a human, printed alone on
/// standard output. The server refuses (403) unless it runs with `--dev`.
async fn mint_human(
    client: &Client,
    format: Format,
    human: &str,
    scope: Option<String>,
    lifetime: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let mut body = Map::new();
    body.insert("human".into(), Value::String(human.trim().to_owned()));
    if let Some(scope) = scope {
        body.insert("scope".into(), Value::String(scope));
    }
    if let Some(seconds) = lifetime {
        body.insert("lifetime_seconds".into(), Value::from(seconds));
    }
    let minted = client
        .post("/v1/dev/human-tokens", Some(&Value::Object(body)))
        .await
        .map_err(explain_refusal)?;
    match format {
        Format::Json => output::json(&minted)?,
        Format::Table => {
            let token = minted
                .get("access_token")
                .and_then(Value::as_str)
                .context("the server's answer holds no token")?;
            output::line(token)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A 403 from the development endpoint gets a hint naming `--dev`.
fn explain_refusal(mut e: anyhow::Error) -> anyhow::Error {
    if let Some(api) = e.downcast_mut::<ApiError>()
        && api.status == StatusCode::FORBIDDEN
        && api.hint.is_none()
    {
        api.hint = Some(
            "the server mints humans' tokens only when it runs with --dev \
             (development only), and only for an admin-role token",
        );
    }
    e
}

/// `handoff whoami`: who the token authenticates as.
pub(crate) async fn whoami(client: &Client, format: Format) -> anyhow::Result<ExitCode> {
    let me = client.get("/v1/whoami", &[]).await?;
    match format {
        Format::Json => output::json(&me)?,
        Format::Table => output::whoami(&me)?,
    }
    Ok(ExitCode::SUCCESS)
}
