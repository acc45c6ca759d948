//! Rendering answers: pretty-printed JSON (`--output json`) or tables
//! (`--output table`, the default) for identities, credentials, admin
//! tokens, audit records and policy versions.
//!
//! Works on the server's JSON as it arrives, so a field added by the server
//! shows up in JSON output without a CLI change. Writes to standard output
//! without panicking when the reader goes away (`| head`).

use anyhow::Context;
use clap::ValueEnum;
use comfy_table::{ContentArrangement, Table, presets};
use serde_json::Value;
use std::io::{self, Write};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// A table for people
    Table,
    /// The server's JSON, pretty-printed
    Json,
}

/// Columns of an identity list.
const IDENTITY_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("KIND", "kind"),
    ("OWNER", "owner"),
    ("ENV", "environment"),
    ("STATUS", "status"),
    ("ORPHANED", "orphaned"),
];

/// Fields of one identity, in display order.
const IDENTITY_FIELDS: &[(&str, &str)] = &[
    ("id", "id"),
    ("kind", "kind"),
    ("name", "name"),
    ("owner", "owner"),
    ("environment", "environment"),
    ("status", "status"),
    ("orphaned", "orphaned"),
    ("source", "source"),
    ("attributes", "attributes"),
    ("created", "created_at"),
    ("updated", "updated_at"),
];

/// Columns of a credential list.
const CREDENTIAL_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("IDENTITY", "identity"),
    ("STATE", "state"),
    ("EXPIRES", "expires_at"),
    ("LAST USED", "last_used_at"),
    ("DESCRIPTION", "description"),
];

/// Fields of one credential.
const CREDENTIAL_FIELDS: &[(&str, &str)] = &[
    ("id", "id"),
    ("identity", "identity"),
    ("description", "description"),
    ("state", "state"),
    ("created", "created_at"),
    ("expires", "expires_at"),
    ("last used", "last_used_at"),
    ("revoked", "revoked_at"),
];

/// Columns of an admin token list.
const TOKEN_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("ROLE", "role"),
    ("CREATED", "created_at"),
    ("EXPIRES", "expires_at"),
    ("REVOKED", "revoked_at"),
];

/// Fields of one admin token.
const TOKEN_FIELDS: &[(&str, &str)] = &[
    ("id", "id"),
    ("name", "name"),
    ("role", "role"),
    ("created", "created_at"),
    ("expires", "expires_at"),
    ("revoked", "revoked_at"),
];

/// Columns of audit records.
const RECORD_COLUMNS: &[(&str, &str)] = &[
    ("SEQ", "seq"),
    ("TIME", "time"),
    ("KIND", "kind"),
    ("ACTOR", "actor"),
    ("TARGET", "target"),
    ("OUTCOME", "outcome"),
];

/// Fields of a whoami answer.
const WHOAMI_FIELDS: &[(&str, &str)] = &[
    ("kind", "kind"),
    ("id", "id"),
    ("role", "role"),
    ("identity", "identity"),
];

/// Columns of a policy version list.
const POLICY_COLUMNS: &[(&str, &str)] = &[
    ("VERSION", "version"),
    ("ACTIVE", "active"),
    ("POLICIES", "policy_count"),
    ("CREATED", "created_at"),
    ("BY", "created_by"),
    ("DIGEST", "digest"),
];

/// Fields of one policy version.
const POLICY_FIELDS: &[(&str, &str)] = &[
    ("version", "version"),
    ("active", "active"),
    ("policies", "policy_count"),
    ("created", "created_at"),
    ("by", "created_by"),
    ("digest", "digest"),
];

/// Writes `text` and a newline to standard output.
pub(crate) fn line(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{text}").context("cannot write to standard output")?;
    out.flush().context("cannot write to standard output")
}

/// Pretty-prints `value` as JSON.
pub(crate) fn json(value: &Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("cannot encode JSON")?;
    line(&text)
}

/// Whether `e` is standard output closing under us (e.g. `| head`).
pub(crate) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The `items` array of a list answer (empty if missing).
pub(crate) fn items(body: &Value) -> &[Value] {
    body.get("items")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Prints a list of identities.
pub(crate) fn identities(items: &[Value]) -> anyhow::Result<()> {
    line(&list_table(IDENTITY_COLUMNS, items).to_string())
}

/// Prints one identity.
pub(crate) fn identity(value: &Value) -> anyhow::Result<()> {
    line(&fields_table(IDENTITY_FIELDS, value).to_string())
}

/// Prints a list of credentials.
pub(crate) fn credentials(items: &[Value]) -> anyhow::Result<()> {
    line(&list_table(CREDENTIAL_COLUMNS, items).to_string())
}

/// Prints one credential.
pub(crate) fn credential(value: &Value) -> anyhow::Result<()> {
    line(&fields_table(CREDENTIAL_FIELDS, value).to_string())
}

/// Prints a list of admin tokens.
pub(crate) fn tokens(items: &[Value]) -> anyhow::Result<()> {
    line(&list_table(TOKEN_COLUMNS, items).to_string())
}

/// Prints one admin token.
pub(crate) fn token(value: &Value) -> anyhow::Result<()> {
    line(&fields_table(TOKEN_FIELDS, value).to_string())
}

/// Prints audit records.
pub(crate) fn records(items: &[Value]) -> anyhow::Result<()> {
    line(&list_table(RECORD_COLUMNS, items).to_string())
}

/// Prints a whoami answer.
pub(crate) fn whoami(value: &Value) -> anyhow::Result<()> {
    let present: Vec<(&str, &str)> = WHOAMI_FIELDS
        .iter()
        .copied()
        .filter(|(_, key)| value.get(key).is_some_and(|v| !v.is_null()))
        .collect();
    line(&fields_table(&present, value).to_string())
}

/// Prints a list of policy versions; `active` marks the deciding one
/// when the items do not say it themselves.
pub(crate) fn policy_versions(items: &[Value], active: Option<u64>) -> anyhow::Result<()> {
    let marked: Vec<Value> = items.iter().map(|v| mark_active(v, active)).collect();
    line(&list_table(POLICY_COLUMNS, &marked).to_string())
}

/// Prints one policy version (its metadata, not its files).
pub(crate) fn policy_version(value: &Value, active: Option<u64>) -> anyhow::Result<()> {
    line(&fields_table(POLICY_FIELDS, &mark_active(value, active)).to_string())
}

/// `value` with an `active` member, taken from `active` when it has none.
fn mark_active(value: &Value, active: Option<u64>) -> Value {
    let mut value = value.clone();
    if let Value::Object(map) = &mut value
        && !map.contains_key("active")
    {
        let is_active = active.is_some() && map.get("version").and_then(Value::as_u64) == active;
        map.insert("active".into(), Value::Bool(is_active));
    }
    value
}

fn new_table() -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table
}

/// One row per item, one column per field.
fn list_table(columns: &[(&str, &str)], items: &[Value]) -> Table {
    let mut table = new_table();
    table.set_header(columns.iter().map(|(title, _)| *title));
    for item in items {
        table.add_row(columns.iter().map(|(_, key)| cell(item.get(key))));
    }
    table
}

/// One row per field of one object.
fn fields_table(fields: &[(&str, &str)], value: &Value) -> Table {
    let mut table = new_table();
    for (label, key) in fields {
        table.add_row(vec![(*label).to_owned(), cell(value.get(key))]);
    }
    table
}

/// A JSON value as table text: times shortened, null as `-`.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => short_time(s).unwrap_or_else(|| s.clone()),
        Some(Value::Bool(true)) => "yes".to_owned(),
        Some(Value::Bool(false)) => "no".to_owned(),
        Some(other) => other.to_string(),
    }
}

/// An RFC 3339 time as `YYYY-MM-DD HH:MM:SSZ` (UTC), or `None` if `s` is
/// not one.
fn short_time(s: &str) -> Option<String> {
    let looks_like_time = s.len() >= 20 && s.as_bytes().get(10) == Some(&b'T');
    if !looks_like_time {
        return None;
    }
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| {
        t.with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%SZ")
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_are_readable() {
        assert_eq!(cell(None), "-");
        assert_eq!(cell(Some(&Value::Null)), "-");
        assert_eq!(cell(Some(&json!(true))), "yes");
        assert_eq!(cell(Some(&json!(42))), "42");
        assert_eq!(cell(Some(&json!({"a": 1}))), "{\"a\":1}");
        assert_eq!(
            cell(Some(&json!("2026-11-22T17:00:00.123456Z"))),
            "2026-11-22 17:00:00Z"
        );
        assert_eq!(cell(Some(&json!("agent:support-bot"))), "agent:support-bot");
    }

    #[test]
    fn list_tables_show_the_listed_columns() {
        let items = vec![json!({
            "id": "agent:support-bot", "kind": "agent", "owner": "human:alice@example.com",
            "environment": "prod", "status": "active", "orphaned": false
        })];
        let text = list_table(IDENTITY_COLUMNS, &items).to_string();
        for expected in [
            "ID",
            "ORPHANED",
            "agent:support-bot",
            "human:alice@example.com",
            "prod",
            "active",
            "no",
        ] {
            assert!(text.contains(expected), "{expected} missing from\n{text}");
        }
    }

    #[test]
    fn list_items_default_to_empty() {
        assert!(items(&json!({})).is_empty());
        assert_eq!(items(&json!({"items": [1, 2]})).len(), 2);
    }
}
