//! Reading and verifying the audit log, online and offline, and recording
//! events that are not tied to one stored row (configuration at start-up).

use crate::data_dir::DataDir;
use crate::{Admin, Engine, EngineError};
use handoff_audit::{Failure, PublicKey, Record, Report, Verifier};
use handoff_store::sqlite::SqliteStore;
use handoff_store::{Store, Write};
use std::collections::VecDeque;
use std::sync::Arc;

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

/// Pages read ahead of the verifier, each on its own connection.
const READ_AHEAD: usize = 3;

/// Streams every record and checkpoint of `store` through the verifier.
///
/// Pages are read `READ_AHEAD` at a time on separate tasks (and so separate
/// connections) and consumed strictly in sequence order. A page starts after
/// a sequence number, so a log with gaps may return overlapping pages; the
/// verifier fails at the first gap before any overlap matters.
pub async fn verify_store(store: Arc<dyn Store>, key: &PublicKey) -> Result<Report, VerifyError> {
    let checkpoints = store.audit_checkpoints().await.map_err(EngineError::from)?;
    let mut verifier = Verifier::new(key, checkpoints)?;
    let last = store.audit_head().await.map_err(EngineError::from)?.seq;
    let page = u64::from(VERIFY_PAGE);
    let mut pending = VecDeque::new();
    let mut next_start = 0;
    loop {
        while pending.len() < READ_AHEAD && next_start < last {
            let store = store.clone();
            let after = next_start;
            pending.push_back(tokio::spawn(async move {
                store.audit_records(after, VERIFY_PAGE).await
            }));
            next_start += page;
        }
        let Some(task) = pending.pop_front() else {
            break;
        };
        let records = task
            .await
            .map_err(|e| EngineError::Store(format!("audit reader failed: {e}")))?
            .map_err(EngineError::from)?;
        for r in &records {
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
    verify_store(Arc::new(store), &key).await
}

/// The key a shared database's checkpoints are checked against.
#[derive(Debug)]
pub enum CheckpointKey {
    /// Given by the operator (hex, from `handoff keys list` or a backup).
    Given(PublicKey),
    /// Derived from the signing key stored in the database, opened with the
    /// master key (so a key swapped in the database is detected).
    Sealed(crate::master_key::MasterKey),
}

/// Verifies the log in a shared PostgreSQL database without a server (or
/// next to running nodes: the connection is read-only).
pub async fn verify_database(url: &str, key: CheckpointKey) -> Result<Report, VerifyError> {
    let store = handoff_store::postgres::PgStore::open_read_only(url)
        .await
        .map_err(|e| EngineError::Io(format!("{}: {e}", crate::redact_url(url))))?;
    let store: Arc<dyn Store> = Arc::new(store);
    let key = match key {
        CheckpointKey::Given(key) => key,
        CheckpointKey::Sealed(master) => {
            crate::shared::SharedKeys::checkpoint_key(store.as_ref(), &master).await?
        }
    };
    let report = verify_store(store.clone(), &key).await;
    store.close().await;
    report
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
        verify_store(self.store.clone(), &self.keys.public_key()).await
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
