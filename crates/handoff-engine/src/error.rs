//! The engine's error: what went wrong, in terms a client can be told.

use handoff_core::Invalid;
use handoff_core::identity::OwnerError;
use handoff_core::status::TransitionError;
use handoff_store::StoreError;

/// Why a use case did not complete. A policy deny is never an error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The input breaks a domain rule.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The addressed thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The status change is not allowed.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// A policy pack was refused; every problem, with file, line and column.
    #[error("the policy pack is invalid ({} problems)", .0.len())]
    InvalidPack(Vec<handoff_policy::Diagnostic>),
    /// The owner is missing, unknown, not a human or not active.
    #[error(transparent)]
    Owner(#[from] OwnerError),
    /// No valid credentials were presented.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The audit record could not be written, so the change was not made.
    #[error("the audit log cannot be written; the change was not made")]
    AuditUnavailable,
    /// Storage cannot be reached right now; the message is for the log.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Storage failed; the message is for the log, not the client.
    #[error("storage failed: {0}")]
    Store(String),
    /// Local files (keys, data directory) could not be used.
    #[error("{0}")]
    Io(String),
}

impl EngineError {
    /// Maps a store error for a thing named `what` (e.g. `identity "agent:x"`).
    pub(crate) fn from_store(e: StoreError, what: &str) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound(format!("{what} does not exist")),
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::Unavailable(m) => Self::Unavailable(m),
            StoreError::Backend(m) | StoreError::Corrupt(m) => Self::Store(m),
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        Self::from_store(e, "the record")
    }
}
