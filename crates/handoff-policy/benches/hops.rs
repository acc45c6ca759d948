//! Per-hop evaluation against a raw Cedar baseline (issue 3).
//!
//! 50 policies over 1,000 entities (200 humans, 500 agents, 100 services,
//! 20 teams, 180 documents); one chain of 5 principals asks to `read` one
//! document, each hop with its own context.
//!
//! (a) `raw_cedar_5_principals`: `Authorizer::is_authorized` with the full
//!     policy set and the full entity store, the context built with
//!     `Context::from_json_value` — what a straightforward Cedar
//!     integration does per principal.
//! (b) `evaluate_hops_5_principals`: `Pdp::evaluate_hops` for the same 5
//!     principals and contexts.
//!
//! Both produce the same decisions (checked before timing).
//! Run: `cargo bench -p handoff-policy --bench hops`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmark code fails loudly"
)]

use cedar_policy::{Authorizer, Context, Entities, EntityUid, PolicySet, Request};
use criterion::{Criterion, criterion_group, criterion_main};
use handoff_core::{Attributes, Environment, Identity, IdentityId, Source, Status, Time};
use handoff_policy::{Action, Directory, Entity, Hop, PackFiles, Pdp, compile};
use serde_json::{Value, json};
use std::hint::black_box;
use std::str::FromStr;
use std::sync::Arc;

const TEAMS: usize = 20;
const HUMANS: usize = 200;
const AGENTS: usize = 500;
const SERVICES: usize = 100;
const DOCS: usize = 180;
const ACTIONS: [&str; 10] = [
    "read", "write", "delete", "share", "comment", "approve", "export", "archive", "restore",
    "audit",
];

const SCHEMA: &str = r#"
type IdentityAttributes = { tier?: Long };
entity Doc = { owner: Human, team: Team, classification: String };
action read, write, delete, share, comment, approve, export, archive, restore, audit appliesTo {
  principal: [Human, Agent, Service],
  resource: [Doc],
  context: { risk?: String, amount?: Long, ip?: String, hop?: Long },
};
"#;

/// 2 guardrails for every action plus 48 action-specific policies.
fn policies() -> String {
    let mut out = String::from(
        "@id(\"inactive\") forbid(principal, action, resource) unless { principal has status && principal.status == \"active\" };\n\
         @id(\"high-risk\") forbid(principal, action, resource) when { context has risk && context.risk == \"high\" };\n",
    );
    let mut n = 0;
    'outer: for (i, action) in ACTIONS.iter().enumerate() {
        let team = i % TEAMS;
        let rules = [
            format!(
                "permit(principal is Human in Team::\"t{team}\", action == Action::\"{action}\", resource is Doc) when {{ resource.classification != \"secret\" }};"
            ),
            format!(
                "permit(principal is Agent, action == Action::\"{action}\", resource is Doc) when {{ principal has environment && principal.environment == \"prod\" && principal.owner in resource.team }};"
            ),
            format!(
                "permit(principal is Service, action == Action::\"{action}\", resource is Doc) when {{ principal.owner.status == \"active\" && resource.classification == \"public\" }};"
            ),
            format!(
                "permit(principal, action == Action::\"{action}\", resource is Doc) when {{ resource.owner == principal }};"
            ),
            format!(
                "forbid(principal is Agent, action == Action::\"{action}\", resource is Doc) when {{ context has amount && context.amount > {} }};",
                100 * (i + 1)
            ),
        ];
        for rule in rules {
            if n == 48 {
                break 'outer;
            }
            out.push_str(&format!("@id(\"p{n}\") {rule}\n"));
            n += 1;
        }
    }
    out
}

fn identity(id: &str, owner: Option<String>, env: Option<&str>) -> Identity {
    Identity {
        id: IdentityId::parse(id).unwrap(),
        owner: owner.map(|o| IdentityId::parse(&o).unwrap()),
        environment: env.map(|e| Environment::parse(e).unwrap()),
        attributes: Attributes::parse(json!({"tier": 1})).unwrap(),
        source: Source::Manual,
        status: Status::Active,
        orphaned: false,
        created_at: Time::default(),
        updated_at: Time::default(),
    }
}

fn identities() -> Vec<Identity> {
    let mut out = Vec::new();
    for h in 0..HUMANS {
        out.push(identity(&format!("human:h{h}"), None, None));
    }
    for a in 0..AGENTS {
        let env = if a % 3 == 0 { "staging" } else { "prod" };
        out.push(identity(
            &format!("agent:a{a}"),
            Some(format!("human:h{}", a % HUMANS)),
            Some(env),
        ));
    }
    for s in 0..SERVICES {
        out.push(identity(
            &format!("service:s{s}"),
            Some(format!("human:h{}", s % HUMANS)),
            Some("prod"),
        ));
    }
    out
}

fn euid(ty: &str, id: &str) -> Value {
    json!({"__entity": {"type": ty, "id": id}})
}

/// entities.json of the pack: teams, documents, and human memberships.
fn pack_entities() -> Vec<Value> {
    let mut out = Vec::new();
    for t in 0..TEAMS {
        out.push(
            json!({"uid": {"type": "Team", "id": format!("t{t}")}, "attrs": {}, "parents": []}),
        );
    }
    for d in 0..DOCS {
        let class = ["public", "internal", "secret"][d % 3];
        out.push(json!({
            "uid": {"type": "Doc", "id": format!("d{d}")},
            "attrs": {"owner": euid("Human", &format!("h{}", d % HUMANS)), "team": euid("Team", &format!("t{}", d % TEAMS)), "classification": class},
            "parents": []
        }));
    }
    for h in 0..HUMANS {
        out.push(json!({"uid": {"type": "Human", "id": format!("h{h}")}, "parents": [{"type": "Team", "id": format!("t{}", h % TEAMS)}]}));
    }
    out
}

/// The same 1,000 entities as one Cedar entity store, for the baseline.
fn full_entities(identities: &[Identity]) -> Entities {
    let mut json_entities: Vec<Value> = pack_entities()
        .into_iter()
        .filter(|e| e["uid"]["type"] != "Human")
        .collect();
    for i in identities {
        let name = i.id.name();
        let ty = match i.kind() {
            handoff_core::Kind::Human => "Human",
            handoff_core::Kind::Agent => "Agent",
            handoff_core::Kind::Service => "Service",
        };
        let mut attrs = json!({"kind": i.kind().as_str(), "status": i.status.as_str(), "orphaned": i.orphaned, "attributes": {"tier": 1}});
        let mut parents = Vec::new();
        if let Some(env) = &i.environment {
            attrs["environment"] = json!(env.as_str());
        }
        if let Some(owner) = &i.owner {
            attrs["owner"] = euid("Human", owner.name());
            parents.push(json!({"type": "Human", "id": owner.name()}));
        }
        if ty == "Human" {
            let h: usize = name.trim_start_matches('h').parse().unwrap();
            parents.push(json!({"type": "Team", "id": format!("t{}", h % TEAMS)}));
        }
        json_entities
            .push(json!({"uid": {"type": ty, "id": name}, "attrs": attrs, "parents": parents}));
    }
    let entities = Entities::from_json_value(Value::Array(json_entities), None).unwrap();
    assert_eq!(entities.len(), TEAMS + DOCS + HUMANS + AGENTS + SERVICES);
    entities
}

/// The chain: a human, three agents and a service, reading one document.
fn chain() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "Human",
            "h17",
            json!({"risk": "low", "amount": 10, "ip": "10.0.0.1", "hop": 0}),
        ),
        (
            "Agent",
            "a17",
            json!({"risk": "low", "amount": 10, "ip": "10.0.0.1", "hop": 1}),
        ),
        (
            "Agent",
            "a217",
            json!({"risk": "low", "amount": 10, "ip": "10.0.0.1", "hop": 2}),
        ),
        (
            "Agent",
            "a417",
            json!({"risk": "low", "amount": 900, "ip": "10.0.0.1", "hop": 3}),
        ),
        (
            "Service",
            "s17",
            json!({"risk": "low", "amount": 10, "ip": "10.0.0.1", "hop": 4}),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let policy_text = policies();
    let mut files = PackFiles::default();
    files
        .files
        .insert("schema.cedarschema".into(), SCHEMA.into());
    files
        .files
        .insert("policies.cedar".into(), policy_text.clone());
    let entities_json = serde_json::to_string(&pack_entities()).unwrap();
    files.files.insert("entities.json".into(), entities_json);
    let compiled = Arc::new(compile(&files).unwrap_or_else(|d| panic!("{d:#?}")));
    assert_eq!(compiled.policy_count(), 50);
    let ids = identities();
    let pdp = Pdp::new(
        Arc::clone(&compiled),
        1,
        Directory::from_identities(ids.clone()),
    );

    // (a) raw Cedar
    let full_set = PolicySet::from_str(&policy_text).unwrap();
    assert_eq!(full_set.policies().count(), 50);
    let store = full_entities(&ids);
    let authorizer = Authorizer::new();
    let action_uid = EntityUid::from_str(r#"Action::"read""#).unwrap();
    let doc_uid = EntityUid::from_str(r#"Doc::"d17""#).unwrap();
    let raw_chain: Vec<(EntityUid, Value)> = chain()
        .into_iter()
        .map(|(ty, id, ctx)| {
            (
                EntityUid::from_str(&format!("{ty}::\"{id}\"")).unwrap(),
                ctx,
            )
        })
        .collect();
    let raw = || -> Vec<bool> {
        raw_chain
            .iter()
            .map(|(principal, ctx)| {
                let context = Context::from_json_value(ctx.clone(), None).unwrap();
                let request = Request::new(
                    principal.clone(),
                    action_uid.clone(),
                    doc_uid.clone(),
                    context,
                    None,
                )
                .unwrap();
                authorizer
                    .is_authorized(&request, &full_set, &store)
                    .decision()
                    == cedar_policy::Decision::Allow
            })
            .collect()
    };

    // (b) Handoff per-hop
    let hops: Vec<Hop> = chain()
        .into_iter()
        .map(|(ty, id, ctx)| Hop {
            principal: Entity::new(ty, id),
            context: ctx.as_object().unwrap().clone(),
        })
        .collect();
    let action = Action::new("read");
    let resource = Entity::new("Doc", "d17");
    let handoff = || -> Vec<bool> {
        pdp.evaluate_hops(&hops, &action, &resource)
            .into_iter()
            .map(|d| d.unwrap().allow)
            .collect()
    };

    let expected = raw();
    assert_eq!(handoff(), expected, "both paths decide alike");
    assert!(
        expected.contains(&true) && expected.contains(&false),
        "a mixed chain: {expected:?}"
    );

    let mut group = c.benchmark_group("hops");
    group.bench_function("raw_cedar_5_principals", |b| b.iter(|| black_box(raw())));
    group.bench_function("evaluate_hops_5_principals", |b| {
        b.iter(|| black_box(handoff()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
