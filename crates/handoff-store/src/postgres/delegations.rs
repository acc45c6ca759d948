//! Delegations on PostgreSQL: reading them, the writes that create and
//! revoke them, and the set of client assertion ids seen (replay
//! protection). The same semantics as the SQLite backend, statement for
//! statement.
//!
//! Revocation always cascades: one recursive query walks down `parent`
//! (through the `delegations_parent` index) from the seed rows and stamps
//! every descendant not revoked yet, so a lineage of any size is revoked in
//! one statement inside the caller's transaction. The checks that must hold
//! against concurrent writers (parent live, fan-out) are made inside the
//! write transaction, which holds the chain lock, so no other node's write
//! runs between the check and the insert; the parent's row is also locked
//! by the `UPDATE` that takes its fan-out slot.

use super::rows::{self, audience_json, backend, delegation_columns, micros, micros_opt};
use crate::{DelegationFilter, Page, StoreError};
use handoff_core::{CredentialId, Cursor, Delegation, DelegationId, IdentityId, Limit, Time};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;

/// The statement revoking the rows `$seed` selects (a query of one `id`
/// column, collated "C" like the column it walks) and every descendant,
/// with `revoked_at` bound as `$at`.
///
/// `UNION` rather than `UNION ALL`: seeds may lie below other seeds, and
/// each row is then walked once, not once per seed above it; it also ends
/// a walk through parents tampered into a cycle.
macro_rules! cascade {
    ($seed:literal, $at:literal) => {
        concat!(
            "WITH RECURSIVE sub(id) AS (",
            $seed,
            " UNION SELECT d.id FROM delegations d JOIN sub ON d.parent = sub.id) \
             UPDATE delegations SET revoked_at = ",
            $at,
            " WHERE revoked_at IS NULL AND id IN (SELECT id FROM sub)"
        )
    };
}

/// Seeds: the ids of an array.
const REVOKE_IDS: &str = cascade!("SELECT unnest($1::text[]) COLLATE \"C\"", "$2");

/// Seeds: live delegations an identity holds, granted or is the subject of.
const REVOKE_HELD_BY: &str = cascade!(
    "SELECT id FROM delegations WHERE revoked_at IS NULL \
     AND (actor = $1 OR delegator = $1 OR subject = $1)",
    "$2"
);

/// Seeds: live delegations obtained with a credential.
const REVOKE_OBTAINED_WITH: &str = cascade!(
    "SELECT id FROM delegations WHERE revoked_at IS NULL AND credential = $1",
    "$2"
);

// ---- reads ---------------------------------------------------------------

/// One delegation.
pub(super) async fn one(
    pool: &PgPool,
    id: &DelegationId,
) -> Result<Option<Delegation>, StoreError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        delegation_columns!(),
        " FROM delegations WHERE id = $1"
    ))
    .bind(id.as_str())
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    row.as_ref().map(rows::delegation).transpose()
}

/// The chain from the root to `id`, root first.
pub(super) async fn chain(pool: &PgPool, id: &DelegationId) -> Result<Vec<Delegation>, StoreError> {
    // `UNION` visits each id once, so even parents tampered into a cycle
    // end the walk.
    let mut found: HashMap<DelegationId, Delegation> = sqlx::query(concat!(
        "WITH RECURSIVE up(id) AS (SELECT $1::text COLLATE \"C\" \
         UNION SELECT d.parent FROM up JOIN delegations d ON d.id = up.id \
         WHERE d.parent IS NOT NULL) \
         SELECT ",
        delegation_columns!(),
        " FROM delegations WHERE id IN (SELECT id FROM up)"
    ))
    .bind(id.as_str())
    .fetch_all(pool)
    .await
    .map_err(backend)?
    .iter()
    .map(|row| rows::delegation(row).map(|d| (d.id.clone(), d)))
    .collect::<Result<_, _>>()?;
    let mut chain = Vec::with_capacity(found.len());
    let mut next = Some(id.clone());
    while let Some(at) = next {
        let Some(d) = found.remove(&at) else {
            if chain.is_empty() {
                return Ok(chain);
            }
            // INVARIANT: a parent is stored before its children and never
            // changes, so every walk up ends at a root; one that does not
            // (a parent seen twice) was tampered with.
            return Err(StoreError::Corrupt(format!(
                "delegations.parent: the chain of {id} does not reach a root"
            )));
        };
        next = d.parent.clone();
        chain.push(d);
    }
    chain.reverse();
    Ok(chain)
}

/// Every delegation of a lineage, by depth, issue time and id.
pub(super) async fn lineage(
    pool: &PgPool,
    lineage: &DelegationId,
) -> Result<Vec<Delegation>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        delegation_columns!(),
        " FROM delegations WHERE lineage = $1 ORDER BY depth, issued_at, id"
    ))
    .bind(lineage.as_str())
    .fetch_all(pool)
    .await
    .map_err(backend)?
    .iter()
    .map(rows::delegation)
    .collect()
}

/// A page of delegations ordered by id.
pub(super) async fn page(
    pool: &PgPool,
    filter: &DelegationFilter,
    after: Option<&Cursor>,
    limit: Limit,
) -> Result<Page<Delegation>, StoreError> {
    let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(concat!(
        "SELECT ",
        delegation_columns!(),
        " FROM delegations WHERE true"
    ));
    if let Some(identity) = &filter.identity {
        let identity = identity.as_str();
        q.push(" AND (actor = ")
            .push_bind(identity.to_owned())
            .push(" OR delegator = ")
            .push_bind(identity.to_owned())
            .push(" OR subject = ")
            .push_bind(identity.to_owned())
            .push(")");
    }
    if let Some(at) = filter.live_at {
        q.push(" AND revoked_at IS NULL AND expires_at > ")
            .push_bind(micros(at));
    }
    if let Some(cursor) = after {
        q.push(" AND id > ").push_bind(cursor.key().to_owned());
    }
    // One row more than asked tells whether another page follows.
    q.push(" ORDER BY id LIMIT ")
        .push_bind(super::limit_param(limit.get()) + 1);
    let items = q
        .build()
        .fetch_all(pool)
        .await
        .map_err(backend)?
        .iter()
        .map(rows::delegation)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(super::paged(items, limit, |d| d.id.as_str()))
}

/// How many unrevoked, unexpired direct children `id` has at `now`. The
/// stored count is exact for revocations and may still hold expired
/// children; it is used as is while it is below the limit (an upper bound
/// below a limit is as good as the truth) and counted exactly otherwise.
pub(super) async fn live_children(
    pool: &PgPool,
    id: &DelegationId,
    now: Time,
) -> Result<u32, StoreError> {
    // INVARIANT: revocation cascades, so a revoked row has no live child.
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT CASE WHEN revoked_at IS NULL THEN live_children ELSE 0 END, max_fan_out \
         FROM delegations WHERE id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    let Some((stored, max_fan_out)) = row else {
        return Ok(0);
    };
    if stored < max_fan_out {
        return Ok(u32::try_from(stored).unwrap_or(u32::MAX));
    }
    let exact: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM delegations \
         WHERE parent = $1 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(id.as_str())
    .bind(micros(now))
    .fetch_one(pool)
    .await
    .map_err(backend)?;
    Ok(u32::try_from(exact).unwrap_or(u32::MAX))
}

/// Records `jti` for `client` until `expires_at`; false on a replay.
///
/// One statement, so one round trip and one commit. An entry of the same
/// client and `jti` that has expired is replaced in place (the assertion is
/// new again); other expired entries are forgotten a bounded number at a
/// time, skipping rows another node is forgetting right now, so concurrent
/// calls never wait on or deadlock with each other.
pub(super) async fn remember_assertion(
    pool: &PgPool,
    client: &IdentityId,
    jti: &str,
    expires_at: Time,
    now: Time,
) -> Result<bool, StoreError> {
    let stored = sqlx::query(
        "WITH forgotten AS (DELETE FROM assertion_jtis WHERE (client, jti) IN (\
         SELECT client, jti FROM assertion_jtis \
         WHERE expires_at <= $4 AND NOT (client = $1 AND jti = $2) \
         ORDER BY expires_at LIMIT 1000 FOR UPDATE SKIP LOCKED)) \
         INSERT INTO assertion_jtis (client, jti, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (client, jti) DO UPDATE SET expires_at = excluded.expires_at \
         WHERE assertion_jtis.expires_at <= $4",
    )
    .bind(client.as_str())
    .bind(jti)
    .bind(micros(expires_at))
    .bind(micros(now))
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(stored.rows_affected() == 1)
}

// ---- writes (inside the batch transaction) ---------------------------------

/// Inserts `delegations` in order, checking each parent first.
pub(super) async fn create(
    conn: &mut PgConnection,
    delegations: &[Delegation],
) -> Result<(), StoreError> {
    for d in delegations {
        if let Some(parent) = &d.parent {
            check_parent(conn, parent, d.issued_at).await?;
        }
        insert(conn, d).await?;
    }
    Ok(())
}

/// Takes one of the parent's fan-out slots, or refuses a child of a parent
/// that is missing, revoked or full. One statement in the common case; the
/// `UPDATE` locks the parent's row until the batch commits, so no
/// revocation or sibling can slip in between this and the insert. When the
/// parent looks full, its children are counted again without those
/// expired at `now` (an expired child frees its slot) and the slot is
/// tried once more.
async fn check_parent(
    conn: &mut PgConnection,
    parent: &DelegationId,
    now: Time,
) -> Result<(), StoreError> {
    const TAKE: &str = "UPDATE delegations SET live_children = live_children + 1 \
         WHERE id = $1 AND revoked_at IS NULL AND live_children < max_fan_out";
    let taken = sqlx::query(TAKE)
        .bind(parent.as_str())
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    if taken.rows_affected() == 1 {
        return Ok(());
    }
    sqlx::query(
        "UPDATE delegations SET live_children = (SELECT COUNT(*) FROM delegations c \
         WHERE c.parent = delegations.id AND c.revoked_at IS NULL AND c.expires_at > $1) \
         WHERE id = $2 AND revoked_at IS NULL",
    )
    .bind(micros(now))
    .bind(parent.as_str())
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    let taken = sqlx::query(TAKE)
        .bind(parent.as_str())
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    if taken.rows_affected() == 1 {
        return Ok(());
    }
    let revoked: Option<Option<i64>> =
        sqlx::query_scalar("SELECT revoked_at FROM delegations WHERE id = $1")
            .bind(parent.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    match revoked {
        None => Err(StoreError::NotFound),
        Some(Some(_)) => Err(StoreError::Conflict(format!(
            "delegation {parent} is revoked"
        ))),
        Some(None) => Err(StoreError::Conflict(format!(
            "delegation {parent} already has its maximum number of direct delegations"
        ))),
    }
}

/// Recounts the live children of the live parents of the rows `$seed`
/// selects (one `parent` column): after a cascade only the parents of its
/// topmost rows can have lost a live child, and those rows are seeds.
macro_rules! recount {
    ($seed:literal) => {
        concat!(
            "UPDATE delegations SET live_children = (SELECT COUNT(*) FROM delegations c \
             WHERE c.parent = delegations.id AND c.revoked_at IS NULL) \
             WHERE revoked_at IS NULL AND id IN (",
            $seed,
            ")"
        )
    };
}

const RECOUNT_IDS: &str = recount!("SELECT parent FROM delegations WHERE id = ANY($1::text[])");
const RECOUNT_HELD_BY: &str =
    recount!("SELECT parent FROM delegations WHERE actor = $1 OR delegator = $1 OR subject = $1");
const RECOUNT_OBTAINED_WITH: &str =
    recount!("SELECT parent FROM delegations WHERE credential = $1");

async fn insert(conn: &mut PgConnection, d: &Delegation) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO delegations (id, parent, lineage, subject, delegator, actor, credential, \
         scope, audience, depth, max_depth, max_fan_out, issued_at, expires_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $15)",
    )
    .bind(d.id.as_str())
    .bind(d.parent.as_ref().map(DelegationId::as_str))
    .bind(d.lineage.as_str())
    .bind(d.subject.as_str())
    .bind(d.delegator.as_str())
    .bind(d.actor.as_str())
    .bind(d.credential.as_ref().map(CredentialId::as_str))
    .bind(d.scope.to_string())
    .bind(audience_json(&d.audience)?)
    .bind(i64::from(d.depth))
    .bind(i64::from(d.max_depth))
    .bind(i64::from(d.max_fan_out))
    .bind(micros(d.issued_at))
    .bind(micros(d.expires_at))
    .bind(micros_opt(d.revoked_at))
    .execute(conn)
    .await
    .map_err(|e| {
        if rows::is_unique_violation(&e) {
            StoreError::Conflict(format!("delegation {} already exists", d.id))
        } else {
            backend(e)
        }
    })?;
    Ok(())
}

/// Revokes each of `ids` and every descendant not revoked yet; unknown ids
/// are ignored.
pub(super) async fn revoke(
    conn: &mut PgConnection,
    ids: &[DelegationId],
    at: Time,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    // One array instead of one bound variable per id: no limit on how
    // many subtrees one write revokes.
    let ids: Vec<&str> = ids.iter().map(DelegationId::as_str).collect();
    sqlx::query(REVOKE_IDS)
        .bind(&ids)
        .bind(micros(at))
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    sqlx::query(RECOUNT_IDS)
        .bind(&ids)
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Revokes every live delegation `identity` holds, granted or is the
/// subject of, and everything below those.
pub(super) async fn revoke_held_by(
    conn: &mut PgConnection,
    identity: &IdentityId,
    at: Time,
) -> Result<(), StoreError> {
    sqlx::query(REVOKE_HELD_BY)
        .bind(identity.as_str())
        .bind(micros(at))
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    sqlx::query(RECOUNT_HELD_BY)
        .bind(identity.as_str())
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Revokes every live delegation obtained with `credential`, and
/// everything below those.
pub(super) async fn revoke_obtained_with(
    conn: &mut PgConnection,
    credential: &CredentialId,
    at: Time,
) -> Result<(), StoreError> {
    sqlx::query(REVOKE_OBTAINED_WITH)
        .bind(credential.as_str())
        .bind(micros(at))
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    sqlx::query(RECOUNT_OBTAINED_WITH)
        .bind(credential.as_str())
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(())
}
