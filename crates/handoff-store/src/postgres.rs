//! The PostgreSQL backend: one database shared by several Handoff nodes.
//!
//! Every node appends to ONE audit chain. A batch ([`Store::commit`]) is one
//! transaction that first locks the chain's head row (`audit_head`, one
//! row, `SELECT … FOR UPDATE`) and holds it until it commits, so batches of
//! all nodes are serialized: sequence numbers follow commit order, each
//! batch is sealed onto the head the previous one stored (the caller's head
//! may be stale; it is replaced by the stored one), and the change feed
//! ([`Store::changes_since`]) never shows a later sequence number before an
//! earlier one. A batch's records and change rows go in one statement
//! (`UNNEST` arrays), so a batch costs a constant number of round trips
//! however many records it holds, plus a savepoint per real write. A commit
//! with change rows notifies `handoff_changes`; a background task of each
//! node listens there and wakes [`Store::wait_for_change`].
//!
//! The schema lives in `migrations/postgres/`, applied by [`migrate`]
//! under an advisory lock. Business rules are not checked here.

mod delegations;
mod follow;
mod migrate;
mod rows;
mod write;

use crate::{
    Change, ChangeResult, Changed, DelegationFilter, IdentityFilter, Page, Sealed, Store,
    StoreError, Write,
};
use async_trait::async_trait;
use follow::{Follower, Seen};
use handoff_audit::{Checkpoint, Head, Record};
use handoff_core::{
    AdminToken, AdminTokenId, ClientKey, Credential, CredentialId, Cursor, Delegation,
    DelegationId, Identity, IdentityId, Limit, PolicyVersion, Time,
};
use rows::{
    admin_token_columns, backend, credential_columns, identity_columns, micros, record_columns,
};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Connections in a node's pool.
const POOL_SIZE: u32 = 16;
/// How long an operation waits for a free connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest one statement may run (lock waits included).
const STATEMENT_TIMEOUT: &str = "30s";
/// A session idle inside a transaction this long is ended by the server,
/// releasing the chain lock should a node hang mid-batch.
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "60s";

/// A [`Store`] in a PostgreSQL database (or one schema of it), shared with
/// other Handoff nodes. Clones share one connection pool and one listener;
/// each clone follows notifications for itself (see
/// [`Store::wait_for_change`]).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    read_only: bool,
    follower: Arc<Follower>,
    seen: Seen,
}

impl PgStore {
    /// Connects to the database at `url` (a `postgres://` URL) for reading
    /// and writing, in the schema its search path names (usually
    /// `public`), migrating the schema to the latest version.
    ///
    /// Fails if the schema is newer than this binary knows, or holds
    /// tables of another application.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::connect(url, None, false).await
    }

    /// As [`PgStore::open`], with every table in `schema` (created if
    /// missing; lowercase letters, digits and `_`, at most 63).
    pub async fn open_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        Self::connect(url, Some(schema), false).await
    }

    /// Connects for reading only, without migrating, e.g. to verify the
    /// audit log while servers run. Sessions are read-only, and every write
    /// through it fails.
    ///
    /// Fails unless the schema is exactly the version this binary knows.
    pub async fn open_read_only(url: &str) -> Result<Self, StoreError> {
        Self::connect(url, None, true).await
    }

    /// As [`PgStore::open_read_only`], in `schema`.
    pub async fn open_read_only_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        Self::connect(url, Some(schema), true).await
    }

    async fn connect(url: &str, schema: Option<&str>, read_only: bool) -> Result<Self, StoreError> {
        if let Some(schema) = schema {
            check_schema_name(schema)?;
        }
        let base = connect_options(url)?;
        let mut settings = vec![
            // The chain lock relies on READ COMMITTED: a locking read that
            // waited returns the newest head, and each later statement sees
            // what committed before it. Never inherit a stricter default.
            ("default_transaction_isolation", "read committed"),
            ("statement_timeout", STATEMENT_TIMEOUT),
            (
                "idle_in_transaction_session_timeout",
                IDLE_IN_TRANSACTION_TIMEOUT,
            ),
        ];
        if let Some(schema) = schema {
            settings.push(("search_path", schema));
        }
        if read_only {
            settings.push(("default_transaction_read_only", "on"));
        }
        let options = base.clone().options(settings);
        let pool = match PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
        {
            Ok(pool) => pool,
            // The pool retries until its timeout and then reports only
            // that; one direct attempt tells why (refused, auth, no such
            // database).
            Err(sqlx::Error::PoolTimedOut) => {
                let e = options
                    .connect()
                    .await
                    .err()
                    .unwrap_or(sqlx::Error::PoolTimedOut);
                return Err(open_failed(&e));
            }
            Err(e) => return Err(open_failed(&e)),
        };
        let checked = if read_only {
            migrate::check_current(&pool).await
        } else {
            migrate::run(&pool, schema).await
        };
        if let Err(e) = checked {
            pool.close().await;
            return Err(e);
        }
        // Its own pool of one: the listening connection is held for good
        // and must not take one of the pool's places (nor keep `close`
        // waiting). Channels are per database, whatever the schema.
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(base);
        let follower = match Follower::start(listen_pool.clone()).await {
            Ok(follower) => follower,
            Err(e) => {
                listen_pool.close().await;
                pool.close().await;
                return Err(open_failed(&e));
            }
        };
        Ok(Self {
            pool,
            read_only,
            follower,
            seen: Seen::default(),
        })
    }

    fn writable(&self) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::Backend(
                "the database is open read-only".to_owned(),
            ));
        }
        Ok(())
    }

    /// The body of [`Store::commit`]; on `Err` the caller restores `head`.
    async fn commit_batch(
        &self,
        changes: Vec<Change>,
        head: &mut Head,
    ) -> Result<Vec<ChangeResult>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // INVARIANT: the chain lock. Taken first and held until COMMIT, so
        // batches of every node are serialized and sequence numbers are in
        // commit order. A locking read returns the row's latest committed
        // version even after waiting for another node's batch.
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let stored = row
            .as_ref()
            .map(|row| rows::head(row, "audit_head"))
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt("audit_head: the head row is missing".into()))?;
        if stored != *head {
            // Another node appended since this one last committed: seal
            // onto what it stored instead of forking the chain.
            tracing::debug!(stored = stored.seq, expected = head.seq, "audit head moved");
        }
        *head = stored;
        let mut results = Vec::with_capacity(changes.len());
        let mut sealed = Vec::with_capacity(changes.len());
        let mut changed = Vec::new();
        for change in changes {
            if matches!(change.write, Write::Nothing) {
                // Nothing to roll back: the record alone is the change.
                sealed.push(head.seal(change.record));
                results.push(None);
                continue;
            }
            // A nested sqlx transaction is a SAVEPOINT: a refused write is
            // rolled back alone and the rest of the batch goes on.
            let mut savepoint = Connection::begin(&mut *tx).await.map_err(backend)?;
            match write::apply(&mut savepoint, &change.write).await {
                Ok(()) => {
                    savepoint.commit().await.map_err(backend)?;
                    let record = head.seal(change.record);
                    changed.extend(
                        crate::topics(&change.write)
                            .into_iter()
                            .map(|topic| (record.seq, topic)),
                    );
                    sealed.push(record);
                    results.push(None);
                }
                Err(refused @ (StoreError::NotFound | StoreError::Conflict(_))) => {
                    savepoint.rollback().await.map_err(backend)?;
                    results.push(Some(refused));
                }
                // Anything else leaves the transaction in doubt: fail the
                // batch (dropping `tx` rolls it back).
                Err(failed) => return Err(failed),
            }
        }
        let chunks: Vec<&[Record]> = sealed.chunks(write::RECORDS_PER_INSERT).collect();
        if let Some((last, rest)) = chunks.split_last() {
            for chunk in rest {
                write::insert_records(&mut tx, chunk).await?;
            }
            write::finish(&mut tx, last, &changed, *head).await?;
        }
        let mut sealed = sealed.into_iter();
        let results = results
            .into_iter()
            .map(|refused| match refused {
                Some(e) => Err(e),
                None => sealed
                    .next()
                    .ok_or_else(|| StoreError::Backend("sealed record missing".into())),
            })
            .collect();
        tx.commit().await.map_err(backend)?;
        Ok(results)
    }
}

/// Drops `schema` and everything in it, if it exists: for tests that
/// opened a store with [`PgStore::open_in_schema`]. Refuses `public`.
pub async fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
    check_schema_name(schema)?;
    if schema == "public" {
        return Err(StoreError::Backend(
            "refusing to drop the schema \"public\"".to_owned(),
        ));
    }
    let mut conn = connect_options(url)?
        .connect()
        .await
        .map_err(|e| open_failed(&e))?;
    sqlx::query(AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut conn)
    .await
    .map_err(backend)?;
    conn.close().await.map_err(backend)?;
    Ok(())
}

/// A schema name we create and quote ourselves: `[a-z0-9_]{1,63}`, and not
/// PostgreSQL's reserved `pg_` prefix.
fn check_schema_name(schema: &str) -> Result<(), StoreError> {
    let valid = (1..=63).contains(&schema.len())
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.starts_with("pg_");
    if valid {
        Ok(())
    } else {
        Err(StoreError::Backend(format!(
            "invalid schema name \"{schema}\": use 1 to 63 lowercase letters, digits and _, \
             not starting with pg_"
        )))
    }
}

fn connect_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    // The URL may hold a password: never echo it.
    PgConnectOptions::from_str(url)
        .map(|options| options.application_name("handoff"))
        .map_err(|e| StoreError::Backend(format!("invalid database URL: {e}")))
}

fn open_failed(e: &sqlx::Error) -> StoreError {
    let message = format!("could not connect to the database: {e}");
    if rows::is_unavailable(e) {
        StoreError::Unavailable(message)
    } else {
        StoreError::Backend(message)
    }
}

fn limit_param(limit: u32) -> i64 {
    i64::from(limit)
}

/// A page from `items` fetched with one row more than `limit` (keyset
/// pagination): the extra row, if any, says another page follows after the
/// last kept item's `key`.
fn paged<T>(mut items: Vec<T>, limit: Limit, key: impl Fn(&T) -> &str) -> Page<T> {
    let wanted = usize::try_from(limit.get()).unwrap_or(usize::MAX);
    let next = if items.len() > wanted {
        items.truncate(wanted);
        items.last().map(|last| Cursor::after(key(last)))
    } else {
        None
    };
    Page { items, next }
}

#[async_trait]
impl Store for PgStore {
    async fn close(&self) {
        self.follower.stop().await;
        self.pool.close().await;
    }

    fn shared(&self) -> bool {
        true
    }

    async fn wait_for_change(&self, timeout: Duration) {
        self.seen.wait(&self.follower, timeout).await;
    }

    async fn identity(&self, id: &IdentityId) -> Result<Option<Identity>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            identity_columns!(),
            " FROM identities WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(rows::identity).transpose()
    }

    async fn identities(
        &self,
        filter: &IdentityFilter,
        after: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<Identity>, StoreError> {
        let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(concat!(
            "SELECT ",
            identity_columns!(),
            " FROM identities WHERE true"
        ));
        if let Some(kind) = filter.kind {
            q.push(" AND kind = ").push_bind(kind.as_str());
        }
        if let Some(status) = filter.status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(owner) = &filter.owner {
            q.push(" AND owner = ").push_bind(owner.as_str().to_owned());
        }
        if let Some(environment) = &filter.environment {
            q.push(" AND environment = ")
                .push_bind(environment.as_str().to_owned());
        }
        if let Some(orphaned) = filter.orphaned {
            q.push(" AND orphaned = ").push_bind(orphaned);
        }
        if let Some(cursor) = after {
            q.push(" AND id > ").push_bind(cursor.key().to_owned());
        }
        // One row more than asked tells whether another page follows.
        q.push(" ORDER BY id LIMIT ")
            .push_bind(limit_param(limit.get()) + 1);
        let fetched = q.build().fetch_all(&self.pool).await.map_err(backend)?;
        let items = fetched
            .iter()
            .map(rows::identity)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(paged(items, limit, |i| i.id.as_str()))
    }

    async fn credential(&self, id: &CredentialId) -> Result<Option<Credential>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            credential_columns!(),
            " FROM credentials WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(rows::credential).transpose()
    }

    async fn credentials(&self, identity: &IdentityId) -> Result<Vec<Credential>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            credential_columns!(),
            " FROM credentials WHERE identity = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(identity.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(rows::credential)
        .collect()
    }

    async fn touch_credential(&self, id: &CredentialId, at: Time) -> Result<(), StoreError> {
        self.writable()?;
        let result = sqlx::query("UPDATE credentials SET last_used_at = $1 WHERE id = $2")
            .bind(micros(at))
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn admin_token(&self, id: &AdminTokenId) -> Result<Option<AdminToken>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            admin_token_columns!(),
            " FROM admin_tokens WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(rows::admin_token).transpose()
    }

    async fn admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            admin_token_columns!(),
            " FROM admin_tokens ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(rows::admin_token)
        .collect()
    }

    async fn policy_versions(&self) -> Result<Vec<PolicyVersion>, StoreError> {
        sqlx::query(
            "SELECT version, digest, policy_count, created_at, created_by \
             FROM policy_versions ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(rows::policy_version)
        .collect()
    }

    async fn policy_version(
        &self,
        version: u64,
    ) -> Result<Option<(PolicyVersion, String)>, StoreError> {
        let Ok(number) = i64::try_from(version) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT version, digest, policy_count, created_at, created_by, files \
             FROM policy_versions WHERE version = $1",
        )
        .bind(number)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|row| {
            let files: String = sqlx::Row::try_get(&row, "files").map_err(backend)?;
            Ok((rows::policy_version(&row)?, files))
        })
        .transpose()
    }

    async fn active_policy_version(&self) -> Result<Option<u64>, StoreError> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT active_version FROM policy_state WHERE id = 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        v.map(|v| {
            u64::try_from(v)
                .map_err(|_| StoreError::Corrupt("policy_state.active_version: negative".into()))
        })
        .transpose()
    }

    async fn delegation(&self, id: &DelegationId) -> Result<Option<Delegation>, StoreError> {
        delegations::one(&self.pool, id).await
    }

    async fn chain(&self, id: &DelegationId) -> Result<Vec<Delegation>, StoreError> {
        delegations::chain(&self.pool, id).await
    }

    async fn lineage(&self, lineage: &DelegationId) -> Result<Vec<Delegation>, StoreError> {
        delegations::lineage(&self.pool, lineage).await
    }

    async fn delegations(
        &self,
        filter: &DelegationFilter,
        after: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<Delegation>, StoreError> {
        delegations::page(&self.pool, filter, after, limit).await
    }

    async fn client_keys(&self, identity: &IdentityId) -> Result<Vec<ClientKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT identity, kid, jwk, created_at, revoked_at FROM client_keys \
             WHERE identity = $1 ORDER BY created_at, kid",
        )
        .bind(identity.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(rows::client_key).collect()
    }

    async fn live_children(&self, id: &DelegationId, now: Time) -> Result<u32, StoreError> {
        delegations::live_children(&self.pool, id, now).await
    }

    async fn remember_assertion(
        &self,
        client: &IdentityId,
        jti: &str,
        expires_at: Time,
        now: Time,
    ) -> Result<bool, StoreError> {
        self.writable()?;
        delegations::remember_assertion(&self.pool, client, jti, expires_at, now).await
    }

    async fn secret(&self, name: &str) -> Result<Option<Sealed>, StoreError> {
        let row = sqlx::query("SELECT value, version FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(rows::sealed).transpose()
    }

    async fn create_secret(&self, name: &str, value: &[u8]) -> Result<bool, StoreError> {
        self.writable()?;
        let result = sqlx::query(
            "INSERT INTO secrets (name, value, version, updated_at) \
             VALUES ($1, $2, 1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(result.rows_affected() == 1)
    }

    async fn changes_since(&self, after: u64, limit: u32) -> Result<Vec<Changed>, StoreError> {
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        sqlx::query(
            "SELECT seq, topic, subject FROM changes WHERE seq > $1 \
             ORDER BY seq, topic, subject LIMIT $2",
        )
        .bind(after)
        .bind(limit_param(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .filter_map(|row| rows::changed(row).transpose())
        .collect()
    }

    async fn audit_head(&self) -> Result<Head, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref()
            .map_or(Ok(Head::EMPTY), |row| rows::head(row, "audit_records"))
    }

    async fn audit_records(&self, after: u64, limit: u32) -> Result<Vec<Record>, StoreError> {
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        sqlx::query(concat!(
            "SELECT ",
            record_columns!(),
            " FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after)
        .bind(limit_param(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(rows::record)
        .collect()
    }

    async fn audit_tail(&self, limit: u32) -> Result<Vec<Record>, StoreError> {
        sqlx::query(concat!(
            "SELECT * FROM (SELECT ",
            record_columns!(),
            " FROM audit_records ORDER BY seq DESC LIMIT $1) AS tail ORDER BY seq"
        ))
        .bind(limit_param(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(rows::record)
        .collect()
    }

    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        sqlx::query("SELECT seq, hash, time, key_id, signature FROM audit_checkpoints ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(rows::checkpoint)
            .collect()
    }

    /// Stores a signed checkpoint. Several nodes may sign the same head:
    /// storing a checkpoint identical to the stored one at its sequence
    /// number succeeds and changes nothing; a different one is `Conflict`.
    async fn append_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.writable()?;
        let seq = rows::seq_param(checkpoint.seq)?;
        let stored = sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO NOTHING",
        )
        .bind(seq)
        .bind(checkpoint.hash.0.as_slice())
        .bind(micros(checkpoint.time))
        .bind(checkpoint.key_id.as_str())
        .bind(checkpoint.signature.as_slice())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if stored.rows_affected() == 1 {
            return Ok(());
        }
        let existing = sqlx::query(
            "SELECT seq, hash, time, key_id, signature FROM audit_checkpoints WHERE seq = $1",
        )
        .bind(seq)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        match existing.as_ref().map(rows::checkpoint).transpose()? {
            Some(existing) if existing == *checkpoint => Ok(()),
            _ => Err(StoreError::Conflict(format!(
                "a different checkpoint at sequence {} already exists",
                checkpoint.seq
            ))),
        }
    }

    async fn commit(
        &self,
        changes: Vec<Change>,
        head: &mut Head,
    ) -> Result<Vec<ChangeResult>, StoreError> {
        self.writable()?;
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let start = *head;
        let result = self.commit_batch(changes, head).await;
        if result.is_err() {
            // Nothing was committed: give the caller back its own head.
            *head = start;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked_before_they_are_quoted() {
        for good in ["public", "t_0123abcd", "a", &"x".repeat(63)] {
            assert!(check_schema_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Upper",
            "with space",
            "quote\"d",
            "semi;colon",
            "pg_catalog",
            &"x".repeat(64),
        ] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_malformed_url_is_refused_without_echoing_it() {
        let err = connect_options("postgres://user:hunter2@host:notaport/db").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
