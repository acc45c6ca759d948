//! Delegations (handoffs) and the rules that make every hop narrower.
//!
//! A lineage is a tree: its root is a subject's own grant (a human's login
//! through a trusted issuer, a service's client credentials) at depth 0;
//! every token exchange adds a child whose actor acts for the subject with
//! at most what the parent held. [`attenuate`] applies the checks of a
//! handoff in the order the token endpoint reports them (chain live, no
//! cycle, depth, scope, audience, lifetime, fan-out); policy (Cedar) is the
//! engine's business and comes after. [`Lineage`] answers "what is below
//! this node" for revocation, which always cascades.
//!
//! No IO: the caller passes the chain, the identities' statuses and `now`.

use crate::scope::{Audience, Scope};
use crate::{CredentialId, IdentityId, Invalid, Status, Time};
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// A delegation id, `dlg_` and 32 lowercase hex digits; also the `jti` of
/// the token that carries it and, for a root, the lineage's `txn`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DelegationId(String);

/// Hex digits after `dlg_`.
pub const DELEGATION_ID_HEX: usize = 32;

impl DelegationId {
    /// Validates `dlg_<32 hex>`.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let ok = s.strip_prefix("dlg_").is_some_and(|rest| {
            rest.len() == DELEGATION_ID_HEX
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Invalid::new(
                "id",
                format!(
                    "invalid delegation id \"{}\": expected dlg_ and 32 hex digits",
                    crate::identity::shorten(s)
                ),
            ))
        }
    }

    /// An id from 16 random bytes.
    pub fn from_random(bytes: [u8; 16]) -> Self {
        let mut s = String::with_capacity(4 + DELEGATION_ID_HEX);
        s.push_str("dlg_");
        for b in bytes {
            s.push_str(&format!("{b:02x}"));
        }
        Self(s)
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DelegationId {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::parse(&s)
    }
}

impl From<DelegationId> for String {
    fn from(d: DelegationId) -> Self {
        d.0
    }
}

impl std::fmt::Display for DelegationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One handoff: `actor` may act for `subject` within these bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    /// Its id (the token's `jti`).
    pub id: DelegationId,
    /// The delegation it narrows; `None` for a lineage root.
    pub parent: Option<DelegationId>,
    /// The lineage root's id (the token's `txn`), constant along the chain.
    pub lineage: DelegationId,
    /// The original subject (the token's `sub`), constant along the chain.
    pub subject: IdentityId,
    /// Who handed it over: the parent's actor (the subject for a root).
    pub delegator: IdentityId,
    /// Who holds it (the outermost `act`; the subject for a root).
    pub actor: IdentityId,
    /// The credential the actor authenticated with, if any: revoking it
    /// revokes this delegation and everything below it.
    pub credential: Option<CredentialId>,
    /// What it allows.
    pub scope: Scope,
    /// Where it may be presented.
    pub audience: Audience,
    /// Hops from the root (0 for the root).
    pub depth: u32,
    /// The deepest any descendant may be.
    pub max_depth: u32,
    /// Most direct children it may have.
    pub max_fan_out: u32,
    /// When it was made.
    pub issued_at: Time,
    /// When it ends.
    pub expires_at: Time,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Time>,
}

impl Delegation {
    /// Whether it is unrevoked and unexpired at `now` (ancestors not checked).
    pub fn live(&self, now: Time) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }

    /// Hops still allowed below it.
    pub fn remaining_depth(&self) -> u32 {
        self.max_depth.saturating_sub(self.depth)
    }
}

/// Per-chain limits: configured defaults, narrowed (never widened) by the
/// policy pack's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest a chain may go (a root is depth 0).
    pub max_depth: u32,
    /// Longest lifetime of any delegation.
    pub max_lifetime: TimeDelta,
    /// Lifetime when a request names none (capped by `max_lifetime`).
    pub default_lifetime: TimeDelta,
    /// Most direct children of one delegation.
    pub max_fan_out: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 5,
            max_lifetime: TimeDelta::hours(1),
            default_lifetime: TimeDelta::minutes(15),
            max_fan_out: 100,
        }
    }
}

impl Limits {
    /// The tighter of two limit sets, field by field.
    pub fn narrow(self, other: &Self) -> Self {
        Self {
            max_depth: self.max_depth.min(other.max_depth),
            max_lifetime: self.max_lifetime.min(other.max_lifetime),
            default_lifetime: self.default_lifetime.min(other.default_lifetime),
            max_fan_out: self.max_fan_out.min(other.max_fan_out),
        }
    }
}

/// What a token exchange asks for; `None` means "the parent's".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// Who will hold the new delegation.
    pub actor: IdentityId,
    /// Requested scope.
    pub scope: Option<Scope>,
    /// Requested audience (`audience` and `resource` together).
    pub audience: Option<Audience>,
    /// Requested lifetime.
    pub lifetime: Option<TimeDelta>,
}

/// Why a handoff is refused; each names the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A delegation on the chain was revoked.
    #[error("the chain is revoked: delegation {0} was revoked")]
    Revoked(DelegationId),
    /// A delegation on the chain has expired.
    #[error("the chain has expired: delegation {0} expired")]
    Expired(DelegationId),
    /// An identity on the chain is not active.
    #[error("identity \"{0}\" on the chain is {1}")]
    Inactive(IdentityId, Status),
    /// An identity on the chain is not in the inventory.
    #[error("identity \"{0}\" on the chain does not exist")]
    Unknown(IdentityId),
    /// The actor already acts on the chain.
    #[error("cycle: \"{0}\" already acts on this chain")]
    Cycle(IdentityId),
    /// The chain would be too deep.
    #[error("depth {depth} exceeds the chain's maximum depth {max}")]
    Depth {
        /// The depth the new delegation would have.
        depth: u32,
        /// The chain's limit.
        max: u32,
    },
    /// The requested scope holds a token the parent does not.
    #[error("scope \"{0}\" is not within the parent's scope")]
    Scope(String),
    /// The requested audience holds an entry the parent does not.
    #[error("audience \"{0}\" is not within the parent's audience")]
    Audience(String),
    /// The requested lifetime outlives the parent.
    #[error("requested lifetime {requested}s exceeds the parent's remaining lifetime {remaining}s")]
    OutlivesParent {
        /// Seconds asked for.
        requested: i64,
        /// Seconds the parent has left.
        remaining: i64,
    },
    /// The requested lifetime exceeds the configured maximum.
    #[error("requested lifetime {requested}s exceeds the maximum lifetime {max}s")]
    Lifetime {
        /// Seconds asked for.
        requested: i64,
        /// The limit in seconds.
        max: i64,
    },
    /// The parent already has as many children as it may.
    #[error("delegation {0} already has its maximum number of direct delegations ({1})")]
    FanOut(DelegationId, u32),
}

impl Refusal {
    /// The OAuth error code (RFC 6749 §5.2, RFC 8693 §2.2.2): a token or
    /// chain that is unacceptable is `invalid_request`; a wider scope is
    /// `invalid_scope`; a wider audience is `invalid_target`.
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::Scope(_) => "invalid_scope",
            Self::Audience(_) => "invalid_target",
            _ => "invalid_request",
        }
    }
}

/// The chain from the root to the parent, in that order.
pub type Chain<'a> = &'a [Delegation];

/// Checks that every delegation on `chain` is live and every identity on
/// it is active (`status` looks an identity up). Rule 1 of a handoff, and
/// what introspection and chain-aware decisions re-check at every use.
pub fn check_live(
    chain: Chain<'_>,
    now: Time,
    status: &dyn Fn(&IdentityId) -> Option<Status>,
) -> Result<(), Refusal> {
    for d in chain {
        if d.revoked_at.is_some() {
            return Err(Refusal::Revoked(d.id.clone()));
        }
        if now >= d.expires_at {
            return Err(Refusal::Expired(d.id.clone()));
        }
    }
    let mut identities: Vec<&IdentityId> = Vec::new();
    if let Some(root) = chain.first() {
        identities.push(&root.subject);
    }
    identities.extend(chain.iter().map(|d| &d.actor));
    for id in identities {
        match status(id) {
            Some(Status::Active) => {}
            Some(other) => return Err(Refusal::Inactive(id.clone(), other)),
            None => return Err(Refusal::Unknown(id.clone())),
        }
    }
    Ok(())
}

/// The bounds a new child gets, once every rule passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Narrowed {
    /// Its scope.
    pub scope: Scope,
    /// Its audience.
    pub audience: Audience,
    /// Its depth.
    pub depth: u32,
    /// The deepest its descendants may be.
    pub max_depth: u32,
    /// Its own fan-out limit.
    pub max_fan_out: u32,
    /// When it ends.
    pub expires_at: Time,
}

/// Applies rules 1–3 of a handoff to `ask` below the last delegation of
/// `chain` (the parent): chain live, no cycle, depth, scope, audience,
/// lifetime and the parent's fan-out (`children` = its live children now).
/// Stops at the first failure.
pub fn attenuate(
    chain: Chain<'_>,
    ask: &Ask,
    limits: &Limits,
    children: u32,
    now: Time,
    status: &dyn Fn(&IdentityId) -> Option<Status>,
) -> Result<Narrowed, Refusal> {
    let Some(parent) = chain.last() else {
        return Err(Refusal::Unknown(ask.actor.clone()));
    };
    check_live(chain, now, status)?;
    match status(&ask.actor) {
        Some(Status::Active) => {}
        Some(other) => return Err(Refusal::Inactive(ask.actor.clone(), other)),
        None => return Err(Refusal::Unknown(ask.actor.clone())),
    }
    // Rule 2: no cycles, and depth within the tighter of chain and config.
    let on_chain = chain
        .first()
        .map(|r| &r.subject)
        .into_iter()
        .chain(chain.iter().map(|d| &d.actor))
        .any(|id| *id == ask.actor);
    if on_chain {
        return Err(Refusal::Cycle(ask.actor.clone()));
    }
    let depth = parent.depth.saturating_add(1);
    let max_depth = parent.max_depth.min(limits.max_depth);
    if depth > max_depth {
        return Err(Refusal::Depth {
            depth,
            max: max_depth,
        });
    }
    // Rule 3: scope, audience, lifetime narrow; the parent's fan-out holds.
    let scope = ask.scope.clone().unwrap_or_else(|| parent.scope.clone());
    scope.within(&parent.scope).map_err(Refusal::Scope)?;
    let audience = ask
        .audience
        .clone()
        .unwrap_or_else(|| parent.audience.clone());
    audience
        .within(&parent.audience)
        .map_err(Refusal::Audience)?;
    let remaining = parent.expires_at - now;
    let lifetime = match ask.lifetime {
        Some(l) if l > limits.max_lifetime => {
            return Err(Refusal::Lifetime {
                requested: l.num_seconds(),
                max: limits.max_lifetime.num_seconds(),
            });
        }
        Some(l) if l > remaining => {
            return Err(Refusal::OutlivesParent {
                requested: l.num_seconds(),
                remaining: remaining.num_seconds(),
            });
        }
        Some(l) => l,
        None => limits
            .default_lifetime
            .min(limits.max_lifetime)
            .min(remaining),
    };
    let max_fan_out = parent.max_fan_out.min(limits.max_fan_out);
    if children >= max_fan_out {
        return Err(Refusal::FanOut(parent.id.clone(), max_fan_out));
    }
    Ok(Narrowed {
        scope,
        audience,
        depth,
        max_depth,
        max_fan_out,
        expires_at: now + lifetime,
    })
}

/// A lineage (or any set of delegations) indexed by parent, for cascades.
#[derive(Debug, Clone, Default)]
pub struct Lineage {
    nodes: HashMap<DelegationId, Delegation>,
    children: HashMap<DelegationId, Vec<DelegationId>>,
}

impl Lineage {
    /// Indexes `delegations`.
    pub fn new(delegations: impl IntoIterator<Item = Delegation>) -> Self {
        let mut lineage = Self::default();
        for d in delegations {
            if let Some(p) = &d.parent {
                lineage
                    .children
                    .entry(p.clone())
                    .or_default()
                    .push(d.id.clone());
            }
            lineage.nodes.insert(d.id.clone(), d);
        }
        lineage
    }

    /// One delegation.
    pub fn get(&self, id: &DelegationId) -> Option<&Delegation> {
        self.nodes.get(id)
    }

    /// `id` and everything below it, parents before children.
    pub fn subtree(&self, id: &DelegationId) -> Vec<&Delegation> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut stack = vec![id.clone()];
        while let Some(next) = stack.pop() {
            if !seen.insert(next.clone()) {
                continue;
            }
            if let Some(d) = self.nodes.get(&next) {
                out.push(d);
            }
            if let Some(kids) = self.children.get(&next) {
                stack.extend(kids.iter().rev().cloned());
            }
        }
        out
    }

    /// The chain from the root to `id`, root first; empty if `id` is unknown.
    pub fn chain(&self, id: &DelegationId) -> Vec<&Delegation> {
        let mut out = Vec::new();
        let mut next = self.nodes.get(id);
        while let Some(d) = next {
            if out.len() > self.nodes.len() {
                break;
            }
            out.push(d);
            next = d.parent.as_ref().and_then(|p| self.nodes.get(p));
        }
        out.reverse();
        out
    }

    /// Revokes `id` and every descendant that is not revoked yet; returns
    /// the ids newly revoked.
    pub fn revoke(&mut self, id: &DelegationId, at: Time) -> Vec<DelegationId> {
        let ids: Vec<DelegationId> = self.subtree(id).iter().map(|d| d.id.clone()).collect();
        let mut revoked = Vec::new();
        for i in ids {
            if let Some(d) = self.nodes.get_mut(&i)
                && d.revoked_at.is_none()
            {
                d.revoked_at = Some(at);
                revoked.push(i);
            }
        }
        revoked
    }

    /// Whether `id` and all its ancestors are live at `now`.
    pub fn chain_live(&self, id: &DelegationId, now: Time) -> bool {
        let chain = self.chain(id);
        !chain.is_empty()
            && chain.first().is_some_and(|r| r.parent.is_none())
            && chain.iter().all(|d| d.live(now))
    }
}

#[cfg(test)]
#[path = "delegation_tests.rs"]
mod tests;
