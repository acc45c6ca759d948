//! Request hygiene: bodies, content types, sizes, ids, queries, tokens and
//! unknown routes all answer problem+json, and a refused write writes nothing.

use crate::harness::Harness;
use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::json;

/// A raw POST to `/v1/identities` with `content_type` and `body`.
fn raw_create(h: &Harness, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut req = Request::post("/v1/identities")
        .header(header::AUTHORIZATION, format!("Bearer {}", h.token));
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    req.body(body.into()).unwrap()
}

#[tokio::test]
async fn bad_bodies_are_refused_and_nothing_is_written() {
    let h = Harness::new().await;
    let before = h.audit_head().await;
    let json_ct = Some("application/json");
    let cases: Vec<(Option<&str>, String, u16, &str)> = vec![
        (
            json_ct,
            r#"{"id": "human:eve""#.into(),
            400,
            "invalid-request",
        ),
        (json_ct, "not json".into(), 400, "invalid-request"),
        (json_ct, String::new(), 400, "invalid-request"),
        (json_ct, r#"{"id": 42}"#.into(), 400, "invalid-request"),
        (
            json_ct,
            r#"{"id": "human:eve", "attributes": "x"}"#.into(),
            400,
            "invalid-request",
        ),
        (json_ct, r#"["human:eve"]"#.into(), 400, "invalid-request"),
        (json_ct, "null".into(), 400, "invalid-request"),
        (
            json_ct,
            r#"{"id": "human:eve", "admin": true}"#.into(),
            400,
            "invalid-request",
        ),
        (
            json_ct,
            r#"{"id": "robot:eve"}"#.into(),
            400,
            "invalid-request",
        ),
        (
            json_ct,
            r#"{"id": "human:e ve"}"#.into(),
            400,
            "invalid-request",
        ),
        (
            json_ct,
            r#"{"id": "agent:eve", "owner": "nobody"}"#.into(),
            400,
            "invalid-request",
        ),
        (
            json_ct,
            r#"{"id": "human:eve", "environment": "PROD"}"#.into(),
            400,
            "invalid-request",
        ),
        (
            Some("text/plain"),
            r#"{"id": "human:eve"}"#.into(),
            415,
            "unsupported-media-type",
        ),
        (
            None,
            r#"{"id": "human:eve"}"#.into(),
            415,
            "unsupported-media-type",
        ),
        (
            json_ct,
            format!(
                r#"{{"id": "human:eve", "attributes": {{"x": "{}"}}}}"#,
                "a".repeat(70 * 1024)
            ),
            413,
            "payload-too-large",
        ),
    ];
    for (ct, body, status, code) in cases {
        let r = h.send(raw_create(&h, ct, body.clone())).await;
        r.assert_problem(status, code);
        assert_eq!(
            h.audit_head().await,
            before,
            "{ct:?} {}",
            &body[..body.len().min(80)]
        );
    }
    h.assert_absent("human:eve").await;
}

#[tokio::test]
async fn json_errors_name_the_field() {
    let h = Harness::new().await;
    let r = h
        .send(raw_create(
            &h,
            Some("application/json"),
            r#"{"id": "human:eve", "colour": 1}"#,
        ))
        .await;
    r.assert_problem(400, "invalid-request");
    assert!(
        r.json["detail"].as_str().unwrap().contains("colour"),
        "{}",
        r.text
    );
    let r = h
        .send(raw_create(
            &h,
            Some("application/json"),
            r#"{"id": "robot:eve"}"#,
        ))
        .await;
    assert!(
        r.json["detail"].as_str().unwrap().contains("\"robot:eve\""),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn json_with_parameters_and_leading_space_is_accepted() {
    let h = Harness::new().await;
    let r = h
        .send(raw_create(
            &h,
            Some("application/json; charset=utf-8"),
            " \n{\"id\": \"human:eve\"}",
        ))
        .await;
    r.expect(201);
}

#[tokio::test]
async fn a_body_just_under_the_limit_is_accepted() {
    let h = Harness::new().await;
    // Attributes are capped at 16 KiB by the core, so stay under that.
    let body = json!({"id": "human:big", "attributes": {"x": "a".repeat(16_000)}});
    h.post("/v1/identities", body).await.expect(201);
}

#[tokio::test]
async fn invalid_and_unknown_path_ids() {
    let h = Harness::new().await;
    for path in [
        "/v1/identities/robot%3Ax",
        "/v1/identities/alice",
        "/v1/identities/human%3A",
        "/v1/identities/human%3Aa%2Fb",
        "/v1/identities/%FF%FE",
    ] {
        h.get(path).await.assert_problem(400, "invalid-request");
    }
    h.get("/v1/identities/human%3Anobody")
        .await
        .assert_problem(404, "not-found");
    h.get("/v1/identities/human:nobody")
        .await
        .assert_problem(404, "not-found");
    let before = h.audit_head().await;
    h.post(
        "/v1/identities/robot%3Ax/status",
        json!({"status": "disabled"}),
    )
    .await
    .assert_problem(400, "invalid-request");
    assert_eq!(h.audit_head().await, before);
}

#[tokio::test]
async fn bad_queries_are_400() {
    let h = Harness::new().await;
    for q in [
        "limit=0",
        "limit=501",
        "limit=abc",
        "cursor=zz",
        "kind=robot",
        "status=paused",
        "owner=nobody",
        "environment=PROD",
        "orphaned=maybe",
        "colour=blue",
    ] {
        h.get(&format!("/v1/identities?{q}"))
            .await
            .assert_problem(400, "invalid-request");
    }
    for q in [
        "tail=0",
        "tail=1001",
        "limit=0",
        "tail=5&after=1",
        "after=-1",
        "x=1",
    ] {
        h.get(&format!("/v1/audit?{q}"))
            .await
            .assert_problem(400, "invalid-request");
    }
}

#[tokio::test]
async fn missing_malformed_unknown_and_revoked_tokens_are_401_with_a_challenge() {
    let h = Harness::new().await;
    let (id, secret) = h.admin_token("admin").await;
    h.post_empty(&format!("/v1/admin-tokens/{id}/revoke"))
        .await
        .expect(200);
    let unknown = format!("hfa_0123456789abcdef_{}", "A".repeat(43));
    let headers = [
        None,
        Some("Basic dXNlcjpwYXNz".to_owned()),
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some("bearer not-a-token".to_owned()),
        Some(format!("Bearer {unknown}")),
        Some(format!("Bearer {secret}")),
        Some(format!("Bearer {}x", h.token)),
    ];
    let before = h.audit_head().await;
    for auth in headers {
        for (method, path, body) in [
            (Method::GET, "/v1/identities", None),
            (
                Method::POST,
                "/v1/identities",
                Some(r#"{"id": "human:eve"}"#),
            ),
            (Method::GET, "/v1/whoami", None),
        ] {
            let mut req = Request::builder()
                .method(method)
                .uri(path)
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(a) = &auth {
                req = req.header(header::AUTHORIZATION, a);
            }
            let r = h
                .send(req.body(Body::from(body.unwrap_or_default())).unwrap())
                .await;
            r.assert_problem(401, "unauthenticated");
            assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer", "{auth:?}");
        }
    }
    assert_eq!(h.audit_head().await, before);
    h.assert_absent("human:eve").await;
    // The scheme is case-insensitive.
    let req = Request::get("/v1/whoami")
        .header(header::AUTHORIZATION, format!("bEaReR {}", h.token))
        .body(Body::empty())
        .unwrap();
    h.send(req).await.expect(200);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let h = Harness::new().await;
    h.get("/v1/nothing").await.assert_problem(404, "not-found");
    h.get("/").await.assert_problem(404, "not-found");
    let r = h
        .call(Method::DELETE, "/v1/identities", Some(&h.token), None)
        .await;
    r.assert_problem(405, "method-not-allowed");
    let allow = r.headers[header::ALLOW].to_str().unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    h.call(
        Method::PUT,
        "/v1/identities/human%3Aa",
        Some(&h.token),
        None,
    )
    .await
    .assert_problem(405, "method-not-allowed");
    h.call(Method::POST, "/healthz", None, None)
        .await
        .assert_problem(405, "method-not-allowed");
}
