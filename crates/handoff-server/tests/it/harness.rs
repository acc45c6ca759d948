//! A router over a fresh engine in a temporary data directory, called with
//! `oneshot` (no socket), and helpers to read its answers.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use chrono::{TimeDelta, TimeZone, Utc};
use handoff_core::FixedClock;
use handoff_engine::data_dir::DataDir;
use handoff_engine::{AppenderSettings, Engine};
use handoff_server::{AppState, app};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// One server under test.
pub(crate) struct Harness {
    /// The router.
    pub(crate) app: Router,
    /// The engine behind it.
    pub(crate) engine: Engine,
    /// Its clock, to move time forward.
    pub(crate) clock: Arc<FixedClock>,
    /// The bootstrap admin token.
    pub(crate) token: String,
    _dir: tempfile::TempDir,
    _schema: Option<Schema>,
}

/// The backend the suite runs on: `HANDOFF_TEST_BACKEND=postgres` runs every
/// test on its own schema of the PostgreSQL server at
/// `HANDOFF_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
/// as a node of a shared database (keys sealed in it, change feed followed);
/// anything else (the default) on a fresh SQLite data directory.
fn postgres_url() -> Option<String> {
    match std::env::var("HANDOFF_TEST_BACKEND").as_deref() {
        Ok("postgres") => Some(
            std::env::var("HANDOFF_TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
        ),
        Ok("sqlite") | Err(_) => None,
        Ok(other) => panic!("HANDOFF_TEST_BACKEND must be sqlite or postgres, not {other}"),
    }
}

/// A test's own PostgreSQL schema, dropped with the harness.
pub(crate) struct Schema {
    url: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = rt.block_on(handoff_store::postgres::drop_schema(&url, &name));
        })
        .join();
    }
}

/// An engine on the backend the suite runs on, with its data directory.
pub(crate) async fn open_engine(
    data: &DataDir,
    clock: Arc<FixedClock>,
) -> (Engine, Option<Schema>) {
    let Some(url) = postgres_url() else {
        let engine = Engine::open(data, clock, AppenderSettings::default())
            .await
            .unwrap();
        return (engine, None);
    };
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // A random name (RandomState is seeded per process and per call).
    use std::hash::BuildHasher as _;
    let random = std::collections::hash_map::RandomState::new()
        .hash_one(COUNTER.fetch_add(1, Ordering::Relaxed));
    let name = format!("srv_{}_{random:016x}", std::process::id());
    let store = handoff_store::postgres::PgStore::open_in_schema(&url, &name)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "HANDOFF_TEST_BACKEND=postgres but PostgreSQL at {url} is unusable: {e}; \
                 .ci/run starts it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
            )
        });
    let master = handoff_engine::master_key::MasterKey::parse(
        &handoff_engine::master_key::MasterKey::generate_text().unwrap(),
    )
    .unwrap();
    let engine = Engine::start_shared(
        Arc::new(store),
        master,
        handoff_engine::jwt::Algorithm::EdDSA,
        clock,
        AppenderSettings::default(),
    )
    .await
    .unwrap();
    (engine, Some(Schema { url, name }))
}

/// A response, read whole.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
    pub(crate) json: Value,
}

impl Reply {
    /// Asserts a problem+json answer of `status` and `code`.
    #[track_caller]
    pub(crate) fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(
            self.headers[header::CONTENT_TYPE],
            "application/problem+json",
            "{}",
            self.text
        );
        assert_eq!(
            self.json["type"],
            format!("urn:handoff:problem:{code}"),
            "{}",
            self.text
        );
        assert_eq!(self.json["status"], status);
        assert!(self.json["title"].is_string());
        assert!(!self.json["detail"].as_str().unwrap().is_empty());
    }

    /// Asserts `status` and returns the JSON body.
    #[track_caller]
    pub(crate) fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        &self.json
    }
}

impl Harness {
    /// A server with the default timeout and metrics on.
    pub(crate) async fn new() -> Self {
        Self::with_timeout(Duration::from_secs(30)).await
    }

    /// A server whose requests time out after `timeout`.
    pub(crate) async fn with_timeout(timeout: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let start = Utc.with_ymd_and_hms(2026, 11, 22, 17, 0, 0).unwrap();
        let clock = Arc::new(FixedClock::new(start));
        let (engine, schema) = open_engine(&data, clock.clone()).await;
        let path = engine.bootstrap(&data).await.unwrap().unwrap();
        let token = std::fs::read_to_string(path).unwrap().trim().to_owned();
        let state = AppState::new(engine.clone())
            .with_metrics(handoff_server::metrics::install())
            .with_request_timeout(timeout);
        Self {
            app: app(state),
            engine,
            clock,
            token,
            _dir: dir,
            _schema: schema,
        }
    }

    /// Moves the clock forward.
    pub(crate) fn advance(&self, seconds: i64) {
        self.clock.advance(TimeDelta::seconds(seconds));
    }

    /// Sends a request as is.
    pub(crate) async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    /// A request with `token` (if any) and a JSON `body` (if any).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    /// `GET` with the admin token.
    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, Some(&self.token), None).await
    }

    /// `POST` of `body` with the admin token.
    pub(crate) async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(&self.token), Some(body))
            .await
    }

    /// `POST` without a body, with the admin token.
    pub(crate) async fn post_empty(&self, path: &str) -> Reply {
        self.call(Method::POST, path, Some(&self.token), None).await
    }

    /// `PATCH` of `body` with the admin token.
    pub(crate) async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(&self.token), Some(body))
            .await
    }

    /// `GET /v1/whoami` with `secret`.
    pub(crate) async fn whoami(&self, secret: &str) -> Reply {
        self.call(Method::GET, "/v1/whoami", Some(secret), None)
            .await
    }

    /// The last audit sequence number (0 for an empty log).
    pub(crate) async fn audit_head(&self) -> u64 {
        self.engine
            .audit_tail(1)
            .await
            .unwrap()
            .last()
            .map_or(0, |r| r.seq)
    }

    /// Creates a human.
    pub(crate) async fn human(&self, name: &str) -> Value {
        self.post("/v1/identities", json!({"id": format!("human:{name}")}))
            .await
            .expect(201)
            .clone()
    }

    /// Creates an agent or service `id` owned by human `owner`.
    pub(crate) async fn owned(&self, id: &str, owner: &str) -> Value {
        self.post(
            "/v1/identities",
            json!({"id": id, "owner": format!("human:{owner}")}),
        )
        .await
        .expect(201)
        .clone()
    }

    /// Sets the status of `id`, expecting success.
    pub(crate) async fn set_status(&self, id: &str, status: &str) {
        self.post(
            &format!("/v1/identities/{}/status", enc(id)),
            json!({"status": status}),
        )
        .await
        .expect(200);
    }

    /// Issues a credential to `id`; returns (credential id, secret).
    pub(crate) async fn issue(&self, id: &str, body: Value) -> (String, String) {
        let r = self
            .post(&format!("/v1/identities/{}/credentials", enc(id)), body)
            .await;
        let v = r.expect(201);
        (
            v["credential"]["id"].as_str().unwrap().to_owned(),
            v["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates an admin token of `role`; returns (token id, secret).
    pub(crate) async fn admin_token(&self, role: &str) -> (String, String) {
        let r = self
            .post(
                "/v1/admin-tokens",
                json!({"name": format!("{role}-token"), "role": role}),
            )
            .await;
        let v = r.expect(201);
        (
            v["token"]["id"].as_str().unwrap().to_owned(),
            v["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// Asserts that `id` does not exist.
    pub(crate) async fn assert_absent(&self, id: &str) {
        self.get(&format!("/v1/identities/{}", enc(id)))
            .await
            .assert_problem(404, "not-found");
    }
}

/// Percent-encodes an id for a path, as clients do.
pub(crate) fn enc(id: &str) -> String {
    id.replace(':', "%3A")
        .replace('@', "%40")
        .replace('+', "%2B")
}

/// The issuer of the delegating server's tokens.
pub(crate) const ISSUER: &str = "http://handoff.test";
/// The trusted identity provider's issuer.
pub(crate) const IDP_ISSUER: &str = "https://idp.test";
/// The audience the trusted identity provider's tokens must name.
pub(crate) const IDP_AUDIENCE: &str = "handoff";
/// The key id of the identity provider's signing key.
pub(crate) const IDP_KID: &str = "idp-1";

/// A test identity provider: an ES256 key pair whose public half the
/// delegating server trusts, signing whatever header and claims a test
/// wants (expired, not yet valid, wrong audience, unknown key id...).
pub(crate) struct Idp {
    /// The private key, PKCS#8 DER.
    pkcs8: Vec<u8>,
    /// The public key, an uncompressed P-256 point.
    public: Vec<u8>,
}

impl Idp {
    /// A fresh key pair.
    pub(crate) fn new() -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        Self {
            pkcs8: pair.serialize_der(),
            public: pair.public_key_raw().to_vec(),
        }
    }

    /// The public key as an uncompressed P-256 point.
    pub(crate) fn public_key(&self) -> &[u8] {
        &self.public
    }

    /// The public JWK under `kid`.
    pub(crate) fn jwk(&self, kid: &str) -> Value {
        use base64::Engine as _;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": b64(self.public.get(1..33).unwrap()),
            "y": b64(self.public.get(33..65).unwrap()),
        })
    }

    /// The JWKS document the server is configured with.
    pub(crate) fn jwks(&self) -> String {
        json!({ "keys": [self.jwk(IDP_KID)] }).to_string()
    }

    /// Signs `claims` under `header` (which must name ES256).
    pub(crate) fn sign(&self, header: &jsonwebtoken::Header, claims: &Value) -> String {
        let key = jsonwebtoken::EncodingKey::from_ec_der(&self.pkcs8);
        jsonwebtoken::encode(header, claims, &key).unwrap()
    }

    /// The ES256 header under `kid`.
    pub(crate) fn header(kid: &str) -> jsonwebtoken::Header {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        header
    }

    /// Valid claims for `sub` with `scope`, issued at `now` for ten minutes.
    pub(crate) fn claims(sub: &str, scope: &str, now: i64) -> Value {
        json!({
            "iss": IDP_ISSUER, "aud": IDP_AUDIENCE, "sub": sub, "scope": scope,
            "iat": now, "exp": now + 600, "jti": format!("idp-{sub}-{now}"),
        })
    }

    /// A valid token for `sub` with `scope`, issued at `now`.
    pub(crate) fn token(&self, sub: &str, scope: &str, now: i64) -> String {
        self.sign(&Self::header(IDP_KID), &Self::claims(sub, scope, now))
    }
}

impl Harness {
    /// A server that issues delegation tokens as [`ISSUER`] (with the
    /// development issuer on) and trusts [`IDP_ISSUER`], whose signer is
    /// returned alongside.
    pub(crate) async fn delegating() -> (Self, Idp) {
        let idp = Idp::new();
        let verifier = handoff_engine::jwt::TrustedIssuer::from_jwks_json(
            IDP_ISSUER.into(),
            IDP_AUDIENCE.into(),
            String::new(),
            String::new(),
            &idp.jwks(),
        )
        .unwrap();
        let settings = handoff_engine::DelegationSettings {
            issuer: ISSUER.into(),
            limits: handoff_core::Limits::default(),
            trusted: vec![handoff_engine::Trusted {
                verifier,
                default_scope: handoff_core::Scope::parse("read").unwrap(),
            }],
            dev: true,
        };
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let start = Utc.with_ymd_and_hms(2026, 11, 22, 17, 0, 0).unwrap();
        let clock = Arc::new(FixedClock::new(start));
        let (engine, schema) = open_engine(&data, clock.clone()).await;
        let engine = engine.with_delegation(settings);
        let path = engine.bootstrap(&data).await.unwrap().unwrap();
        let token = std::fs::read_to_string(path).unwrap().trim().to_owned();
        let state = AppState::new(engine.clone());
        let h = Self {
            app: app(state),
            engine,
            clock,
            token,
            _dir: dir,
            _schema: schema,
        };
        (h, idp)
    }

    /// Pushes a pack that lets any identity hand over to any other
    /// (`delegate`), and nothing else.
    pub(crate) async fn allow_delegation(&self) {
        let pack = json!({"files": {
            "schema.cedarschema": "action delegate appliesTo { principal: [Human, Agent, Service], resource: [Human, Agent, Service] };",
            "policies.cedar": "permit(principal, action == Action::\"delegate\", resource);",
        }});
        self.call(Method::PUT, "/v1/policies", Some(&self.token), Some(pack))
            .await
            .expect(201);
    }

    /// The clock's time in seconds since the epoch.
    pub(crate) fn now(&self) -> i64 {
        use handoff_core::Clock as _;
        self.clock.now().timestamp()
    }

    /// A form-urlencoded `POST` with optional HTTP Basic client credentials
    /// (`id:secret`, not percent-encoded, as many clients send them) and
    /// optional bearer token.
    pub(crate) async fn form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        bearer: Option<&str>,
        params: &[(&str, &str)],
    ) -> Reply {
        use base64::Engine as _;
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
            req = req.header(header::AUTHORIZATION, format!("Basic {encoded}"));
        }
        if let Some(t) = bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        self.send(req.body(Body::from(body)).unwrap()).await
    }
}
