//! Admin tokens: roles, the last-admin rule, revocation, whoami.

use crate::harness::Harness;
use axum::http::Method;
use serde_json::json;

#[tokio::test]
async fn an_auditor_reads_everything_and_writes_nothing() {
    let h = Harness::new().await;
    h.human("alice").await;
    h.owned("agent:bot", "alice").await;
    let (cred, _) = h.issue("agent:bot", json!({})).await;
    let (admin_id, _) = h.admin_token("admin").await;
    let (_, auditor) = h.admin_token("auditor").await;
    let a = Some(auditor.as_str());

    for path in [
        "/v1/identities".to_owned(),
        "/v1/identities/agent%3Abot".to_owned(),
        "/v1/identities/agent%3Abot/credentials".to_owned(),
        format!("/v1/credentials/{cred}"),
        "/v1/admin-tokens".to_owned(),
        format!("/v1/admin-tokens/{admin_id}"),
        "/v1/audit".to_owned(),
        "/v1/audit/verify".to_owned(),
    ] {
        h.call(Method::GET, &path, a, None).await.expect(200);
    }
    let r = h.whoami(&auditor).await;
    assert_eq!(r.expect(200)["role"], "auditor");
    assert_eq!(r.json["kind"], "admin_token");

    let before = h.audit_head().await;
    let writes = [
        (
            Method::POST,
            "/v1/identities".to_owned(),
            Some(json!({"id": "human:eve"})),
        ),
        (
            Method::PATCH,
            "/v1/identities/agent%3Abot".to_owned(),
            Some(json!({"environment": "prod"})),
        ),
        (
            Method::POST,
            "/v1/identities/agent%3Abot/status".to_owned(),
            Some(json!({"status": "suspended"})),
        ),
        (
            Method::POST,
            "/v1/identities/agent%3Abot/credentials".to_owned(),
            Some(json!({})),
        ),
        (Method::POST, format!("/v1/credentials/{cred}/revoke"), None),
        (
            Method::POST,
            "/v1/admin-tokens".to_owned(),
            Some(json!({"name": "x", "role": "admin"})),
        ),
        (
            Method::POST,
            format!("/v1/admin-tokens/{admin_id}/revoke"),
            None,
        ),
        // Refused before the body or the id is even looked at.
        (
            Method::POST,
            "/v1/identities".to_owned(),
            Some(json!({"bogus": true})),
        ),
        (
            Method::POST,
            "/v1/identities/robot%3Ax/status".to_owned(),
            None,
        ),
    ];
    for (method, path, body) in writes {
        h.call(method.clone(), &path, a, body)
            .await
            .assert_problem(403, "forbidden");
    }
    assert_eq!(h.audit_head().await, before);
    h.assert_absent("human:eve").await;
    let bot = h.get("/v1/identities/agent%3Abot").await;
    assert_eq!(bot.expect(200)["status"], "active");
}

#[tokio::test]
async fn the_last_admin_token_cannot_be_revoked() {
    let h = Harness::new().await;
    let me = h.whoami(&h.token).await;
    let bootstrap = me.expect(200)["id"].as_str().unwrap().to_owned();
    assert_eq!(me.json["role"], "admin");
    let (_, auditor) = h.admin_token("auditor").await;

    let before = h.audit_head().await;
    h.post_empty(&format!("/v1/admin-tokens/{bootstrap}/revoke"))
        .await
        .assert_problem(409, "conflict");
    assert_eq!(h.audit_head().await, before);
    h.whoami(&h.token).await.expect(200);

    let (second, second_secret) = h.admin_token("admin").await;
    let r = h
        .post_empty(&format!("/v1/admin-tokens/{bootstrap}/revoke"))
        .await;
    assert_eq!(r.expect(200)["revoked_at"], "2026-11-22T17:00:00.000000Z");
    h.whoami(&h.token)
        .await
        .assert_problem(401, "unauthenticated");
    h.get("/v1/identities")
        .await
        .assert_problem(401, "unauthenticated");

    let before = h.audit_head().await;
    let again = format!("/v1/admin-tokens/{second}/revoke");
    h.call(Method::POST, &again, Some(&second_secret), None)
        .await
        .assert_problem(409, "conflict");
    assert_eq!(h.audit_head().await, before);
    h.call(Method::GET, "/v1/identities", Some(&auditor), None)
        .await
        .expect(200);
}

#[tokio::test]
async fn admin_tokens_are_listed_without_secrets() {
    let h = Harness::new().await;
    h.advance(1);
    let r = h
        .post(
            "/v1/admin-tokens",
            json!({"name": "ci", "role": "auditor", "expires_in": 3600}),
        )
        .await;
    let v = r.expect(201).clone();
    let id = v["token"]["id"].as_str().unwrap();
    let secret = v["secret"].as_str().unwrap();
    assert!(secret.starts_with("hfa_"));
    assert_eq!(r.headers["location"], format!("/v1/admin-tokens/{id}"));
    assert_eq!(
        v["token"],
        json!({"id": id, "name": "ci", "role": "auditor", "created_at": "2026-11-22T17:00:01.000000Z",
               "expires_at": "2026-11-22T18:00:01.000000Z", "revoked_at": null})
    );
    let list = h.get("/v1/admin-tokens").await;
    let items = list.expect(200)["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["name"], "bootstrap");
    assert_eq!(items[1], v["token"]);
    assert!(!list.text.contains(secret));
    let one = h.get(&format!("/v1/admin-tokens/{id}")).await;
    assert_eq!(one.expect(200), &v["token"]);
    h.get("/v1/admin-tokens/tok_0123456789abcdef")
        .await
        .assert_problem(404, "not-found");
    h.get("/v1/admin-tokens/tok_x")
        .await
        .assert_problem(400, "invalid-request");
}

#[tokio::test]
async fn an_expired_admin_token_stops() {
    let h = Harness::new().await;
    let r = h
        .post(
            "/v1/admin-tokens",
            json!({"name": "short", "role": "admin", "expires_in": 60}),
        )
        .await;
    let secret = r.expect(201)["secret"].as_str().unwrap().to_owned();
    h.whoami(&secret).await.expect(200);
    h.advance(60);
    h.whoami(&secret)
        .await
        .assert_problem(401, "unauthenticated");
    h.call(Method::GET, "/v1/identities", Some(&secret), None)
        .await
        .assert_problem(401, "unauthenticated");
}

#[tokio::test]
async fn invalid_admin_token_requests_are_400() {
    let h = Harness::new().await;
    let before = h.audit_head().await;
    for body in [
        json!({"name": "x", "role": "root"}),
        json!({"name": "", "role": "admin"}),
        json!({"name": "x".repeat(65), "role": "admin"}),
        json!({"name": "x", "role": "admin", "expires_in": 1}),
        json!({"name": "x"}),
    ] {
        h.post("/v1/admin-tokens", body)
            .await
            .assert_problem(400, "invalid-request");
    }
    assert_eq!(h.audit_head().await, before);
}
