//! The database part of the configuration (`[database]`): which store the
//! server runs on — the embedded SQLite file in the data directory (the
//! default) or a PostgreSQL database shared by several nodes — and, for a
//! shared database, where the master key that seals its keys comes from.

use super::{ConfigError, Overrides};
use handoff_engine::master_key::MasterKey;
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;

pub use handoff_engine::master_key::MASTER_KEY_ENV;

/// A PostgreSQL URL; its password never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Accepts `postgres://…` and `postgresql://…`.
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let url = url.trim();
        let scheme_ok = ["postgres://", "postgresql://"].iter().any(|s| {
            url.len() > s.len()
                && url
                    .get(..s.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(s))
        });
        if !scheme_ok {
            return Err(ConfigError::Database(format!(
                "\"{}\" is not a postgres:// url (leave the database unset for the embedded SQLite database in data_dir)",
                handoff_engine::redact_url(&handoff_core::identity::shorten(url))
            )));
        }
        Ok(Self(url.to_owned()))
    }

    /// The URL, password included (for connecting only).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL without its password (for logs and the audit log).
    pub fn redacted(&self) -> String {
        handoff_engine::redact_url(&self.0)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

/// The `[database]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// `url = "postgres://handoff@db.internal/handoff"`; unset = SQLite.
    pub url: Option<String>,
    /// `master_key_file = "/etc/handoff/master.key"`.
    pub master_key_file: Option<PathBuf>,
}

/// Where the server keeps its state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DatabaseConfig {
    /// `handoff.db` in the data directory; keys in `keys/`.
    #[default]
    Embedded,
    /// A PostgreSQL database shared by every node; keys in it, sealed.
    Postgres {
        /// Where it is.
        url: DatabaseUrl,
        /// The master key file; `None` reads [`MASTER_KEY_ENV`].
        master_key_file: Option<PathBuf>,
    },
}

impl DatabaseConfig {
    /// Reads the master key of a shared database: the file if one is
    /// configured, else [`MASTER_KEY_ENV`]. `None` for the embedded one.
    pub fn master_key(&self) -> Result<Option<MasterKey>, String> {
        let Self::Postgres {
            master_key_file, ..
        } = self
        else {
            return Ok(None);
        };
        match MasterKey::from_file_or_env(master_key_file.as_deref()) {
            Ok(Some(key)) => Ok(Some(key)),
            Err(e) => Err(e.to_string()),
            Ok(None) => Err(format!(
                "a PostgreSQL database needs a master key to seal the signing keys it holds: \
                 set HANDOFF_MASTER_KEY_FILE (or master_key_file in [database]) to a file of 32 \
                 random bytes, or {MASTER_KEY_ENV} to the key itself; create one with \
                 `handoff keys master-key > master.key`; every node needs the same key"
            )),
        }
    }

    /// The URL, redacted, for the `config.load` record; "sqlite" when embedded.
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded => "sqlite".to_owned(),
            Self::Postgres { url, .. } => url.redacted(),
        }
    }
}

/// Defaults < `section` < `overrides`.
pub(super) fn layered_database(
    section: DatabaseSection,
    overrides: &Overrides,
) -> Result<DatabaseConfig, ConfigError> {
    let master_key_file = overrides
        .master_key_file
        .clone()
        .or(section.master_key_file);
    match overrides.database_url.clone().or(section.url) {
        None => {
            if master_key_file.is_some() {
                return Err(ConfigError::Database(
                    "a master key file is set but no PostgreSQL url; the embedded database keeps its keys in data_dir/keys"
                        .into(),
                ));
            }
            Ok(DatabaseConfig::Embedded)
        }
        Some(url) => Ok(DatabaseConfig::Postgres {
            url: DatabaseUrl::parse(&url)?,
            master_key_file,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_postgres_urls_are_accepted_and_passwords_stay_hidden() {
        let url = DatabaseUrl::parse("postgres://handoff:pw@db/handoff").unwrap();
        assert_eq!(
            format!("{url:?}"),
            "DatabaseUrl(postgres://handoff:***@db/handoff)"
        );
        assert!(DatabaseUrl::parse("postgresql://db/handoff").is_ok());
        assert!(DatabaseUrl::parse("POSTGRES://db/x").is_ok());
        for bad in [
            "",
            "postgres://",
            "sqlite://x.db",
            "mysql://root:pw@db/x",
            "db/x",
        ] {
            let err = DatabaseUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains("not a postgres:// url"), "{bad}: {err}");
            assert!(!err.contains(":pw@"), "{err}");
        }
    }

    #[test]
    fn the_flag_beats_the_file_and_a_lone_master_key_is_refused() {
        let section = DatabaseSection {
            url: Some("postgres://file/db".into()),
            master_key_file: Some("/file.key".into()),
        };
        let overrides = Overrides {
            database_url: Some("postgres://flag/db".into()),
            ..Overrides::default()
        };
        match layered_database(section, &overrides).unwrap() {
            DatabaseConfig::Postgres {
                url,
                master_key_file,
            } => {
                assert_eq!(url.expose(), "postgres://flag/db");
                assert_eq!(master_key_file, Some(PathBuf::from("/file.key")));
            }
            other => panic!("{other:?}"),
        }
        let lone = DatabaseSection {
            url: None,
            master_key_file: Some("/k".into()),
        };
        assert!(layered_database(lone, &Overrides::default()).is_err());
        assert_eq!(
            layered_database(DatabaseSection::default(), &Overrides::default()).unwrap(),
            DatabaseConfig::Embedded
        );
    }
}
