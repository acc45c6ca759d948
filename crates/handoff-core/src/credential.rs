//! Credentials: API keys and client secrets bound to one agent or service.

use crate::{IdentityId, Invalid, Time};
use serde::{Deserialize, Serialize};

/// A credential id, `cred_` followed by the secret's 16-hex-digit lookup part.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CredentialId(String);

impl CredentialId {
    /// Validates `cred_<16 hex>`.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        parse_record_id(s, "cred_", "credential").map(Self)
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lookup part (after `cred_`).
    pub fn lookup(&self) -> &str {
        self.0.get(5..).unwrap_or_default()
    }
}

pub(crate) fn parse_record_id(
    s: &str,
    prefix: &str,
    what: &'static str,
) -> Result<String, Invalid> {
    let ok = s.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == crate::secret::LOOKUP_LEN
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Invalid::new(
            "id",
            format!(
                "invalid {what} id \"{}\": expected {prefix} and 16 hex digits",
                crate::identity::shorten(s)
            ),
        ))
    }
}

impl TryFrom<String> for CredentialId {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::parse(&s)
    }
}

impl From<CredentialId> for String {
    fn from(c: CredentialId) -> Self {
        c.0
    }
}

impl std::fmt::Display for CredentialId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest credential description, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 256;

/// A credential as stored: the secret itself is never kept, only its keyed hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// `cred_<lookup>`.
    pub id: CredentialId,
    /// The identity it authenticates.
    pub identity: IdentityId,
    /// Free text for operators.
    pub description: String,
    /// HMAC-SHA-256 of the whole secret under the server's hash key.
    #[serde(skip)]
    pub hash: Vec<u8>,
    /// When it was issued.
    pub created_at: Time,
    /// When it stops working, if ever.
    pub expires_at: Option<Time>,
    /// When it last authenticated (updated at most once a minute).
    pub last_used_at: Option<Time>,
    /// When it was revoked.
    pub revoked_at: Option<Time>,
}

impl Credential {
    /// Whether it may authenticate at `now` (its identity's status is checked separately).
    pub fn usable(&self, now: Time) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// Validates a credential description.
pub fn validate_description(s: &str) -> Result<(), Invalid> {
    if s.len() > MAX_DESCRIPTION_LEN || s.chars().any(char::is_control) {
        return Err(Invalid::new(
            "description",
            format!(
                "description must be at most {MAX_DESCRIPTION_LEN} bytes without control characters"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone, Utc};

    #[test]
    fn credential_ids_are_validated() {
        let id = CredentialId::parse("cred_0123456789abcdef").unwrap();
        assert_eq!(id.lookup(), "0123456789abcdef");
        for bad in [
            "",
            "cred_",
            "cred_0123",
            "tok_0123456789abcdef",
            "cred_0123456789abcdeg",
        ] {
            assert!(CredentialId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn usable_only_while_unrevoked_and_unexpired() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut c = Credential {
            id: CredentialId::parse("cred_0123456789abcdef").unwrap(),
            identity: IdentityId::parse("agent:bot").unwrap(),
            description: String::new(),
            hash: vec![],
            created_at: now,
            expires_at: Some(now + TimeDelta::hours(1)),
            last_used_at: None,
            revoked_at: None,
        };
        assert!(c.usable(now));
        assert!(!c.usable(now + TimeDelta::hours(1)));
        c.expires_at = None;
        assert!(c.usable(now + TimeDelta::days(999)));
        c.revoked_at = Some(now);
        assert!(!c.usable(now));
    }
}
