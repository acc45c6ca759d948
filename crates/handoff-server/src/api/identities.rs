//! `/v1/identities`: create, list, read, update and change the status of
//! identities. Ownership and lifecycle rules are the engine's.

use super::extract::{JsonBody, PathId, QueryParams, Reader, Writer};
use super::{AppState, created, location};
use crate::problem::Problem;
use crate::schema;
use crate::wire::{
    CreateIdentity, IdentityBody, IdentityPage, ListIdentities, SetStatus, UpdateIdentity,
};
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use handoff_core::IdentityId;

/// Creates an identity; agents and services need an active human owner.
#[utoipa::path(
    post, path = "/v1/identities", tag = "identities", operation_id = "create_identity",
    request_body = CreateIdentity,
    responses(
        (status = 201, description = "the identity was created", body = IdentityBody,
            headers(("location" = String, description = "the identity's url")),
            links(
                ("show" = (operation_id = "show_identity", parameters(("id" = "$response.body#/id")))),
                ("update" = (operation_id = "update_identity", parameters(("id" = "$response.body#/id")))),
                ("set_status" = (operation_id = "set_identity_status", parameters(("id" = "$response.body#/id")))),
                ("credentials" = (operation_id = "list_credentials", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 409, description = "the id exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "owner missing, unknown, not a human, not active, or given to a human",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn create(
    State(s): State<AppState>,
    Writer(admin): Writer,
    JsonBody(req): JsonBody<CreateIdentity>,
) -> Result<Response, Problem> {
    let identity = s
        .engine
        .create_identity(&admin, req.into_command()?)
        .await?;
    let url = location("/v1/identities", identity.id.as_str());
    Ok(created(url, IdentityBody::from(identity)))
}

/// Lists identities by id, filtered, one page at a time.
#[utoipa::path(
    get, path = "/v1/identities", tag = "identities", operation_id = "list_identities",
    params(ListIdentities),
    responses((status = 200, description = "one page of identities", body = IdentityPage)),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(s): State<AppState>,
    Reader(_): Reader,
    QueryParams(query): QueryParams<ListIdentities>,
) -> Result<Json<IdentityPage>, Problem> {
    let (filter, cursor, limit) = query.into_command()?;
    let page = s.engine.identities(&filter, cursor.as_ref(), limit).await?;
    Ok(Json(page.into()))
}

/// Reads one identity.
#[utoipa::path(
    get, path = "/v1/identities/{id}", tag = "identities", operation_id = "show_identity",
    params(("id" = schema::IdentityId, Path, description = "identity id, percent-encoded in the path")),
    responses(
        (status = 200, description = "the identity", body = IdentityBody),
        (status = 404, description = "no such identity", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn show(
    State(s): State<AppState>,
    Reader(_): Reader,
    PathId(id): PathId<IdentityId>,
) -> Result<Json<IdentityBody>, Problem> {
    Ok(Json(s.engine.identity(&id).await?.into()))
}

/// Replaces an identity's environment and/or attributes.
#[utoipa::path(
    patch, path = "/v1/identities/{id}", tag = "identities", operation_id = "update_identity",
    params(("id" = schema::IdentityId, Path, description = "identity id, percent-encoded in the path")),
    request_body = UpdateIdentity,
    responses(
        (status = 200, description = "the updated identity", body = IdentityBody),
        (status = 404, description = "no such identity", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the identity is decommissioned; its record is frozen",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn update(
    State(s): State<AppState>,
    Writer(admin): Writer,
    PathId(id): PathId<IdentityId>,
    JsonBody(req): JsonBody<UpdateIdentity>,
) -> Result<Json<IdentityBody>, Problem> {
    let identity = s
        .engine
        .update_identity(&admin, &id, req.into_command()?)
        .await?;
    Ok(Json(identity.into()))
}

/// Moves an identity through its lifecycle; disabling or decommissioning a
/// human marks what it owns as orphaned.
#[utoipa::path(
    post, path = "/v1/identities/{id}/status", tag = "identities", operation_id = "set_identity_status",
    params(("id" = schema::IdentityId, Path, description = "identity id, percent-encoded in the path")),
    request_body = SetStatus,
    responses(
        (status = 200, description = "the identity in its new status", body = IdentityBody),
        (status = 404, description = "no such identity", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the transition is not allowed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn set_status(
    State(s): State<AppState>,
    Writer(admin): Writer,
    PathId(id): PathId<IdentityId>,
    JsonBody(req): JsonBody<SetStatus>,
) -> Result<Json<IdentityBody>, Problem> {
    let (status, reason) = req.into_command()?;
    let identity = s.engine.set_status(&admin, &id, status, reason).await?;
    Ok(Json(identity.into()))
}
