//! The schema migration runner: numbered SQL files embedded in the binary,
//! applied in order, each in its own transaction, and recorded in the
//! schema's own `schema_migrations`.
//!
//! Several nodes may start at once: each run holds a transaction-scoped
//! advisory lock keyed by the schema name, so one node migrates while the
//! others wait and then find nothing left to do. It never downgrades and
//! refuses a schema newer than this binary knows.

use super::rows::backend;
use crate::StoreError;
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row};

/// One schema step.
struct Migration {
    version: i64,
    sql: &'static str,
}

/// Every migration, in order, versions 1, 2, 3, … without gaps.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../../migrations/postgres/0001_init.sql"),
}];

/// The schema version this binary reads and writes.
pub(super) const LATEST: i64 = 1;

/// The first key of the advisory lock taken while migrating ("Hand").
const LOCK_CLASS: i32 = 0x4861_6e64;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
     version BIGINT NOT NULL PRIMARY KEY, \
     applied_at BIGINT NOT NULL)";

/// Brings the schema (`schema`, or the session's current one) up to
/// [`LATEST`], creating the schema if it is missing.
pub(super) async fn run(pool: &PgPool, schema: Option<&str>) -> Result<(), StoreError> {
    loop {
        let mut tx = pool.begin().await.map_err(backend)?;
        // A migration may run longer than an ordinary statement may.
        sqlx::query("SET LOCAL statement_timeout = 0")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        // Nodes starting together queue here; the lock ends with the
        // transaction, so a node that dies mid-migration releases it.
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(LOCK_CLASS)
            .bind(schema.unwrap_or(""))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if let Some(schema) = schema {
            create_schema(&mut tx, schema).await?;
        }
        let current_schema: Option<String> = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        if current_schema.is_none() {
            return Err(StoreError::Backend(
                "no schema to create handoff's tables in: the search path names none that exists"
                    .to_owned(),
            ));
        }
        // Never add our tables to some other application's schema.
        if !has_version_table(&mut tx).await? && has_tables(&mut tx).await? {
            return Err(not_handoff("its schema has tables but no schema version"));
        }
        sqlx::query(CREATE_TABLE)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let current = version(&mut tx).await?;
        check_not_newer(current)?;
        let Some(next) = MIGRATIONS.iter().find(|m| m.version > current) else {
            tx.commit().await.map_err(backend)?;
            return Ok(());
        };
        if next.version != current + 1 {
            return Err(StoreError::Corrupt(format!(
                "database schema version {current} cannot be migrated to {}",
                next.version
            )));
        }
        sqlx::raw_sql(next.sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| migration_failed(next.version, &e))?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, applied_at) \
             VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)",
        )
        .bind(next.version)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        tracing::info!(version = next.version, "applied postgres schema migration");
    }
}

/// Creates `schema` (a name already checked) unless it exists. Checked
/// first: CREATE SCHEMA IF NOT EXISTS needs the right to create schemas
/// even when there is nothing to create, which a role given a prepared
/// schema may lack. Runs under the migration lock, so two nodes cannot
/// both find it missing.
async fn create_schema(conn: &mut PgConnection, schema: &str) -> Result<(), StoreError> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)",
    )
    .bind(schema)
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    if !exists {
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(conn)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

/// Checks, without changing anything, that the schema is exactly [`LATEST`].
pub(super) async fn check_current(pool: &PgPool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await.map_err(backend)?;
    if !has_version_table(&mut conn).await? {
        return Err(not_handoff("it has no schema version"));
    }
    let current = version(&mut conn).await?;
    check_not_newer(current)?;
    if current < LATEST {
        return Err(StoreError::Backend(format!(
            "database schema version {current} is older than this binary's ({LATEST}): \
             start the server once to migrate it"
        )));
    }
    Ok(())
}

async fn has_version_table(conn: &mut PgConnection) -> Result<bool, StoreError> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables \
         WHERE schemaname = current_schema() AND tablename = 'schema_migrations')",
    )
    .fetch_one(conn)
    .await
    .map_err(backend)
}

async fn has_tables(conn: &mut PgConnection) -> Result<bool, StoreError> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema())",
    )
    .fetch_one(conn)
    .await
    .map_err(backend)
}

fn not_handoff(why: &str) -> StoreError {
    StoreError::Backend(format!("not a handoff database: {why}"))
}

/// The highest applied version, 0 for none.
async fn version(conn: &mut PgConnection) -> Result<i64, StoreError> {
    let row =
        sqlx::query("SELECT COALESCE(MAX(version), 0)::bigint AS version FROM schema_migrations")
            .fetch_one(conn)
            .await
            .map_err(backend)?;
    row.try_get("version").map_err(backend)
}

fn check_not_newer(current: i64) -> Result<(), StoreError> {
    if current > LATEST {
        return Err(StoreError::Backend(format!(
            "database schema version {current} is newer than this binary supports ({LATEST}): \
             upgrade handoff"
        )));
    }
    Ok(())
}

fn migration_failed(version: i64, e: &sqlx::Error) -> StoreError {
    StoreError::Backend(format!("schema migration {version} failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_without_gaps_up_to_latest() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(LATEST));
    }
}
