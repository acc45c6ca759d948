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
pub mod inventory;
pub mod jwt;
pub mod keys;
pub mod lineage;
pub mod oauth;
pub mod policy;
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
        let policy = policy::PolicyState::load(store.as_ref()).await?;
        let appender =
            Appender::start(store.clone(), keys.clone(), clock.clone(), settings).await?;
        Ok(Self {
            store,
            keys,
            clock,
            appender: Arc::new(appender),
            policy: Arc::new(policy),
            delegation: Arc::new(DelegationSettings::default()),
            trusted: Arc::default(),
            chains: Arc::new(chains::Chains::default()),
        })
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

    /// Whether the store answers and the appender runs.
    pub async fn ready(&self) -> bool {
        self.appender.running() && self.store.audit_head().await.is_ok()
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

    /// Drains the audit queue, writes a final checkpoint, stops the appender
    /// and closes the store.
    pub async fn shutdown(&self) {
        self.appender.shutdown().await;
        self.store.close().await;
    }
}
