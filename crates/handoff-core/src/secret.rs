//! The wire format of bearer secrets (credentials and admin tokens).
//!
//! A secret reads `<tag>_<lookup>_<random>`: `tag` says what it is (`hfc` a
//! credential, `hfa` an admin token), `lookup` is 16 non-secret hex digits
//! that find the stored record in O(1), `random` is 256 bits of randomness in
//! unpadded base64url (43 characters). Only a keyed hash of the whole string
//! is ever stored.

use crate::Invalid;

/// Length of the non-secret lookup part, in hex digits.
pub const LOOKUP_LEN: usize = 16;
/// Length of the random part: 32 bytes in unpadded base64url.
pub const RANDOM_LEN: usize = 43;

/// What a presented secret claims to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A credential of an agent or service (`hfc_`).
    Credential,
    /// An admin API token (`hfa_`).
    AdminToken,
}

impl SecretKind {
    /// The tag that starts the secret.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Credential => "hfc",
            Self::AdminToken => "hfa",
        }
    }

    /// The id prefix of the record the secret belongs to.
    pub fn id_prefix(self) -> &'static str {
        match self {
            Self::Credential => "cred_",
            Self::AdminToken => "tok_",
        }
    }
}

/// A secret as presented by a caller, split but not yet checked against the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented<'a> {
    /// What it claims to be.
    pub kind: SecretKind,
    /// The lookup part (non-secret).
    pub lookup: &'a str,
    /// The whole presented string, to be hashed and compared.
    pub whole: &'a str,
}

impl<'a> Presented<'a> {
    /// Splits a presented secret. Fails on anything not of the exact shape.
    pub fn parse(s: &'a str) -> Result<Self, Invalid> {
        let bad = || Invalid::new("token", "malformed token");
        let mut parts = s.splitn(3, '_');
        let (Some(tag), Some(lookup), Some(random)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let kind = match tag {
            "hfc" => SecretKind::Credential,
            "hfa" => SecretKind::AdminToken,
            _ => return Err(bad()),
        };
        let lookup_ok = lookup.len() == LOOKUP_LEN
            && lookup
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let random_ok = random.len() == RANDOM_LEN
            && random
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !lookup_ok || !random_ok {
            return Err(bad());
        }
        Ok(Self {
            kind,
            lookup,
            whole: s,
        })
    }

    /// The id of the record this secret claims to belong to.
    pub fn record_id(&self) -> String {
        format!("{}{}", self.kind.id_prefix(), self.lookup)
    }
}

/// Builds the secret string from its parts (the engine supplies the randomness).
pub fn compose(kind: SecretKind, lookup: &str, random: &str) -> String {
    format!("{}_{lookup}_{random}", kind.tag())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANDOM: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde";

    #[test]
    fn composed_secrets_parse_back() {
        let s = compose(SecretKind::Credential, "0123456789abcdef", RANDOM);
        let p = Presented::parse(&s).unwrap();
        assert_eq!(p.kind, SecretKind::Credential);
        assert_eq!(p.lookup, "0123456789abcdef");
        assert_eq!(p.record_id(), "cred_0123456789abcdef");
        let t = compose(SecretKind::AdminToken, "0123456789abcdef", RANDOM);
        assert_eq!(
            Presented::parse(&t).unwrap().record_id(),
            "tok_0123456789abcdef"
        );
    }

    #[test]
    fn malformed_secrets_are_rejected() {
        for bad in [
            "",
            "hfc",
            "hfc_0123456789abcdef",
            "hfx_0123456789abcdef_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde",
            "hfc_0123456789ABCDEF_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde",
            "hfc_0123456789abcde_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdef",
            "hfc_0123456789abcdef_short",
            "hfc_0123456789abcdef_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd=",
        ] {
            assert!(Presented::parse(bad).is_err(), "{bad:?}");
        }
    }
}
