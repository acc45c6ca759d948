//! Rendering answers: pretty-printed JSON (`--output json`) or tables
//! (`--output table`, the default) for identities, credentials, admin
//! tokens, audit records, policy versions and token-signing keys, and
//! delegations as lineage trees and blast radiuses.
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

/// Columns of a token-signing key list.
const KEY_COLUMNS: &[(&str, &str)] = &[
    ("KID", "kid"),
    ("ALG", "alg"),
    ("SIGNING", "signing"),
    ("CREATED", "created_at"),
    ("RETIRED", "retired_at"),
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

/// Prints a list of token-signing keys.
pub(crate) fn keys(items: &[Value]) -> anyhow::Result<()> {
    line(&list_table(KEY_COLUMNS, items).to_string())
}

/// A lineage as a tree, one line per delegation, children below their
/// parent with `├─`/`└─`, in the order given (the server's: by depth, then
/// issue time). The `focus` delegation is marked with `*`. A delegation
/// whose parent is not in `delegations` is drawn as a root.
pub(crate) fn lineage_tree(delegations: &[Value], focus: Option<&str>) -> String {
    let id_of = |d: &Value| d.get("id").and_then(Value::as_str).map(str::to_owned);
    let ids: Vec<Option<String>> = delegations.iter().map(id_of).collect();
    let parent_of = |d: &Value| {
        d.get("parent")
            .and_then(Value::as_str)
            .filter(|p| ids.iter().flatten().any(|id| id == p))
            .map(str::to_owned)
    };
    let children = |of: Option<&str>| -> Vec<usize> {
        delegations
            .iter()
            .enumerate()
            .filter(|(_, d)| parent_of(d).as_deref() == of)
            .map(|(i, _)| i)
            .collect()
    };

    // Depth-first with an explicit stack (no recursion on server data); a
    // delegation is drawn once even if the data holds a cycle.
    let mut out = String::new();
    let mut drawn = vec![false; delegations.len()];
    let mut stack: Vec<(usize, String, Option<bool>)> = children(None)
        .into_iter()
        .rev()
        .map(|i| (i, String::new(), None))
        .collect();
    while let Some((index, prefix, last)) = stack.pop() {
        let (Some(d), Some(seen)) = (delegations.get(index), drawn.get_mut(index)) else {
            continue;
        };
        if std::mem::replace(seen, true) {
            continue;
        }
        let id = ids.get(index).cloned().flatten();
        let marker = if id.is_some() && id.as_deref() == focus {
            "* "
        } else {
            "  "
        };
        let (connector, child_prefix) = match last {
            None => ("", String::new()),
            Some(false) => ("├─ ", format!("{prefix}│  ")),
            Some(true) => ("└─ ", format!("{prefix}   ")),
        };
        out.push_str(&format!(
            "{marker}{prefix}{connector}{}\n",
            delegation_line(d)
        ));
        let below = id
            .as_deref()
            .map(|id| children(Some(id)))
            .unwrap_or_default();
        let count = below.len();
        for (n, child) in below.into_iter().enumerate().rev() {
            stack.push((child, child_prefix.clone(), Some(n + 1 == count)));
        }
    }
    out
}

/// One delegation on one line:
/// `delegator → actor  scope="…" audience=… depth=N  state  expires …  id`;
/// a lineage root (the subject's own grant) reads `subject (root)`.
pub(crate) fn delegation_line(d: &Value) -> String {
    let text = |key: &str| cell(d.get(key));
    let who = if d.get("parent").is_none_or(Value::is_null) {
        format!("{} (root)", text("actor"))
    } else {
        format!("{} → {}", text("delegator"), text("actor"))
    };
    format!(
        "{}  scope=\"{}\" audience={} depth={}  {}  expires {}  {}",
        who,
        d.get("scope").and_then(Value::as_str).unwrap_or(""),
        audience(d.get("audience")),
        text("depth"),
        text("state"),
        text("expires_at"),
        text("id"),
    )
}

/// A blast radius (`POST /v1/delegations/{id}/revoke`) for people: how
/// many delegations lose access, each as `actor scope`, and the identities
/// that held them.
pub(crate) fn blast_radius(answer: &Value) -> String {
    let root = answer.get("root").and_then(Value::as_str).unwrap_or("-");
    let dry_run = answer
        .get("dry_run")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let delegations = answer
        .get("delegations")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let identities: Vec<&str> = answer
        .get("identities")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let count = delegations.len();
    let noun = if count == 1 {
        "delegation"
    } else {
        "delegations"
    };
    let colon = if count == 0 { "" } else { ":" };
    let mut out = if dry_run {
        format!("revoking {root} would take access from {count} {noun}{colon}\n")
    } else {
        format!("revoked {root}: {count} {noun} lost access{colon}\n")
    };
    for d in delegations {
        out.push_str(&format!(
            "  {}  scope=\"{}\"  {}\n",
            cell(d.get("actor")),
            d.get("scope").and_then(Value::as_str).unwrap_or(""),
            cell(d.get("id")),
        ));
    }
    let who = if identities.is_empty() {
        "none".to_owned()
    } else {
        identities.join(", ")
    };
    if dry_run {
        out.push_str(&format!("identities that would lose access: {who}\n"));
        out.push_str("dry run: nothing was revoked");
    } else {
        out.push_str(&format!("identities that lost access: {who}"));
    }
    out
}

/// An audience list as text; empty means any resource server.
fn audience(value: Option<&Value>) -> String {
    let entries: Vec<&str> = value
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if entries.is_empty() {
        "any".to_owned()
    } else {
        entries.join(",")
    }
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

    /// A three-node lineage as `GET /v1/lineages/{txn}` lists it, plus a
    /// second child of the root.
    fn lineage() -> Vec<Value> {
        let node = |id: &str, parent: Option<&str>, delegator: &str, actor: &str, depth: u32| {
            json!({
                "id": id, "parent": parent, "lineage": "dlg_a", "subject": "human:alice@example.com",
                "delegator": delegator, "actor": actor, "credential": null,
                "scope": if depth == 0 { "read write" } else { "read" },
                "audience": if actor == "service:search" { json!(["https://search.example"]) } else { json!([]) },
                "depth": depth, "max_depth": 5, "max_fan_out": 10,
                "issued_at": "2026-11-22T17:00:00Z", "expires_at": "2026-11-22T17:15:00.5Z",
                "revoked_at": null, "state": if actor == "agent:other" { "revoked" } else { "active" }
            })
        };
        vec![
            node(
                "dlg_a",
                None,
                "human:alice@example.com",
                "human:alice@example.com",
                0,
            ),
            node(
                "dlg_b",
                Some("dlg_a"),
                "human:alice@example.com",
                "agent:bot",
                1,
            ),
            node(
                "dlg_d",
                Some("dlg_a"),
                "human:alice@example.com",
                "agent:other",
                1,
            ),
            node("dlg_c", Some("dlg_b"), "agent:bot", "service:search", 2),
        ]
    }

    #[test]
    fn a_lineage_is_drawn_as_a_tree_with_the_focus_marked() {
        let text = lineage_tree(&lineage(), Some("dlg_c"));
        let expected = "  human:alice@example.com (root)  scope=\"read write\" audience=any depth=0  active  expires 2026-11-22 17:15:00Z  dlg_a
  ├─ human:alice@example.com → agent:bot  scope=\"read\" audience=any depth=1  active  expires 2026-11-22 17:15:00Z  dlg_b
* │  └─ agent:bot → service:search  scope=\"read\" audience=https://search.example depth=2  active  expires 2026-11-22 17:15:00Z  dlg_c
  └─ human:alice@example.com → agent:other  scope=\"read\" audience=any depth=1  revoked  expires 2026-11-22 17:15:00Z  dlg_d
";
        assert_eq!(text, expected);
        let unmarked = lineage_tree(&lineage(), None);
        assert!(!unmarked.lines().any(|l| l.starts_with('*')), "{unmarked}");
    }

    #[test]
    fn the_traced_delegation_is_marked() {
        let text = lineage_tree(&lineage(), Some("dlg_b"));
        let marked: Vec<&str> = text.lines().filter(|l| l.starts_with("* ")).collect();
        assert_eq!(marked.len(), 1, "{text}");
        assert!(marked[0].contains("→ agent:bot "), "{text}");
        assert_eq!(lineage_tree(&[], None), "");
    }

    #[test]
    fn orphans_and_cycles_are_drawn_once() {
        let nodes = vec![
            json!({"id": "dlg_x", "parent": "dlg_gone", "delegator": "agent:a", "actor": "agent:b"}),
            json!({"id": "dlg_y", "parent": "dlg_z", "delegator": "agent:b", "actor": "agent:c"}),
            json!({"id": "dlg_z", "parent": "dlg_y", "delegator": "agent:c", "actor": "agent:b"}),
        ];
        let text = lineage_tree(&nodes, None);
        // dlg_x is a root (its parent is not listed); the cycle has no root
        // and is not drawn, and nothing loops.
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("dlg_x"), "{text}");
    }

    #[test]
    fn a_blast_radius_lists_who_loses_access() {
        let nodes = lineage();
        let answer = json!({
            "root": "dlg_b", "dry_run": true,
            "delegations": [nodes[1], nodes[3]],
            "identities": ["agent:bot", "service:search"]
        });
        let text = blast_radius(&answer);
        assert_eq!(
            text,
            "revoking dlg_b would take access from 2 delegations:
  agent:bot  scope=\"read\"  dlg_b
  service:search  scope=\"read\"  dlg_c
identities that would lose access: agent:bot, service:search
dry run: nothing was revoked"
        );
        let done = blast_radius(
            &json!({"root": "dlg_b", "dry_run": false, "delegations": [], "identities": []}),
        );
        assert_eq!(
            done,
            "revoked dlg_b: 0 delegations lost access\nidentities that lost access: none"
        );
    }

    #[test]
    fn list_items_default_to_empty() {
        assert!(items(&json!({})).is_empty());
        assert_eq!(items(&json!({"items": [1, 2]})).len(), 2);
    }
}
