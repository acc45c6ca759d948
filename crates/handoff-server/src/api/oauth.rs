//! The OAuth 2.0 endpoints: token (client credentials and RFC 8693 token
//! exchange), introspection (RFC 7662), revocation (RFC 7009), server
//! metadata (RFC 8414) and the signing keys (JWKS).
//!
//! Handlers parse the form and the client's authentication and hand the
//! rest to the engine, which decides, records and signs.

use super::AppState;
use super::extract::Bearer;
use crate::oauth_wire::{
    ClientInput, Form, JWT_BEARER_ASSERTION, OAuthErrorBody, OAuthProblem, TokenResponse, no_store,
};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use handoff_engine::delegation::{TOKEN_EXCHANGE, token_type};
use handoff_engine::{Actor, Authenticated, Client, ClientAuth, Exchange, OAuthError, Revoker};
use serde_json::{Value, json};

/// RFC 6749 §4.4 client credentials and RFC 8693 §2.1 token exchange.
#[utoipa::path(
    post, path = "/oauth2/token", tag = "oauth", operation_id = "token",
    request_body(content = crate::oauth_wire::TokenForm, content_type = "application/x-www-form-urlencoded",
        description = "client authentication by HTTP Basic, client_secret or client_assertion; audience and resource may repeat"),
    responses(
        (status = 200, description = "the issued token", body = TokenResponse),
        (status = 400, description = "the grant was refused", body = OAuthErrorBody),
        (status = 401, description = "client authentication failed", body = OAuthErrorBody),
    ),
    security(("basic" = []), ())
)]
pub(crate) async fn token(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthProblem> {
    let form = Form::parse(&headers, &body)?;
    let grant = form.require("grant_type")?;
    if grant != "client_credentials" && grant != TOKEN_EXCHANGE {
        return Err(OAuthError::new(
            "unsupported_grant_type",
            format!(
                "grant_type \"{}\" is not supported; use client_credentials or {TOKEN_EXCHANGE}",
                handoff_core::identity::shorten(grant)
            ),
        )
        .into());
    }
    let client = authenticate(&s, &headers, &form).await?;
    let mut audience: Vec<String> = form.all("audience").to_vec();
    audience.extend(form.all("resource").iter().cloned());
    let lifetime = form
        .get("requested_lifetime")
        .map(|l| {
            l.parse::<i64>().map_err(|_| {
                OAuthError::invalid_request("requested_lifetime must be a whole number of seconds")
            })
        })
        .transpose()?;
    let issued = if grant == "client_credentials" {
        s.engine
            .client_credentials(&client, form.get("scope"), &audience, lifetime)
            .await?
    } else {
        let exchange = Exchange {
            subject_token: form.require("subject_token")?.to_owned(),
            subject_token_type: form.require("subject_token_type")?.to_owned(),
            actor_token: form.get("actor_token").map(ToOwned::to_owned),
            actor_token_type: form.get("actor_token_type").map(ToOwned::to_owned),
            scope: form.get("scope").map(ToOwned::to_owned),
            audience,
            lifetime,
            requested_token_type: form.get("requested_token_type").map(ToOwned::to_owned),
        };
        s.engine.exchange(&client, exchange).await?
    };
    Ok((no_store(), Json(TokenResponse::from(issued))).into_response())
}

async fn authenticate(
    s: &AppState,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Client, OAuthError> {
    match ClientInput::read(headers, form)? {
        Some(input) => s.engine.authenticate_client(input.auth()).await,
        None => s.engine.authenticate_client(ClientAuth::Missing).await,
    }
}

/// Who calls introspection or revocation: a client, or a bearer token.
enum Caller {
    Client(Client),
    Bearer(Authenticated),
}

async fn caller(
    s: &AppState,
    parts_headers: &HeaderMap,
    form: &Form,
) -> Result<Caller, OAuthError> {
    if let Some(input) = ClientInput::read(parts_headers, form)? {
        return Ok(Caller::Client(
            s.engine.authenticate_client(input.auth()).await?,
        ));
    }
    let mut parts = axum::http::Request::new(()).into_parts().0;
    parts.headers = parts_headers.clone();
    let Some(Bearer(secret)) = bearer(&mut parts).await else {
        // Neither a client nor a bearer token: refused, and audited.
        return Err(
            match s.engine.authenticate_client(ClientAuth::Missing).await {
                Ok(_) => OAuthError::invalid_client(),
                Err(e) => e,
            },
        );
    };
    let who = s
        .engine
        .authenticate(&secret)
        .await
        .map_err(|_| OAuthError::invalid_client())?;
    Ok(Caller::Bearer(who))
}

async fn bearer(parts: &mut Parts) -> Option<Bearer> {
    Bearer::from_request_parts(parts, &()).await.ok()
}

/// RFC 7662 token introspection: `active` only if the whole chain is live.
#[utoipa::path(
    post, path = "/oauth2/introspect", tag = "oauth", operation_id = "introspect",
    request_body(content = crate::oauth_wire::TokenParam, content_type = "application/x-www-form-urlencoded",
        description = "the token; the caller authenticates as a client or with a bearer token"),
    responses(
        (status = 200, description = "the token's state (RFC 7662 §2.2)", body = Object),
        (status = 400, description = "malformed request", body = OAuthErrorBody),
        (status = 401, description = "the caller is not authenticated", body = OAuthErrorBody),
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub(crate) async fn introspect(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthProblem> {
    let form = Form::parse(&headers, &body)?;
    let who = caller(&s, &headers, &form).await?;
    let actor = match &who {
        Caller::Client(c) => c.actor(),
        Caller::Bearer(Authenticated::AdminToken(t))
            if t.role.may_evaluate() || t.role == handoff_core::Role::Auditor =>
        {
            Actor::Token(t.id.clone())
        }
        Caller::Bearer(Authenticated::AdminToken(_)) => {
            return Err(
                OAuthError::new("unauthorized_client", "this token may not introspect").into(),
            );
        }
        Caller::Bearer(Authenticated::Credential { credential, .. }) => {
            Actor::Credential(credential.id.clone())
        }
    };
    let token = form.require("token")?;
    let found = s.engine.introspect(&actor, token).await?;
    let body = match found {
        None => json!({ "active": false }),
        Some(claims) => {
            let mut v = serde_json::to_value(&claims).unwrap_or_else(|_| json!({}));
            if let Value::Object(map) = &mut v {
                map.insert("active".into(), Value::Bool(true));
                map.insert("token_type".into(), Value::String("Bearer".into()));
            }
            v
        }
    };
    Ok((no_store(), Json(body)).into_response())
}

/// RFC 7009 revocation: the token's delegation and every descendant.
#[utoipa::path(
    post, path = "/oauth2/revoke", tag = "oauth", operation_id = "revoke",
    request_body(content = crate::oauth_wire::TokenParam, content_type = "application/x-www-form-urlencoded",
        description = "the token; the caller authenticates as a client or with a bearer token"),
    responses(
        (status = 200, description = "revoked, or the token was already invalid (RFC 7009 §2.2)"),
        (status = 400, description = "malformed request, or the caller is not on the token's chain", body = OAuthErrorBody),
        (status = 401, description = "the caller is not authenticated", body = OAuthErrorBody),
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub(crate) async fn revoke(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthProblem> {
    let form = Form::parse(&headers, &body)?;
    let who = caller(&s, &headers, &form).await?;
    let token = form.require("token")?;
    match &who {
        Caller::Client(client) => {
            s.engine
                .revoke_token(Revoker::Client(client), token)
                .await?
        }
        Caller::Bearer(Authenticated::AdminToken(t)) => {
            let admin = handoff_engine::Admin {
                actor: Actor::Token(t.id.clone()),
                role: t.role,
            };
            s.engine.revoke_token(Revoker::Admin(&admin), token).await?;
        }
        Caller::Bearer(Authenticated::Credential {
            credential,
            identity,
        }) => {
            let client = Client {
                identity: identity.clone(),
                credential: Some(credential.id.clone()),
            };
            s.engine
                .revoke_token(Revoker::Client(&client), token)
                .await?;
        }
    }
    Ok((StatusCode::OK, no_store()).into_response())
}

/// Algorithms accepted for `private_key_jwt` client assertions.
const ASSERTION_ALGORITHMS: [&str; 9] = [
    "EdDSA", "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
];

/// RFC 8414 authorization server metadata.
#[utoipa::path(
    get, path = "/.well-known/oauth-authorization-server", tag = "oauth", operation_id = "oauth_metadata",
    responses((status = 200, description = "RFC 8414 §2 metadata", body = Object))
)]
pub(crate) async fn metadata(State(s): State<AppState>) -> Response {
    let settings = s.engine.delegation_settings();
    let issuer = settings.issuer.as_str();
    let auth_methods = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ];
    let body = json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "grant_types_supported": ["client_credentials", TOKEN_EXCHANGE],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": auth_methods,
        // RFC 8414 §2: required wherever private_key_jwt is listed.
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "bearer"],
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "client_assertion_types_supported": [JWT_BEARER_ASSERTION],
        "token_types_supported": [token_type::ACCESS_TOKEN, token_type::JWT, token_type::ID_TOKEN],
    });
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// The token-signing public keys (RFC 7517 JWK Set).
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "oauth", operation_id = "jwks",
    responses((status = 200, description = "every key whose tokens may still be valid", body = Object))
)]
pub(crate) async fn jwks(State(s): State<AppState>) -> Response {
    let mut response = Json(s.engine.keys().tokens().jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
