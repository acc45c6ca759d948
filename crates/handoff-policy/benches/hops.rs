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
//! Both produce the same decisions (checked before timing). The fixture
//! (`fixture/mod.rs`) is shared with `handoff-engine`'s `chain` bench.
//! Run: `cargo bench -p handoff-policy --bench hops`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmark code fails loudly"
)]

mod fixture;

use criterion::{Criterion, criterion_group, criterion_main};
use fixture::{DOC, RawCedar, chain, identities, pack};
use handoff_policy::{Action, Directory, Entity, Hop, Pdp, compile};
use std::hint::black_box;
use std::sync::Arc;

fn bench(c: &mut Criterion) {
    let files = pack("", "", None);
    let compiled = Arc::new(compile(&files).unwrap_or_else(|d| panic!("{d:#?}")));
    assert_eq!(compiled.policy_count(), 50);
    let ids = identities();
    let pdp = Pdp::new(
        Arc::clone(&compiled),
        1,
        Directory::from_identities(ids.clone()),
    );

    // (a) raw Cedar
    let baseline = RawCedar::new(&ids);
    let raw = || baseline.decide();

    // (b) Handoff per-hop
    let hops: Vec<Hop> = chain()
        .into_iter()
        .map(|(ty, id, ctx)| Hop {
            principal: Entity::new(ty, id),
            context: ctx.as_object().unwrap().clone(),
        })
        .collect();
    let action = Action::new("read");
    let resource = Entity::new("Doc", DOC);
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
