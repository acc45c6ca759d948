//! Handoff's storage: the [`Store`] trait and its backends.
//!
//! The trait speaks in use-case terms ([`Write`]s committed together with
//! their audit records); it carries no backend types, so the engine never
//! knows which database it runs on. It holds no business rules: the engine
//! decides what to write, the store writes it atomically.
//!
//! Backends: [`sqlite::SqliteStore`] (the embedded default, one process)
//! and [`postgres::PgStore`] (shared by several Handoff nodes). Both pass
//! the same conformance suite (`tests/it/conformance.rs`).

pub mod postgres;
pub mod sqlite;
mod topics;

pub use topics::topics;

use async_trait::async_trait;
use handoff_audit::{Checkpoint, Draft, Head, Record};
use handoff_core::{
    AdminToken, AdminTokenId, Attributes, ClientKey, Credential, CredentialId, Cursor, Delegation,
    DelegationId, Environment, Identity, IdentityId, Kind, Limit, PolicyVersion, Status, Time,
};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row a write addresses does not exist.
    #[error("not found")]
    NotFound,
    /// The write conflicts with what is stored (a duplicate, or the row
    /// changed since it was read).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached right now (closed, overloaded, IO);
    /// retrying later may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database failed.
    #[error("database error: {0}")]
    Backend(String),
    /// Stored data could not be read back into domain types.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// One state change, expressed as the use case sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Nothing but the audit record (decisions, denied attempts).
    Nothing,
    /// Insert a new identity; fails with `Conflict` if the id exists.
    CreateIdentity(Identity),
    /// Replace the environment and/or attributes of an identity.
    UpdateIdentity {
        /// Which identity.
        id: IdentityId,
        /// New environment (`Some(None)` clears it).
        environment: Option<Option<Environment>>,
        /// New attributes.
        attributes: Option<Attributes>,
        /// When.
        at: Time,
    },
    /// Change status from `from` to `to`; `Conflict` if it is no longer `from`.
    SetStatus {
        /// Which identity.
        id: IdentityId,
        /// The status it had when read.
        from: Status,
        /// The new status.
        to: Status,
        /// Also flag every identity it owns as orphaned.
        orphan_owned: bool,
        /// Also revoke every live delegation the identity holds or granted,
        /// and everything below those (suspend, disable, decommission).
        revoke_delegations: bool,
        /// When.
        at: Time,
    },
    /// Insert a credential; its identity must exist.
    IssueCredential(Credential),
    /// Revoke a credential, and every live delegation obtained with it and
    /// everything below those; `Conflict` if already revoked.
    RevokeCredential {
        /// Which credential.
        id: CredentialId,
        /// When.
        at: Time,
    },
    /// Insert an admin token.
    CreateAdminToken(AdminToken),
    /// Insert the bootstrap admin token: `Conflict` if any admin token
    /// exists (checked inside the write transaction, so of several nodes
    /// starting at once on an empty database only one creates it).
    CreateFirstAdminToken(AdminToken),
    /// Revoke an admin token; `Conflict` if already revoked.
    RevokeAdminToken {
        /// Which token.
        id: AdminTokenId,
        /// When.
        at: Time,
    },
    /// Store a new policy version and make it the active one; `Conflict` if
    /// the version number is taken (a concurrent upload won).
    PutPolicyVersion {
        /// Its metadata; `version` must be the next number.
        version: PolicyVersion,
        /// The pack's files as JSON, opaque to the store.
        files: String,
    },
    /// Insert delegations in order (a root may precede its first child).
    /// For each one with a parent: `NotFound` if the parent does not exist,
    /// `Conflict` if the parent is revoked or already has `max_fan_out`
    /// unrevoked children unexpired at the child's `issued_at` (checked in
    /// the same transaction, so a revoked chain can never be extended, even
    /// by a racing exchange).
    CreateDelegations(Vec<Delegation>),
    /// Revoke each delegation and every descendant that is not revoked yet
    /// (cascade). Idempotent: already revoked rows are left as they are and
    /// unknown ids are ignored.
    RevokeDelegations {
        /// The subtrees' roots.
        ids: Vec<DelegationId>,
        /// When.
        at: Time,
    },
    /// Register a client's public key; `NotFound` if the identity does not
    /// exist, `Conflict` if it already has a key with this id.
    AddClientKey(ClientKey),
    /// Revoke a client key; `NotFound` if there is none, `Conflict` if it is
    /// already revoked.
    RevokeClientKey {
        /// Whose key.
        identity: IdentityId,
        /// Which key.
        kid: String,
        /// When.
        at: Time,
    },
    /// Replace a sealed secret (key rotation); `NotFound` if there is none,
    /// `Conflict` if its stored version is no longer `version` (another
    /// node replaced it first). The stored version becomes `version + 1`.
    ReplaceSecret {
        /// Which secret.
        name: String,
        /// The new sealed (encrypted) value.
        value: Vec<u8>,
        /// The version that was read.
        version: u64,
    },
    /// Make a stored version the active one; `NotFound` if it does not exist,
    /// `Conflict` if the active version is no longer `from`.
    ActivatePolicyVersion {
        /// The version to activate.
        version: u64,
        /// The version that was active when the caller read it.
        from: Option<u64>,
        /// When.
        at: Time,
    },
}

/// A write and the audit record that must commit with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The state change.
    pub write: Write,
    /// Its audit record, sealed into the chain only if the write succeeds.
    pub record: Draft,
}

/// Filters for listing identities; `None` means any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdentityFilter {
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only this status.
    pub status: Option<Status>,
    /// Only identities owned by this one.
    pub owner: Option<IdentityId>,
    /// Only this environment.
    pub environment: Option<Environment>,
    /// Only orphan candidates (`Some(true)`) or only non-orphans (`Some(false)`).
    pub orphaned: Option<bool>,
}

/// Filters for listing delegations; `None` means any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DelegationFilter {
    /// Only delegations this identity holds, granted or is the subject of.
    pub identity: Option<IdentityId>,
    /// Only unrevoked ones that have not expired at this time.
    pub live_at: Option<Time>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, in key order.
    pub items: Vec<T>,
    /// Where the next page starts, if there is one.
    pub next: Option<Cursor>,
}

/// A secret as the store keeps it: sealed (encrypted) by the engine under
/// the master key before it reaches the store, so the store never holds
/// clear key material.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The sealed bytes.
    pub value: Vec<u8>,
    /// Starts at 1; each [`Write::ReplaceSecret`] adds one.
    pub version: u64,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("bytes", &self.value.len())
            .field("version", &self.version)
            .finish()
    }
}

/// What a committed write changed that a node may hold in memory; other
/// nodes sharing the database follow these to keep their caches true.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// One identity was created or changed (status, environment, attributes).
    Identity(IdentityId),
    /// Identities owned by this one changed (flagged as orphans).
    Owned(IdentityId),
    /// Delegations were revoked (directly or by a cascade).
    Delegations,
    /// The active policy version changed.
    Policy,
    /// A sealed secret (signing keys) was replaced.
    Secret(String),
}

/// One [`Topic`] and the sequence number of the audit record of the change
/// that touched it; sequence numbers only grow, in commit order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The audit record's sequence number.
    pub seq: u64,
    /// What changed.
    pub topic: Topic,
}

/// The outcome of one [`Change`] in a committed batch.
pub type ChangeResult = Result<Record, StoreError>;

/// Persistence for everything Handoff governs.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// One identity.
    async fn identity(&self, id: &IdentityId) -> Result<Option<Identity>, StoreError>;
    /// A page of identities ordered by id.
    async fn identities(
        &self,
        filter: &IdentityFilter,
        after: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<Identity>, StoreError>;
    /// One credential.
    async fn credential(&self, id: &CredentialId) -> Result<Option<Credential>, StoreError>;
    /// Every credential of an identity, newest first.
    async fn credentials(&self, identity: &IdentityId) -> Result<Vec<Credential>, StoreError>;
    /// Records a successful authentication; not audited.
    async fn touch_credential(&self, id: &CredentialId, at: Time) -> Result<(), StoreError>;
    /// One admin token.
    async fn admin_token(&self, id: &AdminTokenId) -> Result<Option<AdminToken>, StoreError>;
    /// Every admin token, oldest first.
    async fn admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError>;

    /// Every stored policy version, oldest first, without files.
    async fn policy_versions(&self) -> Result<Vec<PolicyVersion>, StoreError>;
    /// One policy version with its files (JSON).
    async fn policy_version(
        &self,
        version: u64,
    ) -> Result<Option<(PolicyVersion, String)>, StoreError>;
    /// The active policy version, if any pack was ever uploaded.
    async fn active_policy_version(&self) -> Result<Option<u64>, StoreError>;

    /// One delegation.
    async fn delegation(&self, id: &DelegationId) -> Result<Option<Delegation>, StoreError>;
    /// The chain from the lineage root to `id`, root first; empty if `id`
    /// does not exist.
    async fn chain(&self, id: &DelegationId) -> Result<Vec<Delegation>, StoreError>;
    /// Every delegation of one lineage (`lineage` = the root's id), ordered
    /// by depth, then issue time, then id; empty if there is none.
    async fn lineage(&self, lineage: &DelegationId) -> Result<Vec<Delegation>, StoreError>;
    /// A page of delegations ordered by id.
    async fn delegations(
        &self,
        filter: &DelegationFilter,
        after: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<Delegation>, StoreError>;
    /// How many unrevoked direct children `id` has that have not expired
    /// at `now` (0 if it does not exist). Exact at or above the parent's
    /// `max_fan_out`; below it, expired children may still be counted.
    async fn live_children(&self, id: &DelegationId, now: Time) -> Result<u32, StoreError>;
    /// Every key registered on `identity` (revoked ones too), oldest first.
    async fn client_keys(&self, identity: &IdentityId) -> Result<Vec<ClientKey>, StoreError>;
    /// Records a client assertion's `jti` (RFC 7523 §3, item 7) until
    /// `expires_at`; false if it was already recorded (a replay). Not
    /// audited; forgets expired entries as it goes.
    async fn remember_assertion(
        &self,
        client: &IdentityId,
        jti: &str,
        expires_at: Time,
        now: Time,
    ) -> Result<bool, StoreError>;

    /// A sealed secret, if it was ever stored.
    async fn secret(&self, name: &str) -> Result<Option<Sealed>, StoreError>;
    /// Stores `value` as version 1 of the secret `name` unless it exists;
    /// true if it was stored, false if another writer stored it first (read
    /// it back with [`Store::secret`]). Not audited: it happens once, when
    /// the first node starts.
    async fn create_secret(&self, name: &str, value: &[u8]) -> Result<bool, StoreError>;
    /// Up to `limit` topics changed by writes committed after audit sequence
    /// number `after`, in sequence order.
    async fn changes_since(&self, after: u64, limit: u32) -> Result<Vec<Changed>, StoreError>;
    /// Whether other processes may write this database at the same time
    /// (then a node must follow [`Store::changes_since`]).
    fn shared(&self) -> bool {
        false
    }
    /// Returns when another writer may have committed a change (a
    /// notification arrived) or after `timeout`, whichever comes first.
    /// Callers then read [`Store::changes_since`]; a missed notification
    /// costs at most one `timeout`.
    async fn wait_for_change(&self, timeout: std::time::Duration) {
        tokio::time::sleep(timeout).await;
    }

    /// The chain head: the last record's sequence number and hash.
    async fn audit_head(&self) -> Result<Head, StoreError>;
    /// Up to `limit` records with sequence number greater than `after`, in order.
    async fn audit_records(&self, after: u64, limit: u32) -> Result<Vec<Record>, StoreError>;
    /// The last `limit` records, in order.
    async fn audit_tail(&self, limit: u32) -> Result<Vec<Record>, StoreError>;
    /// Every signed checkpoint, in order.
    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError>;
    /// Stores a signed checkpoint.
    async fn append_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError>;

    /// Applies `changes` in order in one durable transaction.
    ///
    /// Each write that succeeds has its record sealed onto `head` and stored
    /// with it, and its [`topics`] stored under the record's sequence number;
    /// a write that fails leaves no trace (neither row nor record) and does
    /// not advance `head`. A single-writer backend refuses a `head` that is
    /// not the stored one (`Conflict`); a [shared](Store::shared) backend
    /// seals onto the stored head instead (other nodes moved it) and sets
    /// `head` to it first. The outer `Err` means nothing at all was
    /// committed; `head` is then unspecified and the caller must restore it.
    async fn commit(
        &self,
        changes: Vec<Change>,
        head: &mut Head,
    ) -> Result<Vec<ChangeResult>, StoreError>;

    /// Closes every connection, waiting for those in use to be returned
    /// (SQLite then folds its write-ahead log into the database file).
    /// Nothing may be called after it.
    async fn close(&self) {}
}
