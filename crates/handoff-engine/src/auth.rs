//! Authentication of bearer secrets, and who an action is attributed to.

use crate::{Engine, EngineError};
use handoff_core::{
    AdminToken, AdminTokenId, Credential, CredentialId, Identity, Presented, Role, SecretKind,
    Status,
};

/// Who a change is attributed to in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The server itself (bootstrap, start-up).
    System,
    /// An admin token.
    Token(AdminTokenId),
    /// A credential of an agent or service.
    Credential(CredentialId),
    /// An agent or service that authenticated with a signed assertion
    /// (`private_key_jwt`).
    Client(handoff_core::IdentityId),
    /// A caller of an access evaluation API left open by configuration
    /// (no token was presented).
    Anonymous,
}

impl Actor {
    /// The audit log's `actor` field.
    pub fn audit_name(&self) -> String {
        match self {
            Self::System => "system".to_owned(),
            Self::Token(id) => format!("token:{id}"),
            Self::Credential(id) => format!("credential:{id}"),
            Self::Client(id) => format!("client:{id}"),
            Self::Anonymous => "anonymous".to_owned(),
        }
    }
}

/// An authenticated admin-API caller: proof that a token was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Admin {
    /// Who, for the audit log.
    pub actor: Actor,
    /// What it may do.
    pub role: Role,
}

impl Admin {
    /// The server acting on its own behalf (bootstrap).
    pub fn system() -> Self {
        Self {
            actor: Actor::System,
            role: Role::Admin,
        }
    }

    /// Fails unless this caller may change state.
    pub fn require_write(&self) -> Result<(), EngineError> {
        if self.role.may_write() {
            Ok(())
        } else {
            Err(EngineError::Forbidden("this token's role is read-only"))
        }
    }
}

/// Whoever presented a valid secret.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "one short-lived value per request, moved a handful of times; a box buys nothing"
)]
pub enum Authenticated {
    /// An admin token.
    AdminToken(AdminToken),
    /// A credential of an active agent or service.
    Credential {
        /// The credential.
        credential: Credential,
        /// Its identity.
        identity: Identity,
    },
}

/// How often `last_used_at` is written for one credential, at most.
const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

const REJECTED: &str = "invalid or expired token";

impl Engine {
    /// Checks an admin token for the admin API.
    pub async fn authenticate_admin(&self, secret: &str) -> Result<Admin, EngineError> {
        match self.authenticate(secret).await? {
            Authenticated::AdminToken(t) if !t.role.may_administer() => Err(
                EngineError::Forbidden("this token may only call the access evaluation api"),
            ),
            Authenticated::AdminToken(t) => Ok(Admin {
                actor: Actor::Token(t.id),
                role: t.role,
            }),
            Authenticated::Credential { .. } => Err(EngineError::Forbidden(
                "a credential cannot use the admin api; use an admin token",
            )),
        }
    }

    /// Checks a caller of the access evaluation (AuthZEN) API: an admin
    /// token with the `pdp` or `admin` role, or the credential of an active
    /// agent or service.
    pub async fn authenticate_evaluator(&self, secret: &str) -> Result<Actor, EngineError> {
        match self.authenticate(secret).await? {
            Authenticated::AdminToken(t) if t.role.may_evaluate() => Ok(Actor::Token(t.id)),
            Authenticated::AdminToken(_) => Err(EngineError::Forbidden(
                "this token's role may not ask for access decisions; use a pdp token",
            )),
            Authenticated::Credential { credential, .. } => Ok(Actor::Credential(credential.id)),
        }
    }

    /// Checks any bearer secret: an admin token, or a credential whose
    /// identity is active. Every failure looks the same to the caller.
    pub async fn authenticate(&self, secret: &str) -> Result<Authenticated, EngineError> {
        let presented =
            Presented::parse(secret).map_err(|_| EngineError::Unauthenticated(REJECTED))?;
        let now = self.clock.now();
        match presented.kind {
            SecretKind::AdminToken => {
                let id = AdminTokenId::parse(&presented.record_id())
                    .map_err(|_| EngineError::Unauthenticated(REJECTED))?;
                let token = self.store.admin_token(&id).await?;
                match token {
                    Some(t) if self.keys.secret_matches(secret, &t.hash) && t.usable(now) => {
                        Ok(Authenticated::AdminToken(t))
                    }
                    _ => Err(EngineError::Unauthenticated(REJECTED)),
                }
            }
            SecretKind::Credential => {
                let id = CredentialId::parse(&presented.record_id())
                    .map_err(|_| EngineError::Unauthenticated(REJECTED))?;
                let Some(credential) = self.store.credential(&id).await? else {
                    return Err(EngineError::Unauthenticated(REJECTED));
                };
                if !self.keys.secret_matches(secret, &credential.hash) || !credential.usable(now) {
                    return Err(EngineError::Unauthenticated(REJECTED));
                }
                let identity = self.store.identity(&credential.identity).await?;
                let Some(identity) = identity.filter(|i| i.status == Status::Active) else {
                    return Err(EngineError::Unauthenticated(REJECTED));
                };
                let stale = credential
                    .last_used_at
                    .is_none_or(|t| now - t >= TOUCH_EVERY);
                let mut credential = credential;
                if stale {
                    if let Err(e) = self.store.touch_credential(&credential.id, now).await {
                        tracing::warn!(error = %e, credential = %credential.id, "could not record credential use");
                    } else {
                        credential.last_used_at = Some(now);
                    }
                }
                Ok(Authenticated::Credential {
                    credential,
                    identity,
                })
            }
        }
    }
}
