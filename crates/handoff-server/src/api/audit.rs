//! `/v1/audit`: read the hash-chained audit log and verify it online.

use super::AppState;
use super::extract::{QueryParams, Reader};
use crate::problem::Problem;
use crate::wire::{AuditPage, AuditRange, ListAudit, Verification};
use axum::Json;
use axum::extract::State;
use handoff_engine::audit::VerifyError;

/// Pages through the log in sequence order, or returns its tail.
#[utoipa::path(
    get, path = "/v1/audit", tag = "audit", operation_id = "list_audit",
    params(ListAudit),
    responses((status = 200, description = "audit records", body = AuditPage)),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(s): State<AppState>,
    Reader(_): Reader,
    QueryParams(query): QueryParams<ListAudit>,
) -> Result<Json<AuditPage>, Problem> {
    let range = query.into_command()?;
    let records = match range {
        AuditRange::Tail(n) => s.engine.audit_tail(n).await?,
        AuditRange::After { after, limit } => s.engine.audit_records(after, limit).await?,
    };
    Ok(Json(AuditPage::new(
        records,
        range,
        s.engine.appender().head_seq(),
    )))
}

/// Verifies every record and signed checkpoint of the log.
#[utoipa::path(
    get, path = "/v1/audit/verify", tag = "audit", operation_id = "verify_audit",
    responses((status = 200, description = "the verdict; `ok` is false for a broken log", body = Verification)),
    security(("bearer" = []))
)]
pub(crate) async fn verify(
    State(s): State<AppState>,
    Reader(_): Reader,
) -> Result<Json<Verification>, Problem> {
    match s.engine.verify_audit().await {
        Ok(report) => Ok(Json(report.into())),
        Err(VerifyError::Broken(failure)) => Ok(Json(failure.into())),
        Err(VerifyError::Unreadable(e)) => Err(e.into()),
    }
}
