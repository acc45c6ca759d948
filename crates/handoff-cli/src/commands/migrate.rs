//! `handoff migrate`: brings a database's schema up to this binary's
//! version and exits (the embedded SQLite file or a shared PostgreSQL
//! database). Opening a store migrates it; this command does only that.

use crate::output::{self, Format};
use anyhow::Context;
use handoff_engine::data_dir::DataDir;
use handoff_server::config::DEFAULT_DATA_DIR;
use handoff_store::Store;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

/// Migrates the database named by `database` (PostgreSQL) or the SQLite
/// file in `data_dir`.
pub(crate) async fn run(
    data_dir: Option<PathBuf>,
    database: Option<String>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let (described, store): (String, Box<dyn Store>) = match database {
        Some(url) => {
            let described = handoff_engine::redact_url(&url);
            let store = handoff_store::postgres::PgStore::open(&url)
                .await
                .with_context(|| format!("cannot migrate {described}"))?;
            (described, Box::new(store))
        }
        None => {
            let dir = DataDir::new(data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)));
            dir.create()?;
            let path = dir.database();
            let store = handoff_store::sqlite::SqliteStore::open(&path)
                .await
                .with_context(|| format!("cannot migrate \"{}\"", path.display()))?;
            (format!("\"{}\"", path.display()), Box::new(store))
        }
    };
    store.close().await;
    match format {
        Format::Json => output::json(&json!({ "ok": true, "database": described }))?,
        Format::Table => output::line(&format!("{described} is at the current schema"))?,
    }
    Ok(ExitCode::SUCCESS)
}
