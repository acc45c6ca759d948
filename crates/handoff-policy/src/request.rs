//! AuthZEN-shaped request parts and the decision value.
//!
//! These mirror the AuthZEN Authorization API 1.0 request (§6.1: subject,
//! action, resource, context) so the server can deserialize the wire JSON
//! straight into them; unknown fields are ignored and `properties` /
//! `context` may be absent or `null`.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// An AuthZEN subject or resource.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Entity {
    /// The AuthZEN `type`: becomes the Cedar entity type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The AuthZEN `id`: becomes the Cedar entity id.
    pub id: String,
    /// Attributes that overlay the stored entity's for this request.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Map::is_empty"
    )]
    pub properties: Map<String, Value>,
}

impl Entity {
    /// An entity without properties.
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            id: id.into(),
            properties: Map::new(),
        }
    }
}

/// An AuthZEN action.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Action {
    /// The action name: becomes `Action::"<name>"`.
    pub name: String,
    /// Becomes the record `context.action`.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Map::is_empty"
    )]
    pub properties: Map<String, Value>,
}

impl Action {
    /// An action without properties.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            properties: Map::new(),
        }
    }
}

/// One AuthZEN access evaluation request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Request {
    /// Who asks: the Cedar principal.
    pub subject: Entity,
    /// What they want to do.
    pub action: Action,
    /// What they want to do it to.
    pub resource: Entity,
    /// The Cedar context (plus `action` from the action's properties).
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Map::is_empty"
    )]
    pub context: Map<String, Value>,
}

/// One hop of a delegation chain: a principal with its own context.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Hop {
    /// The identity acting at this hop.
    pub principal: Entity,
    /// The context of this hop.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Map::is_empty"
    )]
    pub context: Map<String, Value>,
}

/// A decision: a deny is a value, not an error.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Decision {
    /// Whether access is allowed.
    pub allow: bool,
    /// Ids of the determining policies, sorted.
    pub reasons: Vec<String>,
    /// Evaluation errors (`<policy id>: <message>`) and request problems,
    /// such as property values Cedar cannot represent.
    pub errors: Vec<String>,
    /// For a decision on a delegation chain: each hop's own decision, root
    /// first (the access is the intersection: allow only if all allow).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hops: Vec<HopDecision>,
}

/// One hop's part of a chain decision.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HopDecision {
    /// The identity acting at this hop (`agent:support-bot`).
    pub principal: String,
    /// Its depth on the chain (the subject is 0).
    pub depth: u32,
    /// Whether policy allows this hop.
    pub allow: bool,
    /// Ids of the determining policies, sorted.
    pub reasons: Vec<String>,
    /// Evaluation errors.
    pub errors: Vec<String>,
}

impl Decision {
    /// A deny with no determining policy.
    pub(crate) fn deny(errors: Vec<String>) -> Self {
        Self {
            allow: false,
            reasons: Vec::new(),
            errors,
            hops: Vec::new(),
        }
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    Ok(Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn authzen_json_deserializes_ignoring_unknown_fields() {
        let req: Request = serde_json::from_value(json!({
            "subject": {"type": "user", "id": "alice", "properties": {"role": "admin"}, "extra": 1},
            "action": {"name": "read", "properties": null},
            "resource": {"type": "record", "id": "r1"},
            "context": null,
            "unknown": true
        }))
        .unwrap();
        assert_eq!(req.subject.kind, "user");
        assert_eq!(req.subject.properties["role"], "admin");
        assert!(req.action.properties.is_empty());
        assert!(req.context.is_empty());
    }

    #[test]
    fn missing_required_fields_are_errors() {
        let err = serde_json::from_value::<Request>(json!({
            "subject": {"type": "user"},
            "action": {"name": "read"},
            "resource": {"type": "record", "id": "r1"}
        }))
        .unwrap_err();
        assert!(err.to_string().contains("missing field `id`"), "{err}");
    }
}
