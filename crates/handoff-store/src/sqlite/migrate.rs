//! The schema migration runner: numbered SQL files embedded in the binary,
//! applied in order, each in its own write transaction, and recorded in
//! `schema_migrations`.
//!
//! It never downgrades and refuses a database whose schema is newer than
//! this binary knows, so an old binary cannot misread a newer layout.

use super::rows::backend;
use crate::StoreError;
use sqlx::{Row, SqliteConnection, SqlitePool};

/// One schema step.
struct Migration {
    version: i64,
    sql: &'static str,
}

/// Every migration, in order, versions 1, 2, 3, … without gaps.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../../migrations/sqlite/0002_policies.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../../migrations/sqlite/0003_delegations.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("../../migrations/sqlite/0004_client_keys.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("../../migrations/sqlite/0005_secrets_and_changes.sql"),
    },
];

/// The schema version this binary reads and writes.
pub(super) const LATEST: i64 = 5;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
     version INTEGER NOT NULL PRIMARY KEY, \
     applied_at INTEGER NOT NULL) STRICT";

/// Brings the database up to [`LATEST`].
pub(super) async fn run(pool: &SqlitePool) -> Result<(), StoreError> {
    loop {
        // BEGIN IMMEDIATE takes the write lock first, so two processes
        // opening the same fresh file cannot both apply a migration.
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
        // Never add our tables to some other application's database.
        if !has_version_table(&mut tx).await? && has_tables(&mut tx).await? {
            return Err(not_handoff("it has tables but no schema version"));
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
             VALUES (?, CAST(unixepoch('subsec') * 1000000 AS INTEGER))",
        )
        .bind(next.version)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        tracing::info!(version = next.version, "applied sqlite schema migration");
    }
}

/// Checks, without changing anything, that the schema is exactly [`LATEST`].
pub(super) async fn check_current(pool: &SqlitePool) -> Result<(), StoreError> {
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

async fn has_version_table(conn: &mut SqliteConnection) -> Result<bool, StoreError> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema \
         WHERE type = 'table' AND name = 'schema_migrations')",
    )
    .fetch_one(conn)
    .await
    .map_err(backend)
}

async fn has_tables(conn: &mut SqliteConnection) -> Result<bool, StoreError> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema \
         WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\')",
    )
    .fetch_one(conn)
    .await
    .map_err(backend)
}

fn not_handoff(why: &str) -> StoreError {
    StoreError::Backend(format!("not a handoff database: {why}"))
}

/// The highest applied version, 0 for none.
async fn version(conn: &mut SqliteConnection) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations")
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
