//! Trusted issuers' keys replaced at run time (a refreshed JWKS document):
//! a token signed with the identity provider's new key is refused until the
//! new key set is loaded, and accepted after.

use crate::harness::{Harness, IDP_ISSUER, Idp};
use serde_json::json;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

#[tokio::test]
async fn replaced_issuer_keys_take_effect_at_once() {
    let (h, _old) = Harness::delegating().await;
    h.human("alice@example.com").await;
    h.owned("agent:bot", "alice@example.com").await;
    let (_, secret) = h.issue("agent:bot", json!({})).await;
    h.allow_delegation().await;

    // The provider rotated to a new key the server has not loaded yet.
    let rotated = Idp::new();
    let token = rotated.sign(
        &Idp::header("idp-2"),
        &Idp::claims("alice@example.com", "read", h.now()),
    );
    let exchange = |token: String| {
        let secret = secret.clone();
        let h = &h;
        async move {
            h.form(
                "/oauth2/token",
                Some(("agent:bot", &secret)),
                None,
                &[
                    ("grant_type", EXCHANGE),
                    ("subject_token", &token),
                    ("subject_token_type", JWT),
                ],
            )
            .await
        }
    };
    let refused = exchange(token.clone()).await;
    assert_eq!(refused.json["error"], "invalid_request", "{}", refused.text);
    assert!(refused.text.contains("idp-2"), "{}", refused.text);

    let jwks = json!({ "keys": [rotated.jwk("idp-2")] }).to_string();
    assert_eq!(h.engine.replace_trusted_keys(IDP_ISSUER, &jwks).unwrap(), 1);
    let accepted = exchange(token).await;
    assert_eq!(accepted.status.as_u16(), 200, "{}", accepted.text);

    // A document that does not parse changes nothing; an unknown issuer is an error.
    assert!(h.engine.replace_trusted_keys(IDP_ISSUER, "{}").is_err());
    assert!(
        h.engine
            .replace_trusted_keys("https://nobody.example", &jwks)
            .is_err()
    );
    let again = rotated.sign(
        &Idp::header("idp-2"),
        &Idp::claims("alice@example.com", "read", h.now() + 1),
    );
    assert_eq!(exchange(again).await.status.as_u16(), 200);
}

/// RFC 8693 §2.1/§2.2.1: Handoff issues JWT access tokens; it echoes a
/// request for the `jwt` type and refuses to issue ID tokens.
#[tokio::test]
async fn requested_token_types_are_issued_or_refused() {
    let (h, _idp) = Harness::delegating().await;
    h.human("alice@example.com").await;
    h.owned("agent:bot", "alice@example.com").await;
    let (_, secret) = h.issue("agent:bot", json!({})).await;
    h.allow_delegation().await;
    let minted = h
        .post(
            "/v1/dev/human-tokens",
            json!({"human": "human:alice@example.com", "scope": "read"}),
        )
        .await;
    let human = minted.expect(201)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ask = |requested: &'static str| {
        let (h, secret, human) = (&h, secret.clone(), human.clone());
        async move {
            h.form(
                "/oauth2/token",
                Some(("agent:bot", &secret)),
                None,
                &[
                    ("grant_type", EXCHANGE),
                    ("subject_token", &human),
                    ("subject_token_type", JWT),
                    ("requested_token_type", requested),
                ],
            )
            .await
        }
    };
    let jwt = ask(JWT).await;
    assert_eq!(jwt.expect(200)["issued_token_type"], JWT);
    let id = ask("urn:ietf:params:oauth:token-type:id_token").await;
    assert_eq!(id.json["error"], "invalid_request", "{}", id.text);
    assert!(id.text.contains("requested_token_type"), "{}", id.text);
}

/// A token, introspection or revocation request without any client
/// authentication is a 401 `invalid_client` and leaves an audit record.
#[tokio::test]
async fn requests_without_client_authentication_are_refused_and_audited() {
    let (h, _idp) = Harness::delegating().await;
    for path in ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"] {
        let before = h.audit_head().await;
        let reply = h
            .form(
                path,
                None,
                None,
                &[("grant_type", "client_credentials"), ("token", "x")],
            )
            .await;
        assert_eq!(reply.status.as_u16(), 401, "{path}: {}", reply.text);
        assert_eq!(reply.json["error"], "invalid_client", "{path}");
        assert_eq!(h.audit_head().await, before + 1, "{path}");
        let last = h.get("/v1/audit?tail=1").await;
        let record = &last.expect(200)["items"][0];
        assert_eq!(record["kind"], "client.authenticate", "{path}");
        assert_eq!(
            record["details"]["reason"], "no client authentication",
            "{path}"
        );
    }
}
