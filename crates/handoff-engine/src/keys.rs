//! The server's secret keys: the HMAC key that hashes credentials and
//! tokens at rest, the Ed25519 key that signs audit checkpoints and the
//! keys that sign access tokens ([`TokenKeys`]).

use crate::EngineError;
use crate::jwt::{Algorithm, TokenKeys};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use handoff_audit::{PublicKey, Signer};
use handoff_core::Time;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Key material held in memory for the life of the process.
pub struct Keys {
    hmac: hmac::Key,
    signer: Signer,
    tokens: TokenKeys,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("checkpoint_key_id", &self.signer.public_key().key_id())
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Keys from their stored forms: 32 HMAC key bytes and an Ed25519 PKCS#8
    /// document, with a fresh in-memory EdDSA token key (dated the epoch).
    pub fn from_parts(hmac_key: &[u8], signing_pkcs8: &[u8]) -> Result<Self, EngineError> {
        let tokens = TokenKeys::ephemeral(Algorithm::EdDSA, Time::UNIX_EPOCH)?;
        Self::with_tokens(hmac_key, signing_pkcs8, tokens)
    }

    /// Keys from their stored forms and the token keys.
    pub fn with_tokens(
        hmac_key: &[u8],
        signing_pkcs8: &[u8],
        tokens: TokenKeys,
    ) -> Result<Self, EngineError> {
        if hmac_key.len() != 32 {
            return Err(EngineError::Io("the hmac key must be 32 bytes".into()));
        }
        let signer =
            Signer::from_pkcs8(signing_pkcs8).map_err(|e| EngineError::Io(e.to_string()))?;
        Ok(Self {
            hmac: hmac::Key::new(hmac::HMAC_SHA256, hmac_key),
            signer,
            tokens,
        })
    }

    /// Fresh random keys that live only in memory; for tests and benchmarks.
    pub fn ephemeral() -> Result<Self, EngineError> {
        let hmac_key = random_bytes::<32>()?;
        let pkcs8 = Signer::generate_pkcs8().map_err(|e| EngineError::Io(e.to_string()))?;
        Self::from_parts(hmac_key.as_ref(), &pkcs8)
    }

    /// HMAC-SHA-256 of a whole secret string, as stored.
    pub fn hash_secret(&self, secret: &str) -> Vec<u8> {
        hmac::sign(&self.hmac, secret.as_bytes()).as_ref().to_vec()
    }

    /// Compares a presented secret with a stored hash in constant time.
    pub fn secret_matches(&self, secret: &str, stored: &[u8]) -> bool {
        let computed = hmac::sign(&self.hmac, secret.as_bytes());
        computed.as_ref().ct_eq(stored).into()
    }

    /// What the audit log records in place of a secret: an HMAC under a
    /// separate label, so the record never equals the stored hash.
    pub fn redact(&self, secret: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.hmac);
        ctx.update(b"handoff-audit-redaction\0");
        ctx.update(secret.as_bytes());
        format!(
            "hmac-sha256:{}",
            handoff_audit::hex::encode(ctx.sign().as_ref())
        )
    }

    /// The checkpoint signer.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The checkpoint verification key.
    pub fn public_key(&self) -> PublicKey {
        self.signer.public_key()
    }

    /// The access-token signing keys.
    pub fn tokens(&self) -> &TokenKeys {
        &self.tokens
    }
}

/// `N` bytes from the system's secure random generator.
pub fn random_bytes<const N: usize>() -> Result<Zeroizing<[u8; N]>, EngineError> {
    let mut buf = Zeroizing::new([0u8; N]);
    SystemRandom::new()
        .fill(buf.as_mut())
        .map_err(|_| EngineError::Io("the system random generator failed".into()))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_their_own_hash() {
        let keys = Keys::ephemeral().unwrap();
        let h = keys.hash_secret("hfc_a");
        assert!(keys.secret_matches("hfc_a", &h));
        assert!(!keys.secret_matches("hfc_b", &h));
        assert!(!keys.secret_matches("hfc_a", &h[..31]));
        assert_ne!(keys.redact("hfc_a"), handoff_audit::hex::encode(&h));
        let other = Keys::ephemeral().unwrap();
        assert!(!other.secret_matches("hfc_a", &h));
    }
}
