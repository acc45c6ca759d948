//! The Cedar schema of a pack: Handoff's built-in fragment (identities and
//! teams, in the empty namespace) merged with the operator's fragment.
//!
//! The identity types carry the inventory attributes. Their free-form
//! `attributes` record has the common type `IdentityAttributes`, which the
//! operator may declare (in the empty namespace) to type the attributes
//! their policies read; when they do not, it is the empty record.

use crate::diagnostic::{Diagnostic, find_quoted_name, from_cedar_in};
use crate::names::{AGENT, HUMAN, SERVICE, TEAM};
use crate::pack::{PackFiles, SCHEMA_FILE, SCHEMA_JSON_FILE};
use cedar_policy::{Schema, SchemaFragment};

/// Name under which diagnostics about the built-in fragment are reported.
pub(crate) const BUILTIN_FILE: &str = "(built-in schema)";

/// Handoff's fragment, without the default `IdentityAttributes`.
pub(crate) const BUILTIN_SCHEMA: &str = r#"// Handoff's built-in entity types (empty namespace).
entity Team in [Team] = {
  name?: String,
};
entity Human in [Team] = {
  kind: String,
  status: String,
  environment?: String,
  orphaned: Bool,
  attributes: IdentityAttributes,
};
entity Agent in [Human, Team] = {
  kind: String,
  status: String,
  environment?: String,
  orphaned: Bool,
  owner: Human,
  attributes: IdentityAttributes,
};
entity Service in [Human, Team] = {
  kind: String,
  status: String,
  environment?: String,
  orphaned: Bool,
  owner: Human,
  attributes: IdentityAttributes,
};
"#;

/// Declared when the operator does not declare `IdentityAttributes`.
const DEFAULT_ATTRIBUTES: &str = "type IdentityAttributes = {};\n";

/// The merged schema, or the diagnostics that prevent it.
pub(crate) fn build(files: &PackFiles) -> Result<Schema, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let text_file = files.files.get(SCHEMA_FILE);
    let json_file = files.files.get(SCHEMA_JSON_FILE);
    if text_file.is_some() && json_file.is_some() {
        diags.push(Diagnostic::at_line(
            SCHEMA_JSON_FILE,
            1,
            1,
            format!("a pack has one schema: keep \"{SCHEMA_FILE}\" or \"{SCHEMA_JSON_FILE}\""),
        ));
        return Err(diags);
    }
    let operator = match (text_file, json_file) {
        (Some(text), _) => parse_text(text).map(|f| Some((SCHEMA_FILE, text.as_str(), f))),
        (None, Some(text)) => parse_json(text).map(|f| Some((SCHEMA_JSON_FILE, text.as_str(), f))),
        (None, None) => Ok(None),
    }
    .map_err(|d| vec![d])?;

    let declares_attributes = operator
        .as_ref()
        .is_some_and(|(_, _, f)| declares_identity_attributes(f));
    if let Some((file, text, fragment)) = &operator {
        diags.extend(reserved_names(file, text, fragment));
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    let builtin_text = if declares_attributes {
        BUILTIN_SCHEMA.to_owned()
    } else {
        format!("{BUILTIN_SCHEMA}{DEFAULT_ATTRIBUTES}")
    };
    let builtin = parse_text(&builtin_text).map_err(|d| {
        vec![Diagnostic {
            file: BUILTIN_FILE.into(),
            ..d
        }]
    })?;
    let mut fragments = vec![builtin];
    let mut candidates = Vec::new();
    if let Some((file, text, fragment)) = operator {
        fragments.push(fragment);
        candidates.push((file, text));
    }
    candidates.push((BUILTIN_FILE, builtin_text.as_str()));
    // A span points into the fragment it came from; report it there.
    Schema::from_schema_fragments(fragments).map_err(|e| vec![from_cedar_in(&candidates, &e)])
}

fn parse_text(text: &str) -> Result<SchemaFragment, Diagnostic> {
    if let Some(d) = crate::limits::check_schema_text(SCHEMA_FILE, text) {
        return Err(d);
    }
    SchemaFragment::from_cedarschema_str(text)
        .map(|(fragment, _warnings)| fragment)
        .map_err(|e| Diagnostic::from_cedar(SCHEMA_FILE, text, &e))
}

fn parse_json(text: &str) -> Result<SchemaFragment, Diagnostic> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Diagnostic::at_line(SCHEMA_JSON_FILE, e.line(), e.column(), json_message(&e))
    })?;
    if crate::limits::json_depth(&value) > 2 * crate::limits::MAX_NESTING {
        return Err(Diagnostic::at_line(
            SCHEMA_JSON_FILE,
            1,
            1,
            format!(
                "the schema nests deeper than {} levels",
                2 * crate::limits::MAX_NESTING
            ),
        ));
    }
    SchemaFragment::from_json_value(value)
        .map_err(|e| Diagnostic::from_cedar(SCHEMA_JSON_FILE, text, &e))
}

/// serde_json's message without its trailing " at line L column C".
pub(crate) fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text.get(..i).unwrap_or_default().to_owned(),
        None => text,
    }
}

/// The operator's fragment as JSON: `{namespace: {entityTypes, actions, commonTypes}}`.
fn fragment_json(fragment: &SchemaFragment) -> serde_json::Value {
    fragment
        .to_json_string()
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

fn declares_identity_attributes(fragment: &SchemaFragment) -> bool {
    fragment_json(fragment)
        .get("")
        .and_then(|ns| ns.get("commonTypes"))
        .and_then(|c| c.get("IdentityAttributes"))
        .is_some()
}

/// Handoff's types may not be redeclared in the empty namespace.
fn reserved_names(file: &str, text: &str, fragment: &SchemaFragment) -> Vec<Diagnostic> {
    let json = fragment_json(fragment);
    let Some(types) = json.get("").and_then(|ns| ns.get("entityTypes")) else {
        return Vec::new();
    };
    [HUMAN, AGENT, SERVICE, TEAM]
        .into_iter()
        .filter(|name| types.get(*name).is_some())
        .map(|name| {
            let message = format!(
                "entity type `{name}` is built into handoff: declare your own types under other names or in a namespace"
            );
            let offset = text
                .find(&format!("entity {name}"))
                .or_else(|| find_quoted_name(text, &message))
                .unwrap_or(0);
            Diagnostic::at(file, text, offset, message)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn pack(files: &[(&str, &str)]) -> PackFiles {
        PackFiles {
            files: files
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn type_names(schema: &Schema) -> Vec<String> {
        let mut names: Vec<_> = schema.entity_types().map(ToString::to_string).collect();
        names.sort();
        names
    }

    #[test]
    fn builtin_types_are_always_present() {
        let schema = build(&PackFiles::default()).unwrap();
        assert_eq!(type_names(&schema), ["Agent", "Human", "Service", "Team"]);
    }

    #[test]
    fn operator_namespace_and_empty_namespace_coexist() {
        let schema = build(&pack(&[(
            SCHEMA_FILE,
            "entity User;\nnamespace Acme { entity Doc; action read appliesTo { principal: [Human, User], resource: [Doc] }; }",
        )]))
        .unwrap();
        assert_eq!(
            type_names(&schema),
            ["Acme::Doc", "Agent", "Human", "Service", "Team", "User"]
        );
    }

    #[test]
    fn json_schemas_are_accepted() {
        let schema = build(&pack(&[(
            SCHEMA_JSON_FILE,
            r#"{"": {"entityTypes": {"User": {}}, "actions": {}}}"#,
        )]))
        .unwrap();
        assert!(type_names(&schema).contains(&"User".to_owned()));
    }

    #[test]
    fn operator_may_type_identity_attributes() {
        let schema = build(&pack(&[(
            SCHEMA_FILE,
            "type IdentityAttributes = { team?: String };\nentity Doc;",
        )]));
        assert!(schema.is_ok(), "{schema:?}");
    }

    #[test]
    fn redeclaring_a_builtin_type_is_reported_where_it_is() {
        let diags = build(&pack(&[(SCHEMA_FILE, "entity Doc;\nentity Human;")])).unwrap_err();
        assert_eq!(diags.len(), 1);
        assert_eq!((diags[0].line, diags[0].column), (2, 1));
        assert!(
            diags[0].message.contains("`Human` is built into handoff"),
            "{}",
            diags[0].message
        );
    }

    #[test]
    fn schema_errors_carry_file_line_and_column() {
        let diags = build(&pack(&[(SCHEMA_FILE, "entity Doc {\n  owner: Usr,\n};")])).unwrap_err();
        assert_eq!(diags[0].file, SCHEMA_FILE);
        assert_eq!((diags[0].line, diags[0].column), (2, 10));
        assert!(diags[0].message.contains("Usr"), "{}", diags[0].message);

        let diags = build(&pack(&[(
            SCHEMA_FILE,
            "entity Doc {\n  owner: String\n  x: Long };",
        )]))
        .unwrap_err();
        assert_eq!((diags[0].line, diags[0].file.as_str()), (3, SCHEMA_FILE));

        let diags = build(&pack(&[(
            SCHEMA_JSON_FILE,
            "{\n  \"\": {\"entityTypes\": }\n}",
        )]))
        .unwrap_err();
        assert_eq!(
            (diags[0].file.as_str(), diags[0].line),
            (SCHEMA_JSON_FILE, 2)
        );

        let diags = build(&pack(&[(SCHEMA_FILE, "x"), (SCHEMA_JSON_FILE, "{}")])).unwrap_err();
        assert!(diags[0].message.starts_with("a pack has one schema"));
    }
}
