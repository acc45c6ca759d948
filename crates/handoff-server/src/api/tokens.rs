//! Admin tokens (create, list, read, revoke) and `/v1/whoami`, which
//! answers for any bearer secret: admin token or credential.

use super::extract::{Bearer, JsonBody, PathId, Reader, Writer};
use super::{AppState, created, location};
use crate::problem::Problem;
use crate::schema;
use crate::wire::{AdminTokenBody, AdminTokenList, CreateAdminToken, CreatedAdminToken, Whoami};
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use handoff_core::AdminTokenId;

/// Creates an admin token. The secret is in this answer and nowhere else.
#[utoipa::path(
    post, path = "/v1/admin-tokens", tag = "admin-tokens", operation_id = "create_admin_token",
    request_body = CreateAdminToken,
    responses(
        (status = 201, description = "the token and its secret", body = CreatedAdminToken,
            headers(("location" = String, description = "the token's url")),
            links(
                ("show" = (operation_id = "show_admin_token", parameters(("token_id" = "$response.body#/token/id")))),
                ("revoke" = (operation_id = "revoke_admin_token", parameters(("token_id" = "$response.body#/token/id")))),
            )),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn create(
    State(s): State<AppState>,
    Writer(admin): Writer,
    JsonBody(req): JsonBody<CreateAdminToken>,
) -> Result<Response, Problem> {
    let (name, role, expires_in) = req.into_command()?;
    let (token, secret) = s
        .engine
        .create_admin_token(&admin, name, role, expires_in)
        .await?;
    let url = location("/v1/admin-tokens", token.id.as_str());
    let body = CreatedAdminToken {
        token: token.into(),
        secret: secret.expose().to_owned(),
    };
    Ok(created(url, body))
}

/// Lists every admin token, oldest first.
#[utoipa::path(
    get, path = "/v1/admin-tokens", tag = "admin-tokens", operation_id = "list_admin_tokens",
    responses((status = 200, description = "the tokens", body = AdminTokenList)),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(s): State<AppState>,
    Reader(_): Reader,
) -> Result<Json<AdminTokenList>, Problem> {
    let items = s.engine.admin_tokens().await?;
    Ok(Json(AdminTokenList {
        items: items.into_iter().map(AdminTokenBody::from).collect(),
    }))
}

/// Reads one admin token's metadata.
#[utoipa::path(
    get, path = "/v1/admin-tokens/{token_id}", tag = "admin-tokens", operation_id = "show_admin_token",
    params(("token_id" = schema::AdminTokenId, Path, description = "the admin token's id")),
    responses(
        (status = 200, description = "the token", body = AdminTokenBody),
        (status = 404, description = "no such token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn show(
    State(s): State<AppState>,
    Reader(_): Reader,
    PathId(id): PathId<AdminTokenId>,
) -> Result<Json<AdminTokenBody>, Problem> {
    Ok(Json(s.engine.admin_token(&id).await?.into()))
}

/// Revokes an admin token; the last usable admin-role token cannot be revoked.
#[utoipa::path(
    post, path = "/v1/admin-tokens/{token_id}/revoke", tag = "admin-tokens", operation_id = "revoke_admin_token",
    params(("token_id" = schema::AdminTokenId, Path, description = "the admin token's id")),
    responses(
        (status = 200, description = "the revoked token", body = AdminTokenBody),
        (status = 404, description = "no such token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "already revoked, or the last usable admin token",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn revoke(
    State(s): State<AppState>,
    Writer(admin): Writer,
    PathId(id): PathId<AdminTokenId>,
) -> Result<Json<AdminTokenBody>, Problem> {
    Ok(Json(s.engine.revoke_admin_token(&admin, &id).await?.into()))
}

/// Says whom the bearer secret belongs to: an admin token, or a credential
/// that is unrevoked, unexpired and whose identity is active.
#[utoipa::path(
    get, path = "/v1/whoami", tag = "admin-tokens", operation_id = "whoami",
    responses((status = 200, description = "the authenticated caller", body = Whoami)),
    security(("bearer" = []))
)]
pub(crate) async fn whoami(
    State(s): State<AppState>,
    Bearer(secret): Bearer,
) -> Result<Json<Whoami>, Problem> {
    Ok(Json(s.engine.authenticate(&secret).await?.into()))
}
