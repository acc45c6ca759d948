//! Conversions between PostgreSQL rows and domain types, and from sqlx
//! errors to [`StoreError`].
//!
//! Every value read back is parsed into its domain type again; one that does
//! not parse is [`StoreError::Corrupt`], never a panic. The column lists are
//! the SQLite backend's, so both read the same shapes.

use crate::StoreError;
use handoff_audit::{Checkpoint, Hash, Head, Outcome, Record};
use handoff_core::{
    AdminToken, AdminTokenId, Attributes, Audience, ClientKey, Credential, CredentialId,
    Delegation, DelegationId, Environment, Identity, IdentityId, PolicyVersion, Role, Scope,
    Source, Status, Time,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

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

/// The delegation columns, in the order [`delegation`] reads them; the
/// JSONB audience is read as its text.
macro_rules! delegation_columns {
    () => {
        "id, parent, lineage, subject, delegator, actor, credential, scope, \
         audience::text AS audience, depth, max_depth, max_fan_out, issued_at, expires_at, \
         revoked_at"
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
///
/// Lost connections, an exhausted or closed pool, a server shutting down or
/// out of resources are [`StoreError::Unavailable`]: retrying later may
/// succeed. So are a statement cancelled by its timeout (the database is
/// overloaded) and a serialization failure or deadlock (the retry runs
/// alone).
pub(super) fn backend(e: sqlx::Error) -> StoreError {
    if is_unavailable(&e) {
        return StoreError::Unavailable(e.to_string());
    }
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict("the row already exists".to_owned())
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::Decode(_) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Backend(e.to_string()),
    }
}

/// Whether `e` means the database cannot be reached or serve us right now.
pub(super) fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| unavailable_state(&c)),
        sqlx::Error::PoolClosed
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

/// Whether a SQLSTATE says the server cannot serve us right now: class 08
/// (connection exception), 53 (insufficient resources), 57P01–57P03 (admin
/// or crash shutdown, cannot connect now), 57014 (statement timeout or
/// cancel), 40001/40P01 (serialization failure, deadlock).
fn unavailable_state(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "57014" | "40001" | "40P01"
        )
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

fn get<'r, T>(row: &'r PgRow, table: &str, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column).map_err(|e| corrupt(table, column, e))
}

fn time_from(v: i64, table: &str, column: &str) -> Result<Time, StoreError> {
    Time::from_timestamp_micros(v).ok_or_else(|| corrupt(table, column, "time out of range"))
}

fn time(row: &PgRow, table: &str, column: &str) -> Result<Time, StoreError> {
    time_from(get(row, table, column)?, table, column)
}

fn time_opt(row: &PgRow, table: &str, column: &str) -> Result<Option<Time>, StoreError> {
    let v: Option<i64> = get(row, table, column)?;
    v.map(|v| time_from(v, table, column)).transpose()
}

fn identity_id(row: &PgRow, table: &str, column: &str) -> Result<IdentityId, StoreError> {
    let s: String = get(row, table, column)?;
    IdentityId::parse(&s).map_err(|e| corrupt(table, column, e))
}

fn delegation_id(row: &PgRow, table: &str, column: &str) -> Result<DelegationId, StoreError> {
    let s: String = get(row, table, column)?;
    DelegationId::parse(&s).map_err(|e| corrupt(table, column, e))
}

fn number(row: &PgRow, table: &str, column: &str) -> Result<u32, StoreError> {
    let v: i64 = get(row, table, column)?;
    u32::try_from(v).map_err(|_| corrupt(table, column, "out of range"))
}

fn hash(row: &PgRow, table: &str, column: &str) -> Result<Hash, StoreError> {
    let b: Vec<u8> = get(row, table, column)?;
    Hash::from_slice(&b).ok_or_else(|| corrupt(table, column, "expected 32 bytes"))
}

fn seq(row: &PgRow, table: &str) -> Result<u64, StoreError> {
    let v: i64 = get(row, table, "seq")?;
    u64::try_from(v).map_err(|_| corrupt(table, "seq", "negative sequence number"))
}

/// Reads an identity selected with [`identity_columns`].
pub(super) fn identity(row: &PgRow) -> Result<Identity, StoreError> {
    const T: &str = "identities";
    let owner: Option<String> = get(row, T, "owner")?;
    let environment: Option<String> = get(row, T, "environment")?;
    let attributes: String = get(row, T, "attributes")?;
    let attributes = serde_json::from_str(&attributes)
        .map_err(|e| corrupt(T, "attributes", e))
        .and_then(|v| Attributes::parse(v).map_err(|e| corrupt(T, "attributes", e)))?;
    let source: String = get(row, T, "source")?;
    let status: String = get(row, T, "status")?;
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
        orphaned: get(row, T, "orphaned")?,
        created_at: time(row, T, "created_at")?,
        updated_at: time(row, T, "updated_at")?,
    })
}

/// Reads a credential selected with [`credential_columns`].
pub(super) fn credential(row: &PgRow) -> Result<Credential, StoreError> {
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
pub(super) fn client_key(row: &PgRow) -> Result<ClientKey, StoreError> {
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
pub(super) fn admin_token(row: &PgRow) -> Result<AdminToken, StoreError> {
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
pub(super) fn delegation(row: &PgRow) -> Result<Delegation, StoreError> {
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

/// An audience as stored: a JSON array of its entries (cast to JSONB).
pub(super) fn audience_json(audience: &Audience) -> Result<String, StoreError> {
    serde_json::to_string(&audience.entries().collect::<Vec<_>>())
        .map_err(|e| StoreError::Backend(format!("could not encode audience: {e}")))
}

/// Reads an audit record selected with [`record_columns`].
pub(super) fn record(row: &PgRow) -> Result<Record, StoreError> {
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

/// Reads the head from a `(seq, hash)` row of `table`.
pub(super) fn head(row: &PgRow, table: &str) -> Result<Head, StoreError> {
    Ok(Head {
        seq: seq(row, table)?,
        hash: hash(row, table, "hash")?,
    })
}

/// Reads a checkpoint.
pub(super) fn checkpoint(row: &PgRow) -> Result<Checkpoint, StoreError> {
    const T: &str = "audit_checkpoints";
    Ok(Checkpoint {
        seq: seq(row, T)?,
        hash: hash(row, T, "hash")?,
        time: time(row, T, "time")?,
        key_id: get(row, T, "key_id")?,
        signature: get(row, T, "signature")?,
    })
}

/// A sequence number (or any u64 key) as stored.
pub(super) fn seq_param(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq)
        .map_err(|_| StoreError::Backend(format!("sequence number {seq} is too large")))
}

/// Reads a policy version's metadata.
pub(super) fn policy_version(row: &PgRow) -> Result<PolicyVersion, StoreError> {
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
pub(super) fn sealed(row: &PgRow) -> Result<crate::Sealed, StoreError> {
    const T: &str = "secrets";
    let version: i64 = get(row, T, "version")?;
    Ok(crate::Sealed {
        value: get(row, T, "value")?,
        version: u64::try_from(version).map_err(|_| corrupt(T, "version", "negative"))?,
    })
}

/// Reads one change; `None` for a topic this binary does not know.
pub(super) fn changed(row: &PgRow) -> Result<Option<crate::Changed>, StoreError> {
    const T: &str = "changes";
    let seq = seq(row, T)?;
    let name: String = get(row, T, "topic")?;
    let subject: String = get(row, T, "subject")?;
    Ok(crate::Topic::from_parts(&name, &subject).map(|topic| crate::Changed { seq, topic }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_and_overload_states_are_unavailable() {
        for code in [
            "08006", "08001", "53300", "57P01", "57P03", "57014", "40P01",
        ] {
            assert!(unavailable_state(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02", "57000"] {
            assert!(!unavailable_state(code), "{code}");
        }
    }

    #[test]
    fn pool_and_io_failures_are_unavailable() {
        for e in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        ] {
            assert!(matches!(backend(e), StoreError::Unavailable(_)));
        }
        assert!(matches!(
            backend(sqlx::Error::RowNotFound),
            StoreError::Backend(_)
        ));
    }
}
