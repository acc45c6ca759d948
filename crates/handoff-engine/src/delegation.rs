//! Handoffs: the token endpoint's grants (RFC 8693 token exchange and
//! client credentials), each one a delegation that is checked, recorded
//! and only then issued as a signed token.
//!
//! Order of checks for an exchange (stop at the first failure): the subject
//! token and its whole chain (signature, issuer, expiry; every delegation
//! live, every identity active); the actor (the authenticated client, or
//! the `actor_token`'s current actor, which must be that client); no cycle
//! and depth; scope, audience, lifetime, fan-out ([`handoff_core::delegation::attenuate`]);
//! then policy: Cedar must permit `delegate` with the delegator as principal
//! and the actor as resource. The delegation and its audit record commit in
//! one transaction before the token is returned; a refusal writes only its
//! audit record.

use crate::jwt::{Act, Claims, TrustedIssuer, unverified_issuer};
use crate::oauth::{Client, OAuthError};
use crate::{AppendError, Engine, EngineError};
use chrono::TimeDelta;
use handoff_audit::{Draft, Outcome};
use handoff_core::delegation::{Ask, attenuate};
use handoff_core::{
    Audience, Delegation, DelegationId, Identity, IdentityId, Kind, Limits, Refusal, Scope, Status,
    Time,
};
use handoff_policy::{Action, Entity, Request};
use handoff_store::{Change, StoreError, Write};
use serde_json::{Map, Value, json};

/// RFC 8693 §3 token type identifiers.
pub mod token_type {
    /// An OAuth access token.
    pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
    /// A JWT.
    pub const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
    /// An OpenID Connect ID token.
    pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
}

/// The grant type of RFC 8693 §2.1.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The Cedar action every handoff must be permitted.
pub const DELEGATE_ACTION: &str = "delegate";

/// How the server issues and accepts delegation tokens.
#[derive(Debug, Clone)]
pub struct DelegationSettings {
    /// The `iss` of every token and the base of the endpoints
    /// (`https://handoff.example`), without a trailing slash.
    pub issuer: String,
    /// Configured per-chain limits (a policy pack may narrow them).
    pub limits: Limits,
    /// Issuers whose tokens are accepted as a human's subject token.
    pub trusted: Vec<Trusted>,
    /// Allows `mint-human` (development only).
    pub dev: bool,
}

impl Default for DelegationSettings {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080".into(),
            limits: Limits::default(),
            trusted: Vec::new(),
            dev: false,
        }
    }
}

/// A trusted issuer and how its subjects map to inventory humans.
#[derive(Debug, Clone)]
pub struct Trusted {
    /// The verifier (issuer, audience, keys, subject and scope claims).
    pub verifier: TrustedIssuer,
    /// The scope of a lineage root when the token carries none.
    pub default_scope: Scope,
}

impl DelegationSettings {
    /// The issuer of development tokens made by `mint-human`.
    pub fn dev_issuer(&self) -> String {
        format!("{}/dev", self.issuer)
    }

    /// The token endpoint URL.
    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth2/token", self.issuer)
    }

    /// What a client assertion's `aud` may be (RFC 7523 §3, item 3).
    pub fn assertion_audiences(&self) -> Vec<String> {
        vec![self.issuer.clone(), self.token_endpoint()]
    }
}

/// A token exchange request (RFC 8693 §2.1), parsed but not yet checked.
/// `Debug` never shows the tokens.
#[derive(Clone, Default)]
pub struct Exchange {
    /// The token of the delegation being narrowed.
    pub subject_token: String,
    /// Its type.
    pub subject_token_type: String,
    /// A token for the actor, which must name the authenticated client.
    pub actor_token: Option<String>,
    /// Its type (required with `actor_token`).
    pub actor_token_type: Option<String>,
    /// Requested scope (RFC 6749 §3.3); `None` means the parent's.
    pub scope: Option<String>,
    /// `audience` and `resource` values; empty means the parent's.
    pub audience: Vec<String>,
    /// Requested lifetime in seconds (Handoff's `requested_lifetime`).
    pub lifetime: Option<i64>,
    /// `requested_token_type`.
    pub requested_token_type: Option<String>,
}

/// An issued token (RFC 8693 §2.2.1, RFC 6749 §5.1). `Debug` never shows
/// the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// The signed JWT.
    pub access_token: String,
    /// `issued_token_type`.
    pub issued_token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// Its scope.
    pub scope: String,
    /// The delegation it carries.
    pub delegation: Delegation,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("subject_token_type", &self.subject_token_type)
            .field("actor_token_type", &self.actor_token_type)
            .field("scope", &self.scope)
            .field("audience", &self.audience)
            .field("lifetime", &self.lifetime)
            .field("requested_token_type", &self.requested_token_type)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("issued_token_type", &self.issued_token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("delegation", &self.delegation.id)
            .finish_non_exhaustive()
    }
}

/// Where an exchange's parent comes from.
enum Parent {
    /// A stored delegation and its chain (root first, parent last).
    Stored(Vec<Delegation>),
    /// A new lineage root for a human's trusted-issuer token, stored with the child.
    NewRoot(Box<Delegation>),
}

impl Parent {
    fn chain(&self) -> &[Delegation] {
        match self {
            Self::Stored(chain) => chain,
            Self::NewRoot(root) => std::slice::from_ref(root),
        }
    }
}

impl Engine {
    /// The delegation settings.
    pub fn delegation_settings(&self) -> &DelegationSettings {
        &self.delegation
    }

    /// The limits in force now: configured, narrowed by the active pack.
    pub fn limits(&self) -> Limits {
        let configured = self.delegation.limits;
        let Some(pdp) = self.policy.pdp() else {
            return configured;
        };
        let pack = pdp.policies().settings().delegation;
        let lifetime = pack
            .max_lifetime_seconds
            .map_or(configured.max_lifetime, |s| {
                TimeDelta::seconds(i64::from(s))
            });
        configured.narrow(&Limits {
            max_depth: pack.max_depth.unwrap_or(configured.max_depth),
            max_lifetime: lifetime,
            default_lifetime: configured.default_lifetime,
            max_fan_out: pack.max_fan_out.unwrap_or(configured.max_fan_out),
        })
    }

    /// `grant_type=client_credentials`: a lineage root for the client itself,
    /// if policy permits it `delegate` to itself at depth 0.
    pub async fn client_credentials(
        &self,
        client: &Client,
        scope: Option<&str>,
        audience: &[String],
        lifetime: Option<i64>,
    ) -> Result<Issued, OAuthError> {
        let result = self.try_client_credentials(client, scope, audience, lifetime);
        match result {
            Ok(root) => {
                self.policy_permits(client, &root.subject, &root.subject, &root, None)
                    .await?;
                self.commit_and_issue(
                    client,
                    Vec::new(),
                    vec![root],
                    "client_credentials",
                    token_type::ACCESS_TOKEN,
                )
                .await
            }
            Err(e) => Err(self.refuse(client, "client_credentials", None, e).await),
        }
    }

    fn try_client_credentials(
        &self,
        client: &Client,
        scope: Option<&str>,
        audience: &[String],
        lifetime: Option<i64>,
    ) -> Result<Delegation, OAuthError> {
        let scope = Scope::parse(scope.unwrap_or_default())
            .map_err(|e| OAuthError::new("invalid_scope", e.message))?;
        let audience =
            Audience::parse(audience).map_err(|e| OAuthError::new("invalid_target", e.message))?;
        let limits = self.limits();
        let lifetime = requested_lifetime(lifetime, &limits)?;
        let now = self.clock.now();
        let id = new_id()?;
        Ok(Delegation {
            id: id.clone(),
            parent: None,
            lineage: id,
            subject: client.identity.id.clone(),
            delegator: client.identity.id.clone(),
            actor: client.identity.id.clone(),
            credential: client.credential.clone(),
            scope,
            audience,
            depth: 0,
            max_depth: limits.max_depth,
            max_fan_out: limits.max_fan_out,
            issued_at: now,
            expires_at: now + lifetime,
            revoked_at: None,
        })
    }

    /// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`: one handoff.
    pub async fn exchange(&self, client: &Client, req: Exchange) -> Result<Issued, OAuthError> {
        let mut parent_id = None;
        let checked = self.check_exchange(client, &req, &mut parent_id).await;
        match checked {
            Ok((ancestors, rows, delegator)) => {
                let Some(child) = rows.last() else {
                    return Err(OAuthError::new("server_error", "no delegation was built"));
                };
                // A new lineage root is not stored unless the handoff is.
                let stored_parent = if rows.len() > 1 {
                    None
                } else {
                    child.parent.as_ref()
                };
                self.policy_permits(client, &delegator, &child.actor, child, stored_parent)
                    .await?;
                let issued_type = match req.requested_token_type.as_deref() {
                    Some(token_type::JWT) => token_type::JWT,
                    _ => token_type::ACCESS_TOKEN,
                };
                self.commit_and_issue(client, ancestors, rows, "token_exchange", issued_type)
                    .await
            }
            Err(e) => Err(self
                .refuse(client, "token_exchange", parent_id.as_ref(), e)
                .await),
        }
    }

    /// Rules 1–3; returns the rows to insert (a new root first, if any) and
    /// the delegator.
    async fn check_exchange(
        &self,
        client: &Client,
        req: &Exchange,
        parent_id: &mut Option<DelegationId>,
    ) -> Result<(Vec<Delegation>, Vec<Delegation>, IdentityId), OAuthError> {
        // Handoff issues access tokens that are JWTs; it accepts ID tokens
        // as subject tokens but does not issue them.
        let issuable: &[&str] = &[token_type::ACCESS_TOKEN, token_type::JWT];
        let acceptable: &[&str] = &[
            token_type::ACCESS_TOKEN,
            token_type::JWT,
            token_type::ID_TOKEN,
        ];
        for (what, t, known) in [
            (
                "requested_token_type",
                req.requested_token_type.as_deref(),
                issuable,
            ),
            (
                "subject_token_type",
                Some(req.subject_token_type.as_str()),
                acceptable,
            ),
        ] {
            if let Some(t) = t
                && !known.contains(&t)
            {
                return Err(OAuthError::invalid_request(format!(
                    "unsupported {what} \"{}\"",
                    handoff_core::identity::shorten(t)
                )));
            }
        }
        let now = self.clock.now();
        let parent = self.parent_of(&req.subject_token, now).await?;
        if let Parent::Stored(chain) = &parent {
            *parent_id = chain.last().map(|d| d.id.clone());
        }
        if let Some(actor_token) = &req.actor_token {
            self.check_actor_token(client, actor_token, req.actor_token_type.as_deref(), now)
                .await?;
        }
        let scope = req
            .scope
            .as_deref()
            .map(Scope::parse)
            .transpose()
            .map_err(|e| OAuthError::new("invalid_scope", e.message))?;
        let audience = if req.audience.is_empty() {
            None
        } else {
            Some(
                Audience::parse(&req.audience)
                    .map_err(|e| OAuthError::new("invalid_target", e.message))?,
            )
        };
        if req.lifetime.is_some_and(|l| l <= 0) {
            return Err(OAuthError::invalid_request(
                "requested_lifetime must be a positive number of seconds",
            ));
        }
        let ask = Ask {
            actor: client.identity.id.clone(),
            scope,
            audience,
            // Beyond TimeDelta's range is beyond any maximum: the chain rules
            // refuse it like any lifetime that is too long.
            lifetime: req
                .lifetime
                .map(|l| TimeDelta::try_seconds(l).unwrap_or(TimeDelta::MAX)),
        };
        let chain = parent.chain();
        let Some(last) = chain.last() else {
            return Err(OAuthError::invalid_request(
                "the subject token has no delegation",
            ));
        };
        let children = match &parent {
            Parent::Stored(_) => self
                .store
                .live_children(&last.id, now)
                .await
                .map_err(EngineError::from)?,
            Parent::NewRoot(_) => 0,
        };
        let mut ids: Vec<&IdentityId> = chain.iter().map(|d| &d.actor).collect();
        ids.push(&ask.actor);
        ids.extend(chain.first().map(|r| &r.subject));
        let statuses = self.policy.statuses(ids);
        let status = |id: &IdentityId| statuses.get(id).copied();
        let narrowed = attenuate(chain, &ask, &self.limits(), children, now, &status)
            .map_err(|r| refusal(&r))?;
        let child = Delegation {
            id: new_id()?,
            parent: Some(last.id.clone()),
            lineage: last.lineage.clone(),
            subject: last.subject.clone(),
            delegator: last.actor.clone(),
            actor: ask.actor,
            credential: client.credential.clone(),
            scope: narrowed.scope,
            audience: narrowed.audience,
            depth: narrowed.depth,
            max_depth: narrowed.max_depth,
            max_fan_out: narrowed.max_fan_out,
            issued_at: now,
            expires_at: narrowed.expires_at,
            revoked_at: None,
        };
        let delegator = child.delegator.clone();
        let (ancestors, rows) = match parent {
            Parent::Stored(chain) => (chain, vec![child]),
            Parent::NewRoot(root) => (Vec::new(), vec![*root, child]),
        };
        Ok((ancestors, rows, delegator))
    }

    /// Resolves a subject token to the chain it continues: one of Handoff's
    /// own tokens (its stored chain), or a trusted issuer's token for an
    /// active human (a new lineage root).
    async fn parent_of(&self, token: &str, now: Time) -> Result<Parent, OAuthError> {
        let issuer = unverified_issuer(token)
            .map_err(|e| OAuthError::invalid_request(format!("subject token: {e}")))?;
        if issuer == self.delegation.issuer {
            let claims = self
                .keys
                .tokens()
                .verify(token, &self.delegation.issuer, now)
                .map_err(|e| OAuthError::invalid_request(format!("subject token: {e}")))?;
            let chain = self.chain_of(&claims).await?;
            return Ok(Parent::Stored(chain));
        }
        let (verifier, default_scope) =
            if self.delegation.dev && issuer == self.delegation.dev_issuer() {
                (self.dev_verifier()?, Scope::default())
            } else {
                self.trusted(&issuer).ok_or_else(|| {
                    OAuthError::invalid_request(format!(
                        "subject token: issuer \"{}\" is not trusted",
                        handoff_core::identity::shorten(&issuer)
                    ))
                })?
            };
        let external = verifier
            .verify(token, now)
            .map_err(|e| OAuthError::invalid_request(format!("subject token: {e}")))?;
        let human = if external.subject.starts_with("human:") {
            external.subject.clone()
        } else {
            format!("human:{}", external.subject)
        };
        let human = IdentityId::parse(&human).map_err(|_| {
            OAuthError::invalid_request("subject token: its subject is not a valid human id")
        })?;
        let identity = self
            .store
            .identity(&human)
            .await
            .map_err(EngineError::from)?;
        match identity {
            Some(Identity {
                status: Status::Active,
                ..
            }) if human.kind() == Kind::Human => {}
            Some(i) => {
                return Err(refusal(&Refusal::Inactive(human, i.status)));
            }
            None => return Err(refusal(&Refusal::Unknown(human))),
        }
        let scope = match &external.scope {
            Some(s) => Scope::parse(s).map_err(|e| {
                OAuthError::invalid_request(format!("subject token: {}", e.message))
            })?,
            None => default_scope,
        };
        let limits = self.limits();
        let id = new_id()?;
        Ok(Parent::NewRoot(Box::new(Delegation {
            id: id.clone(),
            parent: None,
            lineage: id,
            subject: human.clone(),
            delegator: human.clone(),
            actor: human,
            credential: None,
            scope,
            audience: Audience::any(),
            depth: 0,
            max_depth: limits.max_depth,
            max_fan_out: limits.max_fan_out,
            issued_at: now,
            expires_at: external.expires_at.min(now + limits.max_lifetime),
            revoked_at: None,
        })))
    }

    /// The verifier and default scope of a trusted issuer, as its keys are now.
    fn trusted(&self, issuer: &str) -> Option<(TrustedIssuer, Scope)> {
        let list = self.trusted.read().ok()?;
        list.iter()
            .find(|t| t.verifier.issuer == issuer)
            .map(|t| (t.verifier.clone(), t.default_scope.clone()))
    }

    /// Replaces a trusted issuer's keys (a refreshed JWKS document); the
    /// issuer, audience and claims stay as configured. Returns the number
    /// of keys. A document that does not parse changes nothing.
    pub fn replace_trusted_keys(
        &self,
        issuer: &str,
        jwks_json: &str,
    ) -> Result<usize, EngineError> {
        let mut list = self
            .trusted
            .write()
            .map_err(|_| EngineError::Io("the trusted issuer list is unusable".into()))?;
        let Some(entry) = list.iter_mut().find(|t| t.verifier.issuer == issuer) else {
            return Err(EngineError::NotFound(format!(
                "issuer \"{issuer}\" is not trusted"
            )));
        };
        let old = &entry.verifier;
        let mut verifier = TrustedIssuer::from_jwks_json(
            old.issuer.clone(),
            old.audience.clone(),
            old.subject_claim.clone(),
            old.scope_claim.clone(),
            jwks_json,
        )?;
        verifier.leeway_seconds = old.leeway_seconds;
        let keys = verifier.keys.keys.len();
        entry.verifier = verifier;
        Ok(keys)
    }

    /// The development issuer: Handoff's own keys under `<issuer>/dev`.
    fn dev_verifier(&self) -> Result<TrustedIssuer, OAuthError> {
        let jwks = self.keys.tokens().jwks().to_string();
        TrustedIssuer::from_jwks_json(
            self.delegation.dev_issuer(),
            self.delegation.issuer.clone(),
            "sub".into(),
            "scope".into(),
            &jwks,
        )
        .map_err(OAuthError::from)
    }

    /// RFC 8693 §2.1: the actor token's current actor must be the client.
    async fn check_actor_token(
        &self,
        client: &Client,
        token: &str,
        token_type: Option<&str>,
        now: Time,
    ) -> Result<(), OAuthError> {
        match token_type {
            Some(token_type::ACCESS_TOKEN | token_type::JWT) => {}
            Some(other) => {
                return Err(OAuthError::invalid_request(format!(
                    "unsupported actor_token_type \"{}\"",
                    handoff_core::identity::shorten(other)
                )));
            }
            None => {
                return Err(OAuthError::invalid_request(
                    "actor_token_type is required with actor_token",
                ));
            }
        }
        let claims = self
            .keys
            .tokens()
            .verify(token, &self.delegation.issuer, now)
            .map_err(|e| OAuthError::invalid_request(format!("actor token: {e}")))?;
        let chain = self.chain_of(&claims).await?;
        let live = self.check_chain(&chain, now);
        if let Err(r) = live {
            return Err(OAuthError::invalid_request(format!("actor token: {r}")));
        }
        if current_actor(&claims) != client.identity.id.as_str() {
            return Err(OAuthError::invalid_request(
                "actor token does not match the authenticated client",
            ));
        }
        Ok(())
    }

    /// The stored chain of a verified token, checked against its claims.
    pub(crate) async fn chain_of(&self, claims: &Claims) -> Result<Vec<Delegation>, OAuthError> {
        let id = DelegationId::parse(&claims.jti)
            .map_err(|_| OAuthError::invalid_request("token: its jti is not a delegation id"))?;
        let chain = self.chains.chain(self.store.as_ref(), &id).await?;
        let chain = chain.as_ref().clone();
        let matches = chain
            .last()
            .is_some_and(|d| d.lineage.as_str() == claims.txn && d.subject.as_str() == claims.sub);
        if !matches {
            return Err(OAuthError::invalid_request(
                "token: its delegation does not exist",
            ));
        }
        Ok(chain)
    }

    /// Rule 1 on a stored chain, with statuses from the decision point.
    pub(crate) fn check_chain(&self, chain: &[Delegation], now: Time) -> Result<(), Refusal> {
        let mut ids: Vec<&IdentityId> = chain.iter().map(|d| &d.actor).collect();
        ids.extend(chain.first().map(|r| &r.subject));
        let statuses = self.policy.statuses(ids);
        handoff_core::delegation::check_live(chain, now, &|id| statuses.get(id).copied())
    }

    /// Rule 4: Cedar must permit `delegate` from `delegator` to `actor`.
    async fn policy_permits(
        &self,
        client: &Client,
        delegator: &IdentityId,
        actor: &IdentityId,
        child: &Delegation,
        stored_parent: Option<&DelegationId>,
    ) -> Result<(), OAuthError> {
        let Some(pdp) = self.policy.pdp() else {
            let e = OAuthError::invalid_request("policy: no policy pack is active");
            return Err(self.refuse(client, "policy", stored_parent, e).await);
        };
        let root_kind = child.subject.kind().as_str();
        let mut context = Map::new();
        context.insert(
            "scope".into(),
            json!(child.scope.tokens().collect::<Vec<_>>()),
        );
        context.insert(
            "audience".into(),
            json!(child.audience.entries().collect::<Vec<_>>()),
        );
        context.insert("depth".into(), json!(child.depth));
        context.insert("remaining_depth".into(), json!(child.remaining_depth()));
        context.insert(
            "lifetime_seconds".into(),
            json!((child.expires_at - child.issued_at).num_seconds()),
        );
        context.insert("root_kind".into(), json!(root_kind));
        context.insert("signals".into(), json!({}));
        let request = Request {
            subject: Entity::new(delegator.kind().as_str(), delegator.as_str()),
            action: Action::new(DELEGATE_ACTION),
            resource: Entity::new(actor.kind().as_str(), actor.as_str()),
            context,
        };
        let decision = pdp
            .evaluate(&request)
            .unwrap_or_else(|e| handoff_policy::Decision {
                errors: vec![e.to_string()],
                ..Default::default()
            });
        if decision.allow {
            return Ok(());
        }
        let e = OAuthError::invalid_request(format!(
            "policy: version {} does not permit \"{delegator}\" to delegate to \"{actor}\"",
            pdp.version()
        ));
        Err(self.refuse(client, "policy", stored_parent, e).await)
    }

    /// Commits the rows with one audit record, then signs the last row's token.
    async fn commit_and_issue(
        &self,
        client: &Client,
        ancestors: Vec<Delegation>,
        rows: Vec<Delegation>,
        grant: &str,
        issued_token_type: &'static str,
    ) -> Result<Issued, OAuthError> {
        let Some(child) = rows.last().cloned() else {
            return Err(OAuthError::new("server_error", "no delegation was built"));
        };
        let details = json!({
            "grant": grant,
            "delegation": child.id.as_str(),
            "parent": child.parent.as_ref().map(DelegationId::as_str),
            "lineage": child.lineage.as_str(),
            "subject": child.subject.as_str(),
            "delegator": child.delegator.as_str(),
            "actor": child.actor.as_str(),
            "scope": child.scope.to_string(),
            "audience": child.audience.entries().collect::<Vec<_>>(),
            "depth": child.depth,
            "expires_at": child.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "new_root": rows.len() > 1,
            "policy_version": self.policy.pdp().map(|p| p.version()),
        });
        let stored_parent = if rows.len() > 1 {
            None
        } else {
            child.parent.clone()
        };
        let mut chain = ancestors;
        chain.extend(rows.iter().cloned());
        // Taken before the commit: a revocation after it must win over
        // caching this chain as live.
        let generation = self.chains.generation();
        let change = Change {
            write: Write::CreateDelegations(rows),
            record: Draft {
                time: self.clock.now(),
                kind: "delegation.create".into(),
                actor: client.actor().audit_name(),
                target: child.id.to_string(),
                outcome: Outcome::Success,
                details,
            },
        };
        match self.appender.submit(change).await {
            Ok(_) => {}
            Err(AppendError::Write(StoreError::Conflict(m))) => {
                let e = OAuthError::invalid_request(format!("the chain changed: {m}"));
                return Err(self.refuse(client, grant, stored_parent.as_ref(), e).await);
            }
            Err(AppendError::Write(StoreError::NotFound)) => {
                let e = OAuthError::invalid_request("the chain changed: the parent is gone");
                return Err(self.refuse(client, grant, stored_parent.as_ref(), e).await);
            }
            Err(AppendError::Write(e)) => return Err(EngineError::from(e).into()),
            Err(AppendError::Unavailable) => return Err(EngineError::AuditUnavailable.into()),
        }
        let token = self.sign(&chain)?;
        self.chains.remember_chain(generation, &child.id, chain);
        Ok(Issued {
            access_token: token,
            issued_token_type,
            expires_in: (child.expires_at - child.issued_at).num_seconds(),
            scope: child.scope.to_string(),
            delegation: child,
        })
    }

    /// Signs the token of the last delegation of `chain` (root first).
    pub(crate) fn sign(&self, chain: &[Delegation]) -> Result<String, OAuthError> {
        let Some(leaf) = chain.last() else {
            return Err(OAuthError::new("server_error", "empty chain"));
        };
        let claims = claims_for(&self.delegation.issuer, chain, leaf);
        self.keys.tokens().sign(&claims).map_err(OAuthError::from)
    }

    /// Audits a refused grant (nothing else is written) and returns the error.
    async fn refuse(
        &self,
        client: &Client,
        grant: &str,
        parent: Option<&DelegationId>,
        e: OAuthError,
    ) -> OAuthError {
        if matches!(e.code, "server_error" | "temporarily_unavailable") {
            return e;
        }
        let details = json!({
            "grant": grant,
            "parent": parent.map(DelegationId::as_str),
            "error": e.code,
            "error_description": e.description,
        });
        let target = parent.map_or_else(|| client.identity.id.to_string(), ToString::to_string);
        match self
            .record(
                client.actor(),
                "delegation.refuse",
                &target,
                Outcome::Failure,
                details,
            )
            .await
        {
            Ok(()) => e,
            Err(err) => err.into(),
        }
    }

    /// Development only: a token for `human` from the dev issuer, so the
    /// quickstart works without an identity provider.
    pub async fn mint_human(
        &self,
        admin: &crate::Admin,
        human: &IdentityId,
        scope: &Scope,
        lifetime: Option<i64>,
    ) -> Result<String, EngineError> {
        admin.require_write()?;
        if !self.delegation.dev {
            return Err(EngineError::Forbidden(
                "minting human tokens needs a server started with --dev",
            ));
        }
        let identity = self.identity(human).await?;
        if identity.kind() != Kind::Human || identity.status != Status::Active {
            return Err(EngineError::Conflict(format!(
                "\"{human}\" is not an active human"
            )));
        }
        let limits = self.limits();
        let lifetime = requested_lifetime(lifetime, &limits)
            .map_err(|e| handoff_core::Invalid::new("lifetime", e.description))?;
        let now = self.clock.now();
        let jti = new_id().map_err(|e| EngineError::Io(e.description))?;
        let claims = Claims {
            iss: self.delegation.dev_issuer(),
            sub: human.to_string(),
            aud: vec![self.delegation.issuer.clone()],
            exp: (now + lifetime).timestamp(),
            iat: now.timestamp(),
            jti: jti.to_string(),
            client_id: "handoff-dev".into(),
            scope: scope.to_string(),
            act: None,
            txn: jti.to_string(),
            depth: 0,
        };
        let token = self.keys.tokens().sign(&claims)?;
        let details = json!({ "human": human.as_str(), "scope": scope.to_string(), "expires_in": lifetime.num_seconds() });
        self.record(
            admin.actor.clone(),
            "dev.mint_human",
            human.as_str(),
            Outcome::Success,
            details,
        )
        .await?;
        Ok(token)
    }
}

/// The claims of `leaf`'s token: `act` nested newest outermost (RFC 8693 §4.1).
pub(crate) fn claims_for(issuer: &str, chain: &[Delegation], leaf: &Delegation) -> Claims {
    let mut act: Option<Act> = None;
    for d in chain.iter().filter(|d| d.depth > 0) {
        act = Some(Act {
            sub: d.actor.to_string(),
            act: act.map(Box::new),
        });
    }
    let aud = if leaf.audience.is_any() {
        vec![issuer.to_owned()]
    } else {
        leaf.audience.entries().map(ToOwned::to_owned).collect()
    };
    Claims {
        iss: issuer.to_owned(),
        sub: leaf.subject.to_string(),
        aud,
        exp: leaf.expires_at.timestamp(),
        iat: leaf.issued_at.timestamp(),
        jti: leaf.id.to_string(),
        client_id: leaf.actor.to_string(),
        scope: leaf.scope.to_string(),
        act,
        txn: leaf.lineage.to_string(),
        depth: leaf.depth,
    }
}

/// The identity acting with a token: the outermost `act`, or `sub`.
pub(crate) fn current_actor(claims: &Claims) -> &str {
    claims
        .act
        .as_ref()
        .map_or(claims.sub.as_str(), |a| a.sub.as_str())
}

fn requested_lifetime(lifetime: Option<i64>, limits: &Limits) -> Result<TimeDelta, OAuthError> {
    match lifetime {
        None => Ok(limits.default_lifetime.min(limits.max_lifetime)),
        Some(l) if l <= 0 => Err(OAuthError::invalid_request(
            "requested_lifetime must be a positive number of seconds",
        )),
        // Compared in seconds first: a huge request must not overflow TimeDelta.
        Some(l) if l > limits.max_lifetime.num_seconds() => Err(refusal(&Refusal::Lifetime {
            requested: l,
            max: limits.max_lifetime.num_seconds(),
        })),
        Some(l) => TimeDelta::try_seconds(l)
            .ok_or_else(|| OAuthError::invalid_request("requested_lifetime is out of range")),
    }
}

fn refusal(r: &Refusal) -> OAuthError {
    OAuthError::new(r.error_code(), r.to_string())
}

fn new_id() -> Result<DelegationId, OAuthError> {
    let bytes = crate::keys::random_bytes::<16>().map_err(OAuthError::from)?;
    Ok(DelegationId::from_random(*bytes))
}

impl From<crate::jwt::TokenError> for OAuthError {
    fn from(e: crate::jwt::TokenError) -> Self {
        Self::invalid_request(e.to_string())
    }
}

/// Used by the audit details and the chain decision: actors and depths.
pub(crate) fn chain_summary(chain: &[Delegation]) -> Value {
    Value::Array(
        chain
            .iter()
            .map(|d| json!({ "delegation": d.id.as_str(), "actor": d.actor.as_str(), "depth": d.depth }))
            .collect(),
    )
}
