//! Verification throughput: how fast a log of records can be checked.

#![allow(missing_docs, reason = "criterion entry points")]
#![expect(clippy::expect_used, reason = "benchmark setup")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use handoff_audit::{Draft, Head, Outcome, Signer, verify::verify_all};

fn records(n: u64) -> (Signer, Vec<handoff_audit::Record>) {
    let signer = Signer::from_pkcs8(&Signer::generate_pkcs8().expect("key")).expect("key");
    let mut head = Head::EMPTY;
    let t0 = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default();
    let out = (0..n)
        .map(|i| {
            head.seal(Draft {
                time: t0 + chrono::TimeDelta::microseconds(i64::try_from(i).unwrap_or(0)),
                kind: "identity.create".into(),
                actor: "token:tok_0123456789abcdef".into(),
                target: format!("agent:bot-{i}"),
                outcome: Outcome::Success,
                details: serde_json::json!({"environment": "prod", "owner": "human:alice@example.com"}),
            })
        })
        .collect();
    (signer, out)
}

fn verify(c: &mut Criterion) {
    let n = 1_000_000;
    let (signer, log) = records(n);
    let checkpoints: Vec<_> = log
        .iter()
        .filter(|r| r.seq % 1000 == 0)
        .map(|r| signer.sign(r.seq, r.hash, r.time))
        .collect();
    let key = signer.public_key();
    let mut g = c.benchmark_group("audit_verify");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));
    g.bench_function("1M_records_in_memory", |b| {
        b.iter(|| verify_all(&key, checkpoints.clone(), &log).expect("intact"));
    });
    g.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
