//! `handoff credential …`: issue, list, show and revoke the credentials
//! (API keys) of agents and services, and register, list and revoke their
//! public keys for `private_key_jwt`.
//!
//! An issued secret is printed exactly once, alone on standard output, so
//! `SECRET=$(handoff credential issue …)` captures it; the notice that it
//! cannot be shown again goes to standard error.

use crate::CredentialCommand;
use crate::client::{Client, segment};
use crate::output::{self, Format};
use serde_json::{Map, Value};
use std::process::ExitCode;

/// Runs one `credential` subcommand.
pub(crate) async fn run(
    client: &Client,
    format: Format,
    cmd: CredentialCommand,
) -> anyhow::Result<ExitCode> {
    let credential = match cmd {
        CredentialCommand::Issue {
            identity,
            description,
            expires_in,
        } => {
            let mut body = Map::new();
            if let Some(description) = description {
                body.insert("description".into(), Value::String(description));
            }
            if let Some(seconds) = expires_in {
                body.insert("expires_in".into(), Value::from(seconds));
            }
            let path = format!("/v1/identities/{}/credentials", segment(&identity)?);
            let issued = client.post(&path, Some(&Value::Object(body))).await?;
            print_secret(format, &issued, "credential")?;
            return Ok(ExitCode::SUCCESS);
        }
        CredentialCommand::List { identity } => {
            let path = format!("/v1/identities/{}/credentials", segment(&identity)?);
            let list = client.get(&path, &[]).await?;
            match format {
                Format::Json => output::json(&list)?,
                Format::Table => output::credentials(output::items(&list))?,
            }
            return Ok(ExitCode::SUCCESS);
        }
        CredentialCommand::Show { credential } => {
            let path = format!("/v1/credentials/{}", segment(&credential)?);
            client.get(&path, &[]).await?
        }
        CredentialCommand::Revoke { credential } => {
            let path = format!("/v1/credentials/{}/revoke", segment(&credential)?);
            client.post(&path, None).await?
        }
        CredentialCommand::AddKey { identity, jwk } => {
            let text = if jwk.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&jwk)
                    .map_err(|e| anyhow::anyhow!("cannot read \"{}\": {e}", jwk.display()))?
            };
            let jwk: Value = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("the jwk is not json: {e}"))?;
            let path = format!("/v1/identities/{}/keys", segment(&identity)?);
            let body = serde_json::json!({ "jwk": jwk });
            let key = client.post(&path, Some(&body)).await?;
            match format {
                Format::Json => output::json(&key)?,
                Format::Table => println!(
                    "registered key {} on {identity}",
                    key.get("kid").and_then(Value::as_str).unwrap_or("-")
                ),
            }
            return Ok(ExitCode::SUCCESS);
        }
        CredentialCommand::Keys { identity } => {
            let path = format!("/v1/identities/{}/keys", segment(&identity)?);
            let list = client.get(&path, &[]).await?;
            match format {
                Format::Json => output::json(&list)?,
                Format::Table => {
                    for key in list
                        .get("keys")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let field = |k: &str| key.get(k).and_then(Value::as_str).unwrap_or("-");
                        let state = if key.get("revoked_at").is_some_and(|r| !r.is_null()) {
                            "revoked"
                        } else {
                            "active"
                        };
                        println!("{}  {state}  created {}", field("kid"), field("created_at"));
                    }
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        CredentialCommand::RevokeKey { identity, kid } => {
            let path = format!(
                "/v1/identities/{}/keys/{}/revoke",
                segment(&identity)?,
                segment(&kid)?
            );
            client.post(&path, None).await?;
            println!("revoked key {kid} of {identity}");
            return Ok(ExitCode::SUCCESS);
        }
    };
    match format {
        Format::Json => output::json(&credential)?,
        Format::Table => output::credential(&credential)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a freshly issued secret: the whole answer as JSON, or the secret
/// alone on standard output with a notice on standard error. `what` is the
/// key of the issued object in the answer (`credential` or `token`).
pub(crate) fn print_secret(format: Format, issued: &Value, what: &str) -> anyhow::Result<()> {
    if format == Format::Json {
        return output::json(issued);
    }
    let secret = issued
        .get("secret")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow::anyhow!("the server's answer holds no secret"))?;
    let object = issued.get(what);
    let field = |key: &str| {
        object
            .and_then(|o| o.get(key))
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned()
    };
    let expires = field("expires_at");
    let expires = if expires == "-" {
        "never".to_owned()
    } else {
        expires
    };
    match what {
        "credential" => eprintln!(
            "issued credential {} for {} (expires: {expires})",
            field("id"),
            field("identity")
        ),
        _ => eprintln!(
            "created {} token {} \"{}\" (expires: {expires})",
            field("role"),
            field("id"),
            field("name")
        ),
    }
    eprintln!("the secret follows on standard output: store it now; it cannot be shown again");
    output::line(secret)
}
