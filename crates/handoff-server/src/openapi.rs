//! The OpenAPI 3.1 description of the API, served at `GET /openapi.json`.
//!
//! Built by utoipa from the `#[utoipa::path]` annotations on the handlers
//! and the wire types' schemas. The responses every `/v1/` operation can
//! give (400, 401, 403, 500, 503, and 413/415 for those with a body) are
//! added here once rather than repeated on each handler.

use crate::api::{audit, credentials, identities, service, tokens};
use crate::problem::{CONTENT_TYPE, Code, Problem};
use crate::wire;
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
        service::healthz,
        service::readyz,
        service::metrics,
        service::openapi,
    ),
    components(schemas(
        Problem,
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
    )),
    modifiers(&BearerScheme, &CommonProblems),
    tags(
        (name = "identities", description = "The inventory of humans, agents and services"),
        (name = "credentials", description = "Secrets held by agents and services"),
        (name = "admin-tokens", description = "Tokens for this API, and whoami"),
        (name = "audit", description = "The hash-chained audit log"),
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
                "an admin token (hfa_…) or, for /v1/whoami only, a credential (hfc_…)",
            ))
            .build();
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    }
}

/// Adds a named problem response per code, and refers to the common ones
/// from every operation.
struct CommonProblems;

/// Codes every `/v1/` operation may answer.
const V1_CODES: [Code; 5] = [
    Code::InvalidRequest,
    Code::Unauthenticated,
    Code::Forbidden,
    Code::Internal,
    Code::Unavailable,
];

/// Codes an operation with a request body may answer.
const BODY_CODES: [Code; 2] = [Code::PayloadTooLarge, Code::UnsupportedMediaType];

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
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.put,
                &mut item.delete,
            ];
            for op in operations.into_iter().flatten() {
                let with_body = op.request_body.is_some();
                let codes = V1_CODES
                    .iter()
                    .filter(|_| v1)
                    .chain(BODY_CODES.iter().filter(|_| with_body));
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
