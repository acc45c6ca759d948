//! Admin token use cases: create (the secret is returned once), list,
//! revoke, and the bootstrap token of a fresh data directory.

use crate::credentials::{Secret, check_ttl, generate};
use crate::data_dir::DataDir;
use crate::{Admin, Engine, EngineError};
use handoff_core::secret::SecretKind;
use handoff_core::token::validate_name;
use handoff_core::{AdminToken, AdminTokenId, Role};
use handoff_store::Write;
use serde_json::json;
use std::path::PathBuf;

impl Engine {
    /// Creates an admin token.
    pub async fn create_admin_token(
        &self,
        admin: &Admin,
        name: String,
        role: Role,
        expires_in: Option<i64>,
    ) -> Result<(AdminToken, Secret), EngineError> {
        self.make_admin_token(admin, name, role, expires_in, Write::CreateAdminToken)
            .await
    }

    /// Creates an admin token with the write `write` makes of it.
    async fn make_admin_token(
        &self,
        admin: &Admin,
        name: String,
        role: Role,
        expires_in: Option<i64>,
        write: fn(AdminToken) -> Write,
    ) -> Result<(AdminToken, Secret), EngineError> {
        admin.require_write()?;
        validate_name(&name)?;
        let ttl = check_ttl(expires_in)?;
        let (lookup, secret) = generate(SecretKind::AdminToken)?;
        let now = self.clock.now();
        let token = AdminToken {
            id: AdminTokenId::parse(&format!("tok_{lookup}"))?,
            name,
            role,
            hash: self.keys.hash_secret(secret.expose()),
            created_at: now,
            expires_at: ttl.map(|t| now + t),
            revoked_at: None,
        };
        let details = json!({
            "name": token.name,
            "role": token.role.as_str(),
            "expires_at": token.expires_at,
            "secret": self.keys.redact(secret.expose()),
        });
        self.submit(
            admin,
            write(token.clone()),
            "admin_token.create",
            token.id.as_str(),
            details,
            "admin token",
        )
        .await?;
        Ok((token, secret))
    }

    /// One admin token.
    pub async fn admin_token(&self, id: &AdminTokenId) -> Result<AdminToken, EngineError> {
        self.store
            .admin_token(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("admin token \"{id}\" does not exist")))
    }

    /// Every admin token.
    pub async fn admin_tokens(&self) -> Result<Vec<AdminToken>, EngineError> {
        Ok(self.store.admin_tokens().await?)
    }

    /// Revokes an admin token. The last usable admin-role token cannot be
    /// revoked: that would lock every operator out.
    pub async fn revoke_admin_token(
        &self,
        admin: &Admin,
        id: &AdminTokenId,
    ) -> Result<AdminToken, EngineError> {
        admin.require_write()?;
        let not_found = || EngineError::NotFound(format!("admin token \"{id}\" does not exist"));
        let tokens = self.store.admin_tokens().await?;
        let now = self.clock.now();
        let target = tokens.iter().find(|t| &t.id == id).ok_or_else(not_found)?;
        if target.revoked_at.is_some() {
            return Err(EngineError::Conflict(format!(
                "admin token \"{id}\" is already revoked"
            )));
        }
        let other_admins = tokens
            .iter()
            .filter(|t| &t.id != id && t.role == Role::Admin && t.usable(now))
            .count();
        if target.role == Role::Admin && other_admins == 0 {
            return Err(EngineError::Conflict(
                "this is the last usable admin token; create another admin token first".into(),
            ));
        }
        let write = Write::RevokeAdminToken {
            id: id.clone(),
            at: now,
        };
        let details = json!({ "name": target.name, "role": target.role.as_str() });
        self.submit(
            admin,
            write,
            "admin_token.revoke",
            id.as_str(),
            details,
            "admin token",
        )
        .await?;
        self.store.admin_token(id).await?.ok_or_else(not_found)
    }

    /// On a store without admin tokens, creates the bootstrap admin token and
    /// writes it to `<data-dir>/admin-token` (0600). Returns the file's path
    /// when it made one. The token itself is never logged. Of several nodes
    /// starting at once on an empty shared database, one makes it (the store
    /// checks inside the write); the others return `None`.
    pub async fn bootstrap(&self, dir: &DataDir) -> Result<Option<PathBuf>, EngineError> {
        if !self.store.admin_tokens().await?.is_empty() {
            return Ok(None);
        }
        let made = self
            .make_admin_token(
                &Admin::system(),
                "bootstrap".into(),
                Role::Admin,
                None,
                Write::CreateFirstAdminToken,
            )
            .await;
        match made {
            Ok((_, secret)) => dir.write_admin_token(secret.expose()).map(Some),
            Err(EngineError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
