//! Policy packs: push a new version (it becomes active), list and read the
//! stored versions, and roll back by activating an older one. Validation,
//! versioning and auditing are the engine's.

use super::extract::{JsonBody, PathId, Reader, Writer};
use super::{AppState, location};
use crate::problem::Problem;
use crate::schema;
use crate::wire::{
    PolicyVersionBody, PolicyVersionDetail, PolicyVersionList, PolicyVersionNumber, PushPolicies,
};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Validates a pack and stores it as the next version, which becomes
/// active at once. An invalid pack changes nothing: 422 with every problem.
#[utoipa::path(
    put, path = "/v1/policies", tag = "policies", operation_id = "push_policies",
    request_body = PushPolicies,
    responses(
        (status = 201, description = "a new version, now active", body = PolicyVersionBody,
            headers(("location" = String, description = "the version's url")),
            links(
                ("show" = (operation_id = "show_policy_version", parameters(("version" = "$response.body#/version")))),
            )),
        (status = 200, description = "the pack equals the active version; nothing was stored (`created` is false)", body = PolicyVersionBody),
        (status = 422, description = "the pack is invalid; `errors` lists every problem as {file, line, column, message}; nothing was changed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn push(
    State(s): State<AppState>,
    Writer(admin): Writer,
    JsonBody(req): JsonBody<PushPolicies>,
) -> Result<Response, Problem> {
    let pushed = s.engine.push_policies(&admin, req.into()).await?;
    let version = pushed.version.version;
    let mut body = PolicyVersionBody::new(pushed.version, Some(version));
    body.created = Some(pushed.created);
    if !pushed.created {
        return Ok(Json(body).into_response());
    }
    let url = location("/v1/policies", &version.to_string());
    Ok(super::created(url, body))
}

/// Lists every stored version, oldest first, and which one is active.
#[utoipa::path(
    get, path = "/v1/policies", tag = "policies", operation_id = "list_policy_versions",
    responses((status = 200, description = "the versions", body = PolicyVersionList)),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(s): State<AppState>,
    Reader(_): Reader,
) -> Result<Json<PolicyVersionList>, Problem> {
    let (versions, active) = s.engine.policy_versions().await?;
    let items = versions
        .into_iter()
        .map(|v| PolicyVersionBody::new(v, active))
        .collect();
    Ok(Json(PolicyVersionList { items, active }))
}

/// Reads one stored version with its files.
#[utoipa::path(
    get, path = "/v1/policies/{version}", tag = "policies", operation_id = "show_policy_version",
    params(("version" = schema::PolicyVersion, Path, description = "the version number")),
    responses(
        (status = 200, description = "the version and its files", body = PolicyVersionDetail),
        (status = 404, description = "no such version", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn show(
    State(s): State<AppState>,
    Reader(_): Reader,
    PathId(PolicyVersionNumber(version)): PathId<PolicyVersionNumber>,
) -> Result<Json<PolicyVersionDetail>, Problem> {
    let (meta, pack) = s.engine.policy_version(version).await?;
    let active = s.engine.active_policy();
    Ok(Json(PolicyVersionDetail {
        version: PolicyVersionBody::new(meta, active),
        files: pack.files,
    }))
}

/// Makes a stored version the active one again (rollback).
#[utoipa::path(
    post, path = "/v1/policies/{version}/activate", tag = "policies", operation_id = "activate_policy_version",
    params(("version" = schema::PolicyVersion, Path, description = "the version number")),
    responses(
        (status = 200, description = "the version, now active", body = PolicyVersionBody),
        (status = 404, description = "no such version", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the version is already active", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn activate(
    State(s): State<AppState>,
    Writer(admin): Writer,
    PathId(PolicyVersionNumber(version)): PathId<PolicyVersionNumber>,
) -> Result<(StatusCode, Json<PolicyVersionBody>), Problem> {
    let meta = s.engine.activate_policy_version(&admin, version).await?;
    Ok((
        StatusCode::OK,
        Json(PolicyVersionBody::new(meta, Some(version))),
    ))
}
