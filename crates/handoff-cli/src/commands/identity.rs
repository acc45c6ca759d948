//! `handoff identity …`: create, list, show, update and change the status
//! of identities through `/v1/identities`.

use crate::client::{Client, segment};
use crate::output::{self, Format};
use crate::{CreateArgs, IdentityCommand, ListArgs, Status, StatusArgs, UpdateArgs};
use serde_json::{Map, Value, json};
use std::process::ExitCode;

/// Runs one `identity` subcommand.
pub(crate) async fn run(
    client: &Client,
    format: Format,
    cmd: IdentityCommand,
) -> anyhow::Result<ExitCode> {
    let identity = match cmd {
        IdentityCommand::Create(args) => create(client, args).await?,
        IdentityCommand::List(args) => {
            list(client, format, args).await?;
            return Ok(ExitCode::SUCCESS);
        }
        IdentityCommand::Show { id } => {
            client
                .get(&format!("/v1/identities/{}", segment(&id)?), &[])
                .await?
        }
        IdentityCommand::Update(args) => update(client, args).await?,
        IdentityCommand::Suspend(args) => set_status(client, Status::Suspended, args).await?,
        IdentityCommand::Resume(args) => set_status(client, Status::Active, args).await?,
        IdentityCommand::Disable(args) => set_status(client, Status::Disabled, args).await?,
        IdentityCommand::Decommission(args) => {
            set_status(client, Status::Decommissioned, args).await?
        }
    };
    match format {
        Format::Json => output::json(&identity)?,
        Format::Table => output::identity(&identity)?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn create(client: &Client, args: CreateArgs) -> anyhow::Result<Value> {
    let mut body = Map::new();
    body.insert("id".into(), Value::String(args.id));
    if let Some(owner) = args.owner {
        body.insert("owner".into(), Value::String(owner));
    }
    if let Some(env) = args.environment {
        body.insert("environment".into(), Value::String(env));
    }
    if let Some(attributes) = attributes(args.attributes_json, args.attr) {
        body.insert("attributes".into(), Value::Object(attributes));
    }
    client
        .post("/v1/identities", Some(&Value::Object(body)))
        .await
}

async fn list(client: &Client, format: Format, args: ListArgs) -> anyhow::Result<()> {
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(kind) = args.kind {
        query.push(("kind", kind.as_str().to_owned()));
    }
    if let Some(status) = args.status {
        query.push(("status", status.as_str().to_owned()));
    }
    if let Some(owner) = args.owner {
        query.push(("owner", owner));
    }
    if let Some(env) = args.environment {
        query.push(("environment", env));
    }
    if args.orphaned {
        query.push(("orphaned", "true".to_owned()));
    }
    if let Some(limit) = args.limit {
        query.push(("limit", limit.to_string()));
    }

    let mut cursor = args.cursor;
    let mut all = Vec::new();
    let next = loop {
        let mut page_query = query.clone();
        if let Some(c) = &cursor {
            page_query.push(("cursor", c.clone()));
        }
        let mut page = client.get("/v1/identities", &page_query).await?;
        let next = next_cursor(&page);
        if !args.all {
            if format == Format::Json {
                return output::json(&page);
            }
            if let Some(Value::Array(items)) = page.get_mut("items").map(Value::take) {
                all = items;
            }
            break next;
        }
        if let Some(Value::Array(items)) = page.get_mut("items").map(Value::take) {
            all.extend(items);
        }
        match next {
            // A server that repeats a cursor would loop forever.
            Some(n) if cursor.as_deref() != Some(n.as_str()) => cursor = Some(n),
            _ => break None,
        }
    };
    match format {
        Format::Json => output::json(&json!({"items": all, "next_cursor": null})),
        Format::Table => {
            output::identities(&all)?;
            if let Some(next) = next {
                eprintln!("more identities: add --cursor {next}, or --all for every page");
            }
            Ok(())
        }
    }
}

fn next_cursor(page: &Value) -> Option<String> {
    page.get("next_cursor")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

async fn update(client: &Client, args: UpdateArgs) -> anyhow::Result<Value> {
    let mut body = Map::new();
    if let Some(env) = args.env {
        body.insert("environment".into(), Value::String(env));
    } else if args.clear_env {
        body.insert("environment".into(), Value::Null);
    }
    if let Some(attributes) = attributes(args.attributes_json, args.attr) {
        body.insert("attributes".into(), Value::Object(attributes));
    }
    let path = format!("/v1/identities/{}", segment(&args.id)?);
    client.patch(&path, &Value::Object(body)).await
}

async fn set_status(client: &Client, status: Status, args: StatusArgs) -> anyhow::Result<Value> {
    let mut body = Map::new();
    body.insert("status".into(), Value::String(status.as_str().to_owned()));
    if let Some(reason) = args.reason {
        body.insert("reason".into(), Value::String(reason));
    }
    let path = format!("/v1/identities/{}/status", segment(&args.id)?);
    client.post(&path, Some(&Value::Object(body))).await
}

/// `--attributes-json` with `--attr` pairs added; `None` when neither was given.
fn attributes(
    object: Option<Map<String, Value>>,
    pairs: Vec<(String, String)>,
) -> Option<Map<String, Value>> {
    if object.is_none() && pairs.is_empty() {
        return None;
    }
    let mut map = object.unwrap_or_default();
    for (key, value) in pairs {
        map.insert(key, Value::String(value));
    }
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_pairs_extend_the_json_object() {
        assert_eq!(attributes(None, vec![]), None);
        let object = serde_json::from_str::<Map<String, Value>>(r#"{"tier": 1, "team": "x"}"#).ok();
        let merged = attributes(object, vec![("team".into(), "support".into())]).unwrap();
        assert_eq!(Value::Object(merged), json!({"tier": 1, "team": "support"}));
    }

    #[test]
    fn an_empty_or_missing_cursor_ends_the_listing() {
        assert_eq!(next_cursor(&json!({"next_cursor": null})), None);
        assert_eq!(next_cursor(&json!({"next_cursor": ""})), None);
        assert_eq!(next_cursor(&json!({})), None);
        assert_eq!(
            next_cursor(&json!({"next_cursor": "abc"})),
            Some("abc".into())
        );
    }
}
