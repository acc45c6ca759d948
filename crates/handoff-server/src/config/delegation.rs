//! The delegation part of the configuration: `public_url`, the
//! `[delegation]` limits and signing algorithm, and `[[trusted_issuers]]`
//! (which identity providers' tokens a human may exchange, and where their
//! keys come from). Parsed and validated here; keys are read or fetched at
//! start-up by [`crate::serve`].

use super::{ConfigError, MAX_LIFETIME_CEILING, Overrides};
use chrono::TimeDelta;
use handoff_core::{Limits, Scope};
use handoff_engine::jwt::Algorithm;
use serde::Deserialize;
use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How delegation tokens are issued (the `[delegation]` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelegationConfig {
    /// Deepest a chain may go below its root (a root is depth 0).
    pub max_depth: u32,
    /// Longest lifetime of any delegation.
    pub max_lifetime: Duration,
    /// Lifetime when a request names none; at most `max_lifetime`.
    pub default_lifetime: Duration,
    /// Most direct children of one delegation.
    pub max_fan_out: u32,
    /// Algorithm of the token signing key.
    pub signing_algorithm: Algorithm,
    /// Development mode: allows minting human tokens (`handoff token mint-human`).
    pub dev: bool,
}

impl Default for DelegationConfig {
    fn default() -> Self {
        Self {
            max_depth: 5,
            max_lifetime: Duration::from_secs(3600),
            default_lifetime: Duration::from_secs(900),
            max_fan_out: 100,
            signing_algorithm: Algorithm::EdDSA,
            dev: false,
        }
    }
}

impl DelegationConfig {
    /// The per-chain limits these values set.
    pub fn limits(&self) -> Limits {
        // Both lifetimes are at most MAX_LIFETIME_CEILING once validated.
        let delta = |d: Duration| TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
        Limits {
            max_depth: self.max_depth,
            max_lifetime: delta(self.max_lifetime),
            default_lifetime: delta(self.default_lifetime),
            max_fan_out: self.max_fan_out,
        }
    }
}

/// Where a trusted issuer's public keys (a JWKS document) come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A file, read once at start-up.
    File(PathBuf),
    /// An https URL (http only on loopback), fetched once at start-up.
    Url(String),
}

/// An identity provider whose tokens a human may exchange (one
/// `[[trusted_issuers]]` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIssuerConfig {
    /// The `iss` its tokens carry.
    pub issuer: String,
    /// Its public keys.
    pub jwks: JwksSource,
    /// The audience its tokens must name.
    pub audience: String,
    /// The claim that holds the subject.
    pub subject_claim: String,
    /// The claim that holds the scopes.
    pub scope_claim: String,
    /// The scope of a lineage root when the token carries no scope claim.
    pub default_scope: Scope,
    /// How often a `jwks_url` is fetched again while the server runs (the
    /// identity provider may rotate its keys); unused for a file.
    pub jwks_refresh: Duration,
}

/// How often a trusted issuer's `jwks_url` is fetched again by default.
pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(300);

/// The `[delegation]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegationSection {
    /// `max_depth = 5`.
    pub max_depth: Option<u32>,
    /// `max_lifetime_seconds = 3600`.
    pub max_lifetime_seconds: Option<u64>,
    /// `default_lifetime_seconds = 900`.
    pub default_lifetime_seconds: Option<u64>,
    /// `max_fan_out = 100`.
    pub max_fan_out: Option<u32>,
    /// `signing_algorithm = "EdDSA"` (or `"ES256"`).
    pub signing_algorithm: Option<Algorithm>,
    /// `dev = false`.
    pub dev: Option<bool>,
}

/// One `[[trusted_issuers]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuerSection {
    /// `issuer = "https://idp.example"` (required).
    pub issuer: String,
    /// `jwks_file = "idp-jwks.json"`; exactly one of this and `jwks_url`.
    pub jwks_file: Option<PathBuf>,
    /// `jwks_url = "https://idp.example/.well-known/jwks.json"`.
    pub jwks_url: Option<String>,
    /// `audience = "https://handoff.example"` (required).
    pub audience: String,
    /// `subject_claim = "sub"`.
    pub subject_claim: Option<String>,
    /// `scope_claim = "scope"`.
    pub scope_claim: Option<String>,
    /// `default_scope = ""`.
    pub default_scope: Option<String>,
    /// `jwks_refresh_seconds = 300` (only with `jwks_url`).
    pub jwks_refresh_seconds: Option<u64>,
}

impl DelegationConfig {
    /// Lifetimes positive, the default within the maximum, the maximum
    /// within [`MAX_LIFETIME_CEILING`].
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_lifetime.is_zero() {
            return Err(ConfigError::Zero {
                name: "the maximum delegation lifetime (max_lifetime_seconds, --max-lifetime)",
            });
        }
        if self.default_lifetime.is_zero() {
            return Err(ConfigError::Zero {
                name: "the default delegation lifetime (default_lifetime_seconds)",
            });
        }
        if self.max_lifetime > MAX_LIFETIME_CEILING {
            return Err(ConfigError::LifetimeTooLong {
                seconds: self.max_lifetime.as_secs(),
            });
        }
        if self.default_lifetime > self.max_lifetime {
            return Err(ConfigError::DefaultLifetimeAboveMax {
                default: self.default_lifetime.as_secs(),
                max: self.max_lifetime.as_secs(),
            });
        }
        Ok(())
    }
}

/// Defaults < `[delegation]` < overrides. A default lifetime nobody set
/// follows a lowered maximum, so `--max-lifetime 300` alone is valid.
pub(super) fn layered_delegation(
    file: &DelegationSection,
    overrides: &Overrides,
    defaults: DelegationConfig,
) -> DelegationConfig {
    let max_lifetime = overrides
        .max_lifetime
        .or(file.max_lifetime_seconds.map(Duration::from_secs))
        .unwrap_or(defaults.max_lifetime);
    let default_lifetime = file
        .default_lifetime_seconds
        .map(Duration::from_secs)
        .unwrap_or_else(|| defaults.default_lifetime.min(max_lifetime));
    DelegationConfig {
        max_depth: overrides
            .max_depth
            .or(file.max_depth)
            .unwrap_or(defaults.max_depth),
        max_lifetime,
        default_lifetime,
        max_fan_out: overrides
            .max_fan_out
            .or(file.max_fan_out)
            .unwrap_or(defaults.max_fan_out),
        signing_algorithm: overrides
            .signing_algorithm
            .or(file.signing_algorithm)
            .unwrap_or(defaults.signing_algorithm),
        dev: overrides.dev.or(file.dev).unwrap_or(defaults.dev),
    }
}

/// One `[[trusted_issuers]]` entry (at 1-based `position`) made a
/// [`TrustedIssuerConfig`]; [`Config::validate`] checks the rest.
pub(super) fn trusted_issuer(
    section: TrustedIssuerSection,
    position: usize,
) -> Result<TrustedIssuerConfig, ConfigError> {
    let TrustedIssuerSection {
        issuer,
        jwks_file,
        jwks_url,
        audience,
        subject_claim,
        scope_claim,
        default_scope,
        jwks_refresh_seconds,
    } = section;
    if issuer.is_empty() {
        return Err(ConfigError::EmptyIssuer { position });
    }
    let jwks = match (jwks_file, jwks_url) {
        (Some(file), None) => JwksSource::File(file),
        (None, Some(url)) => JwksSource::Url(url),
        (None, None) => {
            return Err(ConfigError::JwksSource {
                issuer,
                found: "neither",
            });
        }
        (Some(_), Some(_)) => {
            return Err(ConfigError::JwksSource {
                issuer,
                found: "both",
            });
        }
    };
    let default_scope = match Scope::parse(default_scope.as_deref().unwrap_or_default()) {
        Ok(scope) => scope,
        Err(e) => {
            return Err(ConfigError::TrustedIssuer {
                issuer,
                message: format!("invalid `default_scope`: {e}"),
            });
        }
    };
    let jwks_refresh = match (jwks_refresh_seconds, &jwks) {
        (None, _) => DEFAULT_JWKS_REFRESH,
        (Some(_), JwksSource::File(_)) => {
            return Err(ConfigError::TrustedIssuer {
                issuer,
                message: "`jwks_refresh_seconds` applies to `jwks_url` only".into(),
            });
        }
        (Some(0), _) => {
            return Err(ConfigError::TrustedIssuer {
                issuer,
                message: "`jwks_refresh_seconds` must be greater than zero".into(),
            });
        }
        (Some(n), _) => Duration::from_secs(n),
    };
    Ok(TrustedIssuerConfig {
        issuer,
        jwks,
        audience,
        subject_claim: subject_claim.unwrap_or_else(|| "sub".to_owned()),
        scope_claim: scope_claim.unwrap_or_else(|| "scope".to_owned()),
        default_scope,
        jwks_refresh,
    })
}

/// Each entry complete and usable, no issuer twice.
pub(super) fn validate_trusted_issuers(issuers: &[TrustedIssuerConfig]) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for (i, t) in issuers.iter().enumerate() {
        if t.issuer.is_empty() {
            return Err(ConfigError::EmptyIssuer {
                position: i.saturating_add(1),
            });
        }
        if !seen.insert(t.issuer.as_str()) {
            return Err(ConfigError::DuplicateIssuer {
                issuer: t.issuer.clone(),
            });
        }
        let rule = |message: &str| ConfigError::TrustedIssuer {
            issuer: t.issuer.clone(),
            message: message.to_owned(),
        };
        if t.audience.is_empty() {
            return Err(rule("`audience` must not be empty"));
        }
        if t.subject_claim.is_empty() {
            return Err(rule("`subject_claim` must not be empty"));
        }
        if t.scope_claim.is_empty() {
            return Err(rule("`scope_claim` must not be empty"));
        }
        match &t.jwks {
            JwksSource::File(path) if path.as_os_str().is_empty() => {
                return Err(rule("`jwks_file` must not be empty"));
            }
            JwksSource::File(_) => {}
            JwksSource::Url(url) => {
                jwks_url(url).map_err(|reason| ConfigError::TrustedIssuer {
                    issuer: t.issuer.clone(),
                    message: format!("invalid `jwks_url` \"{url}\": {reason}"),
                })?;
            }
        }
    }
    Ok(())
}

/// Parses a public URL: absolute, http or https, with a host, without
/// credentials, query or fragment. Returns it normalized (scheme and host
/// lowercase, default port dropped) without a trailing slash.
pub(super) fn normalize_public_url(raw: &str) -> Result<String, ConfigError> {
    let invalid = |reason| ConfigError::InvalidPublicUrl {
        url: raw.to_owned(),
        reason,
    };
    let url = reqwest::Url::parse(raw).map_err(|_| invalid("not an absolute url"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it must not hold a user name or password"));
    }
    if url.query().is_some() {
        return Err(invalid("it must not have a query"));
    }
    if url.fragment().is_some() {
        return Err(invalid("it must not have a fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Parses a JWKS URL: https, or http to a loopback host (`localhost`,
/// `127.0.0.0/8`, `::1`); no credentials. The error says why not.
pub(crate) fn jwks_url(raw: &str) -> Result<reqwest::Url, &'static str> {
    let url = reqwest::Url::parse(raw).map_err(|_| "not an absolute url")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("it must not hold a user name or password");
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err("plain http is accepted only on loopback; use https"),
        _ => Err("the scheme must be https"),
    }
}

/// Whether `url` names this host: `localhost` or a loopback address.
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
