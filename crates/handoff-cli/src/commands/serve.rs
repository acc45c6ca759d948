//! `handoff serve`: turns flags and `HANDOFF_*` variables into the server's
//! configuration overrides, layers them over the configuration file, sets up
//! logging and runs the server until SIGTERM or Ctrl-C.
//!
//! The server owns the configuration rules (precedence, validation); this
//! module only gathers explicit input and chooses the log format.

use crate::{LogFormat, ServeArgs};
use anyhow::anyhow;
use handoff_server::config::{self, Config, Overrides};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// Log filter when `RUST_LOG` is not set.
const DEFAULT_FILTER: &str = "info";

/// Runs the server with `args` until it is told to stop.
pub(crate) async fn run(
    args: ServeArgs,
    log_format: Option<LogFormat>,
) -> anyhow::Result<ExitCode> {
    let overrides = overrides(&args, log_format);
    let config = Config::load(args.config.as_deref(), overrides)?;
    let format = config.log_format;
    init_logging(format)?;
    match handoff_server::run(config).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // Whoever reads JSON logs gets the failure as a log line too.
        Err(e) if format == config::LogFormat::Json => {
            tracing::error!(error = %e, "the server could not start");
            Ok(ExitCode::from(crate::EXIT_FAILURE))
        }
        Err(e) => Err(e.into()),
    }
}

/// The settings given on the command line or in `HANDOFF_*` variables.
fn overrides(args: &ServeArgs, log_format: Option<LogFormat>) -> Overrides {
    Overrides {
        listen: args.listen,
        data_dir: args.data_dir.clone(),
        database_url: args.database.clone(),
        master_key_file: args.master_key_file.clone(),
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
        // An absent flag leaves the decision to the file.
        insecure_http: args.insecure_http.then_some(true),
        log_format: log_format.map(|f| match f {
            LogFormat::Text => config::LogFormat::Text,
            LogFormat::Json => config::LogFormat::Json,
        }),
        request_timeout: args.request_timeout.map(Duration::from_secs),
        shutdown_grace: args.shutdown_grace.map(Duration::from_secs),
        checkpoint_every: args.checkpoint_every,
        checkpoint_interval: args.checkpoint_interval.map(Duration::from_secs),
        audit_max_batch: args.audit_max_batch.and_then(|n| usize::try_from(n).ok()),
        pdp_allow_unauthenticated: args.pdp_allow_unauthenticated.then_some(true),
        policy_pack: args.policy_pack.clone(),
        public_url: args.public_url.clone(),
        dev: args.dev.then_some(true),
        max_depth: args.max_depth,
        max_lifetime: args.max_lifetime.map(Duration::from_secs),
        max_fan_out: args.max_fan_out,
        signing_algorithm: args.signing_algorithm,
    }
}

/// Installs the global log subscriber: `RUST_LOG` filter (default `info`),
/// text or JSON lines on standard error.
fn init_logging(format: config::LogFormat) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person watching a terminal, not in files or journals.
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        config::LogFormat::Json => builder.json().try_init(),
        config::LogFormat::Text => builder.try_init(),
    };
    installed.map_err(|e| anyhow!("cannot set up logging: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use handoff_engine::jwt::Algorithm;
    use std::path::PathBuf;

    fn args() -> ServeArgs {
        ServeArgs {
            data_dir: None,
            database: None,
            master_key_file: None,
            listen: None,
            config: None,
            tls_cert: None,
            tls_key: None,
            insecure_http: false,
            request_timeout: None,
            shutdown_grace: None,
            checkpoint_every: None,
            checkpoint_interval: None,
            audit_max_batch: None,
            policy_pack: None,
            pdp_allow_unauthenticated: false,
            public_url: None,
            dev: false,
            max_depth: None,
            max_lifetime: None,
            max_fan_out: None,
            signing_algorithm: None,
        }
    }

    #[test]
    fn no_flags_means_no_overrides_and_the_defaults() {
        let o = overrides(&args(), None);
        assert_eq!(o, Overrides::default());
        let config = Config::load(None, o).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./handoff-data"));
    }

    #[test]
    fn flags_become_overrides() {
        let a = ServeArgs {
            data_dir: Some("/tmp/d".into()),
            listen: Some("0.0.0.0:9000".parse().unwrap()),
            insecure_http: true,
            request_timeout: Some(5),
            shutdown_grace: Some(7),
            checkpoint_every: Some(5),
            policy_pack: Some("/tmp/pack".into()),
            pdp_allow_unauthenticated: true,
            public_url: Some("https://handoff.example/".into()),
            dev: true,
            max_depth: Some(2),
            max_lifetime: Some(600),
            max_fan_out: Some(3),
            signing_algorithm: Some(Algorithm::ES256),
            ..args()
        };
        let o = overrides(&a, Some(LogFormat::Json));
        assert_eq!(o.data_dir, Some(PathBuf::from("/tmp/d")));
        assert_eq!(o.insecure_http, Some(true));
        assert_eq!(o.log_format, Some(config::LogFormat::Json));
        assert_eq!(o.request_timeout, Some(Duration::from_secs(5)));
        assert_eq!(o.shutdown_grace, Some(Duration::from_secs(7)));
        let config = Config::load(None, o).unwrap();
        assert!(config.insecure_http);
        assert_eq!(config.audit.checkpoint_every, 5);
        assert!(config.pdp_allow_unauthenticated);
        assert_eq!(config.policy_pack, Some(PathBuf::from("/tmp/pack")));
        assert_eq!(
            config.public_url.as_deref(),
            Some("https://handoff.example")
        );
        assert!(config.delegation.dev);
        assert_eq!(config.delegation.max_depth, 2);
        assert_eq!(config.delegation.max_lifetime, Duration::from_secs(600));
        assert_eq!(config.delegation.default_lifetime, Duration::from_secs(600));
        assert_eq!(config.delegation.max_fan_out, 3);
        assert_eq!(config.delegation.signing_algorithm, Algorithm::ES256);
    }

    #[test]
    fn an_absent_dev_flag_leaves_the_file_to_decide() {
        let o = overrides(&args(), None);
        assert_eq!(o.dev, None);
        assert_eq!(o.public_url, None);
        assert_eq!(o.signing_algorithm, None);
    }
}
