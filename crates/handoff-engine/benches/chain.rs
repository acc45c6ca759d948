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
//!     for its own durable commit; `..._logged_64_callers`: 3,200 decisions
//!     from 64 concurrent callers (group commit).
//! (d) `token_exchange`: one RFC 8693 exchange by one caller, durable
//!     (delegation row and audit record committed before the token is
//!     signed): an agent's depth-1 token handed to a service. The subject
//!     tokens rotate over a pool of 1,000 agent tokens (one lineage each)
//!     so that no parent collects more than a few dozen children;
//!     `token_exchange_32_callers`: 320 exchanges from 32 concurrent
//!     callers over the same pool (group commit).
//!     Then, outside criterion, a fan-out scan: the mean latency of 200
//!     sequential exchanges of ONE parent token when that parent already
//!     has 0, 1,000, 2,000, 4,000 and 8,000 live children (the children in
//!     between are added through the appender as plain rows).
//!
//! With `HANDOFF_BENCH_ENGINE_CASCADE=1`, last: one revocation through the
//! engine (`revoke_delegation`, what the admin API and CLI call) of a root
//! with 100,000 descendants (fan-out up to 10, depth 5, added through the
//! appender), timed once, next to one `blast_radius` of the same root.
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
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use fixture::{DOC, RawCedar, identities, pack};
use handoff_audit::{Draft, Outcome};
use handoff_core::{Delegation, DelegationId, IdentityId, Limits, Scope, SystemClock};
use handoff_engine::data_dir::DataDir;
use handoff_engine::delegation::token_type;
use handoff_engine::inventory::NewIdentity;
use handoff_engine::{
    Actor, Admin, AppenderSettings, Client, ClientAuth, DelegationSettings, Engine, Exchange,
};
use handoff_policy::{Action, Entity, Request};
use handoff_store::{Change, Write};
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
/// Agent tokens (depth 1, one lineage each) the exchanges of (d) rotate over.
const POOL: usize = 1_000;
/// Live children of one parent at which the fan-out scan measures.
const SCAN: [u32; 5] = [0, 1_000, 2_000, 4_000, 8_000];
/// Exchanges timed at each step of the scan.
const SCAN_EXCHANGES: u64 = 200;

struct Setup {
    engine: Engine,
    /// The token held by `ACTORS[i]`, at depth `i + 1`.
    tokens: Vec<String>,
    /// The delegations those tokens carry.
    delegations: Vec<Delegation>,
    /// `POOL` tokens of `ACTORS[0]`, each from its own exchange of the
    /// human's token.
    pool: Vec<String>,
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
        delegations.push(issued.delegation);
    }
    assert_eq!(tokens.len(), 5);
    let receiver = client(&engine, &admin, RECEIVER).await;
    let human = engine
        .mint_human(
            &admin,
            &id(HUMAN),
            &Scope::parse("read").unwrap(),
            Some(3600),
        )
        .await
        .unwrap();
    let agent = client(&engine, &admin, ACTORS[0]).await;
    let mut pool = Vec::new();
    for _ in 0..POOL {
        let issued = engine.exchange(&agent, exchange_of(&human)).await.unwrap();
        pool.push(issued.access_token);
    }
    Setup {
        engine,
        tokens,
        delegations,
        pool,
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

/// `n` exchanges by `client` from `callers` concurrent tasks, the subject
/// tokens taken in turn from `tokens` starting at `*next`.
async fn exchange(
    engine: &Engine,
    client: &Client,
    tokens: &Arc<Vec<String>>,
    next: &mut usize,
    n: u64,
    callers: u64,
) -> Duration {
    let per = n / callers;
    let first = *next;
    *next += usize::try_from(per * callers).unwrap();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let engine = engine.clone();
        let client = client.clone();
        let tokens = Arc::clone(tokens);
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let k = first + usize::try_from(caller * per + i).unwrap();
                let token = &tokens[k % tokens.len()];
                let issued = engine.exchange(&client, exchange_of(token)).await;
                black_box(issued.unwrap());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

/// Adds `n` live children below `parent` through the appender (plain rows,
/// one audit record per 500), as if `n` exchanges had been made.
async fn add_children(engine: &Engine, parent: &Delegation, n: u32, seed: &mut u64) {
    let receiver = id(RECEIVER);
    let mut left = n;
    while left > 0 {
        let batch = left.min(500);
        left -= batch;
        let rows: Vec<Delegation> = (0..batch)
            .map(|_| {
                *seed += 1;
                let mut bytes = [0xb5; 16];
                bytes[8..].copy_from_slice(&seed.to_be_bytes());
                Delegation {
                    id: DelegationId::from_random(bytes),
                    parent: Some(parent.id.clone()),
                    delegator: parent.actor.clone(),
                    actor: receiver.clone(),
                    credential: None,
                    depth: parent.depth + 1,
                    revoked_at: None,
                    ..parent.clone()
                }
            })
            .collect();
        let change = Change {
            write: Write::CreateDelegations(rows),
            record: Draft {
                time: engine.clock().now(),
                kind: "bench.children".into(),
                actor: "system".into(),
                target: parent.id.to_string(),
                outcome: Outcome::Success,
                details: json!({ "children": batch }),
            },
        };
        engine.appender().submit(change).await.unwrap();
    }
}

/// Mean latency of sequential exchanges of one parent token as its
/// live children grow through `SCAN`.
async fn fan_out_scan(setup: &Setup) -> Vec<(u32, Duration)> {
    let engine = &setup.engine;
    // The depth-4 delegation (service:s17's): no child yet, and RECEIVER
    // is not on its chain.
    let parent = &setup.delegations[3];
    let token = Arc::new(vec![setup.tokens[3].clone()]);
    let mut seed = 0;
    let mut out = Vec::new();
    let mut next = 0;
    for target in SCAN {
        let have = engine
            .store()
            .live_children(&parent.id, engine.clock().now())
            .await
            .unwrap();
        add_children(engine, parent, target.saturating_sub(have), &mut seed).await;
        let have = engine
            .store()
            .live_children(&parent.id, engine.clock().now())
            .await
            .unwrap();
        let took = exchange(
            engine,
            &setup.receiver,
            &token,
            &mut next,
            SCAN_EXCHANGES,
            1,
        )
        .await;
        out.push((have, took / u32::try_from(SCAN_EXCHANGES).unwrap()));
    }
    out
}

/// Adds a root for `HUMAN` and 100,000 descendants (10 per node, breadth
/// first) through the appender; returns the root.
async fn big_lineage(engine: &Engine, template: &Delegation) -> Delegation {
    const DESCENDANTS: usize = 100_000;
    let mut seed = 0xc0de_u64;
    let mut fresh = || {
        seed += 1;
        let mut bytes = [0x7e; 16];
        bytes[8..].copy_from_slice(&seed.to_be_bytes());
        DelegationId::from_random(bytes)
    };
    let root_id = fresh();
    let root = Delegation {
        id: root_id.clone(),
        parent: None,
        lineage: root_id.clone(),
        subject: id(HUMAN),
        delegator: id(HUMAN),
        actor: id(HUMAN),
        credential: None,
        depth: 0,
        max_fan_out: 10,
        revoked_at: None,
        ..template.clone()
    };
    let actors: Vec<IdentityId> = identities()
        .into_iter()
        .filter(|i| i.id.kind() != handoff_core::Kind::Human)
        .map(|i| i.id)
        .collect();
    let mut all = vec![root.clone()];
    let mut parent = 0;
    while all.len() < DESCENDANTS + 1 {
        let p = all[parent / 10].clone();
        let n = all.len();
        all.push(Delegation {
            id: fresh(),
            parent: Some(p.id.clone()),
            delegator: p.actor.clone(),
            actor: actors[n % actors.len()].clone(),
            depth: p.depth + 1,
            ..root.clone()
        });
        parent += 1;
    }
    for batch in all.chunks(1_000) {
        let change = Change {
            write: Write::CreateDelegations(batch.to_vec()),
            record: Draft {
                time: engine.clock().now(),
                kind: "bench.lineage".into(),
                actor: "system".into(),
                target: root_id.to_string(),
                outcome: Outcome::Success,
                details: json!({ "delegations": batch.len() }),
            },
        };
        engine.appender().submit(change).await.unwrap();
    }
    root
}

/// One engine revocation of a root with 100,000 descendants: the blast
/// radius alone, then `revoke_delegation`.
async fn engine_cascade(setup: &Setup) -> (Duration, Duration, Duration) {
    let engine = &setup.engine;
    let start = Instant::now();
    let root = big_lineage(engine, &setup.delegations[0]).await;
    let built = start.elapsed();
    let start = Instant::now();
    let radius = engine.blast_radius(&root.id).await.unwrap();
    let blast = start.elapsed();
    assert_eq!(radius.delegations.len(), 100_001);
    let start = Instant::now();
    let revoked = engine
        .revoke_delegation(&Admin::system(), &root.id, false)
        .await
        .unwrap();
    let revoke = start.elapsed();
    assert_eq!(revoked.delegations.len(), 100_001);
    let after = engine.lineage(&root.id).await.unwrap();
    assert_eq!(after.len(), 100_001);
    assert!(after.iter().all(|d| d.revoked_at.is_some()));
    (built, blast, revoke)
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
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(3_200));
    g.bench_function("chain_decision_5_hops_logged_64_callers", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += decide_concurrently(engine, &depth5, 3_200, 64).await;
                }
                total
            })
        });
    });

    // (d) token exchange, durable.
    let pool = Arc::new(setup.pool.clone());
    let mut next = 0;
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(1));
    g.bench_function("token_exchange", |b| {
        b.iter_custom(|iters| {
            rt.block_on(exchange(
                engine,
                &setup.receiver,
                &pool,
                &mut next,
                iters,
                1,
            ))
        });
    });
    g.throughput(Throughput::Elements(320));
    g.bench_function("token_exchange_32_callers", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += exchange(engine, &setup.receiver, &pool, &mut next, 320, 32).await;
                }
                total
            })
        });
    });
    g.finish();
    println!(
        "token exchange: {next} exchanges over {POOL} parent tokens (about {} children each)",
        next / POOL
    );

    // `cargo test --benches` runs each benchmark once without `--bench`;
    // the measurements below are only wanted in a real run.
    if !std::env::args().any(|a| a == "--bench") {
        rt.block_on(engine.shutdown());
        return;
    }
    println!("fan-out scan: one parent, {SCAN_EXCHANGES} sequential exchanges per step");
    for (children, mean) in rt.block_on(fan_out_scan(&setup)) {
        println!(
            "  {children:>5} live children: {:.2} ms per exchange",
            mean.as_secs_f64() * 1e3
        );
    }
    if std::env::var_os("HANDOFF_BENCH_ENGINE_CASCADE").is_some() {
        let (built, blast, revoke) = rt.block_on(engine_cascade(&setup));
        println!(
            "engine cascade: 100,001 delegations added in {:.1} s; blast_radius {:.0} ms; \
             revoke_delegation (blast radius, again inside, and the commit) {:.0} ms",
            built.as_secs_f64(),
            blast.as_secs_f64() * 1e3,
            revoke.as_secs_f64() * 1e3
        );
    }
    rt.block_on(engine.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
