//! Using and ending delegations: introspection (RFC 7662), revocation with
//! cascade (RFC 7009), lineage views, and signing-key rotation.
//!
//! Revocation always takes the whole subtree: the store revokes a node and
//! every descendant in one transaction with its audit record, and the
//! chain cache is cleared so the next decision sees it.

use crate::auth::Actor;
use crate::jwt::Claims;
use crate::oauth::{Client, OAuthError};
use crate::{Admin, Engine, EngineError};
use handoff_audit::Outcome;
use handoff_core::{Cursor, Delegation, DelegationId, IdentityId, Limit, Lineage};
use handoff_store::{DelegationFilter, Page, Write};
use serde_json::json;
use std::collections::BTreeSet;

/// Who asks to revoke a token.
#[derive(Debug, Clone, Copy)]
pub enum Revoker<'a> {
    /// An OAuth client: it may revoke delegations on whose chain it appears.
    Client(&'a Client),
    /// An admin token with write access: anything.
    Admin(&'a Admin),
}

/// What a revocation takes away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlastRadius {
    /// The delegation addressed.
    pub root: DelegationId,
    /// Every delegation that is live now and would be (or was) revoked,
    /// parents before children.
    pub delegations: Vec<Delegation>,
    /// The identities holding those delegations.
    pub identities: Vec<IdentityId>,
}

impl Engine {
    /// RFC 7662: the claims of a token whose whole chain is live, `None`
    /// otherwise. Every introspection is audited.
    pub async fn introspect(
        &self,
        caller: &Actor,
        token: &str,
    ) -> Result<Option<Claims>, EngineError> {
        self.check_fresh()?;
        let now = self.clock.now();
        let found = match self.verify_own(token, now) {
            Ok(claims) => {
                let chain = self.chain_of(&claims).await.ok();
                let live = chain
                    .as_ref()
                    .is_some_and(|c| self.check_chain(c, now).is_ok());
                live.then(|| (*claims).clone())
            }
            Err(_) => None,
        };
        let details = json!({
            "active": found.is_some(),
            "delegation": found.as_ref().map(|c| c.jti.clone()),
        });
        let target = found
            .as_ref()
            .map_or_else(|| "token:unknown".to_owned(), |c| c.jti.clone());
        let outcome = if found.is_some() {
            Outcome::Allow
        } else {
            Outcome::Deny
        };
        self.record(
            caller.clone(),
            "token.introspect",
            &target,
            outcome,
            details,
        )
        .await?;
        Ok(found)
    }

    /// RFC 7009: revokes the token's delegation and everything below it.
    /// A token that is invalid, expired or unknown is not an error (§2.2).
    pub async fn revoke_token(&self, by: Revoker<'_>, token: &str) -> Result<(), OAuthError> {
        let now = self.clock.now();
        let Ok(claims) = self
            .keys
            .tokens()
            .verify(token, &self.delegation.issuer, now)
        else {
            return Ok(());
        };
        let Ok(id) = DelegationId::parse(&claims.jti) else {
            return Ok(());
        };
        let chain = self.store.chain(&id).await.map_err(EngineError::from)?;
        if chain.is_empty() {
            return Ok(());
        }
        let actor = match by {
            Revoker::Admin(admin) => {
                admin.require_write()?;
                admin.actor.clone()
            }
            Revoker::Client(client) => {
                let me = &client.identity.id;
                let on_chain = chain
                    .iter()
                    .any(|d| &d.actor == me || &d.subject == me || &d.delegator == me);
                if !on_chain {
                    return Err(OAuthError::new(
                        "unauthorized_client",
                        "only an identity on the token's chain may revoke it",
                    ));
                }
                client.actor()
            }
        };
        let radius = self.blast_radius(&id).await?;
        self.revoke_subtree(actor, &radius, "oauth2.revoke").await?;
        Ok(())
    }

    /// Revokes a delegation and its subtree (admin API, CLI). With
    /// `dry_run`, only reports what would lose access.
    pub async fn revoke_delegation(
        &self,
        admin: &Admin,
        id: &DelegationId,
        dry_run: bool,
    ) -> Result<BlastRadius, EngineError> {
        if !dry_run {
            admin.require_write()?;
        }
        let radius = self.blast_radius(id).await?;
        if !dry_run {
            self.revoke_subtree(admin.actor.clone(), &radius, "admin")
                .await?;
        }
        Ok(radius)
    }

    /// What revoking `id` takes away now.
    pub async fn blast_radius(&self, id: &DelegationId) -> Result<BlastRadius, EngineError> {
        let root = self.delegation(id).await?;
        let lineage = Lineage::new(self.store.lineage(&root.lineage).await?);
        let now = self.clock.now();
        let delegations: Vec<Delegation> = lineage
            .subtree(id)
            .into_iter()
            .filter(|d| d.live(now))
            .cloned()
            .collect();
        let identities: BTreeSet<IdentityId> =
            delegations.iter().map(|d| d.actor.clone()).collect();
        Ok(BlastRadius {
            root: id.clone(),
            delegations,
            identities: identities.into_iter().collect(),
        })
    }

    /// Revokes the subtree `radius` was computed for.
    async fn revoke_subtree(
        &self,
        actor: Actor,
        radius: &BlastRadius,
        via: &str,
    ) -> Result<(), EngineError> {
        let id = &radius.root;
        let details = json!({
            "via": via,
            "revoked": radius.delegations.len(),
            "identities": radius.identities.iter().map(IdentityId::as_str).collect::<Vec<_>>(),
        });
        let write = Write::RevokeDelegations {
            ids: vec![id.clone()],
            at: self.clock.now(),
        };
        let result = self
            .append(
                actor,
                write,
                "delegation.revoke",
                id.as_str(),
                Outcome::Success,
                details,
            )
            .await;
        self.chains.invalidate();
        result
    }

    /// One delegation.
    pub async fn delegation(&self, id: &DelegationId) -> Result<Delegation, EngineError> {
        self.store
            .delegation(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("delegation \"{id}\" does not exist")))
    }

    /// A delegation's chain, root first.
    pub async fn delegation_chain(
        &self,
        id: &DelegationId,
    ) -> Result<Vec<Delegation>, EngineError> {
        let chain = self.store.chain(id).await?;
        if chain.is_empty() {
            return Err(EngineError::NotFound(format!(
                "delegation \"{id}\" does not exist"
            )));
        }
        Ok(chain)
    }

    /// A whole lineage, by its root id (the tokens' `txn`).
    pub async fn lineage(&self, txn: &DelegationId) -> Result<Vec<Delegation>, EngineError> {
        let all = self.store.lineage(txn).await?;
        if all.is_empty() {
            return Err(EngineError::NotFound(format!(
                "lineage \"{txn}\" does not exist"
            )));
        }
        Ok(all)
    }

    /// A page of delegations.
    pub async fn delegations(
        &self,
        filter: &DelegationFilter,
        after: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<Delegation>, EngineError> {
        Ok(self.store.delegations(filter, after, limit).await?)
    }

    /// Whether the chain of `id` is live now (every node and identity).
    pub async fn chain_state(&self, chain: &[Delegation]) -> Result<(), String> {
        self.check_chain(chain, self.clock.now())
            .map_err(|r| r.to_string())
    }

    /// Adds a token-signing key and signs with it from now on; keys retired
    /// longer ago than the maximum lifetime are dropped from the JWKS.
    pub async fn rotate_keys(&self, admin: &Admin) -> Result<String, EngineError> {
        self.rotate_keys_to(admin, self.keys.tokens().algorithm())
            .await
    }

    /// [`Engine::rotate_keys`] to a key of `algorithm`. On a shared
    /// database the new keys are stored (sealed) with the audit record
    /// before this node signs with them; the other nodes load them from the
    /// change feed. A concurrent rotation on another node is a conflict.
    pub async fn rotate_keys_to(
        &self,
        admin: &Admin,
        algorithm: crate::jwt::Algorithm,
    ) -> Result<String, EngineError> {
        admin.require_write()?;
        let now = self.clock.now();
        let max_lifetime = self.delegation.limits.max_lifetime;
        // File-backed keys rotate in place (and persist themselves); shared
        // ones rotate on a copy that is stored with the audit record before
        // this node signs with it.
        let (kid, dropped, write, next) = match &self.shared {
            None => {
                let tokens = self.keys.tokens();
                let kid = tokens.rotate(algorithm, now)?;
                let dropped = tokens.prune(now, max_lifetime)?;
                (kid, dropped, Write::Nothing, None)
            }
            Some(shared) => {
                let (next, version) = shared.current_tokens(self.store.as_ref()).await?;
                let kid = next.rotate(algorithm, now)?;
                let dropped = next.prune(now, max_lifetime)?;
                let write = Write::ReplaceSecret {
                    name: crate::shared::TOKEN_SECRET.into(),
                    value: shared.seal_tokens(&next)?,
                    version,
                };
                (kid, dropped, write, Some(next))
            }
        };
        let details = json!({ "kid": kid, "algorithm": algorithm, "dropped": dropped });
        self.append(
            admin.actor.clone(),
            write,
            "keys.rotate",
            &kid,
            Outcome::Success,
            details,
        )
        .await
        .map_err(|e| match e {
            EngineError::Conflict(_) => EngineError::Conflict(
                "another node rotated the signing keys at the same time; try again".into(),
            ),
            e => e,
        })?;
        if let Some(next) = &next {
            self.keys.tokens().replace_with(next);
        }
        if next.is_some() || !dropped.is_empty() {
            self.chains.forget_tokens();
        }
        Ok(kid)
    }
}
