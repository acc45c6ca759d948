//! Handoffs over HTTP: RFC 8693 token exchange from a trusted identity
//! provider's login down a chain of agents and services, client
//! credentials, introspection (RFC 7662), revocation with cascade
//! (RFC 7009), server metadata, signing keys, and chain-aware AuthZEN
//! decisions. The attacks on the token endpoint are in `attacks.rs`, over
//! the same [`World`].

use crate::harness::{Harness, ISSUER, Idp, Reply};
use axum::http::{Method, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use handoff_audit::Outcome;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The grant type of RFC 8693 §2.1.
pub(crate) const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3: a JWT (the identity provider's tokens).
pub(crate) const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// RFC 8693 §3: an access token (Handoff's own tokens).
pub(crate) const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The human at the root of the lineages.
pub(crate) const ALICE: &str = "human:alice@example.com";

const SCHEMA: &str = "entity Doc;\n\
    action delegate appliesTo { principal: [Human, Agent, Service], resource: [Human, Agent, Service] };\n\
    action read, write appliesTo { principal: [Human, Agent, Service], resource: [Doc] };\n";

const POLICIES: &str = "@id(\"delegate\")\npermit(principal, action == Action::\"delegate\", resource);\n\
    @id(\"no-rogue\")\nforbid(principal, action == Action::\"delegate\", resource == Agent::\"rogue\");\n\
    @id(\"use\")\npermit(principal, action in [Action::\"read\", Action::\"write\"], resource);\n\
    @id(\"no-nosy\")\nforbid(principal == Agent::\"nosy\", action, resource);\n";

/// The agents and services of every world, each with one credential.
const CLIENTS: [&str; 6] = [
    "agent:bot",
    "agent:helper",
    "agent:nosy",
    "agent:rogue",
    "service:search",
    "service:db",
];

/// A delegating server with the pack above, alice and her clients.
pub(crate) struct World {
    pub(crate) h: Harness,
    pub(crate) idp: Idp,
    /// Client id → (credential id, secret).
    clients: BTreeMap<&'static str, (String, String)>,
}

/// What was written before a request, to show a refusal wrote nothing else.
pub(crate) struct Before {
    pub(crate) head: u64,
    pub(crate) delegations: usize,
}

/// The JSON of one part (0 header, 1 payload) of a compact JWS.
pub(crate) fn part(token: &str, i: usize) -> Value {
    let text = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
}

/// A token's claims, read without verification.
pub(crate) fn payload(token: &str) -> Value {
    part(token, 1)
}

/// `header.payload.signature` from JSON parts and raw signature bytes.
pub(crate) fn compact(header: &Value, payload: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

impl World {
    /// A world with the default limits.
    pub(crate) async fn new() -> Self {
        Self::with_pack_settings("").await
    }

    /// A world whose pack carries `pack_toml` (when not empty).
    pub(crate) async fn with_pack_settings(pack_toml: &str) -> Self {
        let (h, idp) = Harness::delegating().await;
        let mut files = json!({"schema.cedarschema": SCHEMA, "policies.cedar": POLICIES});
        if !pack_toml.is_empty() {
            files["pack.toml"] = pack_toml.into();
        }
        h.call(
            Method::PUT,
            "/v1/policies",
            Some(&h.token),
            Some(json!({ "files": files })),
        )
        .await
        .expect(201);
        h.post("/v1/identities", json!({ "id": ALICE }))
            .await
            .expect(201);
        let mut clients = BTreeMap::new();
        for id in CLIENTS {
            h.owned(id, "alice@example.com").await;
            clients.insert(id, h.issue(id, json!({"description": "test"})).await);
        }
        Self { h, idp, clients }
    }

    /// The secret of `client`.
    pub(crate) fn secret(&self, client: &str) -> &str {
        &self.clients[client].1
    }

    /// The credential id of `client`.
    pub(crate) fn credential(&self, client: &str) -> &str {
        &self.clients[client].0
    }

    /// A valid identity provider token for alice with `read write`.
    pub(crate) fn alice(&self) -> String {
        self.idp
            .token("alice@example.com", "read write", self.h.now())
    }

    /// A token endpoint request authenticated as `client` with HTTP Basic.
    pub(crate) async fn token(&self, client: &str, params: &[(&str, &str)]) -> Reply {
        self.h
            .form(
                "/oauth2/token",
                Some((client, self.secret(client))),
                None,
                params,
            )
            .await
    }

    /// A token exchange by `client` of `subject` with `extra` parameters.
    pub(crate) async fn exchange(
        &self,
        client: &str,
        subject: &str,
        extra: &[(&str, &str)],
    ) -> Reply {
        let own = subject.split('.').nth(1).is_some_and(|p| {
            URL_SAFE_NO_PAD
                .decode(p)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .is_some_and(|v| v["iss"] == ISSUER)
        });
        let ty = if own { ACCESS_TOKEN } else { JWT };
        let mut params = vec![
            ("grant_type", EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", ty),
        ];
        params.extend_from_slice(extra);
        self.token(client, &params).await
    }

    /// A successful exchange; returns the issued token.
    pub(crate) async fn handoff(
        &self,
        client: &str,
        subject: &str,
        extra: &[(&str, &str)],
    ) -> String {
        let r = self.exchange(client, subject, extra).await;
        r.expect(200)["access_token"].as_str().unwrap().to_owned()
    }

    /// `client_credentials` for `client`; returns the issued token.
    pub(crate) async fn root(&self, client: &str, scope: &str) -> String {
        let r = self
            .token(
                client,
                &[("grant_type", "client_credentials"), ("scope", scope)],
            )
            .await;
        r.expect(200)["access_token"].as_str().unwrap().to_owned()
    }

    /// Introspects `token` with the admin token.
    pub(crate) async fn introspect(&self, token: &str) -> Value {
        let r = self
            .h
            .form(
                "/oauth2/introspect",
                None,
                Some(&self.h.token),
                &[("token", token)],
            )
            .await;
        r.expect(200).clone()
    }

    /// Whether `token` introspects active.
    pub(crate) async fn active(&self, token: &str) -> bool {
        self.introspect(token).await["active"].as_bool().unwrap()
    }

    /// Revokes `token` at the revocation endpoint as `client`.
    pub(crate) async fn revoke(&self, client: &str, token: &str) -> Reply {
        self.h
            .form(
                "/oauth2/revoke",
                Some((client, self.secret(client))),
                None,
                &[("token", token)],
            )
            .await
    }

    /// A chain-aware decision: `subject` (an identity id) acting with
    /// `token` does `action` on a document, explained.
    pub(crate) async fn decide(&self, subject: &str, token: &str, action: &str) -> Value {
        let (kind, _) = subject.split_once(':').unwrap();
        let body = json!({
            "subject": {"type": kind, "id": subject, "properties": {"token": token}},
            "action": {"name": action},
            "resource": {"type": "Doc", "id": "plan"},
        });
        let req = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/access/v1/evaluation")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.h.token))
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-handoff-explain", "true")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        self.h.send(req).await.expect(200).clone()
    }

    /// How many delegations are stored.
    pub(crate) async fn delegations(&self) -> usize {
        let r = self.h.get("/v1/delegations?limit=500").await;
        r.expect(200)["items"].as_array().unwrap().len()
    }

    /// The state before a request that must be refused.
    pub(crate) async fn before(&self) -> Before {
        let delegations = self.delegations().await;
        Before {
            head: self.h.audit_head().await,
            delegations,
        }
    }

    /// The audit records written since `before`.
    pub(crate) async fn written(&self, before: &Before) -> Vec<handoff_audit::Record> {
        let tail = self.h.engine.audit_tail(50).await.unwrap();
        tail.into_iter().filter(|r| r.seq > before.head).collect()
    }

    /// Asserts a `400 {"error": code}` refusal that wrote exactly one
    /// `delegation.refuse` record and no delegation.
    pub(crate) async fn assert_refused(&self, before: &Before, r: &Reply, code: &str) {
        assert_eq!(r.status.as_u16(), 400, "{}", r.text);
        assert_eq!(r.json["error"], code, "{}", r.text);
        assert!(
            r.json["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{}",
            r.text
        );
        assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
        let written = self.written(before).await;
        let kinds: Vec<&str> = written.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, ["delegation.refuse"], "{}", r.text);
        let record = &written[0];
        assert_eq!(record.outcome, Outcome::Failure);
        let details: Value = serde_json::from_str(&record.details).unwrap();
        assert_eq!(details["error"], code, "{details}");
        assert_eq!(self.delegations().await, before.delegations, "{}", r.text);
    }

    /// Asserts a refusal of the request itself (before any client or
    /// delegation is looked at): `status` and `code`, nothing written.
    pub(crate) async fn assert_rejected_unread(
        &self,
        before: &Before,
        r: &Reply,
        status: u16,
        code: &str,
    ) {
        assert_eq!(r.status.as_u16(), status, "{}", r.text);
        assert_eq!(r.json["error"], code, "{}", r.text);
        let written = self.written(before).await;
        let kinds: Vec<&str> = written.iter().map(|r| r.kind.as_str()).collect();
        assert!(kinds.is_empty(), "{kinds:?} {}", r.text);
        assert_eq!(self.delegations().await, before.delegations);
    }
}

/// alice → agent:bot → `next`...: each token issued from the previous one.
pub(crate) async fn chain(w: &World, actors: &[&str]) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    for actor in actors {
        let subject = tokens.last().cloned().unwrap_or_else(|| w.alice());
        tokens.push(w.handoff(actor, &subject, &[]).await);
    }
    tokens
}

// ---- happy paths -----------------------------------------------------------

#[tokio::test]
async fn human_agent_service_service_chain_nests_act_and_keeps_txn() {
    let w = World::new().await;
    let r = w.exchange("agent:bot", &w.alice(), &[]).await;
    let first = r.expect(200);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(first["scope"], "read write");
    // The default 15 minutes, cut to what the login has left (10 minutes).
    assert_eq!(first["expires_in"], 600);
    let t1 = first["access_token"].as_str().unwrap().to_owned();
    let t2 = w.handoff("service:search", &t1, &[]).await;
    let t3 = w.handoff("service:db", &t2, &[]).await;
    let tokens = [&t1, &t2, &t3];
    let claims: Vec<Value> = tokens.iter().map(|t| payload(t)).collect();
    let txn = claims[0]["txn"].as_str().unwrap().to_owned();
    for (i, (c, t)) in claims.iter().zip(tokens).enumerate() {
        assert_eq!(c["iss"], ISSUER);
        assert_eq!(c["sub"], ALICE, "sub never changes");
        assert_eq!(c["txn"], txn, "txn never changes");
        assert_eq!(c["depth"], i + 1);
        assert_eq!(c["scope"], "read write");
        assert_eq!(c["aud"], ISSUER);
        assert_eq!(part(t, 0)["typ"], "at+jwt");
    }
    assert_eq!(claims[0]["act"], json!({"sub": "agent:bot"}));
    assert_eq!(
        claims[1]["act"],
        json!({"sub": "service:search", "act": {"sub": "agent:bot"}})
    );
    assert_eq!(
        claims[2]["act"],
        json!({"sub": "service:db", "act": {"sub": "service:search", "act": {"sub": "agent:bot"}}})
    );
    assert_eq!(claims[2]["client_id"], "service:db");

    // jti is the delegation id, and the delegation matches the token.
    let jti = claims[2]["jti"].as_str().unwrap();
    let d = w.h.get(&format!("/v1/delegations/{jti}")).await;
    let v = d.expect(200);
    assert_eq!(v["delegation"]["id"], jti);
    assert_eq!(v["delegation"]["actor"], "service:db");
    assert_eq!(v["delegation"]["delegator"], "service:search");
    assert_eq!(v["delegation"]["subject"], ALICE);
    assert_eq!(v["delegation"]["depth"], 3);
    assert_eq!(v["delegation"]["lineage"], txn);
    assert_eq!(v["live"], true);
    let actors: Vec<&str> = v["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, [ALICE, "agent:bot", "service:search", "service:db"]);

    // The lineage: the human root (its id is the txn) and three handoffs.
    let l = w.h.get(&format!("/v1/lineages/{txn}")).await;
    let nodes = l.expect(200)["delegations"].as_array().unwrap().clone();
    assert_eq!(nodes.len(), 4);
    let root = &nodes[0];
    assert_eq!(root["id"], txn);
    assert_eq!(root["parent"], Value::Null);
    assert_eq!(root["depth"], 0);
    assert_eq!(root["subject"], ALICE);
    assert_eq!(root["actor"], ALICE);
    assert_eq!(root["credential"], Value::Null);
    for (i, node) in nodes.iter().enumerate().skip(1) {
        assert_eq!(node["parent"], nodes[i - 1]["id"]);
        assert_eq!(node["depth"], i);
        assert_eq!(node["state"], "active");
        assert_eq!(node["id"], claims[i - 1]["jti"]);
    }
    assert_eq!(nodes[1]["credential"], w.credential("agent:bot"));
    // Who holds, granted or is the subject of each.
    for (who, n) in [
        ("service%3Asearch", 2),
        ("agent%3Abot", 2),
        ("service%3Adb", 1),
        ("human%3Aalice%40example.com", 4),
    ] {
        let r = w.h.get(&format!("/v1/delegations?identity={who}")).await;
        assert_eq!(r.expect(200)["items"].as_array().unwrap().len(), n, "{who}");
    }
    let created =
        w.h.engine
            .audit_tail(3)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.kind == "delegation.create")
            .count();
    assert_eq!(created, 3, "one delegation.create per exchange");
}

#[tokio::test]
async fn client_credentials_issues_a_root_token_without_act() {
    let w = World::new().await;
    let r = w
        .token(
            "service:search",
            &[
                ("grant_type", "client_credentials"),
                ("scope", "read"),
                ("audience", "https://api.test"),
            ],
        )
        .await;
    let v = r.expect(200);
    assert_eq!(v["scope"], "read");
    assert_eq!(v["token_type"], "Bearer");
    let token = v["access_token"].as_str().unwrap();
    let c = payload(token);
    assert_eq!(c["sub"], "service:search");
    assert_eq!(c["client_id"], "service:search");
    assert_eq!(c["depth"], 0);
    assert_eq!(c["txn"], c["jti"]);
    assert_eq!(c["aud"], "https://api.test");
    assert!(c.get("act").is_none(), "{c}");
    let last = w.h.engine.audit_tail(1).await.unwrap();
    assert_eq!(last[0].kind, "delegation.create");
    let details: Value = serde_json::from_str(&last[0].details).unwrap();
    assert_eq!(details["grant"], "client_credentials");
    // The root can be handed on; the handoff's act names the new actor only.
    let next = w.handoff("service:db", token, &[]).await;
    let n = payload(&next);
    assert_eq!(n["sub"], "service:search");
    assert_eq!(n["act"], json!({"sub": "service:db"}));
    assert_eq!(n["txn"], c["txn"]);
}

#[tokio::test]
async fn dev_and_scopeless_logins_start_lineages() {
    let w = World::new().await;
    let r =
        w.h.post(
            "/v1/dev/human-tokens",
            json!({"human": ALICE, "scope": "read"}),
        )
        .await;
    let v = r.expect(201);
    assert_eq!(v["token_type"], JWT);
    let dev = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(payload(&dev)["iss"], format!("{ISSUER}/dev"));
    let t = w.handoff("agent:bot", &dev, &[]).await;
    let c = payload(&t);
    assert_eq!((&c["sub"], &c["scope"]), (&json!(ALICE), &json!("read")));
    assert_eq!(c["act"], json!({"sub": "agent:bot"}));
    // A login is no access token: not active, no decision on it.
    assert_eq!(w.introspect(&dev).await, json!({"active": false}));
    assert_eq!(w.decide(ALICE, &dev, "read").await["decision"], false);
    // Only humans get development tokens.
    w.h.post(
        "/v1/dev/human-tokens",
        json!({"human": "agent:bot", "scope": "read"}),
    )
    .await
    .assert_problem(409, "conflict");
    // A login without a scope claim gets the issuer's default scope.
    let mut claims = Idp::claims("alice@example.com", "", w.h.now());
    claims.as_object_mut().unwrap().remove("scope");
    let login = w.idp.sign(&Idp::header(crate::harness::IDP_KID), &claims);
    let t = w.handoff("agent:bot", &login, &[]).await;
    assert_eq!(payload(&t)["scope"], "read");
}

#[tokio::test]
async fn introspection_shows_the_act_chain() {
    let w = World::new().await;
    let tokens = chain(&w, &["agent:bot", "agent:helper"]).await;
    let v = w.introspect(&tokens[1]).await;
    let c = payload(&tokens[1]);
    assert_eq!(v["active"], true);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["sub"], ALICE);
    assert_eq!(
        v["act"],
        json!({"sub": "agent:helper", "act": {"sub": "agent:bot"}})
    );
    for claim in ["txn", "jti", "exp", "iat", "scope", "client_id", "iss"] {
        assert_eq!(v[claim], c[claim], "{claim}");
    }
    assert_eq!(v["depth"], 2);
    let last = w.h.engine.audit_tail(1).await.unwrap();
    assert_eq!(last[0].kind, "token.introspect");
    assert_eq!(last[0].outcome, Outcome::Allow);

    // A client on the chain may introspect with its own credentials.
    let r =
        w.h.form(
            "/oauth2/introspect",
            Some(("agent:bot", w.secret("agent:bot"))),
            None,
            &[("token", &tokens[1])],
        )
        .await;
    assert_eq!(r.expect(200)["active"], true);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");

    // Garbage and foreign tokens are inactive, with nothing else said.
    for token in ["garbage", &w.alice()] {
        assert_eq!(w.introspect(token).await, json!({"active": false}));
    }
    // Without authentication, nothing.
    let r =
        w.h.form("/oauth2/introspect", None, None, &[("token", &tokens[1])])
            .await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.text);
    assert_eq!(r.json["error"], "invalid_client");
}

#[tokio::test]
async fn metadata_lists_endpoints_grants_and_auth_methods() {
    let w = World::new().await;
    let r =
        w.h.call(
            Method::GET,
            "/.well-known/oauth-authorization-server",
            None,
            None,
        )
        .await;
    let v = r.expect(200);
    assert_eq!(v["issuer"], ISSUER);
    assert_eq!(v["token_endpoint"], "http://handoff.test/oauth2/token");
    assert_eq!(v["jwks_uri"], "http://handoff.test/.well-known/jwks.json");
    assert_eq!(
        v["introspection_endpoint"],
        "http://handoff.test/oauth2/introspect"
    );
    assert_eq!(
        v["revocation_endpoint"],
        "http://handoff.test/oauth2/revoke"
    );
    let grants = v["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&json!(EXCHANGE)), "{grants:?}");
    assert!(grants.contains(&json!("client_credentials")), "{grants:?}");
    let methods = v["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    for m in ["client_secret_basic", "client_secret_post"] {
        assert!(methods.contains(&json!(m)), "{methods:?}");
    }
    assert!(v["revocation_endpoint_auth_methods_supported"].is_array());
    assert!(v["introspection_endpoint_auth_methods_supported"].is_array());
}

#[tokio::test]
async fn jwks_verifies_issued_tokens() {
    let w = World::new().await;
    let token = chain(&w, &["agent:bot"]).await.remove(0);
    let r =
        w.h.call(Method::GET, "/.well-known/jwks.json", None, None)
            .await;
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(r.expect(200).clone()).unwrap();
    for jwk in &jwks.keys {
        assert!(
            serde_json::to_value(jwk).unwrap().get("d").is_none(),
            "a private member is published"
        );
    }
    let header = jsonwebtoken::decode_header(&token).unwrap();
    let kid = header.kid.clone().unwrap();
    let jwk = jwks.find(&kid).expect("the token's kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    // The server's clock is fixed; expiry is the server's business here.
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[ISSUER]);
    let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
    assert_eq!(data.claims["sub"], ALICE);
    assert_eq!(data.claims["act"]["sub"], "agent:bot");

    // The same key refuses a token whose payload was changed.
    let mut claims = payload(&token);
    claims["scope"] = "read write admin".into();
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    assert!(jsonwebtoken::decode::<Value>(&tampered, &key, &validation).is_err());
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid() {
    let w = World::new().await;
    let old = chain(&w, &["agent:bot"]).await.remove(0);
    let old_kid = part(&old, 0)["kid"].as_str().unwrap().to_owned();
    let r = w.h.post_empty("/v1/keys/rotate").await;
    let new_kid = r.expect(200)["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert!(
        w.active(&old).await,
        "a token of the retired key still verifies"
    );

    // Tokens are signed with the new key from now on, even below an old one.
    let next = w.handoff("agent:helper", &old, &[]).await;
    assert_eq!(part(&next, 0)["kid"], new_kid);
    assert!(w.active(&next).await);
    let fresh = w.handoff("agent:bot", &w.alice(), &[]).await;
    assert_eq!(part(&fresh, 0)["kid"], new_kid);

    let jwks =
        w.h.call(Method::GET, "/.well-known/jwks.json", None, None)
            .await;
    let kids: Vec<&str> = jwks.expect(200)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(kids.contains(&old_kid.as_str()), "{kids:?}");
    assert!(kids.contains(&new_kid.as_str()), "{kids:?}");
    let keys = w.h.get("/v1/keys").await;
    let signing: Vec<&str> = keys.expect(200)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["signing"] == true)
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(signing, [new_kid.as_str()]);
    let last = w.h.engine.audit_tail(10).await.unwrap();
    assert!(
        last.iter()
            .any(|r| r.kind == "keys.rotate" && r.target == new_kid)
    );
}

// ---- revocation --------------------------------------------------------------

#[tokio::test]
async fn revoking_a_delegation_cascades_and_is_idempotent() {
    let w = World::new().await;
    // alice → bot → helper → search, and a sibling branch bot → db.
    let tokens = chain(&w, &["agent:bot", "agent:helper", "service:search"]).await;
    let sibling = w.handoff("service:db", &tokens[0], &[]).await;
    let r = w.revoke("agent:bot", &tokens[1]).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    assert!(!w.active(&tokens[1]).await, "the revoked token");
    assert!(!w.active(&tokens[2]).await, "its child");
    assert!(w.active(&tokens[0]).await, "its parent");
    assert!(w.active(&sibling).await, "the sibling branch");
    let last = w.h.engine.audit_tail(5).await.unwrap();
    let revoke = last
        .iter()
        .rev()
        .find(|r| r.kind == "delegation.revoke")
        .unwrap();
    let details: Value = serde_json::from_str(&revoke.details).unwrap();
    assert_eq!(details["revoked"], 2);
    assert_eq!(details["via"], "oauth2.revoke");
    let jti = payload(&tokens[2])["jti"].as_str().unwrap().to_owned();
    let d = w.h.get(&format!("/v1/delegations/{jti}")).await;
    assert_eq!(d.expect(200)["delegation"]["state"], "revoked");
    assert_eq!(d.json["live"], false);

    // Again, and with a token the server never issued: still 200 (RFC 7009 §2.2).
    for token in [tokens[1].as_str(), "garbage"] {
        let r = w.revoke("agent:bot", token).await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    }
    assert!(w.active(&sibling).await);
}

#[tokio::test]
async fn only_identities_on_the_chain_may_revoke() {
    let w = World::new().await;
    let tokens = chain(&w, &["agent:bot", "agent:helper"]).await;
    let before = w.before().await;
    for (client, token) in [
        ("service:search", &tokens[1]),
        ("agent:nosy", &tokens[0]),
        // Below a delegation is not on its chain.
        ("agent:helper", &tokens[0]),
    ] {
        let r = w.revoke(client, token).await;
        assert_eq!(r.status.as_u16(), 400, "{client}: {}", r.text);
        assert_eq!(r.json["error"], "unauthorized_client", "{}", r.text);
    }
    let written = w.written(&before).await;
    assert!(!written.iter().any(|r| r.kind == "delegation.revoke"));
    assert!(w.active(&tokens[0]).await);
    assert!(w.active(&tokens[1]).await);
    // The holder may revoke its own.
    let r = w.revoke("agent:helper", &tokens[1]).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert!(!w.active(&tokens[1]).await);
    assert!(w.active(&tokens[0]).await);
    // An admin token may revoke anything.
    let r =
        w.h.form(
            "/oauth2/revoke",
            None,
            Some(&w.h.token),
            &[("token", &tokens[0])],
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert!(!w.active(&tokens[0]).await);
}

#[tokio::test]
async fn revoked_chain_cannot_be_extended() {
    let w = World::new().await;
    let tokens = chain(&w, &["agent:bot", "agent:helper"]).await;
    w.revoke("agent:bot", &tokens[0]).await.expect(200);
    for (client, token) in [("agent:helper", &tokens[0]), ("service:search", &tokens[1])] {
        let before = w.before().await;
        let r = w.exchange(client, token, &[]).await;
        w.assert_refused(&before, &r, "invalid_request").await;
        let d = r.json["error_description"].as_str().unwrap();
        assert!(d.contains("revoked"), "{d}");
    }
    // The revoked token is no use as an actor token either.
    let before = w.before().await;
    let fresh = w.handoff("agent:nosy", &w.alice(), &[]).await;
    let before_exchange = w.before().await;
    let r = w
        .exchange(
            "agent:bot",
            &fresh,
            &[
                ("actor_token", &tokens[0]),
                ("actor_token_type", ACCESS_TOKEN),
            ],
        )
        .await;
    w.assert_refused(&before_exchange, &r, "invalid_request")
        .await;
    assert_eq!(w.delegations().await, before.delegations + 2);
    // A new lineage for the same client is unaffected.
    let again = w.handoff("agent:bot", &w.alice(), &[]).await;
    assert!(w.active(&again).await);
}

#[tokio::test]
async fn dry_run_reports_the_blast_radius_and_changes_nothing() {
    let w = World::new().await;
    let tokens = chain(&w, &["agent:bot", "agent:helper", "service:search"]).await;
    let sibling = w.handoff("service:db", &tokens[0], &[]).await;
    let bot = payload(&tokens[0])["jti"].as_str().unwrap().to_owned();
    let head = w.h.audit_head().await;
    let r =
        w.h.post(
            &format!("/v1/delegations/{bot}/revoke"),
            json!({"dry_run": true}),
        )
        .await;
    let v = r.expect(200).clone();
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["root"], bot);
    let ids: Vec<&str> = v["delegations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(ids[0], bot, "parents first");
    for t in tokens.iter().chain([&sibling]) {
        assert!(ids.contains(&payload(t)["jti"].as_str().unwrap()));
    }
    assert_eq!(
        v["identities"],
        json!(["agent:bot", "agent:helper", "service:db", "service:search"])
    );
    assert_eq!(w.h.audit_head().await, head, "a dry run writes nothing");
    // An auditor may look but not touch.
    let (_, auditor) = w.h.admin_token("auditor").await;
    let path = format!("/v1/delegations/{bot}/revoke");
    let r =
        w.h.call(
            Method::POST,
            &path,
            Some(&auditor),
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_eq!(r.expect(200)["delegations"], v["delegations"]);
    w.h.call(
        Method::POST,
        &path,
        Some(&auditor),
        Some(json!({"dry_run": false})),
    )
    .await
    .assert_problem(403, "forbidden");
    for t in tokens.iter().chain([&sibling]) {
        assert!(w.active(t).await);
    }

    // The real thing takes exactly what the dry run reported.
    let r =
        w.h.post(
            &format!("/v1/delegations/{bot}/revoke"),
            json!({"dry_run": false}),
        )
        .await;
    assert_eq!(r.expect(200)["delegations"], v["delegations"]);
    for t in tokens.iter().chain([&sibling]) {
        assert!(!w.active(t).await);
    }
    // Nothing is left to take.
    let r =
        w.h.post(
            &format!("/v1/delegations/{bot}/revoke"),
            json!({"dry_run": true}),
        )
        .await;
    assert_eq!(r.expect(200)["delegations"], json!([]));
}

// ---- chain-aware decisions ---------------------------------------------------

#[tokio::test]
async fn chain_decision_allows_only_when_every_hop_allows() {
    let w = World::new().await;
    let good = chain(&w, &["agent:bot", "agent:helper"]).await;
    let v = w.decide("agent:helper", &good[1], "read").await;
    assert_eq!(v["decision"], true, "{v}");
    let hops = v["context"]["hops"].as_array().unwrap();
    let principals: Vec<&str> = hops
        .iter()
        .map(|h| h["principal"].as_str().unwrap())
        .collect();
    assert_eq!(principals, [ALICE, "agent:bot", "agent:helper"]);
    assert!(hops.iter().all(|h| h["decision"] == true), "{v}");

    // bot may hand to nosy, but nosy may do nothing: the last hop denies.
    let bad = w.handoff("agent:nosy", &good[0], &[]).await;
    let v = w.decide("agent:nosy", &bad, "read").await;
    assert_eq!(v["decision"], false, "{v}");
    let hops = v["context"]["hops"].as_array().unwrap();
    let verdicts: Vec<(&str, u64, bool)> = hops
        .iter()
        .map(|h| {
            (
                h["principal"].as_str().unwrap(),
                h["depth"].as_u64().unwrap(),
                h["decision"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            (ALICE, 0, true),
            ("agent:bot", 1, true),
            ("agent:nosy", 2, false)
        ]
    );
    assert_eq!(hops[2]["reasons"], json!(["no-nosy"]), "{v}");
    let last = w.h.engine.audit_tail(1).await.unwrap();
    assert_eq!(last[0].kind, "access.evaluate");
    let details: Value = serde_json::from_str(&last[0].details).unwrap();
    assert_eq!(details["lineage"], payload(&bad)["txn"]);
    assert!(!last[0].details.contains(&bad), "the token reached the log");
}

#[tokio::test]
async fn chain_decision_denies_actions_outside_the_scope() {
    let w = World::new().await;
    let t1 = w
        .handoff("agent:bot", &w.alice(), &[("scope", "read")])
        .await;
    assert_eq!(w.decide("agent:bot", &t1, "read").await["decision"], true);
    let v = w.decide("agent:bot", &t1, "write").await;
    assert_eq!(v["decision"], false, "{v}");
    let errors = v["context"]["errors"].to_string();
    assert!(errors.contains("outside the token's scope"), "{errors}");
    // A typed scope allows that action on that resource type only.
    let login = w
        .idp
        .token("alice@example.com", "Doc:read Ticket:write", w.h.now());
    let t2 = w.handoff("agent:helper", &login, &[]).await;
    assert_eq!(
        w.decide("agent:helper", &t2, "read").await["decision"],
        true
    );
    assert_eq!(
        w.decide("agent:helper", &t2, "write").await["decision"],
        false
    );
}

#[tokio::test]
async fn exchange_narrowing_an_action_to_one_resource_type_is_allowed() {
    let w = World::new().await;
    let t1 = w
        .handoff("agent:bot", &w.alice(), &[("scope", "read")])
        .await;
    let r = w
        .exchange("agent:helper", &t1, &[("scope", "Doc:read")])
        .await;
    assert_eq!(r.expect(200)["scope"], "Doc:read");
    let t2 = r.json["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        w.decide("agent:helper", &t2, "read").await["decision"],
        true
    );
}

#[tokio::test]
async fn chain_decision_requires_the_subject_to_be_the_current_actor() {
    let w = World::new().await;
    let tokens = chain(&w, &["agent:bot", "agent:helper"]).await;
    for subject in ["agent:bot", ALICE, "agent:nosy", "service:helper"] {
        let v = w.decide(subject, &tokens[1], "read").await;
        assert_eq!(v["decision"], false, "{subject}: {v}");
        let errors = v["context"]["errors"].to_string();
        assert!(errors.contains("current actor"), "{subject}: {errors}");
    }
    assert_eq!(
        w.decide("agent:helper", &tokens[1], "read").await["decision"],
        true
    );
    // A token the server did not sign decides nothing.
    let v = w.decide(ALICE, &w.alice(), "read").await;
    assert_eq!(v["decision"], false, "{v}");
}

#[tokio::test]
async fn chain_decision_denies_after_revocation() {
    let w = World::new().await;
    let tokens = chain(&w, &["agent:bot", "agent:helper"]).await;
    // Decide once so the chain is cached, then revoke above it.
    assert_eq!(
        w.decide("agent:helper", &tokens[1], "read").await["decision"],
        true
    );
    let bot = payload(&tokens[0])["jti"].as_str().unwrap().to_owned();
    w.h.post(
        &format!("/v1/delegations/{bot}/revoke"),
        json!({"dry_run": false}),
    )
    .await
    .expect(200);
    let v = w.decide("agent:helper", &tokens[1], "read").await;
    assert_eq!(v["decision"], false, "{v}");
    let errors = v["context"]["errors"].to_string();
    assert!(errors.contains("revoked"), "{errors}");
    assert_eq!(
        w.decide("agent:bot", &tokens[0], "read").await["decision"],
        false
    );
}
