//! Chain-aware decisions on a delegated token against the raw Cedar
//! baseline, and token exchange (issue 4).
//!
//! Fixture: the `hops` bench's 50 policies over 1,000 entities (shared by
//! path from `handoff-policy/benches/fixture`), plus an action `delegate`
//! and one policy permitting it. The 800 identities are created through
//! the engine, the pack is pushed, and a lineage is built with the
//! engine's own use cases: `human:h17` mints a development token, and five
//! token exchanges hand it to `agent:a17` → `agent:a217` → `agent:a417` →
//! `service:s17` → `service:s37` (depth 1 to 5). The first five identities
//! are the `hops` bench's chain.
//!
//! In one run:
//! (a) `raw_cedar_5_principals`: the `hops` baseline, unchanged — 5 ×
//!     `Authorizer::is_authorized` with the full policy set, the full entity
//!     store and `Context::from_json_value`.
//! (b) `chain_decision_5_hops`: `Engine::evaluate` on the depth-5 token
//!     (5 delegations below the root), decision log skipped for `read`:
//!     token verified (cache), chain loaded (cache) and checked live, scope
//!     checked, 6 per-hop evaluations (the root human and the 5 actors).
//!     `chain_decision_4_hops_5_principals` is the same on the depth-4
//!     token: 5 evaluations, the `hops` baseline's 5 principals.
//! (c) `chain_decision_5_hops_logged`: (b) with the decision logged (a
//!     second pack version logs `read`): one caller, so each decision waits
//!     for its own durable commit; `..._logged_64_callers`: 6,400 decisions
//!     from 64 concurrent callers (group commit).
//! (d) `token_exchange`: one RFC 8693 exchange (the agent's depth-1 token
//!     handed to a service), durable: delegation row and audit record
//!     committed before the token is signed; `token_exchange_32_callers`:
//!     3,200 exchanges from 32 concurrent callers on another parent.
//!
//! Before timing, the per-hop decisions of (b) are checked against (a).
//! Run: `cargo bench -p handoff-engine --bench chain`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmark code fails loudly"
)]

#[path = "../../handoff-policy/benches/fixture/mod.rs"]
mod fixture;

use chrono::TimeDelta;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fixture::{DOC, RawCedar, identities, pack};
use handoff_core::{DelegationId, IdentityId, Limits, Scope, SystemClock};
use handoff_engine::data_dir::DataDir;
use handoff_engine::delegation::token_type;
use handoff_engine::inventory::NewIdentity;
use handoff_engine::{
    Actor, Admin, AppenderSettings, Client, ClientAuth, DelegationSettings, Engine, Exchange,
};
use handoff_policy::{Action, Entity, Request};
use serde_json::json;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DELEGATE_SCHEMA: &str = "action delegate appliesTo { principal: [Human, Agent, Service], resource: [Human, Agent, Service] };\n";
const DELEGATE_POLICY: &str =
    "@id(\"delegate\") permit(principal, action == Action::\"delegate\", resource);\n";
const SKIP_READ: &str = "[decision_log.actions]\nread = \"skip\"\n";
const LOG_READ: &str = "[decision_log.actions]\nread = \"log\"\n";

const HUMAN: &str = "human:h17";
/// The actors below the root, depth 1 to 5.
const ACTORS: [&str; 5] = [
    "agent:a17",
    "agent:a217",
    "agent:a417",
    "service:s17",
    "service:s37",
];
/// Receives the exchanges of (d); on none of the chains it extends.
const RECEIVER: &str = "service:s37";

struct Setup {
    engine: Engine,
    /// The token held by `ACTORS[i]`, at depth `i + 1`.
    tokens: Vec<String>,
    /// The delegations those tokens carry.
    delegations: Vec<DelegationId>,
    receiver: Client,
    _tmp: tempfile::TempDir,
}

fn id(s: &str) -> IdentityId {
    IdentityId::parse(s).unwrap()
}

async fn client(engine: &Engine, admin: &Admin, who: &str) -> Client {
    let (_, secret) = engine
        .issue_credential(admin, &id(who), "bench".into(), None)
        .await
        .unwrap();
    engine
        .authenticate_client(ClientAuth::Secret {
            client_id: Some(who),
            secret: secret.expose(),
        })
        .await
        .unwrap()
}

fn exchange_of(token: &str) -> Exchange {
    Exchange {
        subject_token: token.to_owned(),
        subject_token_type: token_type::JWT.into(),
        ..Exchange::default()
    }
}

async fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path().join("data"));
    let engine = Engine::open(&dir, Arc::new(SystemClock), AppenderSettings::default())
        .await
        .unwrap()
        .with_delegation(DelegationSettings {
            dev: true,
            limits: Limits {
                max_depth: 8,
                max_fan_out: 1_000_000,
                // Children inherit what is left of the human's hour.
                default_lifetime: TimeDelta::hours(1),
                ..Limits::default()
            },
            ..DelegationSettings::default()
        });
    let admin = Admin::system();
    for i in identities() {
        let new = NewIdentity {
            id: i.id,
            owner: i.owner,
            environment: i.environment,
            attributes: i.attributes,
        };
        engine.create_identity(&admin, new).await.unwrap();
    }
    let pushed = engine
        .push_policies(
            &admin,
            pack(DELEGATE_SCHEMA, DELEGATE_POLICY, Some(SKIP_READ)),
        )
        .await
        .unwrap();
    assert_eq!(pushed.version.policy_count, 51);

    let mut token = engine
        .mint_human(
            &admin,
            &id(HUMAN),
            &Scope::parse("read").unwrap(),
            Some(3600),
        )
        .await
        .unwrap();
    let mut tokens = Vec::new();
    let mut delegations = Vec::new();
    for actor in ACTORS {
        let client = client(&engine, &admin, actor).await;
        let issued = engine.exchange(&client, exchange_of(&token)).await.unwrap();
        assert_eq!(issued.delegation.actor.as_str(), actor);
        token = issued.access_token;
        tokens.push(token.clone());
        delegations.push(issued.delegation.id);
    }
    assert_eq!(tokens.len(), 5);
    let receiver = client(&engine, &admin, RECEIVER).await;
    Setup {
        engine,
        tokens,
        delegations,
        receiver,
        _tmp: tmp,
    }
}

/// `read` on the document by the current actor of `token`.
fn request(actor: &str, token: &str) -> Request {
    let (kind, _) = actor.split_once(':').unwrap();
    let mut subject = Entity::new(kind, actor);
    subject.properties.insert("token".into(), json!(token));
    let context = json!({"risk": "low", "amount": 10, "ip": "10.0.0.1"});
    Request {
        subject,
        action: Action::new("read"),
        resource: Entity::new("Doc", DOC),
        context: context.as_object().unwrap().clone(),
    }
}

/// `n` decisions one after another.
async fn decide(engine: &Engine, req: &Request, n: u64) -> Duration {
    let actor = Actor::System;
    let start = Instant::now();
    for _ in 0..n {
        black_box(engine.evaluate(&actor, req).await.unwrap());
    }
    start.elapsed()
}

/// `n` decisions from `callers` concurrent tasks.
async fn decide_concurrently(engine: &Engine, req: &Request, n: u64, callers: u64) -> Duration {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let engine = engine.clone();
        let req = req.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..n / callers {
                black_box(engine.evaluate(&Actor::System, &req).await.unwrap());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

/// `n` exchanges of `token` by `client` from `callers` concurrent tasks.
async fn exchange(engine: &Engine, client: &Client, token: &str, n: u64, callers: u64) -> Duration {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let engine = engine.clone();
        let client = client.clone();
        let token = token.to_owned();
        tasks.push(tokio::spawn(async move {
            for _ in 0..n / callers {
                let issued = engine.exchange(&client, exchange_of(&token)).await;
                black_box(issued.unwrap());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let setup = rt.block_on(setup());
    let engine = &setup.engine;
    let baseline = RawCedar::new(&identities());

    let depth5 = request(ACTORS[4], &setup.tokens[4]);
    let depth4 = request(ACTORS[3], &setup.tokens[3]);

    // The engine decides each hop as the baseline does.
    let expected = baseline.decide();
    let check = |req: &Request, hops: usize| {
        let decision = rt.block_on(engine.evaluate(&Actor::System, req)).unwrap();
        assert!(decision.errors.is_empty(), "{decision:#?}");
        assert_eq!(decision.hops.len(), hops, "{decision:#?}");
        let allows: Vec<bool> = decision.hops.iter().map(|h| h.allow).collect();
        assert_eq!(allows[..5], expected[..], "{decision:#?}");
        assert!(!decision.allow);
        allows
    };
    let allows5 = check(&depth5, 6);
    check(&depth4, 5);
    println!("per-hop decisions (depth-5 token): {allows5:?}; baseline: {expected:?}");

    let mut g = c.benchmark_group("chain");
    g.bench_function("raw_cedar_5_principals", |b| {
        b.iter(|| black_box(baseline.decide()));
    });
    g.bench_function("chain_decision_5_hops", |b| {
        b.iter_custom(|iters| rt.block_on(decide(engine, &depth5, iters)));
    });
    g.bench_function("chain_decision_4_hops_5_principals", |b| {
        b.iter_custom(|iters| rt.block_on(decide(engine, &depth4, iters)));
    });

    // (c) the same decision, logged.
    let admin = Admin::system();
    let pushed = rt
        .block_on(engine.push_policies(
            &admin,
            pack(DELEGATE_SCHEMA, DELEGATE_POLICY, Some(LOG_READ)),
        ))
        .unwrap();
    assert_eq!(pushed.version.version, 2);
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("chain_decision_5_hops_logged", |b| {
        b.iter_custom(|iters| rt.block_on(decide(engine, &depth5, iters)));
    });
    g.sample_size(10);
    g.throughput(Throughput::Elements(6_400));
    g.bench_function("chain_decision_5_hops_logged_64_callers", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += decide_concurrently(engine, &depth5, 6_400, 64).await;
                }
                total
            })
        });
    });

    // (d) token exchange, durable.
    g.throughput(Throughput::Elements(1));
    g.bench_function("token_exchange", |b| {
        b.iter_custom(|iters| {
            rt.block_on(exchange(
                engine,
                &setup.receiver,
                &setup.tokens[0],
                iters,
                1,
            ))
        });
    });
    g.throughput(Throughput::Elements(3_200));
    g.bench_function("token_exchange_32_callers", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += exchange(engine, &setup.receiver, &setup.tokens[1], 3_200, 32).await;
                }
                total
            })
        });
    });
    g.finish();
    for (what, parent) in [
        ("token_exchange", &setup.delegations[0]),
        ("token_exchange_32_callers", &setup.delegations[1]),
    ] {
        let n = rt.block_on(engine.store().live_children(parent)).unwrap();
        println!("{what}: the parent ended with {n} live children");
    }
    rt.block_on(engine.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
