//! Several real `handoff serve` processes sharing one PostgreSQL database:
//! a token issued by one node is honoured by the others, a revocation or a
//! policy push on one node is in force on all of them within a second, a
//! node killed mid-load loses nothing it acknowledged, and a PostgreSQL
//! restart makes nodes fail closed and recover by themselves.
//!
//! Each test gets its own database on the PostgreSQL server at
//! `HANDOFF_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
//! and fails loudly if it cannot reach it. The tests take turns (one lock):
//! the restart scenario stops the whole PostgreSQL server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail loudly; clippy.toml's allow-in-tests does not reach integration test helpers"
)]

mod cli;
mod node;

use node::{ALLOW_ALL, Cluster, NO_READ, jti, pg_ctl, quantile};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// One scenario at a time: they share the PostgreSQL server, and one of
/// them restarts it.
pub(crate) static TURN: Mutex<()> = Mutex::const_new(());

/// The bound the issue sets on propagation.
const PROPAGATION_BOUND: Duration = Duration::from_secs(1);

/// Polls `node` until a decision with `token` is a deny (or the bound
/// passes twice over); returns how long it took from `since`.
async fn until_denied(c: &Cluster, node: usize, token: &str, since: Instant) -> Duration {
    loop {
        let r = c.decide(node, "agent:bot", token, "read").await;
        if r.status == 200 && !r.decision() {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < 2 * PROPAGATION_BOUND,
            "node {node} still allows 2 s after the revocation: {}\n{}",
            r.body,
            c.logs()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_one_node_is_introspected_and_evaluated_on_another() {
    let _turn = TURN.lock().await;
    let c = Cluster::start(3).await;
    let token = c.root(0, "agent:bot").await.access_token();
    for node in 1..3 {
        let v = c.introspect(node, &token).await;
        let v = v.expect(200);
        assert_eq!(v["active"], true, "node {node}: {v}");
        assert_eq!(v["client_id"], "agent:bot", "node {node}: {v}");
        assert!(c.decide(node, "agent:bot", &token, "read").await.decision());
    }
    // Every node publishes the same signing keys.
    let mut jwks = BTreeSet::new();
    for node in 0..3 {
        let r = c
            .http
            .get(format!("{}/.well-known/jwks.json", c.nodes[node].base))
            .send()
            .await
            .unwrap();
        jwks.insert(r.text().await.unwrap());
    }
    assert_eq!(jwks.len(), 1, "the nodes publish different keys: {jwks:?}");

    // A rotation on one node reaches the others: a token signed with the
    // new key verifies everywhere.
    c.admin(2, "POST", "/v1/keys/rotate", None)
        .await
        .expect(200);
    tokio::time::sleep(PROPAGATION_BOUND).await;
    let fresh = c.root(2, "agent:bot").await.access_token();
    for node in 0..3 {
        let v = c.introspect(node, &fresh).await;
        assert_eq!(v.expect(200)["active"], true, "node {node}");
        assert!(c.decide(node, "agent:bot", &token, "read").await.decision());
    }
    let (code, out) = c.verify_audit();
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_node_denies_on_the_others_within_a_second() {
    let _turn = TURN.lock().await;
    let c = Cluster::start(3).await;
    let trials: usize = std::env::var("HANDOFF_PROPAGATION_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(100);
    let mut delays = Vec::with_capacity(2 * trials);
    for _ in 0..trials {
        let token = c.root(0, "agent:bot").await.access_token();
        // Both deciding nodes hold the live chain in their caches.
        assert!(c.decide(0, "agent:bot", &token, "read").await.decision());
        assert!(c.decide(1, "agent:bot", &token, "read").await.decision());
        c.revoke(2, "agent:bot", &token).await.expect(200);
        let since = Instant::now();
        let (a, b) = tokio::join!(
            until_denied(&c, 0, &token, since),
            until_denied(&c, 1, &token, since)
        );
        delays.extend([a, b]);
    }
    delays.sort();
    let (p50, p99, max) = (
        quantile(&delays, 0.50),
        quantile(&delays, 0.99),
        delays.last().copied().unwrap_or_default(),
    );
    println!(
        "revocation propagation over {trials} trials ({} samples): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        delays.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
    assert!(
        max < PROPAGATION_BOUND,
        "a revocation took {max:?} to reach another node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_push_on_one_node_is_in_force_on_all() {
    let _turn = TURN.lock().await;
    let c = Cluster::start(3).await;
    let token = c.root(0, "agent:bot").await.access_token();
    for node in 0..3 {
        assert!(c.decide(node, "agent:bot", &token, "read").await.decision());
    }
    c.push(1, NO_READ, 201).await;
    let since = Instant::now();
    for node in [0, 2] {
        loop {
            if !c.decide(node, "agent:bot", &token, "read").await.decision() {
                break;
            }
            assert!(
                since.elapsed() < PROPAGATION_BOUND,
                "node {node} still allows reading after the push\n{}",
                c.logs()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // A suspension is in force everywhere too.
    c.admin(
        2,
        "POST",
        "/v1/identities/agent:bot/status",
        Some(serde_json::json!({"status": "suspended"})),
    )
    .await
    .expect(200);
    tokio::time::sleep(PROPAGATION_BOUND).await;
    for node in 0..3 {
        assert!(
            !c.decide(node, "agent:bot", &token, "write")
                .await
                .decision()
        );
        let v = c.introspect(node, &token).await;
        assert_eq!(v.expect(200)["active"], false, "node {node}");
    }
    c.push(0, ALLOW_ALL, 201).await;
}

/// Writes by `workers` concurrent callers spread over every node until
/// `stop`; returns the acknowledged identity ids and delegation ids.
async fn load(
    c: Arc<Cluster>,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> (Vec<String>, Vec<String>) {
    let mut tasks = Vec::new();
    for w in 0..workers {
        let c = c.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let (mut identities, mut delegations) = (Vec::new(), Vec::new());
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let node = (w + n) % c.nodes.len();
                n += 1;
                if n.is_multiple_of(2) {
                    let id = format!("service:load-{w}-{n}");
                    let body = serde_json::json!({"id": id, "owner": "human:alice"});
                    let r = c.admin(node, "POST", "/v1/identities", Some(body)).await;
                    if r.status == 201 {
                        identities.push(id);
                    }
                } else {
                    let r = c.root(node, "agent:bot").await;
                    if r.status == 200 {
                        delegations.push(jti(&r.access_token()));
                    }
                }
                if n.is_multiple_of(50) {
                    // Let a stopped server's connection errors not spin.
                    tokio::task::yield_now().await;
                }
            }
            (identities, delegations)
        }));
    }
    let (mut identities, mut delegations) = (Vec::new(), Vec::new());
    for t in tasks {
        let (i, d) = t.await.unwrap();
        identities.extend(i);
        delegations.extend(d);
    }
    (identities, delegations)
}

/// Asserts that every acknowledged write is stored with its audit record
/// and that the chain verifies.
async fn assert_nothing_lost(c: &Cluster, identities: &[String], delegations: &[String]) {
    let mut db = c.db.connect().await;
    let stored: BTreeSet<String> =
        sqlx::query_scalar("SELECT target FROM audit_records WHERE kind = 'identity.create'")
            .fetch_all(&mut db)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let missing: Vec<&String> = identities.iter().filter(|i| !stored.contains(*i)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but no audit record: {missing:?}"
    );
    let rows: BTreeSet<String> = sqlx::query_scalar("SELECT id FROM identities")
        .fetch_all(&mut db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert!(
        identities.iter().all(|i| rows.contains(i)),
        "an acknowledged identity is missing"
    );
    let issued: BTreeSet<String> = sqlx::query_scalar("SELECT id FROM delegations")
        .fetch_all(&mut db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let lost: Vec<&String> = delegations
        .iter()
        .filter(|d| !issued.contains(*d))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged delegations missing: {lost:?}"
    );
    let recorded: BTreeSet<String> =
        sqlx::query_scalar("SELECT target FROM audit_records WHERE kind = 'delegation.create'")
            .fetch_all(&mut db)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let unrecorded: Vec<&String> = delegations
        .iter()
        .filter(|d| !recorded.contains(*d))
        .collect();
    assert!(
        unrecorded.is_empty(),
        "delegations without their record: {unrecorded:?}"
    );
    let (code, out) = c.verify_audit();
    assert_eq!(code, 0, "the audit chain does not verify: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_load_loses_nothing_it_acknowledged() {
    let _turn = TURN.lock().await;
    let c = Arc::new(Cluster::start(3).await);
    let stop = Arc::new(AtomicBool::new(false));
    let running = tokio::spawn(load(c.clone(), 8, stop.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.nodes[1].kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let (identities, delegations) = running.await.unwrap();
    assert!(
        identities.len() > 20 && delegations.len() > 20,
        "too little load to prove anything: {} identities, {} delegations\n{}",
        identities.len(),
        delegations.len(),
        c.logs()
    );
    assert_nothing_lost(&c, &identities, &delegations).await;
    // The survivors still serve.
    assert!(c.ready(&c.nodes[0]).await && c.ready(&c.nodes[2]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_makes_nodes_fail_closed_then_recover() {
    let _turn = TURN.lock().await;
    let c = Arc::new(Cluster::start(3).await);
    let token = c.root(0, "agent:bot").await.access_token();
    let stop = Arc::new(AtomicBool::new(false));
    let running = tokio::spawn(load(c.clone(), 4, stop.clone()));
    tokio::time::sleep(Duration::from_millis(1000)).await;

    pg_ctl("stop");
    let restarted = scopeguard(|| pg_ctl("start"));
    // Every node notices and refuses to decide rather than trust its caches.
    let since = Instant::now();
    for node in 0..3 {
        while c.ready(&c.nodes[node]).await {
            assert!(
                since.elapsed() < Duration::from_secs(10),
                "node {node} still reports ready without its database"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = c.decide(node, "agent:bot", &token, "read").await;
        assert_eq!(
            r.status, 503,
            "node {node} decided without its database: {}",
            r.body
        );
        assert_eq!(
            r.body["type"].as_str().map(|t| t.ends_with("unavailable")),
            Some(true),
            "{}",
            r.body
        );
    }
    drop(restarted);

    // Back by themselves, without a restart.
    let since = Instant::now();
    for node in 0..3 {
        while !c.ready(&c.nodes[node]).await {
            assert!(
                since.elapsed() < Duration::from_secs(30),
                "node {node} did not recover after PostgreSQL came back\n{}",
                c.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(c.decide(node, "agent:bot", &token, "read").await.decision());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (identities, delegations) = running.await.unwrap();
    assert_nothing_lost(&c, &identities, &delegations).await;
    // A revocation after the outage still reaches every node.
    c.revoke(2, "agent:bot", &token).await.expect(200);
    let since = Instant::now();
    until_denied(&c, 0, &token, since).await;
    until_denied(&c, 1, &token, since).await;
}

/// Runs `f` when dropped (also when the test panics): PostgreSQL is
/// started again whatever happens.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
