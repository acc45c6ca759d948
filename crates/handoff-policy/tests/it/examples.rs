//! Every example pack compiles and passes its own tests.json; the
//! certification pack's searches answer as the AuthZEN fixture requires.

use crate::support::{example, example_dir, pdp};
use handoff_policy::{Action, Directory, Entity, run_tests};
use serde_json::{Map, json};

fn run_example(name: &str) -> handoff_policy::TestReport {
    let policies = example(name);
    let tests = std::fs::read_to_string(example_dir(name).join("tests.json")).unwrap();
    let report = run_tests(&policies, &Directory::default(), &tests).unwrap();
    assert!(
        report.is_success(),
        "{name}: {} passed, failures: {:#?}",
        report.passed,
        report.failures
    );
    report
}

#[test]
fn certification_pack_passes_its_tests() {
    assert_eq!(run_example("authzen-certification").passed, 13);
}

#[test]
fn todo_pack_passes_its_tests() {
    assert_eq!(run_example("authzen-todo").passed, 65);
}

#[test]
fn agents_pack_passes_its_tests() {
    assert_eq!(run_example("agents").passed, 24);
}

#[test]
fn agents_pack_samples_ticket_reads_in_the_decision_log() {
    let policies = example("agents");
    let settings = policies.settings();
    assert!(settings.should_log("issue_refund", 0.99));
    assert!(settings.should_log("read_ticket", 0.05));
    assert!(!settings.should_log("read_ticket", 0.5));
}

fn user(id: &str) -> Entity {
    Entity::new("user", id)
}

fn record(id: &str) -> Entity {
    Entity::new("record", id)
}

#[test]
fn certification_subject_search_finds_alice_and_bob() {
    let pdp = pdp(&example("authzen-certification"), Vec::new());
    let found = pdp
        .search_subjects(
            "user",
            &Action::new("read"),
            &record("record-1"),
            &Map::new(),
        )
        .unwrap();
    assert_eq!(found, ["alice", "bob"]);
    let writers = pdp
        .search_subjects(
            "user",
            &Action::new("write"),
            &record("record-1"),
            &Map::new(),
        )
        .unwrap();
    assert_eq!(writers, ["alice"]);
}

#[test]
fn certification_resource_search_finds_record_1_for_alice() {
    let pdp = pdp(&example("authzen-certification"), Vec::new());
    let readable = pdp
        .search_resources(&user("alice"), &Action::new("read"), "record", &Map::new())
        .unwrap();
    assert!(readable.contains(&"record-1".to_owned()), "{readable:?}");
    let writable = pdp
        .search_resources(&user("alice"), &Action::new("write"), "record", &Map::new())
        .unwrap();
    assert_eq!(writable, ["record-1"], "record-2 is archived");
}

#[test]
fn certification_action_search_for_alice_on_record_1() {
    let pdp = pdp(&example("authzen-certification"), Vec::new());
    let actions = pdp
        .search_actions(&user("alice"), &record("record-1"), &Map::new())
        .unwrap();
    assert!(actions.contains(&"read".to_owned()), "{actions:?}");
    assert!(actions.contains(&"write".to_owned()), "{actions:?}");
    assert!(
        !actions.contains(&"delete".to_owned()),
        "no soft flag: {actions:?}"
    );
}

#[test]
fn certification_searches_honour_properties_for_bob_as_admin() {
    let pdp = pdp(&example("authzen-certification"), Vec::new());
    let mut bob = user("bob");
    bob.properties.insert("role".into(), json!("admin"));
    let archived = record("record-2");

    let actions = pdp.search_actions(&bob, &archived, &Map::new()).unwrap();
    assert!(actions.contains(&"write".to_owned()), "{actions:?}");
    let plain = pdp
        .search_actions(&user("bob"), &archived, &Map::new())
        .unwrap();
    assert!(!plain.contains(&"write".to_owned()), "{plain:?}");

    let writable = pdp
        .search_resources(&bob, &Action::new("write"), "record", &Map::new())
        .unwrap();
    assert_eq!(writable, ["record-1", "record-2"]);

    let mut archived_props = record("record-1");
    archived_props
        .properties
        .insert("status".into(), json!("archived"));
    let writers = pdp
        .search_subjects("user", &Action::new("write"), &archived_props, &Map::new())
        .unwrap();
    assert!(writers.is_empty(), "nobody stored is an admin: {writers:?}");
}

#[test]
fn searches_return_identities_by_inventory_id() {
    let policies = example("agents");
    let identities = vec![
        crate::support::identity("human:alice@example.com", None, None),
        crate::support::identity(
            "agent:support-bot",
            Some("human:alice@example.com"),
            Some("prod"),
        ),
        crate::support::identity(
            "agent:draft-bot",
            Some("human:alice@example.com"),
            Some("staging"),
        ),
    ];
    let pdp = pdp(&policies, identities);
    let ticket = Entity::new("Support::Ticket", "T-1");
    let agents = pdp
        .search_subjects("agent", &Action::new("read_ticket"), &ticket, &Map::new())
        .unwrap();
    assert_eq!(agents, ["agent:support-bot"]);
    let tickets = pdp
        .search_resources(
            &Entity::new("human", "human:alice@example.com"),
            &Action::new("read_ticket"),
            "Support::Ticket",
            &Map::new(),
        )
        .unwrap();
    assert_eq!(tickets, ["T-1", "T-2"]);
    let actions = pdp
        .search_actions(&Entity::new("agent", "support-bot"), &ticket, &Map::new())
        .unwrap();
    assert_eq!(actions, ["read_ticket"]);
}
