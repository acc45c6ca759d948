//! The store conformance suite: behaviour every [`Store`] backend must show.
//!
//! Each function takes a fresh, empty store and asserts what a caller can
//! observe through the trait alone. `main.rs` runs every function against
//! SQLite; a PostgreSQL backend runs the same list against its own store.

use chrono::{TimeDelta, TimeZone, Utc};
use handoff_audit::verify::verify_all;
use handoff_audit::{Draft, Head, Outcome, Record, Signer};
use handoff_core::{
    AdminToken, AdminTokenId, Attributes, Credential, CredentialId, Cursor, Environment, Identity,
    IdentityId, Kind, Limit, PolicyVersion, Role, Source, Status, Time,
};
use handoff_store::{Change, ChangeResult, IdentityFilter, Store, StoreError, Write};
use serde_json::json;

// ---- fixtures ----------------------------------------------------------

/// A fixed time `secs` seconds after the base, with a microsecond part so
/// that precision loss shows.
pub(crate) fn t(secs: i64) -> Time {
    Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap()
        + TimeDelta::seconds(secs)
        + TimeDelta::microseconds(123_456)
}

pub(crate) fn id(s: &str) -> IdentityId {
    IdentityId::parse(s).unwrap()
}

/// An active human with no labels.
pub(crate) fn human(name: &str) -> Identity {
    Identity {
        id: id(&format!("human:{name}")),
        owner: None,
        environment: None,
        attributes: Attributes::default(),
        source: Source::Manual,
        status: Status::Active,
        orphaned: false,
        created_at: t(0),
        updated_at: t(0),
    }
}

/// An active agent or service (`kind:name`) owned by `human:<owner>`.
pub(crate) fn owned(id_text: &str, owner: &str) -> Identity {
    Identity {
        id: id(id_text),
        owner: Some(id(&format!("human:{owner}"))),
        ..human("placeholder")
    }
}

pub(crate) fn cred_id(n: u64) -> CredentialId {
    CredentialId::parse(&format!("cred_{n:016x}")).unwrap()
}

fn token_id(n: u64) -> AdminTokenId {
    AdminTokenId::parse(&format!("tok_{n:016x}")).unwrap()
}

pub(crate) fn credential(n: u64, identity: &str, created: i64) -> Credential {
    Credential {
        id: cred_id(n),
        identity: id(identity),
        description: format!("key {n}"),
        hash: vec![u8::try_from(n % 256).unwrap(); 32],
        created_at: t(created),
        expires_at: Some(t(created + 3600)),
        last_used_at: None,
        revoked_at: None,
    }
}

fn admin_token(n: u64, role: Role, created: i64) -> AdminToken {
    AdminToken {
        id: token_id(n),
        name: format!("token {n}"),
        role,
        hash: vec![0xa0 | u8::try_from(n % 16).unwrap(); 32],
        created_at: t(created),
        expires_at: None,
        revoked_at: None,
    }
}

/// The audit draft a write is committed with.
pub(crate) fn draft(write: &Write) -> Draft {
    let (kind, target) = match write {
        Write::Nothing => ("access.evaluate", "human:nobody".to_owned()),
        Write::CreateIdentity(i) => ("identity.create", i.id.to_string()),
        Write::UpdateIdentity { id, .. } => ("identity.update", id.to_string()),
        Write::SetStatus { id, .. } => ("identity.status", id.to_string()),
        Write::IssueCredential(c) => ("credential.issue", c.id.to_string()),
        Write::RevokeCredential { id, .. } => ("credential.revoke", id.to_string()),
        Write::CreateAdminToken(a) | Write::CreateFirstAdminToken(a) => {
            ("token.create", a.id.to_string())
        }
        Write::RevokeAdminToken { id, .. } => ("token.revoke", id.to_string()),
        Write::PutPolicyVersion { version, .. } => ("policy.push", version.version.to_string()),
        Write::ActivatePolicyVersion { version, .. } => ("policy.activate", version.to_string()),
        Write::CreateDelegations(list) => (
            "delegation.create",
            list.first().map_or_else(String::new, |d| d.id.to_string()),
        ),
        Write::RevokeDelegations { ids, .. } => (
            "delegation.revoke",
            ids.first().map_or_else(String::new, ToString::to_string),
        ),
        Write::AddClientKey(k) => ("client_key.add", k.identity.to_string()),
        Write::RevokeClientKey { identity, .. } => ("client_key.revoke", identity.to_string()),
        Write::ReplaceSecret { name, .. } => ("secret.replace", name.clone()),
    };
    Draft {
        time: t(1),
        kind: kind.to_owned(),
        actor: "token:tok_0123456789abcdef".to_owned(),
        target: target.clone(),
        outcome: Outcome::Success,
        details: json!({ "target": target }),
    }
}

pub(crate) fn change(write: Write) -> Change {
    Change {
        record: draft(&write),
        write,
    }
}

/// Commits `writes` as one batch on the stored head and checks the head
/// the store returns is the one it stored.
pub(crate) async fn apply(store: &dyn Store, writes: Vec<Write>) -> Vec<ChangeResult> {
    let mut head = store.audit_head().await.unwrap();
    let results = store
        .commit(writes.into_iter().map(change).collect(), &mut head)
        .await
        .unwrap();
    assert_eq!(head, store.audit_head().await.unwrap());
    results
}

/// Commits one write.
pub(crate) async fn apply_one(store: &dyn Store, write: Write) -> ChangeResult {
    apply(store, vec![write]).await.pop().unwrap()
}

pub(crate) async fn all_records(store: &dyn Store) -> Vec<Record> {
    store.audit_records(0, 100_000).await.unwrap()
}

/// Verifies the whole stored chain (no checkpoints) and returns its length.
pub(crate) async fn verified_len(store: &dyn Store) -> u64 {
    let signer = Signer::from_pkcs8(&Signer::generate_pkcs8().unwrap()).unwrap();
    let records = all_records(store).await;
    verify_all(&signer.public_key(), vec![], &records)
        .unwrap()
        .records
}

pub(crate) fn limit(n: u32) -> Limit {
    Limit::new(Some(n)).unwrap()
}

async fn ids(store: &dyn Store, filter: IdentityFilter) -> Vec<String> {
    let page = store.identities(&filter, None, limit(500)).await.unwrap();
    assert_eq!(page.next, None);
    page.items.into_iter().map(|i| i.id.to_string()).collect()
}

// ---- identities --------------------------------------------------------

/// An empty store reads as empty everywhere.
pub(crate) async fn an_empty_store_reads_empty(store: &dyn Store) {
    assert_eq!(store.audit_head().await.unwrap(), Head::EMPTY);
    assert!(store.audit_tail(10).await.unwrap().is_empty());
    assert!(store.audit_records(0, 10).await.unwrap().is_empty());
    assert!(store.audit_checkpoints().await.unwrap().is_empty());
    assert!(store.admin_tokens().await.unwrap().is_empty());
    assert!(store.identity(&id("human:alice")).await.unwrap().is_none());
    assert!(store.credential(&cred_id(1)).await.unwrap().is_none());
    assert!(
        store
            .credentials(&id("human:alice"))
            .await
            .unwrap()
            .is_empty()
    );
    let page = store
        .identities(&IdentityFilter::default(), None, Limit::default())
        .await
        .unwrap();
    assert!(page.items.is_empty());
    assert_eq!(page.next, None);
    let mut head = Head::EMPTY;
    assert!(store.commit(vec![], &mut head).await.unwrap().is_empty());
    assert_eq!(head, Head::EMPTY);
}

/// Every identity field, times to the microsecond, comes back as written.
pub(crate) async fn identity_round_trips_every_field(store: &dyn Store) {
    let alice = human("alice");
    let bot = Identity {
        id: id("agent:support-bot.v2"),
        owner: Some(alice.id.clone()),
        environment: Some(Environment::parse("eu-west_1").unwrap()),
        attributes: Attributes::parse(json!({
            "team": "payments",
            "ünïcode": "✓ \"quoted\"",
            "nested": {"list": [1, 2.5, null, true, {"deep": "x"}]},
        }))
        .unwrap(),
        source: Source::Manual,
        status: Status::Suspended,
        orphaned: true,
        created_at: t(10),
        updated_at: t(20) + TimeDelta::microseconds(1),
    };
    let results = apply(
        store,
        vec![
            Write::CreateIdentity(alice.clone()),
            Write::CreateIdentity(bot.clone()),
        ],
    )
    .await;
    let records: Vec<Record> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(store.identity(&bot.id).await.unwrap(), Some(bot.clone()));
    assert_eq!(store.identity(&alice.id).await.unwrap(), Some(alice));
    assert_eq!(
        store.identity(&bot.id).await.unwrap().unwrap().kind(),
        Kind::Agent
    );
    assert_eq!(all_records(store).await, records);
}

/// A duplicate id is a conflict that leaves neither row nor record.
pub(crate) async fn duplicate_identity_is_a_conflict_and_leaves_no_trace(store: &dyn Store) {
    let alice = human("alice");
    apply_one(store, Write::CreateIdentity(alice.clone()))
        .await
        .unwrap();
    let before = store.audit_head().await.unwrap();

    let mut again = alice.clone();
    again.attributes = Attributes::parse(json!({"imposter": true})).unwrap();
    let mut head = before;
    let results = store
        .commit(vec![change(Write::CreateIdentity(again))], &mut head)
        .await
        .unwrap();
    match results.as_slice() {
        [Err(StoreError::Conflict(m))] => assert!(m.contains("\"human:alice\""), "{m}"),
        other => panic!("expected one conflict, got {other:?}"),
    }
    assert_eq!(head, before, "a refused write must not advance the head");
    assert_eq!(store.audit_head().await.unwrap(), before);
    assert_eq!(all_records(store).await.len(), 1);
    assert_eq!(store.identity(&alice.id).await.unwrap(), Some(alice));
}

/// An owner that does not exist is `NotFound` and nothing is stored.
pub(crate) async fn unknown_owner_is_not_found(store: &dyn Store) {
    let bot = owned("agent:bot", "ghost");
    let result = apply_one(store, Write::CreateIdentity(bot.clone())).await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    assert!(store.identity(&bot.id).await.unwrap().is_none());
    assert_eq!(store.audit_head().await.unwrap(), Head::EMPTY);
}

/// A refused change in the middle of a batch: the others commit, with
/// consecutive sequence numbers and an unbroken chain.
pub(crate) async fn a_failing_change_leaves_the_rest_of_the_batch(store: &dyn Store) {
    let a = human("a");
    let b = human("b");
    let results = apply(
        store,
        vec![
            Write::CreateIdentity(a.clone()),
            Write::CreateIdentity(a.clone()),
            Write::CreateIdentity(b.clone()),
            Write::UpdateIdentity {
                id: id("human:missing"),
                environment: Some(None),
                attributes: None,
                at: t(5),
            },
            Write::Nothing,
        ],
    )
    .await;
    assert_eq!(results.len(), 5);
    assert!(
        matches!(results[1], Err(StoreError::Conflict(_))),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(results[3], Err(StoreError::NotFound)),
        "{:?}",
        results[3]
    );
    let committed: Vec<&Record> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(
        committed.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        committed
            .iter()
            .map(|r| r.target.as_str())
            .collect::<Vec<_>>(),
        ["human:a", "human:b", "human:nobody"]
    );

    let stored = all_records(store).await;
    assert_eq!(stored.iter().collect::<Vec<_>>(), committed);
    for pair in stored.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    assert_eq!(verified_len(store).await, 3);
    assert_eq!(store.identity(&b.id).await.unwrap(), Some(b));
    assert!(
        store
            .identity(&id("human:missing"))
            .await
            .unwrap()
            .is_none()
    );

    // The chain continues from there in a later batch.
    let more = apply_one(store, Write::Nothing).await.unwrap();
    assert_eq!(more.seq, 4);
    assert_eq!(verified_len(store).await, 4);
}

/// A batch committed on a head that is not the stored one cannot fork the
/// chain. A single-writer store refuses it whole and leaves the caller's
/// head where it was; a shared one (other nodes move the head) seals it
/// onto the stored head and hands the caller that head, moved on.
pub(crate) async fn a_stale_head_is_refused(store: &dyn Store) {
    let first = apply_one(store, Write::Nothing).await.unwrap();
    let mut stale = Head::EMPTY;
    let result = store
        .commit(
            vec![change(Write::CreateIdentity(human("late")))],
            &mut stale,
        )
        .await;
    if store.shared() {
        let records: Vec<Record> = result.unwrap().into_iter().map(Result::unwrap).collect();
        assert_eq!(records.len(), 1);
        assert_eq!((records[0].seq, records[0].prev_hash), (2, first.hash));
        assert_eq!(
            stale,
            Head {
                seq: 2,
                hash: records[0].hash
            }
        );
        assert_eq!(store.audit_head().await.unwrap(), stale);
        assert!(store.identity(&id("human:late")).await.unwrap().is_some());
        assert_eq!(verified_len(store).await, 2);
    } else {
        assert!(result.is_err(), "{result:?}");
        assert_eq!(stale, Head::EMPTY);
        assert!(store.identity(&id("human:late")).await.unwrap().is_none());
        assert_eq!(all_records(store).await.len(), 1);
    }
}

/// Environment and attributes are replaced, cleared or kept as asked.
pub(crate) async fn update_identity_replaces_what_it_names(store: &dyn Store) {
    let alice = human("alice");
    apply_one(store, Write::CreateIdentity(alice.clone()))
        .await
        .unwrap();
    let attrs = Attributes::parse(json!({"team": "risk"})).unwrap();
    apply_one(
        store,
        Write::UpdateIdentity {
            id: alice.id.clone(),
            environment: Some(Some(Environment::parse("prod").unwrap())),
            attributes: Some(attrs.clone()),
            at: t(30),
        },
    )
    .await
    .unwrap();
    let got = store.identity(&alice.id).await.unwrap().unwrap();
    assert_eq!(got.environment, Some(Environment::parse("prod").unwrap()));
    assert_eq!(got.attributes, attrs);
    assert_eq!(got.updated_at, t(30));
    assert_eq!(got.created_at, t(0));

    // Some(None) clears the environment; None keeps the attributes.
    apply_one(
        store,
        Write::UpdateIdentity {
            id: alice.id.clone(),
            environment: Some(None),
            attributes: None,
            at: t(40),
        },
    )
    .await
    .unwrap();
    let got = store.identity(&alice.id).await.unwrap().unwrap();
    assert_eq!(got.environment, None);
    assert_eq!(got.attributes, attrs);
    assert_eq!(got.updated_at, t(40));

    // None keeps the environment.
    apply_one(
        store,
        Write::UpdateIdentity {
            id: alice.id.clone(),
            environment: Some(Some(Environment::parse("dev").unwrap())),
            attributes: None,
            at: t(50),
        },
    )
    .await
    .unwrap();
    apply_one(
        store,
        Write::UpdateIdentity {
            id: alice.id.clone(),
            environment: None,
            attributes: Some(Attributes::default()),
            at: t(60),
        },
    )
    .await
    .unwrap();
    let got = store.identity(&alice.id).await.unwrap().unwrap();
    assert_eq!(got.environment, Some(Environment::parse("dev").unwrap()));
    assert_eq!(got.attributes, Attributes::default());
}

/// A status change applies only from the status the caller read.
pub(crate) async fn set_status_checks_the_status_it_changes_from(store: &dyn Store) {
    let alice = human("alice");
    apply_one(store, Write::CreateIdentity(alice.clone()))
        .await
        .unwrap();
    let set = |from, to, at| Write::SetStatus {
        id: alice.id.clone(),
        from,
        to,
        orphan_owned: false,
        revoke_delegations: false,
        at,
    };
    apply_one(store, set(Status::Active, Status::Suspended, t(10)))
        .await
        .unwrap();
    let got = store.identity(&alice.id).await.unwrap().unwrap();
    assert_eq!(got.status, Status::Suspended);
    assert_eq!(got.updated_at, t(10));

    let before = store.audit_head().await.unwrap();
    let stale = apply_one(store, set(Status::Active, Status::Disabled, t(20))).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(store.audit_head().await.unwrap(), before);
    let got = store.identity(&alice.id).await.unwrap().unwrap();
    assert_eq!((got.status, got.updated_at), (Status::Suspended, t(10)));

    let missing = apply_one(
        store,
        Write::SetStatus {
            id: id("human:ghost"),
            from: Status::Active,
            to: Status::Disabled,
            orphan_owned: true,
            revoke_delegations: false,
            at: t(30),
        },
    )
    .await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

/// `orphan_owned` flags exactly the identities the changed one owns.
pub(crate) async fn orphan_owned_flags_only_owned_identities(store: &dyn Store) {
    let writes = vec![
        Write::CreateIdentity(human("alice")),
        Write::CreateIdentity(human("bob")),
        Write::CreateIdentity(owned("agent:a1", "alice")),
        Write::CreateIdentity(owned("service:a2", "alice")),
        Write::CreateIdentity(owned("agent:b1", "bob")),
    ];
    assert!(apply(store, writes).await.iter().all(Result::is_ok));
    apply_one(
        store,
        Write::SetStatus {
            id: id("human:bob"),
            from: Status::Active,
            to: Status::Suspended,
            orphan_owned: false,
            revoke_delegations: false,
            at: t(5),
        },
    )
    .await
    .unwrap();
    apply_one(
        store,
        Write::SetStatus {
            id: id("human:alice"),
            from: Status::Active,
            to: Status::Disabled,
            orphan_owned: true,
            revoke_delegations: false,
            at: t(9),
        },
    )
    .await
    .unwrap();
    for (who, orphaned, updated) in [
        ("agent:a1", true, t(9)),
        ("service:a2", true, t(9)),
        ("agent:b1", false, t(0)),
        ("human:alice", false, t(9)),
        ("human:bob", false, t(5)),
    ] {
        let got = store.identity(&id(who)).await.unwrap().unwrap();
        assert_eq!((got.orphaned, got.updated_at), (orphaned, updated), "{who}");
    }
    let filter = IdentityFilter {
        orphaned: Some(true),
        ..IdentityFilter::default()
    };
    assert_eq!(ids(store, filter).await, ["agent:a1", "service:a2"]);
}

/// Each filter narrows the list, and filters combine with AND.
pub(crate) async fn identity_filters_narrow_the_list(store: &dyn Store) {
    let prod = Environment::parse("prod").unwrap();
    let dev = Environment::parse("dev").unwrap();
    let mut bob = human("bob");
    bob.status = Status::Suspended;
    let mut a1 = owned("agent:a1", "alice");
    a1.environment = Some(prod.clone());
    let mut a2 = owned("agent:a2", "alice");
    a2.environment = Some(dev.clone());
    a2.orphaned = true;
    a2.status = Status::Disabled;
    let mut s1 = owned("service:s1", "bob");
    s1.environment = Some(prod.clone());
    let writes = [human("alice"), bob, a1, a2, s1]
        .into_iter()
        .map(Write::CreateIdentity)
        .collect();
    assert!(apply(store, writes).await.iter().all(Result::is_ok));

    let all = [
        "agent:a1",
        "agent:a2",
        "human:alice",
        "human:bob",
        "service:s1",
    ];
    assert_eq!(ids(store, IdentityFilter::default()).await, all);
    let cases: Vec<(IdentityFilter, Vec<&str>)> = vec![
        (
            IdentityFilter {
                kind: Some(Kind::Agent),
                ..Default::default()
            },
            vec!["agent:a1", "agent:a2"],
        ),
        (
            IdentityFilter {
                kind: Some(Kind::Human),
                ..Default::default()
            },
            vec!["human:alice", "human:bob"],
        ),
        (
            IdentityFilter {
                status: Some(Status::Active),
                ..Default::default()
            },
            vec!["agent:a1", "human:alice", "service:s1"],
        ),
        (
            IdentityFilter {
                status: Some(Status::Decommissioned),
                ..Default::default()
            },
            vec![],
        ),
        (
            IdentityFilter {
                owner: Some(id("human:alice")),
                ..Default::default()
            },
            vec!["agent:a1", "agent:a2"],
        ),
        (
            IdentityFilter {
                environment: Some(prod.clone()),
                ..Default::default()
            },
            vec!["agent:a1", "service:s1"],
        ),
        (
            IdentityFilter {
                orphaned: Some(true),
                ..Default::default()
            },
            vec!["agent:a2"],
        ),
        (
            IdentityFilter {
                orphaned: Some(false),
                ..Default::default()
            },
            vec!["agent:a1", "human:alice", "human:bob", "service:s1"],
        ),
        (
            IdentityFilter {
                kind: Some(Kind::Agent),
                status: Some(Status::Active),
                owner: Some(id("human:alice")),
                environment: Some(prod.clone()),
                orphaned: Some(false),
            },
            vec!["agent:a1"],
        ),
        (
            IdentityFilter {
                owner: Some(id("human:alice")),
                environment: Some(dev),
                orphaned: Some(false),
                ..Default::default()
            },
            vec![],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(ids(store, filter.clone()).await, expected, "{filter:?}");
    }
}

/// Paging walks every identity exactly once, in id order, and says when it
/// has reached the end.
pub(crate) async fn pagination_visits_every_identity_once(store: &dyn Store) {
    let mut writes: Vec<Write> = (0..23)
        .map(|i| Write::CreateIdentity(human(&format!("h{i:02}"))))
        .collect();
    writes.push(Write::CreateIdentity(owned("agent:bot", "h00")));
    assert!(apply(store, writes).await.iter().all(Result::is_ok));

    let walk = |filter: IdentityFilter, size: u32| async move {
        let mut seen = Vec::new();
        let mut after: Option<Cursor> = None;
        let mut pages = 0;
        loop {
            let page = store
                .identities(&filter, after.as_ref(), limit(size))
                .await
                .unwrap();
            pages += 1;
            assert!(page.items.len() <= size as usize);
            seen.extend(page.items.iter().map(|i| i.id.to_string()));
            match page.next {
                Some(next) => {
                    assert_eq!(page.items.len(), size as usize);
                    assert_eq!(Some(next.key()), seen.last().map(String::as_str));
                    after = Some(next);
                }
                None => break,
            }
            assert!(pages < 100, "pagination does not end");
        }
        (seen, pages)
    };

    let humans = IdentityFilter {
        kind: Some(Kind::Human),
        ..IdentityFilter::default()
    };
    let expected: Vec<String> = (0..23).map(|i| format!("human:h{i:02}")).collect();
    let (seen, pages) = walk(humans.clone(), 5).await;
    assert_eq!(seen, expected);
    assert_eq!(pages, 5);

    // A list that fills its last page exactly ends there too.
    let (seen, pages) = walk(IdentityFilter::default(), 8).await;
    assert_eq!(seen.len(), 24);
    assert_eq!(seen.first().map(String::as_str), Some("agent:bot"));
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "not in id order");
    assert_eq!(pages, 3);

    let (seen, pages) = walk(humans, 23).await;
    assert_eq!((seen, pages), (expected, 1));
}

// ---- credentials and admin tokens --------------------------------------

/// Credentials are issued, listed newest first, touched and revoked once.
pub(crate) async fn credentials_issue_list_touch_revoke(store: &dyn Store) {
    apply(
        store,
        vec![
            Write::CreateIdentity(human("alice")),
            Write::CreateIdentity(owned("agent:bot", "alice")),
        ],
    )
    .await;
    let old = credential(1, "agent:bot", 10);
    let new = credential(2, "agent:bot", 20);
    let mut other = credential(3, "human:alice", 30);
    other.expires_at = None;
    for c in [&old, &new, &other] {
        apply_one(store, Write::IssueCredential(c.clone()))
            .await
            .unwrap();
    }
    assert_eq!(
        store.credentials(&id("agent:bot")).await.unwrap(),
        [new.clone(), old.clone()]
    );
    assert_eq!(store.credential(&other.id).await.unwrap(), Some(other));

    let dup = apply_one(
        store,
        Write::IssueCredential(credential(1, "human:alice", 40)),
    )
    .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let orphan = apply_one(
        store,
        Write::IssueCredential(credential(9, "agent:ghost", 40)),
    )
    .await;
    assert!(matches!(orphan, Err(StoreError::NotFound)), "{orphan:?}");
    assert!(store.credential(&cred_id(9)).await.unwrap().is_none());

    store.touch_credential(&old.id, t(50)).await.unwrap();
    let touched = store.credential(&old.id).await.unwrap().unwrap();
    assert_eq!(touched.last_used_at, Some(t(50)));
    assert!(matches!(
        store.touch_credential(&cred_id(9), t(50)).await,
        Err(StoreError::NotFound)
    ));

    let revoke = |n, at| Write::RevokeCredential { id: cred_id(n), at };
    apply_one(store, revoke(1, t(60))).await.unwrap();
    let revoked = store.credential(&old.id).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(t(60)));
    assert!(!revoked.usable(t(61)));
    let again = apply_one(store, revoke(1, t(70))).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(
        store.credential(&old.id).await.unwrap().unwrap().revoked_at,
        Some(t(60))
    );
    let missing = apply_one(store, revoke(9, t(70))).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    assert_eq!(
        store.credential(&new.id).await.unwrap().unwrap().revoked_at,
        None
    );
}

/// Admin tokens are created, listed oldest first and revoked once.
pub(crate) async fn the_first_admin_token_is_made_only_on_an_empty_store(store: &dyn Store) {
    let first = admin_token(1, Role::Admin, 10);
    apply_one(store, Write::CreateFirstAdminToken(first.clone()))
        .await
        .unwrap();
    let second = apply_one(
        store,
        Write::CreateFirstAdminToken(admin_token(2, Role::Admin, 20)),
    )
    .await;
    assert!(matches!(second, Err(StoreError::Conflict(_))), "{second:?}");
    assert_eq!(store.admin_tokens().await.unwrap(), [first]);
    // Ordinary tokens are still made.
    apply_one(
        store,
        Write::CreateAdminToken(admin_token(3, Role::Auditor, 30)),
    )
    .await
    .unwrap();
    assert_eq!(store.admin_tokens().await.unwrap().len(), 2);
}

pub(crate) async fn admin_tokens_create_list_revoke(store: &dyn Store) {
    let mut first = admin_token(1, Role::Admin, 10);
    first.expires_at = Some(t(1000));
    let second = admin_token(2, Role::Auditor, 20);
    apply(
        store,
        vec![
            Write::CreateAdminToken(second.clone()),
            Write::CreateAdminToken(first.clone()),
        ],
    )
    .await;
    assert_eq!(
        store.admin_tokens().await.unwrap(),
        [first.clone(), second.clone()]
    );
    assert_eq!(store.admin_token(&second.id).await.unwrap(), Some(second));
    assert!(store.admin_token(&token_id(9)).await.unwrap().is_none());

    let dup = apply_one(
        store,
        Write::CreateAdminToken(admin_token(1, Role::Auditor, 30)),
    )
    .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert_eq!(
        store.admin_token(&first.id).await.unwrap(),
        Some(first.clone())
    );

    let revoke = |n, at| Write::RevokeAdminToken {
        id: token_id(n),
        at,
    };
    apply_one(store, revoke(1, t(40))).await.unwrap();
    assert_eq!(
        store
            .admin_token(&first.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(t(40))
    );
    let again = apply_one(store, revoke(1, t(50))).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let missing = apply_one(store, revoke(9, t(50))).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

// ---- audit log ---------------------------------------------------------

/// Records and checkpoints read back exactly, by range, by tail and head.
pub(crate) async fn audit_reads_and_checkpoints_round_trip(store: &dyn Store) {
    let mut head = store.audit_head().await.unwrap();
    let changes: Vec<Change> = (0..10)
        .map(|i| Change {
            write: Write::Nothing,
            record: Draft {
                // Sub-microsecond parts are dropped when sealed.
                time: t(i) + TimeDelta::nanoseconds(999),
                kind: "access.evaluate".to_owned(),
                actor: format!("token:tok_{i:016x}"),
                target: "agent:bot".to_owned(),
                outcome: if i % 2 == 0 {
                    Outcome::Allow
                } else {
                    Outcome::Deny
                },
                details: json!({"z": i, "a": ["ünïcode ✓", {"y": null, "b": 1.5}]}),
            },
        })
        .collect();
    let sealed: Vec<Record> = store
        .commit(changes, &mut head)
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(sealed.len(), 10);
    assert_eq!(sealed[3].time, t(3));
    assert_eq!(
        head,
        Head {
            seq: 10,
            hash: sealed[9].hash
        }
    );
    assert_eq!(store.audit_head().await.unwrap(), head);

    let all = all_records(store).await;
    assert_eq!(all, sealed);
    // Details are stored and returned byte for byte.
    assert_eq!(
        all[0].details,
        r#"{"a":["ünïcode ✓",{"b":1.5,"y":null}],"z":0}"#
    );
    assert_eq!(store.audit_records(0, 4).await.unwrap(), sealed[..4]);
    assert_eq!(store.audit_records(4, 100).await.unwrap(), sealed[4..]);
    assert!(store.audit_records(10, 5).await.unwrap().is_empty());
    assert!(store.audit_records(u64::MAX, 5).await.unwrap().is_empty());
    assert_eq!(store.audit_tail(3).await.unwrap(), sealed[7..]);
    assert_eq!(store.audit_tail(100).await.unwrap(), sealed);
    assert!(store.audit_tail(0).await.unwrap().is_empty());

    let signer = Signer::from_pkcs8(&Signer::generate_pkcs8().unwrap()).unwrap();
    let cps = [
        signer.sign(5, sealed[4].hash, t(100)),
        signer.sign(10, sealed[9].hash, t(200)),
    ];
    // Stored out of order, read back in order.
    store.append_checkpoint(&cps[1]).await.unwrap();
    store.append_checkpoint(&cps[0]).await.unwrap();
    assert_eq!(store.audit_checkpoints().await.unwrap(), cps);
    // Another checkpoint at a stored sequence number is a conflict. The same
    // one again is one too on a single-writer store; a shared store accepts
    // it (several nodes may sign the same head) and keeps one copy.
    let other = store
        .append_checkpoint(&signer.sign(5, sealed[4].hash, t(300)))
        .await;
    assert!(matches!(other, Err(StoreError::Conflict(_))), "{other:?}");
    let dup = store.append_checkpoint(&cps[0]).await;
    if store.shared() {
        assert!(dup.is_ok(), "{dup:?}");
    } else {
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    }
    assert_eq!(store.audit_checkpoints().await.unwrap(), cps);

    let report = verify_all(
        &signer.public_key(),
        store.audit_checkpoints().await.unwrap(),
        &all,
    )
    .unwrap();
    assert_eq!((report.records, report.checkpoints), (10, 2));
    assert_eq!(report.last_hash, head.hash);
}

// ---- policy versions --------------------------------------------------------

fn policy(version: u64) -> PolicyVersion {
    PolicyVersion {
        version,
        digest: format!("{version:064x}"),
        policy_count: u32::try_from(version).unwrap() * 2,
        created_at: t(i64::try_from(version).unwrap()),
        created_by: "token:tok_0000000000000001".into(),
    }
}

fn put(version: u64) -> Write {
    Write::PutPolicyVersion {
        version: policy(version),
        files: format!(r#"{{"files":{{"p.cedar":"// v{version}"}}}}"#),
    }
}

pub(crate) async fn policy_versions_are_kept_and_activated(store: &dyn Store) {
    assert_eq!(store.active_policy_version().await.unwrap(), None);
    assert!(store.policy_versions().await.unwrap().is_empty());
    apply_one(store, put(1)).await.unwrap();
    apply_one(store, put(2)).await.unwrap();
    assert_eq!(store.active_policy_version().await.unwrap(), Some(2));
    let listed = store.policy_versions().await.unwrap();
    assert_eq!(listed, vec![policy(1), policy(2)]);
    let (meta, files) = store.policy_version(1).await.unwrap().unwrap();
    assert_eq!(meta, policy(1));
    assert_eq!(files, r#"{"files":{"p.cedar":"// v1"}}"#);
    assert!(store.policy_version(3).await.unwrap().is_none());

    // A taken version number is a conflict and leaves no record.
    let before = verified_len(store).await;
    let dup = apply_one(store, put(2)).await.unwrap_err();
    assert!(matches!(dup, StoreError::Conflict(_)), "{dup:?}");
    assert_eq!(verified_len(store).await, before);

    // Rollback: activate an older version, checked against what was active.
    let roll = |version, from| Write::ActivatePolicyVersion {
        version,
        from,
        at: t(9),
    };
    let stale = apply_one(store, roll(1, Some(1))).await.unwrap_err();
    assert!(matches!(stale, StoreError::Conflict(_)), "{stale:?}");
    let missing = apply_one(store, roll(7, Some(2))).await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound), "{missing:?}");
    assert_eq!(store.active_policy_version().await.unwrap(), Some(2));
    apply_one(store, roll(1, Some(2))).await.unwrap();
    assert_eq!(store.active_policy_version().await.unwrap(), Some(1));
    assert_eq!(verified_len(store).await, before + 1);
}
