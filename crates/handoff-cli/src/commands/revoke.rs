//! `handoff revoke DELEGATION [--dry-run]`: revoke a delegation and every
//! delegation below it, and show the blast radius.
//!
//! The server computes the blast radius (which delegations and identities
//! lose access); this module sends the request and prints the answer. A
//! dry run asks the same question and changes nothing.

use crate::client::{Client, segment};
use crate::output::{self, Format};
use serde_json::json;
use std::process::ExitCode;

/// Runs `handoff revoke`.
pub(crate) async fn run(
    client: &Client,
    format: Format,
    delegation: &str,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let path = format!("/v1/delegations/{}/revoke", segment(delegation.trim())?);
    let body = json!({ "dry_run": dry_run });
    let answer = client.post(&path, Some(&body)).await?;
    match format {
        Format::Json => output::json(&answer)?,
        Format::Table => output::line(&output::blast_radius(&answer))?,
    }
    Ok(ExitCode::SUCCESS)
}
