//! `/v1/delegations`, `/v1/lineages`: who handed what to whom, and
//! revocation with its blast radius; `/v1/keys`: token-signing keys;
//! `/v1/dev/human-tokens`: development tokens (only with `--dev`).

use super::AppState;
use super::extract::{JsonBody, PathId, QueryParams, Reader, Writer};
use crate::delegation_wire::{
    BlastRadiusBody, DelegationBody, DelegationDetail, DelegationPage, KeyBody, KeyList,
    LineageBody, ListDelegations, MintHuman, MintedToken, RevokeDelegation, Rotated,
};
use crate::problem::{Code, Problem};
use axum::Json;
use axum::extract::State;
use handoff_core::{DelegationId, IdentityId, Invalid, Scope};

/// One delegation with its chain and whether that chain is live now.
#[utoipa::path(
    get, path = "/v1/delegations/{id}", tag = "delegations", operation_id = "show_delegation",
    params(("id" = crate::schema::DelegationId, Path, description = "the delegation id")),
    responses(
        (status = 200, description = "the delegation and its chain", body = DelegationDetail),
        (status = 404, description = "no such delegation", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn show(
    State(s): State<AppState>,
    Reader(_): Reader,
    PathId(id): PathId<DelegationId>,
) -> Result<Json<DelegationDetail>, Problem> {
    let chain = s.engine.delegation_chain(&id).await?;
    let state = s.engine.chain_state(&chain).await;
    let now = s.engine.clock().now();
    let Some(leaf) = chain.last().cloned() else {
        return Err(Problem::new(Code::NotFound, "no such delegation"));
    };
    Ok(Json(DelegationDetail {
        delegation: DelegationBody::new(leaf, now),
        chain: chain
            .into_iter()
            .map(|d| DelegationBody::new(d, now))
            .collect(),
        live: state.is_ok(),
        reason: state.err(),
    }))
}

/// Lists delegations by id, optionally those of one identity or only live ones.
#[utoipa::path(
    get, path = "/v1/delegations", tag = "delegations", operation_id = "list_delegations",
    params(ListDelegations),
    responses((status = 200, description = "one page of delegations", body = DelegationPage)),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(s): State<AppState>,
    Reader(_): Reader,
    QueryParams(query): QueryParams<ListDelegations>,
) -> Result<Json<DelegationPage>, Problem> {
    let now = s.engine.clock().now();
    let (filter, cursor, limit) = query.into_command(now)?;
    let page = s
        .engine
        .delegations(&filter, cursor.as_ref(), limit)
        .await?;
    Ok(Json(DelegationPage::new(page, now)))
}

/// A whole lineage tree by its root id (the tokens' `txn`).
#[utoipa::path(
    get, path = "/v1/lineages/{txn}", tag = "delegations", operation_id = "show_lineage",
    params(("txn" = crate::schema::DelegationId, Path, description = "the lineage root's id")),
    responses(
        (status = 200, description = "every delegation of the lineage", body = LineageBody),
        (status = 404, description = "no such lineage", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn lineage(
    State(s): State<AppState>,
    Reader(_): Reader,
    PathId(txn): PathId<DelegationId>,
) -> Result<Json<LineageBody>, Problem> {
    let all = s.engine.lineage(&txn).await?;
    let now = s.engine.clock().now();
    Ok(Json(LineageBody {
        lineage: txn.to_string(),
        delegations: all
            .into_iter()
            .map(|d| DelegationBody::new(d, now))
            .collect(),
    }))
}

/// Revokes a delegation and everything below it, or with `dry_run` only
/// reports who would lose access.
#[utoipa::path(
    post, path = "/v1/delegations/{id}/revoke", tag = "delegations", operation_id = "revoke_delegation",
    params(("id" = crate::schema::DelegationId, Path, description = "the delegation id")),
    request_body = RevokeDelegation,
    responses(
        (status = 200, description = "what lost (or would lose) access", body = BlastRadiusBody),
        (status = 404, description = "no such delegation", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn revoke(
    State(s): State<AppState>,
    Reader(admin): Reader,
    PathId(id): PathId<DelegationId>,
    JsonBody(req): JsonBody<RevokeDelegation>,
) -> Result<Json<BlastRadiusBody>, Problem> {
    let radius = s.engine.revoke_delegation(&admin, &id, req.dry_run).await?;
    let now = s.engine.clock().now();
    Ok(Json(BlastRadiusBody {
        root: radius.root.to_string(),
        dry_run: req.dry_run,
        delegations: radius
            .delegations
            .into_iter()
            .map(|d| DelegationBody::new(d, now))
            .collect(),
        identities: radius.identities.iter().map(ToString::to_string).collect(),
    }))
}

/// Development only: a token for a human from the dev issuer.
#[utoipa::path(
    post, path = "/v1/dev/human-tokens", tag = "delegations", operation_id = "mint_human_token",
    request_body = MintHuman,
    responses(
        (status = 201, description = "the token", body = MintedToken),
        (status = 403, description = "the server does not run with --dev", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "not an active human", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn mint_human(
    State(s): State<AppState>,
    Writer(admin): Writer,
    JsonBody(req): JsonBody<MintHuman>,
) -> Result<(axum::http::StatusCode, Json<MintedToken>), Problem> {
    if !s.engine.delegation_settings().dev {
        return Err(handoff_engine::EngineError::Forbidden(
            "minting human tokens needs a server started with --dev",
        )
        .into());
    }
    let human = IdentityId::parse(&req.human).map_err(|e| Invalid::new("human", e.message))?;
    let scope = Scope::parse(&req.scope)?;
    let token = s
        .engine
        .mint_human(&admin, &human, &scope, req.lifetime_seconds)
        .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(MintedToken {
            access_token: token,
            token_type: handoff_engine::delegation::token_type::JWT,
        }),
    ))
}

/// The token-signing keys.
#[utoipa::path(
    get, path = "/v1/keys", tag = "delegations", operation_id = "list_keys",
    responses((status = 200, description = "every published key", body = KeyList)),
    security(("bearer" = []))
)]
pub(crate) async fn keys(State(s): State<AppState>, Reader(_): Reader) -> Json<KeyList> {
    let tokens = s.engine.keys().tokens();
    let kids = tokens.kids();
    let signing = kids
        .iter()
        .rev()
        .find(|k| k.3.is_none())
        .map(|k| k.0.clone());
    Json(KeyList {
        keys: kids
            .into_iter()
            .map(|(kid, alg, created_at, retired_at)| KeyBody {
                signing: Some(&kid) == signing.as_ref(),
                kid,
                alg: alg.to_string(),
                created_at: crate::wire::time(created_at),
                retired_at: retired_at.map(crate::wire::time),
            })
            .collect(),
    })
}

/// Adds a signing key; older keys stay published until their tokens expire.
#[utoipa::path(
    post, path = "/v1/keys/rotate", tag = "delegations", operation_id = "rotate_keys",
    responses((status = 200, description = "the new signing key", body = Rotated)),
    security(("bearer" = []))
)]
pub(crate) async fn rotate(
    State(s): State<AppState>,
    Writer(admin): Writer,
) -> Result<Json<Rotated>, Problem> {
    let kid = s.engine.rotate_keys(&admin).await?;
    Ok(Json(Rotated { kid }))
}
