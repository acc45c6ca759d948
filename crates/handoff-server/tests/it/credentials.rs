//! Credentials: the secret is shown once, authenticates at `/v1/whoami`,
//! and stops on revocation, suspension and expiry.

use crate::harness::Harness;
use serde_json::{Value, json};

async fn with_agent() -> Harness {
    let h = Harness::new().await;
    h.human("alice").await;
    h.owned("agent:bot", "alice").await;
    h
}

#[tokio::test]
async fn the_secret_is_answered_once_and_never_again() {
    let h = with_agent().await;
    let r = h
        .post(
            "/v1/identities/agent%3Abot/credentials",
            json!({"description": "ci", "expires_in": 86400}),
        )
        .await;
    let v = r.expect(201).clone();
    let secret = v["secret"].as_str().unwrap().to_owned();
    let id = v["credential"]["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("hfc_"), "{secret}");
    assert!(id.starts_with("cred_"), "{id}");
    assert_eq!(r.headers["location"], format!("/v1/credentials/{id}"));
    assert_eq!(
        v["credential"],
        json!({
            "id": id, "identity": "agent:bot", "description": "ci",
            "created_at": "2026-11-22T17:00:00.000000Z", "expires_at": "2026-11-23T17:00:00.000000Z",
            "last_used_at": null, "revoked_at": null, "state": "active"
        })
    );

    let one = h.get(&format!("/v1/credentials/{id}")).await;
    assert_eq!(one.expect(200), &v["credential"]);
    let list = h.get("/v1/identities/agent%3Abot/credentials").await;
    assert_eq!(list.expect(200)["items"], json!([v["credential"]]));
    for text in [&one.text, &list.text] {
        assert!(!text.contains(&secret));
        assert!(!text.contains("secret"));
    }
    let audit = h.get("/v1/audit?limit=1000").await;
    audit.expect(200);
    assert!(
        !audit.text.contains(&secret),
        "the audit log shows the secret"
    );
}

#[tokio::test]
async fn a_credential_authenticates_at_whoami_and_records_its_use() {
    let h = with_agent().await;
    let (id, secret) = h.issue("agent:bot", json!({})).await;
    let r = h.whoami(&secret).await;
    assert_eq!(
        r.expect(200),
        &json!({"kind": "credential", "id": id, "identity": "agent:bot"})
    );
    let c = h.get(&format!("/v1/credentials/{id}")).await;
    assert_eq!(c.expect(200)["last_used_at"], "2026-11-22T17:00:00.000000Z");
    assert_eq!(c.json["description"], "");
    assert_eq!(c.json["expires_at"], Value::Null);
    // A credential is not an admin token.
    h.call(
        axum::http::Method::GET,
        "/v1/identities",
        Some(&secret),
        None,
    )
    .await
    .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn a_revoked_credential_stops_and_cannot_be_revoked_twice() {
    let h = with_agent().await;
    let (id, secret) = h.issue("agent:bot", json!({"description": "ci"})).await;
    h.advance(10);
    let r = h.post_empty(&format!("/v1/credentials/{id}/revoke")).await;
    let v = r.expect(200);
    assert_eq!(v["state"], "revoked");
    assert_eq!(v["revoked_at"], "2026-11-22T17:00:10.000000Z");
    h.whoami(&secret)
        .await
        .assert_problem(401, "unauthenticated");

    let before = h.audit_head().await;
    h.post_empty(&format!("/v1/credentials/{id}/revoke"))
        .await
        .assert_problem(409, "conflict");
    assert_eq!(h.audit_head().await, before);
}

#[tokio::test]
async fn a_suspended_identity_cannot_use_its_credential_until_resumed() {
    let h = with_agent().await;
    let (_, secret) = h.issue("agent:bot", json!({})).await;
    h.set_status("agent:bot", "suspended").await;
    h.whoami(&secret)
        .await
        .assert_problem(401, "unauthenticated");
    let before = h.audit_head().await;
    h.post("/v1/identities/agent%3Abot/credentials", json!({}))
        .await
        .assert_problem(409, "conflict");
    assert_eq!(h.audit_head().await, before);
    h.set_status("agent:bot", "active").await;
    h.whoami(&secret).await.expect(200);
    h.set_status("agent:bot", "disabled").await;
    h.whoami(&secret)
        .await
        .assert_problem(401, "unauthenticated");
}

#[tokio::test]
async fn an_expired_credential_stops_and_shows_as_expired() {
    let h = with_agent().await;
    let (id, secret) = h.issue("agent:bot", json!({"expires_in": 60})).await;
    h.advance(59);
    h.whoami(&secret).await.expect(200);
    h.advance(1);
    h.whoami(&secret)
        .await
        .assert_problem(401, "unauthenticated");
    let c = h.get(&format!("/v1/credentials/{id}")).await;
    assert_eq!(c.expect(200)["state"], "expired");
}

#[tokio::test]
async fn only_active_agents_and_services_get_credentials_with_a_sane_lifetime() {
    let h = with_agent().await;
    let before = h.audit_head().await;
    let cases = [
        (
            "/v1/identities/human%3Aalice/credentials",
            json!({}),
            400,
            "invalid-request",
        ),
        (
            "/v1/identities/agent%3Abot/credentials",
            json!({"expires_in": 59}),
            400,
            "invalid-request",
        ),
        (
            "/v1/identities/agent%3Abot/credentials",
            json!({"expires_in": 400_000_000}),
            400,
            "invalid-request",
        ),
        (
            "/v1/identities/agent%3Abot/credentials",
            json!({"description": "a\u{0}b"}),
            400,
            "invalid-request",
        ),
        (
            "/v1/identities/agent%3Abot/credentials",
            json!({"description": "x".repeat(257)}),
            400,
            "invalid-request",
        ),
        (
            "/v1/identities/agent%3Anobody/credentials",
            json!({}),
            404,
            "not-found",
        ),
    ];
    for (path, body, status, code) in cases {
        h.post(path, body).await.assert_problem(status, code);
    }
    assert_eq!(h.audit_head().await, before);
    let list = h.get("/v1/identities/agent%3Abot/credentials").await;
    assert_eq!(list.expect(200)["items"], json!([]));
}

#[tokio::test]
async fn unknown_and_invalid_credential_ids() {
    let h = with_agent().await;
    h.get("/v1/credentials/cred_0123456789abcdef")
        .await
        .assert_problem(404, "not-found");
    h.get("/v1/credentials/cred_nothex")
        .await
        .assert_problem(400, "invalid-request");
    h.post_empty("/v1/credentials/cred_0123456789abcdef/revoke")
        .await
        .assert_problem(404, "not-found");
    h.post_empty("/v1/credentials/tok_0123456789abcdef/revoke")
        .await
        .assert_problem(400, "invalid-request");
    h.get("/v1/identities/agent%3Anobody/credentials")
        .await
        .assert_problem(404, "not-found");
}

/// Regression: `expires_in` was read as an `i64`, so `86400.0` (the same
/// JSON number, and an `integer` to JSON Schema) was refused with a 400.
#[tokio::test]
async fn expires_in_with_a_zero_fraction_is_accepted_not_rejected() {
    let h = with_agent().await;
    let r = h
        .post(
            "/v1/identities/agent%3Abot/credentials",
            json!({"expires_in": 86400.0}),
        )
        .await;
    let v = r.expect(201);
    assert_eq!(
        v["credential"]["expires_at"], "2026-11-23T17:00:00.000000Z",
        "{}",
        r.text
    );
    let token = h
        .post(
            "/v1/admin-tokens",
            json!({"name": "ci", "role": "auditor", "expires_in": 3600.0}),
        )
        .await;
    assert_eq!(
        token.expect(201)["token"]["expires_at"],
        "2026-11-22T18:00:00.000000Z"
    );
    let before = h.audit_head().await;
    for expires_in in [
        json!(86400.5),
        json!(59.0),
        json!(1e300),
        json!(18446744073709551615u64),
    ] {
        h.post(
            "/v1/identities/agent%3Abot/credentials",
            json!({"expires_in": expires_in}),
        )
        .await
        .assert_problem(400, "invalid-request");
    }
    assert_eq!(h.audit_head().await, before);
}
