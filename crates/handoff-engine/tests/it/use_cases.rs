//! Use cases: ownership, status transitions, credentials, admin tokens.

use crate::support::env;
use chrono::TimeDelta;
use handoff_core::{Attributes, IdentityId, Role, Status};
use handoff_engine::inventory::NewIdentity;
use handoff_engine::{Admin, AppenderSettings, Authenticated, EngineError};
use handoff_store::IdentityFilter;

fn id(s: &str) -> IdentityId {
    IdentityId::parse(s).unwrap()
}

fn new(s: &str, owner: Option<&str>) -> NewIdentity {
    NewIdentity {
        id: id(s),
        owner: owner.map(id),
        environment: None,
        attributes: Attributes::default(),
    }
}

#[tokio::test]
async fn owners_must_exist_be_human_and_active() {
    let e = env(AppenderSettings::default()).await;
    let a = Admin::system();
    let err = e
        .engine
        .create_identity(&a, new("agent:bot", Some("human:ghost")))
        .await;
    assert!(matches!(err, Err(EngineError::Owner(_))), "{err:?}");
    e.engine
        .create_identity(&a, new("human:alice", None))
        .await
        .unwrap();
    e.engine
        .create_identity(&a, new("agent:bot", Some("human:alice")))
        .await
        .unwrap();
    let err = e
        .engine
        .create_identity(&a, new("service:api", Some("agent:bot")))
        .await;
    assert!(matches!(err, Err(EngineError::Owner(_))), "{err:?}");
    let err = e.engine.create_identity(&a, new("service:api", None)).await;
    assert!(matches!(err, Err(EngineError::Owner(_))), "{err:?}");
    e.engine
        .set_status(&a, &id("human:alice"), Status::Suspended, None)
        .await
        .unwrap();
    let err = e
        .engine
        .create_identity(&a, new("service:api", Some("human:alice")))
        .await;
    assert!(matches!(err, Err(EngineError::Owner(_))), "{err:?}");
    assert_eq!(e.engine.verify_audit().await.unwrap().records, 3);
}

#[tokio::test]
async fn disabling_a_human_orphans_what_it_owns() {
    let e = env(AppenderSettings::default()).await;
    let a = Admin::system();
    e.engine
        .create_identity(&a, new("human:alice", None))
        .await
        .unwrap();
    e.engine
        .create_identity(&a, new("human:bob", None))
        .await
        .unwrap();
    e.engine
        .create_identity(&a, new("agent:a1", Some("human:alice")))
        .await
        .unwrap();
    e.engine
        .create_identity(&a, new("service:s1", Some("human:alice")))
        .await
        .unwrap();
    e.engine
        .create_identity(&a, new("agent:b1", Some("human:bob")))
        .await
        .unwrap();
    e.engine
        .set_status(
            &a,
            &id("human:alice"),
            Status::Disabled,
            Some("left".into()),
        )
        .await
        .unwrap();
    let filter = IdentityFilter {
        orphaned: Some(true),
        ..IdentityFilter::default()
    };
    let page = e
        .engine
        .identities(&filter, None, Default::default())
        .await
        .unwrap();
    let ids: Vec<&str> = page.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["agent:a1", "service:s1"]);
}

#[tokio::test]
async fn rejected_transitions_change_nothing() {
    let e = env(AppenderSettings::default()).await;
    let a = Admin::system();
    let alice = id("human:alice");
    e.engine
        .create_identity(&a, new("human:alice", None))
        .await
        .unwrap();
    let err = e
        .engine
        .set_status(&a, &alice, Status::Decommissioned, None)
        .await;
    assert!(matches!(err, Err(EngineError::Transition(_))), "{err:?}");
    e.engine
        .set_status(&a, &alice, Status::Disabled, None)
        .await
        .unwrap();
    for to in [Status::Active, Status::Suspended, Status::Disabled] {
        let err = e.engine.set_status(&a, &alice, to, None).await;
        assert!(
            matches!(err, Err(EngineError::Transition(_))),
            "{to}: {err:?}"
        );
    }
    e.engine
        .set_status(&a, &alice, Status::Decommissioned, None)
        .await
        .unwrap();
    assert_eq!(
        e.engine.identity(&alice).await.unwrap().status,
        Status::Decommissioned
    );
    assert_eq!(e.engine.verify_audit().await.unwrap().records, 3);
}

#[tokio::test]
async fn a_credential_authenticates_only_while_it_and_its_identity_are_active() {
    let e = env(AppenderSettings::default()).await;
    let a = Admin::system();
    e.engine
        .create_identity(&a, new("human:alice", None))
        .await
        .unwrap();
    e.engine
        .create_identity(&a, new("agent:bot", Some("human:alice")))
        .await
        .unwrap();
    let bot = id("agent:bot");
    let (cred, secret) = e
        .engine
        .issue_credential(&a, &bot, "ci".into(), Some(3600))
        .await
        .unwrap();
    let who = e.engine.authenticate(secret.expose()).await.unwrap();
    assert!(matches!(who, Authenticated::Credential { ref identity, .. } if identity.id == bot));
    // The secret is stored only as a hash and never reaches the audit log.
    assert_ne!(cred.hash, secret.expose().as_bytes());
    let log = e.engine.audit_records(0, 100).await.unwrap();
    assert!(log.iter().all(|r| !r.details.contains(secret.expose())));
    // A near miss does not authenticate.
    let mut wrong = secret.expose().to_owned();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'A' { 'B' } else { 'A' });
    assert!(matches!(
        e.engine.authenticate(&wrong).await,
        Err(EngineError::Unauthenticated(_))
    ));
    // Suspended identity: refused; resumed: accepted again.
    e.engine
        .set_status(&a, &bot, Status::Suspended, None)
        .await
        .unwrap();
    assert!(e.engine.authenticate(secret.expose()).await.is_err());
    e.engine
        .set_status(&a, &bot, Status::Active, None)
        .await
        .unwrap();
    assert!(e.engine.authenticate(secret.expose()).await.is_ok());
    // Expiry.
    e.clock.advance(TimeDelta::seconds(3600));
    assert!(e.engine.authenticate(secret.expose()).await.is_err());
    // Revocation.
    let (cred2, secret2) = e
        .engine
        .issue_credential(&a, &bot, String::new(), None)
        .await
        .unwrap();
    assert!(e.engine.authenticate(secret2.expose()).await.is_ok());
    let used = e.engine.credential(&cred2.id).await.unwrap();
    assert_eq!(used.last_used_at, Some(e.clock_now()));
    e.engine.revoke_credential(&a, &cred2.id).await.unwrap();
    assert!(e.engine.authenticate(secret2.expose()).await.is_err());
    let again = e.engine.revoke_credential(&a, &cred2.id).await;
    assert!(matches!(again, Err(EngineError::Conflict(_))), "{again:?}");
    // Disabled identity: refused, and no new credentials.
    e.engine
        .set_status(&a, &bot, Status::Disabled, None)
        .await
        .unwrap();
    let err = e
        .engine
        .issue_credential(&a, &bot, String::new(), None)
        .await;
    assert!(matches!(err, Err(EngineError::Conflict(_))), "{err:?}");
    // Humans hold no credentials.
    let err = e
        .engine
        .issue_credential(&a, &id("human:alice"), String::new(), None)
        .await;
    assert!(matches!(err, Err(EngineError::Invalid(_))), "{err:?}");
}

#[tokio::test]
async fn auditors_read_but_never_write() {
    let e = env(AppenderSettings::default()).await;
    let a = Admin::system();
    let (_, secret) = e
        .engine
        .create_admin_token(&a, "audit".into(), Role::Auditor, None)
        .await
        .unwrap();
    let auditor = e.engine.authenticate_admin(secret.expose()).await.unwrap();
    assert_eq!(auditor.role, Role::Auditor);
    let err = e
        .engine
        .create_identity(&auditor, new("human:x", None))
        .await;
    assert!(matches!(err, Err(EngineError::Forbidden(_))), "{err:?}");
    let err = e
        .engine
        .create_admin_token(&auditor, "x".into(), Role::Admin, None)
        .await;
    assert!(matches!(err, Err(EngineError::Forbidden(_))), "{err:?}");
}

#[tokio::test]
async fn the_last_admin_token_cannot_be_revoked() {
    let e = env(AppenderSettings::default()).await;
    e.engine.bootstrap(&e.dir).await.unwrap();
    let a = Admin::system();
    let tokens = e.engine.admin_tokens().await.unwrap();
    assert_eq!(tokens.len(), 1);
    let err = e.engine.revoke_admin_token(&a, &tokens[0].id).await;
    assert!(matches!(err, Err(EngineError::Conflict(_))), "{err:?}");
    let (second, _) = e
        .engine
        .create_admin_token(&a, "ops".into(), Role::Admin, None)
        .await
        .unwrap();
    let revoked = e
        .engine
        .revoke_admin_token(&a, &tokens[0].id)
        .await
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    let err = e.engine.revoke_admin_token(&a, &second.id).await;
    assert!(matches!(err, Err(EngineError::Conflict(_))), "{err:?}");
}
