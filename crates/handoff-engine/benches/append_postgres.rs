//! Durable audit group commit on PostgreSQL: records appended through the
//! engine's appender into a shared database, by one node and by two nodes
//! (two engines, two connection pools) writing one chain.
//!
//! Needs PostgreSQL at `HANDOFF_BENCH_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each run uses a fresh schema
//! and drops it. Run: `cargo bench -p handoff-engine --bench append_postgres`.

#![allow(missing_docs, reason = "criterion entry points")]
#![expect(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "benchmark setup"
)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use handoff_audit::{Draft, Outcome};
use handoff_core::{Clock, SystemClock};
use handoff_engine::master_key::MasterKey;
use handoff_engine::{AppenderSettings, Engine};
use handoff_store::postgres::{PgStore, drop_schema};
use handoff_store::{Change, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn url() -> String {
    std::env::var("HANDOFF_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn change(clock: &SystemClock, i: u64) -> Change {
    Change {
        write: Write::Nothing,
        record: Draft {
            time: clock.now(),
            kind: "bench.event".into(),
            actor: "token:tok_0123456789abcdef".into(),
            target: format!("agent:bot-{i}"),
            outcome: Outcome::Success,
            details: serde_json::json!({"environment": "prod", "i": i}),
        },
    }
}

/// `nodes` engines on one fresh schema, sharing keys as nodes do.
async fn nodes(schema: &str, nodes: usize) -> Vec<Engine> {
    let key = MasterKey::generate_text().expect("master key");
    let mut engines = Vec::new();
    for _ in 0..nodes {
        let store = PgStore::open_in_schema(&url(), schema)
            .await
            .expect("PostgreSQL for the benchmark (HANDOFF_BENCH_DATABASE_URL)");
        let engine = Engine::start_shared(
            Arc::new(store),
            MasterKey::parse(&key).expect("master key"),
            handoff_engine::jwt::Algorithm::EdDSA,
            Arc::new(SystemClock),
            AppenderSettings::default(),
        )
        .await
        .expect("engine");
        engines.push(engine);
    }
    engines
}

/// Appends `n` records from `writers` tasks spread over `engines`.
async fn append(engines: &[Engine], n: u64, writers: u64) -> Duration {
    let start = Instant::now();
    let per = n / writers;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let engine = engines[(w as usize) % engines.len()].clone();
        tasks.push(tokio::spawn(async move {
            let clock = SystemClock;
            for i in 0..per {
                engine
                    .appender()
                    .submit(change(&clock, w * per + i))
                    .await
                    .expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut g = c.benchmark_group("audit_append_postgres");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(15));
    g.throughput(Throughput::Elements(50_000));
    for (name, count) in [
        ("group_commit_512_writers_1_node", 1),
        ("group_commit_512_writers_2_nodes", 2),
    ] {
        let schema = format!("bench_append_{}_{count}", std::process::id());
        let engines = rt.block_on(nodes(&schema, count));
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += append(&engines, 50_000, 512).await;
                    }
                    total
                })
            });
        });
        rt.block_on(async {
            let report = handoff_engine::audit::verify_store(
                engines[0].store().clone(),
                &engines[0].keys().public_key(),
            )
            .await
            .expect("the chain verifies after the run");
            println!("{name}: chain of {} records verifies", report.records);
            for e in &engines {
                e.shutdown().await;
            }
            drop_schema(&url(), &schema).await.expect("drop schema");
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
