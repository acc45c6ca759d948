//! Applying one [`Write`], and storing a batch's records and change feed,
//! on a connection that is already inside the batch transaction (and the
//! change's savepoint).
//!
//! A write reports a refusal that leaves the batch usable as
//! [`StoreError::NotFound`] or [`StoreError::Conflict`]; any other error
//! means the transaction itself is in doubt. Every write runs under the
//! chain lock the batch holds, so writes from all nodes are serialized and
//! each statement (READ COMMITTED: a new snapshot per statement) sees every
//! write committed before it.

use super::delegations;
use super::rows::{
    backend, is_foreign_key_violation, is_unavailable, is_unique_violation, micros, micros_opt,
    seq_param,
};
use crate::{StoreError, Topic, Write};
use handoff_audit::{Head, Record};
use handoff_core::{
    AdminToken, ClientKey, Credential, Identity, IdentityId, PolicyVersion, Status, Time,
};
use sqlx::PgConnection;

/// The channel a commit with change rows notifies, with the highest
/// sequence number it stored as payload.
pub(super) const CHANNEL: &str = "handoff_changes";

/// Most records stored by one statement: the arrays have no parameter
/// limit, this only bounds the size of one message.
pub(super) const RECORDS_PER_INSERT: usize = 8_192;

/// Applies `write`.
pub(super) async fn apply(conn: &mut PgConnection, write: &Write) -> Result<(), StoreError> {
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
                 environment = CASE WHEN $1 THEN $2 ELSE environment END, \
                 attributes = COALESCE($3, attributes), \
                 updated_at = $4 \
                 WHERE id = $5",
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

async fn add_client_key(conn: &mut PgConnection, k: &ClientKey) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO client_keys (identity, kid, jwk, created_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5)",
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
    conn: &mut PgConnection,
    identity: &IdentityId,
    kid: &str,
    at: Time,
) -> Result<(), StoreError> {
    let revoked: Option<Option<i64>> =
        sqlx::query_scalar("SELECT revoked_at FROM client_keys WHERE identity = $1 AND kid = $2")
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
            sqlx::query("UPDATE client_keys SET revoked_at = $1 WHERE identity = $2 AND kid = $3")
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
    conn: &mut PgConnection,
    v: &PolicyVersion,
    files: &str,
) -> Result<(), StoreError> {
    let number = seq_param(v.version)?;
    sqlx::query(
        "INSERT INTO policy_versions (version, digest, policy_count, files, created_at, \
         created_by) VALUES ($1, $2, $3, $4, $5, $6)",
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
    conn: &mut PgConnection,
    version: u64,
    from: Option<u64>,
    at: Time,
) -> Result<(), StoreError> {
    let number = seq_param(version)?;
    let found: Option<i64> =
        sqlx::query_scalar("SELECT version FROM policy_versions WHERE version = $1")
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
    conn: &mut PgConnection,
    version: i64,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO policy_state (id, active_version, updated_at) VALUES (1, $1, $2) \
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

async fn create_identity(conn: &mut PgConnection, i: &Identity) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO identities (id, kind, name, owner, environment, attributes, source, \
         status, orphaned, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
    conn: &mut PgConnection,
    id: &IdentityId,
    from: Status,
    to: Status,
    orphan_owned: bool,
    at: Time,
) -> Result<(), StoreError> {
    let result = sqlx::query(
        "UPDATE identities SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4",
    )
    .bind(to.as_str())
    .bind(micros(at))
    .bind(id.as_str())
    .bind(from.as_str())
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    if result.rows_affected() == 0 {
        return if exists(conn, "SELECT 1 FROM identities WHERE id = $1", id.as_str()).await? {
            Err(StoreError::Conflict(format!(
                "identity \"{id}\" is no longer {from}"
            )))
        } else {
            Err(StoreError::NotFound)
        };
    }
    if orphan_owned {
        sqlx::query("UPDATE identities SET orphaned = true, updated_at = $1 WHERE owner = $2")
            .bind(micros(at))
            .bind(id.as_str())
            .execute(conn)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

async fn issue_credential(conn: &mut PgConnection, c: &Credential) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO credentials (id, identity, description, hash, created_at, expires_at, \
         last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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

async fn create_admin_token(conn: &mut PgConnection, t: &AdminToken) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO admin_tokens (id, name, role, hash, created_at, expires_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
                "UPDATE credentials SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL"
            }
            Self::AdminToken => {
                "UPDATE admin_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL"
            }
        }
    }

    fn exists_sql(self) -> &'static str {
        match self {
            Self::Credential => "SELECT 1 FROM credentials WHERE id = $1",
            Self::AdminToken => "SELECT 1 FROM admin_tokens WHERE id = $1",
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
    conn: &mut PgConnection,
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

async fn exists(conn: &mut PgConnection, sql: &'static str, id: &str) -> Result<bool, StoreError> {
    let row = sqlx::query(sql)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(backend)?;
    Ok(row.is_some())
}

/// Replaces a secret if its version is still `version`.
async fn replace_secret(
    conn: &mut PgConnection,
    name: &str,
    value: &[u8],
    version: u64,
) -> Result<(), StoreError> {
    let Ok(read) = i64::try_from(version) else {
        return Err(StoreError::Conflict(format!("secret {name} changed")));
    };
    let result = sqlx::query(
        "UPDATE secrets SET value = $1, version = version + 1, \
         updated_at = (extract(epoch FROM clock_timestamp()) * 1000000)::bigint \
         WHERE name = $2 AND version = $3",
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
    let exists: Option<i64> = sqlx::query_scalar("SELECT version FROM secrets WHERE name = $1")
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

/// The columns of a batch of records, one array per column, as UNNEST
/// takes them.
struct RecordColumns<'a> {
    seq: Vec<i64>,
    time: Vec<i64>,
    kind: Vec<&'a str>,
    actor: Vec<&'a str>,
    target: Vec<&'a str>,
    outcome: Vec<&'a str>,
    details: Vec<&'a str>,
    prev_hash: Vec<&'a [u8]>,
    hash: Vec<&'a [u8]>,
}

impl<'a> RecordColumns<'a> {
    fn new(records: &'a [Record]) -> Result<Self, StoreError> {
        let n = records.len();
        let mut c = Self {
            seq: Vec::with_capacity(n),
            time: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
            actor: Vec::with_capacity(n),
            target: Vec::with_capacity(n),
            outcome: Vec::with_capacity(n),
            details: Vec::with_capacity(n),
            prev_hash: Vec::with_capacity(n),
            hash: Vec::with_capacity(n),
        };
        for r in records {
            c.seq.push(seq_param(r.seq)?);
            c.time.push(micros(r.time));
            c.kind.push(&r.kind);
            c.actor.push(&r.actor);
            c.target.push(&r.target);
            c.outcome.push(r.outcome.as_str());
            c.details.push(&r.details);
            c.prev_hash.push(r.prev_hash.0.as_slice());
            c.hash.push(r.hash.0.as_slice());
        }
        Ok(c)
    }
}

/// Inserts records from nine column arrays (`$1` … `$9`).
macro_rules! insert_records {
    () => {
        "INSERT INTO audit_records (seq, time, kind, actor, target, outcome, details, \
         prev_hash, hash) \
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
         $5::text[], $6::text[], $7::text[], $8::bytea[], $9::bytea[])"
    };
}

/// Stores the records of all but the last chunk of a large batch, one
/// statement per chunk.
pub(super) async fn insert_records(
    conn: &mut PgConnection,
    records: &[Record],
) -> Result<(), StoreError> {
    let c = RecordColumns::new(records)?;
    sqlx::query(insert_records!())
        .bind(c.seq)
        .bind(c.time)
        .bind(c.kind)
        .bind(c.actor)
        .bind(c.target)
        .bind(c.outcome)
        .bind(c.details)
        .bind(c.prev_hash)
        .bind(c.hash)
        .execute(conn)
        .await
        .map_err(|e| records_failed(records, e))?;
    Ok(())
}

/// Ends a batch in ONE statement: stores the last chunk of records and the
/// change feed rows, moves the head row and, when change rows were stored,
/// notifies [`CHANNEL`] (delivered when the transaction commits, and only
/// if it does). Data-modifying CTEs all run to completion whether or not
/// the final SELECT reads them.
pub(super) async fn finish(
    conn: &mut PgConnection,
    records: &[Record],
    changes: &[(u64, Topic)],
    head: Head,
) -> Result<(), StoreError> {
    let c = RecordColumns::new(records)?;
    let mut change_seq = Vec::with_capacity(changes.len());
    let mut change_topic = Vec::with_capacity(changes.len());
    let mut change_subject = Vec::with_capacity(changes.len());
    for (seq, topic) in changes {
        let (name, subject) = topic.to_parts();
        change_seq.push(seq_param(*seq)?);
        change_topic.push(name);
        change_subject.push(subject);
    }
    let last_change = changes.iter().map(|(seq, _)| *seq).max();
    sqlx::query(concat!(
        "WITH records AS (",
        insert_records!(),
        "), changed AS (INSERT INTO changes (seq, topic, subject) \
         SELECT * FROM UNNEST($10::bigint[], $11::text[], $12::text[]) \
         ON CONFLICT DO NOTHING), \
         moved AS (UPDATE audit_head SET seq = $13, hash = $14 WHERE id = 1) \
         SELECT pg_notify('handoff_changes', $15) WHERE $15 IS NOT NULL"
    ))
    .bind(c.seq)
    .bind(c.time)
    .bind(c.kind)
    .bind(c.actor)
    .bind(c.target)
    .bind(c.outcome)
    .bind(c.details)
    .bind(c.prev_hash)
    .bind(c.hash)
    .bind(change_seq)
    .bind(change_topic)
    .bind(change_subject)
    .bind(seq_param(head.seq)?)
    .bind(head.hash.0.as_slice())
    .bind(last_change.map(|seq| seq.to_string()))
    .execute(conn)
    .await
    .map_err(|e| records_failed(records, e))?;
    Ok(())
}

/// Any failure to store records fails the whole batch: a record whose
/// write succeeded must never be lost.
fn records_failed(records: &[Record], e: sqlx::Error) -> StoreError {
    let range = match (records.first(), records.last()) {
        (Some(first), Some(last)) => format!("{}..={}", first.seq, last.seq),
        _ => "(none)".to_owned(),
    };
    if is_unique_violation(&e) {
        StoreError::Conflict(format!(
            "audit records {range} collide with stored ones: the chain head row is stale"
        ))
    } else if is_unavailable(&e) {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(format!("could not store audit records {range}: {e}"))
    }
}
