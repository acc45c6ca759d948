//! The AuthZEN Authorization API 1.0 wire types: evaluation and search
//! requests as policy enforcement points send them, decisions and search
//! results as they read them, the batch merge of AuthZEN §7.1 and the
//! opaque search page token.
//!
//! Unlike the admin API, unknown members are ignored (AuthZEN lets the
//! information model grow). Missing or mistyped required members are 400s,
//! except inside `evaluations`, where a bad item is a deny for that item
//! only. Nothing here calls the engine or knows Cedar.

use handoff_engine::policy::Semantic;
use handoff_policy::{Action as PolicyAction, Decision, Entity as PolicyEntity, Request};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};

/// Default number of search results per page.
pub const SEARCH_DEFAULT_LIMIT: usize = 100;
/// Largest search page.
pub const SEARCH_MAX_LIMIT: usize = 1000;

/// A subject or resource (AuthZEN 1.0 §5.1, §5.3).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(expecting = "an object with string members `type` and `id`")]
pub struct Entity {
    /// The entity type: becomes the Cedar entity type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The entity id.
    pub id: String,
    /// Attributes that overlay the stored entity's for this request.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Map<String, Value>>,
}

impl From<Entity> for PolicyEntity {
    fn from(e: Entity) -> Self {
        Self {
            kind: e.kind,
            id: e.id,
            properties: e.properties.unwrap_or_default(),
        }
    }
}

/// An entity of which only the type counts: the searched-for side of a
/// subject or resource search (AuthZEN 1.0 §8.4, §8.5: an `id` is ignored).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(expecting = "an object with a string member `type`")]
pub struct EntityType {
    /// The type searched for.
    #[serde(rename = "type")]
    pub kind: String,
}

/// An action (AuthZEN 1.0 §5.2).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(expecting = "an object with a string member `name`")]
pub struct Action {
    /// The action name.
    pub name: String,
    /// Becomes the Cedar `context.action` record.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Map<String, Value>>,
}

impl From<Action> for PolicyAction {
    fn from(a: Action) -> Self {
        Self {
            name: a.name,
            properties: a.properties.unwrap_or_default(),
        }
    }
}

/// Body of `POST /access/v1/evaluation` (AuthZEN 1.0 §6.1).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(expecting = "an object with members `subject`, `action` and `resource`")]
pub struct EvaluationRequest {
    /// Who asks.
    pub subject: Entity,
    /// What they want to do.
    pub action: Action,
    /// What they want to do it to.
    pub resource: Entity,
    /// The Cedar context.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub context: Option<Map<String, Value>>,
}

impl From<EvaluationRequest> for Request {
    fn from(r: EvaluationRequest) -> Self {
        Self {
            subject: r.subject.into(),
            action: r.action.into(),
            resource: r.resource.into(),
            context: r.context.unwrap_or_default(),
        }
    }
}

/// `context` of a decision: only with `X-Handoff-Explain: true`, or when
/// the item itself could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DecisionContext {
    /// Ids of the determining policies.
    pub reasons: Vec<String>,
    /// Why the request could not be evaluated, or evaluation errors.
    pub errors: Vec<String>,
    /// For a delegated token: each hop's decision, subject first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hops: Vec<HopBody>,
}

/// One hop of a chain decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HopBody {
    /// The identity acting at this hop.
    pub principal: String,
    /// Its depth on the chain (the subject is 0).
    pub depth: u32,
    /// Whether policy allows this hop.
    pub decision: bool,
    /// Ids of the determining policies.
    pub reasons: Vec<String>,
    /// Evaluation errors.
    pub errors: Vec<String>,
}

impl From<handoff_policy::HopDecision> for HopBody {
    fn from(h: handoff_policy::HopDecision) -> Self {
        Self {
            principal: h.principal,
            depth: h.depth,
            decision: h.allow,
            reasons: h.reasons,
            errors: h.errors,
        }
    }
}

/// A decision (AuthZEN 1.0 §6.2): a deny is `200 {"decision": false}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EvaluationResponse {
    /// Whether access is allowed.
    pub decision: bool,
    /// Reasons and errors, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<DecisionContext>,
}

impl EvaluationResponse {
    /// The answer for `decision`, explained when `explain` is set. An item
    /// error (`item_error`) is the caller's own input and always shown.
    pub fn new(decision: Decision, explain: bool, item_error: Option<String>) -> Self {
        let context = match (explain, item_error) {
            (true, _) => Some(DecisionContext {
                reasons: decision.reasons,
                errors: decision.errors,
                hops: decision.hops.into_iter().map(HopBody::from).collect(),
            }),
            (false, Some(error)) => Some(DecisionContext {
                reasons: Vec::new(),
                errors: vec![error],
                hops: Vec::new(),
            }),
            (false, None) => None,
        };
        Self {
            decision: decision.allow,
            context,
        }
    }
}

/// Answer of `POST /access/v1/evaluations` (AuthZEN 1.0 §7.2).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvaluationsResponse {
    /// One decision per item, in request order (fewer when a short-circuit
    /// semantic stopped early).
    pub evaluations: Vec<EvaluationResponse>,
}

/// `options` of a batch (AuthZEN 1.0 §7.1.2).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(expecting = "an object")]
pub struct EvaluationsOptions {
    /// How the batch stops early.
    #[serde(default)]
    pub evaluations_semantic: Option<SemanticWord>,
}

/// The words of `evaluations_semantic`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SemanticWord {
    /// Evaluate every item (default).
    ExecuteAll,
    /// Stop at the first deny.
    DenyOnFirstDeny,
    /// Stop at the first permit.
    PermitOnFirstPermit,
}

impl From<SemanticWord> for Semantic {
    fn from(w: SemanticWord) -> Self {
        match w {
            SemanticWord::ExecuteAll => Self::ExecuteAll,
            SemanticWord::DenyOnFirstDeny => Self::DenyOnFirstDeny,
            SemanticWord::PermitOnFirstPermit => Self::PermitOnFirstPermit,
        }
    }
}

/// A parsed `POST /access/v1/evaluations` body.
#[derive(Debug, Clone)]
pub enum Evaluations {
    /// No (or an empty) `evaluations` array: one evaluation, answered as
    /// `POST /access/v1/evaluation` would (AuthZEN 1.0 §7.1).
    Single(Box<Request>),
    /// Items merged with the defaults; a bad item is its error message.
    Batch {
        /// The items, in order.
        items: Vec<Result<Request, String>>,
        /// How the batch stops early.
        semantic: Semantic,
    },
}

/// The top-level members that are defaults for every item (AuthZEN 1.0 §7.1.1).
const DEFAULTS: [&str; 4] = ["subject", "action", "resource", "context"];

/// Reads an evaluations body (already known to be a JSON object). Errors
/// are messages for a 400.
pub fn parse_evaluations(mut body: Map<String, Value>) -> Result<Evaluations, String> {
    let options = match body.remove("options") {
        None | Some(Value::Null) => EvaluationsOptions::default(),
        Some(v) => serde_json::from_value(v).map_err(|e| format!("invalid options: {e}"))?,
    };
    let items = match body.remove("evaluations") {
        None => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => return Err("`evaluations` must be an array".into()),
    };
    let defaults: Map<String, Value> = DEFAULTS
        .iter()
        .filter_map(|k| body.remove(*k).map(|v| ((*k).to_owned(), v)))
        .collect();
    if items.is_empty() {
        let single: EvaluationRequest = serde_json::from_value(Value::Object(defaults))
            .map_err(|e| format!("invalid request body: {e}"))?;
        return Ok(Evaluations::Single(Box::new(single.into())));
    }
    let items = items
        .into_iter()
        .enumerate()
        .map(|(n, item)| merge(&defaults, item).map_err(|e| format!("evaluation {n}: {e}")))
        .collect();
    Ok(Evaluations::Batch {
        items,
        semantic: options
            .evaluations_semantic
            .map(Into::into)
            .unwrap_or_default(),
    })
}

/// An item with the defaults it does not set: item members replace the
/// default members whole (AuthZEN 1.0 §7.1.1).
fn merge(defaults: &Map<String, Value>, item: Value) -> Result<Request, String> {
    let Value::Object(item) = item else {
        return Err("an evaluation must be a json object".into());
    };
    let mut merged = defaults.clone();
    merged.extend(
        item.into_iter()
            .filter(|(k, _)| DEFAULTS.contains(&k.as_str())),
    );
    serde_json::from_value::<EvaluationRequest>(Value::Object(merged))
        .map(Into::into)
        .map_err(|e| e.to_string())
}

/// The answer of `POST /access/v1/evaluations`: a batch answer, or a single
/// decision when the request had no `evaluations` (AuthZEN 1.0 §7.1).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EvaluationsAnswer {
    /// One decision per item.
    Batch(EvaluationsResponse),
    /// The request was a single evaluation.
    Single(EvaluationResponse),
}

/// Stands for the body of `POST /access/v1/evaluations` in the OpenAPI
/// document: a batch (defaults, `options`, one or more items of any shape,
/// each merged and checked on its own) or, without items, one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct EvaluationsRequest;

impl utoipa::PartialSchema for EvaluationsRequest {
    fn schema() -> RefOr<Schema> {
        let any = |description: &str| -> RefOr<Schema> {
            RefOr::T(
                ObjectBuilder::new()
                    .schema_type(SchemaType::AnyValue)
                    .description(Some(description))
                    .build()
                    .into(),
            )
        };
        let options = || {
            OneOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::Null))
                .item(Ref::from_schema_name("EvaluationsOptions"))
        };
        let batch = ObjectBuilder::new()
            .schema_type(Type::Object)
            .title(Some("batch"))
            .property("subject", any("default subject of every item"))
            .property("action", any("default action of every item"))
            .property("resource", any("default resource of every item"))
            .property("context", any("default context of every item"))
            .property("options", options())
            .property(
                "evaluations",
                ArrayBuilder::new()
                    .items(any(
                        "an evaluation: members replace the defaults; an item that is not a \
                         valid evaluation after merging is answered with decision false",
                    ))
                    .min_items(Some(1)),
            )
            .required("evaluations");
        let nullable_object =
            || ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Object, Type::Null]));
        let single = ObjectBuilder::new()
            .schema_type(Type::Object)
            .title(Some("single"))
            .property("subject", Ref::from_schema_name("Entity"))
            .property("action", Ref::from_schema_name("Action"))
            .property("resource", Ref::from_schema_name("Entity"))
            .property("context", nullable_object())
            .property("options", options())
            .property(
                "evaluations",
                ArrayBuilder::new().items(any("none")).max_items(Some(0)),
            )
            .required("subject")
            .required("action")
            .required("resource");
        AnyOfBuilder::new()
            .description(Some(
                "A batch of evaluations with defaults, or (no or empty `evaluations`) one \
                 evaluation. Unknown members are ignored.",
            ))
            .item(batch)
            .item(single)
            .into()
    }
}

impl ToSchema for EvaluationsRequest {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        use utoipa::PartialSchema;
        for (name, schema) in [
            (Entity::name(), Entity::schema()),
            (Action::name(), Action::schema()),
            (EvaluationsOptions::name(), EvaluationsOptions::schema()),
        ] {
            schemas.push((name.into_owned(), schema));
        }
    }
}

/// `page` of a search request (AuthZEN 1.0 §8.2).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(expecting = "an object")]
pub struct PageRequest {
    /// A `next_token` from the previous answer; absent or empty for the
    /// first page.
    #[serde(default)]
    #[schema(pattern = "^([0-9a-f]{1,16}-[0-9a-f]{1,16})?$")]
    pub token: Option<String>,
    /// Results per page, 1 to 1000 (default 100).
    #[serde(default, deserialize_with = "crate::wire::whole_number")]
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// Body of `POST /access/v1/search/subject` (AuthZEN 1.0 §8.4).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(expecting = "an object with members `subject`, `action` and `resource`")]
pub struct SubjectSearch {
    /// The type of the subjects searched for.
    pub subject: EntityType,
    /// The action.
    pub action: Action,
    /// The resource.
    pub resource: Entity,
    /// The Cedar context.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub context: Option<Map<String, Value>>,
    /// Which page.
    #[serde(default)]
    pub page: Option<PageRequest>,
}

/// Body of `POST /access/v1/search/resource` (AuthZEN 1.0 §8.5).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(expecting = "an object with members `subject`, `action` and `resource`")]
pub struct ResourceSearch {
    /// The subject.
    pub subject: Entity,
    /// The action.
    pub action: Action,
    /// The type of the resources searched for.
    pub resource: EntityType,
    /// The Cedar context.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub context: Option<Map<String, Value>>,
    /// Which page.
    #[serde(default)]
    pub page: Option<PageRequest>,
}

/// Body of `POST /access/v1/search/action` (AuthZEN 1.0 §8.6).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(expecting = "an object with members `subject` and `resource`")]
pub struct ActionSearch {
    /// The subject.
    pub subject: Entity,
    /// The resource.
    pub resource: Entity,
    /// The Cedar context.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub context: Option<Map<String, Value>>,
    /// Which page.
    #[serde(default)]
    pub page: Option<PageRequest>,
}

/// A subject or resource in search results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FoundEntity {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its id.
    pub id: String,
}

/// An action in search results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FoundAction {
    /// Its name.
    pub name: String,
}

/// `page` of a search answer (AuthZEN 1.0 §8.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PageResponse {
    /// Pass it back as `page.token` for the next page; empty on the last page.
    pub next_token: String,
    /// Results in this page.
    pub count: usize,
    /// Results in all pages.
    pub total: usize,
}

/// A page of subjects or resources.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntityResults {
    /// The entities allowed, sorted by id.
    pub results: Vec<FoundEntity>,
    /// Where the next page starts.
    pub page: PageResponse,
}

/// A page of actions.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionResults {
    /// The actions allowed, sorted by name.
    pub results: Vec<FoundAction>,
    /// Where the next page starts.
    pub page: PageResponse,
}

/// PDP metadata (AuthZEN 1.0 §9.1), served at
/// `/.well-known/authzen-configuration`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PdpMetadata {
    /// The PDP's base URL.
    pub policy_decision_point: String,
    /// `POST …/access/v1/evaluation`.
    pub access_evaluation_endpoint: String,
    /// `POST …/access/v1/evaluations`.
    pub access_evaluations_endpoint: String,
    /// `POST …/access/v1/search/subject`.
    pub search_subject_endpoint: String,
    /// `POST …/access/v1/search/resource`.
    pub search_resource_endpoint: String,
    /// `POST …/access/v1/search/action`.
    pub search_action_endpoint: String,
}

impl PdpMetadata {
    /// The metadata of a PDP at `base` (no trailing slash).
    pub fn at(base: &str) -> Self {
        Self {
            policy_decision_point: base.to_owned(),
            access_evaluation_endpoint: format!("{base}/access/v1/evaluation"),
            access_evaluations_endpoint: format!("{base}/access/v1/evaluations"),
            search_subject_endpoint: format!("{base}/access/v1/search/subject"),
            search_resource_endpoint: format!("{base}/access/v1/search/resource"),
            search_action_endpoint: format!("{base}/access/v1/search/action"),
        }
    }
}

/// Where a page starts: an offset into the sorted results of one policy
/// version. Spelled `<version hex>-<offset hex>`; opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageToken {
    /// The policy version the results came from (0: no active pack).
    pub version: u64,
    /// Results already returned.
    pub offset: usize,
}

impl PageToken {
    /// Reads a token; `None` when it is not one this server issued.
    pub fn parse(s: &str) -> Option<Self> {
        let (version, offset) = s.split_once('-')?;
        let hex = |t: &str| {
            !t.is_empty()
                && t.len() <= 16
                && t.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        };
        if !hex(version) || !hex(offset) {
            return None;
        }
        Some(Self {
            version: u64::from_str_radix(version, 16).ok()?,
            offset: usize::from_str_radix(offset, 16).ok()?,
        })
    }

    /// The token as sent.
    pub fn encode(self) -> String {
        format!("{:x}-{:x}", self.version, self.offset)
    }
}

/// The page of `all` that `page` asks for, with the answer's `page`
/// member; an error message (for a 400) when the token or limit is bad.
pub fn paginate<T>(
    all: Vec<T>,
    version: u64,
    page: Option<PageRequest>,
) -> Result<(Vec<T>, PageResponse), String> {
    let page = page.unwrap_or_default();
    let limit = match page.limit {
        None => SEARCH_DEFAULT_LIMIT,
        Some(n) if (1..=SEARCH_MAX_LIMIT as i64).contains(&n) => {
            usize::try_from(n).unwrap_or(SEARCH_MAX_LIMIT)
        }
        Some(_) => return Err(format!("page limit must be 1 to {SEARCH_MAX_LIMIT}")),
    };
    let offset = match page.token.as_deref() {
        None | Some("") => 0,
        Some(raw) => match PageToken::parse(raw) {
            Some(t) if t.version == version && t.offset <= all.len() => t.offset,
            Some(t) if t.version != version => {
                return Err(
                    "the page token belongs to another policy version; start the search again"
                        .into(),
                );
            }
            _ => return Err(format!("invalid page token \"{raw}\"")),
        },
    };
    let total = all.len();
    let results: Vec<T> = all.into_iter().skip(offset).take(limit).collect();
    let end = offset + results.len();
    let next_token = if end < total {
        PageToken {
            version,
            offset: end,
        }
        .encode()
    } else {
        String::new()
    };
    Ok((
        results,
        PageResponse {
            next_token,
            count: end - offset,
            total,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn items_override_defaults_member_by_member() {
        let body = object(json!({
            "subject": {"type": "user", "id": "alice"},
            "action": {"name": "read"},
            "resource": {"type": "doc", "id": "d0"},
            "options": {"evaluations_semantic": "deny_on_first_deny", "other": 1},
            "evaluations": [
                {"resource": {"type": "doc", "id": "d1"}},
                {"action": {"name": "write"}, "extra": true},
                {"subject": "nobody"},
                7
            ]
        }));
        let Evaluations::Batch { items, semantic } = parse_evaluations(body).unwrap() else {
            panic!("a batch")
        };
        assert_eq!(semantic, Semantic::DenyOnFirstDeny);
        let first = items[0].as_ref().unwrap();
        assert_eq!(
            (first.subject.id.as_str(), first.resource.id.as_str()),
            ("alice", "d1")
        );
        let second = items[1].as_ref().unwrap();
        assert_eq!(
            (second.action.name.as_str(), second.resource.id.as_str()),
            ("write", "d0")
        );
        assert!(items[2].as_ref().unwrap_err().starts_with("evaluation 2: "));
        assert!(items[3].as_ref().unwrap_err().contains("json object"));
    }

    #[test]
    fn no_or_empty_evaluations_is_a_single_evaluation() {
        for evaluations in [json!(null), json!([])] {
            let mut body = json!({
                "subject": {"type": "user", "id": "alice"},
                "action": {"name": "read"},
                "resource": {"type": "doc", "id": "d0"}
            });
            if !evaluations.is_null() {
                body["evaluations"] = evaluations;
            }
            assert!(matches!(
                parse_evaluations(object(body)),
                Ok(Evaluations::Single(_))
            ));
        }
        let err = parse_evaluations(object(json!({"action": {"name": "read"}}))).unwrap_err();
        assert!(err.contains("missing field `subject`"), "{err}");
        let err = parse_evaluations(object(json!({"evaluations": {}}))).unwrap_err();
        assert!(err.contains("must be an array"), "{err}");
        let err = parse_evaluations(object(
            json!({"options": {"evaluations_semantic": "x"}, "evaluations": [{}]}),
        ))
        .unwrap_err();
        assert!(err.starts_with("invalid options"), "{err}");
    }

    #[test]
    fn pages_walk_the_results_and_tokens_are_bound_to_a_version() {
        let all: Vec<u32> = (0..5).collect();
        let first = Some(PageRequest {
            token: None,
            limit: Some(2),
        });
        let (page, meta) = paginate(all.clone(), 3, first).unwrap();
        assert_eq!(page, [0, 1]);
        assert_eq!(meta.next_token, "3-2");
        assert_eq!((meta.count, meta.total), (2, 5));
        let next = Some(PageRequest {
            token: Some(meta.next_token),
            limit: Some(4),
        });
        let (page, meta) = paginate(all.clone(), 3, next).unwrap();
        assert_eq!(page, [2, 3, 4]);
        assert_eq!(meta.next_token, "");
        let stale = Some(PageRequest {
            token: Some("2-2".into()),
            limit: None,
        });
        assert!(
            paginate(all.clone(), 3, stale)
                .unwrap_err()
                .contains("another policy version")
        );
        for bad in ["", "zz", "3-", "3-ff", "3-2-1", "3-A"] {
            let page = Some(PageRequest {
                token: Some(bad.into()),
                limit: None,
            });
            let result = paginate(all.clone(), 3, page);
            assert_eq!(result.is_ok(), bad.is_empty(), "{bad}");
        }
        for limit in [0, 1001] {
            let page = Some(PageRequest {
                token: None,
                limit: Some(limit),
            });
            assert!(paginate(all.clone(), 3, page).is_err());
        }
    }
}
