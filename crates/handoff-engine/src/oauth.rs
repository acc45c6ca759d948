//! OAuth errors and client authentication at the token endpoint.
//!
//! Agents and services are OAuth clients whose `client_id` is their identity
//! id. They authenticate with a credential (`client_secret_basic`,
//! `client_secret_post`) or with a signed assertion (`private_key_jwt`,
//! RFC 7523 §2.2) checked against the public keys registered on the
//! identity. Every failure is the same `invalid_client` to the caller
//! (RFC 6749 §5.2) and an audit record for the operator.

use crate::auth::Actor;
use crate::jwt::verify_assertion;
use crate::{AppendError, Engine, EngineError};
use handoff_audit::{Draft, Outcome};
use handoff_core::{CredentialId, Identity, IdentityId, Kind, Presented, SecretKind, Status};
use handoff_store::{Change, Write};
use serde_json::json;

/// An OAuth error response (RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 8693 §2.2.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// The registered error code (`invalid_request`, `invalid_client`, ...).
    pub code: &'static str,
    /// A human-readable description that names the rule.
    pub description: String,
}

impl OAuthError {
    /// An error with `code`.
    pub fn new(code: &'static str, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description)
    }

    /// `invalid_client`: the client could not be authenticated.
    pub fn invalid_client() -> Self {
        Self::new("invalid_client", "client authentication failed")
    }

    /// The HTTP status: 401 for `invalid_client`, 503 when the server cannot
    /// record the request, 500 for `server_error`, 400 otherwise.
    pub fn status(&self) -> u16 {
        match self.code {
            "invalid_client" => 401,
            "temporarily_unavailable" => 503,
            "server_error" => 500,
            _ => 400,
        }
    }
}

impl From<EngineError> for OAuthError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::AuditUnavailable | EngineError::Unavailable(_) => Self::new(
                "temporarily_unavailable",
                "the server cannot record this request right now; retry later",
            ),
            EngineError::Invalid(i) => Self::invalid_request(i.message),
            EngineError::NotFound(m) | EngineError::Conflict(m) => Self::invalid_request(m),
            EngineError::Unauthenticated(_) => Self::invalid_client(),
            EngineError::Forbidden(m) => Self::new("unauthorized_client", m),
            other => {
                tracing::error!(error = %other, "token endpoint failure");
                Self::new("server_error", "the request could not be completed")
            }
        }
    }
}

/// How a client proved who it is. `Debug` never shows the secret or the
/// assertion.
#[derive(Clone, Copy)]
pub enum ClientAuth<'a> {
    /// A credential secret, from HTTP Basic or the `client_secret` parameter;
    /// `client_id`, when sent, must be the credential's identity.
    Secret {
        /// The claimed client id.
        client_id: Option<&'a str>,
        /// The secret.
        secret: &'a str,
    },
    /// A `private_key_jwt` assertion (RFC 7523 §2.2).
    Assertion {
        /// The claimed client id (required with an assertion).
        client_id: Option<&'a str>,
        /// The signed JWT.
        assertion: &'a str,
    },
    /// No client authentication at all: always refused, and audited.
    Missing,
}

/// An authenticated agent or service.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Client {
    /// Who.
    pub identity: Identity,
    /// The credential used, when it was a secret.
    pub credential: Option<CredentialId>,
}

impl Client {
    /// The audit log's actor for this client.
    pub fn actor(&self) -> Actor {
        match &self.credential {
            Some(c) => Actor::Credential(c.clone()),
            None => Actor::Client(self.identity.id.clone()),
        }
    }
}

impl std::fmt::Debug for ClientAuth<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret { client_id, .. } => f
                .debug_struct("Secret")
                .field("client_id", client_id)
                .finish_non_exhaustive(),
            Self::Assertion { client_id, .. } => f
                .debug_struct("Assertion")
                .field("client_id", client_id)
                .finish_non_exhaustive(),
            Self::Missing => f.write_str("Missing"),
        }
    }
}

impl Engine {
    /// Authenticates a client of the token endpoint. Failures are audited
    /// (`client.authenticate`) and all look alike to the caller.
    pub async fn authenticate_client(&self, auth: ClientAuth<'_>) -> Result<Client, OAuthError> {
        let (claimed, method) = match auth {
            ClientAuth::Secret { client_id, .. } => (client_id, "client_secret"),
            ClientAuth::Assertion { client_id, .. } => (client_id, "private_key_jwt"),
            ClientAuth::Missing => (None, "none"),
        };
        match self.try_client(auth).await {
            Ok(client) => Ok(client),
            Err(ClientFailure::Engine(e)) => Err(e.into()),
            Err(ClientFailure::Rejected(reason)) => {
                let details = json!({ "method": method, "reason": reason });
                let target = claimed
                    .map(handoff_core::identity::shorten)
                    .unwrap_or_else(|| "unknown".into());
                self.record(
                    Actor::Anonymous,
                    "client.authenticate",
                    &target,
                    Outcome::Failure,
                    details,
                )
                .await?;
                Err(OAuthError::invalid_client())
            }
        }
    }

    async fn try_client(&self, auth: ClientAuth<'_>) -> Result<Client, ClientFailure> {
        match auth {
            ClientAuth::Missing => Err(ClientFailure::Rejected("no client authentication")),
            ClientAuth::Secret { client_id, secret } => {
                let presented = Presented::parse(secret)
                    .map_err(|_| ClientFailure::Rejected("malformed secret"))?;
                if presented.kind != SecretKind::Credential {
                    return Err(ClientFailure::Rejected("not a credential"));
                }
                let found = self.authenticate(secret).await.map_err(|e| match e {
                    EngineError::Unauthenticated(_) => ClientFailure::Rejected("invalid secret"),
                    other => ClientFailure::Engine(other),
                })?;
                let crate::Authenticated::Credential {
                    credential,
                    identity,
                } = found
                else {
                    return Err(ClientFailure::Rejected("not a credential"));
                };
                if client_id.is_some_and(|c| c != identity.id.as_str()) {
                    return Err(ClientFailure::Rejected(
                        "client_id does not match the secret",
                    ));
                }
                client_of(identity, Some(credential.id))
            }
            ClientAuth::Assertion {
                client_id,
                assertion,
            } => {
                let id = client_id
                    .and_then(|c| IdentityId::parse(c).ok())
                    .ok_or(ClientFailure::Rejected("missing or invalid client_id"))?;
                let identity = self
                    .store
                    .identity(&id)
                    .await
                    .map_err(|e| ClientFailure::Engine(e.into()))?
                    .filter(|i| i.status == Status::Active)
                    .ok_or(ClientFailure::Rejected("unknown or inactive client"))?;
                let keys = self.client_keys(&id).await.map_err(ClientFailure::Engine)?;
                let now = self.clock.now();
                let audiences = self.delegation.assertion_audiences();
                let checked = verify_assertion(assertion, id.as_str(), &keys, &audiences, now)
                    .map_err(|_| ClientFailure::Rejected("invalid assertion"))?;
                let first = self
                    .store
                    .remember_assertion(&id, &checked.jti, checked.expires_at, now)
                    .await
                    .map_err(|e| ClientFailure::Engine(e.into()))?;
                if !first {
                    return Err(ClientFailure::Rejected("assertion replayed (jti reused)"));
                }
                client_of(identity, None)
            }
        }
    }

    /// Writes one audit record with no state change and waits for it.
    pub(crate) async fn record(
        &self,
        actor: Actor,
        kind: &str,
        target: &str,
        outcome: Outcome,
        details: serde_json::Value,
    ) -> Result<(), EngineError> {
        self.append(actor, Write::Nothing, kind, target, outcome, details)
            .await
    }

    /// Commits `write` with its audit record and waits for it.
    pub(crate) async fn append(
        &self,
        actor: Actor,
        write: Write,
        kind: &str,
        target: &str,
        outcome: Outcome,
        details: serde_json::Value,
    ) -> Result<(), EngineError> {
        let change = Change {
            write,
            record: Draft {
                time: self.clock.now(),
                kind: kind.to_owned(),
                actor: actor.audit_name(),
                target: target.to_owned(),
                outcome,
                details,
            },
        };
        self.appender
            .submit(change)
            .await
            .map(|_| ())
            .map_err(|e| match e {
                AppendError::Write(e) => EngineError::from(e),
                AppendError::Unavailable => EngineError::AuditUnavailable,
            })
    }
}

enum ClientFailure {
    Rejected(&'static str),
    Engine(EngineError),
}

fn client_of(
    identity: Identity,
    credential: Option<CredentialId>,
) -> Result<Client, ClientFailure> {
    if identity.kind() == Kind::Human {
        return Err(ClientFailure::Rejected("humans are not clients"));
    }
    Ok(Client {
        identity,
        credential,
    })
}
