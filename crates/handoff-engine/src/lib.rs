//! Handoff's use cases, each one transaction: the identity inventory,
//! credentials, admin tokens, authentication, handoffs (token exchange,
//! introspection, cascading revocation, chain-aware decisions) and the
//! audit log.
//!
//! Owns the audit [`appender`] (the single writer that holds the chain head
//! and commits in groups), the server's [`keys`] and the layout of a
//! [`data_dir`]. It knows no HTTP and no SQL: it talks to an
//! `Arc<dyn Store>` and returns [`EngineError`]s that the server maps to
//! problem+json.

pub mod appender;
pub mod audit;
pub mod auth;
pub mod chains;
pub mod client_keys;
pub mod credentials;
pub mod data_dir;
pub mod delegation;
pub mod error;
pub mod follow;
pub mod inventory;
pub mod jwt;
pub mod keys;
pub mod lineage;
pub mod master_key;
pub mod oauth;
pub mod policy;
pub mod shared;
pub mod tokens;
pub mod trusted;

pub use appender::{AppendError, Appender, AppenderSettings};
pub use auth::{Actor, Admin, Authenticated};
pub use delegation::{DelegationSettings, Exchange, Issued, Trusted};
pub use error::EngineError;
pub use keys::Keys;
pub use lineage::{BlastRadius, Revoker};
pub use oauth::{Client, ClientAuth, OAuthError};

use handoff_core::Clock;
use handoff_store::Store;
use std::sync::Arc;

/// The engine: every use case hangs off it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    keys: Arc<Keys>,
    clock: Arc<dyn Clock>,
    appender: Arc<Appender>,
    policy: Arc<policy::PolicyState>,
    delegation: Arc<DelegationSettings>,
    /// The trusted issuers, whose keys a refresh may replace.
    trusted: Arc<std::sync::RwLock<Vec<Trusted>>>,
    chains: Arc<chains::Chains>,
    /// Keys in a shared database, with the master key to change them.
    shared: Option<Arc<shared::SharedKeys>>,
    freshness: Arc<follow::Freshness>,
    /// The task following other nodes' changes (shared databases only).
    follower: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Engine {
    /// Starts an engine over `store`: loads the inventory and the active
    /// policy version into the decision point, loads the chain head and
    /// starts the appender.
    pub async fn start(
        store: Arc<dyn Store>,
        keys: Arc<Keys>,
        clock: Arc<dyn Clock>,
        settings: AppenderSettings,
    ) -> Result<Self, EngineError> {
        Self::start_with(store, keys, None, clock, settings).await
    }

    /// [`Engine::start`] with the keys of a shared database; on a
    /// [shared](Store::shared) store it also starts following other nodes'
    /// changes.
    pub async fn start_with(
        store: Arc<dyn Store>,
        keys: Arc<Keys>,
        shared: Option<shared::SharedKeys>,
        clock: Arc<dyn Clock>,
        settings: AppenderSettings,
    ) -> Result<Self, EngineError> {
        // Read the feed position first: whatever changes while the state
        // loads is applied again by the follower (reloads are idempotent).
        let freshness = if store.shared() {
            follow::Freshness::following(store.audit_head().await?.seq)
        } else {
            follow::Freshness::alone()
        };
        let policy = policy::PolicyState::load(store.as_ref()).await?;
        let appender =
            Appender::start(store.clone(), keys.clone(), clock.clone(), settings).await?;
        let engine = Self {
            store,
            keys,
            clock,
            appender: Arc::new(appender),
            policy: Arc::new(policy),
            delegation: Arc::new(DelegationSettings::default()),
            trusted: Arc::default(),
            chains: Arc::new(chains::Chains::default()),
            shared: shared.map(Arc::new),
            freshness: Arc::new(freshness),
            follower: Arc::default(),
        };
        if engine.store.shared() {
            engine.catch_up().await?;
            let task = tokio::spawn(engine.clone().follow());
            if let Ok(mut slot) = engine.follower.lock() {
                *slot = Some(task);
            }
        }
        Ok(engine)
    }

    /// Sets how delegation tokens are issued and accepted.
    #[must_use]
    pub fn with_delegation(mut self, settings: DelegationSettings) -> Self {
        self.trusted = Arc::new(std::sync::RwLock::new(settings.trusted.clone()));
        self.delegation = Arc::new(settings);
        self
    }

    /// The store, for readiness checks.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The appender, for metrics and shutdown.
    pub fn appender(&self) -> &Appender {
        &self.appender
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Whether the store answers, the appender runs and (on a shared
    /// database) this node keeps up with the others' changes.
    pub async fn ready(&self) -> bool {
        self.appender.running()
            && self.check_fresh().is_ok()
            && self.store.audit_head().await.is_ok()
    }

    /// Opens the embedded store in `dir` (creating keys and database on
    /// first use) and starts an engine over it.
    pub async fn open(
        dir: &data_dir::DataDir,
        clock: Arc<dyn Clock>,
        settings: AppenderSettings,
    ) -> Result<Self, EngineError> {
        let keys = dir.load_or_create_keys(clock.now())?;
        let path = dir.database();
        let store = handoff_store::sqlite::SqliteStore::open(&path)
            .await
            .map_err(|e| EngineError::Io(format!("{}: {e}", path.display())))?;
        Self::start(Arc::new(store), Arc::new(keys), clock, settings).await
    }

    /// Opens a shared PostgreSQL database at `url` (migrating its schema),
    /// loads or creates the keys it holds sealed under `master` (a new token
    /// key is `algorithm`) and starts an engine following the other nodes.
    pub async fn open_shared(
        url: &str,
        master: master_key::MasterKey,
        algorithm: jwt::Algorithm,
        clock: Arc<dyn Clock>,
        settings: AppenderSettings,
    ) -> Result<Self, EngineError> {
        let store = handoff_store::postgres::PgStore::open(url)
            .await
            .map_err(|e| EngineError::Io(format!("{}: {e}", redact_url(url))))?;
        Self::start_shared(Arc::new(store), master, algorithm, clock, settings).await
    }

    /// [`Engine::open_shared`] over an opened store.
    pub async fn start_shared(
        store: Arc<dyn Store>,
        master: master_key::MasterKey,
        algorithm: jwt::Algorithm,
        clock: Arc<dyn Clock>,
        settings: AppenderSettings,
    ) -> Result<Self, EngineError> {
        let (keys, shared) =
            shared::SharedKeys::load(store.as_ref(), master, algorithm, clock.now()).await?;
        Self::start_with(store, Arc::new(keys), Some(shared), clock, settings).await
    }

    /// Drains the audit queue, writes a final checkpoint, stops the appender
    /// and closes the store.
    pub async fn shutdown(&self) {
        let follower = self.follower.lock().ok().and_then(|mut f| f.take());
        if let Some(task) = follower {
            task.abort();
        }
        self.appender.shutdown().await;
        self.store.close().await;
    }
}

/// `url` without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = url.get(scheme + 3..at).unwrap_or_default();
            let user = userinfo.split(':').next().unwrap_or_default();
            let masked = if userinfo.contains(':') { ":***" } else { "" };
            format!(
                "{}{user}{masked}{}",
                url.get(..scheme + 3).unwrap_or_default(),
                url.get(at..).unwrap_or_default()
            )
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_database_url_loses_its_password_in_messages() {
        assert_eq!(
            super::redact_url("postgres://handoff:s3cret@db:5432/handoff"),
            "postgres://handoff:***@db:5432/handoff"
        );
        assert_eq!(
            super::redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(super::redact_url("postgres://db/x"), "postgres://db/x");
    }
}
