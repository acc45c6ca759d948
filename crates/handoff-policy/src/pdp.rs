//! The policy decision point: one pack version plus a directory snapshot.
//!
//! Hot path per hop: the slice for (principal type, action, resource type)
//! comes from the pack's cache; the context and any property overlays are
//! built from typed values; the entities are gathered from the seeds (see
//! [`crate::gather`]), once for a whole chain when no hop carries
//! properties; Cedar evaluates only the slice. A hop whose slice is empty
//! is denied without calling Cedar.

use crate::directory::Directory;
use crate::entities::{Stored, dedup};
use crate::error::PolicyError;
use crate::gather::{Gather, Target};
use crate::names::{entity_id, type_kind};
use crate::policies::Policies;
use crate::request::{Action, Decision, Entity, Hop, Request};
use crate::slice::Slice;
use crate::value::{Budget, convert_map};
use cedar_policy::{AuthorizationError, Context, Entities, EntityUid, RestrictedExpression};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Attributes of identities that only the inventory sets.
const INVENTORY_ATTRIBUTES: [&str; 5] = ["kind", "status", "orphaned", "environment", "owner"];

/// Most hops evaluated in one call of [`Pdp::evaluate_hops`].
pub const MAX_HOPS: usize = 16;

/// Everything needed to decide: one policy version and a directory snapshot.
#[derive(Clone)]
pub struct Pdp {
    policies: Arc<Policies>,
    version: u64,
    directory: Directory,
    /// Inventory identities with the pack's team memberships added.
    members: Arc<HashMap<EntityUid, Arc<Stored>>>,
}

impl fmt::Debug for Pdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pdp")
            .field("version", &self.version)
            .field("policies", &self.policies.policy_count())
            .field("identities", &self.directory.len())
            .finish_non_exhaustive()
    }
}

/// The parts shared by every principal of one call: action and resource.
pub(crate) struct Shared {
    pub(crate) action: EntityUid,
    action_record: RestrictedExpression,
    /// Entity references in the action's properties (`context.action`).
    action_refs: Vec<EntityUid>,
    pub(crate) resource: Target,
    notes: Vec<String>,
}

/// One principal with its context, ready to evaluate.
pub(crate) struct Principal {
    pub(crate) target: Target,
    context: Context,
    context_refs: Vec<EntityUid>,
    notes: Vec<String>,
}

impl Pdp {
    /// A decision point over `policies` (recorded as `version`) and `directory`.
    /// Costs one entity rebuild per team membership in the pack's `entities.json`.
    pub fn new(policies: Arc<Policies>, version: u64, directory: Directory) -> Self {
        let mut members = HashMap::new();
        for (uid, teams) in &policies.entities.memberships {
            let Some(stored) = directory.get(uid) else {
                continue;
            };
            let (uid, attrs, mut parents) = stored.entity.clone().into_inner();
            parents.extend(teams.iter().cloned());
            if let Ok(entity) = cedar_policy::Entity::new(uid.clone(), attrs, parents) {
                members.insert(uid, Arc::new(Stored::new(entity)));
            }
        }
        Self {
            policies,
            version,
            directory,
            members: Arc::new(members),
        }
    }

    /// The policy version this decision point evaluates.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The compiled pack.
    pub fn policies(&self) -> &Arc<Policies> {
        &self.policies
    }

    /// The directory snapshot.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// A stored entity: identities (with memberships), then pack entities.
    pub(crate) fn lookup(&self, uid: &EntityUid) -> Option<&Arc<Stored>> {
        self.members
            .get(uid)
            .or_else(|| self.directory.get(uid))
            .or_else(|| self.policies.entities.by_uid.get(uid))
    }

    /// One AuthZEN evaluation. `Err` only when the request cannot be
    /// evaluated at all; callers answer it with `decision: false`.
    pub fn evaluate(&self, req: &Request) -> Result<Decision, PolicyError> {
        let shared = self.shared(&req.action, &req.resource)?;
        let principal = self.principal(&shared, &req.subject, &req.context)?;
        self.run(&shared, vec![Ok(principal)])
            .pop()
            .unwrap_or_else(|| Err(PolicyError::Evaluation("no decision".into())))
    }

    /// Per-hop evaluation for chains: the same action and resource for each
    /// principal, each with its own context. One result per hop, in order.
    pub fn evaluate_hops(
        &self,
        hops: &[Hop],
        action: &Action,
        resource: &Entity,
    ) -> Vec<Result<Decision, PolicyError>> {
        if hops.len() > MAX_HOPS {
            return hops
                .iter()
                .map(|_| Err(PolicyError::TooManyHops(hops.len())))
                .collect();
        }
        let shared = match self.shared(action, resource) {
            Ok(shared) => shared,
            Err(e) => return hops.iter().map(|_| Err(e.clone())).collect(),
        };
        let principals = hops
            .iter()
            .map(|hop| self.principal(&shared, &hop.principal, &hop.context))
            .collect();
        self.run(&shared, principals)
    }

    /// Maps the action and the resource (with its overlay).
    pub(crate) fn shared(&self, action: &Action, resource: &Entity) -> Result<Shared, PolicyError> {
        let mut budget = Budget::request();
        let action_uid = self.policies.action(&action.name)?;
        let props = convert_map(&action.properties, "action properties", &mut budget)?;
        let action_record =
            RestrictedExpression::new_record(props).map_err(|e| PolicyError::InvalidValue {
                part: "action properties",
                message: e.to_string(),
            })?;
        let action_refs = std::mem::take(&mut budget.refs);
        let resource = self.target(resource, "resource properties", &mut budget, None)?;
        Ok(Shared {
            action: action_uid,
            action_record,
            action_refs,
            resource,
            notes: budget.notes,
        })
    }

    /// Maps one principal and its context.
    pub(crate) fn principal(
        &self,
        shared: &Shared,
        subject: &Entity,
        context: &Map<String, Value>,
    ) -> Result<Principal, PolicyError> {
        let mut budget = Budget::request();
        // Subject and resource may be the same entity: both overlays apply,
        // the subject's properties win.
        let base = shared
            .resource
            .overlay
            .as_ref()
            .map(|o| (&shared.resource.uid, o));
        let target = self.target(subject, "subject properties", &mut budget, base)?;
        let (context, context_refs) = self.context(shared, context, &mut budget)?;
        Ok(Principal {
            target,
            context,
            context_refs,
            notes: budget.notes,
        })
    }

    /// A principal known by uid, without properties (search candidates).
    pub(crate) fn candidate(
        &self,
        shared: &Shared,
        uid: EntityUid,
        context: &Map<String, Value>,
    ) -> Result<Principal, PolicyError> {
        let mut budget = Budget::request();
        let (context, context_refs) = self.context(shared, context, &mut budget)?;
        Ok(Principal {
            target: Target { uid, overlay: None },
            context,
            context_refs,
            notes: budget.notes,
        })
    }

    /// The Cedar context: the AuthZEN context plus `action` (the action's properties).
    fn context(
        &self,
        shared: &Shared,
        context: &Map<String, Value>,
        budget: &mut Budget,
    ) -> Result<(Context, Vec<EntityUid>), PolicyError> {
        let mut pairs = convert_map(context, "context", budget)?;
        pairs.retain(|(k, _)| k != "action");
        pairs.push(("action".to_owned(), shared.action_record.clone()));
        let context = Context::from_pairs(pairs).map_err(|e| PolicyError::InvalidValue {
            part: "context",
            message: e.to_string(),
        })?;
        Ok((context, std::mem::take(&mut budget.refs)))
    }

    /// Maps an AuthZEN entity to a uid and, when it has properties, an
    /// overlay on the stored entity (or on `base` when it is the same uid).
    pub(crate) fn target(
        &self,
        entity: &Entity,
        part: &'static str,
        budget: &mut Budget,
        base: Option<(&EntityUid, &Stored)>,
    ) -> Result<Target, PolicyError> {
        let ty = self.policies.entity_type(&entity.kind)?;
        let id = entity_id(&ty, &entity.id).ok_or_else(|| PolicyError::InvalidId {
            kind: crate::error::shorten(&entity.kind),
            id: crate::error::shorten(&entity.id),
        })?;
        let uid = EntityUid::from_type_name_and_id(ty, id);
        if entity.properties.is_empty() {
            let overlay = base.filter(|(b, _)| **b == uid).map(|(_, o)| o.clone());
            return Ok(Target { uid, overlay });
        }
        let mut props = convert_map(&entity.properties, part, budget)?;
        if type_kind(uid.type_name()).is_some() {
            // The inventory is the truth about an identity: a request may add
            // attributes but not change its kind, status, owner or environment.
            props.retain(|(key, _)| {
                let reserved = INVENTORY_ATTRIBUTES.contains(&key.as_str());
                if reserved {
                    budget.notes.push(format!(
                        "{part}: \"{}\" comes from the inventory and was ignored",
                        crate::error::shorten(key)
                    ));
                }
                !reserved
            });
        }
        let stored = base
            .filter(|(b, _)| **b == uid)
            .map(|(_, o)| o)
            .or_else(|| self.lookup(&uid).map(AsRef::as_ref));
        let (mut attrs, parents, mut refs) = match stored {
            Some(s) => {
                let (_, attrs, parents) = s.entity.clone().into_inner();
                (attrs, parents, s.refs.clone())
            }
            None => Default::default(),
        };
        attrs.extend(props);
        refs.append(&mut budget.refs);
        dedup(&mut refs);
        let parent_list: Vec<EntityUid> = parents.iter().cloned().collect();
        let entity = cedar_policy::Entity::new(uid.clone(), attrs, parents).map_err(|e| {
            PolicyError::InvalidValue {
                part,
                message: e.to_string(),
            }
        })?;
        Ok(Target {
            uid,
            overlay: Some(Stored {
                entity,
                refs,
                parents: parent_list,
            }),
        })
    }

    /// Decides for every principal: slices, gathering (shared when no
    /// principal has an overlay and the call is chain-sized), Cedar.
    pub(crate) fn run(
        &self,
        shared: &Shared,
        principals: Vec<Result<Principal, PolicyError>>,
    ) -> Vec<Result<Decision, PolicyError>> {
        let resource_type = shared.resource.uid.type_name();
        // A chain has few principal types: look each slice up once per call.
        let mut slices: Vec<Arc<Slice>> = Vec::new();
        let sliced: Vec<Result<(Principal, Arc<Slice>), PolicyError>> = principals
            .into_iter()
            .map(|p| {
                let p = p?;
                let ty = p.target.uid.type_name();
                if let Some(slice) = slices.iter().find(|s| &s.principal == ty) {
                    return Ok((p, Arc::clone(slice)));
                }
                let key = (ty.clone(), shared.action.clone(), resource_type.clone());
                let slice = self.policies.slice(key)?;
                slices.push(Arc::clone(&slice));
                Ok((p, slice))
            })
            .collect();
        let live = || {
            sliced
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .filter(|(_, s)| !s.is_empty())
        };
        let share = sliced.len() <= MAX_HOPS && live().all(|(p, _)| p.target.overlay.is_none());
        let common = if share && live().next().is_some() {
            let mut gather = Gather::new(self);
            gather.target(&shared.resource);
            gather.seeds([&shared.action]);
            gather.seeds(&shared.action_refs);
            for (p, slice) in live() {
                gather.target(&p.target);
                gather.seeds(&slice.literals);
                gather.seeds(&p.context_refs);
            }
            Some(gather.finish())
        } else {
            None
        };
        sliced
            .into_iter()
            .map(|r| {
                let (p, slice) = r?;
                let mut notes = shared.notes.clone();
                notes.extend(p.notes.iter().cloned());
                if slice.is_empty() {
                    return Ok(Decision::deny(notes));
                }
                let own;
                let entities = match &common {
                    Some(Ok(entities)) => entities,
                    Some(Err(e)) => return Err(e.clone()),
                    None => {
                        let mut gather = Gather::new(self);
                        gather.target(&p.target);
                        gather.target(&shared.resource);
                        gather.seeds([&shared.action]);
                        gather.seeds(&shared.action_refs);
                        gather.seeds(&slice.literals);
                        gather.seeds(&p.context_refs);
                        own = gather.finish()?;
                        &own
                    }
                };
                self.decide(shared, p, &slice, entities, notes)
            })
            .collect()
    }

    fn decide(
        &self,
        shared: &Shared,
        p: Principal,
        slice: &Slice,
        entities: &Entities,
        mut errors: Vec<String>,
    ) -> Result<Decision, PolicyError> {
        let request = cedar_policy::Request::new(
            p.target.uid,
            shared.action.clone(),
            shared.resource.uid.clone(),
            p.context,
            None,
        )
        .map_err(|e| PolicyError::Evaluation(e.to_string()))?;
        let response = self
            .policies
            .authorizer
            .is_authorized(&request, &slice.set, entities);
        let mut reasons: Vec<String> = response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        reasons.sort();
        errors.extend(response.diagnostics().errors().map(|e| match e {
            AuthorizationError::PolicyEvaluationError(e) => {
                format!("{}: {}", e.policy_id(), e.inner())
            }
        }));
        Ok(Decision {
            allow: response.decision() == cedar_policy::Decision::Allow,
            reasons,
            errors,
            hops: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_shareable<T: Send + Sync + Clone>() {}

    #[test]
    fn decision_points_are_shareable_across_threads_and_cheap_to_clone() {
        assert_shareable::<Pdp>();
        assert_shareable::<Directory>();
        let policies = crate::compile(&crate::PackFiles::default()).unwrap();
        let pdp = Pdp::new(Arc::new(policies), 7, Directory::default());
        let copy = pdp.clone();
        assert!(Arc::ptr_eq(copy.policies(), pdp.policies()));
        assert_eq!(copy.version(), 7);
        let shown = format!("{copy:?}");
        assert!(shown.contains("version: 7"), "{shown}");
    }

    #[test]
    fn context_action_is_always_the_action_properties() {
        let policies = crate::compile(&crate::PackFiles::default()).unwrap();
        let pdp = Pdp::new(Arc::new(policies), 1, Directory::default());
        let mut action = Action::new("do");
        action.properties.insert("soft".into(), Value::Bool(true));
        let shared = pdp.shared(&action, &Entity::new("Doc", "d")).unwrap();
        let mut context = Map::new();
        context.insert("action".into(), Value::String("spoofed".into()));
        context.insert("risk".into(), Value::String("low".into()));
        let principal = pdp
            .principal(&shared, &Entity::new("human", "a"), &context)
            .unwrap();
        let Some(cedar_policy::EvalResult::Record(record)) = principal.context.get("action") else {
            panic!("context.action is a record")
        };
        assert_eq!(
            record.get("soft"),
            Some(&cedar_policy::EvalResult::Bool(true))
        );
        assert_eq!(
            principal.context.get("risk"),
            Some(cedar_policy::EvalResult::String("low".into()))
        );
    }
}
