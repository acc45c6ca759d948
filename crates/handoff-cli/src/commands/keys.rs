//! `handoff keys …`: list the keys that sign delegation tokens, rotate to
//! a new one, and make a master key for a shared database.
//!
//! Keys never leave the server; only their ids, algorithms and dates are
//! shown.

use crate::KeysCommand;
use crate::client::Client;
use crate::output::{self, Format};
use anyhow::Context;
use serde_json::Value;
use std::process::ExitCode;

/// Runs one `keys` subcommand.
pub(crate) async fn run(
    client: &Client,
    format: Format,
    cmd: KeysCommand,
) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::List => {
            let list = client.get("/v1/keys", &[]).await?;
            match format {
                Format::Json => output::json(&list)?,
                Format::Table => output::keys(
                    list.get("keys")
                        .and_then(Value::as_array)
                        .map_or(&[][..], Vec::as_slice),
                )?,
            }
        }
        KeysCommand::Rotate => {
            let rotated = client.post("/v1/keys/rotate", None).await?;
            match format {
                Format::Json => output::json(&rotated)?,
                Format::Table => {
                    let kid = rotated
                        .get("kid")
                        .and_then(Value::as_str)
                        .context("the server's answer names no key")?;
                    output::line(&format!("new tokens are signed with key {kid}"))?;
                }
            }
        }
        KeysCommand::MasterKey => return master_key(),
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a fresh master key; needs no server.
pub(crate) fn master_key() -> anyhow::Result<ExitCode> {
    let key = handoff_engine::master_key::MasterKey::generate_text()?;
    output::line(&key)?;
    Ok(ExitCode::SUCCESS)
}
