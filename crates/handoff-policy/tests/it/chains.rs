//! Per-hop evaluation, and the entity gathering it relies on: everything a
//! policy can reach (owners, teams, entity-valued attributes, entity
//! literals, ancestors of ancestors) is present, and nothing leaks between hops.

use crate::support::{example, identity, pack, pdp};
use handoff_core::Status;
use handoff_policy::{Action, Decision, Entity, Hop, MAX_HOPS, PolicyError, compile};
use serde_json::{Map, Value, json};
use std::sync::Arc;

fn hop(kind: &str, id: &str, context: Value) -> Hop {
    let Value::Object(context) = context else {
        panic!("context is an object")
    };
    Hop {
        principal: Entity::new(kind, id),
        context,
    }
}

fn support_pdp() -> handoff_policy::Pdp {
    let mut carol = identity("human:carol@example.com", None, None);
    carol.status = Status::Suspended;
    pdp(
        &example("agents"),
        vec![
            identity("human:alice@example.com", None, None),
            identity("human:bob@example.com", None, None),
            carol,
            identity(
                "agent:support-bot",
                Some("human:alice@example.com"),
                Some("prod"),
            ),
            identity(
                "agent:billing-bot",
                Some("human:bob@example.com"),
                Some("prod"),
            ),
        ],
    )
}

fn allows(results: &[Result<Decision, PolicyError>]) -> Vec<bool> {
    results.iter().map(|r| r.as_ref().unwrap().allow).collect()
}

#[test]
fn every_hop_gets_its_own_decision_and_context() {
    let pdp = support_pdp();
    let refund = Action::new("issue_refund");
    let order = Entity::new("Support::Order", "O-1");
    let results = pdp.evaluate_hops(
        &[
            hop("human", "alice@example.com", json!({"amount": 500})),
            hop("agent", "support-bot", json!({"amount": 500})),
            hop("agent", "support-bot", json!({"amount": 50})),
            hop(
                "agent",
                "support-bot",
                json!({"amount": 50, "risk": "high"}),
            ),
            hop("agent", "billing-bot", json!({"amount": 50})),
        ],
        &refund,
        &order,
    );
    assert_eq!(allows(&results), [true, false, true, false, false]);
    let first = results[0].as_ref().unwrap();
    assert_eq!(first.reasons, ["support-staff-issue-refunds"]);
    let second = results[1].as_ref().unwrap();
    assert_eq!(
        second.reasons,
        ["large-refunds-need-a-human"],
        "the forbid determines the deny"
    );
    assert!(results[4].as_ref().unwrap().reasons.is_empty());
}

#[test]
fn the_owner_and_its_teams_are_reached_through_the_agent() {
    // `principal.owner in Team::"support"` needs the owner entity and the
    // owner's membership from entities.json, neither of which is the principal.
    let pdp = support_pdp();
    let req = handoff_policy::Request {
        subject: Entity::new("Agent", "agent:support-bot"),
        action: Action::new("issue_refund"),
        resource: Entity::new("Support::Order", "O-1"),
        context: Map::new(),
    };
    let decision = pdp.evaluate(&req).unwrap();
    assert!(decision.allow, "{decision:?}");
    assert_eq!(decision.reasons, ["support-agents-issue-refunds"]);
}

const DOCS_SCHEMA: &str = r#"
entity Doc = { assignee: Human, team: Team };
action review appliesTo { principal: [Human, Agent], resource: [Doc] };
"#;

fn docs_pdp(
    policy: &str,
    entities: &str,
    identities: Vec<handoff_core::Identity>,
) -> handoff_policy::Pdp {
    let files = pack(&[
        ("schema.cedarschema", DOCS_SCHEMA),
        ("p.cedar", policy),
        ("entities.json", entities),
    ]);
    let policies = compile(&files).unwrap_or_else(|d| panic!("{d:#?}"));
    pdp(&Arc::new(policies), identities)
}

const DOCS: &str = r#"[
  {"uid": {"type": "Team", "id": "org"}, "attrs": {"name": "Org"}, "parents": []},
  {"uid": {"type": "Team", "id": "eng"}, "attrs": {"name": "Engineering"}, "parents": [{"type": "Team", "id": "org"}]},
  {"uid": {"type": "Human", "id": "alice"}, "parents": [{"type": "Team", "id": "eng"}]},
  {"uid": {"type": "Doc", "id": "d1"}, "attrs": {"assignee": {"type": "Human", "id": "alice"}, "team": {"type": "Team", "id": "eng"}}, "parents": []},
  {"uid": {"type": "Doc", "id": "d2"}, "attrs": {"assignee": {"type": "Human", "id": "bob"}, "team": {"type": "Team", "id": "eng"}}, "parents": []}
]"#;

fn review(pdp: &handoff_policy::Pdp, who: (&str, &str), doc: &str) -> Decision {
    pdp.evaluate(&handoff_policy::Request {
        subject: Entity::new(who.0, who.1),
        action: Action::new("review"),
        resource: Entity::new("Doc", doc),
        context: Map::new(),
    })
    .unwrap()
}

#[test]
fn entities_reached_only_through_attributes_are_gathered() {
    let policy =
        "permit(principal, action, resource) when { resource.assignee.status == \"active\" };";
    let mut bob = identity("human:bob", None, None);
    bob.status = Status::Suspended;
    let pdp = docs_pdp(
        policy,
        DOCS,
        vec![
            identity("human:alice", None, None),
            bob,
            identity("human:carol", None, None),
        ],
    );
    let d1 = review(&pdp, ("human", "carol"), "d1");
    assert!(d1.allow, "alice (the assignee) is active: {d1:?}");
    let d2 = review(&pdp, ("human", "carol"), "d2");
    assert!(
        !d2.allow && d2.errors.is_empty(),
        "bob is suspended: {d2:?}"
    );
}

#[test]
fn ancestors_of_ancestors_and_memberships_count_for_in() {
    let policy = "permit(principal in Team::\"org\", action, resource);";
    let pdp = docs_pdp(
        policy,
        DOCS,
        vec![
            identity("human:alice", None, None),
            identity("human:bob", None, None),
            identity("agent:helper", Some("human:alice"), None),
        ],
    );
    assert!(
        review(&pdp, ("human", "alice"), "d1").allow,
        "alice in eng in org"
    );
    assert!(
        !review(&pdp, ("human", "bob"), "d1").allow,
        "bob is in no team"
    );
    assert!(
        review(&pdp, ("agent", "helper"), "d1").allow,
        "an agent is in its owner's teams"
    );
}

#[test]
fn entity_literals_in_policies_are_gathered() {
    let policy = "permit(principal, action, resource) when { Team::\"eng\" has name && Team::\"eng\".name == \"Engineering\" && resource.team == Team::\"eng\" };";
    let pdp = docs_pdp(policy, DOCS, vec![identity("human:carol", None, None)]);
    let d = review(&pdp, ("human", "carol"), "d1");
    assert!(d.allow && d.errors.is_empty(), "{d:?}");
}

#[test]
fn hop_properties_do_not_leak_into_other_hops() {
    // Hop 1 reads its owner's attributes; hop 2 is that owner with
    // properties. Hop 1 must see the stored owner, as it would alone.
    let schema = "type IdentityAttributes = { senior?: Bool };\nentity Doc = { assignee: Human, team: Team };\naction review appliesTo { principal: [Human, Agent], resource: [Doc] };";
    let policy = r#"
        permit(principal is Agent, action, resource) when { principal.owner.attributes has senior && principal.owner.attributes.senior };
        permit(principal is Human, action, resource) when { principal.attributes has senior && principal.attributes.senior };
    "#;
    let files = pack(&[
        ("schema.cedarschema", schema),
        ("p.cedar", policy),
        ("entities.json", DOCS),
    ]);
    let policies = Arc::new(compile(&files).unwrap_or_else(|d| panic!("{d:#?}")));
    let pdp = pdp(
        &policies,
        vec![
            identity("human:alice", None, None),
            identity("agent:helper", Some("human:alice"), None),
        ],
    );
    let mut alice = hop("human", "alice", json!({}));
    alice
        .principal
        .properties
        .insert("attributes".into(), json!({"senior": true}));
    let results = pdp.evaluate_hops(
        &[hop("agent", "helper", json!({})), alice],
        &Action::new("review"),
        &Entity::new("Doc", "d1"),
    );
    assert_eq!(allows(&results), [false, true]);
}

#[test]
fn inventory_attributes_cannot_be_overridden_by_properties() {
    let pdp = support_pdp();
    let mut carol = Entity::new("human", "carol@example.com");
    carol.properties.insert("status".into(), json!("active"));
    let decision = pdp
        .evaluate(&handoff_policy::Request {
            subject: carol,
            action: Action::new("read_ticket"),
            resource: Entity::new("Support::Ticket", "T-1"),
            context: Map::new(),
        })
        .unwrap();
    assert!(!decision.allow);
    assert_eq!(decision.reasons, ["inactive-identities-do-nothing"]);
    assert!(
        decision
            .errors
            .iter()
            .any(|e| e.contains("\"status\" comes from the inventory")),
        "{decision:?}"
    );
}

#[test]
fn request_problems_fail_their_hop_only() {
    let pdp = support_pdp();
    let results = pdp.evaluate_hops(
        &[
            hop("human", "alice@example.com", json!({})),
            hop("not a type", "x", json!({})),
            hop("human", "agent:support-bot", json!({})),
        ],
        &Action::new("read_ticket"),
        &Entity::new("Support::Ticket", "T-1"),
    );
    assert!(results[0].as_ref().unwrap().allow);
    assert_eq!(
        results[1].as_ref().unwrap_err(),
        &PolicyError::InvalidType("not a type".into())
    );
    assert!(matches!(results[2], Err(PolicyError::InvalidId { .. })));
}

#[test]
fn chains_longer_than_the_limit_are_refused() {
    let pdp = support_pdp();
    let hops: Vec<Hop> = (0..=MAX_HOPS)
        .map(|_| hop("human", "alice@example.com", json!({})))
        .collect();
    let results = pdp.evaluate_hops(
        &hops,
        &Action::new("read_ticket"),
        &Entity::new("Support::Ticket", "T-1"),
    );
    assert_eq!(results.len(), MAX_HOPS + 1);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(PolicyError::TooManyHops(n)) if *n == MAX_HOPS + 1))
    );
    let ok = pdp.evaluate_hops(
        &hops[..MAX_HOPS],
        &Action::new("read_ticket"),
        &Entity::new("Support::Ticket", "T-1"),
    );
    assert!(ok.iter().all(|r| r.as_ref().unwrap().allow));
}

#[test]
fn a_hop_no_policy_applies_to_is_denied_without_reasons() {
    let pdp = pdp(&example("authzen-certification"), Vec::new());
    let results = pdp.evaluate_hops(
        &[
            hop("user", "alice", json!({})),
            hop("user", "alice", json!({})),
        ],
        &Action::new("no_such_action"),
        &Entity::new("record", "record-1"),
    );
    assert_eq!(results.len(), 2);
    let d = results[0].as_ref().unwrap();
    assert!(
        !d.allow && d.reasons.is_empty() && d.errors.is_empty(),
        "{d:?}"
    );
}

#[test]
fn directory_updates_show_in_the_next_snapshot_only() {
    let policies = example("agents");
    let mut directory = handoff_policy::Directory::from_identities([identity(
        "human:alice@example.com",
        None,
        None,
    )]);
    let before = handoff_policy::Pdp::new(Arc::clone(&policies), 1, directory.clone());
    let mut suspended = identity("human:alice@example.com", None, None);
    suspended.status = Status::Suspended;
    directory.upsert(&suspended);
    let after = handoff_policy::Pdp::new(Arc::clone(&policies), 1, directory);
    let req = handoff_policy::Request {
        subject: Entity::new("human", "alice@example.com"),
        action: Action::new("read_ticket"),
        resource: Entity::new("Support::Ticket", "T-1"),
        context: Map::new(),
    };
    assert!(before.evaluate(&req).unwrap().allow);
    assert!(!after.evaluate(&req).unwrap().allow);
    assert_eq!(after.version(), 1);
}

#[test]
fn subject_and_resource_may_be_the_same_entity_with_both_overlays() {
    let schema = "entity user = { a?: Long, b?: Long };\naction look appliesTo { principal: [user], resource: [user] };";
    let policy = "permit(principal, action, resource) when { principal == resource && principal has a && resource has b && principal.a == 1 && resource.b == 2 };";
    let policies = Arc::new(
        compile(&pack(&[
            ("schema.cedarschema", schema),
            ("p.cedar", policy),
        ]))
        .unwrap(),
    );
    let pdp = pdp(&policies, Vec::new());
    let mut subject = Entity::new("user", "u");
    subject.properties.insert("a".into(), json!(1));
    let mut resource = Entity::new("user", "u");
    resource.properties.insert("b".into(), json!(2));
    let req = handoff_policy::Request {
        subject,
        action: Action::new("look"),
        resource,
        context: Map::new(),
    };
    assert!(pdp.evaluate(&req).unwrap().allow);
}

#[test]
fn evaluation_errors_are_reported_with_the_policy_id() {
    let policy = "@id(\"reads-assignee\") permit(principal, action, resource) when { resource.assignee.status == \"active\" };";
    let pdp = docs_pdp(policy, DOCS, vec![identity("human:carol", None, None)]);
    // d2's assignee bob is not in the inventory: the attribute read fails.
    let d = review(&pdp, ("human", "carol"), "d2");
    assert!(!d.allow);
    assert_eq!(d.errors.len(), 1, "{d:?}");
    assert!(d.errors[0].starts_with("reads-assignee: "), "{d:?}");
}

#[test]
fn gathering_is_bounded() {
    // An identity in more teams than the gathering limit.
    let n = handoff_policy::MAX_GATHERED_ENTITIES + 1;
    let teams: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"type": "Team", "id": "t{i}"}}"#))
        .collect();
    let mut entities = vec![format!(
        r#"{{"uid": {{"type": "Human", "id": "alice"}}, "parents": [{}]}}"#,
        teams.join(",")
    )];
    for i in 0..n {
        entities.push(format!(
            r#"{{"uid": {{"type": "Team", "id": "t{i}"}}, "attrs": {{}}, "parents": []}}"#
        ));
    }
    let entities = format!("[{}]", entities.join(",\n"));
    let pdp = docs_pdp(
        "permit(principal in Team::\"t1\", action, resource);",
        &entities,
        vec![identity("human:alice", None, None)],
    );
    let err = pdp
        .evaluate(&handoff_policy::Request {
            subject: Entity::new("human", "alice"),
            action: Action::new("review"),
            resource: Entity::new("Doc", "d1"),
            context: Map::new(),
        })
        .unwrap_err();
    assert_eq!(err, PolicyError::TooManyEntities);
}

#[test]
fn deep_hierarchies_are_refused_when_the_pack_is_compiled() {
    let team = |i: usize, parent: Option<usize>| {
        let parents = parent
            .map(|p| format!(r#"{{"type": "Team", "id": "t{p}"}}"#))
            .unwrap_or_default();
        format!(
            r#"{{"uid": {{"type": "Team", "id": "t{i}"}}, "attrs": {{}}, "parents": [{parents}]}}"#
        )
    };
    let chain = |len: usize| {
        let items: Vec<String> = (0..len)
            .map(|i| team(i, (i + 1 < len).then_some(i + 1)))
            .collect();
        format!("[{}]", items.join(",\n"))
    };
    let compile_with = |entities: &str| {
        compile(&pack(&[
            ("schema.cedarschema", DOCS_SCHEMA),
            ("entities.json", entities),
        ]))
    };
    assert!(compile_with(&chain(32)).is_ok(), "32 levels are fine");
    let d = compile_with(&chain(5000)).unwrap_err();
    assert_eq!(d.len(), 1);
    assert!(
        d[0].message.contains("more than 32 levels deep"),
        "{}",
        d[0].message
    );
    let cycle = format!("[{},\n{}]", team(0, Some(1)), team(1, Some(0)));
    let d = compile_with(&cycle).unwrap_err();
    assert!(d[0].message.contains("cycle"), "{}", d[0].message);
}
