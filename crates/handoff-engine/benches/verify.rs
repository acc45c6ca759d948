//! End-to-end audit verification: 1,000,000 records read back from the
//! embedded SQLite store and checked, as `handoff audit verify` does.

#![allow(missing_docs, reason = "criterion entry points")]
#![expect(clippy::expect_used, reason = "benchmark setup")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use handoff_audit::{Draft, Outcome};
use handoff_core::{Clock, SystemClock};
use handoff_engine::{AppenderSettings, Engine, Keys};
use handoff_store::sqlite::SqliteStore;
use handoff_store::{Change, Write};
use std::sync::Arc;

const RECORDS: u64 = 1_000_000;

async fn fill(engine: &Engine) {
    let writers = 256;
    let per = RECORDS / writers;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let clock = SystemClock;
            for i in 0..per {
                let change = Change {
                    write: Write::Nothing,
                    record: Draft {
                        time: clock.now(),
                        kind: "identity.create".into(),
                        actor: "token:tok_0123456789abcdef".into(),
                        target: format!("agent:bot-{w}-{i}"),
                        outcome: Outcome::Success,
                        details: serde_json::json!({"environment": "prod", "owner": "human:alice@example.com"}),
                    },
                };
                engine.appender().submit(change).await.expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tmp = tempfile::tempdir().expect("tempdir");
    let keys = Arc::new(Keys::ephemeral().expect("keys"));
    let key = keys.public_key();
    let store = rt.block_on(async {
        let store = Arc::new(
            SqliteStore::open(&tmp.path().join("bench.db"))
                .await
                .expect("store"),
        );
        let engine = Engine::start(
            store.clone(),
            keys,
            Arc::new(SystemClock),
            AppenderSettings::default(),
        )
        .await
        .expect("engine");
        fill(&engine).await;
        engine.shutdown().await;
        store
    });
    let mut g = c.benchmark_group("audit_verify_store");
    g.sample_size(10);
    g.throughput(Throughput::Elements(RECORDS));
    g.bench_function("1M_records_from_sqlite", |b| {
        b.iter(|| {
            rt.block_on(handoff_engine::audit::verify_store(store.clone(), &key))
                .expect("intact")
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
