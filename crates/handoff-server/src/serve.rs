//! The server's runtime: start-up (trusted issuers' keys, data directory,
//! engine and its delegation settings, bootstrap token, configuration audit
//! record, the configured policy pack), the accept loop over plain HTTP or
//! TLS, and graceful shutdown.
//!
//! One code path serves both schemes: every accepted connection gets its
//! own task, which does the TLS handshake (time-limited) when configured and
//! then serves HTTP/1.1 or HTTP/2 through hyper's auto builder. On the
//! shutdown signal the listener is closed at once (new connections are
//! refused), in-flight requests get up to the grace period to finish, and
//! then the engine flushes the audit queue and writes a final checkpoint.
//!
//! It does not set up logging (the CLI does) and holds no handlers (see
//! [`crate::api`]).

use crate::api::{self, AppState};
use crate::config::{Config, ConfigError, DatabaseConfig, JwksSource, TrustedIssuerConfig};
use crate::tls::{self, TlsError};
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use handoff_core::SystemClock;
use handoff_engine::data_dir::DataDir;
use handoff_engine::jwt::TrustedIssuer;
use handoff_engine::{Admin, DelegationSettings, Engine, EngineError, Trusted};
use handoff_policy::{Diagnostic, PackError, PackFiles};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Longest time a client may take to complete the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest time a client may take to send the first byte of a connection
/// and then each HTTP/1 request head (slow-client protection).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Interval of HTTP/2 keep-alive pings; a peer that does not answer one
/// within [`H2_KEEP_ALIVE_TIMEOUT`] is disconnected.
const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Longest time fetching one trusted issuer's JWKS document may take.
pub const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest JWKS document read from a file or a URL.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Most redirects followed when fetching a JWKS document.
const MAX_JWKS_REDIRECTS: usize = 5;

/// Pause after a failed accept (usually out of file descriptors), so the
/// loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration breaks a rule.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The listen address cannot be bound.
    #[error("cannot listen on \"{addr}\": {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The IO error.
        error: io::Error,
    },
    /// The data directory cannot be created.
    #[error("cannot create the data directory \"{}\": {error}", .path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        error: EngineError,
    },
    /// The keys, database or audit appender cannot be opened.
    #[error("cannot start the engine: {0}")]
    Engine(EngineError),
    /// A shared database's master key is missing or unusable.
    #[error("master key: {0}")]
    MasterKey(String),
    /// The bootstrap admin token cannot be created.
    #[error("cannot create the bootstrap admin token: {0}")]
    Bootstrap(EngineError),
    /// The start-up configuration cannot be recorded (fail-closed).
    #[error("cannot record the configuration in the audit log: {0}")]
    Audit(EngineError),
    /// The shutdown signal handlers cannot be installed.
    #[error("cannot listen for shutdown signals: {0}")]
    Signal(io::Error),
    /// The configured policy pack directory cannot be read.
    #[error("cannot read the policy pack \"{}\": {error}", .dir.display())]
    PolicyPackRead {
        /// The pack directory.
        dir: PathBuf,
        /// What went wrong.
        error: PackError,
    },
    /// The configured policy pack does not compile; nothing was changed.
    #[error(
        "the policy pack \"{}\" is invalid:\n{}",
        .dir.display(),
        DiagnosticList(.diagnostics)
    )]
    InvalidPolicyPack {
        /// The pack directory.
        dir: PathBuf,
        /// Every problem, each shown as `file:line:column: message`.
        diagnostics: Vec<Diagnostic>,
    },
    /// The configured policy pack could not be stored.
    #[error("cannot push the policy pack \"{}\": {error}", .dir.display())]
    PolicyPush {
        /// The pack directory.
        dir: PathBuf,
        /// What went wrong.
        error: EngineError,
    },
    /// A trusted issuer's keys cannot be read, fetched or used.
    #[error("cannot load the keys of trusted issuer \"{issuer}\": {message}")]
    TrustedIssuer {
        /// The issuer.
        issuer: String,
        /// What went wrong.
        message: String,
    },
    /// The token signing key cannot be changed to the configured algorithm.
    #[error("cannot rotate the token signing key to {algorithm}: {error}")]
    SigningKey {
        /// The configured algorithm.
        algorithm: handoff_engine::jwt::Algorithm,
        /// What went wrong.
        error: EngineError,
    },
}

/// Diagnostics shown one per line, as `file:line:column: message`.
struct DiagnosticList<'a>(&'a [Diagnostic]);

impl std::fmt::Display for DiagnosticList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Runs `handoff serve` until SIGTERM or Ctrl-C (SIGINT), then drains and stops.
pub async fn run(config: Config) -> Result<(), ServeError> {
    let signal = shutdown_signal()?;
    Server::start(config).await?.serve_until(signal).await;
    Ok(())
}

/// A started server: engine open, configuration recorded, listener bound,
/// not yet accepting.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: Router,
    engine: Engine,
    grace: Duration,
    /// Tasks fetching `jwks_url`s again; stopped at shutdown.
    refreshers: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Validates `config`, loads TLS and the trusted issuers' keys, binds
    /// the listener, opens the data directory and engine (with the
    /// delegation settings, rotating the signing key when its algorithm is
    /// not the configured one), writes the bootstrap admin token on a fresh
    /// store and records the configuration in the audit log.
    pub async fn start(config: Config) -> Result<Self, ServeError> {
        config.validate()?;
        // Fail on a bad pack, a bad certificate, unusable issuer keys or a
        // taken port before touching the data directory.
        let pack = config.policy_pack.as_deref().map(load_pack).transpose()?;
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let trusted = load_trusted_issuers(&config.trusted_issuers).await?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|error| ServeError::Bind {
                    addr: config.listen,
                    error,
                })?;
        let local_addr = listener.local_addr().map_err(|error| ServeError::Bind {
            addr: config.listen,
            error,
        })?;

        let issuer = config.issuer(local_addr);
        let settings = delegation_settings(&config, issuer.clone(), trusted)?;

        let dir = DataDir::new(&config.data_dir);
        dir.create().map_err(|error| ServeError::DataDir {
            path: config.data_dir.clone(),
            error,
        })?;
        // INVARIANT: every clone of the engine (router state, `Server`) is
        // taken from this configured one.
        let engine = open_engine(&config, &dir).await?.with_delegation(settings);
        if let Err(e) = prepare(&engine, &dir, &config, local_addr, &issuer).await {
            engine.shutdown().await;
            return Err(e);
        }
        if let Some((pack_dir, pack)) = config.policy_pack.as_deref().zip(pack)
            && let Err(e) = push_pack(&engine, pack_dir, pack).await
        {
            engine.shutdown().await;
            return Err(e);
        }

        if config.tls.is_none() && !local_addr.ip().is_loopback() {
            tracing::warn!(
                address = %local_addr,
                "serving plain http on a non-loopback address (--insecure-http): tokens travel in clear text"
            );
        }
        if config.pdp_allow_unauthenticated {
            tracing::warn!(
                "the decision point answers without a token (pdp allow_unauthenticated): anyone who can reach /access/v1/ can ask for decisions"
            );
        }
        if config.delegation.dev {
            tracing::warn!(
                "development mode is on (dev): admins can mint human tokens without an identity provider; never use it in production"
            );
        }
        tracing::info!(issuer = %issuer, "issuing tokens as {issuer}");
        // The OAuth and AuthZEN metadata both advertise endpoints under the issuer.
        let state = AppState::new(engine.clone())
            .with_metrics(crate::metrics::install())
            .with_request_timeout(config.request_timeout)
            .with_pdp_open(config.pdp_allow_unauthenticated)
            .with_tls(config.tls.is_some())
            .with_public_url(Some(issuer));
        let refreshers = refresh_trusted_keys(&engine, &config.trusted_issuers);
        Ok(Self {
            listener,
            local_addr,
            tls,
            router: api::app(state),
            engine,
            grace: config.shutdown_grace,
            refreshers,
        })
    }

    /// The address the listener is bound to (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The engine behind the router.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Serves until `shutdown` completes, drains connections within the
    /// grace period, then flushes the audit log and stops the engine.
    pub async fn serve_until(self, shutdown: impl Future<Output = ()>) {
        serve(self.listener, self.tls, self.router, shutdown, self.grace).await;
        for task in &self.refreshers {
            task.abort();
        }
        tracing::info!("flushing the audit log");
        self.engine.shutdown().await;
        tracing::info!("stopped");
    }
}

/// Opens the engine on the configured database: the embedded SQLite file
/// in `dir`, or a shared PostgreSQL database whose keys the master key opens.
async fn open_engine(config: &Config, dir: &DataDir) -> Result<Engine, ServeError> {
    let clock = Arc::new(SystemClock);
    let settings = config.appender_settings();
    match &config.database {
        DatabaseConfig::Embedded => Engine::open(dir, clock, settings)
            .await
            .map_err(ServeError::Engine),
        DatabaseConfig::Postgres { url, .. } => {
            let master = config
                .database
                .master_key()
                .map_err(ServeError::MasterKey)?
                .ok_or_else(|| ServeError::MasterKey("no master key".into()))?;
            let algorithm = config.delegation.signing_algorithm;
            tracing::info!(database = %url.redacted(), "opening the shared PostgreSQL database");
            Engine::open_shared(url.expose(), master, algorithm, clock, settings)
                .await
                .map_err(ServeError::Engine)
        }
    }
}

/// Start-up work that needs the engine: the signing key's algorithm,
/// bootstrap token and the `config.load` audit record.
async fn prepare(
    engine: &Engine,
    dir: &DataDir,
    config: &Config,
    local_addr: SocketAddr,
    issuer: &str,
) -> Result<(), ServeError> {
    let rotated = align_signing_key(engine, config.delegation.signing_algorithm).await?;
    if let Some(path) = engine.bootstrap(dir).await.map_err(ServeError::Bootstrap)? {
        // The token itself is never logged; only where to find it.
        tracing::info!(path = %path.display(), "bootstrap admin token written");
    }
    let mut details = config_details(config, local_addr, issuer);
    if let Some(map) = details.as_object_mut() {
        map.insert("signing_key_rotated".into(), json!(rotated));
    }
    engine
        .record_event(&Admin::system(), "config.load", "server", details)
        .await
        .map_err(ServeError::Audit)?;
    Ok(())
}

/// Rotates the token signing key once when its algorithm is not
/// `algorithm`; returns the new key id. The old key keeps verifying the
/// tokens it signed. On a shared database another node starting at the
/// same time may rotate first: its key is then taken.
async fn align_signing_key(
    engine: &Engine,
    algorithm: handoff_engine::jwt::Algorithm,
) -> Result<Option<String>, ServeError> {
    for _ in 0..3 {
        let current = engine.keys().tokens().algorithm();
        if current == algorithm {
            return Ok(None);
        }
        match engine.rotate_keys_to(&Admin::system(), algorithm).await {
            Ok(kid) => {
                tracing::info!(
                    from = %current,
                    to = %algorithm,
                    kid = %kid,
                    "token signing key rotated to the configured algorithm"
                );
                return Ok(Some(kid));
            }
            Err(EngineError::Conflict(_)) => {
                engine
                    .reload_shared_keys()
                    .await
                    .map_err(|error| ServeError::SigningKey { algorithm, error })?;
            }
            Err(error) => return Err(ServeError::SigningKey { algorithm, error }),
        }
    }
    Err(ServeError::SigningKey {
        algorithm,
        error: EngineError::Conflict("other nodes kept rotating the signing key".into()),
    })
}

/// The engine's delegation settings: `issuer`, the configured limits and
/// `trusted` (whose issuers may not be this server's own).
fn delegation_settings(
    config: &Config,
    issuer: String,
    trusted: Vec<Trusted>,
) -> Result<DelegationSettings, ServeError> {
    let settings = DelegationSettings {
        issuer,
        limits: config.delegation.limits(),
        trusted,
        dev: config.delegation.dev,
    };
    let own = [settings.issuer.clone(), settings.dev_issuer()];
    if let Some(t) = settings
        .trusted
        .iter()
        .find(|t| own.contains(&t.verifier.issuer))
    {
        return Err(ServeError::TrustedIssuer {
            issuer: t.verifier.issuer.clone(),
            message: "it is this server's own issuer; a trusted issuer must be another server"
                .into(),
        });
    }
    Ok(settings)
}

/// Reads or fetches every trusted issuer's JWKS document and builds its
/// verifier; the first failure stops start-up, naming the issuer.
async fn load_trusted_issuers(issuers: &[TrustedIssuerConfig]) -> Result<Vec<Trusted>, ServeError> {
    let mut client: Option<reqwest::Client> = None;
    let mut trusted = Vec::with_capacity(issuers.len());
    for t in issuers {
        let failed = |message: String| ServeError::TrustedIssuer {
            issuer: t.issuer.clone(),
            message,
        };
        let jwks = match &t.jwks {
            JwksSource::File(path) => read_jwks_file(path),
            JwksSource::Url(url) => {
                // One client (cheap to clone) for every URL.
                let http = match &client {
                    Some(http) => http.clone(),
                    None => {
                        let http = jwks_client().map_err(failed)?;
                        client = Some(http.clone());
                        http
                    }
                };
                fetch_jwks(&http, url).await
            }
        }
        .map_err(failed)?;
        let verifier = TrustedIssuer::from_jwks_json(
            t.issuer.clone(),
            t.audience.clone(),
            t.subject_claim.clone(),
            t.scope_claim.clone(),
            &jwks,
        )
        .map_err(|e| failed(e.to_string()))?;
        tracing::info!(issuer = %t.issuer, keys = verifier.keys.keys.len(), "trusted issuer loaded");
        trusted.push(Trusted {
            verifier,
            default_scope: t.default_scope.clone(),
        });
    }
    Ok(trusted)
}

/// Starts one task per `jwks_url` issuer that fetches its keys again every
/// `jwks_refresh`, so an identity provider's key rotation is picked up
/// without a restart. A failed fetch keeps the keys in use and is logged.
fn refresh_trusted_keys(
    engine: &Engine,
    issuers: &[TrustedIssuerConfig],
) -> Vec<tokio::task::JoinHandle<()>> {
    let Ok(http) = jwks_client() else {
        tracing::warn!("cannot set up the http client: trusted issuer keys will not be refreshed");
        return Vec::new();
    };
    issuers
        .iter()
        .filter_map(|t| match &t.jwks {
            JwksSource::Url(url) => Some((t.issuer.clone(), url.clone(), t.jwks_refresh)),
            JwksSource::File(_) => None,
        })
        .map(|(issuer, url, every)| {
            let engine = engine.clone();
            let http = http.clone();
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticks.tick().await;
                loop {
                    ticks.tick().await;
                    let refreshed = fetch_jwks(&http, &url).await.and_then(|jwks| {
                        engine
                            .replace_trusted_keys(&issuer, &jwks)
                            .map_err(|e| e.to_string())
                    });
                    match refreshed {
                        Ok(keys) => tracing::debug!(%issuer, keys, "trusted issuer keys refreshed"),
                        Err(error) => tracing::warn!(
                            %issuer, %error,
                            "cannot refresh the trusted issuer's keys; the current keys stay in use"
                        ),
                    }
                }
            })
        })
        .collect()
}

/// Reads a JWKS file of at most [`MAX_JWKS_BYTES`].
fn read_jwks_file(path: &Path) -> Result<String, String> {
    let cannot = |e: &dyn std::fmt::Display| format!("cannot read \"{}\": {e}", path.display());
    let file = std::fs::File::open(path).map_err(|e| cannot(&e))?;
    let mut text = String::new();
    let limit = u64::try_from(MAX_JWKS_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    file.take(limit)
        .read_to_string(&mut text)
        .map_err(|e| cannot(&e))?;
    if text.len() > MAX_JWKS_BYTES {
        return Err(format!("\"{}\" is larger than 1 MiB", path.display()));
    }
    Ok(text)
}

/// The HTTP client for JWKS documents: [`JWKS_FETCH_TIMEOUT`] for the whole
/// exchange, redirects followed only to URLs a JWKS URL may have.
fn jwks_client() -> Result<reqwest::Client, String> {
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= MAX_JWKS_REDIRECTS {
            attempt.error("too many redirects")
        } else if crate::config::jwks_url(attempt.url().as_str()).is_err() {
            attempt.error("redirected to a url that is neither https nor loopback")
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .timeout(JWKS_FETCH_TIMEOUT)
        .redirect(redirects)
        .build()
        .map_err(|e| format!("cannot set up the http client: {}", error_chain(&e)))
}

/// Fetches the JWKS document at `url` (https, or http on loopback): a 2xx
/// answer of at most [`MAX_JWKS_BYTES`].
async fn fetch_jwks(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let parsed = crate::config::jwks_url(url)
        .map_err(|reason| format!("invalid jwks url \"{url}\": {reason}"))?;
    let cannot = |e: &reqwest::Error| format!("cannot fetch \"{url}\": {}", error_chain(e));
    let mut response = client
        .get(parsed)
        .header(
            reqwest::header::ACCEPT,
            "application/jwk-set+json, application/json",
        )
        .send()
        .await
        .map_err(|e| cannot(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("fetching \"{url}\" answered {status}"));
    }
    let too_large = || format!("the document at \"{url}\" is larger than 1 MiB");
    if response
        .content_length()
        .is_some_and(|n| n > u64::try_from(MAX_JWKS_BYTES).unwrap_or(u64::MAX))
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| cannot(&e))? {
        if body.len().saturating_add(chunk.len()) > MAX_JWKS_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| format!("the document at \"{url}\" is not utf-8"))
}

/// An error and its causes, `: `-separated (reqwest's own message names
/// only the step that failed).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Reads and compiles the pack in `dir`, so a bad pack stops start-up
/// before anything is touched.
fn load_pack(dir: &Path) -> Result<PackFiles, ServeError> {
    let pack = PackFiles::load_dir(dir).map_err(|error| ServeError::PolicyPackRead {
        dir: dir.to_owned(),
        error,
    })?;
    handoff_policy::compile(&pack).map_err(|diagnostics| ServeError::InvalidPolicyPack {
        dir: dir.to_owned(),
        diagnostics,
    })?;
    Ok(pack)
}

/// Pushes the configured pack as `system`; the engine stores no new
/// version when it equals the active one.
async fn push_pack(engine: &Engine, dir: &Path, pack: PackFiles) -> Result<(), ServeError> {
    match engine.push_policies(&Admin::system(), pack).await {
        Ok(pushed) => {
            tracing::info!(
                pack = %dir.display(),
                version = pushed.version.version,
                created = pushed.created,
                "policy pack {}",
                if pushed.created { "pushed as a new version" } else { "already active" }
            );
            Ok(())
        }
        Err(EngineError::InvalidPack(diagnostics)) => Err(ServeError::InvalidPolicyPack {
            dir: dir.to_owned(),
            diagnostics,
        }),
        Err(error) => Err(ServeError::PolicyPush {
            dir: dir.to_owned(),
            error,
        }),
    }
}

/// What the audit log keeps of the configuration: settings, never secrets.
fn config_details(config: &Config, local_addr: SocketAddr, issuer: &str) -> serde_json::Value {
    let delegation = &config.delegation;
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "listen": local_addr.to_string(),
        "tls": config.tls.is_some(),
        "insecure_http": config.insecure_http,
        "data_dir": config.data_dir.display().to_string(),
        "database": config.database.describe(),
        "request_timeout_seconds": config.request_timeout.as_secs(),
        "shutdown_grace_seconds": config.shutdown_grace.as_secs(),
        "checkpoint_every": config.audit.checkpoint_every,
        "checkpoint_interval_seconds": config.audit.checkpoint_interval.as_secs(),
        "max_batch": config.audit.max_batch,
        "pdp_allow_unauthenticated": config.pdp_allow_unauthenticated,
        "policy_pack": config.policy_pack.as_ref().map(|p| p.display().to_string()),
        "issuer": issuer,
        "delegation": {
            "max_depth": delegation.max_depth,
            "max_lifetime_seconds": delegation.max_lifetime.as_secs(),
            "default_lifetime_seconds": delegation.default_lifetime.as_secs(),
            "max_fan_out": delegation.max_fan_out,
            "signing_algorithm": delegation.signing_algorithm.as_str(),
            "dev": delegation.dev,
        },
        "trusted_issuers": config
            .trusted_issuers
            .iter()
            .map(|t| t.issuer.as_str())
            .collect::<Vec<_>>(),
    })
}

/// Completes on SIGTERM or SIGINT. The handlers are installed now, so a
/// signal that arrives during start-up is not lost.
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).map_err(ServeError::Signal)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(ServeError::Signal)?;
    Ok(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutdown signal received");
    })
}

/// Accepts connections on `listener` and serves `router` on them (over TLS
/// when `tls` is given) until `shutdown` completes; then stops accepting,
/// lets in-flight requests finish for up to `grace`, and closes what is left.
///
/// Logs `listening on http://ADDR` (or `https://`) once it accepts.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let scheme = if tls.is_some() { "https" } else { "http" };
    match listener.local_addr() {
        Ok(addr) => tracing::info!(address = %addr, "listening on {scheme}://{addr}"),
        Err(e) => tracing::warn!(error = %e, "listening, but the bound address is unknown"),
    }
    let builder = Arc::new(connection_builder());
    let graceful = GracefulShutdown::new();
    // Tells connections still before HTTP (handshake, first byte) to give up.
    let (stopping, stop) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = done
                    && e.is_panic()
                {
                    tracing::error!(error = %e, "a connection task panicked");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let connection = Connection {
                        builder: builder.clone(),
                        router: router.clone(),
                        tls: tls.clone(),
                        remote,
                        stop: stop.clone(),
                    };
                    // The watcher is taken here, before any shutdown can be
                    // signalled, so no connection escapes the drain.
                    connections.spawn(connection.run(stream, graceful.watcher()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }

    drop(listener);
    let _ = stopping.send(true);
    while connections.try_join_next().is_some() {}
    tracing::info!(
        connections = connections.len(),
        grace_seconds = grace.as_secs_f64(),
        "no longer accepting connections; draining in-flight requests"
    );
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        while connections.try_join_next().is_some() {}
        tracing::warn!(
            connections = connections.len(),
            "shutdown grace period over; closing the remaining connections"
        );
    }
    connections.shutdown().await;
}

/// HTTP/1.1 and HTTP/2 settings shared by every connection.
fn connection_builder() -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT);
    builder
}

/// One accepted connection, owned by its task.
struct Connection {
    builder: Arc<Builder<TokioExecutor>>,
    router: Router,
    tls: Option<TlsAcceptor>,
    remote: SocketAddr,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream, watcher: Watcher) {
        // Small responses should not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let remote = self.remote;
        match self.tls.take() {
            Some(acceptor) => {
                let handshake =
                    tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                let stream = tokio::select! {
                    done = handshake => match done {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%remote, error = %e, "tls handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%remote, "tls handshake timed out");
                            return;
                        }
                    },
                    _ = self.stop.wait_for(|stop| *stop) => return,
                };
                self.serve_http(TokioIo::new(stream), watcher).await;
            }
            None => {
                // hyper's auto builder waits for the first bytes (to tell
                // HTTP/1 from HTTP/2) without a time limit; bound it here.
                let mut first = [0_u8; 1];
                let first_byte = tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut first));
                let ready = tokio::select! {
                    read = first_byte => matches!(read, Ok(Ok(n)) if n > 0),
                    _ = self.stop.wait_for(|stop| *stop) => false,
                };
                if ready {
                    self.serve_http(TokioIo::new(stream), watcher).await;
                }
            }
        }
    }

    async fn serve_http<I>(self, io: I, watcher: Watcher)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let remote = self.remote;
        // Handlers may extract `ConnectInfo<SocketAddr>` as under `axum::serve`.
        let service = self
            .router
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(remote));
                request
            });
        let connection = self
            .builder
            .serve_connection_with_upgrades(io, TowerToHyperService::new(service));
        if let Err(e) = watcher.watch(connection).await {
            tracing::debug!(%remote, error = %e, "connection closed with an error");
        }
    }
}
