//! `private_key_jwt` client authentication (RFC 7523 §2.2): keys registered
//! on an identity, assertions checked against them, replays refused.

use crate::harness::{Harness, ISSUER, Idp, enc};
use serde_json::{Value, json};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

async fn setup() -> (Harness, Idp) {
    let (h, idp) = Harness::delegating().await;
    h.human("alice@example.com").await;
    h.owned("service:search", "alice@example.com").await;
    h.allow_delegation().await;
    (h, idp)
}

fn assertion(idp: &Idp, kid: &str, client: &str, aud: &str, jti: &str, now: i64) -> String {
    let claims = json!({
        "iss": client, "sub": client, "aud": aud,
        "iat": now, "exp": now + 60, "jti": jti,
    });
    idp.sign(&Idp::header(kid), &claims)
}

async fn client_credentials(h: &Harness, assertion: &str) -> crate::harness::Reply {
    h.form(
        "/oauth2/token",
        None,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read"),
            ("client_id", "service:search"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ],
    )
    .await
}

#[tokio::test]
async fn a_registered_key_authenticates_and_a_replayed_assertion_is_refused() {
    let (h, idp) = setup().await;
    let path = format!("/v1/identities/{}/keys", enc("service:search"));
    let added = h.post(&path, json!({ "jwk": idp.jwk("search-1") })).await;
    assert_eq!(added.expect(201)["kid"], "search-1");
    let token_endpoint = format!("{ISSUER}/oauth2/token");
    let signed = assertion(
        &idp,
        "search-1",
        "service:search",
        &token_endpoint,
        "a-1",
        h.now(),
    );

    let first = client_credentials(&h, &signed).await;
    let body = first.expect(200);
    assert_eq!(body["token_type"], "Bearer");

    // RFC 7523 §3 item 7: the same jti must not be accepted twice.
    let replay = client_credentials(&h, &signed).await;
    assert_eq!(replay.status.as_u16(), 401, "{}", replay.text);
    assert_eq!(replay.json["error"], "invalid_client");
    let audit = h.get("/v1/audit?tail=1").await;
    let last = &audit.expect(200)["items"][0];
    assert_eq!(last["kind"], "client.authenticate");
    assert_eq!(last["outcome"], "failure");
    assert!(
        last["details"]["reason"]
            .as_str()
            .unwrap()
            .contains("replay")
    );
}

#[tokio::test]
async fn assertions_for_another_audience_or_a_revoked_key_are_refused() {
    let (h, idp) = setup().await;
    let path = format!("/v1/identities/{}/keys", enc("service:search"));
    h.post(&path, json!({ "jwk": idp.jwk("search-1") }))
        .await
        .expect(201);
    let wrong_aud = assertion(
        &idp,
        "search-1",
        "service:search",
        "https://elsewhere",
        "a-2",
        h.now(),
    );
    let refused = client_credentials(&h, &wrong_aud).await;
    assert_eq!(refused.json["error"], "invalid_client", "{}", refused.text);

    let other = Idp::new();
    let forged = assertion(&other, "search-1", "service:search", ISSUER, "a-3", h.now());
    assert_eq!(
        client_credentials(&h, &forged).await.json["error"],
        "invalid_client"
    );

    let revoke = format!("{path}/search-1/revoke");
    assert_eq!(h.post_empty(&revoke).await.status.as_u16(), 204);
    h.post_empty(&revoke).await.assert_problem(409, "conflict");
    let after = assertion(&idp, "search-1", "service:search", ISSUER, "a-4", h.now());
    assert_eq!(
        client_credentials(&h, &after).await.json["error"],
        "invalid_client"
    );
    let listed = h.get(&path).await;
    assert!(listed.expect(200)["keys"][0]["revoked_at"].is_string());
}

#[tokio::test]
async fn private_keys_and_keys_for_humans_are_refused() {
    let (h, idp) = setup().await;
    let path = format!("/v1/identities/{}/keys", enc("service:search"));
    let mut private: Value = idp.jwk("k");
    private["d"] = json!("AAAA");
    h.post(&path, json!({ "jwk": private }))
        .await
        .assert_problem(400, "invalid-request");
    h.post(&path, json!({ "jwk": {"kty": "oct", "k": "AAAA"} }))
        .await
        .assert_problem(400, "invalid-request");
    let human = format!("/v1/identities/{}/keys", enc("human:alice@example.com"));
    h.post(&human, json!({ "jwk": idp.jwk("k") }))
        .await
        .assert_problem(400, "invalid-request");
    let unknown = format!("/v1/identities/{}/keys", enc("service:nobody"));
    h.post(&unknown, json!({ "jwk": idp.jwk("k") }))
        .await
        .assert_problem(404, "not-found");
    h.post(&path, json!({ "jwk": idp.jwk("k"), "extra": 1 }))
        .await
        .assert_problem(400, "invalid-request");
}
