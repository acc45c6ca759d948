//! `/v1/identities/{id}/keys`: public keys an agent or service signs its
//! `private_key_jwt` client assertions with (RFC 7523 §2.2).

use super::AppState;
use super::extract::{JsonBody, PathId, Reader, Writer};
use crate::problem::Problem;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use handoff_core::{ClientKey, IdentityId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Body of `POST /v1/identities/{id}/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddClientKey {
    /// The public JWK (RFC 7517): OKP Ed25519, EC P-256/384 or RSA; no private members.
    #[schema(value_type = Object)]
    pub(crate) jwk: Value,
}

/// A registered key.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ClientKeyBody {
    /// Its key id (the JWK's `kid`, or its RFC 7638 thumbprint).
    pub(crate) kid: String,
    /// The public JWK.
    #[schema(value_type = Object)]
    pub(crate) jwk: Value,
    /// When it was registered.
    #[schema(format = DateTime)]
    pub(crate) created_at: String,
    /// When it was revoked.
    #[schema(format = DateTime)]
    pub(crate) revoked_at: Option<String>,
}

impl From<ClientKey> for ClientKeyBody {
    fn from(k: ClientKey) -> Self {
        Self {
            jwk: serde_json::from_str(&k.jwk).unwrap_or(Value::Null),
            kid: k.kid,
            created_at: crate::wire::time(k.created_at),
            revoked_at: k.revoked_at.map(crate::wire::time),
        }
    }
}

/// Every key of an identity.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ClientKeyList {
    /// Oldest first, revoked ones included.
    pub(crate) keys: Vec<ClientKeyBody>,
}

/// Registers a public key for `private_key_jwt`.
#[utoipa::path(
    post, path = "/v1/identities/{id}/keys", tag = "delegations", operation_id = "add_client_key",
    params(("id" = crate::schema::NonHumanId, Path, description = "the agent or service")),
    request_body = AddClientKey,
    responses(
        (status = 201, description = "the key", body = ClientKeyBody),
        (status = 404, description = "no such identity", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "a key with this id exists", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn add(
    State(s): State<AppState>,
    Writer(admin): Writer,
    PathId(id): PathId<IdentityId>,
    JsonBody(req): JsonBody<AddClientKey>,
) -> Result<(StatusCode, Json<ClientKeyBody>), Problem> {
    let key = s.engine.add_client_key(&admin, &id, req.jwk).await?;
    Ok((StatusCode::CREATED, Json(key.into())))
}

/// Lists an identity's keys.
#[utoipa::path(
    get, path = "/v1/identities/{id}/keys", tag = "delegations", operation_id = "list_client_keys",
    params(("id" = crate::schema::IdentityId, Path, description = "the identity")),
    responses(
        (status = 200, description = "its keys", body = ClientKeyList),
        (status = 404, description = "no such identity", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(s): State<AppState>,
    Reader(_): Reader,
    PathId(id): PathId<IdentityId>,
) -> Result<Json<ClientKeyList>, Problem> {
    let keys = s.engine.list_client_keys(&id).await?;
    Ok(Json(ClientKeyList {
        keys: keys.into_iter().map(ClientKeyBody::from).collect(),
    }))
}

/// Revokes a key: assertions signed with it no longer authenticate.
#[utoipa::path(
    post, path = "/v1/identities/{id}/keys/{kid}/revoke", tag = "delegations", operation_id = "revoke_client_key",
    params(
        ("id" = crate::schema::IdentityId, Path, description = "the identity"),
        ("kid" = crate::schema::KeyId, Path, description = "the key id"),
    ),
    responses(
        (status = 204, description = "revoked"),
        (status = 404, description = "no such key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "already revoked", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn revoke(
    State(s): State<AppState>,
    Writer(admin): Writer,
    Path((id, kid)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let id = IdentityId::parse(&id)?;
    s.engine.revoke_client_key(&admin, &id, &kid).await?;
    Ok(StatusCode::NO_CONTENT)
}
