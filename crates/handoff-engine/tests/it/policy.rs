//! Policy packs through the engine: versions, rollback, live inventory,
//! decision log.

use crate::policy_support::{agents_pack, read_ticket, seed_inventory};
use crate::support::env;
use handoff_core::{Environment, IdentityId, Role, Status};
use handoff_engine::auth::Actor;
use handoff_engine::inventory::IdentityUpdate;
use handoff_engine::policy::Semantic;
use handoff_engine::{Admin, AppenderSettings, EngineError};
use handoff_policy::Action;

async fn seed(e: &crate::support::Env) {
    seed_inventory(&e.engine).await;
}

#[tokio::test]
async fn an_invalid_pack_changes_nothing_and_names_every_problem() {
    let e = env(AppenderSettings::default()).await;
    let mut pack = agents_pack();
    pack.files.insert(
        "broken.cedar".into(),
        "permit(principal, action, resource)\nwhen { principal.nope == };\n".into(),
    );
    pack.files.insert(
        "more.cedar".into(),
        "forbid(principal, action == Action::\"no_such_action\", resource);\n".into(),
    );
    let err = e
        .engine
        .push_policies(&Admin::system(), pack)
        .await
        .unwrap_err();
    let EngineError::InvalidPack(diags) = err else {
        panic!("{err:?}")
    };
    assert!(
        diags
            .iter()
            .any(|d| d.file == "broken.cedar" && d.line == 2),
        "{diags:?}"
    );
    assert!(diags.iter().any(|d| d.file == "more.cedar"), "{diags:?}");
    assert_eq!(e.engine.policy_versions().await.unwrap(), (vec![], None));
    assert_eq!(e.engine.verify_audit().await.unwrap().records, 0);
}

#[tokio::test]
async fn decisions_follow_the_live_inventory_and_are_logged() {
    let e = env(AppenderSettings::default()).await;
    seed(&e).await;
    let a = Admin::system();
    let actor = Actor::System;
    // No pack: deny by default.
    let d = e
        .engine
        .evaluate(&actor, &read_ticket("support-bot"))
        .await
        .unwrap();
    assert!(!d.allow);
    let pushed = e.engine.push_policies(&a, agents_pack()).await.unwrap();
    assert!(pushed.created);
    assert_eq!(pushed.version.version, 1);
    let d = e
        .engine
        .evaluate(&actor, &read_ticket("support-bot"))
        .await
        .unwrap();
    assert!(d.allow, "{d:?}");
    // A suspended agent is refused at once, a resumed one allowed again.
    let bot = IdentityId::parse("agent:support-bot").unwrap();
    e.engine
        .set_status(&a, &bot, Status::Suspended, None)
        .await
        .unwrap();
    assert!(
        !e.engine
            .evaluate(&actor, &read_ticket("support-bot"))
            .await
            .unwrap()
            .allow
    );
    e.engine
        .set_status(&a, &bot, Status::Active, None)
        .await
        .unwrap();
    assert!(
        e.engine
            .evaluate(&actor, &read_ticket("support-bot"))
            .await
            .unwrap()
            .allow
    );
    // Moving it out of prod takes the permission away.
    let staging = IdentityUpdate {
        environment: Some(Some(Environment::parse("staging").unwrap())),
        attributes: None,
    };
    let moved = e.engine.update_identity(&a, &bot, staging).await.unwrap();
    assert_eq!(
        moved.environment.as_ref().map(Environment::as_str),
        Some("staging")
    );
    let d = e
        .engine
        .evaluate(&actor, &read_ticket("support-bot"))
        .await
        .unwrap();
    assert!(!d.allow, "{d:?}");
    // Every decision is in the audit log, without properties or context.
    let log = e.engine.audit_records(0, 100).await.unwrap();
    let decisions: Vec<_> = log.iter().filter(|r| r.kind == "access.evaluate").collect();
    assert_eq!(decisions.len(), 5);
    let outcomes: Vec<&str> = decisions.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["deny", "allow", "deny", "allow", "deny"]);
    assert!(
        decisions[1].details.contains("\"policy_version\":1"),
        "{}",
        decisions[1].details
    );
    assert_eq!(
        e.engine.verify_audit().await.unwrap().records,
        log.len() as u64
    );
}

#[tokio::test]
async fn versions_are_kept_and_rollback_restores_an_older_one() {
    let e = env(AppenderSettings::default()).await;
    seed(&e).await;
    let a = Admin::system();
    let actor = Actor::System;
    e.engine.push_policies(&a, agents_pack()).await.unwrap();
    let again = e.engine.push_policies(&a, agents_pack()).await.unwrap();
    assert!(!again.created, "an identical pack makes no new version");
    let mut stricter = agents_pack();
    stricter.files.insert(
        "lockdown.cedar".into(),
        "forbid(principal is Agent, action, resource);\n".into(),
    );
    let v2 = e.engine.push_policies(&a, stricter).await.unwrap();
    assert_eq!(v2.version.version, 2);
    assert!(
        !e.engine
            .evaluate(&actor, &read_ticket("support-bot"))
            .await
            .unwrap()
            .allow
    );
    let (versions, active) = e.engine.policy_versions().await.unwrap();
    assert_eq!((versions.len(), active), (2, Some(2)));
    let (_, files) = e.engine.policy_version(1).await.unwrap();
    assert_eq!(files, agents_pack());
    e.engine.activate_policy_version(&a, 1).await.unwrap();
    assert_eq!(e.engine.active_policy(), Some(1));
    assert!(
        e.engine
            .evaluate(&actor, &read_ticket("support-bot"))
            .await
            .unwrap()
            .allow
    );
    let err = e.engine.activate_policy_version(&a, 1).await.unwrap_err();
    assert!(matches!(err, EngineError::Conflict(_)), "{err:?}");
    let err = e.engine.activate_policy_version(&a, 9).await.unwrap_err();
    assert!(matches!(err, EngineError::NotFound(_)), "{err:?}");
    // Auditors cannot push or roll back; pdp tokens cannot administer.
    let (_, secret) = e
        .engine
        .create_admin_token(&a, "gw".into(), Role::Pdp, None)
        .await
        .unwrap();
    let err = e
        .engine
        .authenticate_admin(secret.expose())
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Forbidden(_)), "{err:?}");
    assert!(matches!(
        e.engine
            .authenticate_evaluator(secret.expose())
            .await
            .unwrap(),
        Actor::Token(_)
    ));
    let log = e.engine.audit_records(0, 100).await.unwrap();
    let kinds: Vec<&str> = log
        .iter()
        .map(|r| r.kind.as_str())
        .filter(|k| k.starts_with("policy."))
        .collect();
    assert_eq!(kinds, ["policy.push", "policy.push", "policy.activate"]);
}

#[tokio::test]
async fn a_batch_stops_where_its_semantic_says() {
    let e = env(AppenderSettings::default()).await;
    seed(&e).await;
    e.engine
        .push_policies(&Admin::system(), agents_pack())
        .await
        .unwrap();
    let items = vec![
        Ok(read_ticket("support-bot")),
        Ok(read_ticket("nobody")),
        Err("item 2: missing subject".to_owned()),
        Ok(read_ticket("support-bot")),
    ];
    let actor = Actor::System;
    let all = e
        .engine
        .evaluate_many(&actor, items.clone(), Semantic::ExecuteAll)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|d| d.allow).collect::<Vec<_>>(),
        [true, false, false, true]
    );
    assert_eq!(all[2].errors, ["item 2: missing subject"]);
    let deny_first = e
        .engine
        .evaluate_many(&actor, items.clone(), Semantic::DenyOnFirstDeny)
        .await
        .unwrap();
    assert_eq!(
        deny_first.iter().map(|d| d.allow).collect::<Vec<_>>(),
        [true, false]
    );
    let permit_first = e
        .engine
        .evaluate_many(&actor, items, Semantic::PermitOnFirstPermit)
        .await
        .unwrap();
    assert_eq!(
        permit_first.iter().map(|d| d.allow).collect::<Vec<_>>(),
        [true]
    );
}

#[tokio::test]
async fn a_pack_can_skip_logging_for_a_hot_action() {
    let e = env(AppenderSettings::default()).await;
    seed(&e).await;
    let mut pack = agents_pack();
    pack.files.insert(
        "pack.toml".into(),
        "[decision_log]\ndefault = \"log\"\n[decision_log.actions]\nread_ticket = \"skip\"\n"
            .into(),
    );
    e.engine
        .push_policies(&Admin::system(), pack)
        .await
        .unwrap();
    let before = e.engine.verify_audit().await.unwrap().records;
    for _ in 0..3 {
        assert!(
            e.engine
                .evaluate(&Actor::System, &read_ticket("support-bot"))
                .await
                .unwrap()
                .allow
        );
    }
    assert_eq!(
        e.engine.verify_audit().await.unwrap().records,
        before,
        "skipped actions write nothing"
    );
    let mut refund = read_ticket("support-bot");
    refund.action = Action::new("issue_refund");
    e.engine.evaluate(&Actor::System, &refund).await.unwrap();
    assert_eq!(
        e.engine.verify_audit().await.unwrap().records,
        before + 1,
        "other actions are logged"
    );
}
