//! Identities: humans, agents and services, with their ids, owners and labels.

use crate::{Invalid, Status, Time};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest identity name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Largest attribute object, serialized as JSON, in bytes.
pub const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;
/// Deepest nesting allowed inside attributes.
pub const MAX_ATTRIBUTES_DEPTH: usize = 8;
/// Longest environment label, in bytes.
pub const MAX_ENVIRONMENT_LEN: usize = 32;

/// The kind of an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A person.
    Human,
    /// An AI agent acting for someone.
    Agent,
    /// A service account, workload or bot.
    Service,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Self; 3] = [Self::Human, Self::Agent, Self::Service];

    /// The lowercase word used in ids, the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::Agent => "agent",
            Self::Service => "service",
        }
    }

    /// Agents and services are non-human identities and must have an owner.
    pub fn needs_owner(self) -> bool {
        !matches!(self, Self::Human)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "human" => Ok(Self::Human),
            "agent" => Ok(Self::Agent),
            "service" => Ok(Self::Service),
            other => Err(Invalid::new(
                "kind",
                format!("unknown kind \"{other}\": expected human, agent or service"),
            )),
        }
    }
}

/// A validated identity id, `<kind>:<name>`.
///
/// Names are 1 to 128 bytes of ASCII letters, digits and `. _ - @ +`, and
/// start with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdentityId {
    kind: Kind,
    text: String,
}

impl IdentityId {
    /// Parses and validates `<kind>:<name>`.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let Some((kind, name)) = s.split_once(':') else {
            return Err(Invalid::new(
                "id",
                format!(
                    "invalid identity id \"{}\": expected <kind>:<name>",
                    shorten(s)
                ),
            ));
        };
        let kind: Kind = kind.parse().map_err(|_| {
            Invalid::new(
                "id",
                format!(
                    "invalid identity id \"{}\": kind must be human, agent or service",
                    shorten(s)
                ),
            )
        })?;
        validate_name(name)?;
        Ok(Self {
            kind,
            text: s.to_owned(),
        })
    }

    /// The kind part.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The name part.
    pub fn name(&self) -> &str {
        self.text
            .split_once(':')
            .map(|(_, name)| name)
            .unwrap_or_default()
    }

    /// The whole id.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn validate_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() {
        return Err(Invalid::new("id", "identity name is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Invalid::new(
            "id",
            format!("identity name is longer than {MAX_NAME_LEN} bytes"),
        ));
    }
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+'));
    if !first_ok || !rest_ok {
        return Err(Invalid::new(
            "id",
            format!(
                "invalid identity name \"{}\": use letters, digits and . _ - @ +, starting with a letter or digit",
                shorten(name)
            ),
        ));
    }
    Ok(())
}

/// Cuts user input for echoing in messages, so an error never repeats a
/// huge value: at most 64 bytes, then `…`.
pub fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", s.get(..end).unwrap_or_default())
}

impl fmt::Display for IdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for IdentityId {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Self::parse(s)
    }
}

impl TryFrom<String> for IdentityId {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::parse(&s)
    }
}

impl From<IdentityId> for String {
    fn from(id: IdentityId) -> Self {
        id.text
    }
}

/// An environment label such as `prod` or `staging`: 1 to 32 bytes of
/// lowercase letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Environment(String);

impl Environment {
    /// Validates a label.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let ok = !s.is_empty()
            && s.len() <= MAX_ENVIRONMENT_LEN
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Invalid::new(
                "environment",
                format!(
                    "invalid environment \"{}\": use 1 to {MAX_ENVIRONMENT_LEN} lowercase letters, digits, - or _",
                    shorten(s)
                ),
            ))
        }
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Environment {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::parse(&s)
    }
}

impl From<Environment> for String {
    fn from(e: Environment) -> Self {
        e.0
    }
}

/// Free-form attributes: a JSON object, bounded in size and depth.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value", into = "serde_json::Value")]
pub struct Attributes(serde_json::Map<String, serde_json::Value>);

impl Attributes {
    /// Validates a JSON value as attributes.
    pub fn parse(value: serde_json::Value) -> Result<Self, Invalid> {
        let serde_json::Value::Object(map) = value else {
            return Err(Invalid::new(
                "attributes",
                "attributes must be a JSON object",
            ));
        };
        let size = serde_json::to_vec(&map)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > MAX_ATTRIBUTES_BYTES {
            return Err(Invalid::new(
                "attributes",
                format!("attributes are larger than {MAX_ATTRIBUTES_BYTES} bytes"),
            ));
        }
        if map.values().any(|v| depth(v) > MAX_ATTRIBUTES_DEPTH) {
            return Err(Invalid::new(
                "attributes",
                format!("attributes nest deeper than {MAX_ATTRIBUTES_DEPTH} levels"),
            ));
        }
        Ok(Self(map))
    }

    /// The attributes as a JSON map.
    pub fn as_map(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.0
    }
}

fn depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

impl TryFrom<serde_json::Value> for Attributes {
    type Error = Invalid;
    fn try_from(v: serde_json::Value) -> Result<Self, Invalid> {
        Self::parse(v)
    }
}

impl From<Attributes> for serde_json::Value {
    fn from(a: Attributes) -> Self {
        serde_json::Value::Object(a.0)
    }
}

/// Where an identity record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Created through the API or CLI.
    Manual,
}

impl Source {
    /// The lowercase word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
        }
    }

    /// Parses the stored word.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s {
            "manual" => Ok(Self::Manual),
            other => Err(Invalid::new(
                "source",
                format!("unknown source \"{other}\""),
            )),
        }
    }
}

/// An identity in the inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// `<kind>:<name>`.
    pub id: IdentityId,
    /// The owner, required for agents and services.
    pub owner: Option<IdentityId>,
    /// Deployment environment label.
    pub environment: Option<Environment>,
    /// Free-form attributes.
    pub attributes: Attributes,
    /// Where the record came from.
    pub source: Source,
    /// Lifecycle status.
    pub status: Status,
    /// Set when the owner was disabled or decommissioned: an orphan candidate.
    pub orphaned: bool,
    /// When the identity was created.
    pub created_at: Time,
    /// When the identity last changed.
    pub updated_at: Time,
}

impl Identity {
    /// The kind, from the id.
    pub fn kind(&self) -> Kind {
        self.id.kind()
    }

    /// A new, active identity. Checks the ownership rule against the owner
    /// as found in the inventory (`owner_found`): agents and services need an
    /// existing, active human owner; humans take no owner.
    pub fn new(
        id: IdentityId,
        owner: Option<(IdentityId, Option<&Identity>)>,
        environment: Option<Environment>,
        attributes: Attributes,
        now: Time,
    ) -> Result<Self, OwnerError> {
        let owner = match (id.kind().needs_owner(), owner) {
            (true, None) => return Err(OwnerError::Missing),
            (false, Some(_)) => return Err(OwnerError::NotAllowed),
            (false, None) => None,
            (true, Some((owner_id, found))) => {
                check_owner(&owner_id, found)?;
                Some(owner_id)
            }
        };
        Ok(Self {
            id,
            owner,
            environment,
            attributes,
            source: Source::Manual,
            status: Status::Active,
            orphaned: false,
            created_at: now,
            updated_at: now,
        })
    }
}

/// Checks that `found` (the inventory's record for `owner_id`) may own an
/// agent or service: it exists, is a human and is active.
pub fn check_owner(owner_id: &IdentityId, found: Option<&Identity>) -> Result<(), OwnerError> {
    if owner_id.kind() != Kind::Human {
        return Err(OwnerError::NotHuman(owner_id.clone()));
    }
    match found {
        None => Err(OwnerError::Unknown(owner_id.clone())),
        Some(o) if o.status != Status::Active => Err(OwnerError::Inactive(owner_id.clone())),
        Some(_) => Ok(()),
    }
}

/// Why an owner was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerError {
    /// An agent or service was created without an owner.
    #[error("agents and services must have an owner")]
    Missing,
    /// A human was given an owner.
    #[error("humans do not have an owner")]
    NotAllowed,
    /// The owner is not a human.
    #[error("owner \"{0}\" is not a human")]
    NotHuman(IdentityId),
    /// The owner is not in the inventory.
    #[error("owner \"{0}\" does not exist")]
    Unknown(IdentityId),
    /// The owner exists but is not active.
    #[error("owner \"{0}\" is not active")]
    Inactive(IdentityId),
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t() -> Time {
        chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn human(name: &str, status: Status) -> Identity {
        let mut h = Identity::new(
            IdentityId::parse(&format!("human:{name}")).unwrap(),
            None,
            None,
            Attributes::default(),
            t(),
        )
        .unwrap();
        h.status = status;
        h
    }

    #[test]
    fn ids_parse_kind_and_name() {
        let id = IdentityId::parse("human:alice@example.com").unwrap();
        assert_eq!(id.kind(), Kind::Human);
        assert_eq!(id.name(), "alice@example.com");
        assert_eq!(id.to_string(), "human:alice@example.com");
        assert_eq!(
            IdentityId::parse("agent:support-bot").unwrap().kind(),
            Kind::Agent
        );
        assert_eq!(
            IdentityId::parse("service:billing_api.v2+x")
                .unwrap()
                .kind(),
            Kind::Service
        );
    }

    #[test]
    fn bad_ids_are_rejected() {
        for bad in [
            "",
            "alice",
            "robot:x",
            "human:",
            "human:-alice",
            "human:al ice",
            "human:al/ice",
            "human:ålice",
            "Human:alice",
            "human:a:b",
        ] {
            assert!(
                IdentityId::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        let long = format!("human:{}", "a".repeat(MAX_NAME_LEN + 1));
        assert!(IdentityId::parse(&long).is_err());
        let max = format!("human:{}", "a".repeat(MAX_NAME_LEN));
        assert!(IdentityId::parse(&max).is_ok());
    }

    #[test]
    fn error_messages_quote_and_shorten_input() {
        let err = IdentityId::parse(&format!("robot:{}", "x".repeat(500))).unwrap_err();
        assert!(err.message.len() < 200, "{}", err.message);
        let err = IdentityId::parse("human:al ice").unwrap_err();
        assert!(err.message.contains("\"al ice\""), "{}", err.message);
    }

    #[test]
    fn environment_labels_are_validated() {
        assert!(Environment::parse("prod").is_ok());
        assert!(Environment::parse("eu-west_1").is_ok());
        for bad in ["", "Prod", "a b", &"x".repeat(33)] {
            assert!(Environment::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn attributes_must_be_bounded_objects() {
        assert!(Attributes::parse(serde_json::json!({"team": "payments"})).is_ok());
        assert!(Attributes::parse(serde_json::json!([1])).is_err());
        assert!(Attributes::parse(serde_json::json!("x")).is_err());
        let big = "x".repeat(MAX_ATTRIBUTES_BYTES);
        assert!(Attributes::parse(serde_json::json!({ "a": big })).is_err());
        let mut deep = serde_json::json!(1);
        for _ in 0..=MAX_ATTRIBUTES_DEPTH {
            deep = serde_json::json!([deep]);
        }
        assert!(Attributes::parse(serde_json::json!({ "a": deep })).is_err());
    }

    #[test]
    fn agents_and_services_need_an_active_human_owner() {
        let alice = human("alice", Status::Active);
        let bot = IdentityId::parse("agent:bot").unwrap();
        let svc = IdentityId::parse("service:api").unwrap();
        fn new(
            id: &IdentityId,
            owner: Option<(IdentityId, Option<&Identity>)>,
        ) -> Result<Identity, OwnerError> {
            Identity::new(id.clone(), owner, None, Attributes::default(), t())
        }
        assert_eq!(new(&bot, None).unwrap_err(), OwnerError::Missing);
        assert_eq!(new(&svc, None).unwrap_err(), OwnerError::Missing);
        let ok = new(&bot, Some((alice.id.clone(), Some(&alice)))).unwrap();
        assert_eq!(ok.owner, Some(alice.id.clone()));
        assert_eq!(ok.status, Status::Active);
        assert!(matches!(
            new(&svc, Some((IdentityId::parse("human:bob").unwrap(), None))),
            Err(OwnerError::Unknown(_))
        ));
        let other_bot = new(&bot, Some((alice.id.clone(), Some(&alice)))).unwrap();
        assert!(matches!(
            new(&svc, Some((other_bot.id.clone(), Some(&other_bot)))),
            Err(OwnerError::NotHuman(_))
        ));
        for status in [Status::Suspended, Status::Disabled, Status::Decommissioned] {
            let h = human("carol", status);
            assert!(matches!(
                new(&svc, Some((h.id.clone(), Some(&h)))),
                Err(OwnerError::Inactive(_))
            ));
        }
        let dave = IdentityId::parse("human:dave").unwrap();
        assert_eq!(
            new(&dave, Some((alice.id.clone(), Some(&alice)))).unwrap_err(),
            OwnerError::NotAllowed
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsing_never_panics_and_valid_ids_round_trip(s in "\\PC{0,200}") {
            if let Ok(id) = IdentityId::parse(&s) {
                prop_assert_eq!(id.to_string(), s.clone());
                prop_assert_eq!(IdentityId::parse(id.as_str()).unwrap(), id.clone());
                prop_assert!(id.name().len() <= MAX_NAME_LEN);
            }
        }

        #[test]
        fn well_formed_ids_are_accepted(
            kind in prop_oneof![Just("human"), Just("agent"), Just("service")],
            name in "[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}",
        ) {
            let id = IdentityId::parse(&format!("{kind}:{name}")).unwrap();
            prop_assert_eq!(id.kind().as_str(), kind);
            prop_assert_eq!(id.name(), name.as_str());
        }
    }
}
