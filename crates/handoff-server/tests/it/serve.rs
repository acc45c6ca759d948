//! The server runtime over real sockets: start-up over plain HTTP and TLS,
//! and graceful shutdown.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions should fail loudly"
)]

use axum::Router;
use axum::routing::get;
use handoff_server::config::{Config, TlsFiles};
use handoff_server::serve::{Server, serve};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

fn loopback_config(data_dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_owned(),
        ..Config::default()
    }
}

/// A running `Server` and the way to stop it.
struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    async fn start(config: Config) -> (Self, handoff_engine::Engine) {
        let server = Server::start(config).await.unwrap();
        let addr = server.local_addr();
        let engine = server.engine().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve_until(async {
            let _ = stopped.await;
        }));
        (Self { addr, stop, task }, engine)
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the server stops")
            .unwrap();
    }
}

#[tokio::test]
async fn plain_http_server_answers_healthz_and_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (server, engine) = Running::start(loopback_config(&data)).await;

    let response = reqwest::get(format!("http://{}/healthz", server.addr))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Start-up wrote the bootstrap token and recorded the configuration.
    assert!(data.join("admin-token").exists());
    let records = engine.audit_tail(10).await.unwrap();
    let config_load = records
        .iter()
        .find(|r| r.kind == "config.load")
        .expect("a config.load record");
    let details: serde_json::Value = serde_json::from_str(&config_load.details).unwrap();
    assert_eq!(details["listen"], server.addr.to_string());
    assert_eq!(details["tls"], false);
    assert_eq!(details["checkpoint_every"], 1000);
    assert_eq!(config_load.actor, "system");

    server.stop().await;

    // Stopping flushed the queue and signed a final checkpoint.
    let report =
        handoff_engine::audit::verify_data_dir(&handoff_engine::data_dir::DataDir::new(&data))
            .await
            .unwrap();
    assert!(report.records >= 2, "{report:?}");
    assert_eq!(report.last_checkpoint, Some(report.last_seq));
}

#[tokio::test]
async fn a_second_start_does_not_write_another_bootstrap_token() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, _) = Running::start(loopback_config(tmp.path())).await;
    server.stop().await;
    let token = std::fs::read_to_string(tmp.path().join("admin-token")).unwrap();

    let (server, engine) = Running::start(loopback_config(tmp.path())).await;
    server.stop().await;
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("admin-token")).unwrap(),
        token
    );
    drop(engine);
    let reader = handoff_store::sqlite::SqliteStore::open_read_only(&tmp.path().join("handoff.db"))
        .await
        .unwrap();
    let loads = handoff_store::Store::audit_tail(&reader, 100)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.kind == "config.load")
        .count();
    assert_eq!(loads, 2);
}

#[tokio::test]
async fn a_taken_port_is_reported_before_the_data_directory_is_touched() {
    let tmp = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let data = tmp.path().join("data");
    let config = Config {
        listen: taken.local_addr().unwrap(),
        ..loopback_config(&data)
    };
    let err = Server::start(config).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "cannot listen on \"{}\"",
            taken.local_addr().unwrap()
        )),
        "{msg}"
    );
    assert!(!data.exists());
}

/// Writes a self-signed certificate for `localhost` and its key into `dir`.
fn self_signed(dir: &Path) -> (TlsFiles, rcgen::Certificate) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    (files, cert)
}

#[tokio::test]
async fn tls_server_answers_healthz() {
    let tmp = tempfile::tempdir().unwrap();
    let (files, cert) = self_signed(tmp.path());
    let config = Config {
        tls: Some(files),
        ..loopback_config(&tmp.path().join("data"))
    };
    let (server, engine) = Running::start(config).await;

    let root = reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([root])
        .resolve("localhost", server.addr)
        .build()
        .unwrap();
    let response = client
        .get(format!("https://localhost:{}/healthz", server.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::get(format!("http://{}/healthz", server.addr)).await;
    assert!(plain.is_err(), "{plain:?}");

    let records = engine.audit_tail(10).await.unwrap();
    let config_load = records.iter().find(|r| r.kind == "config.load").unwrap();
    assert!(
        config_load.details.contains("\"tls\":true"),
        "{}",
        config_load.details
    );

    // A client that connects and never starts the handshake does not hold up shutdown.
    let _silent = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let signalled = Instant::now();
    server.stop().await;
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "{:?}",
        signalled.elapsed()
    );
}

#[tokio::test]
async fn tls_negotiates_http2_by_alpn() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let tmp = tempfile::tempdir().unwrap();
    let (files, cert) = self_signed(tmp.path());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = handoff_server::tls::acceptor(&files).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        Some(acceptor),
        slow_router(Duration::ZERO),
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));

    // RFC 9113 §3.4: client preface and an empty SETTINGS frame; the
    // server's first frame is its SETTINGS (type 0x4).
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    tls.write_all(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]).await.unwrap();
    let mut header = [0_u8; 9];
    tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut header))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(header[3], 0x4, "first frame {header:?}");

    // This client would not answer the GOAWAY ping of a graceful shutdown.
    drop(tls);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

/// A router with a slow route, for shutdown tests.
fn slow_router(delay: Duration) -> Router {
    Router::new()
        .route("/fast", get(|| async { "fast" }))
        .route(
            "/slow",
            get(move || async move {
                tokio::time::sleep(delay).await;
                "done"
            }),
        )
}

/// Serves `router` over plain HTTP on a loopback port until the sender fires.
async fn serve_plain(
    router: Router,
    grace: Duration,
) -> (SocketAddr, oneshot::Sender<()>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        None,
        router,
        async {
            let _ = stopped.await;
        },
        grace,
    ));
    (addr, stop, task)
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish_and_refuses_new_connections() {
    let (addr, stop, task) = serve_plain(
        slow_router(Duration::from_millis(500)),
        Duration::from_secs(10),
    )
    .await;

    let in_flight = tokio::spawn(reqwest::get(format!("http://{addr}/slow")));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let signalled = Instant::now();
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let refused = TcpStream::connect(addr).await;
    assert!(
        refused.is_err(),
        "a new connection after the signal was accepted"
    );

    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done");

    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("serve returns once drained")
        .unwrap();
    assert!(signalled.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn idle_keep_alive_connections_do_not_delay_shutdown() {
    let (addr, stop, task) =
        serve_plain(slow_router(Duration::ZERO), Duration::from_secs(30)).await;
    let client = reqwest::Client::new();
    let response = client
        .get(format!("http://{addr}/fast"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "fast");
    // An open connection that has not sent a byte yet must not hold it up either.
    let _silent = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let signalled = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("serve returns without waiting for idle connections")
        .unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "{:?}",
        signalled.elapsed()
    );
    drop(client);
}

#[tokio::test]
async fn the_grace_period_bounds_the_drain() {
    let (addr, stop, task) = serve_plain(
        slow_router(Duration::from_secs(60)),
        Duration::from_millis(300),
    )
    .await;
    let in_flight = tokio::spawn(reqwest::get(format!("http://{addr}/slow")));
    tokio::time::sleep(Duration::from_millis(150)).await;

    let signalled = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("serve gives up after the grace period")
        .unwrap();
    let waited = signalled.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    // The request that outlived the grace period was cut off.
    assert!(in_flight.await.unwrap().is_err());
}

/// The AuthZEN certification example pack shipped in `examples/`.
fn example_pack() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/authzen-certification")
}

#[tokio::test]
async fn a_configured_policy_pack_is_pushed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Config {
        policy_pack: Some(example_pack()),
        ..loopback_config(tmp.path())
    };
    let (server, engine) = Running::start(config.clone()).await;
    assert_eq!(engine.active_policy(), Some(1));
    assert!(engine.pdp().is_some());
    server.stop().await;

    // The same pack again: no new version.
    let (server, engine) = Running::start(config).await;
    let (versions, active) = engine.policy_versions().await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(active, Some(1));
    assert_eq!(versions.first().unwrap().created_by, "system");
    server.stop().await;
}

#[tokio::test]
async fn a_changed_policy_pack_becomes_a_new_version() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = tmp.path().join("pack");
    std::fs::create_dir(&pack).unwrap();
    for entry in std::fs::read_dir(example_pack()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), pack.join(entry.file_name())).unwrap();
    }
    let config = Config {
        policy_pack: Some(pack.clone()),
        ..loopback_config(&tmp.path().join("data"))
    };
    let (server, _) = Running::start(config.clone()).await;
    server.stop().await;

    let policies = pack.join("policies.cedar");
    let mut text = std::fs::read_to_string(&policies).unwrap();
    text.push_str("\n// a comment changes the pack\n");
    std::fs::write(&policies, text).unwrap();
    let (server, engine) = Running::start(config).await;
    let (versions, active) = engine.policy_versions().await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(active, Some(2));
    server.stop().await;
}

#[tokio::test]
async fn a_bad_policy_pack_stops_start_up_with_every_diagnostic() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = tmp.path().join("pack");
    std::fs::create_dir(&pack).unwrap();
    std::fs::write(
        pack.join("a.cedar"),
        "permit(principal, action, resource)\n",
    )
    .unwrap();
    std::fs::write(pack.join("b.cedar"), "forbid(principal, action;\n").unwrap();
    let data = tmp.path().join("data");
    let config = Config {
        policy_pack: Some(pack.clone()),
        ..loopback_config(&data)
    };
    let err = Server::start(config).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "the policy pack \"{}\" is invalid:\n",
            pack.display()
        )),
        "{msg}"
    );
    let lines: Vec<&str> = msg.lines().skip(1).collect();
    assert!(lines.len() >= 2, "{msg}");
    let line = regex::Regex::new(r"^[ab]\.cedar:\d+:\d+: \S").unwrap();
    for l in &lines {
        assert!(line.is_match(l), "{l}");
    }
    assert!(lines.iter().any(|l| l.starts_with("a.cedar:")), "{msg}");
    assert!(lines.iter().any(|l| l.starts_with("b.cedar:")), "{msg}");
    // Nothing was touched.
    assert!(!data.exists());
}

#[tokio::test]
async fn a_missing_policy_pack_directory_stops_start_up() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = Config {
        policy_pack: Some(tmp.path().join("nowhere")),
        ..loopback_config(&data)
    };
    let msg = Server::start(config).await.unwrap_err().to_string();
    assert!(msg.starts_with("cannot read the policy pack \""), "{msg}");
    assert!(!data.exists());
}

/// `POST /access/v1/evaluation` with no token; the status it got.
async fn anonymous_evaluation(addr: SocketAddr) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{addr}/access/v1/evaluation"))
        .json(&serde_json::json!({
            "subject": {"type": "user", "id": "alice"},
            "action": {"name": "read"},
            "resource": {"type": "record", "id": "record-1"}
        }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_decision_point_needs_a_token_unless_configured_open() {
    let tmp = tempfile::tempdir().unwrap();
    let closed = Config {
        policy_pack: Some(example_pack()),
        ..loopback_config(tmp.path())
    };
    let (server, _) = Running::start(closed.clone()).await;
    assert_eq!(anonymous_evaluation(server.addr).await, 401);
    server.stop().await;

    let open = Config {
        pdp_allow_unauthenticated: true,
        ..closed
    };
    let (server, _) = Running::start(open).await;
    assert_eq!(anonymous_evaluation(server.addr).await, 200);
    server.stop().await;
}
