//! Integration tests of `handoff-store`: the conformance suite run against
//! SQLite and PostgreSQL, what only SQLite has (files, reopening, read-only
//! access, schema versions) and, in `postgres.rs`, what only PostgreSQL has
//! (several nodes on one database).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail loudly; clippy.toml's allow-in-tests does not reach integration test helpers"
)]

mod conformance;
mod delegations;
mod feed;
mod postgres;

use conformance::{all_records, apply, apply_one, human, id, owned, t, verified_len};
use handoff_core::CredentialId;
use handoff_store::sqlite::SqliteStore;
use handoff_store::{Store, StoreError, Write};
use sqlx::Connection;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// A fresh database file in its own directory (removed on drop).
async fn fresh() -> (TempDir, PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("handoff.db");
    let store = SqliteStore::open(&path).await.unwrap();
    (dir, path, store)
}

/// Runs each listed function of each suite module on a fresh store of
/// each backend.
macro_rules! conformance {
    ($($suite:ident: [$($name:ident),* $(,)?]),* $(,)?) => {
        /// The conformance suite on SQLite.
        mod sqlite_conformance {
            $($(
                #[tokio::test]
                async fn $name() {
                    let (_dir, _path, store) = super::fresh().await;
                    crate::$suite::$name(&store).await;
                }
            )*)*
        }

        /// The conformance suite on PostgreSQL, each test in a schema of
        /// its own that is dropped afterwards.
        mod postgres_conformance {
            $($(
                #[tokio::test]
                async fn $name() {
                    let (_schema, store) = crate::postgres::fresh().await;
                    crate::$suite::$name(&store).await;
                    handoff_store::Store::close(&store).await;
                }
            )*)*
        }
    };
}

conformance!(
    conformance: [
        an_empty_store_reads_empty,
        identity_round_trips_every_field,
        duplicate_identity_is_a_conflict_and_leaves_no_trace,
        unknown_owner_is_not_found,
        a_failing_change_leaves_the_rest_of_the_batch,
        a_stale_head_is_refused,
        update_identity_replaces_what_it_names,
        set_status_checks_the_status_it_changes_from,
        orphan_owned_flags_only_owned_identities,
        identity_filters_narrow_the_list,
        pagination_visits_every_identity_once,
        credentials_issue_list_touch_revoke,
        admin_tokens_create_list_revoke,
        the_first_admin_token_is_made_only_on_an_empty_store,
        audit_reads_and_checkpoints_round_trip,
        policy_versions_are_kept_and_activated,
    ],
    delegations: [
        an_empty_store_has_no_delegations,
        delegation_round_trips_every_field,
        chain_returns_root_first,
        lineage_is_ordered_by_depth_issue_time_and_id,
        a_child_of_a_revoked_parent_is_a_conflict_and_leaves_no_trace,
        a_child_of_an_unknown_parent_is_not_found,
        a_duplicate_delegation_is_a_conflict,
        a_full_parent_refuses_another_child,
        live_children_counts_unrevoked_direct_children,
        revoking_a_delegation_cascades_to_its_descendants_only,
        set_status_revokes_the_identity_s_delegations,
        revoking_a_credential_revokes_delegations_obtained_with_it,
        delegation_filters_and_pagination_visit_each_once,
        a_replayed_assertion_is_refused_until_it_expires,
        client_keys_add_list_revoke,
        an_expired_child_frees_its_fan_out_slot,
    ],
    feed: [
        secrets_are_created_once_and_replaced_by_version,
        the_change_feed_names_what_each_write_changed,
    ],
);

/// A raw connection, to tamper with the file behind the store's back.
async fn raw(path: &Path) -> sqlx::SqliteConnection {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap()
}

#[tokio::test]
async fn data_and_head_survive_reopening() {
    let (_dir, path, store) = fresh().await;
    let results = apply(
        &store,
        vec![
            Write::CreateIdentity(human("alice")),
            Write::CreateIdentity(owned("agent:bot", "alice")),
        ],
    )
    .await;
    assert!(results.iter().all(Result::is_ok));
    let head = store.audit_head().await.unwrap();
    store.close().await;
    drop(store);

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.audit_head().await.unwrap(), head);
    assert_eq!(head.seq, 2);
    let bot = store.identity(&id("agent:bot")).await.unwrap().unwrap();
    assert_eq!(bot.owner, Some(id("human:alice")));
    let next = apply_one(&store, Write::Nothing).await.unwrap();
    assert_eq!((next.seq, next.prev_hash), (3, head.hash));
    assert_eq!(verified_len(&store).await, 3);
}

#[tokio::test]
async fn read_only_sees_committed_data_and_refuses_writes() {
    let (_dir, path, store) = fresh().await;
    apply_one(&store, Write::CreateIdentity(human("alice")))
        .await
        .unwrap();

    // While the writer is open, as `audit verify` next to a running server.
    let reader = SqliteStore::open_read_only(&path).await.unwrap();
    assert!(reader.identity(&id("human:alice")).await.unwrap().is_some());
    assert_eq!(
        reader.audit_head().await.unwrap(),
        store.audit_head().await.unwrap()
    );
    // It sees what is committed after it opened.
    apply_one(&store, Write::Nothing).await.unwrap();
    assert_eq!(all_records(&reader).await.len(), 2);

    let mut head = reader.audit_head().await.unwrap();
    let before = head;
    let write = reader
        .commit(
            vec![conformance::change(Write::CreateIdentity(human("bob")))],
            &mut head,
        )
        .await;
    assert!(matches!(write, Err(StoreError::Backend(_))), "{write:?}");
    assert_eq!(head, before);
    let cred = CredentialId::parse("cred_0123456789abcdef").unwrap();
    assert!(reader.touch_credential(&cred, t(1)).await.is_err());
    let signer =
        handoff_audit::Signer::from_pkcs8(&handoff_audit::Signer::generate_pkcs8().unwrap())
            .unwrap();
    assert!(
        reader
            .append_checkpoint(&signer.sign(before.seq, before.hash, t(2)))
            .await
            .is_err()
    );
    assert!(store.identity(&id("human:bob")).await.unwrap().is_none());
    assert!(store.audit_checkpoints().await.unwrap().is_empty());

    // And after the writer has closed and cleaned up its WAL files.
    reader.close().await;
    store.close().await;
    let reader = SqliteStore::open_read_only(&path).await.unwrap();
    assert_eq!(all_records(&reader).await.len(), 2);
}

#[tokio::test]
async fn read_only_refuses_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing-here.db");
    let err = SqliteStore::open_read_only(&path).await.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!path.exists(), "opening read-only must not create the file");
}

#[tokio::test]
async fn another_application_s_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE notes (body TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    for err in [
        SqliteStore::open_read_only(&path).await.unwrap_err(),
        SqliteStore::open(&path).await.unwrap_err(),
    ] {
        assert!(err.to_string().contains("not a handoff database"), "{err}");
    }
    let mut conn = raw(&path).await;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_schema WHERE type = 'table'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(tables, ["notes"]);
}

#[tokio::test]
async fn a_schema_newer_than_the_binary_is_refused() {
    let (_dir, path, store) = fresh().await;
    store.close().await;
    let mut conn = raw(&path).await;
    sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    for err in [
        SqliteStore::open(&path).await.unwrap_err(),
        SqliteStore::open_read_only(&path).await.unwrap_err(),
    ] {
        assert!(err.to_string().contains("version 99 is newer"), "{err}");
    }
}

#[tokio::test]
async fn opening_twice_migrates_once() {
    let (_dir, path, store) = fresh().await;
    store.close().await;
    let store = SqliteStore::open(&path).await.unwrap();
    store.close().await;
    let mut conn = raw(&path).await;
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn rows_that_do_not_parse_are_corrupt_not_a_panic() {
    let (_dir, path, store) = fresh().await;
    apply(
        &store,
        vec![
            Write::CreateIdentity(human("alice")),
            Write::CreateIdentity(human("bob")),
            Write::Nothing,
        ],
    )
    .await;
    let mut conn = raw(&path).await;
    for tamper in [
        "UPDATE identities SET status = 'zombie' WHERE id = 'human:alice'",
        "UPDATE identities SET id = 'robot:bob' WHERE id = 'human:bob'",
        "UPDATE audit_records SET outcome = 'maybe' WHERE seq = 3",
    ] {
        sqlx::query(tamper).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();

    let alice = store.identity(&id("human:alice")).await;
    assert!(
        matches!(alice, Err(StoreError::Corrupt(ref m)) if m.contains("status")),
        "{alice:?}"
    );
    let page = store
        .identities(&Default::default(), None, Default::default())
        .await;
    assert!(matches!(page, Err(StoreError::Corrupt(_))), "{page:?}");
    let records = store.audit_records(0, 10).await;
    assert!(
        matches!(records, Err(StoreError::Corrupt(ref m)) if m.contains("outcome")),
        "{records:?}"
    );
    // The head reads only seq and hash, which are intact.
    assert_eq!(store.audit_head().await.unwrap().seq, 3);
}

#[tokio::test]
async fn a_record_that_cannot_be_stored_fails_the_whole_batch() {
    let (_dir, path, store) = fresh().await;
    apply_one(&store, Write::Nothing).await.unwrap();
    // Behind the store's back: refuse any record about carol.
    let mut conn = raw(&path).await;
    sqlx::query(
        "CREATE TRIGGER refuse_carol BEFORE INSERT ON audit_records \
         WHEN NEW.target = 'human:carol' BEGIN SELECT RAISE(ABORT, 'refused'); END",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let before = store.audit_head().await.unwrap();
    let mut head = before;
    let result = store
        .commit(
            vec![
                conformance::change(Write::CreateIdentity(human("dave"))),
                conformance::change(Write::CreateIdentity(human("carol"))),
                conformance::change(Write::Nothing),
            ],
            &mut head,
        )
        .await;
    assert!(matches!(result, Err(StoreError::Backend(_))), "{result:?}");
    assert_eq!(head, before, "the caller's head is restored");
    assert_eq!(store.audit_head().await.unwrap(), before);
    assert!(store.identity(&id("human:dave")).await.unwrap().is_none());
    assert!(store.identity(&id("human:carol")).await.unwrap().is_none());
    assert_eq!(verified_len(&store).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_touches_and_reads_all_succeed() {
    let (_dir, _path, store) = fresh().await;
    apply(
        &store,
        vec![
            Write::CreateIdentity(human("alice")),
            Write::CreateIdentity(owned("agent:bot", "alice")),
        ],
    )
    .await;
    let cred = handoff_core::Credential {
        id: CredentialId::parse("cred_00000000000000aa").unwrap(),
        identity: id("agent:bot"),
        description: String::new(),
        hash: vec![7; 32],
        created_at: t(0),
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
    };
    apply_one(&store, Write::IssueCredential(cred.clone()))
        .await
        .unwrap();

    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..40 {
                let results = apply(
                    &store,
                    vec![
                        Write::CreateIdentity(human(&format!("w{i:02}"))),
                        Write::Nothing,
                    ],
                )
                .await;
                assert!(results.iter().all(Result::is_ok));
            }
        })
    };
    let toucher = {
        let store = store.clone();
        let id = cred.id.clone();
        tokio::spawn(async move {
            for i in 0..40 {
                store.touch_credential(&id, t(i)).await.unwrap();
            }
        })
    };
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..40 {
                let page = store
                    .identities(&Default::default(), None, Default::default())
                    .await
                    .unwrap();
                assert!(!page.items.is_empty());
            }
        })
    };
    for task in [writer, toucher, reader] {
        task.await.unwrap();
    }
    assert_eq!(verified_len(&store).await, 3 + 80);
    assert_eq!(
        store
            .credential(&cred.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(t(39))
    );
}

/// Stores `count` delegations behind the store's back, `dlg_<n>` for n in
/// `first..first + count`, each the child of the one before (one chain
/// `count` deep, the worst case for a recursive walk) under a root `first`.
async fn deep_lineage(path: &Path, first: u64, count: u64) {
    let mut conn = raw(path).await;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1 + ?2) \
         INSERT INTO delegations (id, parent, lineage, subject, delegator, actor, credential, \
         scope, audience, depth, max_depth, max_fan_out, issued_at, expires_at, revoked_at) \
         SELECT printf('dlg_%032x', i), \
         CASE WHEN i = ?1 THEN NULL ELSE printf('dlg_%032x', i - 1) END, \
         printf('dlg_%032x', ?1), 'human:alice', 'human:alice', 'human:alice', NULL, 'read', \
         '[]', i - ?1, ?2, 1, 0, 1000000000000000, NULL FROM n",
    )
    .bind(i64::try_from(first).unwrap())
    .bind(i64::try_from(count).unwrap())
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

/// Revocation cascades down a lineage of 100,000 descendants in one write
/// (one recursive statement, no recursion in Rust), and stops at its edge.
#[tokio::test]
async fn revoking_a_root_revokes_a_100_000_deep_lineage() {
    let (_dir, path, store) = fresh().await;
    deep_lineage(&path, 1, 100_001).await;
    deep_lineage(&path, 200_000, 3).await;
    let root = handoff_core::DelegationId::parse(&format!("dlg_{:032x}", 1)).unwrap();
    apply_one(
        &store,
        Write::RevokeDelegations {
            ids: vec![root],
            at: t(5),
        },
    )
    .await
    .unwrap();
    let mut conn = raw(&path).await;
    let counts: Vec<(Option<i64>, i64)> = sqlx::query_as(
        "SELECT revoked_at, COUNT(*) FROM delegations GROUP BY revoked_at ORDER BY revoked_at",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        counts,
        [(None, 3), (Some(t(5).timestamp_micros()), 100_001)]
    );
}

/// A delegation row that does not parse, or a parent chain tampered into a
/// cycle, reads as corrupt instead of panicking or looping.
#[tokio::test]
async fn tampered_delegations_are_corrupt_not_a_panic() {
    let (_dir, path, store) = fresh().await;
    deep_lineage(&path, 1, 3).await;
    deep_lineage(&path, 10, 1).await;
    let dlg = |n: u64| handoff_core::DelegationId::parse(&format!("dlg_{n:032x}")).unwrap();
    assert_eq!(store.chain(&dlg(3)).await.unwrap().len(), 3);
    let mut conn = raw(&path).await;
    for tamper in [
        "UPDATE delegations SET scope = 'a\"b' WHERE id = printf('dlg_%032x', 10)",
        "UPDATE delegations SET parent = printf('dlg_%032x', 3) WHERE depth = 0",
    ] {
        sqlx::query(tamper).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();

    let bad = store.delegation(&dlg(10)).await;
    assert!(
        matches!(bad, Err(StoreError::Corrupt(ref m)) if m.contains("scope")),
        "{bad:?}"
    );
    for n in [1, 2, 3] {
        let chain = store.chain(&dlg(n)).await;
        assert!(
            matches!(chain, Err(StoreError::Corrupt(ref m)) if m.contains("root")),
            "{chain:?}"
        );
    }
}
