//! The OpenAPI 3.1 description of the API, served at `GET /openapi.json`.
//!
//! Built by utoipa from the `#[utoipa::path]` annotations on the handlers
//! and the wire types' schemas (the constraints on values come from
//! [`crate::schema`]). The responses every `/v1/` operation can give (401,
//! 500, 503; 403 unless it takes any secret; 400 when it has input; 413 and
//! 415 when it has a body) are added here once rather than repeated on each
//! handler.

use crate::api::{
    audit, authzen, client_keys, credentials, delegations, identities, oauth, policies, service,
    tokens,
};
use crate::problem::{CONTENT_TYPE, Code, Problem};
use crate::{authzen_wire, delegation_wire, oauth_wire, schema, wire};
use std::sync::OnceLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// The document's root.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Handoff admin API",
        description = "Identity governance for humans, agents and services. Errors are RFC 9457 \
            problem+json with a stable `type` `urn:handoff:problem:<code>`."
    ),
    paths(
        identities::create,
        identities::list,
        identities::show,
        identities::update,
        identities::set_status,
        credentials::issue,
        credentials::list,
        credentials::show,
        credentials::revoke,
        tokens::create,
        tokens::list,
        tokens::show,
        tokens::revoke,
        tokens::whoami,
        audit::list,
        audit::verify,
        policies::push,
        policies::list,
        policies::show,
        policies::activate,
        authzen::evaluation,
        authzen::evaluations,
        authzen::search_subject,
        authzen::search_resource,
        authzen::search_action,
        authzen::configuration,
        oauth::token,
        oauth::introspect,
        oauth::revoke,
        oauth::metadata,
        oauth::jwks,
        delegations::show,
        delegations::list,
        delegations::lineage,
        delegations::revoke,
        delegations::mint_human,
        delegations::keys,
        delegations::rotate,
        client_keys::add,
        client_keys::list,
        client_keys::revoke,
        service::healthz,
        service::readyz,
        service::metrics,
        service::openapi,
    ),
    components(schemas(
        Problem,
        schema::IdentityId,
        schema::HumanId,
        schema::NonHumanId,
        schema::CredentialId,
        schema::AdminTokenId,
        schema::DelegationId,
        schema::KeyId,
        schema::Environment,
        schema::Cursor,
        schema::IdentityKind,
        schema::IdentityStatus,
        schema::AdminRole,
        schema::Lifetime,
        schema::Attributes,
        wire::CreateIdentity,
        wire::UpdateIdentity,
        wire::SetStatus,
        wire::IdentityBody,
        wire::IdentityPage,
        wire::IssueCredential,
        wire::CredentialState,
        wire::CredentialBody,
        wire::IssuedCredential,
        wire::CredentialList,
        wire::CreateAdminToken,
        wire::AdminTokenBody,
        wire::CreatedAdminToken,
        wire::AdminTokenList,
        wire::Whoami,
        wire::RecordBody,
        wire::AuditPage,
        wire::Verification,
        wire::VerifiedLog,
        wire::BrokenLog,
        wire::Health,
        schema::PolicyVersion,
        schema::Explain,
        wire::PushPolicies,
        wire::PolicyVersionBody,
        wire::PolicyVersionList,
        wire::PolicyVersionDetail,
        authzen_wire::Entity,
        authzen_wire::EntityType,
        authzen_wire::Action,
        authzen_wire::EvaluationRequest,
        authzen_wire::EvaluationsRequest,
        authzen_wire::EvaluationsOptions,
        authzen_wire::SemanticWord,
        authzen_wire::DecisionContext,
        authzen_wire::EvaluationResponse,
        authzen_wire::EvaluationsResponse,
        authzen_wire::EvaluationsAnswer,
        authzen_wire::PageRequest,
        authzen_wire::PageResponse,
        authzen_wire::SubjectSearch,
        authzen_wire::ResourceSearch,
        authzen_wire::ActionSearch,
        authzen_wire::FoundEntity,
        authzen_wire::FoundAction,
        authzen_wire::EntityResults,
        authzen_wire::ActionResults,
        authzen_wire::PdpMetadata,
        authzen_wire::HopBody,
        oauth_wire::TokenResponse,
        oauth_wire::TokenForm,
        oauth_wire::TokenParam,
        oauth_wire::OAuthErrorBody,
        delegation_wire::DelegationBody,
        delegation_wire::DelegationDetail,
        delegation_wire::LineageBody,
        delegation_wire::DelegationPage,
        delegation_wire::RevokeDelegation,
        delegation_wire::BlastRadiusBody,
        delegation_wire::MintHuman,
        delegation_wire::MintedToken,
        delegation_wire::KeyBody,
        delegation_wire::KeyList,
        delegation_wire::Rotated,
        client_keys::AddClientKey,
        client_keys::ClientKeyBody,
        client_keys::ClientKeyList,
    )),
    modifiers(&BearerScheme, &CommonProblems),
    tags(
        (name = "identities", description = "The inventory of humans, agents and services"),
        (name = "credentials", description = "Secrets held by agents and services"),
        (name = "admin-tokens", description = "Tokens for this API, and whoami"),
        (name = "audit", description = "The hash-chained audit log"),
        (name = "policies", description = "Versioned Cedar policy packs"),
        (name = "authzen", description = "The OpenID AuthZEN Authorization API 1.0 (docs/authzen.md): \
            a pdp or admin token, or a credential; no token when the server leaves the PDP open"),
        (name = "oauth", description = "OAuth 2.0: token endpoint (client credentials, RFC 8693 token \
            exchange), introspection (RFC 7662), revocation (RFC 7009), metadata (RFC 8414), JWKS. \
            Errors use the RFC 6749 §5.2 shape, not problem+json (docs/delegation.md)"),
        (name = "delegations", description = "Delegations, lineages, signing keys (docs/delegation.md)"),
        (name = "service", description = "Health, readiness, metrics, this document; no token needed"),
    )
)]
pub struct ApiDoc;

/// Name of the security scheme the operations refer to.
const BEARER: &str = "bearer";

/// Declares `Authorization: Bearer <admin token or credential>`.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "an admin token (hfa_…) or, for /v1/whoami and the AuthZEN api, a credential (hfc_…)",
            ))
            .build();
        let basic = HttpBuilder::new()
            .scheme(HttpAuthScheme::Basic)
            .description(Some(
                "OAuth client authentication (RFC 6749 §2.3.1): client_id = the agent's or service's id, client_secret = its credential",
            ))
            .build();
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(BEARER, SecurityScheme::Http(scheme));
        components.add_security_scheme("basic", SecurityScheme::Http(basic));
    }
}

/// Adds a named problem response per code, and refers to the common ones
/// from every operation.
struct CommonProblems;

/// Codes every `/v1/` operation may answer.
const V1_CODES: [Code; 3] = [Code::Unauthenticated, Code::Internal, Code::Unavailable];

/// Codes an operation with parameters or a body may answer.
const INPUT_CODES: [Code; 1] = [Code::InvalidRequest];

/// Codes an operation with a request body may answer.
const BODY_CODES: [Code; 2] = [Code::PayloadTooLarge, Code::UnsupportedMediaType];

/// Codes every AuthZEN operation may answer. Every unreadable body is a
/// 400 there (AuthZEN 1.0 §10), never a 415.
const AUTHZEN_CODES: [Code; 6] = [
    Code::InvalidRequest,
    Code::Unauthenticated,
    Code::Forbidden,
    Code::PayloadTooLarge,
    Code::Internal,
    Code::Unavailable,
];

/// Operations that answer for any bearer secret, so never refuse one with
/// 403: every other `/v1/` operation wants an admin token (of the admin role
/// to change state).
const ANY_SECRET: [&str; 1] = ["whoami"];

fn response_name(code: Code) -> String {
    code.as_str()
        .split('-')
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

impl Modify for CommonProblems {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        for code in Code::ALL {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build();
            let response = ResponseBuilder::new()
                .description(code.title())
                .content(CONTENT_TYPE, content)
                .build();
            components
                .responses
                .insert(response_name(code), RefOr::T(response));
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            let v1 = path.starts_with("/v1/");
            let authzen = path.starts_with("/access/");
            // OAuth endpoints answer in RFC 6749 form; only the body limit
            // (a problem+json 413, before the handler runs) is shared.
            let oauth = path.starts_with("/oauth2/");
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.put,
                &mut item.delete,
            ];
            for op in operations.into_iter().flatten() {
                let with_body = op.request_body.is_some();
                let with_input = with_body || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let admin_only = !op
                    .operation_id
                    .as_deref()
                    .is_some_and(|id| ANY_SECRET.contains(&id));
                let codes: Vec<&Code> = if authzen {
                    AUTHZEN_CODES.iter().collect()
                } else if oauth {
                    [Code::PayloadTooLarge].iter().collect()
                } else {
                    V1_CODES
                        .iter()
                        .chain(INPUT_CODES.iter().filter(|_| with_input))
                        .chain([Code::Forbidden].iter().filter(|_| admin_only))
                        .filter(|_| v1)
                        .chain(BODY_CODES.iter().filter(|_| with_body))
                        .collect()
                };
                for code in codes {
                    let status = code.status().as_u16().to_string();
                    let reference =
                        Ref::new(format!("#/components/responses/{}", response_name(*code)));
                    op.responses
                        .responses
                        .entry(status)
                        .or_insert(RefOr::Ref(reference));
                }
            }
        }
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as JSON, built once.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document().to_json().unwrap_or_else(|e| {
            tracing::error!(error = %e, "the openapi document could not be serialized");
            "{}".to_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use handoff_core::credential::MAX_DESCRIPTION_LEN;
    use handoff_core::page::{MAX_CURSOR_LEN, MAX_LIMIT};
    use handoff_core::token::MAX_TOKEN_NAME_LEN;
    use handoff_engine::credentials::{MAX_TTL_SECONDS, MIN_TTL_SECONDS};
    use handoff_engine::inventory::MAX_REASON_LEN;
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::from_str(json()).unwrap()
    }

    /// The schema of query parameter `name` of `GET path`.
    fn query_schema(v: &Value, path: &str, name: &str) -> Value {
        v["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no parameter {name} on {path}"))["schema"]
            .clone()
    }

    /// Numbers the derive takes only as literals are written in the wire
    /// types; these pin them to the constants the server enforces.
    #[test]
    fn document_limits_equal_the_enforced_constants() {
        let v = doc();
        let schemas = &v["components"]["schemas"];
        let reason = &schemas["SetStatus"]["properties"]["reason"];
        assert_eq!(reason["maxLength"], MAX_REASON_LEN);
        let description = &schemas["IssueCredential"]["properties"]["description"];
        assert_eq!(description["maxLength"], MAX_DESCRIPTION_LEN);
        let name = &schemas["CreateAdminToken"]["properties"]["name"];
        assert_eq!(name["maxLength"], MAX_TOKEN_NAME_LEN);
        assert_eq!(name["minLength"], 1);
        for text in [reason, description, name] {
            assert_eq!(text["pattern"], schema::NO_CONTROL_PATTERN);
        }

        let limit = query_schema(&v, "/v1/identities", "limit");
        assert_eq!(limit["minimum"], 1);
        assert_eq!(limit["maximum"], MAX_LIMIT);

        let lifetime = &schemas["Lifetime"];
        assert_eq!(lifetime["minimum"], MIN_TTL_SECONDS);
        assert_eq!(lifetime["maximum"], MAX_TTL_SECONDS);
        assert_eq!(schemas["Cursor"]["maxLength"], MAX_CURSOR_LEN);

        let range = query_schema(&v, "/v1/audit", "range");
        let [page, tail] = [&range["oneOf"][0], &range["oneOf"][1]];
        assert_eq!(
            page["properties"]["limit"]["maximum"],
            wire::AUDIT_MAX_LIMIT
        );
        assert_eq!(page["properties"]["after"]["maximum"], u64::MAX);
        assert_eq!(tail["properties"]["tail"]["maximum"], wire::AUDIT_MAX_LIMIT);
        assert_eq!(tail["required"], serde_json::json!(["tail"]));
        for shape in [page, tail] {
            assert_eq!(shape["additionalProperties"], false);
        }
    }

    #[test]
    fn word_lists_come_from_the_core() {
        let v = doc();
        let schemas = &v["components"]["schemas"];
        let words = |name: &str| -> Vec<String> {
            serde_json::from_value(schemas[name]["enum"].clone()).unwrap()
        };
        assert_eq!(words("IdentityKind"), ["human", "agent", "service"]);
        assert_eq!(
            words("IdentityStatus"),
            ["active", "suspended", "disabled", "decommissioned"]
        );
        assert_eq!(
            words("AdminRole"),
            handoff_core::Role::ALL.map(|r| r.as_str().to_owned())
        );
    }

    /// A new route whose id is a bare string would let generated requests
    /// through the document that the server then refuses.
    #[test]
    fn every_path_parameter_is_a_constrained_id() {
        let v = doc();
        for (path, item) in v["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for p in op["parameters"].as_array().into_iter().flatten() {
                    if p["in"] != "path" {
                        continue;
                    }
                    let reference = p["schema"]["$ref"].as_str().unwrap_or_default();
                    let name = reference.trim_start_matches("#/components/schemas/");
                    let pattern = &v["components"]["schemas"][name]["pattern"];
                    assert!(pattern.is_string(), "{method} {path}: {}", p["name"]);
                }
            }
        }
    }

    #[test]
    fn patch_needs_a_field_and_create_states_the_ownership_rule() {
        let v = doc();
        let schemas = &v["components"]["schemas"];
        assert_eq!(schemas["UpdateIdentity"]["minProperties"], 1);
        let shapes = schemas["CreateIdentity"]["oneOf"].as_array().unwrap();
        let [human, non_human] = [&shapes[0], &shapes[1]];
        assert_eq!(human["properties"]["owner"]["type"], "null");
        assert_eq!(human["required"], serde_json::json!(["id"]));
        assert_eq!(
            non_human["properties"]["owner"]["$ref"],
            "#/components/schemas/HumanId"
        );
        assert_eq!(non_human["required"], serde_json::json!(["id", "owner"]));
    }

    #[test]
    fn statuses_are_documented_only_where_they_can_happen() {
        let v = doc();
        let statuses = |path: &str, method: &str| -> Vec<String> {
            let mut codes: Vec<String> = v["paths"][path][method]["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            codes.sort();
            codes
        };
        assert_eq!(statuses("/v1/whoami", "get"), ["200", "401", "500", "503"]);
        assert_eq!(
            statuses("/v1/admin-tokens", "get"),
            ["200", "401", "403", "500", "503"]
        );
        assert_eq!(
            statuses("/v1/identities/{id}", "patch"),
            [
                "200", "400", "401", "403", "404", "409", "413", "415", "500", "503"
            ]
        );
    }

    #[test]
    fn authzen_operations_answer_400_never_415() {
        let v = doc();
        for path in [
            "/access/v1/evaluation",
            "/access/v1/evaluations",
            "/access/v1/search/subject",
            "/access/v1/search/resource",
            "/access/v1/search/action",
        ] {
            let mut codes: Vec<&String> = v["paths"][path]["post"]["responses"]
                .as_object()
                .unwrap()
                .keys()
                .collect();
            codes.sort();
            assert_eq!(
                codes,
                ["200", "400", "401", "403", "413", "500", "503"],
                "{path}"
            );
        }
        let metadata = &v["paths"]["/.well-known/authzen-configuration"]["get"];
        assert!(metadata["responses"].get("401").is_none());
        let put = &v["paths"]["/v1/policies"]["put"]["responses"];
        assert!(put.get("422").is_some() && put.get("415").is_some());
    }

    #[test]
    fn response_names_are_pascal_case() {
        assert_eq!(response_name(Code::InvalidRequest), "InvalidRequest");
        assert_eq!(response_name(Code::Internal), "Internal");
        assert_eq!(
            response_name(Code::UnsupportedMediaType),
            "UnsupportedMediaType"
        );
    }

    #[test]
    fn document_is_openapi_3_1_with_bearer_security() {
        let v: serde_json::Value = serde_json::from_str(json()).unwrap();
        assert!(v["openapi"].as_str().unwrap().starts_with("3.1"));
        assert_eq!(
            v["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        let create = &v["paths"]["/v1/identities"]["post"];
        for status in [
            "201", "400", "401", "403", "409", "413", "415", "422", "500", "503",
        ] {
            assert!(
                create["responses"].get(status).is_some(),
                "missing {status}"
            );
        }
        assert!(
            v["paths"]["/healthz"]["get"]["responses"]
                .get("401")
                .is_none()
        );
        assert!(v["components"]["schemas"].get("Problem").is_some());
    }
}
