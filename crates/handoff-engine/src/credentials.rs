//! Credential use cases: issue (the secret is returned once), list, revoke.

use crate::inventory::not_found;
use crate::{Admin, Engine, EngineError};
use base64::Engine as _;
use handoff_core::credential::validate_description;
use handoff_core::secret::{self, SecretKind};
use handoff_core::{Credential, CredentialId, IdentityId, Invalid, Status};
use handoff_store::Write;
use serde_json::json;
use zeroize::Zeroizing;

/// Shortest lifetime a credential or token may be given, in seconds.
pub const MIN_TTL_SECONDS: i64 = 60;
/// Longest lifetime, in seconds (ten years).
pub const MAX_TTL_SECONDS: i64 = 10 * 366 * 24 * 3600;

/// A freshly made secret; shown once, wiped from memory when dropped.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// The secret string, to hand to the caller exactly once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Generates a secret of `kind`: returns (lookup part, whole secret).
pub(crate) fn generate(kind: SecretKind) -> Result<(String, Secret), EngineError> {
    let lookup = handoff_audit::hex::encode(crate::keys::random_bytes::<8>()?.as_ref());
    let random = Zeroizing::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(crate::keys::random_bytes::<32>()?.as_ref()),
    );
    let whole = Zeroizing::new(secret::compose(kind, &lookup, &random));
    Ok((lookup, Secret(whole)))
}

/// Validates an optional lifetime in seconds.
pub(crate) fn check_ttl(ttl: Option<i64>) -> Result<Option<chrono::TimeDelta>, EngineError> {
    match ttl {
        None => Ok(None),
        Some(s) if (MIN_TTL_SECONDS..=MAX_TTL_SECONDS).contains(&s) => {
            Ok(Some(chrono::TimeDelta::seconds(s)))
        }
        Some(_) => Err(Invalid::new(
            "expires_in",
            format!("expires_in must be between {MIN_TTL_SECONDS} and {MAX_TTL_SECONDS} seconds"),
        )
        .into()),
    }
}

impl Engine {
    /// Issues a credential to an active agent or service.
    pub async fn issue_credential(
        &self,
        admin: &Admin,
        identity: &IdentityId,
        description: String,
        expires_in: Option<i64>,
    ) -> Result<(Credential, Secret), EngineError> {
        admin.require_write()?;
        validate_description(&description)?;
        let ttl = check_ttl(expires_in)?;
        if !identity.kind().needs_owner() {
            return Err(Invalid::new(
                "identity",
                "only agents and services hold credentials; humans sign in through their identity provider",
            )
            .into());
        }
        let holder = self.identity(identity).await?;
        if holder.status != Status::Active {
            return Err(EngineError::Conflict(format!(
                "identity \"{identity}\" is {}; credentials are issued only to active identities",
                holder.status
            )));
        }
        let (lookup, secret) = generate(SecretKind::Credential)?;
        let id = CredentialId::parse(&format!("cred_{lookup}"))?;
        let now = self.clock.now();
        let credential = Credential {
            id,
            identity: identity.clone(),
            description,
            hash: self.keys.hash_secret(secret.expose()),
            created_at: now,
            expires_at: ttl.map(|t| now + t),
            last_used_at: None,
            revoked_at: None,
        };
        let details = json!({
            "identity": identity.as_str(),
            "description": credential.description,
            "expires_at": credential.expires_at,
            "secret": self.keys.redact(secret.expose()),
        });
        self.submit(
            admin,
            Write::IssueCredential(credential.clone()),
            "credential.issue",
            credential.id.as_str(),
            details,
            &format!("identity \"{identity}\""),
        )
        .await?;
        Ok((credential, secret))
    }

    /// One credential.
    pub async fn credential(&self, id: &CredentialId) -> Result<Credential, EngineError> {
        self.store
            .credential(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("credential \"{id}\" does not exist")))
    }

    /// Every credential of an identity, newest first.
    pub async fn credentials(&self, identity: &IdentityId) -> Result<Vec<Credential>, EngineError> {
        if self.store.identity(identity).await?.is_none() {
            return Err(not_found(identity));
        }
        Ok(self.store.credentials(identity).await?)
    }

    /// Revokes a credential; revoking one that is already revoked is a conflict.
    pub async fn revoke_credential(
        &self,
        admin: &Admin,
        id: &CredentialId,
    ) -> Result<Credential, EngineError> {
        admin.require_write()?;
        let current = self.credential(id).await?;
        if current.revoked_at.is_some() {
            return Err(EngineError::Conflict(format!(
                "credential \"{id}\" is already revoked"
            )));
        }
        let write = Write::RevokeCredential {
            id: id.clone(),
            at: self.clock.now(),
        };
        let details = json!({
            "identity": current.identity.as_str(),
            "revokes_delegations": true,
        });
        self.submit(
            admin,
            write,
            "credential.revoke",
            id.as_str(),
            details,
            &format!("credential \"{id}\""),
        )
        .await?;
        self.chains.invalidate();
        self.credential(id).await
    }
}
