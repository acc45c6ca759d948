//! Identity writes and reads against the embedded SQLite store (WAL,
//! synchronous=FULL) in a temporary directory: one identity per commit,
//! batches of 100 per commit, and a read by id.

#![allow(missing_docs, reason = "criterion entry points")]
#![expect(clippy::expect_used, reason = "benchmark setup")]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use handoff_audit::{Draft, Head, Outcome};
use handoff_core::{Attributes, Environment, Identity, IdentityId, Source, Status, Time};
use handoff_store::sqlite::SqliteStore;
use handoff_store::{Change, Store, Write};
use std::time::{Duration, Instant};

const BATCH: u64 = 100;
const PRELOADED: u64 = 1_000;

fn now() -> Time {
    chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
}

fn change(name: &str) -> Change {
    let id = IdentityId::parse(&format!("human:{name}")).expect("id");
    let record = Draft {
        time: now(),
        kind: "identity.create".into(),
        actor: "token:tok_0123456789abcdef".into(),
        target: id.to_string(),
        outcome: Outcome::Success,
        details: serde_json::json!({"environment": "prod"}),
    };
    let identity = Identity {
        id,
        owner: None,
        environment: Some(Environment::parse("prod").expect("environment")),
        attributes: Attributes::parse(serde_json::json!({"team": "payments", "tier": 2}))
            .expect("attributes"),
        source: Source::Manual,
        status: Status::Active,
        orphaned: false,
        created_at: now(),
        updated_at: now(),
    };
    Change {
        write: Write::CreateIdentity(identity),
        record,
    }
}

/// Commits `batches` batches of `size` new identities; returns the time taken.
async fn create(
    store: &SqliteStore,
    head: &mut Head,
    next: &mut u64,
    batches: u64,
    size: u64,
) -> Duration {
    let start = Instant::now();
    for _ in 0..batches {
        let changes = (0..size)
            .map(|_| {
                *next += 1;
                change(&format!("bench-{next}"))
            })
            .collect();
        let results = store.commit(changes, head).await.expect("commit");
        assert!(
            results.iter().all(Result::is_ok),
            "a bench write was refused"
        );
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = rt
        .block_on(SqliteStore::open(&tmp.path().join("bench.db")))
        .expect("store");
    let mut head = rt.block_on(store.audit_head()).expect("head");
    let mut next = 0;
    rt.block_on(create(
        &store,
        &mut head,
        &mut next,
        PRELOADED / BATCH,
        BATCH,
    ));

    let mut g = c.benchmark_group("identity_create");
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(1));
    g.bench_function("one_per_commit", |b| {
        b.iter_custom(|iters| rt.block_on(create(&store, &mut head, &mut next, iters, 1)));
    });
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("batch_of_100", |b| {
        b.iter_custom(|iters| rt.block_on(create(&store, &mut head, &mut next, iters, BATCH)));
    });
    g.finish();

    let mut g = c.benchmark_group("identity_read");
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("by_id", |b| {
        b.to_async(&rt).iter_batched(
            || {
                i = (i + 7919) % PRELOADED;
                IdentityId::parse(&format!("human:bench-{}", i + 1)).expect("id")
            },
            |id| {
                let store = &store;
                async move {
                    let found = store.identity(&id).await.expect("read");
                    assert!(found.is_some(), "a preloaded identity is missing");
                }
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
    rt.block_on(store.close());
}

criterion_group!(benches, bench);
criterion_main!(benches);
