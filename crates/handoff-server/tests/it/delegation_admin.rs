//! Bad input at the delegation admin API (`/v1/delegations`,
//! `/v1/lineages`, `/v1/dev/human-tokens`, `/v1/keys`): malformed and
//! unknown ids, wrong types, unknown fields and roles, each a clear
//! problem+json 4xx that writes nothing.

use crate::harness::Harness;
use axum::http::Method;
use serde_json::json;

const UNKNOWN: &str = "dlg_00000000000000000000000000000000";

#[tokio::test]
async fn delegation_reads_refuse_malformed_and_unknown_ids() {
    let (h, _idp) = Harness::delegating().await;
    let before = h.audit_head().await;
    h.get("/v1/delegations/not-an-id")
        .await
        .assert_problem(400, "invalid-request");
    h.get("/v1/delegations/DLG_00000000000000000000000000000000")
        .await
        .assert_problem(400, "invalid-request");
    h.get(&format!("/v1/delegations/{UNKNOWN}"))
        .await
        .assert_problem(404, "not-found");
    h.get("/v1/lineages/x")
        .await
        .assert_problem(400, "invalid-request");
    h.get(&format!("/v1/lineages/{UNKNOWN}"))
        .await
        .assert_problem(404, "not-found");
    for query in [
        "identity=not%20an%20id",
        "live=maybe",
        "limit=0",
        "limit=501",
        "cursor=%%%",
        "unknown=1",
    ] {
        h.get(&format!("/v1/delegations?{query}"))
            .await
            .assert_problem(400, "invalid-request");
    }
    assert_eq!(
        h.get("/v1/delegations?identity=agent:nobody")
            .await
            .expect(200)["items"],
        json!([])
    );
    let anonymous = h.call(Method::GET, "/v1/lineages/x", None, None).await;
    anonymous.assert_problem(401, "unauthenticated");
    assert_eq!(h.audit_head().await, before, "reads write nothing");
}

#[tokio::test]
async fn revoking_a_delegation_refuses_bad_bodies_and_unknown_ids() {
    let (h, _idp) = Harness::delegating().await;
    let path = format!("/v1/delegations/{UNKNOWN}/revoke");
    let before = h.audit_head().await;
    h.post(&path, json!({"dry_run": true}))
        .await
        .assert_problem(404, "not-found");
    h.post(&path, json!({"dry_run": false}))
        .await
        .assert_problem(404, "not-found");
    h.post(&path, json!({"dry_run": "yes"}))
        .await
        .assert_problem(400, "invalid-request");
    h.post(&path, json!({"dry_run": true, "cascade": false}))
        .await
        .assert_problem(400, "invalid-request");
    h.post_empty(&path)
        .await
        .assert_problem(415, "unsupported-media-type");
    h.post("/v1/delegations/x/revoke", json!({}))
        .await
        .assert_problem(400, "invalid-request");
    assert_eq!(
        h.audit_head().await,
        before,
        "nothing was revoked or recorded"
    );
}

#[tokio::test]
async fn minting_a_human_token_refuses_bad_input() {
    let (h, _idp) = Harness::delegating().await;
    h.human("alice@example.com").await;
    h.owned("agent:bot", "alice@example.com").await;
    let mint = |body: serde_json::Value| h.post("/v1/dev/human-tokens", body);
    let before = h.audit_head().await;
    mint(json!({"human": "alice"}))
        .await
        .assert_problem(400, "invalid-request");
    mint(json!({"human": "human:alice@example.com", "scope": "a\"b"}))
        .await
        .assert_problem(400, "invalid-request");
    mint(json!({"human": "human:alice@example.com", "lifetime_seconds": 0}))
        .await
        .assert_problem(400, "invalid-request");
    mint(json!({"human": "human:alice@example.com", "lifetime_seconds": 999_999_999_999i64}))
        .await
        .assert_problem(400, "invalid-request");
    mint(json!({"human": "human:alice@example.com", "lifetime_seconds": "900"}))
        .await
        .assert_problem(400, "invalid-request");
    mint(json!({"human": "human:alice@example.com", "admin": true}))
        .await
        .assert_problem(400, "invalid-request");
    mint(json!({"human": "human:nobody@example.com"}))
        .await
        .assert_problem(404, "not-found");
    mint(json!({"human": "agent:bot"}))
        .await
        .assert_problem(409, "conflict");
    let (_, auditor) = h.admin_token("auditor").await;
    let refused = h
        .call(
            Method::POST,
            "/v1/dev/human-tokens",
            Some(&auditor),
            Some(json!({"human": "human:alice@example.com"})),
        )
        .await;
    refused.assert_problem(403, "forbidden");
    assert_eq!(
        h.audit_head().await,
        before + 1,
        "only the auditor token's creation"
    );
}

#[tokio::test]
async fn rotating_keys_needs_a_writer() {
    let (h, _idp) = Harness::delegating().await;
    let (_, auditor) = h.admin_token("auditor").await;
    let before = h.audit_head().await;
    h.call(Method::POST, "/v1/keys/rotate", Some(&auditor), None)
        .await
        .assert_problem(403, "forbidden");
    h.call(Method::POST, "/v1/keys/rotate", None, None)
        .await
        .assert_problem(401, "unauthenticated");
    assert_eq!(
        h.call(Method::GET, "/v1/keys", Some(&auditor), None)
            .await
            .expect(200)["keys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(h.audit_head().await, before);
}
