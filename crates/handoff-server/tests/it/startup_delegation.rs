//! Start-up of the delegation settings over real sockets: trusted issuers'
//! keys read from files or fetched from URLs (a failure names the issuer
//! and leaves the data directory untouched), the signing key aligned with
//! the configured algorithm, and the settings recorded in `config.load`.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use handoff_core::{Clock, Scope, SystemClock};
use handoff_engine::jwt::{Algorithm, TokenKeys};
use handoff_server::config::{Config, DelegationConfig, JwksSource, TrustedIssuerConfig};
use handoff_server::serve::{ServeError, Server};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;

fn loopback_config(data_dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_owned(),
        ..Config::default()
    }
}

fn trusted(issuer: &str, jwks: JwksSource) -> TrustedIssuerConfig {
    TrustedIssuerConfig {
        issuer: issuer.to_owned(),
        jwks,
        audience: "https://handoff.example".to_owned(),
        subject_claim: "sub".to_owned(),
        scope_claim: "scope".to_owned(),
        default_scope: Scope::parse("doc:read").unwrap(),
        jwks_refresh: handoff_server::config::DEFAULT_JWKS_REFRESH,
    }
}

/// A valid JWKS document holding one public Ed25519 key.
fn jwks_document() -> String {
    let keys = TokenKeys::ephemeral(Algorithm::EdDSA, SystemClock.now()).unwrap();
    keys.jwks().to_string()
}

/// Serves `body` with `status` at `/jwks.json` on a loopback port.
async fn jwks_server(status: StatusCode, body: String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/jwks.json", get(move || async move { (status, body) }));
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// The details of the newest `config.load` record.
async fn config_load(engine: &handoff_engine::Engine) -> Value {
    let records = engine.audit_tail(20).await.unwrap();
    let record = records
        .iter()
        .rev()
        .find(|r| r.kind == "config.load")
        .expect("a config.load record");
    serde_json::from_str(&record.details).unwrap()
}

#[tokio::test]
async fn a_missing_jwks_file_stops_start_up_naming_the_issuer() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let missing = tmp.path().join("idp-jwks.json");
    let config = Config {
        trusted_issuers: vec![trusted(
            "https://idp.example",
            JwksSource::File(missing.clone()),
        )],
        ..loopback_config(&data)
    };
    let err = Server::start(config).await.unwrap_err();
    assert!(matches!(err, ServeError::TrustedIssuer { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "cannot load the keys of trusted issuer \"https://idp.example\": cannot read \"{}\": ",
            missing.display()
        )),
        "{msg}"
    );
    assert!(!data.exists(), "the data directory was not touched");
}

#[tokio::test]
async fn an_unusable_jwks_document_stops_start_up_naming_the_issuer() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("jwks.json");
    std::fs::write(&file, r#"{"keys": []}"#).unwrap();
    let config = Config {
        trusted_issuers: vec![trusted("https://idp.example", JwksSource::File(file))],
        ..loopback_config(&tmp.path().join("data"))
    };
    let msg = Server::start(config).await.unwrap_err().to_string();
    assert!(
        msg.starts_with("cannot load the keys of trusted issuer \"https://idp.example\": "),
        "{msg}"
    );
    assert!(msg.contains("no usable signing key"), "{msg}");
}

#[tokio::test]
async fn a_jwks_url_that_fails_stops_start_up_naming_the_issuer() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = jwks_server(StatusCode::NOT_FOUND, String::new()).await;
    let url = format!("http://{addr}/jwks.json");
    let config = Config {
        trusted_issuers: vec![trusted(
            "https://login.example",
            JwksSource::Url(url.clone()),
        )],
        ..loopback_config(&tmp.path().join("data"))
    };
    let msg = Server::start(config).await.unwrap_err().to_string();
    assert_eq!(
        msg,
        format!(
            "cannot load the keys of trusted issuer \"https://login.example\": fetching \"{url}\" answered 404 Not Found"
        )
    );

    // Nothing listens on a closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", closed.local_addr().unwrap());
    drop(closed);
    let config = Config {
        trusted_issuers: vec![trusted(
            "https://login.example",
            JwksSource::Url(url.clone()),
        )],
        ..loopback_config(&tmp.path().join("data"))
    };
    let msg = Server::start(config).await.unwrap_err().to_string();
    assert!(
        msg.starts_with(&format!(
            "cannot load the keys of trusted issuer \"https://login.example\": cannot fetch \"{url}\": "
        )),
        "{msg}"
    );
}

#[tokio::test]
async fn a_jwks_document_over_one_mebibyte_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = jwks_server(StatusCode::OK, " ".repeat(1024 * 1024 + 1)).await;
    let url = format!("http://{addr}/jwks.json");
    let config = Config {
        trusted_issuers: vec![trusted("https://big.example", JwksSource::Url(url.clone()))],
        ..loopback_config(&tmp.path().join("data"))
    };
    let msg = Server::start(config).await.unwrap_err().to_string();
    assert_eq!(
        msg,
        format!(
            "cannot load the keys of trusted issuer \"https://big.example\": the document at \"{url}\" is larger than 1 MiB"
        )
    );
}

#[tokio::test]
async fn start_up_configures_delegation_and_records_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = tmp.path().join("idp.json");
    std::fs::write(&file, jwks_document()).unwrap();
    let addr = jwks_server(StatusCode::OK, jwks_document()).await;
    let config = Config {
        public_url: Some("https://handoff.example".into()),
        delegation: DelegationConfig {
            max_depth: 2,
            max_lifetime: Duration::from_secs(600),
            default_lifetime: Duration::from_secs(300),
            max_fan_out: 7,
            signing_algorithm: Algorithm::ES256,
            dev: true,
        },
        trusted_issuers: vec![
            trusted("https://idp.example", JwksSource::File(file)),
            trusted(
                "https://login.example",
                JwksSource::Url(format!("http://{addr}/jwks.json")),
            ),
        ],
        ..loopback_config(&data)
    };

    let server = Server::start(config.clone()).await.unwrap();
    let local = server.local_addr();
    let engine = server.engine().clone();
    let settings = engine.delegation_settings();
    assert_eq!(settings.issuer, "https://handoff.example");
    assert!(settings.dev);
    assert_eq!(settings.limits, config.delegation.limits());
    let issuers: Vec<&str> = settings
        .trusted
        .iter()
        .map(|t| t.verifier.issuer.as_str())
        .collect();
    assert_eq!(issuers, ["https://idp.example", "https://login.example"]);
    assert_eq!(settings.trusted[0].default_scope.to_string(), "doc:read");
    // A fresh data directory starts with an EdDSA key; ES256 was configured.
    assert_eq!(engine.keys().tokens().algorithm(), Algorithm::ES256);

    let details = config_load(&engine).await;
    assert_eq!(details["issuer"], "https://handoff.example");
    assert_eq!(details["delegation"]["max_depth"], 2);
    assert_eq!(details["delegation"]["max_lifetime_seconds"], 600);
    assert_eq!(details["delegation"]["default_lifetime_seconds"], 300);
    assert_eq!(details["delegation"]["max_fan_out"], 7);
    assert_eq!(details["delegation"]["signing_algorithm"], "ES256");
    assert_eq!(details["delegation"]["dev"], true);
    assert_eq!(
        details["trusted_issuers"],
        serde_json::json!(["https://idp.example", "https://login.example"])
    );
    assert!(details["signing_key_rotated"].is_string(), "{details}");

    // The AuthZEN metadata advertises the same base as the issuer.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve_until(async {
        let _ = stopped.await;
    }));
    let metadata: Value = reqwest::get(format!("http://{local}/.well-known/authzen-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["policy_decision_point"], "https://handoff.example");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    drop(engine);

    // A second start with the same algorithm does not rotate again.
    let server = Server::start(config).await.unwrap();
    let engine = server.engine().clone();
    assert_eq!(engine.keys().tokens().algorithm(), Algorithm::ES256);
    let details = config_load(&engine).await;
    assert!(details["signing_key_rotated"].is_null(), "{details}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve_until(async {
        let _ = stopped.await;
    }));
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn without_a_public_url_the_issuer_is_the_bound_address() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(loopback_config(&tmp.path().join("data")))
        .await
        .unwrap();
    let local = server.local_addr();
    let engine = server.engine().clone();
    let issuer = format!("http://{local}");
    assert_eq!(engine.delegation_settings().issuer, issuer);
    assert!(!engine.delegation_settings().dev);
    assert_eq!(engine.keys().tokens().algorithm(), Algorithm::EdDSA);
    let details = config_load(&engine).await;
    assert_eq!(details["issuer"], issuer);
    assert_eq!(details["trusted_issuers"], serde_json::json!([]));
    assert!(details["signing_key_rotated"].is_null(), "{details}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve_until(async {
        let _ = stopped.await;
    }));
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}

/// A `jwks_url` is fetched again every `jwks_refresh` while the server runs.
#[tokio::test]
async fn a_jwks_url_is_fetched_again_while_the_server_runs() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let document = jwks_document();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route(
        "/jwks.json",
        get(move || {
            let counted = counted.clone();
            let document = document.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                document
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    let mut issuer = trusted(
        "https://login.example",
        JwksSource::Url(format!("http://{addr}/jwks.json")),
    );
    issuer.jwks_refresh = Duration::from_millis(200);
    let config = Config {
        trusted_issuers: vec![issuer],
        ..loopback_config(&tmp.path().join("data"))
    };
    let server = Server::start(config).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1, "fetched once at start-up");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.serve_until(async move {
        stopped.await.ok();
    }));
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(hits.load(Ordering::SeqCst) >= 3, "refreshed while running");
    stop.send(()).unwrap();
    running.await.unwrap();
    let after = hits.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        after,
        "no refresh after shutdown"
    );
}
