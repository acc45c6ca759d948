//! A compiled pack: schema, policies, pack entities, settings, and the
//! per-(principal type, action, resource type) slice cache.

use crate::entities::{PackEntities, Stored};
use crate::error::{PolicyError, shorten};
use crate::names::{action_type, builtin_aliases};
use crate::settings::PackSettings;
use crate::slice::{Scope, Slice, SliceKey};
use cedar_policy::{Authorizer, EntityId, EntityTypeName, EntityUid, Policy, Schema};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

/// Most cached slices per pack; past it slices are built per request, so
/// requests naming ever new types cannot grow memory without bound.
const MAX_CACHED_SLICES: usize = 4096;

/// A compiled, validated pack. Immutable; share it as `Arc<Policies>`.
pub struct Policies {
    pub(crate) schema: Schema,
    /// Every policy, in pack order (files by name, then source order).
    pub(crate) policies: Vec<Policy>,
    pub(crate) entities: PackEntities,
    action_names: HashMap<String, EntityUid>,
    action_list: Vec<String>,
    action_ancestors: HashMap<EntityUid, Vec<EntityUid>>,
    types: HashMap<String, EntityTypeName>,
    settings: PackSettings,
    pub(crate) authorizer: Authorizer,
    slices: RwLock<HashMap<SliceKey, Arc<Slice>>>,
}

impl Clone for Policies {
    /// A copy with an empty slice cache.
    fn clone(&self) -> Self {
        Self {
            schema: self.schema.clone(),
            policies: self.policies.clone(),
            entities: self.entities.clone(),
            action_names: self.action_names.clone(),
            action_list: self.action_list.clone(),
            action_ancestors: self.action_ancestors.clone(),
            types: self.types.clone(),
            settings: self.settings.clone(),
            authorizer: Authorizer::new(),
            slices: RwLock::new(HashMap::new()),
        }
    }
}

impl fmt::Debug for Policies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policies")
            .field("policies", &self.policies.len())
            .field("entities", &self.entities.by_uid.len())
            .field("actions", &self.action_list)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Policies {
    /// Assembles a compiled pack; fails only if the schema's action
    /// entities cannot be built (reported by `compile` as a diagnostic).
    pub(crate) fn new(
        schema: Schema,
        policies: Vec<Policy>,
        mut entities: PackEntities,
        settings: PackSettings,
    ) -> Result<Self, String> {
        let action_entities = schema.action_entities().map_err(|e| e.to_string())?;
        let mut action_ancestors = HashMap::new();
        for entity in action_entities.iter() {
            let uid = entity.uid();
            let ancestors: Vec<EntityUid> = action_entities
                .ancestors(&uid)
                .map(|a| a.cloned().collect())
                .unwrap_or_default();
            if !ancestors.is_empty() {
                // Only actions in groups need their entity: `action in [..]`
                // of a groupless action is decided by equality alone.
                entities
                    .by_uid
                    .insert(uid.clone(), Arc::new(Stored::new(entity.clone())));
                action_ancestors.insert(uid, ancestors);
            }
        }
        let applicable: BTreeSet<EntityUid> = schema
            .request_envs()
            .map(|env| env.action().clone())
            .collect();
        let mut by_id: HashMap<String, Vec<EntityUid>> = HashMap::new();
        for uid in schema.actions() {
            by_id
                .entry(uid.id().unescaped().to_owned())
                .or_default()
                .push(uid.clone());
        }
        let mut action_names = HashMap::new();
        let mut action_list = Vec::new();
        for (id, uids) in by_id {
            let unique = uids.len() == 1;
            for uid in uids {
                let full = uid.to_string();
                if applicable.contains(&uid) {
                    action_list.push(if unique { id.clone() } else { full.clone() });
                }
                if unique {
                    action_names.insert(id.clone(), uid.clone());
                }
                action_names.insert(full, uid);
            }
        }
        action_list.sort();
        let mut types: HashMap<String, EntityTypeName> = schema
            .entity_types()
            .map(|t| (t.to_string(), t.clone()))
            .collect();
        for (alias, ty) in builtin_aliases() {
            types.insert(alias.to_owned(), ty.clone());
        }
        Ok(Self {
            schema,
            policies,
            entities,
            action_names,
            action_list,
            action_ancestors,
            types,
            settings,
            authorizer: Authorizer::new(),
            slices: RwLock::new(HashMap::new()),
        })
    }

    /// The pack's settings (`pack.toml`).
    pub fn settings(&self) -> &PackSettings {
        &self.settings
    }

    /// Number of policies in the pack.
    pub fn policy_count(&self) -> usize {
        self.policies.len()
    }

    /// Ids of the policies, in pack order.
    pub fn policy_ids(&self) -> Vec<String> {
        self.policies.iter().map(|p| p.id().to_string()).collect()
    }

    /// Names of the actions the schema declares for some principal and
    /// resource (action groups without `appliesTo` are left out), sorted.
    /// An action is named by its id (`read`), or in full
    /// (`Acme::Action::"read"`) when two namespaces declare the same id.
    pub fn actions(&self) -> Vec<String> {
        self.action_list.clone()
    }

    /// The Cedar entity type of an AuthZEN `type`.
    pub(crate) fn entity_type(&self, kind: &str) -> Result<EntityTypeName, PolicyError> {
        if let Some(ty) = self.types.get(kind) {
            return Ok(ty.clone());
        }
        EntityTypeName::from_str(kind).map_err(|_| PolicyError::InvalidType(shorten(kind)))
    }

    /// The Cedar action of an AuthZEN action name.
    pub(crate) fn action(&self, name: &str) -> Result<EntityUid, PolicyError> {
        if let Some(uid) = self.action_names.get(name) {
            return Ok(uid.clone());
        }
        if name.is_empty() {
            return Err(PolicyError::InvalidAction(String::new()));
        }
        if name.contains("::") {
            return EntityUid::from_str(name)
                .ok()
                .filter(|uid| uid.type_name().basename() == "Action")
                .ok_or_else(|| PolicyError::InvalidAction(shorten(name)));
        }
        Ok(EntityUid::from_type_name_and_id(
            action_type().clone(),
            EntityId::new(name),
        ))
    }

    /// The back-translation of [`Self::action`] used in search results.
    pub(crate) fn action_name(&self, uid: &EntityUid) -> String {
        let id = uid.id().unescaped();
        match self.action_names.get(id) {
            Some(known) if known == uid => id.to_owned(),
            _ => uid.to_string(),
        }
    }

    /// The actions search candidates for these principal and resource types.
    pub(crate) fn candidate_actions(
        &self,
        principal: &EntityTypeName,
        resource: &EntityTypeName,
    ) -> Vec<EntityUid> {
        let known = |t: &EntityTypeName| self.schema.entity_types().any(|s| s == t);
        let mut out: Vec<EntityUid> = if known(principal) && known(resource) {
            self.schema
                .actions_for_principal_and_resource(principal, resource)
                .cloned()
                .collect()
        } else {
            self.action_list
                .iter()
                .filter_map(|n| self.action_names.get(n).cloned())
                .collect()
        };
        out.sort_by_key(ToString::to_string);
        out.dedup();
        out
    }

    /// The slice for `key`, from the cache or built now.
    pub(crate) fn slice(&self, key: SliceKey) -> Result<Arc<Slice>, PolicyError> {
        let cached = self
            .slices
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned();
        if let Some(slice) = cached {
            return Ok(slice);
        }
        let scope = Scope {
            schema: &self.schema,
            action_ancestors: &self.action_ancestors,
        };
        let slice = Arc::new(scope.slice(self.policies.iter(), &key)?);
        let mut cache = self
            .slices
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() < MAX_CACHED_SLICES {
            cache.insert(key, Arc::clone(&slice));
        }
        Ok(slice)
    }

    /// Number of cached slices (for tests).
    #[cfg(test)]
    pub(crate) fn cached_slices(&self) -> usize {
        self.slices
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PackFiles, compile};

    fn policies(schema: &str, policy: &str) -> Policies {
        let files = PackFiles {
            files: [
                ("schema.cedarschema".to_owned(), schema.to_owned()),
                ("p.cedar".to_owned(), policy.to_owned()),
            ]
            .into(),
        };
        compile(&files).unwrap()
    }

    // Cedar forbids a namespace to shadow an empty-namespace name, so the
    // same action id can only appear in two non-empty namespaces.
    const SCHEMA: &str = r#"
        entity Doc;
        action view appliesTo { principal: [Human], resource: [Doc] };
        namespace A { entity Page; action read appliesTo { principal: [Human], resource: [Page] }; action only_a in [edit] appliesTo { principal: [Agent], resource: [Page] }; action edit; }
        namespace B { action read appliesTo { principal: [Human], resource: [Doc] }; }
    "#;

    #[test]
    fn action_names_resolve_by_id_or_in_full() {
        let p = policies(SCHEMA, "permit(principal, action, resource);");
        assert_eq!(
            p.action("only_a").unwrap().to_string(),
            r#"A::Action::"only_a""#
        );
        assert_eq!(p.action("view").unwrap().to_string(), r#"Action::"view""#);
        assert_eq!(
            p.action("read").unwrap().to_string(),
            r#"Action::"read""#,
            "ambiguous ids need the full name"
        );
        assert_eq!(
            p.action(r#"A::Action::"read""#).unwrap().to_string(),
            r#"A::Action::"read""#
        );
        assert_eq!(
            p.action("unknown").unwrap().to_string(),
            r#"Action::"unknown""#
        );
        assert!(matches!(p.action(""), Err(PolicyError::InvalidAction(_))));
        assert!(matches!(
            p.action("A::Page::\"x\""),
            Err(PolicyError::InvalidAction(_))
        ));
        assert_eq!(
            p.actions(),
            [
                r#"A::Action::"read""#,
                r#"B::Action::"read""#,
                "only_a",
                "view"
            ],
            "groups without appliesTo are not actions to search"
        );
        let only_a = p.action("only_a").unwrap();
        assert_eq!(p.action_name(&only_a), "only_a");
    }

    #[test]
    fn types_resolve_through_aliases_and_cedar_syntax() {
        let p = policies(SCHEMA, "permit(principal, action, resource);");
        assert_eq!(p.entity_type("human").unwrap().to_string(), "Human");
        assert_eq!(p.entity_type("Agent").unwrap().to_string(), "Agent");
        assert_eq!(p.entity_type("A::Page").unwrap().to_string(), "A::Page");
        assert_eq!(p.entity_type("anything").unwrap().to_string(), "anything");
        assert!(matches!(
            p.entity_type("two words"),
            Err(PolicyError::InvalidType(_))
        ));
    }

    #[test]
    fn slices_are_cached_per_request_shape() {
        let p = policies(
            SCHEMA,
            "permit(principal is Human, action == A::Action::\"read\", resource);\npermit(principal is Agent, action in [A::Action::\"edit\"], resource);",
        );
        let human = p.entity_type("Human").unwrap();
        let agent = p.entity_type("Agent").unwrap();
        let doc = p.entity_type("A::Page").unwrap();
        let read = p.action(r#"A::Action::"read""#).unwrap();
        let only_a = p.action("only_a").unwrap();
        let first = p.slice((human.clone(), read.clone(), doc.clone())).unwrap();
        let again = p.slice((human.clone(), read.clone(), doc.clone())).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(first.set.policies().count(), 1);
        let grouped = p.slice((agent, only_a.clone(), doc.clone())).unwrap();
        assert_eq!(
            grouped.set.policies().count(),
            1,
            "only_a is in the group edit"
        );
        let none = p.slice((human, only_a, doc)).unwrap();
        assert!(none.is_empty());
        assert_eq!(p.cached_slices(), 3);
        assert_eq!(
            p.clone().cached_slices(),
            0,
            "a clone starts with an empty cache"
        );
    }
}
