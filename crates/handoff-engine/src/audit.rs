//! Reading and verifying the audit log, online and offline, and recording
//! events that are not tied to one stored row (configuration at start-up).

use crate::data_dir::DataDir;
use crate::{Admin, Engine, EngineError};
use handoff_audit::{Failure, PublicKey, Record, Report, Verifier};
use handoff_store::sqlite::SqliteStore;
use handoff_store::{Store, Write};

/// Records read per round trip while verifying.
const VERIFY_PAGE: u32 = 10_000;

/// Why a verification did not produce a verdict, or the verdict against the log.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The log is broken at a sequence number.
    #[error(transparent)]
    Broken(#[from] Failure),
    /// The log could not be read.
    #[error(transparent)]
    Unreadable(#[from] EngineError),
}

/// Streams every record and checkpoint of `store` through the verifier.
pub async fn verify_store(store: &dyn Store, key: &PublicKey) -> Result<Report, VerifyError> {
    let checkpoints = store.audit_checkpoints().await.map_err(EngineError::from)?;
    let mut verifier = Verifier::new(key, checkpoints)?;
    let mut after = 0;
    loop {
        let page = store
            .audit_records(after, VERIFY_PAGE)
            .await
            .map_err(EngineError::from)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            verifier.push(r)?;
        }
    }
    Ok(verifier.finish()?)
}

/// Verifies the log in a data directory without a running server (or next
/// to one: the database is opened read-only).
pub async fn verify_data_dir(dir: &DataDir) -> Result<Report, VerifyError> {
    let key = dir.public_key()?;
    let path = dir.database();
    let store = SqliteStore::open_read_only(&path)
        .await
        .map_err(|e| EngineError::Io(format!("{}: {e}", path.display())))?;
    verify_store(&store, &key).await
}

impl Engine {
    /// Up to `limit` records after `after`.
    pub async fn audit_records(&self, after: u64, limit: u32) -> Result<Vec<Record>, EngineError> {
        Ok(self.store.audit_records(after, limit).await?)
    }

    /// The last `limit` records.
    pub async fn audit_tail(&self, limit: u32) -> Result<Vec<Record>, EngineError> {
        Ok(self.store.audit_tail(limit).await?)
    }

    /// Verifies the whole log against this server's checkpoint key.
    pub async fn verify_audit(&self) -> Result<Report, VerifyError> {
        verify_store(self.store.as_ref(), &self.keys.public_key()).await
    }

    /// Records an event that changes no stored row, such as the configuration
    /// a server started with. Fails if the record cannot be written.
    pub async fn record_event(
        &self,
        admin: &Admin,
        kind: &str,
        target: &str,
        details: serde_json::Value,
    ) -> Result<Record, EngineError> {
        self.submit(admin, Write::Nothing, kind, target, details, target)
            .await
    }
}
