//! `handoff policy …`: push a policy pack to the server, list, show and
//! roll back its versions, and validate or test a pack offline.
//!
//! `validate` and `test` need no server: they compile the pack with the
//! same code the server runs (`handoff_policy`), so a pack that passes
//! here is accepted by `push`. Diagnostics are printed as
//! `file:line:column: message`, one per line, on standard error.

use crate::PolicyCommand;
use crate::client::{ApiError, Client};
use crate::output::{self, Format};
use anyhow::Context;
use handoff_policy::{Diagnostic, Directory, PackFiles, Policies, TestReport};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;
use std::process::ExitCode;

/// The test file `policy test` reads from the pack directory.
const TESTS_FILE: &str = "tests.json";

/// Runs one `policy` subcommand that talks to the server.
pub(crate) async fn run(
    client: &Client,
    format: Format,
    cmd: PolicyCommand,
) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Push { dir } => return push(client, format, &dir).await,
        PolicyCommand::List => {
            let list = client.get("/v1/policies", &[]).await?;
            match format {
                Format::Json => output::json(&list)?,
                Format::Table => {
                    output::policy_versions(output::items(&list), active_of(&list))?;
                }
            }
        }
        PolicyCommand::Show { number, files } => {
            let shown = client.get(&format!("/v1/policies/{number}"), &[]).await?;
            match format {
                Format::Json => output::json(&shown)?,
                Format::Table => {
                    output::policy_version(&shown, None)?;
                    if files {
                        print_files(&shown)?;
                    }
                }
            }
        }
        PolicyCommand::Rollback { number } => {
            let path = format!("/v1/policies/{number}/activate");
            let activated = client.post(&path, None).await?;
            match format {
                Format::Json => output::json(&activated)?,
                Format::Table => output::line(&format!("policy version {number} is active"))?,
            }
        }
        PolicyCommand::Validate { dir } => return validate(format, &dir),
        PolicyCommand::Test { dir } => return test(format, &dir),
    }
    Ok(ExitCode::SUCCESS)
}

/// `policy push DIR`: upload the pack; a refused pack prints every
/// diagnostic and exits 1.
async fn push(client: &Client, format: Format, dir: &Path) -> anyhow::Result<ExitCode> {
    let pack = load(dir)?;
    let body = json!({ "files": pack.files });
    match client.put("/v1/policies", &body).await {
        Ok((status, pushed)) => {
            match format {
                Format::Json => output::json(&pushed)?,
                Format::Table => output::line(&push_summary(status, &pushed))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => match e.downcast::<ApiError>() {
            Ok(api) if !api.errors.is_empty() => {
                for line in &api.errors {
                    eprintln!("{line}");
                }
                eprintln!("error: {} ({})", api.detail, api.status.as_u16());
                Ok(ExitCode::from(crate::EXIT_FAILURE))
            }
            Ok(api) => Err(api.into()),
            Err(e) => Err(e),
        },
    }
}

/// One line about a push answer: the version and whether it is new
/// (201 Created, or 200 when the pack equals the active version).
fn push_summary(status: StatusCode, pushed: &Value) -> String {
    let version = pushed
        .get("version")
        .map_or_else(|| "?".to_owned(), Value::to_string);
    let created = pushed
        .get("created")
        .and_then(Value::as_bool)
        .unwrap_or(status == StatusCode::CREATED);
    if !created {
        format!("policy version {version} is already active; nothing changed")
    } else {
        format!("pushed policy version {version}; it is now active")
    }
}

/// `policy validate DIR`, offline.
pub(crate) fn validate(format: Format, dir: &Path) -> anyhow::Result<ExitCode> {
    let pack = load(dir)?;
    let compiled = handoff_policy::compile(&pack);
    if format == Format::Json {
        let value = match &compiled {
            Ok(policies) => json!({
                "valid": true,
                "policy_count": policies.policy_count(),
                "errors": [],
            }),
            Err(diagnostics) => json!({ "valid": false, "errors": diagnostics }),
        };
        output::json(&value)?;
        return Ok(exit(compiled.is_ok()));
    }
    match compiled {
        Ok(policies) => {
            output::line(&format!(
                "ok: {} policies in {} files",
                policies.policy_count(),
                pack.files.len()
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(diagnostics) => {
            print_diagnostics(&diagnostics);
            eprintln!(
                "error: the policy pack \"{}\" has {} problem(s)",
                dir.display(),
                diagnostics.len()
            );
            Ok(ExitCode::from(crate::EXIT_FAILURE))
        }
    }
}

/// `policy test DIR`, offline: compile, then run `DIR/tests.json`.
pub(crate) fn test(format: Format, dir: &Path) -> anyhow::Result<ExitCode> {
    let pack = load(dir)?;
    let policies = match handoff_policy::compile(&pack) {
        Ok(policies) => policies,
        Err(diagnostics) => {
            print_diagnostics(&diagnostics);
            eprintln!(
                "error: the policy pack \"{}\" has {} problem(s); no test was run",
                dir.display(),
                diagnostics.len()
            );
            return Ok(ExitCode::from(crate::EXIT_FAILURE));
        }
    };
    let report = run_tests(&policies, dir)?;
    match format {
        Format::Json => output::json(&serde_json::to_value(&report)?)?,
        Format::Table => print_report(&report)?,
    }
    Ok(exit(report.is_success()))
}

/// Reads and runs the pack's test file.
fn run_tests(policies: &Policies, dir: &Path) -> anyhow::Result<TestReport> {
    let path = dir.join(TESTS_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the test file \"{}\"", path.display()))?;
    handoff_policy::run_tests(policies, &Directory::default(), &text)
        .with_context(|| format!("invalid test file \"{}\"", path.display()))
}

/// Prints each failure, then a summary.
fn print_report(report: &TestReport) -> anyhow::Result<()> {
    let word = |allow: bool| if allow { "allow" } else { "deny" };
    for failure in &report.failures {
        let mut text = format!(
            "FAIL {}: expected {}, got {}",
            failure.name,
            word(failure.expected),
            word(failure.got.allow)
        );
        if !failure.got.reasons.is_empty() {
            text.push_str(&format!(" (policies: {})", failure.got.reasons.join(", ")));
        }
        if !failure.got.errors.is_empty() {
            text.push_str(&format!(" (errors: {})", failure.got.errors.join("; ")));
        }
        output::line(&text)?;
    }
    let total = report.passed + report.failures.len();
    if report.is_success() {
        output::line(&format!("ok: all {total} tests passed"))
    } else {
        output::line(&format!(
            "failed: {} of {total} tests did not get the expected decision",
            report.failures.len()
        ))
    }
}

/// Reads a pack directory.
fn load(dir: &Path) -> anyhow::Result<PackFiles> {
    PackFiles::load_dir(dir)
        .with_context(|| format!("cannot read the policy pack \"{}\"", dir.display()))
}

/// Diagnostics, one per line, on standard error.
fn print_diagnostics(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        eprintln!("{d}");
    }
}

/// Exit status 0 for success, 1 otherwise.
fn exit(success: bool) -> ExitCode {
    if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::EXIT_FAILURE)
    }
}

/// The `active` version of a list answer.
fn active_of(list: &Value) -> Option<u64> {
    list.get("active").and_then(Value::as_u64)
}

/// Prints the `files` of a version answer, each under a `==> name <==` header.
fn print_files(shown: &Value) -> anyhow::Result<()> {
    let Some(files) = shown.get("files").and_then(Value::as_object) else {
        return Ok(());
    };
    for (name, text) in files {
        output::line(&format!("\n==> {name} <=="))?;
        output::line(text.as_str().unwrap_or_default().trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_summaries_say_whether_anything_changed() {
        assert_eq!(
            push_summary(StatusCode::CREATED, &json!({"version": 3})),
            "pushed policy version 3; it is now active"
        );
        assert_eq!(
            push_summary(StatusCode::OK, &json!({"version": 3})),
            "policy version 3 is already active; nothing changed"
        );
        assert_eq!(
            push_summary(StatusCode::OK, &json!({"version": 3, "created": true})),
            "pushed policy version 3; it is now active"
        );
    }

    #[test]
    fn the_active_version_is_read_from_a_list() {
        assert_eq!(active_of(&json!({"items": [], "active": 2})), Some(2));
        assert_eq!(active_of(&json!({"items": [], "active": null})), None);
    }
}
