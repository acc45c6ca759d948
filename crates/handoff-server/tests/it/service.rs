//! Service endpoints and middleware: health, readiness, metrics, the
//! OpenAPI document, `X-Request-Id` and the request timeout.

use crate::harness::Harness;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::{Method, Request, header};
use serde_json::Value;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

#[tokio::test]
async fn health_and_readiness_need_no_token() {
    let h = Harness::new().await;
    let r = h.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.expect(200)["status"], "ok");
    let r = h.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.expect(200)["status"], "ready");
}

#[tokio::test]
async fn readiness_fails_once_the_appender_stops() {
    let h = Harness::new().await;
    h.engine.shutdown().await;
    h.call(Method::GET, "/readyz", None, None)
        .await
        .assert_problem(503, "unavailable");
    // A write now cannot be audited, so it is refused.
    h.post("/v1/identities", serde_json::json!({"id": "human:late"}))
        .await
        .assert_problem(503, "unavailable");
}

#[tokio::test]
async fn metrics_count_requests_per_route_template() {
    let h = Harness::new().await;
    h.human("metered").await;
    h.get("/v1/identities/human%3Ametered").await.expect(200);
    h.get("/v1/no-such-route").await;
    let r = h.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = &r.text;
    assert!(text.contains("handoff_http_requests_total"), "{text}");
    assert!(text.contains(r#"route="/v1/identities/{id}""#), "{text}");
    assert!(text.contains(r#"route="unmatched""#), "{text}");
    assert!(
        !text.contains("human:metered"),
        "ids must not become labels"
    );
    assert!(
        text.contains("handoff_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("handoff_audit_queue_depth"), "{text}");
    assert!(text.contains("handoff_audit_head_seq"), "{text}");
    assert!(text.contains("handoff_audit_records_total"), "{text}");
}

/// Every route of docs/api.md, as OpenAPI paths.
const ROUTES: [&str; 16] = [
    "/v1/identities",
    "/v1/identities/{id}",
    "/v1/identities/{id}/status",
    "/v1/identities/{id}/credentials",
    "/v1/credentials/{credential_id}",
    "/v1/credentials/{credential_id}/revoke",
    "/v1/admin-tokens",
    "/v1/admin-tokens/{token_id}",
    "/v1/admin-tokens/{token_id}/revoke",
    "/v1/whoami",
    "/v1/audit",
    "/v1/audit/verify",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
];

#[tokio::test]
async fn the_openapi_document_is_3_1_and_describes_every_route() {
    let h = Harness::new().await;
    let r = h.call(Method::GET, "/openapi.json", None, None).await;
    let doc = r.expect(200);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/json");
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for route in ROUTES {
        assert!(paths.contains_key(route), "{route} is not described");
    }
    let methods =
        |p: &str| -> Vec<String> { paths[p].as_object().unwrap().keys().cloned().collect() };
    assert!(methods("/v1/identities").contains(&"post".to_owned()));
    assert!(methods("/v1/identities").contains(&"get".to_owned()));
    assert!(methods("/v1/identities/{id}").contains(&"patch".to_owned()));
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for s in [
        "Problem",
        "IdentityBody",
        "CredentialBody",
        "AdminTokenBody",
        "RecordBody",
        "Whoami",
        "Verification",
    ] {
        assert!(schemas.contains_key(s), "schema {s} missing");
    }
    // Every $ref points at something that exists.
    let text = r.text.clone();
    for part in text.split("\"$ref\":\"").skip(1) {
        let target = part.split('"').next().unwrap();
        let mut node: &Value = doc;
        for seg in target.trim_start_matches("#/").split('/') {
            node = &node[seg];
        }
        assert!(!node.is_null(), "dangling $ref {target}");
    }
}

#[tokio::test]
async fn request_ids_are_echoed_when_sane_and_generated_otherwise() {
    let h = Harness::new().await;
    let with = |id: &str| {
        Request::get("/healthz")
            .header("x-request-id", id)
            .body(Body::empty())
            .unwrap()
    };
    let r = h.send(with("abc-123")).await;
    assert_eq!(r.headers["x-request-id"], "abc-123");
    let long = "a".repeat(129);
    for bad in [long.as_str(), "has space", ""] {
        let r = h.send(with(bad)).await;
        let got = r.headers["x-request-id"].to_str().unwrap();
        assert_ne!(got, bad);
        assert_eq!(got.len(), 32, "{got}");
    }
    let r = h.get("/v1/identities/robot%3Ax").await;
    assert_eq!(
        r.headers["x-request-id"].len(),
        32,
        "problems carry a request id too"
    );
}

/// A request body that never arrives.
struct Stalled;

impl HttpBody for Stalled {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Pending
    }
}

#[tokio::test]
async fn a_request_that_outlives_the_timeout_is_a_503() {
    let h = Harness::with_timeout(Duration::from_millis(100)).await;
    let req = Request::post("/v1/identities")
        .header(header::AUTHORIZATION, format!("Bearer {}", h.token))
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-request-id", "slow-1")
        .body(Body::new(Stalled))
        .unwrap();
    let r = h.send(req).await;
    r.assert_problem(503, "unavailable");
    assert_eq!(r.headers["x-request-id"], "slow-1");
    h.get("/v1/identities").await.expect(200);
}

#[tokio::test]
async fn metrics_can_be_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let engine = handoff_engine::Engine::open(
        &handoff_engine::data_dir::DataDir::new(dir.path()),
        std::sync::Arc::new(handoff_core::SystemClock),
        handoff_engine::AppenderSettings::default(),
    )
    .await
    .unwrap();
    let app = handoff_server::app(handoff_server::AppState::new(engine));
    let res =
        tower::ServiceExt::oneshot(app, Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
    assert_eq!(res.status(), 404);
}
