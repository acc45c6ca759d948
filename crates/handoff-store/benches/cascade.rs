//! Cascading revocation of a lineage with 100,000 descendants in one
//! commit, against the embedded SQLite store (WAL, synchronous=FULL).
//!
//! The lineage: a root with 10 children, each with 10 (depth 2: 100),
//! again (depth 3: 1,000; depth 4: 10,000), then 6 children under each
//! depth-4 node (depth 5: 60,000) and one under each of the first 28,890
//! depth-5 nodes (depth 6) — 100,000 descendants, fan-out 1 to 10, random
//! ids as the engine makes them. A second lineage of 10,000 delegations
//! shares the table and must stay live. Both are inserted through
//! `Store::commit` with `Write::CreateDelegations` in batches (parents
//! before children, every parent allowing 1,000,000 children), once; each
//! run then starts from a copy of that database.
//!
//! Timed per run: (1) `Store::lineage` of the root (the read the engine
//! makes for a revocation's blast radius) and (2) ONE commit of
//! `Write::RevokeDelegations { ids: [root] }` with its audit record,
//! `fsync` included. After each run every row of the lineage must be
//! revoked and the other lineage untouched.
//!
//! Run: `cargo bench -p handoff-store --bench cascade` (5 runs; set
//! `HANDOFF_CASCADE_RUNS` for more).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmark code fails loudly"
)]

use chrono::TimeDelta;
use handoff_audit::{Draft, Head, Outcome};
use handoff_core::{Audience, Delegation, DelegationId, IdentityId, Scope, Time};
use handoff_store::sqlite::SqliteStore;
use handoff_store::{Change, Store, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Children per node at depth 0 to 4; depth 5 nodes get one child each
/// until the lineage holds `DESCENDANTS`.
const FAN_OUT: [usize; 5] = [10, 10, 10, 10, 6];
const DESCENDANTS: usize = 100_000;
const OTHER_LINEAGE: usize = 10_000;
/// Delegations per `CreateDelegations` write, and writes per commit.
const PER_WRITE: usize = 1_000;
const WRITES_PER_COMMIT: usize = 10;

fn now() -> Time {
    chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap()
}

/// Deterministic random ids (splitmix64), shaped like the engine's.
struct Ids(u64);

impl Ids {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next(&mut self) -> DelegationId {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_be_bytes());
        DelegationId::from_random(bytes)
    }
}

fn delegation(
    id: DelegationId,
    parent: Option<&Delegation>,
    lineage: &DelegationId,
    n: usize,
) -> Delegation {
    let human = IdentityId::parse("human:alice").unwrap();
    let actor = IdentityId::parse(&format!("agent:a{}", n % 500)).unwrap();
    Delegation {
        id,
        parent: parent.map(|p| p.id.clone()),
        lineage: lineage.clone(),
        subject: human.clone(),
        delegator: parent.map_or_else(|| human.clone(), |p| p.actor.clone()),
        actor: if parent.is_some() { actor } else { human },
        credential: None,
        scope: Scope::parse("read write").unwrap(),
        audience: Audience::any(),
        depth: parent.map_or(0, |p| p.depth + 1),
        max_depth: 8,
        max_fan_out: 1_000_000,
        issued_at: now(),
        expires_at: now() + TimeDelta::hours(1),
        revoked_at: None,
    }
}

/// The benchmark lineage, parents before children (breadth first).
fn big_lineage(ids: &mut Ids) -> Vec<Delegation> {
    let root_id = ids.next();
    let root = delegation(root_id.clone(), None, &root_id, 0);
    let mut all = vec![root];
    let mut level = 0..1;
    for fan_out in FAN_OUT {
        let start = all.len();
        for p in level.clone() {
            for _ in 0..fan_out {
                let child = delegation(ids.next(), Some(&all[p]), &root_id, all.len());
                all.push(child);
            }
        }
        level = start..all.len();
    }
    let mut parents = level;
    while all.len() < DESCENDANTS + 1 {
        let p = parents.next().unwrap();
        let child = delegation(ids.next(), Some(&all[p]), &root_id, all.len());
        all.push(child);
    }
    assert_eq!(all.len(), DESCENDANTS + 1);
    all
}

/// A second lineage: a root and a 100-ary tree below it.
fn other_lineage(ids: &mut Ids) -> Vec<Delegation> {
    let root_id = ids.next();
    let mut all = vec![delegation(root_id.clone(), None, &root_id, 0)];
    let mut p = 0;
    while all.len() < OTHER_LINEAGE {
        let child = delegation(ids.next(), Some(&all[p / 100]), &root_id, all.len());
        all.push(child);
        p += 1;
    }
    all
}

fn record(kind: &str, target: &str) -> Draft {
    Draft {
        time: now(),
        kind: kind.into(),
        actor: "system".into(),
        target: target.into(),
        outcome: Outcome::Success,
        details: serde_json::json!({}),
    }
}

async fn insert(store: &SqliteStore, head: &mut Head, rows: &[Delegation]) {
    for commit in rows.chunks(PER_WRITE * WRITES_PER_COMMIT) {
        let changes = commit
            .chunks(PER_WRITE)
            .map(|batch| Change {
                write: Write::CreateDelegations(batch.to_vec()),
                record: record("delegation.create", batch[0].id.as_str()),
            })
            .collect();
        let results = store.commit(changes, head).await.unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }
}

struct Run {
    lineage_read: Duration,
    revoke: Duration,
}

async fn run(db: &Path, root: &DelegationId, other: &DelegationId) -> Run {
    let store = SqliteStore::open(db).await.unwrap();
    let mut head = store.audit_head().await.unwrap();

    let start = Instant::now();
    let lineage = store.lineage(root).await.unwrap();
    let lineage_read = start.elapsed();
    assert_eq!(lineage.len(), DESCENDANTS + 1);
    assert!(lineage.iter().all(|d| d.revoked_at.is_none()));
    drop(lineage);

    let at = now() + TimeDelta::minutes(1);
    let change = Change {
        write: Write::RevokeDelegations {
            ids: vec![root.clone()],
            at,
        },
        record: record("delegation.revoke", root.as_str()),
    };
    let start = Instant::now();
    let results = store.commit(vec![change], &mut head).await.unwrap();
    let revoke = start.elapsed();
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let lineage = store.lineage(root).await.unwrap();
    assert_eq!(lineage.len(), DESCENDANTS + 1);
    assert!(
        lineage.iter().all(|d| d.revoked_at == Some(at)),
        "a descendant was left live"
    );
    let untouched = store.lineage(other).await.unwrap();
    assert_eq!(untouched.len(), OTHER_LINEAGE);
    assert!(untouched.iter().all(|d| d.revoked_at.is_none()));
    store.close().await;
    Run {
        lineage_read,
        revoke,
    }
}

fn summary(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let shown: Vec<String> = times.iter().map(|t| format!("{:.1}", ms(*t))).collect();
    println!(
        "{what}: median {:.1} ms, max {:.1} ms, min {:.1} ms (runs, ms: {})",
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
        ms(times[0]),
        shown.join(", ")
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // then building 110,000 rows is not wanted.
    if !std::env::args().any(|a| a == "--bench") {
        println!("cascade: run with `cargo bench -p handoff-store --bench cascade`");
        return;
    }
    let runs: usize = std::env::var("HANDOFF_CASCADE_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("template.db");

    let mut ids = Ids(0x4a4f_4646);
    let big = big_lineage(&mut ids);
    let other = other_lineage(&mut ids);
    let root = big[0].id.clone();
    let other_root = other[0].id.clone();
    let start = Instant::now();
    rt.block_on(async {
        let store = SqliteStore::open(&template).await.unwrap();
        let mut head = store.audit_head().await.unwrap();
        insert(&store, &mut head, &other).await;
        insert(&store, &mut head, &big).await;
        store.close().await;
    });
    let deepest = big.iter().map(|d| d.depth).max().unwrap_or(0);
    println!(
        "built {} + {} delegations (depth up to {deepest}) in {:.1} s",
        big.len(),
        other.len(),
        start.elapsed().as_secs_f64()
    );
    drop(big);
    drop(other);

    let mut reads = Vec::new();
    let mut revokes = Vec::new();
    for i in 0..runs {
        let db = tmp.path().join(format!("run-{i}.db"));
        std::fs::copy(&template, &db).unwrap();
        assert!(
            !tmp.path().join("template.db-wal").exists(),
            "the template was not checkpointed"
        );
        let r = rt.block_on(run(&db, &root, &other_root));
        println!(
            "run {}: lineage read {:.1} ms, revoke commit {:.1} ms",
            i + 1,
            r.lineage_read.as_secs_f64() * 1e3,
            r.revoke.as_secs_f64() * 1e3
        );
        reads.push(r.lineage_read);
        revokes.push(r.revoke);
        std::fs::remove_file(&db).unwrap();
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(tmp.path().join(format!("run-{i}.db{suffix}")));
        }
    }
    summary(
        "revoke 100,000 descendants (one commit, fsync included)",
        revokes,
    );
    summary("read the lineage (100,001 rows)", reads);
}
