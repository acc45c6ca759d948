//! The master key: it seals (AES-256-GCM) the secrets kept in a shared
//! database — the credential HMAC key, the checkpoint signing key and the
//! token-signing keys — so the database alone never yields key material.
//!
//! Sealed form: `0x01 ‖ nonce (12 random bytes) ‖ ciphertext ‖ tag (16)`,
//! with the secret's name as associated data, so a sealed value cannot be
//! moved to another name.

use crate::EngineError;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use zeroize::Zeroizing;

/// Environment variable holding the master key itself (its text form),
/// read when no master key file is given.
pub const MASTER_KEY_ENV: &str = "HANDOFF_MASTER_KEY";
/// Format byte of a sealed value.
const FORMAT: u8 = 1;
/// Bytes of a master key.
pub const MASTER_KEY_LEN: usize = 32;
/// A master key file is never larger than this (text with a newline).
const MAX_FILE_BYTES: u64 = 256;

/// The key that seals shared secrets. Never printed, never logged.
pub struct MasterKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    /// A key from its text form: 64 hex digits or base64 (standard or
    /// url-safe) of 32 bytes; surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, EngineError> {
        let text = text.trim();
        let bytes =
            if text.len() == 2 * MASTER_KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                handoff_audit::hex::decode(text)
            } else {
                STANDARD
                    .decode(text)
                    .ok()
                    .or_else(|| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok())
            }
            .map(Zeroizing::new)
            .ok_or_else(|| bad("it is neither 64 hex digits nor base64"))?;
        Self::from_bytes(&bytes)
    }

    /// A key from 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EngineError> {
        if bytes.len() != MASTER_KEY_LEN {
            return Err(bad(&format!(
                "it is {} bytes, not {MASTER_KEY_LEN}",
                bytes.len()
            )));
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| bad("it was refused"))?;
        Ok(Self {
            key: LessSafeKey::new(key),
        })
    }

    /// Reads a key file: 32 raw bytes, or the text form. The file must not
    /// be readable by group or others.
    pub fn from_file(path: &Path) -> Result<Self, EngineError> {
        let io = |e: std::io::Error| EngineError::Io(format!("{}: {e}", path.display()));
        let meta = fs::metadata(path).map_err(io)?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(EngineError::Io(format!(
                "{} is readable by group or others; run chmod 600 on it",
                path.display()
            )));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(EngineError::Io(format!(
                "{} is too large for a master key",
                path.display()
            )));
        }
        let bytes = Zeroizing::new(fs::read(path).map_err(io)?);
        if bytes.len() == MASTER_KEY_LEN {
            return Self::from_bytes(&bytes);
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| bad("the file is neither 32 bytes nor text"))?;
        Self::parse(text).map_err(|e| EngineError::Io(format!("{}: {e}", path.display())))
    }

    /// The key in `file` when one is given, else the one in
    /// [`MASTER_KEY_ENV`]; `None` when there is neither.
    pub fn from_file_or_env(file: Option<&Path>) -> Result<Option<Self>, EngineError> {
        if let Some(path) = file {
            return Self::from_file(path).map(Some);
        }
        match std::env::var(MASTER_KEY_ENV) {
            Ok(text) => Self::parse(&text)
                .map(Some)
                .map_err(|e| EngineError::Io(format!("{MASTER_KEY_ENV}: {e}"))),
            Err(_) => Ok(None),
        }
    }

    /// A fresh random key in its text form (base64), for `handoff keys
    /// master-key`.
    pub fn generate_text() -> Result<Zeroizing<String>, EngineError> {
        let bytes = crate::keys::random_bytes::<MASTER_KEY_LEN>()?;
        Ok(Zeroizing::new(STANDARD.encode(bytes.as_ref())))
    }

    /// Seals `plain` as the secret `name`.
    pub fn seal(&self, name: &str, plain: &[u8]) -> Result<Vec<u8>, EngineError> {
        let nonce = crate::keys::random_bytes::<NONCE_LEN>()?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + plain.len() + 16);
        sealed.push(FORMAT);
        sealed.extend_from_slice(nonce.as_ref());
        let mut body = Zeroizing::new(plain.to_vec());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad(name).as_bytes()),
                &mut *body,
            )
            .map_err(|_| EngineError::Io(format!("sealing secret {name} failed")))?;
        sealed.extend_from_slice(&body);
        Ok(sealed)
    }

    /// Opens a sealed secret; fails if it was sealed under another key or
    /// name, or altered.
    pub fn open(&self, name: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, EngineError> {
        let refused = || {
            EngineError::Io(format!(
                "the stored secret \"{name}\" cannot be opened with this master key \
                 (a different HANDOFF_MASTER_KEY_FILE than the one it was sealed with, \
                 or the stored value was altered)"
            ))
        };
        let (&format, rest) = sealed.split_first().ok_or_else(refused)?;
        if format != FORMAT || rest.len() < NONCE_LEN + 16 {
            return Err(refused());
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
        let mut body = Zeroizing::new(body.to_vec());
        let plain_len = self
            .key
            .open_in_place(nonce, Aad::from(aad(name).as_bytes()), &mut body)
            .map_err(|_| refused())?
            .len();
        body.truncate(plain_len);
        Ok(body)
    }
}

fn aad(name: &str) -> String {
    format!("handoff-secret:{name}")
}

fn bad(why: &str) -> EngineError {
    EngineError::Io(format!(
        "the master key is unusable: {why} (give 32 random bytes, e.g. `handoff keys master-key`)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_name() {
        let key = MasterKey::parse(&MasterKey::generate_text().unwrap()).unwrap();
        let sealed = key.seal("hmac", b"0123456789").unwrap();
        assert_eq!(&*key.open("hmac", &sealed).unwrap(), b"0123456789");
        assert!(!sealed.windows(10).any(|w| w == b"0123456789"));
        assert!(key.open("token-signing", &sealed).is_err());
        let other = MasterKey::parse(&MasterKey::generate_text().unwrap()).unwrap();
        let err = other.open("hmac", &sealed).unwrap_err().to_string();
        assert!(
            err.contains("cannot be opened with this master key"),
            "{err}"
        );
        let mut altered = sealed.clone();
        if let Some(b) = altered.last_mut() {
            *b ^= 1;
        }
        assert!(key.open("hmac", &altered).is_err());
        assert!(key.open("hmac", &[]).is_err());
        assert!(key.open("hmac", &sealed[..20]).is_err());
        // Two seals of one value differ (fresh nonce).
        assert_ne!(
            key.seal("hmac", b"x").unwrap(),
            key.seal("hmac", b"x").unwrap()
        );
    }

    #[test]
    fn keys_parse_from_hex_base64_and_raw_files_only_when_private() {
        let hex = "00".repeat(32);
        assert!(MasterKey::parse(&hex).is_ok());
        assert!(MasterKey::parse(&format!(" {hex}\n")).is_ok());
        assert!(MasterKey::parse(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(MasterKey::parse(&URL_SAFE_NO_PAD.encode([7u8; 32])).is_ok());
        for bad in ["", "short", &"00".repeat(31), &STANDARD.encode([7u8; 16])] {
            let err = MasterKey::parse(bad).unwrap_err().to_string();
            assert!(err.contains("master key is unusable"), "{err}");
        }
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("master.key");
        fs::write(&path, [9u8; 32]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            MasterKey::from_file(&path)
                .unwrap_err()
                .to_string()
                .contains("chmod 600")
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let raw = MasterKey::from_file(&path).unwrap();
        fs::write(&path, format!("{}\n", STANDARD.encode([9u8; 32]))).unwrap();
        let text = MasterKey::from_file(&path).unwrap();
        let sealed = raw.seal("n", b"v").unwrap();
        assert_eq!(&*text.open("n", &sealed).unwrap(), b"v");
    }
}
