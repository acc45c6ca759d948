//! `handoff token …` (admin API tokens) and `handoff whoami`.

use crate::TokenCommand;
use crate::client::{Client, segment};
use crate::commands::credential::print_secret;
use crate::output::{self, Format};
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

/// `handoff whoami`: who the token authenticates as.
pub(crate) async fn whoami(client: &Client, format: Format) -> anyhow::Result<ExitCode> {
    let me = client.get("/v1/whoami", &[]).await?;
    match format {
        Format::Json => output::json(&me)?,
        Format::Table => output::whoami(&me)?,
    }
    Ok(ExitCode::SUCCESS)
}
