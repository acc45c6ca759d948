//! The directory: inventory identities as Cedar entities, kept in memory and
//! updated one identity at a time.
//!
//! An identity `<kind>:<name>` becomes `Human::"<name>"`, `Agent::"<name>"`
//! or `Service::"<name>"` with the attributes `kind`, `status`,
//! `environment` (absent when unset), `orphaned`, `owner` (an entity
//! reference, agents and services only) and `attributes` (the identity's
//! free-form attributes as a Cedar record, converted like request
//! properties). The owner is also the entity's parent, so
//! `principal in Human::"alice"` holds for every agent alice owns.
//!
//! The map sits behind an `Arc` and is copied on write: cloning a directory
//! (for a [`crate::Pdp`] snapshot) is a pointer copy, and an update while a
//! snapshot is alive copies the index (uids and `Arc` pointers), never the
//! entities.

use crate::entities::Stored;
use crate::names::identity_uid;
use crate::value::{Budget, convert};
use cedar_policy::{Entity, EntityUid, RestrictedExpression};
use handoff_core::{Identity, IdentityId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The in-memory entity store of inventory identities.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    entities: Arc<HashMap<EntityUid, Arc<Stored>>>,
}

impl Directory {
    /// A directory of these identities.
    pub fn from_identities(ids: impl IntoIterator<Item = Identity>) -> Self {
        let entities = ids
            .into_iter()
            .map(|identity| (identity_uid(&identity.id), Arc::new(stored(&identity))))
            .collect();
        Self {
            entities: Arc::new(entities),
        }
    }

    /// Adds or replaces one identity.
    pub fn upsert(&mut self, identity: &Identity) {
        let entry = Arc::new(stored(identity));
        Arc::make_mut(&mut self.entities).insert(identity_uid(&identity.id), entry);
    }

    /// Removes one identity; unknown ids are ignored.
    pub fn remove(&mut self, id: &IdentityId) {
        let uid = identity_uid(id);
        if self.entities.contains_key(&uid) {
            Arc::make_mut(&mut self.entities).remove(&uid);
        }
    }

    /// Number of identities.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether the directory holds no identity.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// Whether the identity is in the directory.
    pub fn contains(&self, id: &IdentityId) -> bool {
        self.entities.contains_key(&identity_uid(id))
    }

    /// The stored entity of `uid`.
    pub(crate) fn get(&self, uid: &EntityUid) -> Option<&Arc<Stored>> {
        self.entities.get(uid)
    }

    /// Every stored entity.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&EntityUid, &Arc<Stored>)> {
        self.entities.iter()
    }
}

fn stored(identity: &Identity) -> Stored {
    Stored::new(entity(identity))
}

/// The Cedar entity of an identity.
pub(crate) fn entity(identity: &Identity) -> Entity {
    let uid = identity_uid(&identity.id);
    let owner = identity.owner.as_ref().map(identity_uid);
    let mut attrs: HashMap<String, RestrictedExpression> = HashMap::from([
        (
            "kind".to_owned(),
            RestrictedExpression::new_string(identity.kind().as_str().to_owned()),
        ),
        (
            "status".to_owned(),
            RestrictedExpression::new_string(identity.status.as_str().to_owned()),
        ),
        (
            "orphaned".to_owned(),
            RestrictedExpression::new_bool(identity.orphaned),
        ),
    ]);
    if let Some(env) = &identity.environment {
        attrs.insert(
            "environment".to_owned(),
            RestrictedExpression::new_string(env.as_str().to_owned()),
        );
    }
    if let Some(owner) = &owner {
        attrs.insert(
            "owner".to_owned(),
            RestrictedExpression::new_entity_uid(owner.clone()),
        );
    }
    let parents: HashSet<EntityUid> = owner.into_iter().collect();
    // Free attributes: values Cedar cannot hold are left out, and if the
    // record as a whole fails (a malformed extension value), it is empty.
    let mut budget = Budget::inventory();
    let fields: Vec<(String, RestrictedExpression)> = identity
        .attributes
        .as_map()
        .iter()
        .filter_map(|(k, v)| match convert(v, "attributes", 1, &mut budget) {
            Ok(Some(expr)) => Some((k.clone(), expr)),
            Ok(None) | Err(_) => None,
        })
        .collect();
    let full = RestrictedExpression::new_record(fields)
        .ok()
        .and_then(|record| {
            let mut with_record = attrs.clone();
            with_record.insert("attributes".to_owned(), record);
            Entity::new(uid.clone(), with_record, parents.clone()).ok()
        });
    full.unwrap_or_else(|| {
        let empty: [(String, RestrictedExpression); 0] = [];
        if let Ok(record) = RestrictedExpression::new_record(empty) {
            attrs.insert("attributes".to_owned(), record);
        }
        Entity::new(uid.clone(), attrs, parents.clone())
            .unwrap_or_else(|_| Entity::new_no_attrs(uid, parents))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cedar_policy::EvalResult;
    use chrono::TimeZone;
    use handoff_core::{Attributes, Environment, Status};

    fn identity(id: &str, owner: Option<&str>, attrs: serde_json::Value) -> Identity {
        let t = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        Identity {
            id: IdentityId::parse(id).unwrap(),
            owner: owner.map(|o| IdentityId::parse(o).unwrap()),
            environment: Some(Environment::parse("prod").unwrap()),
            attributes: Attributes::parse(attrs).unwrap(),
            source: handoff_core::Source::Manual,
            status: Status::Active,
            orphaned: false,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn identities_become_entities_with_inventory_attributes() {
        let bot = identity(
            "agent:bot",
            Some("human:alice"),
            serde_json::json!({"team": "support", "tier": 2, "bad": 1e-9, "none": null}),
        );
        let e = entity(&bot);
        assert_eq!(e.uid().to_string(), r#"Agent::"bot""#);
        assert_eq!(
            e.attr("kind").unwrap().unwrap(),
            EvalResult::String("agent".into())
        );
        assert_eq!(
            e.attr("status").unwrap().unwrap(),
            EvalResult::String("active".into())
        );
        assert_eq!(
            e.attr("environment").unwrap().unwrap(),
            EvalResult::String("prod".into())
        );
        assert_eq!(
            e.attr("orphaned").unwrap().unwrap(),
            EvalResult::Bool(false)
        );
        assert!(
            matches!(e.attr("owner").unwrap().unwrap(), EvalResult::EntityUid(u) if u.to_string() == r#"Human::"alice""#)
        );
        let EvalResult::Record(attrs) = e.attr("attributes").unwrap().unwrap() else {
            panic!("record")
        };
        assert_eq!(
            attrs.get("team"),
            Some(&EvalResult::String("support".into()))
        );
        assert_eq!(attrs.get("tier"), Some(&EvalResult::Long(2)));
        assert_eq!(
            attrs.len(),
            2,
            "unrepresentable and null values are left out"
        );
        let (_, _, parents) = e.into_inner();
        assert_eq!(parents.len(), 1, "the owner is the parent");
    }

    #[test]
    fn malformed_extension_attributes_leave_the_record_empty_not_the_identity_out() {
        let h = identity(
            "human:x",
            None,
            serde_json::json!({"ip": {"__extn": {"fn": "ip", "arg": "nope"}}}),
        );
        let e = entity(&h);
        assert_eq!(
            e.attr("kind").unwrap().unwrap(),
            EvalResult::String("human".into())
        );
        let EvalResult::Record(attrs) = e.attr("attributes").unwrap().unwrap() else {
            panic!("record")
        };
        assert!(attrs.is_empty());
        assert!(e.attr("owner").is_none());
    }

    #[test]
    fn updates_are_incremental_and_snapshots_are_unaffected() {
        let mut dir =
            Directory::from_identities([identity("human:alice", None, serde_json::json!({}))]);
        let snapshot = dir.clone();
        dir.upsert(&identity(
            "agent:bot",
            Some("human:alice"),
            serde_json::json!({}),
        ));
        assert_eq!((dir.len(), snapshot.len()), (2, 1));
        dir.remove(&IdentityId::parse("human:alice").unwrap());
        dir.remove(&IdentityId::parse("human:nobody").unwrap());
        assert_eq!(dir.len(), 1);
        assert!(dir.contains(&IdentityId::parse("agent:bot").unwrap()));
        assert!(snapshot.contains(&IdentityId::parse("human:alice").unwrap()));
        assert!(!dir.is_empty());
        let refs: Vec<String> = dir
            .iter()
            .flat_map(|(_, s)| s.refs.iter().map(ToString::to_string))
            .collect();
        assert_eq!(refs, [r#"Human::"alice""#]);
    }
}
