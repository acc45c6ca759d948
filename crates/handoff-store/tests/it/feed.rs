//! The part of the store conformance suite that lets nodes share one
//! database: sealed secrets (created once, replaced by version) and the
//! change feed (the topics each committed write touched, by sequence).
//!
//! Like `conformance.rs`, each function takes a fresh, empty store and uses
//! the trait alone, so every backend runs the same list.

use crate::conformance::{all_records, apply, apply_one, credential, human, id, owned, t};
use crate::delegations::{child, root};
use handoff_audit::Record;
use handoff_core::PolicyVersion;
use handoff_store::{Changed, Sealed, Store, StoreError, Topic, Write};

fn replace(name: &str, value: &[u8], version: u64) -> Write {
    Write::ReplaceSecret {
        name: name.to_owned(),
        value: value.to_vec(),
        version,
    }
}

fn sealed(value: &[u8], version: u64) -> Option<Sealed> {
    Some(Sealed {
        value: value.to_vec(),
        version,
    })
}

/// A secret is created once (the first writer wins, later ones learn they
/// lost and nothing changes), then replaced only from the version read;
/// a refused replacement writes nothing, neither value nor record.
pub(crate) async fn secrets_are_created_once_and_replaced_by_version(store: &dyn Store) {
    let name = "token-signing";
    assert_eq!(store.secret(name).await.unwrap(), None);
    assert!(store.create_secret(name, b"first").await.unwrap());
    assert!(!store.create_secret(name, b"second").await.unwrap());
    assert_eq!(store.secret(name).await.unwrap(), sealed(b"first", 1));
    assert_eq!(store.secret("other").await.unwrap(), None);
    // Creating is not audited.
    assert_eq!(store.audit_head().await.unwrap().seq, 0);

    apply_one(store, replace(name, b"rotated", 1))
        .await
        .unwrap();
    assert_eq!(store.secret(name).await.unwrap(), sealed(b"rotated", 2));

    let before = store.audit_head().await.unwrap();
    let stale = apply_one(store, replace(name, b"lost race", 1)).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    let missing = apply_one(store, replace("nothing-here", b"x", 1)).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    assert_eq!(store.audit_head().await.unwrap(), before);
    assert_eq!(store.secret(name).await.unwrap(), sealed(b"rotated", 2));
    assert_eq!(store.secret("nothing-here").await.unwrap(), None);

    // In one batch: the stale replacement is refused alone, the one from
    // the current version is applied, the one after it sees its effect.
    let results = apply(
        store,
        vec![
            replace(name, b"stale", 1),
            replace(name, b"third", 2),
            replace(name, b"fourth", 3),
        ],
    )
    .await;
    assert!(
        matches!(results[0], Err(StoreError::Conflict(_))),
        "{results:?}"
    );
    assert!(results[1].is_ok() && results[2].is_ok(), "{results:?}");
    assert_eq!(store.secret(name).await.unwrap(), sealed(b"fourth", 4));
    assert_eq!(all_records(store).await.len(), 3);
}

fn policy(version: u64) -> PolicyVersion {
    PolicyVersion {
        version,
        digest: format!("{version:064x}"),
        policy_count: 1,
        created_at: t(1),
        created_by: "token:tok_0000000000000001".into(),
    }
}

/// The feed `writes`' successful results should have produced: each
/// write's `topics()` under its record's sequence number, in the order the
/// feed lists them (sequence, then topic name, then subject).
fn expected_feed(writes: &[Write], results: &[Result<Record, StoreError>]) -> Vec<Changed> {
    let mut expected: Vec<Changed> = writes
        .iter()
        .zip(results)
        .filter_map(|(write, result)| result.as_ref().ok().map(|record| (write, record.seq)))
        .flat_map(|(write, seq)| {
            handoff_store::topics(write)
                .into_iter()
                .map(move |topic| Changed { seq, topic })
        })
        .collect();
    expected.sort_by(|a, b| (a.seq, a.topic.to_parts()).cmp(&(b.seq, b.topic.to_parts())));
    expected
}

/// Every committed write stores exactly the topics it touched under its own
/// record's sequence number; refused writes, `Nothing` and writes nothing
/// caches store none; `changes_since` pages the feed by sequence number.
pub(crate) async fn the_change_feed_names_what_each_write_changed(store: &dyn Store) {
    assert!(store.changes_since(0, 100).await.unwrap().is_empty());
    assert!(store.create_secret("token-signing", b"v1").await.unwrap());
    let r = root(1, "alice", 0);
    let a = child(2, &r, "agent:a1");
    let b = child(3, &r, "agent:a2");
    let mut writes = Vec::new();
    let mut results = Vec::new();
    let batches = vec![
        vec![
            Write::CreateIdentity(human("alice")),
            Write::CreateIdentity(owned("agent:a1", "alice")),
            Write::CreateIdentity(owned("agent:a2", "alice")),
            Write::Nothing,
            // Refused: a duplicate.
            Write::CreateIdentity(human("alice")),
        ],
        vec![
            Write::IssueCredential(credential(1, "agent:a1", 0)),
            Write::CreateDelegations(vec![r.clone(), a.clone(), b.clone()]),
            Write::UpdateIdentity {
                id: id("agent:a2"),
                environment: None,
                attributes: None,
                at: t(2),
            },
            // Refused: unknown.
            Write::UpdateIdentity {
                id: id("agent:ghost"),
                environment: None,
                attributes: None,
                at: t(2),
            },
        ],
        vec![Write::RevokeDelegations {
            ids: vec![b.id.clone()],
            at: t(3),
        }],
        vec![
            Write::RevokeCredential {
                id: credential(1, "agent:a1", 0).id,
                at: t(4),
            },
            Write::SetStatus {
                id: id("human:alice"),
                from: handoff_core::Status::Active,
                to: handoff_core::Status::Suspended,
                orphan_owned: true,
                revoke_delegations: true,
                at: t(5),
            },
            // Refused: the status is no longer Active.
            Write::SetStatus {
                id: id("human:alice"),
                from: handoff_core::Status::Active,
                to: handoff_core::Status::Disabled,
                orphan_owned: true,
                revoke_delegations: true,
                at: t(6),
            },
        ],
        vec![
            Write::PutPolicyVersion {
                version: policy(1),
                files: "{}".into(),
            },
            Write::PutPolicyVersion {
                version: policy(2),
                files: "{}".into(),
            },
            Write::ActivatePolicyVersion {
                version: 1,
                from: Some(2),
                at: t(7),
            },
            replace("token-signing", b"v2", 1),
            // Refused: stale.
            replace("token-signing", b"v3", 1),
            Write::Nothing,
        ],
    ];
    for batch in batches {
        results.extend(apply(store, batch.clone()).await);
        writes.extend(batch);
    }
    let refused = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(refused, 4, "{results:?}");

    let feed = store.changes_since(0, 1_000).await.unwrap();
    let expected = expected_feed(&writes, &results);
    assert_eq!(feed, expected);
    // Spot checks that do not depend on `topics()`: the suspension's three
    // topics share its record's number.
    let suspension = results[11].as_ref().unwrap().seq;
    let at_suspension: Vec<&Topic> = feed
        .iter()
        .filter(|c| c.seq == suspension)
        .map(|c| &c.topic)
        .collect();
    assert_eq!(
        at_suspension,
        [
            &Topic::Delegations,
            &Topic::Identity(id("human:alice")),
            &Topic::Owned(id("human:alice")),
        ]
    );
    assert!(
        feed.iter()
            .any(|c| c.topic == Topic::Secret("token-signing".into()))
    );
    assert!(feed.windows(2).all(|w| w[0].seq <= w[1].seq));

    // Paging: strictly after `after`, at most `limit`.
    let head = store.audit_head().await.unwrap().seq;
    assert!(store.changes_since(head, 10).await.unwrap().is_empty());
    assert!(store.changes_since(u64::MAX, 10).await.unwrap().is_empty());
    assert!(store.changes_since(0, 0).await.unwrap().is_empty());
    assert_eq!(store.changes_since(0, 2).await.unwrap(), expected[..2]);
    let third = expected[2].seq;
    let after_third: Vec<Changed> = expected.iter().filter(|c| c.seq > third).cloned().collect();
    assert_eq!(
        store.changes_since(third, 1_000).await.unwrap(),
        after_third
    );
    assert_eq!(
        store.changes_since(third, 1).await.unwrap(),
        after_third[..1]
    );
}
