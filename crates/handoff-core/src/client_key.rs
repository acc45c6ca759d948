//! Public keys registered on an agent or service, with which it signs
//! `private_key_jwt` client assertions (RFC 7523 §2.2) instead of sending a
//! secret. Handoff stores only the public JWK; the key id names it.

use crate::identity::shorten;
use crate::{IdentityId, Invalid, Time};
use serde::{Deserialize, Serialize};

/// Longest key id, in bytes.
pub const MAX_KID_LEN: usize = 128;

/// Largest JWK accepted, in bytes of JSON.
pub const MAX_JWK_BYTES: usize = 8 * 1024;

/// A client's public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientKey {
    /// The agent or service it authenticates.
    pub identity: IdentityId,
    /// Its key id (the JWK's `kid`, or its RFC 7638 thumbprint).
    pub kid: String,
    /// The public JWK, as JSON.
    pub jwk: String,
    /// When it was registered.
    pub created_at: Time,
    /// When it was revoked.
    pub revoked_at: Option<Time>,
}

/// Validates a key id: 1 to 128 bytes of printable ASCII without spaces.
pub fn check_kid(kid: &str) -> Result<(), Invalid> {
    let ok = !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(
            "kid",
            format!(
                "invalid key id \"{}\": 1 to {MAX_KID_LEN} printable ascii characters without spaces",
                shorten(kid)
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_bounded_printable_ascii() {
        assert!(check_kid("k1").is_ok());
        assert!(check_kid("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs").is_ok());
        for bad in ["", "a b", "é", &"k".repeat(MAX_KID_LEN + 1)] {
            assert!(check_kid(bad).is_err(), "{bad}");
        }
    }
}
