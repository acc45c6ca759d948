//! Chain-aware decisions and the in-memory chain cache that keeps them off
//! the database.
//!
//! A decision on a delegated token: verify the token (signatures are
//! cached per exact token string until it expires), load its chain (cached
//! per delegation; every revocation and identity status change clears the
//! cache, and a generation counter stops a read that raced a revocation
//! from caching a stale chain), check the chain is live, check the action is
//! inside the leaf's scope, then evaluate once per hop, each identity on
//! the chain as principal with its own context. Allow only if every hop
//! allows.

use crate::jwt::Claims;
use crate::{Engine, EngineError};
use handoff_core::{Delegation, DelegationId, IdentityId, Time};
use handoff_policy::{Decision, Entity, Hop, HopDecision, Pdp, Request};
use handoff_store::Store;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Most cached chains or verified tokens before the cache starts over.
const MAX_CACHED: usize = 100_000;

/// The subject property that carries a delegated token.
pub const TOKEN_PROPERTY: &str = "token";

/// Cached chains and verified tokens.
#[derive(Debug, Default)]
pub(crate) struct Chains {
    generation: AtomicU64,
    chains: RwLock<HashMap<DelegationId, Arc<Vec<Delegation>>>>,
    tokens: RwLock<HashMap<String, Arc<Claims>>>,
}

impl Chains {
    /// The chain from the root to `id` (root first); empty if unknown.
    pub(crate) async fn chain(
        &self,
        store: &dyn Store,
        id: &DelegationId,
    ) -> Result<Arc<Vec<Delegation>>, EngineError> {
        if let Some(hit) = self.chains.read().ok().and_then(|m| m.get(id).cloned()) {
            return Ok(hit);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let chain = Arc::new(store.chain(id).await?);
        if chain.is_empty() {
            return Ok(chain);
        }
        if let Ok(mut map) = self.chains.write()
            && self.generation.load(Ordering::Acquire) == generation
        {
            if map.len() >= MAX_CACHED {
                map.clear();
            }
            map.insert(id.clone(), chain.clone());
        }
        Ok(chain)
    }

    /// The cache's generation: bumped by every invalidation.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Caches a chain built in memory (a delegation just committed), unless
    /// the cache was invalidated since `generation` was read.
    pub(crate) fn remember_chain(
        &self,
        generation: u64,
        id: &DelegationId,
        chain: Vec<Delegation>,
    ) {
        if let Ok(mut map) = self.chains.write()
            && self.generation.load(Ordering::Acquire) == generation
        {
            if map.len() >= MAX_CACHED {
                map.clear();
            }
            map.insert(id.clone(), Arc::new(chain));
        }
    }

    /// Forgets every cached chain: something on some chain changed.
    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut map) = self.chains.write() {
            map.clear();
        }
    }

    /// Forgets every verified token (keys were removed).
    pub(crate) fn forget_tokens(&self) {
        if let Ok(mut map) = self.tokens.write() {
            map.clear();
        }
    }

    fn verified(&self, token: &str, now: Time) -> Option<Arc<Claims>> {
        let hit = self.tokens.read().ok()?.get(token).cloned()?;
        (now.timestamp() < hit.exp).then_some(hit)
    }

    fn remember(&self, token: &str, claims: Arc<Claims>) {
        if let Ok(mut map) = self.tokens.write() {
            if map.len() >= MAX_CACHED {
                map.clear();
            }
            map.insert(token.to_owned(), claims);
        }
    }
}

/// A chain decision and the chain it was made on.
pub(crate) struct ChainDecision {
    pub(crate) decision: Decision,
    /// The chain it was made on; the audit record is built from it only
    /// when the decision is logged.
    pub(crate) chain: Option<Arc<Vec<Delegation>>>,
}

impl Engine {
    /// Verifies one of Handoff's own tokens, using the cache.
    pub(crate) fn verify_own(&self, token: &str, now: Time) -> Result<Arc<Claims>, String> {
        if let Some(hit) = self.chains.verified(token, now) {
            return Ok(hit);
        }
        let claims = self
            .keys
            .tokens()
            .verify(token, &self.delegation.issuer, now)
            .map_err(|e| format!("token: {e}"))?;
        let claims = Arc::new(claims);
        self.chains.remember(token, claims.clone());
        Ok(claims)
    }

    /// Decides `req` whose subject carries a delegated token.
    pub(crate) async fn decide_chain(
        &self,
        pdp: &Pdp,
        req: &Request,
        token: &str,
    ) -> ChainDecision {
        match self.try_chain(pdp, req, token).await {
            Ok(done) => done,
            Err(message) => ChainDecision {
                decision: Decision {
                    errors: vec![message],
                    ..Decision::default()
                },
                chain: None,
            },
        }
    }

    async fn try_chain(
        &self,
        pdp: &Pdp,
        req: &Request,
        token: &str,
    ) -> Result<ChainDecision, String> {
        let now = self.clock.now();
        let claims = self.verify_own(token, now)?;
        let actor = crate::delegation::current_actor(&claims);
        if !subject_is(&req.subject, actor) {
            return Err(format!(
                "the subject must be the token's current actor \"{actor}\""
            ));
        }
        let id = DelegationId::parse(&claims.jti).map_err(|e| e.message)?;
        let chain = self
            .chains
            .chain(self.store.as_ref(), &id)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "chain lookup failed");
                "the chain cannot be checked right now".to_owned()
            })?;
        let Some(leaf) = chain.last() else {
            return Err("token: its delegation does not exist".into());
        };
        if leaf.lineage.as_str() != claims.txn || leaf.subject.as_str() != claims.sub {
            return Err("token: its delegation does not exist".into());
        }
        let summary = Some(Arc::clone(&chain));
        if let Err(refusal) = self.check_chain(&chain, now) {
            return Ok(ChainDecision {
                decision: Decision {
                    errors: vec![refusal.to_string()],
                    ..Decision::default()
                },
                chain: summary,
            });
        }
        if !leaf.scope.allows(&req.resource.kind, &req.action.name) {
            return Ok(ChainDecision {
                decision: Decision {
                    errors: vec![format!(
                        "action \"{}\" on \"{}\" is outside the token's scope",
                        handoff_core::identity::shorten(&req.action.name),
                        handoff_core::identity::shorten(&req.resource.kind)
                    )],
                    ..Decision::default()
                },
                chain: summary,
            });
        }
        let principals = principals(&chain);
        let total = principals.len();
        let hops: Vec<Hop> = principals
            .iter()
            .enumerate()
            .map(|(depth, id)| {
                let mut context = req.context.clone();
                context.insert("depth".into(), json!(depth));
                context.insert("chain_length".into(), json!(total));
                context.insert("delegated".into(), json!(depth > 0));
                context.insert("signals".into(), json!({}));
                Hop {
                    principal: Entity::new(id.kind().as_str(), id.as_str()),
                    context,
                }
            })
            .collect();
        let results = pdp.evaluate_hops(&hops, &req.action, &req.resource);
        let mut decision = Decision {
            allow: !results.is_empty(),
            ..Decision::default()
        };
        for ((depth, id), result) in principals.iter().enumerate().zip(results) {
            let hop = match result {
                Ok(d) => HopDecision {
                    principal: id.to_string(),
                    depth: u32::try_from(depth).unwrap_or(u32::MAX),
                    allow: d.allow,
                    reasons: d.reasons,
                    errors: d.errors,
                },
                Err(e) => HopDecision {
                    principal: id.to_string(),
                    depth: u32::try_from(depth).unwrap_or(u32::MAX),
                    allow: false,
                    reasons: Vec::new(),
                    errors: vec![e.to_string()],
                },
            };
            decision.allow &= hop.allow;
            decision.reasons.extend(
                hop.reasons
                    .iter()
                    .map(|r| format!("{}: {r}", hop.principal)),
            );
            decision
                .errors
                .extend(hop.errors.iter().map(|e| format!("{}: {e}", hop.principal)));
            decision.hops.push(hop);
        }
        Ok(ChainDecision {
            decision,
            chain: summary,
        })
    }
}

/// The identities of a chain, subject first, then each actor below the root.
fn principals(chain: &[Delegation]) -> Vec<&IdentityId> {
    chain
        .first()
        .map(|r| &r.subject)
        .into_iter()
        .chain(chain.iter().filter(|d| d.depth > 0).map(|d| &d.actor))
        .collect()
}

/// Whether an AuthZEN subject names `actor` (`agent:x` as type `agent` or
/// `Agent` and id `x` or `agent:x`).
fn subject_is(subject: &Entity, actor: &str) -> bool {
    let Some((kind, name)) = actor.split_once(':') else {
        return false;
    };
    let kind_ok = subject.kind.eq_ignore_ascii_case(kind);
    let id_ok = subject.id == actor || subject.id == name;
    kind_ok && id_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_names_an_actor_with_or_without_prefix() {
        assert!(subject_is(&Entity::new("agent", "agent:bot"), "agent:bot"));
        assert!(subject_is(&Entity::new("Agent", "bot"), "agent:bot"));
        assert!(!subject_is(&Entity::new("service", "bot"), "agent:bot"));
        assert!(!subject_is(&Entity::new("agent", "other"), "agent:bot"));
    }
}
