//! The embedded SQLite backend: one database file in WAL mode, opened
//! through a small sqlx connection pool.
//!
//! Reads run concurrently on the pool (WAL lets readers proceed while a
//! write is in progress). Writes take the database write lock up front
//! (`BEGIN IMMEDIATE`); there are few writers (the engine's audit appender
//! and [`Store::touch_credential`]), and a busy timeout covers the rest.
//!
//! The schema lives in `migrations/sqlite/` and is applied by [`migrate`],
//! this module's own runner. Business rules are not checked here: the engine
//! decides what to write, this module writes it atomically.

mod delegations;
mod migrate;
mod rows;
mod write;

use crate::{
    Change, ChangeResult, Changed, DelegationFilter, IdentityFilter, Page, Sealed, Store,
    StoreError, Write,
};
use async_trait::async_trait;
use handoff_audit::{Checkpoint, Head, Record};
use handoff_core::{
    AdminToken, AdminTokenId, ClientKey, Credential, CredentialId, Cursor, Delegation,
    DelegationId, Identity, IdentityId, Limit, PolicyVersion, Time,
};
use rows::{
    admin_token_columns, backend, credential_columns, identity_columns, micros, record_columns,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::time::Duration;

/// Connections in a read-write pool: one writer at a time, the rest read.
const POOL_SIZE: u32 = 4;
/// Connections in a read-only pool.
const READ_ONLY_POOL_SIZE: u32 = 2;
/// How long a statement waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Store`] in one SQLite database file. Clones share one connection pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    read_only: bool,
}

impl SqliteStore {
    /// Opens the database at `path` for reading and writing, creating the
    /// file if it is missing and migrating its schema to the latest version.
    ///
    /// Fails if the schema is newer than this binary knows.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect_with(options)
            .await
            .map_err(|e| open_failed(path, &e))?;
        if let Err(e) = migrate::run(&pool).await {
            pool.close().await;
            return Err(e);
        }
        Ok(Self {
            pool,
            read_only: false,
        })
    }

    /// Opens an existing database at `path` for reading only, without
    /// migrating it, e.g. to verify the audit log while a server runs.
    ///
    /// Fails if the file does not exist or its schema is not exactly the
    /// version this binary knows. Every write through it fails.
    pub async fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Backend(format!(
                "database \"{}\" does not exist",
                path.display()
            )));
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .create_if_missing(false)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(READ_ONLY_POOL_SIZE)
            .connect_with(options)
            .await
            .map_err(|e| open_failed(path, &e))?;
        if let Err(e) = migrate::check_current(&pool).await {
            pool.close().await;
            return Err(e);
        }
        Ok(Self {
            pool,
            read_only: true,
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

    async fn stored_head(conn: &mut sqlx::SqliteConnection) -> Result<Head, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1")
            .fetch_optional(conn)
            .await
            .map_err(backend)?;
        row.as_ref().map_or(Ok(Head::EMPTY), rows::head)
    }

    /// The body of [`Store::commit`]; on `Err` the caller restores `head`.
    async fn commit_batch(
        &self,
        changes: Vec<Change>,
        head: &mut Head,
    ) -> Result<Vec<ChangeResult>, StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        // INVARIANT: records are appended to the stored chain only; a caller
        // holding a stale head would fork it, so refuse before writing.
        let stored = Self::stored_head(&mut tx).await?;
        if stored != *head {
            return Err(StoreError::Conflict(format!(
                "the audit chain head moved: stored sequence {}, expected {}",
                stored.seq, head.seq
            )));
        }
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
            let mut savepoint = sqlx::Connection::begin(&mut *tx).await.map_err(backend)?;
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
                // Anything else (I/O, a full disk, corruption) may have rolled
                // back the whole transaction inside SQLite: fail the batch.
                Err(failed) => return Err(failed),
            }
        }
        // Records go in a few multi-row statements: one round trip per chunk
        // instead of one per record is what makes group commit cheap.
        for chunk in sealed.chunks(write::RECORDS_PER_INSERT) {
            write::insert_records(&mut tx, chunk).await?;
        }
        write::insert_changes(&mut tx, &changed).await?;
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

fn open_failed(path: &Path, e: &sqlx::Error) -> StoreError {
    StoreError::Backend(format!("could not open \"{}\": {e}", path.display()))
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
impl Store for SqliteStore {
    async fn close(&self) {
        self.pool.close().await;
    }

    async fn identity(&self, id: &IdentityId) -> Result<Option<Identity>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            identity_columns!(),
            " FROM identities WHERE id = ?"
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
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(concat!(
            "SELECT ",
            identity_columns!(),
            " FROM identities WHERE 1 = 1"
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
            " FROM credentials WHERE id = ?"
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
            " FROM credentials WHERE identity = ? ORDER BY created_at DESC, id DESC"
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
        let result = sqlx::query("UPDATE credentials SET last_used_at = ? WHERE id = ?")
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
            " FROM admin_tokens WHERE id = ?"
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
             FROM policy_versions WHERE version = ?",
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
             WHERE identity = ? ORDER BY created_at, kid",
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
        let row = sqlx::query("SELECT value, version FROM secrets WHERE name = ?")
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
             VALUES (?, ?, 1, CAST(unixepoch('subsec') * 1000000 AS INTEGER)) \
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
            "SELECT seq, topic, subject FROM changes WHERE seq > ? \
             ORDER BY seq, topic, subject LIMIT ?",
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
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        Self::stored_head(&mut conn).await
    }

    async fn audit_records(&self, after: u64, limit: u32) -> Result<Vec<Record>, StoreError> {
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let page: String = sqlx::query_scalar(rows::RECORDS_AS_JSON)
            .bind(after)
            .bind(limit_param(limit))
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        rows::records_from_json(&page)
    }

    async fn audit_tail(&self, limit: u32) -> Result<Vec<Record>, StoreError> {
        sqlx::query(concat!(
            "SELECT * FROM (SELECT ",
            record_columns!(),
            " FROM audit_records ORDER BY seq DESC LIMIT ?) ORDER BY seq"
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

    async fn append_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.writable()?;
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(rows::seq_param(checkpoint.seq)?)
        .bind(checkpoint.hash.0.as_slice())
        .bind(micros(checkpoint.time))
        .bind(checkpoint.key_id.as_str())
        .bind(checkpoint.signature.as_slice())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if rows::is_unique_violation(&e) {
                StoreError::Conflict(format!(
                    "a checkpoint at sequence {} already exists",
                    checkpoint.seq
                ))
            } else {
                backend(e)
            }
        })?;
        Ok(())
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
            // Nothing was committed, so the chain still ends where it began.
            *head = start;
        }
        result
    }
}
