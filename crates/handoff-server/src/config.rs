//! Server configuration: the `handoff.toml` file, its layering with
//! command-line flags and `HANDOFF_*` environment variables, and the
//! validated [`Config`] that `serve` runs with.
//!
//! Precedence, lowest first: built-in defaults, the file, explicit
//! [`Overrides`] (the CLI fills them from flags or their environment
//! variables). Raw input becomes a [`Config`] once, here; everything after
//! trusts it. This module reads no environment variables and defines no
//! flags: that is the CLI's job; nor does it read key files or fetch JWKS
//! documents (start-up does, in [`crate::serve`]). See
//! `docs/configuration.md`.

use handoff_engine::jwt::Algorithm;
use serde::Deserialize;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

mod database;
mod delegation;

pub use database::{DatabaseConfig, DatabaseSection, DatabaseUrl, MASTER_KEY_ENV};

pub(crate) use delegation::jwks_url;
pub use delegation::{
    DEFAULT_JWKS_REFRESH, DelegationConfig, DelegationSection, JwksSource, TrustedIssuerConfig,
    TrustedIssuerSection,
};
use delegation::{
    layered_delegation, normalize_public_url, trusted_issuer, validate_trusted_issuers,
};

/// The only configuration file version this server reads.
pub const VERSION: i64 = 1;

/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./handoff-data";

/// Default listen address (loopback only).
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// The longest `max_lifetime_seconds` accepted (7 days): a bound on how
/// long a delegation token, and a retired signing key, may live.
pub const MAX_LIFETIME_CEILING: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Why a configuration could not be read or is not usable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file \"{}\": {error}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        error: io::Error,
    },
    /// The file is not valid TOML or has a key or value this server does not know.
    #[error("invalid configuration file \"{}\"{location}: {message}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// ` at line L, column C`, or empty when unknown.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// The file has no `version` key.
    #[error(
        "configuration file \"{}\" has no version; add `version = {VERSION}` at the top",
        .path.display()
    )]
    MissingVersion {
        /// The file.
        path: PathBuf,
    },
    /// The file declares a version this server does not read.
    #[error(
        "configuration file \"{}\" has version {version}, which this server does not read; the supported version is {VERSION}",
        .path.display()
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The declared version, as written.
        version: String,
    },
    /// A TLS certificate was given without its private key.
    #[error(
        "the tls certificate \"{}\" was given without a private key; pass --tls-key (or set `key` in [tls])",
        .cert.display()
    )]
    CertWithoutKey {
        /// The certificate file.
        cert: PathBuf,
    },
    /// A TLS private key was given without its certificate.
    #[error(
        "the tls private key \"{}\" was given without a certificate; pass --tls-cert (or set `cert` in [tls])",
        .key.display()
    )]
    KeyWithoutCert {
        /// The key file.
        key: PathBuf,
    },
    /// Plain HTTP on an address other hosts can reach, without consent.
    #[error(
        "refusing to serve plain http on the non-loopback address \"{listen}\"; pass --tls-cert and --tls-key to serve https, or --insecure-http to accept plain http"
    )]
    InsecureListen {
        /// The listen address.
        listen: SocketAddr,
    },
    /// A duration or count that must be positive is zero.
    #[error("{name} must be greater than zero")]
    Zero {
        /// The setting, as the operator knows it.
        name: &'static str,
    },
    /// The data directory is an empty path.
    #[error("the data directory must not be empty")]
    EmptyDataDir,
    /// The policy pack directory is an empty path.
    #[error("the policy pack directory must not be empty")]
    EmptyPolicyPack,
    /// The public URL is not an absolute http or https URL without query
    /// and fragment.
    #[error("invalid public url \"{url}\": {reason}")]
    InvalidPublicUrl {
        /// The URL, as given.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// No public URL, and the listen address does not say how clients
    /// reach the server, so the tokens' issuer would be unusable.
    #[error(
        "the listen address \"{listen}\" is not an address clients can use; set `public_url` in [server] (or --public-url) to the url clients reach this server at, e.g. \"https://handoff.example\": it is the issuer of every token"
    )]
    PublicUrlRequired {
        /// The listen address.
        listen: SocketAddr,
    },
    /// The default delegation lifetime exceeds the maximum.
    #[error(
        "the default delegation lifetime ({default} seconds, default_lifetime_seconds) must not exceed the maximum ({max} seconds, max_lifetime_seconds or --max-lifetime)"
    )]
    DefaultLifetimeAboveMax {
        /// The default, in seconds.
        default: u64,
        /// The maximum, in seconds.
        max: u64,
    },
    /// The maximum delegation lifetime is longer than [`MAX_LIFETIME_CEILING`].
    #[error(
        "the maximum delegation lifetime (max_lifetime_seconds, --max-lifetime) is {seconds} seconds; it must be at most {} seconds (7 days)",
        MAX_LIFETIME_CEILING.as_secs()
    )]
    LifetimeTooLong {
        /// The configured maximum, in seconds.
        seconds: u64,
    },
    /// A `[[trusted_issuers]]` entry has an empty `issuer`.
    #[error("trusted issuer number {position} in [[trusted_issuers]] has an empty `issuer`")]
    EmptyIssuer {
        /// 1-based position in the file.
        position: usize,
    },
    /// A `[[trusted_issuers]]` entry names neither or both key sources.
    #[error(
        "trusted issuer \"{issuer}\" needs exactly one of `jwks_file` and `jwks_url`; it has {found}"
    )]
    JwksSource {
        /// The issuer.
        issuer: String,
        /// `neither` or `both`.
        found: &'static str,
    },
    /// Two `[[trusted_issuers]]` entries have the same `issuer`.
    #[error("trusted issuer \"{issuer}\" is listed more than once in [[trusted_issuers]]")]
    DuplicateIssuer {
        /// The issuer.
        issuer: String,
    },
    /// The `[database]` settings are unusable.
    #[error("database: {0}")]
    Database(String),
    /// A `[[trusted_issuers]]` entry breaks another rule.
    #[error("trusted issuer \"{issuer}\": {message}")]
    TrustedIssuer {
        /// The issuer.
        issuer: String,
        /// What is wrong.
        message: String,
    },
}

/// How log lines are written (chosen by the CLI when it sets up logging).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    #[default]
    Text,
}

impl LogFormat {
    /// The name used in the file, flags and environment.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Text => "text",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A log format name that is neither `json` nor `text`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log format \"{0}\"; expected \"json\" or \"text\"")]
pub struct UnknownLogFormat(pub String);

impl FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Self::Json),
            "text" => Ok(Self::Text),
            other => Err(UnknownLogFormat(other.to_owned())),
        }
    }
}

/// The certificate chain and private key files of the HTTPS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Audit appender tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditConfig {
    /// Sign a checkpoint after this many records.
    pub checkpoint_every: u64,
    /// Sign a checkpoint at least this often while records arrive.
    pub checkpoint_interval: Duration,
    /// Most changes committed in one transaction.
    pub max_batch: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(60),
            max_batch: 1024,
        }
    }
}

/// The validated settings of `handoff serve`.
///
/// Build it with [`Config::load`] or [`Config::layered`], which validate;
/// a hand-built value should go through [`Config::validate`] (and
/// [`crate::run`] checks it again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the embedded database, keys and bootstrap token live.
    pub data_dir: PathBuf,
    /// The embedded database or a shared PostgreSQL one.
    pub database: DatabaseConfig,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// HTTPS certificate and key; `None` serves plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Consent to plain HTTP on a non-loopback address.
    pub insecure_http: bool,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// Longest time one request may take.
    pub request_timeout: Duration,
    /// Longest time in-flight requests may take to finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Audit appender tuning.
    pub audit: AuditConfig,
    /// Answer AuthZEN requests (`/access/v1/*`) without a token.
    pub pdp_allow_unauthenticated: bool,
    /// A policy pack directory pushed as `system` at start-up.
    pub policy_pack: Option<PathBuf>,
    /// The URL clients reach the server at, without a trailing slash: the
    /// issuer of tokens and the base of advertised endpoints. `None` means
    /// `http://<listen>` (`https://` with TLS); see [`Config::issuer`].
    pub public_url: Option<String>,
    /// How delegation tokens are issued.
    pub delegation: DelegationConfig,
    /// Identity providers whose tokens humans may exchange.
    pub trusted_issuers: Vec<TrustedIssuerConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            database: DatabaseConfig::Embedded,
            listen: DEFAULT_LISTEN,
            tls: None,
            insecure_http: false,
            log_format: LogFormat::Text,
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            audit: AuditConfig::default(),
            pdp_allow_unauthenticated: false,
            policy_pack: None,
            public_url: None,
            delegation: DelegationConfig::default(),
            trusted_issuers: Vec::new(),
        }
    }
}

/// Settings given explicitly (flags or `HANDOFF_*` environment variables);
/// each `Some` beats the file and the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--listen` / `HANDOFF_LISTEN`.
    pub listen: Option<SocketAddr>,
    /// `--data-dir` / `HANDOFF_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--database` / `HANDOFF_DATABASE_URL`.
    pub database_url: Option<String>,
    /// `--master-key-file` / `HANDOFF_MASTER_KEY_FILE`.
    pub master_key_file: Option<PathBuf>,
    /// `--tls-cert` / `HANDOFF_TLS_CERT`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key` / `HANDOFF_TLS_KEY`.
    pub tls_key: Option<PathBuf>,
    /// `--insecure-http` / `HANDOFF_INSECURE_HTTP`; `None` when not given.
    pub insecure_http: Option<bool>,
    /// `--log-format` / `HANDOFF_LOG_FORMAT`.
    pub log_format: Option<LogFormat>,
    /// `--request-timeout` / `HANDOFF_REQUEST_TIMEOUT` (seconds on the command line).
    pub request_timeout: Option<Duration>,
    /// Shutdown grace period.
    pub shutdown_grace: Option<Duration>,
    /// `--checkpoint-every` / `HANDOFF_CHECKPOINT_EVERY`.
    pub checkpoint_every: Option<u64>,
    /// `--checkpoint-interval` / `HANDOFF_CHECKPOINT_INTERVAL` (seconds on the command line).
    pub checkpoint_interval: Option<Duration>,
    /// `--audit-max-batch` / `HANDOFF_AUDIT_MAX_BATCH`.
    pub audit_max_batch: Option<usize>,
    /// `--pdp-allow-unauthenticated` / `HANDOFF_PDP_ALLOW_UNAUTHENTICATED`;
    /// `None` when not given.
    pub pdp_allow_unauthenticated: Option<bool>,
    /// `--policy-pack` / `HANDOFF_POLICY_PACK`.
    pub policy_pack: Option<PathBuf>,
    /// `--public-url` / `HANDOFF_PUBLIC_URL`, as given (validated here).
    pub public_url: Option<String>,
    /// `--dev` / `HANDOFF_DEV`; `None` when not given.
    pub dev: Option<bool>,
    /// `--max-depth` / `HANDOFF_MAX_DEPTH`.
    pub max_depth: Option<u32>,
    /// `--max-lifetime` / `HANDOFF_MAX_LIFETIME` (seconds on the command line).
    pub max_lifetime: Option<Duration>,
    /// `--max-fan-out` / `HANDOFF_MAX_FAN_OUT`.
    pub max_fan_out: Option<u32>,
    /// `--signing-algorithm` / `HANDOFF_SIGNING_ALGORITHM`.
    pub signing_algorithm: Option<Algorithm>,
}

/// The contents of `handoff.toml`, as written (nothing validated beyond
/// syntax, known keys and the version).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Always [`VERSION`].
    pub version: i64,
    /// `[server]`.
    #[serde(default)]
    pub server: ServerSection,
    /// `[tls]`.
    #[serde(default)]
    pub tls: TlsSection,
    /// `[database]`.
    #[serde(default)]
    pub database: DatabaseSection,
    /// `[audit]`.
    #[serde(default)]
    pub audit: AuditSection,
    /// `[pdp]`.
    #[serde(default)]
    pub pdp: PdpSection,
    /// `[policy]`.
    #[serde(default)]
    pub policy: PolicySection,
    /// `[delegation]`.
    #[serde(default)]
    pub delegation: DelegationSection,
    /// `[[trusted_issuers]]`.
    #[serde(default)]
    pub trusted_issuers: Vec<TrustedIssuerSection>,
}

/// The `[server]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// `listen = "127.0.0.1:8080"`.
    pub listen: Option<SocketAddr>,
    /// `data_dir = "./handoff-data"`.
    pub data_dir: Option<PathBuf>,
    /// `insecure_http = false`.
    pub insecure_http: Option<bool>,
    /// `log_format = "text"`.
    pub log_format: Option<LogFormat>,
    /// `request_timeout_seconds = 30`.
    pub request_timeout_seconds: Option<u64>,
    /// `shutdown_grace_seconds = 30`.
    pub shutdown_grace_seconds: Option<u64>,
    /// `public_url = "https://handoff.example"`.
    pub public_url: Option<String>,
}

/// The `[tls]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// `cert = "/etc/handoff/tls/cert.pem"`.
    pub cert: Option<PathBuf>,
    /// `key = "/etc/handoff/tls/key.pem"`.
    pub key: Option<PathBuf>,
}

/// The `[audit]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// `checkpoint_every = 1000`.
    pub checkpoint_every: Option<u64>,
    /// `checkpoint_interval_seconds = 60`.
    pub checkpoint_interval_seconds: Option<u64>,
    /// `max_batch = 1024`.
    pub max_batch: Option<usize>,
}

/// The `[pdp]` table: the AuthZEN decision point.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PdpSection {
    /// `allow_unauthenticated = false`.
    pub allow_unauthenticated: Option<bool>,
}

/// The `[policy]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// `pack = "./policies"`.
    pub pack: Option<PathBuf>,
}

/// Only the version, read before the full parse so that a file written for
/// another version is reported as such rather than as unknown keys.
#[derive(Deserialize)]
struct VersionProbe {
    version: Option<toml::Value>,
}

impl FileConfig {
    /// Parses the text of a configuration file; `path` only names it in errors.
    /// Relative paths in the text are left as written.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let parse_error = |e: toml::de::Error| ConfigError::Parse {
            path: path.to_owned(),
            location: e
                .span()
                .map(|span| {
                    let (line, column) = line_column(text, span.start);
                    format!(" at line {line}, column {column}")
                })
                .unwrap_or_default(),
            message: e.message().trim_end().to_owned(),
        };
        let probe: VersionProbe = toml::from_str(text).map_err(parse_error)?;
        match probe.version {
            None => {
                return Err(ConfigError::MissingVersion {
                    path: path.to_owned(),
                });
            }
            Some(toml::Value::Integer(VERSION)) => {}
            Some(other) => {
                return Err(ConfigError::UnsupportedVersion {
                    path: path.to_owned(),
                    version: describe_version(&other),
                });
            }
        }
        toml::from_str(text).map_err(parse_error)
    }

    /// Makes relative file paths relative to `base` (the file's directory).
    fn resolve_paths(&mut self, base: &Path) {
        for p in [
            &mut self.server.data_dir,
            &mut self.tls.cert,
            &mut self.tls.key,
            &mut self.policy.pack,
            &mut self.database.master_key_file,
        ]
        .into_iter()
        .chain(self.trusted_issuers.iter_mut().map(|t| &mut t.jwks_file))
        .flatten()
        {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        }
    }
}

/// A version value as the operator wrote it, for the error message.
fn describe_version(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("\"{s}\""),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => format!("of type {}", other.type_str()),
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Config {
    /// Reads and parses a `handoff.toml`. Relative paths in it (data
    /// directory, TLS files) are taken relative to the file's directory.
    pub fn from_file(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        let mut file = FileConfig::parse(&text, path)?;
        let base = path.parent().unwrap_or(Path::new(""));
        file.resolve_paths(base);
        Ok(file)
    }

    /// Reads the file at `path` if given, layers `overrides` on it and validates.
    pub fn load(path: Option<&Path>, overrides: Overrides) -> Result<Self, ConfigError> {
        let file = path.map(Self::from_file).transpose()?;
        Self::layered(file, overrides)
    }

    /// Defaults < `file` < `overrides`, then [`Config::validate`].
    pub fn layered(file: Option<FileConfig>, overrides: Overrides) -> Result<Self, ConfigError> {
        let FileConfig {
            server,
            database,
            tls,
            audit,
            pdp,
            policy,
            delegation,
            trusted_issuers,
            ..
        } = file.unwrap_or_default();
        let defaults = Self::default();
        let seconds = |s: Option<u64>| s.map(Duration::from_secs);
        // Before any override is moved out.
        let delegation = layered_delegation(&delegation, &overrides, defaults.delegation);
        let database = database::layered_database(database, &overrides)?;

        let cert = overrides.tls_cert.or(tls.cert);
        let key = overrides.tls_key.or(tls.key);
        let tls = match (cert, key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(cert), None) => return Err(ConfigError::CertWithoutKey { cert }),
            (None, Some(key)) => return Err(ConfigError::KeyWithoutCert { key }),
        };

        let config = Self {
            data_dir: overrides
                .data_dir
                .or(server.data_dir)
                .unwrap_or(defaults.data_dir),
            database,
            listen: overrides
                .listen
                .or(server.listen)
                .unwrap_or(defaults.listen),
            tls,
            insecure_http: overrides
                .insecure_http
                .or(server.insecure_http)
                .unwrap_or(defaults.insecure_http),
            log_format: overrides
                .log_format
                .or(server.log_format)
                .unwrap_or(defaults.log_format),
            request_timeout: overrides
                .request_timeout
                .or(seconds(server.request_timeout_seconds))
                .unwrap_or(defaults.request_timeout),
            shutdown_grace: overrides
                .shutdown_grace
                .or(seconds(server.shutdown_grace_seconds))
                .unwrap_or(defaults.shutdown_grace),
            audit: AuditConfig {
                checkpoint_every: overrides
                    .checkpoint_every
                    .or(audit.checkpoint_every)
                    .unwrap_or(defaults.audit.checkpoint_every),
                checkpoint_interval: overrides
                    .checkpoint_interval
                    .or(seconds(audit.checkpoint_interval_seconds))
                    .unwrap_or(defaults.audit.checkpoint_interval),
                max_batch: overrides
                    .audit_max_batch
                    .or(audit.max_batch)
                    .unwrap_or(defaults.audit.max_batch),
            },
            pdp_allow_unauthenticated: overrides
                .pdp_allow_unauthenticated
                .or(pdp.allow_unauthenticated)
                .unwrap_or(defaults.pdp_allow_unauthenticated),
            policy_pack: overrides.policy_pack.or(policy.pack),
            public_url: overrides
                .public_url
                .or(server.public_url)
                .map(|url| normalize_public_url(&url))
                .transpose()?,
            delegation,
            trusted_issuers: trusted_issuers
                .into_iter()
                .enumerate()
                .map(|(i, t)| trusted_issuer(t, i.saturating_add(1)))
                .collect::<Result<_, _>>()?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the rules no single setting can check alone.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::EmptyDataDir);
        }
        if self
            .policy_pack
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(ConfigError::EmptyPolicyPack);
        }
        if self.tls.is_none() && !self.listen.ip().is_loopback() && !self.insecure_http {
            return Err(ConfigError::InsecureListen {
                listen: self.listen,
            });
        }
        let positive = [
            (
                self.request_timeout.is_zero(),
                "the request timeout (request_timeout_seconds, --request-timeout)",
            ),
            (
                self.shutdown_grace.is_zero(),
                "the shutdown grace period (shutdown_grace_seconds)",
            ),
            (
                self.audit.checkpoint_every == 0,
                "the audit checkpoint count (checkpoint_every)",
            ),
            (
                self.audit.checkpoint_interval.is_zero(),
                "the audit checkpoint interval (checkpoint_interval_seconds)",
            ),
            (
                self.audit.max_batch == 0,
                "the audit batch size (max_batch)",
            ),
        ];
        if let Some((_, name)) = positive.into_iter().find(|(zero, _)| *zero) {
            return Err(ConfigError::Zero { name });
        }
        match &self.public_url {
            Some(url) => {
                normalize_public_url(url)?;
            }
            // 0.0.0.0 or :: in `iss` would name no server a client can reach.
            None if self.listen.ip().is_unspecified() => {
                return Err(ConfigError::PublicUrlRequired {
                    listen: self.listen,
                });
            }
            None => {}
        }
        self.delegation.validate()?;
        validate_trusted_issuers(&self.trusted_issuers)
    }

    /// The issuer (`iss`) of tokens and the base of every advertised
    /// endpoint: the public URL, else `http://ADDR` (`https://` with TLS)
    /// of `local_addr`, the address actually bound.
    pub fn issuer(&self, local_addr: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("{}://{local_addr}", self.scheme()),
        }
    }

    /// The URL scheme clients use: `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The audit appender settings these values imply.
    pub fn appender_settings(&self) -> handoff_engine::AppenderSettings {
        handoff_engine::AppenderSettings {
            max_batch: self.audit.max_batch,
            checkpoint_every: self.audit.checkpoint_every,
            checkpoint_interval: self.audit.checkpoint_interval,
            ..handoff_engine::AppenderSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use handoff_core::{Limits, Scope};

    const FULL: &str = r#"
version = 1

[server]
listen = "0.0.0.0:9443"
data_dir = "/var/lib/handoff"
insecure_http = false
log_format = "json"
request_timeout_seconds = 10
shutdown_grace_seconds = 5
public_url = "https://Handoff.Example:443/"

[database]
url = "postgres://handoff:pw@db.internal:5432/handoff"
master_key_file = "/etc/handoff/master.key"

[tls]
cert = "/etc/handoff/cert.pem"
key = "/etc/handoff/key.pem"

[audit]
checkpoint_every = 50
checkpoint_interval_seconds = 7
max_batch = 64

[pdp]
allow_unauthenticated = true

[policy]
pack = "/etc/handoff/policies"

[delegation]
max_depth = 3
max_lifetime_seconds = 1800
default_lifetime_seconds = 600
max_fan_out = 10
signing_algorithm = "ES256"
dev = true

[[trusted_issuers]]
issuer = "https://idp.example"
jwks_file = "/etc/handoff/idp-jwks.json"
audience = "https://handoff.example"
subject_claim = "email"
scope_claim = "scp"
default_scope = "doc:read profile"

[[trusted_issuers]]
issuer = "https://login.example"
jwks_url = "https://login.example/.well-known/jwks.json"
audience = "handoff"
"#;

    fn parse(text: &str) -> Result<FileConfig, ConfigError> {
        FileConfig::parse(text, Path::new("handoff.toml"))
    }

    #[test]
    fn defaults_are_loopback_plain_http() {
        let c = Config::layered(None, Overrides::default()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./handoff-data"));
        assert_eq!(c.tls, None);
        assert!(!c.insecure_http);
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.shutdown_grace, Duration::from_secs(30));
        assert_eq!(c.audit.checkpoint_every, 1000);
        assert_eq!(c.audit.checkpoint_interval, Duration::from_secs(60));
        assert_eq!(c.audit.max_batch, 1024);
        assert!(!c.pdp_allow_unauthenticated);
        assert_eq!(c.policy_pack, None);
        assert_eq!(c.scheme(), "http");
        assert_eq!(c.public_url, None);
        assert_eq!(c.issuer(c.listen), "http://127.0.0.1:8080");
        assert_eq!(c.delegation.max_depth, 5);
        assert_eq!(c.delegation.max_lifetime, Duration::from_secs(3600));
        assert_eq!(c.delegation.default_lifetime, Duration::from_secs(900));
        assert_eq!(c.delegation.max_fan_out, 100);
        assert_eq!(c.delegation.signing_algorithm, Algorithm::EdDSA);
        assert!(!c.delegation.dev);
        assert_eq!(c.delegation.limits(), Limits::default());
        assert!(c.trusted_issuers.is_empty());
    }

    #[test]
    fn every_file_key_is_read() {
        let c = Config::layered(Some(parse(FULL).unwrap()), Overrides::default()).unwrap();
        assert_eq!(
            c,
            Config {
                data_dir: "/var/lib/handoff".into(),
                database: DatabaseConfig::Postgres {
                    url: DatabaseUrl::parse("postgres://handoff:pw@db.internal:5432/handoff")
                        .unwrap(),
                    master_key_file: Some("/etc/handoff/master.key".into()),
                },
                listen: "0.0.0.0:9443".parse().unwrap(),
                tls: Some(TlsFiles {
                    cert: "/etc/handoff/cert.pem".into(),
                    key: "/etc/handoff/key.pem".into(),
                }),
                insecure_http: false,
                log_format: LogFormat::Json,
                request_timeout: Duration::from_secs(10),
                shutdown_grace: Duration::from_secs(5),
                audit: AuditConfig {
                    checkpoint_every: 50,
                    checkpoint_interval: Duration::from_secs(7),
                    max_batch: 64,
                },
                pdp_allow_unauthenticated: true,
                policy_pack: Some("/etc/handoff/policies".into()),
                public_url: Some("https://handoff.example".into()),
                delegation: DelegationConfig {
                    max_depth: 3,
                    max_lifetime: Duration::from_secs(1800),
                    default_lifetime: Duration::from_secs(600),
                    max_fan_out: 10,
                    signing_algorithm: Algorithm::ES256,
                    dev: true,
                },
                trusted_issuers: vec![
                    TrustedIssuerConfig {
                        issuer: "https://idp.example".into(),
                        jwks: JwksSource::File("/etc/handoff/idp-jwks.json".into()),
                        audience: "https://handoff.example".into(),
                        subject_claim: "email".into(),
                        scope_claim: "scp".into(),
                        default_scope: Scope::parse("profile doc:read").unwrap(),
                        jwks_refresh: DEFAULT_JWKS_REFRESH,
                    },
                    TrustedIssuerConfig {
                        issuer: "https://login.example".into(),
                        jwks: JwksSource::Url("https://login.example/.well-known/jwks.json".into()),
                        audience: "handoff".into(),
                        subject_claim: "sub".into(),
                        scope_claim: "scope".into(),
                        default_scope: Scope::default(),
                        jwks_refresh: DEFAULT_JWKS_REFRESH,
                    },
                ],
            }
        );
        assert_eq!(c.scheme(), "https");
        assert_eq!(
            c.issuer("0.0.0.0:9443".parse().unwrap()),
            "https://handoff.example"
        );
        let limits = c.delegation.limits();
        assert_eq!(limits.max_lifetime, TimeDelta::minutes(30));
        assert_eq!(limits.default_lifetime, TimeDelta::minutes(10));
        assert_eq!((limits.max_depth, limits.max_fan_out), (3, 10));
        let s = c.appender_settings();
        assert_eq!((s.max_batch, s.checkpoint_every), (64, 50));
        assert_eq!(s.checkpoint_interval, Duration::from_secs(7));
    }

    #[test]
    fn a_file_with_only_the_version_gives_the_defaults() {
        let c = Config::layered(Some(parse("version = 1\n").unwrap()), Overrides::default());
        assert_eq!(c.unwrap(), Config::default());
    }

    #[test]
    fn overrides_beat_the_file_and_the_file_beats_defaults() {
        let file = parse(
            "version = 1\n[server]\nlisten = \"127.0.0.1:9000\"\ndata_dir = \"/from/file\"\nrequest_timeout_seconds = 12\n",
        )
        .unwrap();
        let overrides = Overrides {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            log_format: Some(LogFormat::Json),
            ..Overrides::default()
        };
        let c = Config::layered(Some(file), overrides).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9100", "override wins");
        assert_eq!(
            c.data_dir,
            PathBuf::from("/from/file"),
            "file wins over default"
        );
        assert_eq!(c.request_timeout, Duration::from_secs(12));
        assert_eq!(c.log_format, LogFormat::Json, "override over default");
        assert_eq!(c.shutdown_grace, Duration::from_secs(30), "default");
    }

    #[test]
    fn every_override_is_applied() {
        let overrides = Overrides {
            listen: Some("10.0.0.1:1".parse().unwrap()),
            data_dir: Some("/d".into()),
            database_url: Some("postgresql://flag/db".into()),
            master_key_file: Some("/flag.key".into()),
            tls_cert: Some("/c.pem".into()),
            tls_key: Some("/k.pem".into()),
            insecure_http: Some(true),
            log_format: Some(LogFormat::Json),
            request_timeout: Some(Duration::from_secs(3)),
            shutdown_grace: Some(Duration::from_secs(4)),
            checkpoint_every: Some(7),
            checkpoint_interval: Some(Duration::from_secs(8)),
            audit_max_batch: Some(9),
            pdp_allow_unauthenticated: Some(false),
            policy_pack: Some("/p".into()),
            public_url: Some("http://10.0.0.1:1/handoff/".into()),
            dev: Some(false),
            max_depth: Some(1),
            max_lifetime: Some(Duration::from_secs(700)),
            max_fan_out: Some(2),
            signing_algorithm: Some(Algorithm::EdDSA),
        };
        let c = Config::layered(Some(parse(FULL).unwrap()), overrides).unwrap();
        assert_eq!(c.public_url.as_deref(), Some("http://10.0.0.1:1/handoff"));
        assert_eq!(
            c.delegation,
            DelegationConfig {
                max_depth: 1,
                max_lifetime: Duration::from_secs(700),
                default_lifetime: Duration::from_secs(600),
                max_fan_out: 2,
                signing_algorithm: Algorithm::EdDSA,
                dev: false,
            }
        );
        assert_eq!(c.audit.checkpoint_every, 7);
        assert_eq!(c.audit.checkpoint_interval, Duration::from_secs(8));
        assert_eq!(c.audit.max_batch, 9);
        assert!(!c.pdp_allow_unauthenticated, "override beats the file");
        assert_eq!(c.policy_pack, Some(PathBuf::from("/p")));
        assert_eq!(c.listen.to_string(), "10.0.0.1:1");
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        assert_eq!(
            c.database,
            DatabaseConfig::Postgres {
                url: DatabaseUrl::parse("postgresql://flag/db").unwrap(),
                master_key_file: Some("/flag.key".into()),
            }
        );
        assert_eq!(
            c.tls,
            Some(TlsFiles {
                cert: "/c.pem".into(),
                key: "/k.pem".into()
            })
        );
        assert!(c.insecure_http);
        assert_eq!(c.request_timeout, Duration::from_secs(3));
        assert_eq!(c.shutdown_grace, Duration::from_secs(4));
    }

    #[test]
    fn a_cert_override_pairs_with_the_key_from_the_file() {
        let file = parse("version = 1\n[tls]\ncert = \"/f/c.pem\"\nkey = \"/f/k.pem\"\n").unwrap();
        let overrides = Overrides {
            tls_cert: Some("/o/c.pem".into()),
            ..Overrides::default()
        };
        let tls = Config::layered(Some(file), overrides).unwrap().tls.unwrap();
        assert_eq!(tls.cert, PathBuf::from("/o/c.pem"));
        assert_eq!(tls.key, PathBuf::from("/f/k.pem"));
    }

    #[test]
    fn relative_paths_in_a_file_are_relative_to_its_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("handoff.toml");
        std::fs::write(
            &path,
            "version = 1\n[server]\ndata_dir = \"data\"\n[tls]\ncert = \"tls/c.pem\"\nkey = \"/abs/k.pem\"\n[policy]\npack = \"policies\"\n\
             [[trusted_issuers]]\nissuer = \"https://a\"\naudience = \"h\"\njwks_file = \"keys/a.json\"\n\
             [[trusted_issuers]]\nissuer = \"https://b\"\naudience = \"h\"\njwks_file = \"/abs/b.json\"\n",
        )
        .unwrap();
        let file = Config::from_file(&path).unwrap();
        assert_eq!(
            file.trusted_issuers[0].jwks_file,
            Some(tmp.path().join("keys/a.json"))
        );
        assert_eq!(
            file.trusted_issuers[1].jwks_file,
            Some(PathBuf::from("/abs/b.json"))
        );
        assert_eq!(file.policy.pack, Some(tmp.path().join("policies")));
        assert_eq!(file.server.data_dir, Some(tmp.path().join("data")));
        assert_eq!(file.tls.cert, Some(tmp.path().join("tls/c.pem")));
        assert_eq!(file.tls.key, Some(PathBuf::from("/abs/k.pem")));
    }

    #[test]
    fn load_reads_the_named_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("handoff.toml");
        std::fs::write(
            &path,
            "version = 1\n[server]\nlisten = \"127.0.0.1:7000\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), Overrides::default()).unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(
            Config::load(None, Overrides::default()).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let err = Config::from_file(Path::new("/nonexistent/handoff.toml")).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("cannot read the configuration file \"/nonexistent/handoff.toml\": "),
            "{msg}"
        );
    }

    #[test]
    fn an_unknown_key_is_rejected_with_its_location() {
        let err =
            parse("version = 1\n[server]\nlisten = \"127.0.0.1:1\"\nport = 80\n").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");
        assert!(
            msg.starts_with("invalid configuration file \"handoff.toml\" at line 4"),
            "{msg}"
        );
        assert!(msg.contains("unknown field `port`"), "{msg}");
    }

    #[test]
    fn an_unknown_table_is_rejected() {
        let msg = parse("version = 1\n[cluster]\nnodes = 3\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("unknown field `cluster`"), "{msg}");
    }

    #[test]
    fn a_bad_value_is_rejected() {
        let msg = parse("version = 1\n[server]\nlisten = \"localhost\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("at line 3"), "{msg}");
        let msg = parse("version = 1\n[server]\nlog_format = \"xml\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("xml"), "{msg}");
        let msg = parse("version = 1\n[server]\nrequest_timeout_seconds = -1\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("invalid configuration file"), "{msg}");
    }

    #[test]
    fn invalid_toml_is_rejected() {
        let err = parse("version = 1\n[server\n").unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");
        assert!(err.to_string().contains("at line 2"), "{err}");
    }

    #[test]
    fn a_missing_version_is_rejected() {
        let err = parse("[server]\nlisten = \"127.0.0.1:1\"\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration file \"handoff.toml\" has no version; add `version = 1` at the top"
        );
    }

    #[test]
    fn an_unknown_version_is_rejected_naming_it() {
        // Keys of a future version must not hide the real problem.
        let err = parse("version = 2\n[cluster]\nnodes = 3\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration file \"handoff.toml\" has version 2, which this server does not read; the supported version is 1"
        );
        let err = parse("version = \"1\"\n").unwrap_err();
        assert!(err.to_string().contains("has version \"1\""), "{err}");
    }

    #[test]
    fn a_cert_without_a_key_is_rejected() {
        let err = Config::layered(
            None,
            Overrides {
                tls_cert: Some("/c.pem".into()),
                ..Overrides::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the tls certificate \"/c.pem\" was given without a private key; pass --tls-key (or set `key` in [tls])"
        );
    }

    #[test]
    fn a_key_without_a_cert_is_rejected() {
        let file = parse("version = 1\n[tls]\nkey = \"/k.pem\"\n").unwrap();
        let err = Config::layered(Some(file), Overrides::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the tls private key \"/k.pem\" was given without a certificate; pass --tls-cert (or set `cert` in [tls])"
        );
    }

    #[test]
    fn plain_http_on_a_public_address_needs_consent() {
        for listen in ["0.0.0.0:8080", "[::]:8080", "192.0.2.1:80"] {
            let overrides = Overrides {
                listen: Some(listen.parse().unwrap()),
                public_url: Some("https://handoff.example".into()),
                ..Overrides::default()
            };
            let err = Config::layered(None, overrides.clone()).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, ConfigError::InsecureListen { .. }), "{err:?}");
            assert!(msg.contains(&format!("\"{listen}\"")), "{msg}");
            assert!(msg.contains("--tls-cert and --tls-key"), "{msg}");
            assert!(msg.contains("--insecure-http"), "{msg}");

            let consent = Overrides {
                insecure_http: Some(true),
                ..overrides.clone()
            };
            assert!(Config::layered(None, consent).unwrap().insecure_http);
            let tls = Overrides {
                tls_cert: Some("/c".into()),
                tls_key: Some("/k".into()),
                ..overrides
            };
            assert!(Config::layered(None, tls).is_ok());
        }
        for listen in ["127.0.0.1:8080", "[::1]:8080", "127.1.2.3:1"] {
            let overrides = Overrides {
                listen: Some(listen.parse().unwrap()),
                ..Overrides::default()
            };
            assert!(Config::layered(None, overrides).is_ok(), "{listen}");
        }
    }

    #[test]
    fn insecure_http_from_the_file_counts_as_consent() {
        let file = parse(
            "version = 1\n[server]\nlisten = \"0.0.0.0:80\"\ninsecure_http = true\npublic_url = \"http://h.example\"\n",
        )
        .unwrap();
        assert!(Config::layered(Some(file), Overrides::default()).is_ok());
    }

    #[test]
    fn zero_durations_and_counts_are_rejected() {
        let cases: [(&str, &str); 5] = [
            (
                "[server]\nrequest_timeout_seconds = 0",
                "the request timeout",
            ),
            (
                "[server]\nshutdown_grace_seconds = 0",
                "the shutdown grace period",
            ),
            (
                "[audit]\ncheckpoint_every = 0",
                "the audit checkpoint count",
            ),
            (
                "[audit]\ncheckpoint_interval_seconds = 0",
                "the audit checkpoint interval",
            ),
            ("[audit]\nmax_batch = 0", "the audit batch size"),
        ];
        for (toml, name) in cases {
            let file = parse(&format!("version = 1\n{toml}\n")).unwrap();
            let err = Config::layered(Some(file), Overrides::default()).unwrap_err();
            assert!(matches!(err, ConfigError::Zero { .. }), "{err:?}");
            let msg = err.to_string();
            assert!(msg.starts_with(name), "{msg}");
            assert!(msg.ends_with("must be greater than zero"), "{msg}");
        }
        let overrides = Overrides {
            request_timeout: Some(Duration::ZERO),
            ..Overrides::default()
        };
        assert!(matches!(
            Config::layered(None, overrides),
            Err(ConfigError::Zero { .. })
        ));
    }

    #[test]
    fn an_empty_data_dir_is_rejected() {
        let file = parse("version = 1\n[server]\ndata_dir = \"\"\n").unwrap();
        let err = Config::layered(Some(file), Overrides::default()).unwrap_err();
        assert_eq!(err.to_string(), "the data directory must not be empty");
    }

    #[test]
    fn an_empty_policy_pack_is_rejected() {
        let file = parse("version = 1\n[policy]\npack = \"\"\n").unwrap();
        let err = Config::layered(Some(file), Overrides::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the policy pack directory must not be empty"
        );
    }

    #[test]
    fn unknown_pdp_and_policy_keys_are_rejected() {
        let msg = parse("version = 1\n[pdp]\nopen = true\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("unknown field `open`"), "{msg}");
        let msg = parse("version = 1\n[policy]\ndir = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("unknown field `dir`"), "{msg}");
    }

    #[test]
    fn log_format_parses_from_flags() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert_eq!(
            "xml".parse::<LogFormat>().unwrap_err().to_string(),
            "unknown log format \"xml\"; expected \"json\" or \"text\""
        );
        assert_eq!(LogFormat::Json.to_string(), "json");
    }

    fn layered(text: &str) -> Result<Config, ConfigError> {
        Config::layered(Some(parse(text)?), Overrides::default())
    }

    fn with_public_url(url: &str) -> Result<Config, ConfigError> {
        Config::layered(
            None,
            Overrides {
                public_url: Some(url.into()),
                ..Overrides::default()
            },
        )
    }

    #[test]
    fn the_public_url_loses_its_trailing_slash_and_keeps_its_path() {
        let cases = [
            ("https://handoff.example", "https://handoff.example"),
            ("https://handoff.example/", "https://handoff.example"),
            ("https://HANDOFF.example:443/", "https://handoff.example"),
            ("http://10.0.0.1:8080/", "http://10.0.0.1:8080"),
            (
                "https://example.com/handoff/",
                "https://example.com/handoff",
            ),
            ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
        ];
        for (given, expected) in cases {
            let c = with_public_url(given).unwrap();
            assert_eq!(c.public_url.as_deref(), Some(expected), "{given}");
            assert_eq!(c.issuer(c.listen), expected, "{given}");
        }
        let file = parse("version = 1\n[server]\npublic_url = \"https://from.file/\"\n").unwrap();
        let c = Config::layered(Some(file.clone()), Overrides::default()).unwrap();
        assert_eq!(c.public_url.as_deref(), Some("https://from.file"));
        let overrides = Overrides {
            public_url: Some("https://from.flag".into()),
            ..Overrides::default()
        };
        let c = Config::layered(Some(file), overrides).unwrap();
        assert_eq!(
            c.public_url.as_deref(),
            Some("https://from.flag"),
            "flag wins"
        );
    }

    #[test]
    fn a_bad_public_url_is_rejected() {
        let cases = [
            ("handoff.example", "not an absolute url"),
            ("/handoff", "not an absolute url"),
            ("ftp://handoff.example", "the scheme must be http or https"),
            (
                "mailto:ops@handoff.example",
                "the scheme must be http or https",
            ),
            ("https://handoff.example/?x=1", "it must not have a query"),
            ("https://handoff.example/?", "it must not have a query"),
            (
                "https://handoff.example/#top",
                "it must not have a fragment",
            ),
            (
                "https://user:pw@handoff.example",
                "it must not hold a user name or password",
            ),
        ];
        for (url, reason) in cases {
            let err = with_public_url(url).unwrap_err();
            assert!(
                matches!(err, ConfigError::InvalidPublicUrl { .. }),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!("invalid public url \"{url}\": {reason}"),
                "{url}"
            );
        }
        let msg = parse("version = 1\n[server]\npublic_url = 8080\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("at line 3"), "{msg}");
        // A hand-built configuration is checked too.
        let c = Config {
            public_url: Some("ftp://x".into()),
            ..Config::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::InvalidPublicUrl { .. })
        ));
    }

    #[test]
    fn an_unspecified_listen_address_needs_a_public_url() {
        for listen in ["0.0.0.0:8443", "[::]:8443"] {
            let overrides = Overrides {
                listen: Some(listen.parse().unwrap()),
                tls_cert: Some("/c".into()),
                tls_key: Some("/k".into()),
                ..Overrides::default()
            };
            let err = Config::layered(None, overrides.clone()).unwrap_err();
            assert!(
                matches!(err, ConfigError::PublicUrlRequired { .. }),
                "{err:?}"
            );
            let msg = err.to_string();
            assert!(msg.contains(&format!("\"{listen}\"")), "{msg}");
            assert!(msg.contains("`public_url` in [server]"), "{msg}");
            assert!(msg.contains("--public-url"), "{msg}");
            assert!(msg.contains("issuer"), "{msg}");

            let named = Overrides {
                public_url: Some("https://handoff.example".into()),
                ..overrides
            };
            let c = Config::layered(None, named).unwrap();
            assert_eq!(c.issuer(c.listen), "https://handoff.example");
        }
        // A specific address is a usable default.
        let overrides = Overrides {
            listen: Some("192.0.2.1:8443".parse().unwrap()),
            tls_cert: Some("/c".into()),
            tls_key: Some("/k".into()),
            ..Overrides::default()
        };
        let c = Config::layered(None, overrides).unwrap();
        assert_eq!(c.issuer(c.listen), "https://192.0.2.1:8443");
    }

    #[test]
    fn the_default_issuer_is_the_bound_address() {
        let c = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        assert_eq!(
            c.issuer("127.0.0.1:41234".parse().unwrap()),
            "http://127.0.0.1:41234"
        );
        assert_eq!(c.issuer("[::1]:80".parse().unwrap()), "http://[::1]:80");
    }

    #[test]
    fn delegation_keys_are_read_and_overridden() {
        let c = layered("version = 1\n[delegation]\nmax_depth = 0\nmax_fan_out = 0\nsigning_algorithm = \"ES256\"\n")
            .unwrap();
        assert_eq!(c.delegation.max_depth, 0, "zero depth allows only roots");
        assert_eq!(c.delegation.max_fan_out, 0);
        assert_eq!(c.delegation.signing_algorithm, Algorithm::ES256);
        let overrides = Overrides {
            max_depth: Some(2),
            signing_algorithm: Some(Algorithm::EdDSA),
            dev: Some(true),
            ..Overrides::default()
        };
        let file =
            parse("version = 1\n[delegation]\nmax_depth = 4\nsigning_algorithm = \"ES256\"\n")
                .unwrap();
        let c = Config::layered(Some(file), overrides).unwrap();
        assert_eq!(c.delegation.max_depth, 2);
        assert_eq!(c.delegation.signing_algorithm, Algorithm::EdDSA);
        assert!(c.delegation.dev);
        let msg = parse("version = 1\n[delegation]\nsigning_algorithm = \"RS256\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("at line 3"), "{msg}");
        assert!(msg.contains("RS256"), "{msg}");
    }

    #[test]
    fn an_unknown_key_in_delegation_is_rejected() {
        let err = parse("version = 1\n[delegation]\nmax_depth = 2\nmax_hops = 3\n").unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("at line 4"), "{msg}");
        assert!(msg.contains("unknown field `max_hops`"), "{msg}");
    }

    #[test]
    fn a_default_lifetime_above_the_max_is_rejected() {
        let err = layered(
            "version = 1\n[delegation]\nmax_lifetime_seconds = 600\ndefault_lifetime_seconds = 601\n",
        )
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::DefaultLifetimeAboveMax { .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the default delegation lifetime (601 seconds, default_lifetime_seconds) must not exceed the maximum (600 seconds, max_lifetime_seconds or --max-lifetime)"
        );
        // A flag lowering the max below an explicit default is refused too.
        let file = parse("version = 1\n[delegation]\ndefault_lifetime_seconds = 900\n").unwrap();
        let overrides = Overrides {
            max_lifetime: Some(Duration::from_secs(300)),
            ..Overrides::default()
        };
        assert!(matches!(
            Config::layered(Some(file), overrides),
            Err(ConfigError::DefaultLifetimeAboveMax {
                default: 900,
                max: 300
            })
        ));
        // Equal is fine.
        let c = layered(
            "version = 1\n[delegation]\nmax_lifetime_seconds = 600\ndefault_lifetime_seconds = 600\n",
        )
        .unwrap();
        assert_eq!(c.delegation.default_lifetime, Duration::from_secs(600));
    }

    #[test]
    fn an_unset_default_lifetime_follows_a_lowered_max() {
        let overrides = Overrides {
            max_lifetime: Some(Duration::from_secs(300)),
            ..Overrides::default()
        };
        let c = Config::layered(None, overrides).unwrap();
        assert_eq!(c.delegation.max_lifetime, Duration::from_secs(300));
        assert_eq!(c.delegation.default_lifetime, Duration::from_secs(300));
        let c = layered("version = 1\n[delegation]\nmax_lifetime_seconds = 7200\n").unwrap();
        assert_eq!(c.delegation.default_lifetime, Duration::from_secs(900));
    }

    #[test]
    fn delegation_lifetimes_are_bounded() {
        for (toml, name) in [
            (
                "max_lifetime_seconds = 0",
                "the maximum delegation lifetime",
            ),
            (
                "default_lifetime_seconds = 0",
                "the default delegation lifetime",
            ),
        ] {
            let err = layered(&format!("version = 1\n[delegation]\n{toml}\n")).unwrap_err();
            assert!(matches!(err, ConfigError::Zero { .. }), "{err:?}");
            assert!(err.to_string().starts_with(name), "{err}");
        }
        let err =
            layered("version = 1\n[delegation]\nmax_lifetime_seconds = 604801\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the maximum delegation lifetime (max_lifetime_seconds, --max-lifetime) is 604801 seconds; it must be at most 604800 seconds (7 days)"
        );
        assert!(layered("version = 1\n[delegation]\nmax_lifetime_seconds = 604800\n").is_ok());
        let overrides = Overrides {
            max_lifetime: Some(Duration::from_secs(u64::MAX)),
            ..Overrides::default()
        };
        assert!(matches!(
            Config::layered(None, overrides),
            Err(ConfigError::LifetimeTooLong { .. })
        ));
    }

    const ISSUER: &str = "version = 1\n[[trusted_issuers]]\nissuer = \"https://idp.example\"\naudience = \"handoff\"\n";

    #[test]
    fn a_trusted_issuer_takes_exactly_one_key_source() {
        let err = layered(ISSUER).unwrap_err();
        assert!(matches!(err, ConfigError::JwksSource { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "trusted issuer \"https://idp.example\" needs exactly one of `jwks_file` and `jwks_url`; it has neither"
        );
        let both =
            format!("{ISSUER}jwks_file = \"/k.json\"\njwks_url = \"https://idp.example/jwks\"\n");
        assert_eq!(
            layered(&both).unwrap_err().to_string(),
            "trusted issuer \"https://idp.example\" needs exactly one of `jwks_file` and `jwks_url`; it has both"
        );
        let c = layered(&format!("{ISSUER}jwks_file = \"/k.json\"\n")).unwrap();
        assert_eq!(
            c.trusted_issuers[0].jwks,
            JwksSource::File("/k.json".into())
        );
        assert_eq!(c.trusted_issuers[0].subject_claim, "sub");
        assert_eq!(c.trusted_issuers[0].scope_claim, "scope");
        assert!(c.trusted_issuers[0].default_scope.is_empty());
    }

    #[test]
    fn a_duplicate_trusted_issuer_is_rejected() {
        let text = format!(
            "{ISSUER}jwks_file = \"/a.json\"\n[[trusted_issuers]]\nissuer = \"https://other.example\"\naudience = \"h\"\njwks_file = \"/b.json\"\n[[trusted_issuers]]\nissuer = \"https://idp.example\"\naudience = \"h2\"\njwks_url = \"https://idp.example/jwks\"\n"
        );
        let err = layered(&text).unwrap_err();
        assert!(
            matches!(err, ConfigError::DuplicateIssuer { .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "trusted issuer \"https://idp.example\" is listed more than once in [[trusted_issuers]]"
        );
    }

    #[test]
    fn a_trusted_issuer_needs_its_required_keys() {
        let msg = parse("version = 1\n[[trusted_issuers]]\nissuer = \"https://idp.example\"\njwks_file = \"/k\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("missing field `audience`"), "{msg}");
        let msg = parse("version = 1\n[[trusted_issuers]]\naudience = \"h\"\njwks_file = \"/k\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("missing field `issuer`"), "{msg}");
        let msg = parse(&format!(
            "{ISSUER}jwks_file = \"/k\"\nsubject = \"email\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(msg.contains("unknown field `subject`"), "{msg}");
        let err = layered(
            "version = 1\n[[trusted_issuers]]\nissuer = \"\"\naudience = \"h\"\njwks_file = \"/k\"\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "trusted issuer number 1 in [[trusted_issuers]] has an empty `issuer`"
        );
        let err = layered(
            "version = 1\n[[trusted_issuers]]\nissuer = \"https://idp.example\"\naudience = \"\"\njwks_file = \"/k\"\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "trusted issuer \"https://idp.example\": `audience` must not be empty"
        );
        let err = layered(&format!("{ISSUER}jwks_file = \"\"\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "trusted issuer \"https://idp.example\": `jwks_file` must not be empty"
        );
        let err = layered(&format!(
            "{ISSUER}jwks_file = \"/k\"\nsubject_claim = \"\"\n"
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("`subject_claim` must not be empty"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_default_scope_is_rejected_naming_the_issuer() {
        let err = layered(&format!(
            "{ISSUER}jwks_file = \"/k\"\ndefault_scope = \"a\\\"b\"\n"
        ))
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("trusted issuer \"https://idp.example\": invalid `default_scope`: "),
            "{msg}"
        );
        let c = layered(&format!(
            "{ISSUER}jwks_file = \"/k\"\ndefault_scope = \"read  doc:*\"\n"
        ))
        .unwrap();
        assert_eq!(c.trusted_issuers[0].default_scope.to_string(), "doc:* read");
    }

    #[test]
    fn jwks_refresh_applies_to_urls_and_must_be_positive() {
        let url = "jwks_url = \"https://idp.example/jwks\"\n";
        let c = layered(&format!("{ISSUER}{url}")).unwrap();
        assert_eq!(c.trusted_issuers[0].jwks_refresh, DEFAULT_JWKS_REFRESH);
        let c = layered(&format!("{ISSUER}{url}jwks_refresh_seconds = 60\n")).unwrap();
        assert_eq!(c.trusted_issuers[0].jwks_refresh, Duration::from_secs(60));
        let err = layered(&format!("{ISSUER}{url}jwks_refresh_seconds = 0\n")).unwrap_err();
        assert!(
            err.to_string().ends_with("must be greater than zero"),
            "{err}"
        );
        let err = layered(&format!(
            "{ISSUER}jwks_file = \"/k\"\njwks_refresh_seconds = 60\n"
        ))
        .unwrap_err();
        assert!(
            err.to_string().ends_with("applies to `jwks_url` only"),
            "{err}"
        );
    }

    #[test]
    fn a_jwks_url_must_be_https_unless_on_loopback() {
        for url in [
            "https://idp.example/jwks.json",
            "http://127.0.0.1:9000/jwks.json",
            "http://localhost/jwks",
            "http://[::1]:9000/jwks",
        ] {
            let c = layered(&format!("{ISSUER}jwks_url = \"{url}\"\n")).unwrap();
            assert_eq!(c.trusted_issuers[0].jwks, JwksSource::Url(url.into()));
        }
        let cases = [
            (
                "http://idp.example/jwks",
                "plain http is accepted only on loopback; use https",
            ),
            ("ftp://idp.example/jwks", "the scheme must be https"),
            ("idp.example/jwks", "not an absolute url"),
            (
                "https://u:p@idp.example/jwks",
                "it must not hold a user name or password",
            ),
        ];
        for (url, reason) in cases {
            let err = layered(&format!("{ISSUER}jwks_url = \"{url}\"\n")).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "trusted issuer \"https://idp.example\": invalid `jwks_url` \"{url}\": {reason}"
                )
            );
        }
    }
}
