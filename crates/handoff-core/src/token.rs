//! Admin tokens: bearer secrets for the admin API, with a role.

use crate::{Invalid, Time};
use serde::{Deserialize, Serialize};

/// What an admin token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Read-only: inventory, credentials metadata and the audit log.
    Auditor,
    /// Only the access evaluation API (AuthZEN): for gateways and services
    /// that ask for decisions; no admin API at all.
    Pdp,
}

impl Role {
    /// Every role.
    pub const ALL: [Self; 3] = [Self::Admin, Self::Auditor, Self::Pdp];

    /// The lowercase word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Auditor => "auditor",
            Self::Pdp => "pdp",
        }
    }

    /// Parses the lowercase word.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s {
            "admin" => Ok(Self::Admin),
            "auditor" => Ok(Self::Auditor),
            "pdp" => Ok(Self::Pdp),
            other => Err(Invalid::new(
                "role",
                format!(
                    "unknown role \"{}\": expected admin, auditor or pdp",
                    crate::identity::shorten(other)
                ),
            )),
        }
    }

    /// Whether this role may change state.
    pub fn may_write(self) -> bool {
        matches!(self, Self::Admin)
    }

    /// Whether this role may use the admin API at all.
    pub fn may_administer(self) -> bool {
        matches!(self, Self::Admin | Self::Auditor)
    }

    /// Whether this role may ask the access evaluation API for decisions.
    pub fn may_evaluate(self) -> bool {
        matches!(self, Self::Admin | Self::Pdp)
    }
}

/// An admin token id, `tok_` followed by the secret's lookup part.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AdminTokenId(String);

impl AdminTokenId {
    /// Validates `tok_<16 hex>`.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        crate::credential::parse_record_id(s, "tok_", "admin token").map(Self)
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AdminTokenId {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::parse(&s)
    }
}

impl From<AdminTokenId> for String {
    fn from(c: AdminTokenId) -> Self {
        c.0
    }
}

impl std::fmt::Display for AdminTokenId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An admin token as stored (hash only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminToken {
    /// `tok_<lookup>`.
    pub id: AdminTokenId,
    /// Operator-chosen name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// HMAC-SHA-256 of the whole secret.
    #[serde(skip)]
    pub hash: Vec<u8>,
    /// When it was created.
    pub created_at: Time,
    /// When it stops working, if ever.
    pub expires_at: Option<Time>,
    /// When it was revoked.
    pub revoked_at: Option<Time>,
}

impl AdminToken {
    /// Whether it may authenticate at `now`.
    pub fn usable(&self, now: Time) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// Longest admin token name, in bytes.
pub const MAX_TOKEN_NAME_LEN: usize = 64;

/// Validates an admin token name: 1 to 64 printable bytes.
pub fn validate_name(s: &str) -> Result<(), Invalid> {
    if s.is_empty() || s.len() > MAX_TOKEN_NAME_LEN || s.chars().any(char::is_control) {
        return Err(Invalid::new(
            "name",
            format!(
                "token name must be 1 to {MAX_TOKEN_NAME_LEN} bytes without control characters"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admins_write() {
        assert!(Role::Admin.may_write());
        assert!(!Role::Auditor.may_write());
        assert_eq!(Role::parse("auditor").unwrap(), Role::Auditor);
        assert_eq!(Role::parse("pdp").unwrap(), Role::Pdp);
        assert!(!Role::Pdp.may_write() && !Role::Pdp.may_administer() && Role::Pdp.may_evaluate());
        assert!(!Role::Auditor.may_evaluate());
        assert!(Role::parse("root").is_err());
    }

    #[test]
    fn token_names_are_bounded() {
        assert!(validate_name("ci").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name(&"x".repeat(65)).is_err());
        assert!(validate_name("a\nb").is_err());
    }
}
