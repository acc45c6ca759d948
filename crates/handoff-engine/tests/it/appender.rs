//! The appender: group commit, fail-closed, checkpoints, shutdown flush.

use crate::support::{env, flaky_engine};
use handoff_core::{Attributes, IdentityId, Role};
use handoff_engine::inventory::NewIdentity;
use handoff_engine::{Admin, AppenderSettings, EngineError};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn human(name: &str) -> NewIdentity {
    NewIdentity {
        id: IdentityId::parse(&format!("human:{name}")).unwrap(),
        owner: None,
        environment: None,
        attributes: Attributes::default(),
    }
}

#[tokio::test]
async fn concurrent_changes_form_one_intact_chain() {
    let e = env(AppenderSettings::default()).await;
    let admin = Admin::system();
    let mut tasks = vec![];
    for i in 0..200 {
        let engine = e.engine.clone();
        let admin = admin.clone();
        tasks.push(tokio::spawn(async move {
            engine
                .create_identity(&admin, human(&format!("u{i}")))
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let report = e.engine.verify_audit().await.unwrap();
    assert_eq!(report.records, 200);
    let records = e.engine.audit_records(0, 1000).await.unwrap();
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_change_whose_record_cannot_be_written_is_not_made() {
    let (engine, store, _tmp) = flaky_engine().await;
    let admin = Admin::system();
    engine
        .create_identity(&admin, human("before"))
        .await
        .unwrap();
    store.broken.store(true, Ordering::SeqCst);
    let err = engine
        .create_identity(&admin, human("during"))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::AuditUnavailable), "{err:?}");
    let during = IdentityId::parse("human:during").unwrap();
    assert!(matches!(
        engine.identity(&during).await,
        Err(EngineError::NotFound(_))
    ));
    store.broken.store(false, Ordering::SeqCst);
    engine
        .create_identity(&admin, human("after"))
        .await
        .unwrap();
    let report = engine.verify_audit().await.unwrap();
    assert_eq!(report.records, 2, "the refused change left no record");
}

#[tokio::test]
async fn a_refused_write_leaves_no_record_and_does_not_break_the_chain() {
    let e = env(AppenderSettings::default()).await;
    let admin = Admin::system();
    e.engine.create_identity(&admin, human("a")).await.unwrap();
    let dup = e
        .engine
        .create_identity(&admin, human("a"))
        .await
        .unwrap_err();
    assert!(matches!(dup, EngineError::Conflict(_)), "{dup:?}");
    e.engine.create_identity(&admin, human("b")).await.unwrap();
    assert_eq!(e.engine.verify_audit().await.unwrap().records, 2);
}

#[tokio::test]
async fn checkpoints_are_signed_every_n_records_and_at_shutdown() {
    let settings = AppenderSettings {
        checkpoint_every: 5,
        ..AppenderSettings::default()
    };
    let e = env(settings).await;
    let admin = Admin::system();
    for i in 0..12 {
        e.engine
            .create_identity(&admin, human(&format!("c{i}")))
            .await
            .unwrap();
    }
    // Checkpoints are written right after the batch that crosses the
    // threshold; give the task a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cps = e.engine.store().audit_checkpoints().await.unwrap();
    assert!(cps.iter().any(|c| c.seq >= 5), "{cps:?}");
    e.engine.shutdown().await;
    let reader = handoff_store::sqlite::SqliteStore::open_read_only(&e.dir.database())
        .await
        .unwrap();
    let cps = handoff_store::Store::audit_checkpoints(&reader)
        .await
        .unwrap();
    assert_eq!(cps.last().unwrap().seq, 12, "shutdown signs the head");
    assert!(cps.iter().all(|c| e.engine.keys().public_key().verify(c)));
    let after = e
        .engine
        .create_identity(&admin, human("late"))
        .await
        .unwrap_err();
    assert!(matches!(after, EngineError::AuditUnavailable), "{after:?}");
    let report = handoff_engine::audit::verify_data_dir(&e.dir)
        .await
        .unwrap();
    assert_eq!((report.records, report.last_checkpoint), (12, Some(12)));
}

#[tokio::test]
async fn the_chain_continues_across_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = handoff_engine::data_dir::DataDir::new(tmp.path());
    let clock = std::sync::Arc::new(handoff_core::SystemClock);
    let admin = Admin::system();
    let first = handoff_engine::Engine::open(&dir, clock.clone(), AppenderSettings::default())
        .await
        .unwrap();
    let path = first.bootstrap(&dir).await.unwrap().unwrap();
    assert!(path.exists());
    first.create_identity(&admin, human("x")).await.unwrap();
    first.shutdown().await;
    let second = handoff_engine::Engine::open(&dir, clock, AppenderSettings::default())
        .await
        .unwrap();
    assert_eq!(
        second.bootstrap(&dir).await.unwrap(),
        None,
        "bootstrap runs once"
    );
    second.create_identity(&admin, human("y")).await.unwrap();
    let report = second.verify_audit().await.unwrap();
    assert_eq!(report.records, 3);
    let secret = std::fs::read_to_string(&path).unwrap();
    let who = second.authenticate_admin(secret.trim()).await.unwrap();
    assert_eq!(who.role, Role::Admin);
}
