//! Attacks on the token endpoint: widening a handoff (scope, audience,
//! lifetime, depth, fan-out), cycles, dead chains, forged and misused
//! subject and actor tokens, policy denials, and malformed requests and
//! client authentication. Every refusal answers the RFC 8693 §2.2.2 error
//! code and writes nothing but its own audit record.

use crate::delegation::{ACCESS_TOKEN, ALICE, EXCHANGE, JWT, World, chain, compact, part, payload};
use crate::harness::{IDP_AUDIENCE, IDP_KID, ISSUER, Idp};
use axum::body::Body;
use axum::http::{Method, Request, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use handoff_audit::Outcome;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// One form parameter, or HTTP Basic credentials.
type Pair<'a> = (&'a str, &'a str);

/// An exchange that must be refused with `code`; returns the description.
async fn refused(
    w: &World,
    client: &str,
    subject: &str,
    extra: &[(&str, &str)],
    code: &str,
) -> String {
    let before = w.before().await;
    let r = w.exchange(client, subject, extra).await;
    w.assert_refused(&before, &r, code).await;
    r.json["error_description"].as_str().unwrap().to_owned()
}

/// Asserts `description` mentions `needle`.
#[track_caller]
fn mentions(description: &str, needle: &str) {
    assert!(
        description.contains(needle),
        "{description:?} lacks {needle:?}"
    );
}

/// Valid identity provider claims for alice, to be spoiled by a test.
fn alice_claims(w: &World) -> Value {
    Idp::claims("alice@example.com", "read write", w.h.now())
}

/// `claims` signed by the identity provider's key under its key id.
fn idp_signed(w: &World, claims: &Value) -> String {
    w.idp.sign(&Idp::header(IDP_KID), claims)
}

/// `claims` signed with HMAC-SHA256 keyed with `secret`, under `kid`/`typ`.
fn hs256(secret: &[u8], kid: &str, typ: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

// ---- widening a handoff --------------------------------------------------------

#[tokio::test]
async fn exchange_widening_scope_is_rejected() {
    let w = World::new().await;
    let t1 = w
        .handoff("agent:bot", &w.alice(), &[("scope", "read")])
        .await;
    for scope in ["read write", "write", "*", "Doc:*", "read*", "admin"] {
        let d = refused(
            &w,
            "agent:helper",
            &t1,
            &[("scope", scope)],
            "invalid_scope",
        )
        .await;
        mentions(&d, "not within the parent's scope");
    }
    // Beyond what the identity provider granted the human.
    let d = refused(
        &w,
        "agent:bot",
        &w.alice(),
        &[("scope", "read admin")],
        "invalid_scope",
    )
    .await;
    mentions(&d, "\"admin\"");
    // Not a scope at all.
    refused(
        &w,
        "agent:helper",
        &t1,
        &[("scope", "re\"ad")],
        "invalid_scope",
    )
    .await;
    // Narrowing or keeping is fine.
    let t2 = w.handoff("agent:helper", &t1, &[("scope", "read")]).await;
    assert_eq!(payload(&t2)["scope"], "read");
    let t3 = w.handoff("service:search", &t2, &[]).await;
    assert_eq!(payload(&t3)["scope"], "read");
}

#[tokio::test]
async fn exchange_widening_audience_is_rejected() {
    let w = World::new().await;
    let t1 = w
        .handoff(
            "agent:bot",
            &w.alice(),
            &[
                ("audience", "https://api.test"),
                ("resource", "https://files.test"),
            ],
        )
        .await;
    assert_eq!(
        payload(&t1)["aud"],
        json!(["https://api.test", "https://files.test"])
    );
    for extra in [
        [("audience", "https://other.test")],
        [("resource", "https://other.test")],
    ] {
        let d = refused(&w, "agent:helper", &t1, &extra, "invalid_target").await;
        mentions(&d, "https://other.test");
    }
    refused(
        &w,
        "agent:helper",
        &t1,
        &[
            ("audience", "https://api.test"),
            ("audience", "https://other.test"),
        ],
        "invalid_target",
    )
    .await;
    // Narrowed to one server, it cannot come back to the other.
    let t2 = w
        .handoff("agent:helper", &t1, &[("audience", "https://api.test")])
        .await;
    assert_eq!(payload(&t2)["aud"], "https://api.test");
    refused(
        &w,
        "service:search",
        &t2,
        &[("resource", "https://files.test")],
        "invalid_target",
    )
    .await;
    // Not an audience at all.
    refused(
        &w,
        "service:search",
        &t2,
        &[("audience", "has space")],
        "invalid_target",
    )
    .await;
    // Asking for nothing keeps the parent's.
    let t3 = w.handoff("service:search", &t2, &[]).await;
    assert_eq!(payload(&t3)["aud"], "https://api.test");
}

#[tokio::test]
async fn exchange_extending_lifetime_is_rejected() {
    let w = World::new().await;
    let r = w
        .exchange("agent:bot", &w.alice(), &[("requested_lifetime", "300")])
        .await;
    assert_eq!(r.expect(200)["expires_in"], 300);
    let t1 = r.json["access_token"].as_str().unwrap().to_owned();
    let d = refused(
        &w,
        "agent:helper",
        &t1,
        &[("requested_lifetime", "301")],
        "invalid_request",
    )
    .await;
    mentions(&d, "remaining lifetime");
    let d = refused(
        &w,
        "agent:helper",
        &t1,
        &[("requested_lifetime", "3601")],
        "invalid_request",
    )
    .await;
    mentions(&d, "maximum lifetime");
    for bad in ["0", "-5"] {
        refused(
            &w,
            "agent:helper",
            &t1,
            &[("requested_lifetime", bad)],
            "invalid_request",
        )
        .await;
    }
    w.h.advance(100);
    refused(
        &w,
        "agent:helper",
        &t1,
        &[("requested_lifetime", "201")],
        "invalid_request",
    )
    .await;
    let r = w
        .exchange("agent:helper", &t1, &[("requested_lifetime", "200")])
        .await;
    assert_eq!(r.expect(200)["expires_in"], 200);
    // Without a request, a child gets what the parent has left.
    let r = w.exchange("service:search", &t1, &[]).await;
    assert_eq!(r.expect(200)["expires_in"], 200);
    assert_eq!(
        payload(r.json["access_token"].as_str().unwrap())["exp"],
        payload(&t1)["exp"]
    );
    // A root is bounded by the maximum lifetime too.
    let before = w.before().await;
    let r = w
        .token(
            "agent:bot",
            &[
                ("grant_type", "client_credentials"),
                ("requested_lifetime", "3601"),
            ],
        )
        .await;
    w.assert_refused(&before, &r, "invalid_request").await;
}

#[tokio::test]
async fn exchange_past_max_depth_is_rejected() {
    let w = World::with_pack_settings("[delegation]\nmax_depth = 2\n").await;
    let tokens = chain(&w, &["agent:bot", "agent:helper"]).await;
    assert_eq!(payload(&tokens[1])["depth"], 2);
    let d = refused(&w, "service:search", &tokens[1], &[], "invalid_request").await;
    mentions(&d, "depth 3 exceeds");
    // The same from a service's own root.
    let root = w.root("service:search", "read").await;
    let one = w.handoff("service:db", &root, &[]).await;
    let two = w.handoff("agent:bot", &one, &[]).await;
    refused(&w, "agent:helper", &two, &[], "invalid_request").await;
}

#[tokio::test]
async fn exchange_cycle_is_rejected() {
    let w = World::new().await;
    let tokens = chain(&w, &["agent:bot", "agent:helper"]).await;
    let d = refused(&w, "agent:bot", &tokens[1], &[], "invalid_request").await;
    mentions(&d, "cycle");
    // To oneself, and back from further down.
    refused(&w, "agent:helper", &tokens[1], &[], "invalid_request").await;
    let t3 = w.handoff("service:search", &tokens[1], &[]).await;
    refused(&w, "agent:bot", &t3, &[], "invalid_request").await;
    // A service's root names the service as subject: no handing it back.
    let root = w.root("service:db", "read").await;
    let next = w.handoff("service:search", &root, &[]).await;
    refused(&w, "service:db", &next, &[], "invalid_request").await;
}

// ---- dead chains ---------------------------------------------------------------

#[tokio::test]
async fn exchange_of_revoked_chain_is_rejected() {
    let w = World::new().await;
    let tokens = chain(&w, &["agent:bot", "agent:helper"]).await;
    let bot = payload(&tokens[0])["jti"].as_str().unwrap().to_owned();
    w.h.post(
        &format!("/v1/delegations/{bot}/revoke"),
        json!({"dry_run": false}),
    )
    .await
    .expect(200);
    let d = refused(&w, "service:search", &tokens[0], &[], "invalid_request").await;
    mentions(&d, "revoked");
    let d = refused(&w, "service:search", &tokens[1], &[], "invalid_request").await;
    mentions(&d, &bot);
}

#[tokio::test]
async fn exchange_of_expired_chain_is_rejected() {
    let w = World::new().await;
    let t1 = w
        .handoff("agent:bot", &w.alice(), &[("requested_lifetime", "120")])
        .await;
    let t2 = w.handoff("agent:helper", &t1, &[]).await;
    w.h.advance(121);
    for (client, token) in [("service:search", &t2), ("agent:helper", &t1)] {
        let d = refused(&w, client, token, &[], "invalid_request").await;
        mentions(&d, "expired");
    }
    assert!(!w.active(&t2).await);
}

#[tokio::test]
async fn suspended_identity_mid_chain_stops_exchange_introspection_and_decisions() {
    let w = World::new().await;
    let tokens = chain(&w, &["agent:bot", "agent:helper"]).await;
    assert_eq!(
        w.decide("agent:helper", &tokens[1], "read").await["decision"],
        true
    );
    w.h.set_status("agent:bot", "suspended").await;
    refused(&w, "service:search", &tokens[1], &[], "invalid_request").await;
    assert!(!w.active(&tokens[1]).await);
    assert!(!w.active(&tokens[0]).await);
    let v = w.decide("agent:helper", &tokens[1], "read").await;
    assert_eq!(v["decision"], false, "{v}");
    // The suspended client cannot authenticate either.
    let r = w.exchange("agent:bot", &w.alice(), &[]).await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.text);
    assert_eq!(r.json["error"], "invalid_client");
    // Suspension revoked the chain: reactivating does not bring it back.
    w.h.set_status("agent:bot", "active").await;
    assert!(!w.active(&tokens[1]).await);
    // A suspended human's login starts nothing.
    w.h.set_status(ALICE, "suspended").await;
    let d = refused(&w, "agent:bot", &w.alice(), &[], "invalid_request").await;
    mentions(&d, "suspended");
}

// ---- forged and misused subject tokens -----------------------------------------

#[tokio::test]
async fn untrusted_issuer_subject_token_is_rejected() {
    let w = World::new().await;
    for iss in ["https://evil.test", "https://idp.test/", "https://IDP.test"] {
        let mut claims = alice_claims(&w);
        claims["iss"] = iss.into();
        let d = refused(
            &w,
            "agent:bot",
            &idp_signed(&w, &claims),
            &[],
            "invalid_request",
        )
        .await;
        mentions(&d, "not trusted");
    }
    // The development issuer is Handoff's own key, not the identity provider's.
    let mut claims = alice_claims(&w);
    claims["iss"] = format!("{ISSUER}/dev").into();
    claims["aud"] = ISSUER.into();
    refused(
        &w,
        "agent:bot",
        &idp_signed(&w, &claims),
        &[],
        "invalid_request",
    )
    .await;
    // No issuer at all.
    let mut claims = alice_claims(&w);
    claims.as_object_mut().unwrap().remove("iss");
    refused(
        &w,
        "agent:bot",
        &idp_signed(&w, &claims),
        &[],
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn forged_signature_is_rejected() {
    let w = World::new().await;
    // Another key under the trusted key's id.
    let mallory = Idp::new();
    let forged = mallory.token("alice@example.com", "read write", w.h.now());
    let d = refused(&w, "agent:bot", &forged, &[], "invalid_request").await;
    mentions(&d, "signature");
    // A real token with its payload changed.
    let real = w.alice();
    let mut claims = payload(&real);
    claims["scope"] = "read write admin".into();
    let sig = URL_SAFE_NO_PAD
        .decode(real.split('.').nth(2).unwrap())
        .unwrap();
    let tampered = compact(&part(&real, 0), &claims, &sig);
    refused(&w, "agent:bot", &tampered, &[], "invalid_request").await;
    // A truncated signature.
    let truncated = compact(&part(&real, 0), &payload(&real), &sig[..32]);
    refused(&w, "agent:bot", &truncated, &[], "invalid_request").await;
    // One of Handoff's own tokens, widened by hand.
    let own = w
        .handoff("agent:bot", &w.alice(), &[("scope", "read")])
        .await;
    let mut claims = payload(&own);
    claims["scope"] = "read write".into();
    claims["act"] = json!({"sub": "agent:helper"});
    let sig = URL_SAFE_NO_PAD
        .decode(own.split('.').nth(2).unwrap())
        .unwrap();
    let tampered = compact(&part(&own, 0), &claims, &sig);
    refused(&w, "service:search", &tampered, &[], "invalid_request").await;
    assert!(!w.active(&tampered).await);
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let w = World::new().await;
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": IDP_KID});
        let token = compact(&header, &alice_claims(&w), b"");
        let d = refused(&w, "agent:bot", &token, &[], "invalid_request").await;
        mentions(&d, "none");
    }
    // Handoff's own issuer with no signature.
    let own = chain(&w, &["agent:bot"]).await.remove(0);
    let mut header = part(&own, 0);
    header["alg"] = "none".into();
    let token = compact(&header, &payload(&own), b"");
    refused(&w, "agent:helper", &token, &[], "invalid_request").await;
    assert!(!w.active(&token).await);
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_rejected() {
    let w = World::new().await;
    let claims = alice_claims(&w);
    let jwk = w.idp.jwk(IDP_KID);
    let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let secrets: [Vec<u8>; 4] = [
        w.idp.public_key().to_vec(),
        w.idp.jwks().into_bytes(),
        jwk.to_string().into_bytes(),
        x,
    ];
    for secret in &secrets {
        let token = hs256(secret, IDP_KID, "JWT", &claims);
        let d = refused(&w, "agent:bot", &token, &[], "invalid_request").await;
        mentions(&d, "HS256");
    }
    // The same against Handoff's own published key.
    let own = chain(&w, &["agent:bot"]).await.remove(0);
    let kid = part(&own, 0)["kid"].as_str().unwrap().to_owned();
    let jwks =
        w.h.call(Method::GET, "/.well-known/jwks.json", None, None)
            .await;
    let published = jwks.expect(200)["keys"][0].clone();
    let x = URL_SAFE_NO_PAD
        .decode(published["x"].as_str().unwrap())
        .unwrap();
    for secret in [published.to_string().into_bytes(), x] {
        let token = hs256(&secret, &kid, "at+jwt", &payload(&own));
        refused(&w, "agent:helper", &token, &[], "invalid_request").await;
        assert!(!w.active(&token).await);
    }
}

#[tokio::test]
async fn unknown_kid_is_rejected() {
    let w = World::new().await;
    let token = w.idp.sign(&Idp::header("idp-2"), &alice_claims(&w));
    let d = refused(&w, "agent:bot", &token, &[], "invalid_request").await;
    mentions(&d, "unknown key id");
    // Handoff's own issuer under a key id it never had.
    let own = chain(&w, &["agent:bot"]).await.remove(0);
    let mut header = part(&own, 0);
    header["kid"] = "not-a-key".into();
    let sig = URL_SAFE_NO_PAD
        .decode(own.split('.').nth(2).unwrap())
        .unwrap();
    let token = compact(&header, &payload(&own), &sig);
    refused(&w, "agent:helper", &token, &[], "invalid_request").await;
}

#[tokio::test]
async fn expired_and_not_yet_valid_subject_tokens_are_rejected() {
    let w = World::new().await;
    let now = w.h.now();
    let cases: [(&str, Value, &str); 5] = [
        ("exp", json!(now - 31), "expired"),
        ("exp", json!(now - 3600), "expired"),
        // Within the issuer's 30 s leeway, but the lineage would be born dead.
        ("exp", json!(now - 10), "expired"),
        ("nbf", json!(now + 120), "not valid yet"),
        ("exp", json!("tomorrow"), "invalid"),
    ];
    for (claim, value, needle) in cases {
        let mut claims = alice_claims(&w);
        claims[claim] = value;
        let d = refused(
            &w,
            "agent:bot",
            &idp_signed(&w, &claims),
            &[],
            "invalid_request",
        )
        .await;
        mentions(&d, needle);
    }
    let mut claims = alice_claims(&w);
    claims.as_object_mut().unwrap().remove("exp");
    let d = refused(
        &w,
        "agent:bot",
        &idp_signed(&w, &claims),
        &[],
        "invalid_request",
    )
    .await;
    mentions(&d, "missing claim \"exp\"");
    // A not-before within the leeway is accepted.
    let mut claims = alice_claims(&w);
    claims["nbf"] = json!(now + 20);
    w.handoff("agent:bot", &idp_signed(&w, &claims), &[]).await;
    // A valid token that has since expired.
    let token = w.alice();
    w.h.advance(600 + 31);
    refused(&w, "agent:bot", &token, &[], "invalid_request").await;
}

#[tokio::test]
async fn wrong_audience_subject_token_is_rejected() {
    let w = World::new().await;
    for aud in [
        json!("other"),
        json!(["x", "y"]),
        json!(ISSUER),
        json!(null),
    ] {
        let mut claims = alice_claims(&w);
        claims["aud"] = aud;
        refused(
            &w,
            "agent:bot",
            &idp_signed(&w, &claims),
            &[],
            "invalid_request",
        )
        .await;
    }
    let mut claims = alice_claims(&w);
    claims.as_object_mut().unwrap().remove("aud");
    refused(
        &w,
        "agent:bot",
        &idp_signed(&w, &claims),
        &[],
        "invalid_request",
    )
    .await;
    // One of several audiences is enough.
    let mut claims = alice_claims(&w);
    claims["aud"] = json!(["other", IDP_AUDIENCE]);
    let t = w.handoff("agent:bot", &idp_signed(&w, &claims), &[]).await;
    assert_eq!(payload(&t)["sub"], ALICE);
}

#[tokio::test]
async fn actor_token_not_matching_the_client_is_rejected() {
    let w = World::new().await;
    let t1 = chain(&w, &["agent:bot"]).await.remove(0);
    let search = w.root("service:search", "read").await;
    let mine = w.root("agent:helper", "read").await;
    let d = refused(
        &w,
        "agent:helper",
        &t1,
        &[("actor_token", &search), ("actor_token_type", ACCESS_TOKEN)],
        "invalid_request",
    )
    .await;
    mentions(&d, "does not match the authenticated client");
    // The subject token is no actor token for its holder's successor.
    refused(
        &w,
        "agent:helper",
        &t1,
        &[("actor_token", &t1), ("actor_token_type", ACCESS_TOKEN)],
        "invalid_request",
    )
    .await;
    // Type missing, unsupported or a token that is not one.
    for extra in [
        vec![("actor_token", mine.as_str())],
        vec![
            ("actor_token", mine.as_str()),
            (
                "actor_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            ),
        ],
        vec![
            ("actor_token", "garbage"),
            ("actor_token_type", ACCESS_TOKEN),
        ],
        vec![("actor_token", &w.alice()), ("actor_token_type", JWT)],
    ] {
        refused(&w, "agent:helper", &t1, &extra, "invalid_request").await;
    }
    // The client's own token is accepted.
    w.handoff(
        "agent:helper",
        &t1,
        &[("actor_token", &mine), ("actor_token_type", ACCESS_TOKEN)],
    )
    .await;
}

#[tokio::test]
async fn revoked_credential_cannot_authenticate_and_its_delegations_die() {
    let w = World::new().await;
    let tokens = chain(&w, &["agent:bot", "agent:helper"]).await;
    let root = w.root("agent:bot", "read").await;
    let other = w.handoff("service:search", &w.alice(), &[]).await;
    let cred = w.credential("agent:bot").to_owned();
    w.h.post_empty(&format!("/v1/credentials/{cred}/revoke"))
        .await
        .expect(200);
    let before = w.before().await;
    let r = w.exchange("agent:bot", &w.alice(), &[]).await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.text);
    assert_eq!(r.json["error"], "invalid_client");
    assert_eq!(w.delegations().await, before.delegations);
    for t in [&tokens[0], &tokens[1], &root] {
        assert!(!w.active(t).await, "a delegation of the revoked credential");
    }
    assert!(w.active(&other).await, "an unrelated lineage");
    // The human root above it stays; only what the credential obtained died.
    let txn = payload(&tokens[0])["txn"].as_str().unwrap().to_owned();
    let l = w.h.get(&format!("/v1/lineages/{txn}")).await;
    let states: Vec<&str> = l.expect(200)["delegations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["active", "revoked", "revoked"]);
    // And the holder below cannot hand it on.
    refused(&w, "service:search", &tokens[1], &[], "invalid_request").await;
}

#[tokio::test]
async fn policy_forbidding_the_handoff_is_rejected() {
    let w = World::new().await;
    let t1 = chain(&w, &["agent:bot"]).await.remove(0);
    let d = refused(&w, "agent:rogue", &t1, &[], "invalid_request").await;
    mentions(&d, "policy");
    mentions(&d, "\"agent:rogue\"");
    // Straight from the human's login: no root is left behind either.
    refused(&w, "agent:rogue", &w.alice(), &[], "invalid_request").await;
    // Nor may rogue give itself a root.
    let before = w.before().await;
    let r = w
        .token("agent:rogue", &[("grant_type", "client_credentials")])
        .await;
    w.assert_refused(&before, &r, "invalid_request").await;
}

#[tokio::test]
async fn fan_out_limit_is_enforced() {
    let w = World::with_pack_settings("[delegation]\nmax_fan_out = 2\n").await;
    let t1 = chain(&w, &["agent:bot"]).await.remove(0);
    let first = w.handoff("agent:helper", &t1, &[]).await;
    w.handoff("agent:helper", &t1, &[]).await;
    let d = refused(&w, "service:search", &t1, &[], "invalid_request").await;
    mentions(&d, "maximum number of direct delegations (2)");
    // Revoking a child frees its place.
    w.revoke("agent:helper", &first).await.expect(200);
    w.handoff("service:search", &t1, &[]).await;
    refused(&w, "service:db", &t1, &[], "invalid_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_limit_holds_under_concurrent_exchanges() {
    let w = World::with_pack_settings("[delegation]\nmax_fan_out = 2\n").await;
    let t1 = chain(&w, &["agent:bot"]).await.remove(0);
    let before = w.before().await;
    let (a, b, c, d) = tokio::join!(
        w.exchange("agent:helper", &t1, &[]),
        w.exchange("service:search", &t1, &[]),
        w.exchange("service:db", &t1, &[]),
        w.exchange("agent:nosy", &t1, &[]),
    );
    let replies = [a, b, c, d];
    let issued = replies.iter().filter(|r| r.status.as_u16() == 200).count();
    assert_eq!(issued, 2);
    for r in replies.iter().filter(|r| r.status.as_u16() != 200) {
        assert_eq!(r.status.as_u16(), 400, "{}", r.text);
        assert_eq!(r.json["error"], "invalid_request", "{}", r.text);
    }
    assert_eq!(w.delegations().await, before.delegations + 2);
    let mut kinds: Vec<String> = w
        .written(&before)
        .await
        .into_iter()
        .map(|r| r.kind)
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "delegation.create",
            "delegation.create",
            "delegation.refuse",
            "delegation.refuse"
        ]
    );
}

// ---- malformed requests and client authentication ------------------------------

#[tokio::test]
async fn oversized_and_malformed_parameters_are_rejected() {
    let w = World::new().await;
    let alice = w.alice();
    let huge = "a".repeat(17 * 1024);
    let bot = ("agent:bot", w.secret("agent:bot"));
    // Refused while reading the request: nothing is looked up or written.
    let unread: [(&[Pair], &str); 6] = [
        (
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &huge),
                ("subject_token_type", JWT),
            ],
            "invalid_request",
        ),
        (
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &alice),
                ("subject_token_type", JWT),
                ("scope", "read"),
                ("scope", "write"),
            ],
            "invalid_request",
        ),
        (&[("grant_type", "password")], "unsupported_grant_type"),
        (&[("subject_token", &alice)], "invalid_request"),
        (
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &alice),
                ("subject_token_type", JWT),
                ("requested_lifetime", "ten"),
            ],
            "invalid_request",
        ),
        (
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &alice),
                ("subject_token_type", JWT),
                ("audience", "https://a.test"),
                ("audience", "https://a.test"),
                ("audience", "https://a.test"),
                ("audience", "https://a.test"),
                ("audience", "https://a.test"),
                ("audience", "https://a.test"),
                ("audience", "https://a.test"),
                ("audience", "https://a.test"),
                ("audience", "https://a.test"),
                ("audience", "https://a.test"),
                ("audience", "https://a.test"),
                ("audience", "https://a.test"),
                ("audience", "https://a.test"),
                ("audience", "https://a.test"),
                ("audience", "https://a.test"),
                ("audience", "https://a.test"),
                ("audience", "https://a.test"),
            ],
            "invalid_request",
        ),
    ];
    for (params, code) in unread {
        let before = w.before().await;
        let r = w.h.form("/oauth2/token", Some(bot), None, params).await;
        w.assert_rejected_unread(&before, &r, 400, code).await;
    }
    // A required parameter missing.
    let before = w.before().await;
    let r =
        w.h.form(
            "/oauth2/token",
            Some(bot),
            None,
            &[("grant_type", EXCHANGE), ("subject_token", &alice)],
        )
        .await;
    w.assert_rejected_unread(&before, &r, 400, "invalid_request")
        .await;
    mentions(
        r.json["error_description"].as_str().unwrap(),
        "subject_token_type",
    );
    // Not a form.
    let before = w.before().await;
    let json_body = json!({"grant_type": EXCHANGE, "subject_token": alice}).to_string();
    let req = Request::builder()
        .method(Method::POST)
        .uri("/oauth2/token")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json_body))
        .unwrap();
    let r = w.h.send(req).await;
    w.assert_rejected_unread(&before, &r, 400, "invalid_request")
        .await;
    // More than 64 KiB.
    let before = w.before().await;
    let big = format!("grant_type=client_credentials&x={}", "a".repeat(65 * 1024));
    let req = Request::builder()
        .method(Method::POST)
        .uri("/oauth2/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(big))
        .unwrap();
    let r = w.h.send(req).await;
    assert_eq!(r.status.as_u16(), 413, "{}", r.text);
    assert!(w.written(&before).await.is_empty());
    // Refused by the engine, with the client known: audited.
    for (token, ty) in [
        ("garbage", JWT),
        ("a.b.c", JWT),
        (alice.as_str(), "urn:example:token-type:saml"),
    ] {
        let before = w.before().await;
        let r = w
            .token(
                "agent:bot",
                &[
                    ("grant_type", EXCHANGE),
                    ("subject_token", token),
                    ("subject_token_type", ty),
                ],
            )
            .await;
        w.assert_refused(&before, &r, "invalid_request").await;
    }
}

#[tokio::test]
async fn two_client_authentication_methods_are_rejected() {
    let w = World::new().await;
    let alice = w.alice();
    let exchange = [
        ("grant_type", EXCHANGE),
        ("subject_token", alice.as_str()),
        ("subject_token_type", JWT),
    ];
    let bot = ("agent:bot", w.secret("agent:bot"));
    let secret = w.secret("agent:bot");
    let assertion_type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    let cases: [(Option<Pair>, &[Pair]); 4] = [
        // Basic and client_secret.
        (Some(bot), &[("client_secret", secret)]),
        // Basic and an assertion.
        (
            Some(bot),
            &[
                ("client_assertion_type", assertion_type),
                ("client_assertion", "a.b.c"),
            ],
        ),
        // client_secret and an assertion.
        (
            None,
            &[
                ("client_id", "agent:bot"),
                ("client_secret", secret),
                ("client_assertion_type", assertion_type),
                ("client_assertion", "a.b.c"),
            ],
        ),
        // Basic for one client, client_id of another.
        (Some(bot), &[("client_id", "agent:helper")]),
    ];
    for (basic, extra) in cases {
        let params = [exchange.as_slice(), extra].concat();
        let before = w.before().await;
        let r = w.h.form("/oauth2/token", basic, None, &params).await;
        w.assert_rejected_unread(&before, &r, 400, "invalid_request")
            .await;
    }
    // One method at a time works, and a percent-encoded Basic id too.
    let post = [
        exchange.as_slice(),
        &[("client_id", "agent:bot"), ("client_secret", secret)],
    ]
    .concat();
    for (basic, params) in [
        (None, post.as_slice()),
        (Some(("agent%3Abot", secret)), exchange.as_slice()),
    ] {
        let r = w.h.form("/oauth2/token", basic, None, params).await;
        let token = r.expect(200)["access_token"].as_str().unwrap();
        assert_eq!(payload(token)["act"]["sub"], "agent:bot");
    }
}

#[tokio::test]
async fn wrong_client_secret_is_invalid_client_and_audited() {
    let w = World::new().await;
    let alice = w.alice();
    let exchange = [
        ("grant_type", EXCHANGE),
        ("subject_token", alice.as_str()),
        ("subject_token_type", JWT),
    ];
    let real = w.secret("agent:bot").to_owned();
    let last = real.chars().last().unwrap();
    let wrong = format!(
        "{}{}",
        &real[..real.len() - 1],
        if last == 'A' { 'B' } else { 'A' }
    );
    let cases: [(&str, &str, &str); 4] = [
        ("agent:bot", &wrong, "agent:bot"),
        ("agent:bot", w.secret("agent:helper"), "agent:bot"),
        ("agent:nobody", &wrong, "agent:nobody"),
        ("agent:bot", "not-a-secret", "agent:bot"),
    ];
    for (id, secret, target) in cases {
        let before = w.before().await;
        let r =
            w.h.form("/oauth2/token", Some((id, secret)), None, &exchange)
                .await;
        assert_eq!(r.status.as_u16(), 401, "{}", r.text);
        assert_eq!(r.json["error"], "invalid_client", "{}", r.text);
        assert_eq!(
            r.headers[header::WWW_AUTHENTICATE],
            "Basic realm=\"handoff\""
        );
        let written = w.written(&before).await;
        assert_eq!(written.len(), 1, "{id}");
        assert_eq!(written[0].kind, "client.authenticate");
        assert_eq!(written[0].outcome, Outcome::Failure);
        assert_eq!(written[0].actor, "anonymous");
        assert_eq!(written[0].target, target);
        assert!(
            !written[0].details.contains(secret),
            "a secret reached the log"
        );
        assert_eq!(w.delegations().await, before.delegations);
    }
    // client_secret_post fails the same way.
    let mut params = exchange.to_vec();
    params.extend([
        ("client_id", "agent:bot"),
        ("client_secret", wrong.as_str()),
    ]);
    let before = w.before().await;
    let r = w.h.form("/oauth2/token", None, None, &params).await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.text);
    assert_eq!(r.json["error"], "invalid_client");
    assert_eq!(w.written(&before).await.len(), 1);
    // And so does no authentication at all.
    let r = w.h.form("/oauth2/token", None, None, &exchange).await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.text);
    assert_eq!(r.json["error"], "invalid_client");
    assert!(r.headers.contains_key(header::WWW_AUTHENTICATE));
}

#[tokio::test]
async fn an_absurd_requested_lifetime_is_refused_not_a_panic() {
    let w = World::new().await;
    let absurd = "100000000000000000";
    let before = w.before().await;
    let r = w
        .exchange("agent:bot", &w.alice(), &[("requested_lifetime", absurd)])
        .await;
    w.assert_refused(&before, &r, "invalid_request").await;
    let before = w.before().await;
    let r = w
        .token(
            "agent:bot",
            &[
                ("grant_type", "client_credentials"),
                ("requested_lifetime", absurd),
            ],
        )
        .await;
    w.assert_refused(&before, &r, "invalid_request").await;
    let r = w
        .h
        .post(
            "/v1/dev/human-tokens",
            json!({"human": ALICE, "scope": "read", "lifetime_seconds": 100_000_000_000_000_000_i64}),
        )
        .await;
    r.assert_problem(400, "invalid-request");
}

#[tokio::test]
async fn a_refused_first_hop_audits_no_phantom_delegation() {
    let w = World::new().await;
    for (client, extra) in [
        ("agent:rogue", vec![]),
        ("agent:bot", vec![("scope", "read admin")]),
    ] {
        let before = w.before().await;
        let r = w.exchange(client, &w.alice(), &extra).await;
        assert_eq!(r.status.as_u16(), 400, "{}", r.text);
        let written = w.written(&before).await;
        assert_eq!(written.len(), 1);
        let record = &written[0];
        let details: Value = serde_json::from_str(&record.details).unwrap();
        let named = [Some(record.target.as_str()), details["parent"].as_str()];
        for id in named
            .into_iter()
            .flatten()
            .filter(|t| t.starts_with("dlg_"))
        {
            w.h.get(&format!("/v1/delegations/{id}")).await.expect(200);
        }
    }
}
