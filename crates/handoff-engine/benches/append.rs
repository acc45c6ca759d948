//! Audit append throughput through the engine's appender into the embedded
//! SQLite store (WAL, synchronous=FULL): one record per commit versus group
//! commit with many concurrent submitters.

#![allow(missing_docs, reason = "criterion entry points")]
#![expect(clippy::expect_used, reason = "benchmark setup")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use handoff_audit::{Draft, Outcome};
use handoff_core::{Clock, SystemClock};
use handoff_engine::{AppenderSettings, Engine, Keys};
use handoff_store::sqlite::SqliteStore;
use handoff_store::{Change, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

async fn engine(dir: &std::path::Path) -> Engine {
    let store = SqliteStore::open(&dir.join("bench.db"))
        .await
        .expect("store");
    Engine::start(
        Arc::new(store),
        Arc::new(Keys::ephemeral().expect("keys")),
        Arc::new(SystemClock),
        AppenderSettings::default(),
    )
    .await
    .expect("engine")
}

/// Appends `n` records from `writers` concurrent tasks; returns the elapsed time.
async fn append(engine: &Engine, n: u64, writers: u64) -> Duration {
    let start = Instant::now();
    let per = n / writers;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let engine = engine.clone();
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
    let tmp = tempfile::tempdir().expect("tempdir");
    let engine = rt.block_on(engine(tmp.path()));
    let mut g = c.benchmark_group("audit_append");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(200));
    g.bench_function("single_record_per_commit", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += append(&engine, 200, 1).await;
                }
                total
            })
        });
    });
    g.throughput(Throughput::Elements(20_000));
    g.bench_function("group_commit_256_writers", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += append(&engine, 20_000, 256).await;
                }
                total
            })
        });
    });
    g.finish();
    rt.block_on(engine.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
