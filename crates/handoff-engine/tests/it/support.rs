//! Shared set-up: an engine over a SQLite store in a temporary directory.

use async_trait::async_trait;
use handoff_audit::{Checkpoint, Head, Record};
use handoff_core::{
    AdminToken, AdminTokenId, Credential, CredentialId, Cursor, FixedClock, Identity, IdentityId,
    Limit,
};
use handoff_engine::data_dir::DataDir;
use handoff_engine::{AppenderSettings, Engine, Keys};
use handoff_store::sqlite::SqliteStore;
use handoff_store::{Change, ChangeResult, IdentityFilter, Page, Store, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) struct Env {
    pub(crate) engine: Engine,
    pub(crate) dir: DataDir,
    pub(crate) clock: Arc<FixedClock>,
    pub(crate) _tmp: tempfile::TempDir,
}

impl Env {
    pub(crate) fn clock_now(&self) -> handoff_core::Time {
        handoff_core::Clock::now(self.clock.as_ref())
    }
}

pub(crate) fn t0() -> handoff_core::Time {
    chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap()
}

pub(crate) async fn env(settings: AppenderSettings) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path().join("data"));
    let clock = Arc::new(FixedClock::new(t0()));
    let engine = Engine::open(&dir, clock.clone(), settings).await.unwrap();
    Env {
        engine,
        dir,
        clock,
        _tmp: tmp,
    }
}

/// A store whose commits can be made to fail, to prove fail-closed behaviour.
#[derive(Debug)]
pub(crate) struct Flaky {
    pub(crate) inner: SqliteStore,
    pub(crate) broken: AtomicBool,
}

pub(crate) async fn flaky_engine() -> (Engine, Arc<Flaky>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let inner = SqliteStore::open(&tmp.path().join("h.db")).await.unwrap();
    let store = Arc::new(Flaky {
        inner,
        broken: AtomicBool::new(false),
    });
    let engine = Engine::start(
        store.clone(),
        Arc::new(Keys::ephemeral().unwrap()),
        Arc::new(FixedClock::new(t0())),
        AppenderSettings::default(),
    )
    .await
    .unwrap();
    (engine, store, tmp)
}

#[async_trait]
impl Store for Flaky {
    async fn identity(&self, id: &IdentityId) -> Result<Option<Identity>, StoreError> {
        self.inner.identity(id).await
    }
    async fn identities(
        &self,
        filter: &IdentityFilter,
        after: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<Identity>, StoreError> {
        self.inner.identities(filter, after, limit).await
    }
    async fn credential(&self, id: &CredentialId) -> Result<Option<Credential>, StoreError> {
        self.inner.credential(id).await
    }
    async fn credentials(&self, identity: &IdentityId) -> Result<Vec<Credential>, StoreError> {
        self.inner.credentials(identity).await
    }
    async fn touch_credential(
        &self,
        id: &CredentialId,
        at: handoff_core::Time,
    ) -> Result<(), StoreError> {
        self.inner.touch_credential(id, at).await
    }
    async fn admin_token(&self, id: &AdminTokenId) -> Result<Option<AdminToken>, StoreError> {
        self.inner.admin_token(id).await
    }
    async fn admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError> {
        self.inner.admin_tokens().await
    }
    async fn secret(&self, name: &str) -> Result<Option<handoff_store::Sealed>, StoreError> {
        self.inner.secret(name).await
    }
    async fn create_secret(&self, name: &str, value: &[u8]) -> Result<bool, StoreError> {
        self.inner.create_secret(name, value).await
    }
    async fn changes_since(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<handoff_store::Changed>, StoreError> {
        self.inner.changes_since(after, limit).await
    }
    async fn policy_versions(&self) -> Result<Vec<handoff_core::PolicyVersion>, StoreError> {
        self.inner.policy_versions().await
    }
    async fn policy_version(
        &self,
        version: u64,
    ) -> Result<Option<(handoff_core::PolicyVersion, String)>, StoreError> {
        self.inner.policy_version(version).await
    }
    async fn active_policy_version(&self) -> Result<Option<u64>, StoreError> {
        self.inner.active_policy_version().await
    }
    async fn delegation(
        &self,
        id: &handoff_core::DelegationId,
    ) -> Result<Option<handoff_core::Delegation>, StoreError> {
        self.inner.delegation(id).await
    }
    async fn chain(
        &self,
        id: &handoff_core::DelegationId,
    ) -> Result<Vec<handoff_core::Delegation>, StoreError> {
        self.inner.chain(id).await
    }
    async fn lineage(
        &self,
        lineage: &handoff_core::DelegationId,
    ) -> Result<Vec<handoff_core::Delegation>, StoreError> {
        self.inner.lineage(lineage).await
    }
    async fn delegations(
        &self,
        filter: &handoff_store::DelegationFilter,
        after: Option<&handoff_core::Cursor>,
        limit: handoff_core::Limit,
    ) -> Result<handoff_store::Page<handoff_core::Delegation>, StoreError> {
        self.inner.delegations(filter, after, limit).await
    }
    async fn client_keys(
        &self,
        identity: &IdentityId,
    ) -> Result<Vec<handoff_core::ClientKey>, StoreError> {
        self.inner.client_keys(identity).await
    }
    async fn live_children(
        &self,
        id: &handoff_core::DelegationId,
        now: handoff_core::Time,
    ) -> Result<u32, StoreError> {
        self.inner.live_children(id, now).await
    }
    async fn remember_assertion(
        &self,
        client: &IdentityId,
        jti: &str,
        expires_at: handoff_core::Time,
        now: handoff_core::Time,
    ) -> Result<bool, StoreError> {
        self.inner
            .remember_assertion(client, jti, expires_at, now)
            .await
    }
    async fn audit_head(&self) -> Result<Head, StoreError> {
        self.inner.audit_head().await
    }
    async fn audit_records(&self, after: u64, limit: u32) -> Result<Vec<Record>, StoreError> {
        self.inner.audit_records(after, limit).await
    }
    async fn audit_tail(&self, limit: u32) -> Result<Vec<Record>, StoreError> {
        self.inner.audit_tail(limit).await
    }
    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.inner.audit_checkpoints().await
    }
    async fn append_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.inner.append_checkpoint(checkpoint).await
    }
    async fn commit(
        &self,
        changes: Vec<Change>,
        head: &mut Head,
    ) -> Result<Vec<ChangeResult>, StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("disk full".into()));
        }
        self.inner.commit(changes, head).await
    }
}
