//! `handoff audit …`: the last records, a full export as JSON lines, and
//! verification, either by the server or offline from a data directory.
//!
//! Verification has three outcomes with three exit statuses: intact (0),
//! broken at a sequence number (3), and no verdict because the log could
//! not be read (1, an ordinary error).

use crate::client::Client;
use crate::output::{self, Format};
use crate::{AuditCommand, EXIT_BROKEN, ExportFormat};
use anyhow::{Context, bail};
use handoff_engine::audit::{CheckpointKey, VerifyError, verify_data_dir};
use handoff_engine::data_dir::DataDir;
use handoff_engine::master_key::MasterKey;
use serde_json::{Value, json};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Records asked for per page while exporting (the API's maximum).
const EXPORT_PAGE: u32 = 1000;

/// Runs one online `audit` subcommand.
pub(crate) async fn run(
    client: &Client,
    format: Format,
    cmd: AuditCommand,
) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Tail { lines } => {
            let page = client
                .get("/v1/audit", &[("tail", lines.to_string())])
                .await?;
            match format {
                Format::Json => output::json(&page)?,
                Format::Table => output::records(output::items(&page))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export { format, after, out } => {
            let ExportFormat::Jsonl = format;
            export(client, after, out).await?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify {
            data_dir: Some(dir),
            ..
        } => verify_offline(&dir, format).await,
        AuditCommand::Verify {
            database: Some(url),
            public_key,
            master_key_file,
            ..
        } => verify_database(&url, public_key, master_key_file, format).await,
        AuditCommand::Verify { .. } => verify_online(client, format).await,
    }
}

/// Writes the log after `after` to `out` (a new file) or standard output.
async fn export(client: &Client, after: u64, out: Option<PathBuf>) -> anyhow::Result<()> {
    let Some(path) = out else {
        let mut sink = BufWriter::new(io::stdout().lock());
        write_pages(client, after, &mut sink, "standard output").await?;
        return sink.flush().context("cannot write to standard output");
    };
    let name = format!("\"{}\"", path.display());
    let file = File::create(&path).with_context(|| format!("cannot create {name}"))?;
    let mut sink = BufWriter::new(file);
    let count = write_pages(client, after, &mut sink, &name).await?;
    sink.into_inner()
        .map_err(io::IntoInnerError::into_error)
        .and_then(|file| file.sync_all())
        .with_context(|| format!("cannot write to {name}"))?;
    eprintln!("exported {count} records to {name}");
    Ok(())
}

/// Pages through `GET /v1/audit` until `next_after` is null, writing one
/// record per line; returns how many were written.
async fn write_pages(
    client: &Client,
    mut after: u64,
    sink: &mut impl Write,
    name: &str,
) -> anyhow::Result<u64> {
    let mut count: u64 = 0;
    loop {
        let page = client
            .get(
                "/v1/audit",
                &[
                    ("after", after.to_string()),
                    ("limit", EXPORT_PAGE.to_string()),
                ],
            )
            .await?;
        let items = output::items(&page);
        for record in items {
            serde_json::to_writer(&mut *sink, record)
                .map_err(io::Error::from)
                .and_then(|()| sink.write_all(b"\n"))
                .with_context(|| format!("cannot write to {name}"))?;
            count += 1;
        }
        let Some(next) = page.get("next_after").and_then(Value::as_u64) else {
            return Ok(count);
        };
        // A server whose pages do not advance would make this loop forever.
        if items.is_empty() || next <= after {
            bail!("the server's audit pages do not advance past sequence {after}");
        }
        after = next;
    }
}

/// Asks the server to verify its log.
async fn verify_online(client: &Client, format: Format) -> anyhow::Result<ExitCode> {
    let answer = client.get("/v1/audit/verify", &[]).await?;
    let ok = answer
        .get("ok")
        .and_then(Value::as_bool)
        .context("the server's verification answer has no \"ok\" field")?;
    let number = |key: &str| answer.get(key).and_then(Value::as_u64).unwrap_or(0);
    if format == Format::Json {
        output::json(&answer)?;
    } else if ok {
        print_ok(number("records"), number("checkpoints"), number("last_seq"))?;
    } else {
        let reason = answer
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        print_broken(number("first_bad_seq"), reason);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_BROKEN)
    })
}

/// Verifies the log in a data directory, without a server.
pub(crate) async fn verify_offline(dir: &Path, format: Format) -> anyhow::Result<ExitCode> {
    let result = verify_data_dir(&DataDir::new(dir)).await;
    report(result, &format!("\"{}\"", dir.display()), format)
}

/// Verifies the log in a shared PostgreSQL database, without a server,
/// against `public_key` (hex) or the stored key the master key opens.
pub(crate) async fn verify_database(
    url: &str,
    public_key: Option<String>,
    master_key_file: Option<PathBuf>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let key = match public_key {
        Some(hex) => {
            let bytes = handoff_audit::hex::decode(hex.trim())
                .context("--public-key must be 64 hex digits")?;
            let key = handoff_audit::PublicKey::from_bytes(&bytes)
                .map_err(|_| anyhow::anyhow!("--public-key is not an Ed25519 public key"))?;
            CheckpointKey::Given(key)
        }
        None => match MasterKey::from_file_or_env(master_key_file.as_deref())? {
            Some(master) => CheckpointKey::Sealed(master),
            None => bail!(
                "verifying a shared database needs the checkpoint key: pass --public-key HEX, \
                 or the master key (--master-key-file, HANDOFF_MASTER_KEY_FILE or HANDOFF_MASTER_KEY)"
            ),
        },
    };
    let result = handoff_engine::audit::verify_database(url, key).await;
    report(result, &handoff_engine::redact_url(url), format)
}

/// Prints a verification's verdict; the exit status says which it was.
fn report(
    result: Result<handoff_audit::Report, VerifyError>,
    source: &str,
    format: Format,
) -> anyhow::Result<ExitCode> {
    match result {
        Ok(report) => {
            if format == Format::Json {
                output::json(&json!({
                    "ok": true,
                    "records": report.records,
                    "checkpoints": report.checkpoints,
                    "last_seq": report.last_seq,
                    "last_hash": report.last_hash.to_string(),
                    "last_checkpoint": report.last_checkpoint,
                }))?;
            } else {
                print_ok(report.records, report.checkpoints, report.last_seq)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(VerifyError::Broken(failure)) => {
            let reason = failure.reason.to_string();
            if format == Format::Json {
                output::json(&json!({
                    "ok": false,
                    "first_bad_seq": failure.seq,
                    "reason": reason,
                }))?;
            } else {
                print_broken(failure.seq, &reason);
            }
            Ok(ExitCode::from(EXIT_BROKEN))
        }
        Err(VerifyError::Unreadable(e)) => Err(anyhow::anyhow!(
            "cannot read the audit log in {source}: {e}"
        )),
    }
}

fn print_ok(records: u64, checkpoints: u64, last_seq: u64) -> anyhow::Result<()> {
    output::line(&format!(
        "ok: {records} records, {checkpoints} checkpoints, last seq {last_seq}"
    ))
}

fn print_broken(seq: u64, reason: &str) {
    eprintln!("audit log is broken at sequence {seq}: {reason}");
}
