//! Policy use cases: versioned packs (push, list, show, rollback), the live
//! decision point kept current with the inventory, and access evaluation
//! with its decision log.
//!
//! The decision point is a snapshot (`Arc<Pdp>`): readers clone the `Arc`
//! and evaluate without locks; an identity change or a new active version
//! swaps in a new snapshot. Nothing on the decision path touches the store
//! except the decision log's audit record, which goes through the
//! group-commit appender.

use crate::auth::Actor;
use crate::{Admin, AppendError, Engine, EngineError};
use aws_lc_rs::digest;
use handoff_audit::{Draft, Outcome};
use handoff_core::{Identity, IdentityId, Limit, PolicyVersion, Status};
use handoff_policy::{Decision, Directory, LogRule, PackFiles, Pdp, Policies, Request, compile};
use handoff_store::{Change, IdentityFilter, Store, Write};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The live policy state: the inventory as Cedar entities and the active pack.
#[derive(Debug, Default)]
pub(crate) struct PolicyState {
    live: RwLock<Live>,
}

#[derive(Debug, Default)]
struct Live {
    directory: Directory,
    /// Every identity's status, for chain checks on the decision path.
    statuses: HashMap<IdentityId, Status>,
    active: Option<(Arc<Policies>, u64)>,
    pdp: Option<Arc<Pdp>>,
}

impl Live {
    fn rebuild(&mut self) {
        self.pdp = self
            .active
            .as_ref()
            .map(|(p, v)| Arc::new(Pdp::new(p.clone(), *v, self.directory.clone())));
    }
}

impl PolicyState {
    /// Loads every identity and the active policy version from the store.
    pub(crate) async fn load(store: &dyn Store) -> Result<Self, EngineError> {
        let mut identities = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .identities(
                    &IdentityFilter::default(),
                    after.as_ref(),
                    Limit::new(Some(500))?,
                )
                .await?;
            identities.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let statuses = identities
            .iter()
            .map(|i| (i.id.clone(), i.status))
            .collect();
        let mut live = Live {
            statuses,
            directory: Directory::from_identities(identities),
            ..Live::default()
        };
        if let Some(version) = store.active_policy_version().await? {
            live.active = Some((Arc::new(load_version(store, version).await?), version));
        }
        live.rebuild();
        Ok(Self {
            live: RwLock::new(live),
        })
    }

    /// The current decision point, if a pack is active.
    pub(crate) fn pdp(&self) -> Option<Arc<Pdp>> {
        self.live.read().ok().and_then(|l| l.pdp.clone())
    }

    /// Statuses of several identities under one lock.
    pub(crate) fn statuses<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a IdentityId>,
    ) -> HashMap<IdentityId, Status> {
        let Ok(live) = self.live.read() else {
            return HashMap::new();
        };
        ids.into_iter()
            .filter_map(|id| live.statuses.get(id).map(|s| (id.clone(), *s)))
            .collect()
    }

    fn active_version(&self) -> Option<u64> {
        self.live
            .read()
            .ok()
            .and_then(|l| l.active.as_ref().map(|(_, v)| *v))
    }

    /// Reflects changed identities in the decision point.
    pub(crate) fn identities_changed(&self, identities: &[Identity]) {
        if let Ok(mut live) = self.live.write() {
            for identity in identities {
                live.directory.upsert(identity);
                live.statuses.insert(identity.id.clone(), identity.status);
            }
            live.rebuild();
        }
    }

    /// Reloads everything from the store (the database went back in time,
    /// e.g. a restore: what this node holds may be newer than what is stored).
    pub(crate) async fn reload_all(&self, store: &dyn Store) -> Result<(), EngineError> {
        let fresh = Self::load(store).await?;
        let live = fresh
            .live
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Ok(mut held) = self.live.write() {
            *held = live;
        }
        Ok(())
    }

    /// Activates the stored active version if it is not the one held
    /// (another node pushed or rolled back).
    pub(crate) async fn reload_active(&self, store: &dyn Store) -> Result<(), EngineError> {
        let Some(version) = store.active_policy_version().await? else {
            return Ok(());
        };
        if self.active_version() == Some(version) {
            return Ok(());
        }
        let policies = load_version(store, version).await?;
        self.activate(Arc::new(policies), version);
        tracing::info!(version, "policy version activated by another node");
        Ok(())
    }

    fn activate(&self, policies: Arc<Policies>, version: u64) {
        if let Ok(mut live) = self.live.write() {
            live.active = Some((policies, version));
            live.rebuild();
        }
    }
}

/// Reads and compiles the stored active version `version`.
async fn load_version(store: &dyn Store, version: u64) -> Result<Policies, EngineError> {
    let (_, files) = store
        .policy_version(version)
        .await?
        .ok_or_else(|| EngineError::Store(format!("active policy version {version} is missing")))?;
    compile_stored(&files, version)
}

fn compile_stored(files: &str, version: u64) -> Result<Policies, EngineError> {
    let pack: PackFiles = serde_json::from_str(files)
        .map_err(|e| EngineError::Store(format!("policy version {version} is unreadable: {e}")))?;
    compile(&pack).map_err(|d| {
        EngineError::Store(format!(
            "policy version {version} no longer compiles: {}",
            d.first().map(ToString::to_string).unwrap_or_default()
        ))
    })
}

/// SHA-256 over the pack's files, names and contents length-prefixed.
fn digest_of(pack: &PackFiles) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for (name, text) in &pack.files {
        for part in [name.as_bytes(), text.as_bytes()] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
    }
    handoff_audit::hex::encode(ctx.finish().as_ref())
}

/// How a batch of evaluations stops early (AuthZEN 1.0, `evaluations_semantic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Semantic {
    /// Evaluate every item (the default).
    #[default]
    ExecuteAll,
    /// Stop after the first deny; answer the items up to and including it.
    DenyOnFirstDeny,
    /// Stop after the first permit; answer the items up to and including it.
    PermitOnFirstPermit,
}

/// The answer to a push: the version that is now active and whether it is new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The active version.
    pub version: PolicyVersion,
    /// False when the pack equals the active version (nothing was stored).
    pub created: bool,
}

impl Engine {
    /// Validates a pack and stores it as the next version, which becomes
    /// active. An invalid pack changes nothing and returns every problem.
    /// Pushing the pack that is already active changes nothing either.
    pub async fn push_policies(
        &self,
        admin: &Admin,
        pack: PackFiles,
    ) -> Result<Pushed, EngineError> {
        admin.require_write()?;
        let policies = compile(&pack).map_err(EngineError::InvalidPack)?;
        let digest = digest_of(&pack);
        let versions = self.store.policy_versions().await?;
        let active = self.store.active_policy_version().await?;
        if let Some(current) = versions
            .iter()
            .find(|v| Some(v.version) == active && v.digest == digest)
        {
            return Ok(Pushed {
                version: current.clone(),
                created: false,
            });
        }
        let version = PolicyVersion {
            version: versions.last().map_or(1, |v| v.version + 1),
            digest,
            policy_count: u32::try_from(policies.policy_count()).unwrap_or(u32::MAX),
            created_at: self.clock.now(),
            created_by: admin.actor.audit_name(),
        };
        let files = serde_json::to_string(&pack)
            .map_err(|e| EngineError::Store(format!("cannot encode the pack: {e}")))?;
        let details = json!({
            "version": version.version,
            "digest": version.digest,
            "policy_count": version.policy_count,
            "files": pack.files.keys().collect::<Vec<_>>(),
            "previous": active,
        });
        let target = format!("policy:{}", version.version);
        self.submit(
            admin,
            Write::PutPolicyVersion {
                version: version.clone(),
                files,
            },
            "policy.push",
            &target,
            details,
            "policy version",
        )
        .await?;
        self.policy.activate(Arc::new(policies), version.version);
        Ok(Pushed {
            version,
            created: true,
        })
    }

    /// Every stored version, oldest first, and the active one.
    pub async fn policy_versions(&self) -> Result<(Vec<PolicyVersion>, Option<u64>), EngineError> {
        Ok((
            self.store.policy_versions().await?,
            self.store.active_policy_version().await?,
        ))
    }

    /// One stored version with its files.
    pub async fn policy_version(
        &self,
        version: u64,
    ) -> Result<(PolicyVersion, PackFiles), EngineError> {
        let (meta, files) = self.store.policy_version(version).await?.ok_or_else(|| {
            EngineError::NotFound(format!("policy version {version} does not exist"))
        })?;
        let pack = serde_json::from_str(&files).map_err(|e| {
            EngineError::Store(format!("policy version {version} is unreadable: {e}"))
        })?;
        Ok((meta, pack))
    }

    /// Makes a stored version the active one again.
    pub async fn activate_policy_version(
        &self,
        admin: &Admin,
        version: u64,
    ) -> Result<PolicyVersion, EngineError> {
        admin.require_write()?;
        let (meta, files) = self.store.policy_version(version).await?.ok_or_else(|| {
            EngineError::NotFound(format!("policy version {version} does not exist"))
        })?;
        let from = self.store.active_policy_version().await?;
        if from == Some(version) {
            return Err(EngineError::Conflict(format!(
                "policy version {version} is already active"
            )));
        }
        let policies = compile_stored(&files, version)?;
        let write = Write::ActivatePolicyVersion {
            version,
            from,
            at: self.clock.now(),
        };
        let details = json!({ "version": version, "previous": from });
        self.submit(
            admin,
            write,
            "policy.activate",
            &format!("policy:{version}"),
            details,
            "policy version",
        )
        .await?;
        self.policy.activate(Arc::new(policies), version);
        Ok(meta)
    }

    /// The version deciding right now.
    pub fn active_policy(&self) -> Option<u64> {
        self.policy.active_version()
    }

    /// The decision point deciding right now (for searches and tests).
    pub fn pdp(&self) -> Option<Arc<Pdp>> {
        self.policy.pdp()
    }

    /// One access evaluation. The decision is returned only once its audit
    /// record is durable (unless the pack's settings skip logging for this
    /// action); no active pack means deny.
    pub async fn evaluate(
        &self,
        actor: &Actor,
        request: &Request,
    ) -> Result<Decision, EngineError> {
        let mut results = self
            .decide(actor, std::iter::once(Ok(request)), Semantic::ExecuteAll)
            .await?;
        results
            .pop()
            .ok_or_else(|| EngineError::Store("no decision was produced".into()))
    }

    /// A batch of evaluations, answered in request order. An item that could
    /// not be parsed (`Err(message)`) is a deny with that message, not a
    /// failed batch. Every decision made is logged in one group commit.
    pub async fn evaluate_many(
        &self,
        actor: &Actor,
        items: Vec<Result<Request, String>>,
        semantic: Semantic,
    ) -> Result<Vec<Decision>, EngineError> {
        let items = items.iter().map(|i| i.as_ref().map_err(String::as_str));
        self.decide(actor, items, semantic).await
    }

    /// Evaluates borrowed items (no request is copied on the decision path)
    /// and logs every decision made in one group commit.
    async fn decide<'a>(
        &self,
        actor: &Actor,
        items: impl Iterator<Item = Result<&'a Request, &'a str>>,
        semantic: Semantic,
    ) -> Result<Vec<Decision>, EngineError> {
        // Fail closed: a node cut off from the others cannot know what
        // they revoked or suspended.
        self.check_fresh()?;
        let pdp = self.policy.pdp();
        let mut decisions = Vec::new();
        let mut changes = Vec::new();
        for item in items {
            let token = item.as_ref().ok().and_then(|r| {
                r.subject
                    .properties
                    .get(crate::chains::TOKEN_PROPERTY)
                    .map(|t| {
                        t.as_str()
                            .ok_or("subject.properties.token must be a string")
                    })
            });
            let mut chain = None;
            let decision = match (&item, &pdp, token) {
                (Err(message), _, _) => deny((*message).to_owned()),
                (Ok(_), None, _) => deny("no policy pack is active".into()),
                (Ok(_), Some(_), Some(Err(message))) => deny(message.to_owned()),
                (Ok(req), Some(pdp), Some(Ok(token))) => {
                    let done = self.decide_chain(pdp, req, token).await;
                    chain = done.chain;
                    done.decision
                }
                (Ok(req), Some(pdp), None) => {
                    pdp.evaluate(req).unwrap_or_else(|e| deny(e.to_string()))
                }
            };
            if let Ok(req) = &item
                && should_log(pdp.as_deref(), &req.action.name)?
            {
                changes.push(self.decision_record(actor, req, &decision, pdp.as_deref(), chain));
            }
            let stop = match semantic {
                Semantic::ExecuteAll => false,
                Semantic::DenyOnFirstDeny => !decision.allow,
                Semantic::PermitOnFirstPermit => decision.allow,
            };
            decisions.push(decision);
            if stop {
                break;
            }
        }
        if !changes.is_empty() {
            for result in self.appender.submit_many(changes).await {
                result.map_err(|e| match e {
                    AppendError::Write(e) => EngineError::from(e),
                    AppendError::Unavailable => EngineError::AuditUnavailable,
                })?;
            }
        }
        Ok(decisions)
    }

    /// Logs one AuthZEN search (`subject`, `resource` or `action`) and how
    /// many matches it found; like decisions, never properties or context.
    /// Returns once the record is durable.
    pub async fn record_search(
        &self,
        actor: &Actor,
        what: &str,
        details: serde_json::Value,
    ) -> Result<(), EngineError> {
        self.check_fresh()?;
        let target = format!("policy:{}", self.policy.active_version().unwrap_or(0));
        let kind = format!("access.search.{what}");
        self.record(actor.clone(), &kind, &target, Outcome::Success, details)
            .await
    }

    fn decision_record(
        &self,
        actor: &Actor,
        req: &Request,
        decision: &Decision,
        pdp: Option<&Pdp>,
        chain: Option<Arc<Vec<handoff_core::Delegation>>>,
    ) -> Change {
        // Properties and context are never logged: they may carry tokens
        // or personal data. Types, ids and the verdict are enough to audit.
        let mut details = json!({
            "subject": { "type": req.subject.kind, "id": req.subject.id },
            "action": req.action.name,
            "resource": { "type": req.resource.kind, "id": req.resource.id },
            "decision": decision.allow,
            "reasons": decision.reasons,
            "errors": decision.errors,
            "policy_version": pdp.map(Pdp::version),
        });
        if let (Some(chain), Some(map)) = (chain, details.as_object_mut()) {
            let lineage = chain.first().map(|r| r.lineage.to_string());
            map.insert("lineage".into(), json!(lineage));
            map.insert("chain".into(), crate::delegation::chain_summary(&chain));
            map.insert("hops".into(), json!(decision.hops));
        }
        Change {
            write: Write::Nothing,
            record: Draft {
                time: self.clock.now(),
                kind: "access.evaluate".into(),
                actor: actor.audit_name(),
                target: format!("{}:{}", req.resource.kind, req.resource.id),
                outcome: if decision.allow {
                    Outcome::Allow
                } else {
                    Outcome::Deny
                },
                details,
            },
        }
    }
}

fn deny(error: String) -> Decision {
    Decision {
        allow: false,
        reasons: Vec::new(),
        errors: vec![error],
        hops: Vec::new(),
    }
}

/// Whether a decision on `action` is logged under the active pack's settings.
/// Randomness is drawn only for sampled actions, keeping it off the common path.
fn should_log(pdp: Option<&Pdp>, action: &str) -> Result<bool, EngineError> {
    let Some(pdp) = pdp else { return Ok(true) };
    match pdp.policies().settings().rule(action) {
        LogRule::Log => Ok(true),
        LogRule::Skip => Ok(false),
        LogRule::Sample(rate) => {
            let bytes = crate::keys::random_bytes::<8>()?;
            let draw = u64::from_be_bytes(*bytes) as f64 / (u64::MAX as f64 + 1.0);
            Ok(draw < rate)
        }
    }
}
