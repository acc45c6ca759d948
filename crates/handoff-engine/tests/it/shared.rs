//! Two engines on one PostgreSQL schema, as two nodes of a cluster: shared
//! keys, one audit chain, changes followed both ways, a wrong master key
//! refused, and a database that went back in time reloaded.
//!
//! Needs PostgreSQL at `HANDOFF_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); fails loudly without it.

use crate::policy_support::{agents_pack, read_ticket, seed_inventory};
use handoff_core::{FixedClock, IdentityId, Status};
use handoff_engine::auth::Actor;
use handoff_engine::master_key::MasterKey;
use handoff_engine::{Admin, AppenderSettings, Engine};
use handoff_store::postgres::{PgStore, drop_schema};
use sqlx::Connection as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn url() -> String {
    std::env::var("HANDOFF_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh schema, dropped at the end of the test.
struct Schema(String);

impl Schema {
    fn new(tag: &str) -> Self {
        use std::hash::BuildHasher as _;
        let random = std::collections::hash_map::RandomState::new().hash_one(tag);
        Self(format!("eng_{tag}_{}_{random:016x}", std::process::id()))
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = rt.block_on(drop_schema(&url(), &name));
        })
        .join();
    }
}

async fn node(schema: &Schema, master: &str) -> Result<Engine, handoff_engine::EngineError> {
    let store = PgStore::open_in_schema(&url(), &schema.0)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} is unusable: {e}; .ci/run starts it with \
                 `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`",
                url()
            )
        });
    Engine::start_shared(
        Arc::new(store),
        MasterKey::parse(master).unwrap(),
        handoff_engine::jwt::Algorithm::EdDSA,
        Arc::new(FixedClock::new(crate::support::t0())),
        AppenderSettings::default(),
    )
    .await
}

/// Waits up to a second for `check` to hold on `engine`.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let since = Instant::now();
    while !check().await {
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "{what}: not within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_keys_and_follow_each_others_changes() {
    let schema = Schema::new("follow");
    let master = MasterKey::generate_text().unwrap();
    let a = node(&schema, &master).await.unwrap();
    let b = node(&schema, &master).await.unwrap();
    assert_eq!(a.keys().tokens().jwks(), b.keys().tokens().jwks());
    assert_eq!(a.keys().public_key(), b.keys().public_key());
    assert!(
        a.keys()
            .secret_matches("hfc_x", &b.keys().hash_secret("hfc_x"))
    );

    // Inventory and a pack pushed on A are in force on B.
    seed_inventory(&a).await;
    let pushed = a
        .push_policies(&Admin::system(), agents_pack())
        .await
        .unwrap();
    eventually("B activates the pack", async || {
        b.active_policy() == Some(pushed.version.version)
    })
    .await;
    let actor = Actor::System;
    eventually("B allows the agent A created", async || {
        b.evaluate(&actor, &read_ticket("support-bot"))
            .await
            .unwrap()
            .allow
    })
    .await;

    // A suspension on B denies on A.
    let bot = IdentityId::parse("agent:support-bot").unwrap();
    b.set_status(&Admin::system(), &bot, Status::Suspended, None)
        .await
        .unwrap();
    eventually("A denies the suspended agent", async || {
        !a.evaluate(&actor, &read_ticket("support-bot"))
            .await
            .unwrap()
            .allow
    })
    .await;

    // A key rotation on A reaches B; a second, stale rotation is refused.
    let kid = a.rotate_keys(&Admin::system()).await.unwrap();
    eventually("B publishes A's new key", async || {
        b.keys().tokens().kids().iter().any(|k| k.0 == kid)
    })
    .await;
    assert_eq!(a.keys().tokens().jwks(), b.keys().tokens().jwks());

    // Both wrote one chain; it verifies from either node.
    assert!(b.changes_seen() > 0);
    let report = b.verify_audit().await.unwrap();
    assert_eq!(report, a.verify_audit().await.unwrap());
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_master_key_is_refused() {
    let schema = Schema::new("master");
    let a = node(&schema, &MasterKey::generate_text().unwrap())
        .await
        .unwrap();
    let err = node(&schema, &MasterKey::generate_text().unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot be opened with this master key"),
        "{err}"
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_went_back_in_time_is_reloaded() {
    let schema = Schema::new("restore");
    let master = MasterKey::generate_text().unwrap();
    let a = node(&schema, &master).await.unwrap();
    let b = node(&schema, &master).await.unwrap();
    seed_inventory(&a).await;
    let first = a
        .push_policies(&Admin::system(), agents_pack())
        .await
        .unwrap();
    let restore_point = a.appender().head_seq();
    let mut pack = agents_pack();
    pack.files.insert(
        "deny.cedar".into(),
        "forbid(principal, action, resource);\n".into(),
    );
    let second = a.push_policies(&Admin::system(), pack).await.unwrap();
    eventually("B activates the second pack", async || {
        b.active_policy() == Some(second.version.version)
    })
    .await;
    a.shutdown().await;

    // "Restore" the database to the point before the second push.
    let mut conn = sqlx::PgConnection::connect(&url()).await.unwrap();
    let point = i64::try_from(restore_point).unwrap();
    for sql in [
        format!("SET search_path TO {}", schema.0),
        format!(
            "UPDATE policy_state SET active_version = {}",
            first.version.version
        ),
        format!(
            "DELETE FROM policy_versions WHERE version = {}",
            second.version.version
        ),
        format!("DELETE FROM changes WHERE seq > {point}"),
        format!("DELETE FROM audit_checkpoints WHERE seq > {point}"),
        format!("DELETE FROM audit_records WHERE seq > {point}"),
        format!(
            "UPDATE audit_head SET seq = {point}, hash = (SELECT hash FROM audit_records WHERE seq = {point})"
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    // B follows the feed from the restored head again.
    eventually("B reloads the restored pack", async || {
        b.active_policy() == Some(first.version.version) && b.changes_seen() <= restore_point
    })
    .await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_make_one_bootstrap_token() {
    let schema = Schema::new("bootstrap");
    let master = MasterKey::generate_text().unwrap();
    let (a, b) = tokio::join!(node(&schema, &master), node(&schema, &master));
    let (a, b) = (a.unwrap(), b.unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let (da, db) = (
        handoff_engine::data_dir::DataDir::new(tmp.path().join("a")),
        handoff_engine::data_dir::DataDir::new(tmp.path().join("b")),
    );
    da.create().unwrap();
    db.create().unwrap();
    let (ma, mb) = tokio::join!(a.bootstrap(&da), b.bootstrap(&db));
    let made = [ma.unwrap(), mb.unwrap()];
    assert_eq!(made.iter().filter(|m| m.is_some()).count(), 1, "{made:?}");
    assert_eq!(a.admin_tokens().await.unwrap().len(), 1);
    a.shutdown().await;
    b.shutdown().await;
}
