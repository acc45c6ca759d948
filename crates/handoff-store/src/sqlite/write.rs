//! Applying one [`Write`] and storing one audit record, on a connection that
//! is already inside the batch transaction (and the change's savepoint).
//!
//! A write reports a refusal that leaves the batch usable as
//! [`StoreError::NotFound`] or [`StoreError::Conflict`]; any other error
//! means the transaction itself is in doubt.

use super::delegations;
use super::rows::{backend, is_foreign_key_violation, is_unique_violation, micros, micros_opt};
use crate::{StoreError, Write};
use handoff_audit::Record;
use handoff_core::{
    AdminToken, ClientKey, Credential, Identity, IdentityId, PolicyVersion, Status, Time,
};
use sqlx::SqliteConnection;

/// Applies `write`.
pub(super) async fn apply(conn: &mut SqliteConnection, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::Nothing => Ok(()),
        Write::CreateIdentity(identity) => create_identity(conn, identity).await,
        Write::UpdateIdentity {
            id,
            environment,
            attributes,
            at,
        } => {
            let attributes = attributes.as_ref().map(attributes_json).transpose()?;
            let result = sqlx::query(
                "UPDATE identities SET \
                 environment = CASE WHEN ? THEN ? ELSE environment END, \
                 attributes = COALESCE(?, attributes), \
                 updated_at = ? \
                 WHERE id = ?",
            )
            .bind(environment.is_some())
            .bind(
                environment
                    .as_ref()
                    .and_then(|e| e.as_ref().map(|e| e.as_str())),
            )
            .bind(attributes)
            .bind(micros(*at))
            .bind(id.as_str())
            .execute(conn)
            .await
            .map_err(backend)?;
            if result.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        }
        Write::SetStatus {
            id,
            from,
            to,
            orphan_owned,
            revoke_delegations,
            at,
        } => {
            set_status(conn, id, *from, *to, *orphan_owned, *at).await?;
            if *revoke_delegations {
                delegations::revoke_held_by(conn, id, *at).await?;
            }
            Ok(())
        }
        Write::IssueCredential(credential) => issue_credential(conn, credential).await,
        Write::RevokeCredential { id, at } => {
            revoke(conn, Revocable::Credential, id.as_str(), *at).await?;
            delegations::revoke_obtained_with(conn, id, *at).await
        }
        Write::CreateAdminToken(token) => create_admin_token(conn, token).await,
        Write::CreateFirstAdminToken(token) => {
            let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM admin_tokens)")
                .fetch_one(&mut *conn)
                .await
                .map_err(backend)?;
            if exists {
                return Err(StoreError::Conflict("an admin token exists already".into()));
            }
            create_admin_token(conn, token).await
        }
        Write::RevokeAdminToken { id, at } => {
            revoke(conn, Revocable::AdminToken, id.as_str(), *at).await
        }
        Write::PutPolicyVersion { version, files } => {
            put_policy_version(conn, version, files).await
        }
        Write::ReplaceSecret {
            name,
            value,
            version,
        } => replace_secret(conn, name, value, *version).await,
        Write::ActivatePolicyVersion { version, from, at } => {
            activate_policy_version(conn, *version, *from, *at).await
        }
        Write::CreateDelegations(list) => delegations::create(conn, list).await,
        Write::RevokeDelegations { ids, at } => delegations::revoke(conn, ids, *at).await,
        Write::AddClientKey(key) => add_client_key(conn, key).await,
        Write::RevokeClientKey { identity, kid, at } => {
            revoke_client_key(conn, identity, kid, *at).await
        }
    }
}

async fn add_client_key(conn: &mut SqliteConnection, k: &ClientKey) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO client_keys (identity, kid, jwk, created_at, revoked_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(k.identity.as_str())
    .bind(k.kid.as_str())
    .bind(k.jwk.as_str())
    .bind(micros(k.created_at))
    .bind(micros_opt(k.revoked_at))
    .execute(conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!(
                "\"{}\" already has a key \"{}\"",
                k.identity, k.kid
            ))
        } else if is_foreign_key_violation(&e) {
            StoreError::NotFound
        } else {
            backend(e)
        }
    })?;
    Ok(())
}

async fn revoke_client_key(
    conn: &mut SqliteConnection,
    identity: &IdentityId,
    kid: &str,
    at: Time,
) -> Result<(), StoreError> {
    let revoked: Option<Option<i64>> =
        sqlx::query_scalar("SELECT revoked_at FROM client_keys WHERE identity = ? AND kid = ?")
            .bind(identity.as_str())
            .bind(kid)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    match revoked {
        None => Err(StoreError::NotFound),
        Some(Some(_)) => Err(StoreError::Conflict(format!(
            "key \"{kid}\" of \"{identity}\" is already revoked"
        ))),
        Some(None) => {
            sqlx::query("UPDATE client_keys SET revoked_at = ? WHERE identity = ? AND kid = ?")
                .bind(micros(at))
                .bind(identity.as_str())
                .bind(kid)
                .execute(conn)
                .await
                .map_err(backend)?;
            Ok(())
        }
    }
}

async fn put_policy_version(
    conn: &mut SqliteConnection,
    v: &PolicyVersion,
    files: &str,
) -> Result<(), StoreError> {
    let number = super::rows::seq_param(v.version)?;
    sqlx::query(
        "INSERT INTO policy_versions (version, digest, policy_count, files, created_at, \
         created_by) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(number)
    .bind(v.digest.as_str())
    .bind(i64::from(v.policy_count))
    .bind(files)
    .bind(micros(v.created_at))
    .bind(v.created_by.as_str())
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!(
                "policy version {} already exists: another upload won; retry",
                v.version
            ))
        } else {
            backend(e)
        }
    })?;
    set_active_policy(conn, number, micros(v.created_at)).await
}

async fn activate_policy_version(
    conn: &mut SqliteConnection,
    version: u64,
    from: Option<u64>,
    at: Time,
) -> Result<(), StoreError> {
    let number = super::rows::seq_param(version)?;
    let found: Option<i64> =
        sqlx::query_scalar("SELECT version FROM policy_versions WHERE version = ?")
            .bind(number)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    if found.is_none() {
        return Err(StoreError::NotFound);
    }
    let current: Option<i64> =
        sqlx::query_scalar("SELECT active_version FROM policy_state WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    let current = current.and_then(|v| u64::try_from(v).ok());
    if current != from {
        return Err(StoreError::Conflict(
            "the active policy version changed concurrently; read it again and retry".into(),
        ));
    }
    set_active_policy(conn, number, micros(at)).await
}

async fn set_active_policy(
    conn: &mut SqliteConnection,
    version: i64,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO policy_state (id, active_version, updated_at) VALUES (1, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET active_version = excluded.active_version, \
         updated_at = excluded.updated_at",
    )
    .bind(version)
    .bind(at)
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

fn attributes_json(a: &handoff_core::Attributes) -> Result<String, StoreError> {
    serde_json::to_string(a.as_map())
        .map_err(|e| StoreError::Backend(format!("could not encode attributes: {e}")))
}

async fn create_identity(conn: &mut SqliteConnection, i: &Identity) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO identities (id, kind, name, owner, environment, attributes, source, \
         status, orphaned, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(i.id.as_str())
    .bind(i.id.kind().as_str())
    .bind(i.id.name())
    .bind(i.owner.as_ref().map(IdentityId::as_str))
    .bind(i.environment.as_ref().map(|e| e.as_str()))
    .bind(attributes_json(&i.attributes)?)
    .bind(i.source.as_str())
    .bind(i.status.as_str())
    .bind(i.orphaned)
    .bind(micros(i.created_at))
    .bind(micros(i.updated_at))
    .execute(conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!("identity \"{}\" already exists", i.id))
        } else {
            backend(e)
        }
    })?;
    Ok(())
}

async fn set_status(
    conn: &mut SqliteConnection,
    id: &IdentityId,
    from: Status,
    to: Status,
    orphan_owned: bool,
    at: Time,
) -> Result<(), StoreError> {
    let result =
        sqlx::query("UPDATE identities SET status = ?, updated_at = ? WHERE id = ? AND status = ?")
            .bind(to.as_str())
            .bind(micros(at))
            .bind(id.as_str())
            .bind(from.as_str())
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    if result.rows_affected() == 0 {
        return if exists(conn, "SELECT 1 FROM identities WHERE id = ?", id.as_str()).await? {
            Err(StoreError::Conflict(format!(
                "identity \"{id}\" is no longer {from}"
            )))
        } else {
            Err(StoreError::NotFound)
        };
    }
    if orphan_owned {
        sqlx::query("UPDATE identities SET orphaned = 1, updated_at = ? WHERE owner = ?")
            .bind(micros(at))
            .bind(id.as_str())
            .execute(conn)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

async fn issue_credential(conn: &mut SqliteConnection, c: &Credential) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO credentials (id, identity, description, hash, created_at, expires_at, \
         last_used_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(c.id.as_str())
    .bind(c.identity.as_str())
    .bind(c.description.as_str())
    .bind(c.hash.as_slice())
    .bind(micros(c.created_at))
    .bind(micros_opt(c.expires_at))
    .bind(micros_opt(c.last_used_at))
    .bind(micros_opt(c.revoked_at))
    .execute(conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!("credential \"{}\" already exists", c.id))
        } else if is_foreign_key_violation(&e) {
            StoreError::NotFound
        } else {
            backend(e)
        }
    })?;
    Ok(())
}

async fn create_admin_token(conn: &mut SqliteConnection, t: &AdminToken) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO admin_tokens (id, name, role, hash, created_at, expires_at, revoked_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(t.id.as_str())
    .bind(t.name.as_str())
    .bind(t.role.as_str())
    .bind(t.hash.as_slice())
    .bind(micros(t.created_at))
    .bind(micros_opt(t.expires_at))
    .bind(micros_opt(t.revoked_at))
    .execute(conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!("admin token \"{}\" already exists", t.id))
        } else {
            backend(e)
        }
    })?;
    Ok(())
}

/// The tables whose rows are revoked by setting `revoked_at` once.
#[derive(Clone, Copy)]
enum Revocable {
    Credential,
    AdminToken,
}

impl Revocable {
    fn update_sql(self) -> &'static str {
        match self {
            Self::Credential => {
                "UPDATE credentials SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
            }
            Self::AdminToken => {
                "UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
            }
        }
    }

    fn exists_sql(self) -> &'static str {
        match self {
            Self::Credential => "SELECT 1 FROM credentials WHERE id = ?",
            Self::AdminToken => "SELECT 1 FROM admin_tokens WHERE id = ?",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Credential => "credential",
            Self::AdminToken => "admin token",
        }
    }
}

/// Revokes a row: `NotFound` when it does not exist, `Conflict` when it
/// was revoked already.
async fn revoke(
    conn: &mut SqliteConnection,
    what: Revocable,
    id: &str,
    at: Time,
) -> Result<(), StoreError> {
    let result = sqlx::query(what.update_sql())
        .bind(micros(at))
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    if result.rows_affected() == 0 {
        return if exists(conn, what.exists_sql(), id).await? {
            Err(StoreError::Conflict(format!(
                "{} \"{id}\" is already revoked",
                what.noun()
            )))
        } else {
            Err(StoreError::NotFound)
        };
    }
    Ok(())
}

async fn exists(
    conn: &mut SqliteConnection,
    sql: &'static str,
    id: &str,
) -> Result<bool, StoreError> {
    let row = sqlx::query(sql)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?;
    Ok(row.is_some())
}

/// Most records stored by one `INSERT` (9 bound values each, well under
/// SQLite's limit of 32,766 variables).
pub(super) const RECORDS_PER_INSERT: usize = 256;

/// Replaces a secret if its version is still `version`.
async fn replace_secret(
    conn: &mut SqliteConnection,
    name: &str,
    value: &[u8],
    version: u64,
) -> Result<(), StoreError> {
    let Ok(read) = i64::try_from(version) else {
        return Err(StoreError::Conflict(format!("secret {name} changed")));
    };
    let result = sqlx::query(
        "UPDATE secrets SET value = ?, version = version + 1, \
         updated_at = CAST(unixepoch('subsec') * 1000000 AS INTEGER) \
         WHERE name = ? AND version = ?",
    )
    .bind(value)
    .bind(name)
    .bind(read)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    if result.rows_affected() == 1 {
        return Ok(());
    }
    let exists: Option<i64> = sqlx::query_scalar("SELECT version FROM secrets WHERE name = ?")
        .bind(name)
        .fetch_optional(conn)
        .await
        .map_err(backend)?;
    match exists {
        None => Err(StoreError::NotFound),
        Some(stored) => Err(StoreError::Conflict(format!(
            "secret {name} is at version {stored}, not {version}"
        ))),
    }
}

/// Stores the topics each sealed record's write changed.
pub(super) async fn insert_changes(
    conn: &mut SqliteConnection,
    changes: &[(u64, crate::Topic)],
) -> Result<(), StoreError> {
    for chunk in changes.chunks(RECORDS_PER_INSERT) {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT OR IGNORE INTO changes (seq, topic, subject) ",
        );
        let mut rows = Vec::with_capacity(chunk.len());
        for (seq, topic) in chunk {
            rows.push((super::rows::seq_param(*seq)?, topic.to_parts()));
        }
        q.push_values(rows, |mut row, (seq, (name, subject))| {
            row.push_bind(seq).push_bind(name).push_bind(subject);
        });
        q.build().execute(&mut *conn).await.map_err(backend)?;
    }
    Ok(())
}

/// Stores sealed records in one statement. Any failure here fails the whole
/// batch: a record whose write succeeded must never be lost.
pub(super) async fn insert_records(
    conn: &mut SqliteConnection,
    records: &[Record],
) -> Result<(), StoreError> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Ok(());
    };
    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO audit_records (seq, time, kind, actor, target, outcome, details, \
         prev_hash, hash) ",
    );
    let mut seqs = Vec::with_capacity(records.len());
    for r in records {
        seqs.push(super::rows::seq_param(r.seq)?);
    }
    q.push_values(records.iter().zip(seqs), |mut row, (r, seq)| {
        row.push_bind(seq)
            .push_bind(micros(r.time))
            .push_bind(r.kind.as_str())
            .push_bind(r.actor.as_str())
            .push_bind(r.target.as_str())
            .push_bind(r.outcome.as_str())
            .push_bind(r.details.as_str())
            .push_bind(r.prev_hash.0.as_slice())
            .push_bind(r.hash.0.as_slice());
    });
    q.build().execute(conn).await.map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!(
                "audit records {}..={} collide with stored ones: the chain head is stale",
                first.seq, last.seq
            ))
        } else {
            StoreError::Backend(format!(
                "could not store audit records {}..={}: {e}",
                first.seq, last.seq
            ))
        }
    })?;
    Ok(())
}
