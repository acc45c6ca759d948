//! The AuthZEN Authorization API 1.0 (OpenID): access evaluation, batches
//! of evaluations, subject/resource/action searches and the PDP metadata.
//!
//! A deny is `200 {"decision": false}`; errors are problem+json, and every
//! unreadable body is a 400 (AuthZEN 1.0 §10). Decisions carry reasons and
//! errors only when the caller sends `X-Handoff-Explain: true`. Deciding and
//! logging decisions are the engine's; the searches run on the current
//! decision point snapshot and are paginated here.

use super::AppState;
use super::extract::{AuthzenJson, Evaluator, Explain};
use crate::authzen_wire::{
    ActionResults, ActionSearch, EntityResults, EvaluationRequest, EvaluationResponse, Evaluations,
    EvaluationsAnswer, EvaluationsRequest, EvaluationsResponse, FoundAction, FoundEntity,
    PdpMetadata, ResourceSearch, SubjectSearch, paginate, parse_evaluations,
};
use crate::problem::{Code, Problem};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use handoff_engine::auth::Actor;
use handoff_policy::{Pdp, PolicyError};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// One access evaluation (AuthZEN 1.0 §6).
#[utoipa::path(
    post, path = "/access/v1/evaluation", tag = "authzen", operation_id = "access_evaluation",
    params(("x-handoff-explain" = Option<crate::schema::Explain>, Header, nullable = false, description = "`true` adds the determining policies and errors as `context`")),
    request_body = EvaluationRequest,
    responses((status = 200, description = "the decision; a deny is decision false", body = EvaluationResponse)),
    security(("bearer" = []), ())
)]
pub(crate) async fn evaluation(
    State(s): State<AppState>,
    Evaluator(actor): Evaluator,
    Explain(explain): Explain,
    AuthzenJson(req): AuthzenJson<EvaluationRequest>,
) -> Result<Json<EvaluationResponse>, Problem> {
    let decision = s.engine.evaluate(&actor, &req.into()).await?;
    Ok(Json(EvaluationResponse::new(decision, explain, None)))
}

/// A batch of evaluations with defaults and `options.evaluations_semantic`
/// (AuthZEN 1.0 §7); without items, one evaluation.
#[utoipa::path(
    post, path = "/access/v1/evaluations", tag = "authzen", operation_id = "access_evaluations",
    params(("x-handoff-explain" = Option<crate::schema::Explain>, Header, nullable = false, description = "`true` adds the determining policies and errors as `context`")),
    request_body = EvaluationsRequest,
    responses((status = 200, description = "one decision per item in request order, or a single decision", body = EvaluationsAnswer)),
    security(("bearer" = []), ())
)]
pub(crate) async fn evaluations(
    State(s): State<AppState>,
    Evaluator(actor): Evaluator,
    Explain(explain): Explain,
    AuthzenJson(body): AuthzenJson<Map<String, Value>>,
) -> Result<Json<EvaluationsAnswer>, Problem> {
    let parsed = parse_evaluations(body).map_err(|m| Problem::new(Code::InvalidRequest, m))?;
    match parsed {
        Evaluations::Single(req) => {
            let decision = s.engine.evaluate(&actor, &req).await?;
            let answer = EvaluationResponse::new(decision, explain, None);
            Ok(Json(EvaluationsAnswer::Single(answer)))
        }
        Evaluations::Batch { items, semantic } => {
            let errors: Vec<Option<String>> =
                items.iter().map(|i| i.as_ref().err().cloned()).collect();
            let decisions = s.engine.evaluate_many(&actor, items, semantic).await?;
            let evaluations = decisions
                .into_iter()
                .zip(errors)
                .map(|(d, error)| EvaluationResponse::new(d, explain, error))
                .collect();
            Ok(Json(EvaluationsAnswer::Batch(EvaluationsResponse {
                evaluations,
            })))
        }
    }
}

/// Subjects of a type that may do an action on a resource (AuthZEN 1.0 §8.4).
#[utoipa::path(
    post, path = "/access/v1/search/subject", tag = "authzen", operation_id = "search_subject",
    request_body = SubjectSearch,
    responses((status = 200, description = "a page of subjects, sorted by id", body = EntityResults)),
    security(("bearer" = []), ())
)]
pub(crate) async fn search_subject(
    State(s): State<AppState>,
    Evaluator(actor): Evaluator,
    AuthzenJson(req): AuthzenJson<SubjectSearch>,
) -> Result<Json<EntityResults>, Problem> {
    let kind = req.subject.kind;
    let logged = json!({
        "subject": { "type": kind },
        "action": req.action.name,
        "resource": { "type": req.resource.kind, "id": req.resource.id },
    });
    let (version, ids) = search(&s, |pdp| {
        pdp.search_subjects(
            &kind,
            &req.action.into(),
            &req.resource.into(),
            &req.context.unwrap_or_default(),
        )
    })
    .map_err(invalid)?;
    log_search(&s, &actor, "subject", logged, ids.len()).await?;
    entity_page(kind, version, ids, req.page)
        .map(Json)
        .map_err(invalid)
}

/// One page of found entities of type `kind`, all of them ids from a search.
fn entity_page(
    kind: String,
    version: u64,
    ids: Vec<String>,
    page: Option<crate::authzen_wire::PageRequest>,
) -> Result<EntityResults, String> {
    let found = ids
        .into_iter()
        .map(|id| FoundEntity {
            kind: kind.clone(),
            id,
        })
        .collect();
    let (results, page) = paginate(found, version, page)?;
    Ok(EntityResults { results, page })
}

/// Resources of a type on which a subject may do an action (AuthZEN 1.0 §8.5).
#[utoipa::path(
    post, path = "/access/v1/search/resource", tag = "authzen", operation_id = "search_resource",
    request_body = ResourceSearch,
    responses((status = 200, description = "a page of resources, sorted by id", body = EntityResults)),
    security(("bearer" = []), ())
)]
pub(crate) async fn search_resource(
    State(s): State<AppState>,
    Evaluator(actor): Evaluator,
    AuthzenJson(req): AuthzenJson<ResourceSearch>,
) -> Result<Json<EntityResults>, Problem> {
    let kind = req.resource.kind;
    let logged = json!({
        "subject": { "type": req.subject.kind, "id": req.subject.id },
        "action": req.action.name,
        "resource": { "type": kind },
    });
    let (version, ids) = search(&s, |pdp| {
        pdp.search_resources(
            &req.subject.into(),
            &req.action.into(),
            &kind,
            &req.context.unwrap_or_default(),
        )
    })
    .map_err(invalid)?;
    log_search(&s, &actor, "resource", logged, ids.len()).await?;
    entity_page(kind, version, ids, req.page)
        .map(Json)
        .map_err(invalid)
}

/// Actions a subject may do on a resource (AuthZEN 1.0 §8.6).
#[utoipa::path(
    post, path = "/access/v1/search/action", tag = "authzen", operation_id = "search_action",
    request_body = ActionSearch,
    responses((status = 200, description = "a page of actions, sorted by name", body = ActionResults)),
    security(("bearer" = []), ())
)]
pub(crate) async fn search_action(
    State(s): State<AppState>,
    Evaluator(actor): Evaluator,
    AuthzenJson(req): AuthzenJson<ActionSearch>,
) -> Result<Json<ActionResults>, Problem> {
    let logged = json!({
        "subject": { "type": req.subject.kind, "id": req.subject.id },
        "resource": { "type": req.resource.kind, "id": req.resource.id },
    });
    let (version, names) = search(&s, |pdp| {
        pdp.search_actions(
            &req.subject.into(),
            &req.resource.into(),
            &req.context.unwrap_or_default(),
        )
    })
    .map_err(invalid)?;
    log_search(&s, &actor, "action", logged, names.len()).await?;
    let found = names.into_iter().map(|name| FoundAction { name }).collect();
    let (results, page) = paginate(found, version, req.page).map_err(invalid)?;
    Ok(Json(ActionResults { results, page }))
}

/// The PDP metadata (AuthZEN 1.0 §9): absolute endpoint URLs under the
/// configured public URL, else under the request's scheme and host.
#[utoipa::path(
    get, path = "/.well-known/authzen-configuration", tag = "authzen", operation_id = "authzen_configuration",
    responses(
        (status = 200, description = "the endpoints of this PDP", body = PdpMetadata),
        (status = 400, description = "no usable Host header", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn configuration(
    State(s): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<PdpMetadata>, Problem> {
    let base = match &s.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => request_base(&uri, &headers, if s.tls { "https" } else { "http" })
            .ok_or_else(|| Problem::new(Code::InvalidRequest, "a valid host header is required"))?,
    };
    Ok(Json(PdpMetadata::at(&base)))
}

/// `scheme://host` of the request: `X-Forwarded-Proto` (http or https) or
/// the URI's scheme, else `default_scheme` (https when this server
/// terminates TLS); the `Host` header or the URI's authority.
fn request_base(uri: &Uri, headers: &HeaderMap, default_scheme: &'static str) -> Option<String> {
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| matches!(*p, "http" | "https"))
        .or(uri.scheme_str())
        .unwrap_or(default_scheme);
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or(uri.authority().map(|a| a.as_str()))
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })?;
    Some(format!("{scheme}://{host}"))
}

/// Runs `f` on the current decision point: no active pack finds nothing.
/// A request the PDP cannot read (an invalid type or action) is a 400.
fn search(
    s: &AppState,
    f: impl FnOnce(&Pdp) -> Result<Vec<String>, PolicyError>,
) -> Result<(u64, Vec<String>), String> {
    let Some(pdp): Option<Arc<Pdp>> = s.engine.pdp() else {
        return Ok((0, Vec::new()));
    };
    let found = f(&pdp).map_err(|e| format!("invalid search: {e}"))?;
    Ok((pdp.version(), found))
}

/// Writes the search's audit record (what was asked and how many matched)
/// and waits until it is durable, as for decisions.
async fn log_search(
    s: &AppState,
    actor: &Actor,
    what: &str,
    mut logged: Value,
    found: usize,
) -> Result<(), Problem> {
    if let Value::Object(map) = &mut logged {
        map.insert("found".into(), json!(found));
    }
    Ok(s.engine.record_search(actor, what, logged).await?)
}

fn invalid(message: String) -> Problem {
    Problem::new(Code::InvalidRequest, message)
}
