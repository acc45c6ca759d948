//! Names shared by the schema, the directory and request mapping: Handoff's
//! built-in entity types and how inventory ids become Cedar entity uids.
//!
//! Handoff's types live in Cedar's empty namespace (`Human`, `Agent`,
//! `Service`, `Team`), so policies write `Human::"alice@example.com"` and an
//! operator's namespaced schema can still refer to them unqualified.
//! An identity's Cedar id is its *name*, without the `<kind>:` prefix:
//! inventory `agent:support-bot` is `Agent::"support-bot"`.

use cedar_policy::{EntityId, EntityTypeName, EntityUid};
use handoff_core::{IdentityId, Kind};
use std::str::FromStr;
use std::sync::LazyLock;

/// Cedar type name of inventory humans.
pub(crate) const HUMAN: &str = "Human";
/// Cedar type name of inventory agents.
pub(crate) const AGENT: &str = "Agent";
/// Cedar type name of inventory services.
pub(crate) const SERVICE: &str = "Service";
/// Cedar type name of teams (groups of identities, from `entities.json`).
pub(crate) const TEAM: &str = "Team";

fn type_name(name: &'static str) -> EntityTypeName {
    #[expect(
        clippy::expect_used,
        reason = "INVARIANT: the built-in names are valid Cedar identifiers"
    )]
    EntityTypeName::from_str(name).expect("built-in type names parse")
}

static HUMAN_TYPE: LazyLock<EntityTypeName> = LazyLock::new(|| type_name(HUMAN));
static AGENT_TYPE: LazyLock<EntityTypeName> = LazyLock::new(|| type_name(AGENT));
static SERVICE_TYPE: LazyLock<EntityTypeName> = LazyLock::new(|| type_name(SERVICE));
static TEAM_TYPE: LazyLock<EntityTypeName> = LazyLock::new(|| type_name(TEAM));
static ACTION_TYPE: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("Action"));

/// The Cedar type of an identity kind.
pub(crate) fn kind_type(kind: Kind) -> &'static EntityTypeName {
    match kind {
        Kind::Human => &HUMAN_TYPE,
        Kind::Agent => &AGENT_TYPE,
        Kind::Service => &SERVICE_TYPE,
    }
}

/// The identity kind a Cedar type stands for, if it is one of Handoff's.
pub(crate) fn type_kind(ty: &EntityTypeName) -> Option<Kind> {
    [Kind::Human, Kind::Agent, Kind::Service]
        .into_iter()
        .find(|k| kind_type(*k) == ty)
}

/// `Action` in the empty namespace.
pub(crate) fn action_type() -> &'static EntityTypeName {
    &ACTION_TYPE
}

/// The AuthZEN type spellings that mean Handoff's built-in types.
pub(crate) fn builtin_aliases() -> [(&'static str, &'static EntityTypeName); 8] {
    [
        ("human", &HUMAN_TYPE),
        (HUMAN, &HUMAN_TYPE),
        ("agent", &AGENT_TYPE),
        (AGENT, &AGENT_TYPE),
        ("service", &SERVICE_TYPE),
        (SERVICE, &SERVICE_TYPE),
        ("team", &TEAM_TYPE),
        (TEAM, &TEAM_TYPE),
    ]
}

/// The Cedar uid of an inventory identity.
pub(crate) fn identity_uid(id: &IdentityId) -> EntityUid {
    EntityUid::from_type_name_and_id(kind_type(id.kind()).clone(), EntityId::new(id.name()))
}

/// The Cedar id for an AuthZEN id of type `ty`: identity types accept the
/// id with or without its `<kind>:` prefix; a prefix naming another kind is
/// refused (`None`).
pub(crate) fn entity_id(ty: &EntityTypeName, id: &str) -> Option<EntityId> {
    let Some(kind) = type_kind(ty) else {
        return Some(EntityId::new(id));
    };
    match id.split_once(':') {
        Some((prefix, name)) if prefix == kind.as_str() => Some(EntityId::new(name)),
        Some((prefix, _)) if Kind::from_str(prefix).is_ok() => None,
        _ => Some(EntityId::new(id)),
    }
}

/// The id a search returns for a Cedar uid: identities get their inventory
/// id back (`human:alice`), other entities their Cedar id.
pub(crate) fn external_id(uid: &EntityUid) -> String {
    match type_kind(uid.type_name()) {
        Some(kind) => format!("{kind}:{}", uid.id().unescaped()),
        None => uid.id().unescaped().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_map_to_builtin_types_by_name() {
        let id = IdentityId::parse("agent:support-bot").unwrap();
        assert_eq!(identity_uid(&id).to_string(), r#"Agent::"support-bot""#);
        assert_eq!(external_id(&identity_uid(&id)), "agent:support-bot");
    }

    #[test]
    fn identity_ids_are_accepted_with_or_without_prefix() {
        let human = kind_type(Kind::Human);
        assert_eq!(
            entity_id(human, "human:alice").unwrap().unescaped(),
            "alice"
        );
        assert_eq!(entity_id(human, "alice").unwrap().unescaped(), "alice");
        assert!(entity_id(human, "agent:alice").is_none());
        let other = EntityTypeName::from_str("user").unwrap();
        assert_eq!(entity_id(&other, "human:x").unwrap().unescaped(), "human:x");
    }
}
