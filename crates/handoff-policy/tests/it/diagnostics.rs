//! A rejected pack reports every problem with file, line and column.

use crate::support::pack;
use handoff_policy::{Diagnostic, compile};

const SCHEMA: &str = "entity User = { level: Long };\nentity Doc;\naction read appliesTo { principal: [User, Human], resource: [Doc] };\n";

fn errors(files: &[(&str, &str)]) -> Vec<Diagnostic> {
    match compile(&pack(files)) {
        Ok(_) => panic!("the pack should be rejected"),
        Err(d) => d,
    }
}

fn at(d: &Diagnostic) -> (&str, u32, u32) {
    (d.file.as_str(), d.line, d.column)
}

#[test]
fn parse_errors_keep_their_own_file_and_position() {
    let d = errors(&[
        ("schema.cedarschema", SCHEMA),
        ("a.cedar", "permit(principal, action, resource);\n"),
        (
            "b.cedar",
            "// two good lines\npermit(principal, action, resource);\npermit(principal, action, resource) when { principal.level == };\n",
        ),
        ("c.cedar", "\n\n   forbid(principal action, resource);"),
    ]);
    assert_eq!(d.len(), 2, "{d:#?}");
    assert_eq!(at(&d[0]), ("b.cedar", 3, 63));
    assert!(
        d[0].message.starts_with("unexpected token `}`"),
        "{}",
        d[0].message
    );
    assert_eq!(at(&d[1]), ("c.cedar", 3, 21));
}

#[test]
fn validation_errors_point_into_the_policy_file() {
    let d = errors(&[
        ("schema.cedarschema", SCHEMA),
        (
            "ok.cedar",
            "permit(principal is User, action == Action::\"read\", resource);\n",
        ),
        (
            "bad.cedar",
            "permit(principal is User, action == Action::\"read\", resource);\n\npermit(principal is User, action == Action::\"read\", resource)\nwhen { principal.level == \"high\" };\n",
        ),
    ]);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(at(&d[0]), ("bad.cedar", 4, 8));
    assert!(
        d[0].message.contains("bad.cedar:2"),
        "the policy id names file and ordinal: {}",
        d[0].message
    );
    assert!(d[0].message.contains("not compatible"), "{}", d[0].message);
}

#[test]
fn unknown_attributes_and_actions_are_validation_errors() {
    let d = errors(&[
        ("schema.cedarschema", SCHEMA),
        (
            "p.cedar",
            "@id(\"typo\")\npermit(principal is User, action == Action::\"read\", resource)\nwhen { principal.levle > 1 };\npermit(principal, action == Action::\"wirte\", resource);\n",
        ),
    ]);
    assert_eq!(d.len(), 2, "{d:#?}");
    assert_eq!(at(&d[0]), ("p.cedar", 3, 8));
    assert!(
        d[0].message.contains("`typo`") && d[0].message.contains("did you mean `level`"),
        "{}",
        d[0].message
    );
    assert_eq!(d[1].line, 4);
    assert!(d[1].message.contains("wirte"), "{}", d[1].message);
}

#[test]
fn every_kind_of_problem_is_reported_at_once() {
    let d = errors(&[
        ("schema.cedarschema", SCHEMA),
        ("p.cedar", "permit(principal is Nope, action, resource);\n"),
        (
            "entities.json",
            "[\n  {\"uid\": {\"type\": \"User\", \"id\": \"u\"}, \"attrs\": {}, \"parents\": []}\n]",
        ),
        ("pack.toml", "[decision_log]\ndefault = \"maybe\"\n"),
        ("notes.txt", "hello"),
    ]);
    let files: Vec<&str> = d.iter().map(|d| d.file.as_str()).collect();
    assert_eq!(
        files,
        ["entities.json", "notes.txt", "p.cedar", "pack.toml"],
        "{d:#?}"
    );
    assert_eq!((d[0].line, d[0].column), (2, 3));
    assert!(
        d[0].message.contains("level"),
        "the missing attribute is named: {}",
        d[0].message
    );
    assert!(d[1].message.starts_with("unexpected file \"notes.txt\""));
    assert!(d[2].message.contains("Nope"), "{}", d[2].message);
    assert_eq!((d[3].line, d[3].column), (2, 11));
    for diag in &d {
        assert!(
            diag.message
                .chars()
                .next()
                .is_some_and(|c| !c.is_uppercase()),
            "{diag}"
        );
    }
}

#[test]
fn schema_errors_stop_validation_but_not_parsing() {
    let d = errors(&[
        ("schema.cedarschema", "entity User = { level: Lnog };\n"),
        (
            "p.cedar",
            "permit(principal, action, resource) when { 1 + };\n",
        ),
    ]);
    assert_eq!(d.len(), 2, "{d:#?}");
    assert_eq!(at(&d[0]), ("p.cedar", 1, 48));
    assert_eq!(at(&d[1]), ("schema.cedarschema", 1, 24));
}

#[test]
fn duplicate_ids_and_templates_are_refused() {
    let d = errors(&[
        ("schema.cedarschema", SCHEMA),
        (
            "a.cedar",
            "@id(\"same\")\npermit(principal, action, resource);\n",
        ),
        (
            "b.cedar",
            "\n@id(\"same\")\npermit(principal, action, resource);\npermit(principal == ?principal, action, resource);\n",
        ),
    ]);
    assert_eq!(d.len(), 2, "{d:#?}");
    assert_eq!(at(&d[0]), ("b.cedar", 2, 5));
    assert!(
        d[0].message
            .contains("duplicate policy id \"same\" (first in a.cedar)"),
        "{}",
        d[0].message
    );
    assert_eq!(at(&d[1]), ("b.cedar", 4, 21));
    assert!(d[1].message.contains("templates"), "{}", d[1].message);
}

#[test]
fn a_valid_pack_compiles_with_file_ordinal_and_annotation_ids() {
    let policies = compile(&pack(&[
        ("schema.cedarschema", SCHEMA),
        ("b.cedar", "permit(principal, action, resource);\n@id(\"named\") forbid(principal, action, resource) when { false };\n"),
        ("a.cedar", "permit(principal is User, action, resource);\n"),
        ("tests.json", "[]"),
        ("README.md", "# pack"),
    ]))
    .unwrap();
    assert_eq!(policies.policy_ids(), ["a.cedar:1", "b.cedar:1", "named"]);
    assert_eq!(policies.policy_count(), 3);
    assert_eq!(policies.actions(), ["read"]);
}

#[test]
fn oversized_packs_are_refused_before_parsing() {
    let big = " ".repeat(handoff_policy::MAX_PACK_BYTES + 1);
    let d = errors(&[("a.cedar", &big)]);
    assert_eq!(d.len(), 1);
    assert!(d[0].message.contains("larger than"), "{}", d[0].message);
}
