//! AuthZEN searches (Authorization API 1.0 §8): which subjects, resources or
//! actions a request would allow, answered by evaluating every candidate
//! the PDP knows — directory identities and pack entities of the requested
//! type, or the schema's actions — with the same policies as
//! [`Pdp::evaluate`]. Results are sorted ids; the caller paginates.

use crate::error::PolicyError;
use crate::names::external_id;
use crate::pdp::Pdp;
use crate::request::{Action, Entity};
use cedar_policy::{EntityTypeName, EntityUid};
use serde_json::{Map, Value};

impl Pdp {
    /// Subjects of `subject_type` that may do `action` on `resource`.
    /// Identities are returned as inventory ids (`human:alice`).
    pub fn search_subjects(
        &self,
        subject_type: &str,
        action: &Action,
        resource: &Entity,
        context: &Map<String, Value>,
    ) -> Result<Vec<String>, PolicyError> {
        let ty = self.policies().entity_type(subject_type)?;
        let shared = self.shared(action, resource)?;
        let candidates = self.candidates(&ty);
        let principals = candidates
            .iter()
            .map(|uid| self.candidate(&shared, uid.clone(), context))
            .collect();
        let decisions = self.run(&shared, principals);
        allowed(candidates.iter().map(external_id), decisions)
    }

    /// Resources of `resource_type` on which `subject` may do `action`.
    pub fn search_resources(
        &self,
        subject: &Entity,
        action: &Action,
        resource_type: &str,
        context: &Map<String, Value>,
    ) -> Result<Vec<String>, PolicyError> {
        let ty = self.policies().entity_type(resource_type)?;
        let candidates = self.candidates(&ty);
        let mut results = Vec::with_capacity(candidates.len());
        for uid in &candidates {
            let resource = Entity::new(resource_type, uid.id().unescaped());
            let shared = self.shared(action, &resource)?;
            let principal = self.principal(&shared, subject, context);
            results.extend(self.run(&shared, vec![principal]));
        }
        allowed(candidates.iter().map(external_id), results)
    }

    /// Actions `subject` may do on `resource`: the schema's actions that
    /// apply to their types (all actions when a type is not in the schema).
    pub fn search_actions(
        &self,
        subject: &Entity,
        resource: &Entity,
        context: &Map<String, Value>,
    ) -> Result<Vec<String>, PolicyError> {
        let p = self.policies().entity_type(&subject.kind)?;
        let r = self.policies().entity_type(&resource.kind)?;
        let mut names = Vec::new();
        let mut results = Vec::new();
        for uid in self.policies().candidate_actions(&p, &r) {
            let name = self.policies().action_name(&uid);
            let shared = self.shared(&Action::new(name.clone()), resource)?;
            let principal = self.principal(&shared, subject, context);
            results.extend(self.run(&shared, vec![principal]));
            names.push(name);
        }
        allowed(names.into_iter(), results)
    }

    /// Known entities of type `ty`, sorted by the id searches return.
    fn candidates(&self, ty: &EntityTypeName) -> Vec<EntityUid> {
        let mut out: Vec<EntityUid> = self
            .directory()
            .iter()
            .map(|(uid, _)| uid)
            .chain(self.policies().entities.by_uid.keys())
            .filter(|uid| uid.type_name() == ty)
            .cloned()
            .collect();
        out.sort_by_key(external_id);
        out.dedup();
        out
    }
}

/// The ids whose decision is allow; a request error fails the search, a
/// per-candidate evaluation error counts as not allowed.
fn allowed(
    ids: impl Iterator<Item = String>,
    decisions: Vec<Result<crate::Decision, PolicyError>>,
) -> Result<Vec<String>, PolicyError> {
    let mut out = Vec::new();
    for (id, decision) in ids.zip(decisions) {
        match decision {
            Ok(d) if d.allow => out.push(id),
            Ok(_) | Err(PolicyError::TooManyEntities | PolicyError::Evaluation(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
