//! Credentials: issue (the secret is answered once), list, read, revoke.

use super::extract::{JsonBody, PathId, Reader, Writer};
use super::{AppState, created, location};
use crate::problem::Problem;
use crate::schema;
use crate::wire::{CredentialBody, CredentialList, IssueCredential, IssuedCredential};
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use handoff_core::{CredentialId, IdentityId};

/// Issues a credential to an active agent or service. The secret is in this
/// answer and nowhere else, ever.
#[utoipa::path(
    post, path = "/v1/identities/{id}/credentials", tag = "credentials", operation_id = "issue_credential",
    params(("id" = schema::NonHumanId, Path, description = "agent or service id, percent-encoded in the path")),
    request_body = IssueCredential,
    responses(
        (status = 201, description = "the credential and its secret", body = IssuedCredential,
            headers(("location" = String, description = "the credential's url")),
            links(
                ("show" = (operation_id = "show_credential", parameters(("credential_id" = "$response.body#/credential/id")))),
                ("revoke" = (operation_id = "revoke_credential", parameters(("credential_id" = "$response.body#/credential/id")))),
            )),
        (status = 404, description = "no such identity", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the identity is not active", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn issue(
    State(s): State<AppState>,
    Writer(admin): Writer,
    PathId(id): PathId<IdentityId>,
    JsonBody(req): JsonBody<IssueCredential>,
) -> Result<Response, Problem> {
    let description = req.description.unwrap_or_default();
    let (credential, secret) = s
        .engine
        .issue_credential(&admin, &id, description, req.expires_in)
        .await?;
    let url = location("/v1/credentials", credential.id.as_str());
    let body = IssuedCredential {
        credential: CredentialBody::new(credential, s.engine.clock().now()),
        secret: secret.expose().to_owned(),
    };
    Ok(created(url, body))
}

/// Lists an identity's credentials, newest first.
#[utoipa::path(
    get, path = "/v1/identities/{id}/credentials", tag = "credentials", operation_id = "list_credentials",
    params(("id" = schema::IdentityId, Path, description = "identity id, percent-encoded in the path")),
    responses(
        (status = 200, description = "the credentials", body = CredentialList),
        (status = 404, description = "no such identity", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(s): State<AppState>,
    Reader(_): Reader,
    PathId(id): PathId<IdentityId>,
) -> Result<Json<CredentialList>, Problem> {
    let now = s.engine.clock().now();
    let items = s.engine.credentials(&id).await?;
    let items = items
        .into_iter()
        .map(|c| CredentialBody::new(c, now))
        .collect();
    Ok(Json(CredentialList { items }))
}

/// Reads one credential's metadata.
#[utoipa::path(
    get, path = "/v1/credentials/{credential_id}", tag = "credentials", operation_id = "show_credential",
    params(("credential_id" = schema::CredentialId, Path, description = "the credential's id")),
    responses(
        (status = 200, description = "the credential", body = CredentialBody),
        (status = 404, description = "no such credential", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn show(
    State(s): State<AppState>,
    Reader(_): Reader,
    PathId(id): PathId<CredentialId>,
) -> Result<Json<CredentialBody>, Problem> {
    let credential = s.engine.credential(&id).await?;
    Ok(Json(CredentialBody::new(
        credential,
        s.engine.clock().now(),
    )))
}

/// Revokes a credential; it stops authenticating at once.
#[utoipa::path(
    post, path = "/v1/credentials/{credential_id}/revoke", tag = "credentials", operation_id = "revoke_credential",
    params(("credential_id" = schema::CredentialId, Path, description = "the credential's id")),
    responses(
        (status = 200, description = "the revoked credential", body = CredentialBody),
        (status = 404, description = "no such credential", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "already revoked", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn revoke(
    State(s): State<AppState>,
    Writer(admin): Writer,
    PathId(id): PathId<CredentialId>,
) -> Result<Json<CredentialBody>, Problem> {
    let credential = s.engine.revoke_credential(&admin, &id).await?;
    Ok(Json(CredentialBody::new(
        credential,
        s.engine.clock().now(),
    )))
}
