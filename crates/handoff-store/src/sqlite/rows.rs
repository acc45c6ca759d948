//! Conversions between SQLite rows and domain types, and from sqlx errors to
//! [`StoreError`].
//!
//! Every value read back is parsed into its domain type again; one that does
//! not parse is [`StoreError::Corrupt`], never a panic.

use crate::StoreError;
use handoff_audit::{Checkpoint, Hash, Head, Outcome, Record};
use handoff_core::{
    AdminToken, AdminTokenId, Attributes, Audience, ClientKey, Credential, CredentialId,
    Delegation, DelegationId, Environment, Identity, IdentityId, PolicyVersion, Role, Scope,
    Source, Status, Time,
};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

/// The identity columns, in the order [`identity`] reads them.
macro_rules! identity_columns {
    () => {
        "id, owner, environment, attributes, source, status, orphaned, created_at, updated_at"
    };
}
pub(super) use identity_columns;

/// The credential columns.
macro_rules! credential_columns {
    () => {
        "id, identity, description, hash, created_at, expires_at, last_used_at, revoked_at"
    };
}
pub(super) use credential_columns;

/// The admin token columns.
macro_rules! admin_token_columns {
    () => {
        "id, name, role, hash, created_at, expires_at, revoked_at"
    };
}
pub(super) use admin_token_columns;

/// The delegation columns, in the order [`delegation`] reads them.
macro_rules! delegation_columns {
    () => {
        "id, parent, lineage, subject, delegator, actor, credential, scope, audience, depth, \
         max_depth, max_fan_out, issued_at, expires_at, revoked_at"
    };
}
pub(super) use delegation_columns;

/// The audit record columns.
macro_rules! record_columns {
    () => {
        "seq, time, kind, actor, target, outcome, details, prev_hash, hash"
    };
}
pub(super) use record_columns;

/// Maps a sqlx error without a more specific meaning at the call site.
pub(super) fn backend(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict("the row already exists".to_owned())
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::Decode(_) => StoreError::Corrupt(e.to_string()),
        sqlx::Error::PoolClosed | sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// Whether `e` is a unique or primary key violation.
pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Whether `e` is a foreign key violation.
pub(super) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

/// A time as stored: microseconds since the epoch.
pub(super) fn micros(t: Time) -> i64 {
    t.timestamp_micros()
}

/// An optional time as stored.
pub(super) fn micros_opt(t: Option<Time>) -> Option<i64> {
    t.map(micros)
}

fn corrupt(table: &str, column: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{table}.{column}: {why}"))
}

fn get<'r, T>(row: &'r SqliteRow, table: &str, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column).map_err(|e| corrupt(table, column, e))
}

fn time(row: &SqliteRow, table: &str, column: &str) -> Result<Time, StoreError> {
    let v: i64 = get(row, table, column)?;
    Time::from_timestamp_micros(v).ok_or_else(|| corrupt(table, column, "time out of range"))
}

fn time_opt(row: &SqliteRow, table: &str, column: &str) -> Result<Option<Time>, StoreError> {
    let v: Option<i64> = get(row, table, column)?;
    v.map(|v| {
        Time::from_timestamp_micros(v).ok_or_else(|| corrupt(table, column, "time out of range"))
    })
    .transpose()
}

fn identity_id(row: &SqliteRow, table: &str, column: &str) -> Result<IdentityId, StoreError> {
    let s: String = get(row, table, column)?;
    IdentityId::parse(&s).map_err(|e| corrupt(table, column, e))
}

fn delegation_id(row: &SqliteRow, table: &str, column: &str) -> Result<DelegationId, StoreError> {
    let s: String = get(row, table, column)?;
    DelegationId::parse(&s).map_err(|e| corrupt(table, column, e))
}

fn number(row: &SqliteRow, table: &str, column: &str) -> Result<u32, StoreError> {
    let v: i64 = get(row, table, column)?;
    u32::try_from(v).map_err(|_| corrupt(table, column, "out of range"))
}

fn hash(row: &SqliteRow, table: &str, column: &str) -> Result<Hash, StoreError> {
    let b: Vec<u8> = get(row, table, column)?;
    Hash::from_slice(&b).ok_or_else(|| corrupt(table, column, "expected 32 bytes"))
}

fn seq(row: &SqliteRow, table: &str) -> Result<u64, StoreError> {
    let v: i64 = get(row, table, "seq")?;
    u64::try_from(v).map_err(|_| corrupt(table, "seq", "negative sequence number"))
}

/// Reads an identity selected with [`identity_columns`].
pub(super) fn identity(row: &SqliteRow) -> Result<Identity, StoreError> {
    const T: &str = "identities";
    let owner: Option<String> = get(row, T, "owner")?;
    let environment: Option<String> = get(row, T, "environment")?;
    let attributes: String = get(row, T, "attributes")?;
    let attributes = serde_json::from_str(&attributes)
        .map_err(|e| corrupt(T, "attributes", e))
        .and_then(|v| Attributes::parse(v).map_err(|e| corrupt(T, "attributes", e)))?;
    let source: String = get(row, T, "source")?;
    let status: String = get(row, T, "status")?;
    let orphaned: i64 = get(row, T, "orphaned")?;
    Ok(Identity {
        id: identity_id(row, T, "id")?,
        owner: owner
            .map(|o| IdentityId::parse(&o).map_err(|e| corrupt(T, "owner", e)))
            .transpose()?,
        environment: environment
            .map(|e| Environment::parse(&e).map_err(|e| corrupt(T, "environment", e)))
            .transpose()?,
        attributes,
        source: Source::parse(&source).map_err(|e| corrupt(T, "source", e))?,
        status: Status::parse(&status).map_err(|e| corrupt(T, "status", e))?,
        orphaned: match orphaned {
            0 => false,
            1 => true,
            other => {
                return Err(corrupt(
                    T,
                    "orphaned",
                    format!("expected 0 or 1, found {other}"),
                ));
            }
        },
        created_at: time(row, T, "created_at")?,
        updated_at: time(row, T, "updated_at")?,
    })
}

/// Reads a credential selected with [`credential_columns`].
pub(super) fn credential(row: &SqliteRow) -> Result<Credential, StoreError> {
    const T: &str = "credentials";
    let id: String = get(row, T, "id")?;
    Ok(Credential {
        id: CredentialId::parse(&id).map_err(|e| corrupt(T, "id", e))?,
        identity: identity_id(row, T, "identity")?,
        description: get(row, T, "description")?,
        hash: get(row, T, "hash")?,
        created_at: time(row, T, "created_at")?,
        expires_at: time_opt(row, T, "expires_at")?,
        last_used_at: time_opt(row, T, "last_used_at")?,
        revoked_at: time_opt(row, T, "revoked_at")?,
    })
}

/// Reads a client key (`identity, kid, jwk, created_at, revoked_at`).
pub(super) fn client_key(row: &SqliteRow) -> Result<ClientKey, StoreError> {
    const T: &str = "client_keys";
    Ok(ClientKey {
        identity: identity_id(row, T, "identity")?,
        kid: get(row, T, "kid")?,
        jwk: get(row, T, "jwk")?,
        created_at: time(row, T, "created_at")?,
        revoked_at: time_opt(row, T, "revoked_at")?,
    })
}

/// Reads an admin token selected with [`admin_token_columns`].
pub(super) fn admin_token(row: &SqliteRow) -> Result<AdminToken, StoreError> {
    const T: &str = "admin_tokens";
    let id: String = get(row, T, "id")?;
    let role: String = get(row, T, "role")?;
    Ok(AdminToken {
        id: AdminTokenId::parse(&id).map_err(|e| corrupt(T, "id", e))?,
        name: get(row, T, "name")?,
        role: Role::parse(&role).map_err(|e| corrupt(T, "role", e))?,
        hash: get(row, T, "hash")?,
        created_at: time(row, T, "created_at")?,
        expires_at: time_opt(row, T, "expires_at")?,
        revoked_at: time_opt(row, T, "revoked_at")?,
    })
}

/// Reads a delegation selected with [`delegation_columns`].
pub(super) fn delegation(row: &SqliteRow) -> Result<Delegation, StoreError> {
    const T: &str = "delegations";
    let parent: Option<String> = get(row, T, "parent")?;
    let credential: Option<String> = get(row, T, "credential")?;
    let scope: String = get(row, T, "scope")?;
    let audience: String = get(row, T, "audience")?;
    let audience: Vec<String> =
        serde_json::from_str(&audience).map_err(|e| corrupt(T, "audience", e))?;
    Ok(Delegation {
        id: delegation_id(row, T, "id")?,
        parent: parent
            .map(|p| DelegationId::parse(&p).map_err(|e| corrupt(T, "parent", e)))
            .transpose()?,
        lineage: delegation_id(row, T, "lineage")?,
        subject: identity_id(row, T, "subject")?,
        delegator: identity_id(row, T, "delegator")?,
        actor: identity_id(row, T, "actor")?,
        credential: credential
            .map(|c| CredentialId::parse(&c).map_err(|e| corrupt(T, "credential", e)))
            .transpose()?,
        scope: Scope::parse(&scope).map_err(|e| corrupt(T, "scope", e))?,
        audience: Audience::parse(&audience).map_err(|e| corrupt(T, "audience", e))?,
        depth: number(row, T, "depth")?,
        max_depth: number(row, T, "max_depth")?,
        max_fan_out: number(row, T, "max_fan_out")?,
        issued_at: time(row, T, "issued_at")?,
        expires_at: time(row, T, "expires_at")?,
        revoked_at: time_opt(row, T, "revoked_at")?,
    })
}

/// An audience as stored: a JSON array of its entries.
pub(super) fn audience_json(audience: &Audience) -> Result<String, StoreError> {
    serde_json::to_string(&audience.entries().collect::<Vec<_>>())
        .map_err(|e| StoreError::Backend(format!("could not encode audience: {e}")))
}

/// Reads an audit record selected with [`record_columns`].
pub(super) fn record(row: &SqliteRow) -> Result<Record, StoreError> {
    const T: &str = "audit_records";
    let outcome: String = get(row, T, "outcome")?;
    Ok(Record {
        seq: seq(row, T)?,
        time: time(row, T, "time")?,
        kind: get(row, T, "kind")?,
        actor: get(row, T, "actor")?,
        target: get(row, T, "target")?,
        outcome: Outcome::parse(&outcome)
            .ok_or_else(|| corrupt(T, "outcome", format!("unknown outcome \"{outcome}\"")))?,
        details: get(row, T, "details")?,
        prev_hash: hash(row, T, "prev_hash")?,
        hash: hash(row, T, "hash")?,
    })
}

/// Reads the head from a `(seq, hash)` row.
pub(super) fn head(row: &SqliteRow) -> Result<Head, StoreError> {
    const T: &str = "audit_records";
    Ok(Head {
        seq: seq(row, T)?,
        hash: hash(row, T, "hash")?,
    })
}

/// Reads a checkpoint.
pub(super) fn checkpoint(row: &SqliteRow) -> Result<Checkpoint, StoreError> {
    const T: &str = "audit_checkpoints";
    Ok(Checkpoint {
        seq: seq(row, T)?,
        hash: hash(row, T, "hash")?,
        time: time(row, T, "time")?,
        key_id: get(row, T, "key_id")?,
        signature: get(row, T, "signature")?,
    })
}

/// A sequence number as stored.
pub(super) fn seq_param(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq)
        .map_err(|_| StoreError::Backend(format!("sequence number {seq} is too large")))
}

/// One record as SQLite's `json_array` writes it in [`RECORDS_AS_JSON`]:
/// seq, time, kind, actor, target, outcome, details, hex prev_hash, hex hash.
type RecordTuple = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

/// Selects a page of records as ONE row holding a JSON array of arrays.
///
/// sqlx hands SQLite rows one at a time across threads; for the audit log,
/// which is read a million rows at a time by `audit verify`, building the
/// page inside SQLite and parsing it once is several times faster.
pub(super) const RECORDS_AS_JSON: &str = "SELECT coalesce(json_group_array(json_array(\
     seq, time, kind, actor, target, outcome, details, hex(prev_hash), hex(hash))), '[]') \
     FROM (SELECT * FROM audit_records WHERE seq > ? ORDER BY seq LIMIT ?)";

/// Parses the page built by [`RECORDS_AS_JSON`], in sequence order.
pub(super) fn records_from_json(page: &str) -> Result<Vec<Record>, StoreError> {
    const T: &str = "audit_records";
    let tuples: Vec<RecordTuple> = serde_json::from_str(page).map_err(|e| corrupt(T, "*", e))?;
    let mut records = tuples
        .into_iter()
        .map(
            |(seq, time, kind, actor, target, outcome, details, prev, hash)| {
                let seq = u64::try_from(seq)
                    .map_err(|_| corrupt(T, "seq", "negative sequence number"))?;
                let time = Time::from_timestamp_micros(time)
                    .ok_or_else(|| corrupt(T, "time", "time out of range"))?;
                let outcome = Outcome::parse(&outcome).ok_or_else(|| {
                    corrupt(T, "outcome", format!("unknown outcome \"{outcome}\""))
                })?;
                let hex_hash = |s: &str, column| {
                    handoff_audit::hex::decode(s)
                        .and_then(|b| Hash::from_slice(&b))
                        .ok_or_else(|| corrupt(T, column, "expected 32 bytes"))
                };
                Ok(Record {
                    seq,
                    time,
                    kind,
                    actor,
                    target,
                    outcome,
                    details,
                    prev_hash: hex_hash(&prev, "prev_hash")?,
                    hash: hex_hash(&hash, "hash")?,
                })
            },
        )
        .collect::<Result<Vec<Record>, StoreError>>()?;
    // json_group_array keeps the subquery's order in practice; do not rely on it.
    records.sort_unstable_by_key(|r| r.seq);
    Ok(records)
}

/// Reads a policy version's metadata.
pub(super) fn policy_version(row: &SqliteRow) -> Result<PolicyVersion, StoreError> {
    const T: &str = "policy_versions";
    let version: i64 = get(row, T, "version")?;
    let count: i64 = get(row, T, "policy_count")?;
    Ok(PolicyVersion {
        version: u64::try_from(version).map_err(|_| corrupt(T, "version", "negative version"))?,
        digest: get(row, T, "digest")?,
        policy_count: u32::try_from(count)
            .map_err(|_| corrupt(T, "policy_count", "out of range"))?,
        created_at: time(row, T, "created_at")?,
        created_by: get(row, T, "created_by")?,
    })
}

/// Reads a sealed secret (`value`, `version`).
pub(super) fn sealed(row: &SqliteRow) -> Result<crate::Sealed, StoreError> {
    const T: &str = "secrets";
    let version: i64 = get(row, T, "version")?;
    Ok(crate::Sealed {
        value: get(row, T, "value")?,
        version: u64::try_from(version).map_err(|_| corrupt(T, "version", "negative"))?,
    })
}

/// Reads one change; `None` for a topic this binary does not know.
pub(super) fn changed(row: &SqliteRow) -> Result<Option<crate::Changed>, StoreError> {
    const T: &str = "changes";
    let seq = seq(row, T)?;
    let name: String = get(row, T, "topic")?;
    let subject: String = get(row, T, "subject")?;
    Ok(crate::Topic::from_parts(&name, &subject).map(|topic| crate::Changed { seq, topic }))
}
