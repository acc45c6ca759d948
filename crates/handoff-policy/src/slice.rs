//! Policy slices: the policies of a pack whose scope can match a request of
//! a given (principal type, action, resource type). A policy is left out
//! only when its scope provably cannot match — `principal == X` or
//! `principal is T` of another type, an action constraint that neither names
//! the action nor one of its groups, or `principal in G` where the schema
//! does not let the principal's type be a descendant of `G`'s type. Every
//! entity source (inventory, `entities.json`, memberships) conforms to the
//! schema and request overlays add no parents, so the last rule is sound.

use crate::error::PolicyError;
use cedar_policy::{
    ActionConstraint, EntityTypeName, EntityUid, Policy, PolicySet, PrincipalConstraint,
    ResourceConstraint, Schema,
};
use std::collections::HashMap;

/// The cache key of a slice.
pub(crate) type SliceKey = (EntityTypeName, EntityUid, EntityTypeName);

/// The policies that may apply to one request shape.
#[derive(Debug)]
pub(crate) struct Slice {
    /// The principal type the slice is for.
    pub(crate) principal: EntityTypeName,
    /// The policies.
    pub(crate) set: PolicySet,
    /// Entity literals in the conditions of those policies (other than
    /// actions): gathered with every request, because a condition may read
    /// their attributes. Literals only in the scope (`principal in G`,
    /// `resource == R`) are not needed: `in` reads the ancestors of the
    /// principal or resource, `==` compares uids.
    pub(crate) literals: Vec<EntityUid>,
}

impl Slice {
    /// Whether no policy applies: the decision is a deny without evaluation.
    pub(crate) fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

/// Entity literals in a policy's `when`/`unless` conditions, from its JSON
/// form (computed once per slice, so the conversion cost does not matter).
/// Falls back to every literal of the policy if the conversion fails.
fn condition_literals(policy: &Policy) -> Vec<EntityUid> {
    fn walk(value: &serde_json::Value, out: &mut Vec<EntityUid>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(uid) = map
                    .get("__entity")
                    .and_then(|e| EntityUid::from_json(e.clone()).ok())
                {
                    out.push(uid);
                }
                map.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    match policy.to_json() {
        Ok(json) => walk(
            json.get("conditions").unwrap_or(&serde_json::Value::Null),
            &mut out,
        ),
        Err(_) => out = policy.entity_literals(),
    }
    out.retain(|uid| uid.type_name().basename() != "Action");
    out
}

/// What the slicer needs to know about the schema and action groups.
pub(crate) struct Scope<'a> {
    pub(crate) schema: &'a Schema,
    pub(crate) action_ancestors: &'a HashMap<EntityUid, Vec<EntityUid>>,
}

impl Scope<'_> {
    /// Builds the slice of `policies` for `key`.
    pub(crate) fn slice<'p>(
        &self,
        policies: impl Iterator<Item = &'p Policy>,
        key: &SliceKey,
    ) -> Result<Slice, PolicyError> {
        let (principal, action, resource) = key;
        let mut set = PolicySet::new();
        let mut literals = Vec::new();
        for policy in policies {
            let keep = self.principal_may_match(&policy.principal_constraint(), principal)
                && self.action_may_match(&policy.action_constraint(), action)
                && self.resource_may_match(&policy.resource_constraint(), resource);
            if !keep {
                continue;
            }
            literals.extend(condition_literals(policy));
            set.add(policy.clone())
                .map_err(|e| PolicyError::Evaluation(e.to_string()))?;
        }
        crate::entities::dedup(&mut literals);
        Ok(Slice {
            principal: principal.clone(),
            set,
            literals,
        })
    }

    /// Whether an entity of type `ty` can be `in` `group`.
    fn may_be_in(&self, ty: &EntityTypeName, group: &EntityUid) -> bool {
        let target = group.type_name();
        if target == ty {
            return true;
        }
        match self.schema.ancestors(ty) {
            Some(mut ancestors) => ancestors.any(|a| a == target),
            // A type the schema does not know: keep the policy.
            None => true,
        }
    }

    fn principal_may_match(&self, c: &PrincipalConstraint, ty: &EntityTypeName) -> bool {
        match c {
            PrincipalConstraint::Any => true,
            PrincipalConstraint::Eq(uid) => uid.type_name() == ty,
            PrincipalConstraint::In(group) => self.may_be_in(ty, group),
            PrincipalConstraint::Is(t) => t == ty,
            PrincipalConstraint::IsIn(t, group) => t == ty && self.may_be_in(ty, group),
        }
    }

    fn resource_may_match(&self, c: &ResourceConstraint, ty: &EntityTypeName) -> bool {
        match c {
            ResourceConstraint::Any => true,
            ResourceConstraint::Eq(uid) => uid.type_name() == ty,
            ResourceConstraint::In(group) => self.may_be_in(ty, group),
            ResourceConstraint::Is(t) => t == ty,
            ResourceConstraint::IsIn(t, group) => t == ty && self.may_be_in(ty, group),
        }
    }

    fn action_may_match(&self, c: &ActionConstraint, action: &EntityUid) -> bool {
        match c {
            ActionConstraint::Any => true,
            ActionConstraint::Eq(uid) => uid == action,
            ActionConstraint::In(list) => {
                let groups = self.action_ancestors.get(action);
                list.iter()
                    .any(|a| a == action || groups.is_some_and(|g| g.contains(a)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    const SCHEMA: &str = r#"
        entity Doc in [Folder]; entity Folder;
        action edit;
        action write in [edit];
        action read in [edit] appliesTo { principal: [Human, Agent], resource: [Doc] };
    "#;

    fn ids(slice: &Slice) -> Vec<String> {
        let mut ids: Vec<_> = slice.set.policies().map(|p| p.id().to_string()).collect();
        ids.sort();
        ids
    }

    fn uid(s: &str) -> EntityUid {
        EntityUid::from_str(s).unwrap()
    }

    fn ty(s: &str) -> EntityTypeName {
        EntityTypeName::from_str(s).unwrap()
    }

    #[test]
    fn policies_whose_scope_cannot_match_are_left_out() {
        let files = crate::PackFiles {
            files: [("schema.cedarschema".to_owned(), SCHEMA.to_owned())].into(),
        };
        let schema = crate::schema::build(&files).unwrap();
        let src = r#"
            @id("any") permit(principal, action, resource);
            @id("human-eq") permit(principal == Human::"a", action, resource);
            @id("agent-is") permit(principal is Agent, action, resource);
            @id("in-team") permit(principal in Team::"t", action, resource);
            @id("in-folder") permit(principal in Folder::"f", action, resource);
            @id("read") permit(principal, action == Action::"read", resource);
            @id("edit-group") permit(principal, action in [Action::"edit"], resource);
            @id("write") permit(principal, action == Action::"write", resource);
            @id("doc-in-folder") permit(principal, action, resource is Doc in Folder::"f");
            @id("team-resource") permit(principal, action, resource is Team);
            @id("reads-a-literal") permit(principal, action == Action::"read", resource) when { Team::"t".name == "x" && action == Action::"read" };
        "#;
        let set = PolicySet::from_str(src).unwrap();
        let policies: Vec<Policy> = set
            .policies()
            .map(|p| p.new_id(cedar_policy::PolicyId::new(p.annotation("id").unwrap())))
            .collect();
        let mut ancestors = HashMap::new();
        ancestors.insert(uid(r#"Action::"read""#), vec![uid(r#"Action::"edit""#)]);
        let scope = Scope {
            schema: &schema,
            action_ancestors: &ancestors,
        };
        let key = (ty("Human"), uid(r#"Action::"read""#), ty("Doc"));
        let slice = scope.slice(policies.iter(), &key).unwrap();
        assert_eq!(
            ids(&slice),
            [
                "any",
                "doc-in-folder",
                "edit-group",
                "human-eq",
                "in-team",
                "read",
                "reads-a-literal"
            ]
        );
        let literals: Vec<String> = slice.literals.iter().map(ToString::to_string).collect();
        assert_eq!(
            literals,
            [r#"Team::"t""#],
            "only condition literals: no scope literals, no actions"
        );

        let unknown = (ty("user"), uid(r#"Action::"nope""#), ty("thing"));
        let slice = scope.slice(policies.iter(), &unknown).unwrap();
        assert_eq!(
            ids(&slice),
            ["any", "in-folder", "in-team"],
            "unknown types keep `in` policies"
        );
        assert!(!slice.is_empty());
    }
}
