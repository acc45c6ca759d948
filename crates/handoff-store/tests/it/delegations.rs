//! The delegation part of the store conformance suite: storing lineages,
//! reading chains, the parent checks made inside the write, cascading
//! revocation, and the client assertion replay set.
//!
//! Like `conformance.rs`, each function takes a fresh, empty store and uses
//! the trait alone, so every backend runs the same list.

use crate::conformance::{apply, apply_one, cred_id, credential, human, id, limit, owned, t};
use chrono::TimeDelta;
use handoff_core::{Audience, Delegation, DelegationId, Scope, Status, Time};
use handoff_store::{DelegationFilter, Store, StoreError, Write};
use std::collections::BTreeSet;

// ---- fixtures ----------------------------------------------------------

pub(crate) fn dlg(n: u64) -> DelegationId {
    DelegationId::parse(&format!("dlg_{n:032x}")).unwrap()
}

/// A lineage root: `human:<subject>`'s own grant, issued at `t(issued)`.
pub(crate) fn root(n: u64, subject: &str, issued: i64) -> Delegation {
    let subject = id(&format!("human:{subject}"));
    Delegation {
        id: dlg(n),
        parent: None,
        lineage: dlg(n),
        subject: subject.clone(),
        delegator: subject.clone(),
        actor: subject,
        credential: None,
        scope: Scope::parse("doc:* read").unwrap(),
        audience: Audience::parse(&["https://docs.example", "https://api.example"]).unwrap(),
        depth: 0,
        max_depth: 5,
        max_fan_out: 10,
        issued_at: t(issued),
        expires_at: t(issued + 3600),
        revoked_at: None,
    }
}

/// A child of `parent` held by `actor`, issued a second after it.
pub(crate) fn child(n: u64, parent: &Delegation, actor: &str) -> Delegation {
    Delegation {
        id: dlg(n),
        parent: Some(parent.id.clone()),
        lineage: parent.lineage.clone(),
        subject: parent.subject.clone(),
        delegator: parent.actor.clone(),
        actor: id(actor),
        credential: None,
        scope: parent.scope.clone(),
        audience: parent.audience.clone(),
        depth: parent.depth + 1,
        max_depth: parent.max_depth,
        max_fan_out: parent.max_fan_out,
        issued_at: parent.issued_at + TimeDelta::seconds(1),
        expires_at: parent.expires_at,
        revoked_at: None,
    }
}

/// The identities the fixtures name, so a backend may check references.
async fn people(store: &dyn Store) {
    let writes = vec![
        Write::CreateIdentity(human("alice")),
        Write::CreateIdentity(human("bob")),
        Write::CreateIdentity(owned("agent:a1", "alice")),
        Write::CreateIdentity(owned("agent:a2", "alice")),
        Write::CreateIdentity(owned("agent:a3", "alice")),
        Write::CreateIdentity(owned("service:s1", "bob")),
        Write::CreateIdentity(owned("service:s2", "bob")),
    ];
    assert!(apply(store, writes).await.iter().all(Result::is_ok));
}

async fn create(store: &dyn Store, list: &[Delegation]) {
    apply_one(store, Write::CreateDelegations(list.to_vec()))
        .await
        .unwrap();
}

async fn revoke(store: &dyn Store, ids: &[&Delegation], at: Time) {
    let ids = ids.iter().map(|d| d.id.clone()).collect();
    apply_one(store, Write::RevokeDelegations { ids, at })
        .await
        .unwrap();
}

async fn revoked_at(store: &dyn Store, d: &Delegation) -> Option<Time> {
    store.delegation(&d.id).await.unwrap().unwrap().revoked_at
}

fn id_set<'a>(list: impl IntoIterator<Item = &'a Delegation>) -> BTreeSet<DelegationId> {
    list.into_iter().map(|d| d.id.clone()).collect()
}

// ---- reads -------------------------------------------------------------

/// An empty store has no delegations and no chains.
pub(crate) async fn an_empty_store_has_no_delegations(store: &dyn Store) {
    assert_eq!(store.delegation(&dlg(1)).await.unwrap(), None);
    assert!(store.chain(&dlg(1)).await.unwrap().is_empty());
    assert!(store.lineage(&dlg(1)).await.unwrap().is_empty());
    assert_eq!(store.live_children(&dlg(1), t(1_000)).await.unwrap(), 0);
    let page = store
        .delegations(&DelegationFilter::default(), None, limit(10))
        .await
        .unwrap();
    assert!(page.items.is_empty());
    assert_eq!(page.next, None);
}

/// Every delegation field, times to the microsecond, comes back as written.
pub(crate) async fn delegation_round_trips_every_field(store: &dyn Store) {
    people(store).await;
    apply_one(store, Write::IssueCredential(credential(7, "agent:a1", 0)))
        .await
        .unwrap();
    let r = Delegation {
        scope: Scope::parse("").unwrap(),
        audience: Audience::any(),
        max_fan_out: u32::MAX,
        max_depth: u32::MAX,
        ..root(1, "alice", 0)
    };
    let c = Delegation {
        credential: Some(cred_id(7)),
        scope: Scope::parse("doc:read ticket:* read !#$%&'()+,-./:;<=>?@[]^_`{|}~").unwrap(),
        audience: Audience::parse(&["https://a.example/x?y=1", "urn:z"]).unwrap(),
        depth: 1,
        max_depth: 3,
        max_fan_out: 0,
        issued_at: t(5) + TimeDelta::microseconds(1),
        expires_at: t(65) + TimeDelta::microseconds(999_999),
        revoked_at: Some(t(70)),
        ..child(2, &r, "agent:a1")
    };
    create(store, &[r.clone(), c.clone()]).await;
    assert_eq!(store.delegation(&r.id).await.unwrap(), Some(r.clone()));
    assert_eq!(store.delegation(&c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(store.delegation(&dlg(3)).await.unwrap(), None);
}

/// `chain` walks from any delegation up to its root and returns root first.
pub(crate) async fn chain_returns_root_first(store: &dyn Store) {
    people(store).await;
    let r = root(1, "alice", 0);
    let a = child(2, &r, "agent:a1");
    let b = child(3, &a, "service:s1");
    let c = child(4, &b, "agent:a2");
    let side = child(5, &a, "agent:a3");
    create(store, &[r.clone(), a.clone(), b.clone(), c.clone(), side]).await;
    assert_eq!(
        store.chain(&c.id).await.unwrap(),
        [r.clone(), a.clone(), b.clone(), c.clone()]
    );
    assert_eq!(store.chain(&a.id).await.unwrap(), [r.clone(), a.clone()]);
    assert_eq!(store.chain(&r.id).await.unwrap(), std::slice::from_ref(&r));
    assert!(store.chain(&dlg(99)).await.unwrap().is_empty());
}

/// `lineage` lists one tree by depth, then issue time, then id, and nothing
/// of other lineages.
pub(crate) async fn lineage_is_ordered_by_depth_issue_time_and_id(store: &dyn Store) {
    people(store).await;
    let r = root(10, "alice", 0);
    let late = Delegation {
        issued_at: t(9),
        ..child(11, &r, "agent:a1")
    };
    let early_high_id = Delegation {
        issued_at: t(3),
        ..child(19, &r, "agent:a2")
    };
    let early_low_id = Delegation {
        issued_at: t(3),
        ..child(12, &r, "agent:a3")
    };
    let deep = Delegation {
        issued_at: t(1),
        ..child(13, &late, "service:s1")
    };
    let other = root(20, "bob", 0);
    create(
        store,
        &[
            r.clone(),
            late.clone(),
            early_high_id.clone(),
            early_low_id.clone(),
            deep.clone(),
            other.clone(),
            child(21, &other, "service:s2"),
        ],
    )
    .await;
    assert_eq!(
        store.lineage(&r.id).await.unwrap(),
        [r, early_low_id, early_high_id, late, deep]
    );
    assert_eq!(store.lineage(&other.id).await.unwrap().len(), 2);
    assert!(store.lineage(&dlg(11)).await.unwrap().is_empty());
}

// ---- creating ------------------------------------------------------------

/// A child of a revoked parent is refused, and the whole write with it:
/// no row, no record, the head stays.
pub(crate) async fn a_child_of_a_revoked_parent_is_a_conflict_and_leaves_no_trace(
    store: &dyn Store,
) {
    people(store).await;
    let r = root(1, "alice", 0);
    let a = child(2, &r, "agent:a1");
    create(store, &[r.clone(), a.clone()]).await;
    revoke(store, &[&a], t(10)).await;
    let before = store.audit_head().await.unwrap();

    let fresh = root(3, "bob", 20);
    let refused = child(4, &a, "agent:a2");
    let result = apply_one(
        store,
        Write::CreateDelegations(vec![fresh.clone(), refused.clone()]),
    )
    .await;
    match result {
        Err(StoreError::Conflict(m)) => assert!(m.contains(a.id.as_str()), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.audit_head().await.unwrap(), before);
    assert_eq!(store.delegation(&refused.id).await.unwrap(), None);
    assert_eq!(store.delegation(&fresh.id).await.unwrap(), None);
    assert_eq!(store.live_children(&a.id, t(1_000)).await.unwrap(), 0);
}

/// A parent that does not exist is `NotFound` and nothing is stored.
pub(crate) async fn a_child_of_an_unknown_parent_is_not_found(store: &dyn Store) {
    people(store).await;
    let before = store.audit_head().await.unwrap();
    let orphan = child(2, &root(1, "alice", 0), "agent:a1");
    let result = apply_one(store, Write::CreateDelegations(vec![orphan.clone()])).await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    assert_eq!(store.delegation(&orphan.id).await.unwrap(), None);
    assert_eq!(store.audit_head().await.unwrap(), before);
}

/// A delegation id is used once.
pub(crate) async fn a_duplicate_delegation_is_a_conflict(store: &dyn Store) {
    people(store).await;
    let r = root(1, "alice", 0);
    create(store, std::slice::from_ref(&r)).await;
    let again = Delegation {
        actor: id("agent:a1"),
        ..r.clone()
    };
    let result = apply_one(store, Write::CreateDelegations(vec![again])).await;
    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    assert_eq!(store.delegation(&r.id).await.unwrap(), Some(r));
}

/// A parent with `max_fan_out` unrevoked children takes no more; revoking
/// one frees a place.
pub(crate) async fn a_full_parent_refuses_another_child(store: &dyn Store) {
    people(store).await;
    let r = Delegation {
        max_fan_out: 2,
        ..root(1, "alice", 0)
    };
    let a = child(2, &r, "agent:a1");
    let b = child(3, &r, "agent:a2");
    let c = child(4, &r, "agent:a3");
    create(store, &[r.clone(), a.clone(), b.clone()]).await;
    let before = store.audit_head().await.unwrap();
    let result = apply_one(store, Write::CreateDelegations(vec![c.clone()])).await;
    match result {
        Err(StoreError::Conflict(m)) => {
            assert!(m.contains(r.id.as_str()) && m.contains("maximum"), "{m}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.audit_head().await.unwrap(), before);
    assert_eq!(store.delegation(&c.id).await.unwrap(), None);

    // Within one write the children created earlier count too.
    let s = Delegation {
        max_fan_out: 1,
        ..root(5, "bob", 0)
    };
    let twins = [child(6, &s, "service:s1"), child(7, &s, "service:s2")];
    let result = apply_one(
        store,
        Write::CreateDelegations(vec![s.clone(), twins[0].clone(), twins[1].clone()]),
    )
    .await;
    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    assert_eq!(store.delegation(&s.id).await.unwrap(), None);

    revoke(store, &[&a], t(10)).await;
    create(store, std::slice::from_ref(&c)).await;
    assert_eq!(store.live_children(&r.id, t(1_000)).await.unwrap(), 2);
}

/// `live_children` counts direct, unrevoked children only.
pub(crate) async fn live_children_counts_unrevoked_direct_children(store: &dyn Store) {
    people(store).await;
    let r = root(1, "alice", 0);
    let a = child(2, &r, "agent:a1");
    let b = child(3, &r, "agent:a2");
    let c = child(4, &r, "agent:a3");
    let grandchild = child(5, &a, "service:s1");
    let expired = Delegation {
        expires_at: t(2),
        ..child(6, &r, "service:s2")
    };
    create(
        store,
        &[
            r.clone(),
            a.clone(),
            b.clone(),
            c.clone(),
            grandchild,
            expired,
        ],
    )
    .await;
    // Expiry is the caller's business: an expired child still counts.
    assert_eq!(store.live_children(&r.id, t(1_000)).await.unwrap(), 4);
    assert_eq!(store.live_children(&a.id, t(1_000)).await.unwrap(), 1);
    assert_eq!(store.live_children(&b.id, t(1_000)).await.unwrap(), 0);
    revoke(store, &[&b], t(10)).await;
    assert_eq!(store.live_children(&r.id, t(1_000)).await.unwrap(), 3);
    revoke(store, &[&r], t(20)).await;
    assert_eq!(store.live_children(&r.id, t(1_000)).await.unwrap(), 0);
}

// ---- revoking --------------------------------------------------------------

/// Revoking a delegation revokes its whole subtree and nothing else, once:
/// repeating it succeeds and changes no timestamp.
pub(crate) async fn revoking_a_delegation_cascades_to_its_descendants_only(store: &dyn Store) {
    people(store).await;
    let r = root(1, "alice", 0);
    let a = child(2, &r, "agent:a1");
    let a1 = child(3, &a, "service:s1");
    let a11 = child(4, &a1, "agent:a2");
    let a2 = child(5, &a, "service:s2");
    let b = child(6, &r, "agent:a3");
    let b1 = child(7, &b, "service:s1");
    let other = root(8, "bob", 0);
    let all = [&r, &a, &a1, &a11, &a2, &b, &b1, &other];
    create(store, &all.map(Clone::clone)).await;

    revoke(store, &[&a], t(10)).await;
    for d in [&a, &a1, &a11, &a2] {
        assert_eq!(revoked_at(store, d).await, Some(t(10)), "{}", d.id);
    }
    for d in [&r, &b, &b1, &other] {
        assert_eq!(revoked_at(store, d).await, None, "{}", d.id);
    }

    // Idempotent: the same ids again, an inner one and an unknown one.
    let head = store.audit_head().await.unwrap();
    apply_one(
        store,
        Write::RevokeDelegations {
            ids: vec![a.id.clone(), a1.id.clone(), dlg(99)],
            at: t(20),
        },
    )
    .await
    .unwrap();
    assert_eq!(store.audit_head().await.unwrap().seq, head.seq + 1);
    for d in [&a, &a1, &a11, &a2] {
        assert_eq!(revoked_at(store, d).await, Some(t(10)), "{}", d.id);
    }
    apply_one(
        store,
        Write::RevokeDelegations {
            ids: vec![],
            at: t(25),
        },
    )
    .await
    .unwrap();

    // Revoking the root reaches the rest, leaving earlier revocations be.
    revoke(store, &[&r], t(30)).await;
    for (d, at) in [
        (&r, t(30)),
        (&b, t(30)),
        (&b1, t(30)),
        (&a, t(10)),
        (&a11, t(10)),
    ] {
        assert_eq!(revoked_at(store, d).await, Some(at), "{}", d.id);
    }
    assert_eq!(revoked_at(store, &other).await, None);
}

/// Suspending an identity with `revoke_delegations` revokes what it holds,
/// what it granted and what it is the subject of, with every descendant;
/// without the flag nothing is revoked.
pub(crate) async fn set_status_revokes_the_identity_s_delegations(store: &dyn Store) {
    people(store).await;
    // alice → a1 → s1 → a2, and a1 holds a second lineage's leaf.
    let r = root(1, "alice", 0);
    let held = child(2, &r, "agent:a1");
    let granted = child(3, &held, "service:s1");
    let below = child(4, &granted, "agent:a2");
    let bob = root(5, "bob", 0);
    let bob_s1 = child(6, &bob, "service:s1");
    let bob_a1 = child(7, &bob_s1, "agent:a1");
    let bob_a1_s2 = child(8, &bob_a1, "service:s2");
    let untouched = child(9, &bob, "service:s2");
    // Rows no engine writes, so that each part of the match shows on its
    // own: granted by a1 without a1 holding anything above, and a root for
    // bob that bob does not hold.
    let granted_only = Delegation {
        delegator: id("agent:a1"),
        actor: id("service:s2"),
        ..root(10, "alice", 0)
    };
    let subject_only = Delegation {
        delegator: id("service:s2"),
        actor: id("service:s2"),
        ..root(11, "bob", 0)
    };
    let all = [
        &r,
        &held,
        &granted,
        &below,
        &bob,
        &bob_s1,
        &bob_a1,
        &bob_a1_s2,
        &untouched,
        &granted_only,
        &subject_only,
    ];
    create(store, &all.map(Clone::clone)).await;

    let set = |from, to, revoke_delegations, at| Write::SetStatus {
        id: id("agent:a1"),
        from,
        to,
        orphan_owned: false,
        revoke_delegations,
        at,
    };
    apply_one(store, set(Status::Active, Status::Suspended, false, t(10)))
        .await
        .unwrap();
    for d in all {
        assert_eq!(revoked_at(store, d).await, None, "{}", d.id);
    }
    apply_one(store, set(Status::Suspended, Status::Active, false, t(15)))
        .await
        .unwrap();

    // A stale `from` is refused and revokes nothing.
    let refused = apply_one(store, set(Status::Suspended, Status::Disabled, true, t(18))).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(revoked_at(store, &held).await, None);

    apply_one(store, set(Status::Active, Status::Disabled, true, t(20)))
        .await
        .unwrap();
    for d in [&held, &granted, &below, &bob_a1, &bob_a1_s2, &granted_only] {
        assert_eq!(revoked_at(store, d).await, Some(t(20)), "{}", d.id);
    }
    for d in [&r, &bob, &bob_s1, &untouched, &subject_only] {
        assert_eq!(revoked_at(store, d).await, None, "{}", d.id);
    }

    // A subject's suspension takes its whole lineages.
    apply_one(
        store,
        Write::SetStatus {
            id: id("human:bob"),
            from: Status::Active,
            to: Status::Suspended,
            orphan_owned: false,
            revoke_delegations: true,
            at: t(30),
        },
    )
    .await
    .unwrap();
    for (d, at) in [
        (&bob, t(30)),
        (&bob_s1, t(30)),
        (&untouched, t(30)),
        (&bob_a1, t(20)),
        (&subject_only, t(30)),
    ] {
        assert_eq!(revoked_at(store, d).await, Some(at), "{}", d.id);
    }
    assert_eq!(revoked_at(store, &r).await, None);
}

/// Revoking a credential revokes every delegation obtained with it and
/// everything below those, and nothing obtained otherwise.
pub(crate) async fn revoking_a_credential_revokes_delegations_obtained_with_it(store: &dyn Store) {
    people(store).await;
    let key = credential(1, "agent:a1", 0);
    let other_key = credential(2, "agent:a1", 0);
    for c in [&key, &other_key] {
        apply_one(store, Write::IssueCredential(c.clone()))
            .await
            .unwrap();
    }
    let r = root(1, "alice", 0);
    let with_key = Delegation {
        credential: Some(key.id.clone()),
        ..child(2, &r, "agent:a1")
    };
    let below = child(3, &with_key, "service:s1");
    let with_other_key = Delegation {
        credential: Some(other_key.id.clone()),
        ..child(4, &r, "agent:a1")
    };
    let without = child(5, &r, "agent:a2");
    let all = [&r, &with_key, &below, &with_other_key, &without];
    create(store, &all.map(Clone::clone)).await;

    apply_one(
        store,
        Write::RevokeCredential {
            id: key.id.clone(),
            at: t(10),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        store.credential(&key.id).await.unwrap().unwrap().revoked_at,
        Some(t(10))
    );
    for d in [&with_key, &below] {
        assert_eq!(revoked_at(store, d).await, Some(t(10)), "{}", d.id);
    }
    for d in [&r, &with_other_key, &without] {
        assert_eq!(revoked_at(store, d).await, None, "{}", d.id);
    }

    // Revoking it again is refused and revokes nothing more.
    let again = apply_one(
        store,
        Write::RevokeCredential {
            id: key.id.clone(),
            at: t(20),
        },
    )
    .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(revoked_at(store, &below).await, Some(t(10)));
}

// ---- listing ---------------------------------------------------------------

/// The identity filter matches actor, delegator or subject; `live_at`
/// drops revoked and expired ones; pages visit each match once, by id.
pub(crate) async fn delegation_filters_and_pagination_visit_each_once(store: &dyn Store) {
    people(store).await;
    let r = root(1, "alice", 0);
    let a = child(2, &r, "agent:a1");
    let s = child(3, &a, "service:s1");
    let expired = Delegation {
        expires_at: t(50),
        ..child(4, &r, "agent:a2")
    };
    let revoked = child(5, &r, "agent:a3");
    let bob = root(6, "bob", 0);
    let bob_s2 = child(7, &bob, "service:s2");
    let mut all = [&r, &a, &s, &expired, &revoked, &bob, &bob_s2];
    create(store, &all.iter().map(|d| (*d).clone()).collect::<Vec<_>>()).await;
    revoke(store, &[&revoked], t(10)).await;

    let list = |filter: DelegationFilter| async move {
        let page = store.delegations(&filter, None, limit(500)).await.unwrap();
        assert_eq!(page.next, None);
        id_set(&page.items)
    };
    let everything = list(DelegationFilter::default()).await;
    assert_eq!(everything, id_set(all.iter().copied()));
    let a1 = DelegationFilter {
        identity: Some(id("agent:a1")),
        ..DelegationFilter::default()
    };
    assert_eq!(list(a1.clone()).await, id_set([&a, &s]));
    let alice = DelegationFilter {
        identity: Some(id("human:alice")),
        ..DelegationFilter::default()
    };
    assert_eq!(
        list(alice.clone()).await,
        id_set([&r, &a, &s, &expired, &revoked])
    );
    let live = DelegationFilter {
        live_at: Some(t(50)),
        ..alice
    };
    assert_eq!(list(live).await, id_set([&r, &a, &s]));
    let live_earlier = DelegationFilter {
        live_at: Some(t(49)),
        ..DelegationFilter::default()
    };
    assert_eq!(
        list(live_earlier).await,
        id_set([&r, &a, &s, &expired, &bob, &bob_s2])
    );
    assert!(
        list(DelegationFilter {
            identity: Some(id("human:nobody")),
            ..DelegationFilter::default()
        })
        .await
        .is_empty()
    );

    // Pages of 2 over all 7, in id order, each exactly once.
    all.sort_by(|x, y| x.id.cmp(&y.id));
    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = store
            .delegations(&DelegationFilter::default(), after.as_ref(), limit(2))
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|d| d.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(seen, all.iter().map(|d| d.id.clone()).collect::<Vec<_>>());

    // A filtered page of exactly the matches' size has no next page.
    let page = store.delegations(&a1, None, limit(2)).await.unwrap();
    assert_eq!((page.items.len(), page.next), (2, None));
}

// ---- client assertions -------------------------------------------------------

/// A `jti` is accepted once per client until it expires, then again.
pub(crate) async fn a_replayed_assertion_is_refused_until_it_expires(store: &dyn Store) {
    let remember = |client: &'static str, jti: &'static str, expires: i64, now: i64| async move {
        store
            .remember_assertion(&id(client), jti, t(expires), t(now))
            .await
            .unwrap()
    };
    assert!(remember("agent:a1", "j-1", 60, 0).await);
    assert!(!remember("agent:a1", "j-1", 60, 1).await, "a replay");
    assert!(!remember("agent:a1", "j-1", 120, 59).await, "a replay");
    assert!(remember("service:s1", "j-1", 60, 1).await, "another client");
    assert!(remember("agent:a1", "j-2", 60, 1).await, "another jti");
    // Expired entries are forgotten, so the jti is accepted again.
    assert!(remember("agent:a1", "j-1", 180, 60).await);
    assert!(!remember("agent:a1", "j-1", 180, 61).await, "a replay");
    // Nothing here is audited.
    assert_eq!(store.audit_head().await.unwrap().seq, 0);
}

/// Client keys: added to an existing identity, listed oldest first,
/// unique per identity, revoked once.
pub(crate) async fn client_keys_add_list_revoke(store: &dyn Store) {
    apply_one(store, Write::CreateIdentity(human("alice")))
        .await
        .unwrap();
    apply_one(store, Write::CreateIdentity(owned("agent:bot", "alice")))
        .await
        .unwrap();
    let key = |kid: &str, at: i64| handoff_core::ClientKey {
        identity: id("agent:bot"),
        kid: kid.into(),
        jwk: format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"{kid}"}}"#),
        created_at: t(at),
        revoked_at: None,
    };
    assert!(
        store
            .client_keys(&id("agent:bot"))
            .await
            .unwrap()
            .is_empty()
    );
    apply_one(store, Write::AddClientKey(key("k2", 1)))
        .await
        .unwrap();
    apply_one(store, Write::AddClientKey(key("k1", 2)))
        .await
        .unwrap();
    let dup = apply_one(store, Write::AddClientKey(key("k1", 3))).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let mut orphan = key("k9", 4);
    orphan.identity = id("agent:nobody");
    let missing = apply_one(store, Write::AddClientKey(orphan)).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    let keys = store.client_keys(&id("agent:bot")).await.unwrap();
    assert_eq!(keys, [key("k2", 1), key("k1", 2)]);

    let revoke = |kid: &str| Write::RevokeClientKey {
        identity: id("agent:bot"),
        kid: kid.into(),
        at: t(10),
    };
    apply_one(store, revoke("k2")).await.unwrap();
    let again = apply_one(store, revoke("k2")).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let unknown = apply_one(store, revoke("nope")).await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
    let keys = store.client_keys(&id("agent:bot")).await.unwrap();
    assert_eq!(keys[0].revoked_at, Some(t(10)));
    assert_eq!(keys[1].revoked_at, None);
}

/// An expired child frees its fan-out slot: a full parent takes a new child
/// issued after a sibling expired, but not one issued before.
pub(crate) async fn an_expired_child_frees_its_fan_out_slot(store: &dyn Store) {
    people(store).await;
    let r = Delegation {
        max_fan_out: 2,
        ..root(1, "alice", 0)
    };
    let short = Delegation {
        expires_at: t(5),
        ..child(2, &r, "agent:a1")
    };
    let long = child(3, &r, "agent:a2");
    create(store, &[r.clone(), short, long]).await;
    let early = Delegation {
        issued_at: t(4),
        ..child(4, &r, "agent:a3")
    };
    let refused = apply_one(store, Write::CreateDelegations(vec![early])).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(store.live_children(&r.id, t(4)).await.unwrap(), 2);
    assert_eq!(store.live_children(&r.id, t(6)).await.unwrap(), 1);
    let later = Delegation {
        issued_at: t(6),
        ..child(5, &r, "agent:a3")
    };
    apply_one(store, Write::CreateDelegations(vec![later]))
        .await
        .unwrap();
    assert_eq!(store.live_children(&r.id, t(6)).await.unwrap(), 2);
    let full = Delegation {
        issued_at: t(7),
        ..child(6, &r, "service:s1")
    };
    let refused = apply_one(store, Write::CreateDelegations(vec![full])).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
}
