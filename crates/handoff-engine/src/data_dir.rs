//! The data directory: where the embedded database, the keys and the
//! bootstrap admin token live, and how they are created on first start.
//!
//! ```text
//! <data-dir>/            0700
//!   handoff.db           SQLite database (WAL)
//!   admin-token          bootstrap admin token, 0600, written once
//!   keys/                0700
//!     hmac.key           32 random bytes, 0600
//!     audit-signing.key  Ed25519 PKCS#8, 0600
//!     audit-signing.pub  Ed25519 public key, hex
//!     token-signing.json access-token keys, 0600: JSON array of
//!                        {kid, alg, pkcs8 (base64url), created_at, retired_at}
//! ```

use crate::jwt::{Algorithm, TokenKeys};
use crate::{EngineError, Keys};
use handoff_audit::{PublicKey, Signer};
use handoff_core::Time;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Paths inside one data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The layout rooted at `root` (nothing is touched yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite database file.
    pub fn database(&self) -> PathBuf {
        self.root.join("handoff.db")
    }

    /// The bootstrap admin token file.
    pub fn admin_token(&self) -> PathBuf {
        self.root.join("admin-token")
    }

    fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }

    fn hmac_key(&self) -> PathBuf {
        self.keys_dir().join("hmac.key")
    }

    fn signing_key(&self) -> PathBuf {
        self.keys_dir().join("audit-signing.key")
    }

    /// The checkpoint public key file (hex).
    pub fn public_key_path(&self) -> PathBuf {
        self.keys_dir().join("audit-signing.pub")
    }

    /// The access-token key file (JSON, 0600).
    pub fn token_keys_path(&self) -> PathBuf {
        self.keys_dir().join("token-signing.json")
    }

    /// Creates the directory tree (0700) if missing.
    pub fn create(&self) -> Result<(), EngineError> {
        for dir in [self.root.clone(), self.keys_dir()] {
            fs::create_dir_all(&dir).map_err(|e| io_error(&dir, &e))?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| io_error(&dir, &e))?;
        }
        Ok(())
    }

    /// Loads the keys, generating any that are missing (a new token key is
    /// EdDSA, dated `now`).
    pub fn load_or_create_keys(&self, now: Time) -> Result<Keys, EngineError> {
        self.create()?;
        let hmac_path = self.hmac_key();
        if !hmac_path.exists() {
            let key = crate::keys::random_bytes::<32>()?;
            write_secret_file(&hmac_path, key.as_ref())?;
        }
        let signing_path = self.signing_key();
        if !signing_path.exists() {
            let pkcs8 = Signer::generate_pkcs8().map_err(|e| EngineError::Io(e.to_string()))?;
            write_secret_file(&signing_path, &pkcs8)?;
        }
        let hmac_key = read_secret_file(&hmac_path)?;
        let pkcs8 = read_secret_file(&signing_path)?;
        let tokens = TokenKeys::load_or_create(&self.token_keys_path(), Algorithm::EdDSA, now)?;
        let keys = Keys::with_tokens(&hmac_key, &pkcs8, tokens)?;
        let public_hex = handoff_audit::hex::encode(keys.public_key().as_bytes());
        let pub_path = self.public_key_path();
        let stale = fs::read_to_string(&pub_path)
            .map(|s| s.trim() != public_hex)
            .unwrap_or(true);
        if stale {
            fs::write(&pub_path, format!("{public_hex}\n")).map_err(|e| io_error(&pub_path, &e))?;
        }
        Ok(keys)
    }

    /// Reads the checkpoint public key (for offline verification).
    pub fn public_key(&self) -> Result<PublicKey, EngineError> {
        let path = self.public_key_path();
        let text = fs::read_to_string(&path).map_err(|e| io_error(&path, &e))?;
        handoff_audit::hex::decode(text.trim())
            .and_then(|b| PublicKey::from_bytes(&b).ok())
            .ok_or_else(|| {
                EngineError::Io(format!("{} is not an ed25519 public key", path.display()))
            })
    }

    /// Writes the bootstrap admin token (mode 0600), replacing an older file.
    pub fn write_admin_token(&self, secret: &str) -> Result<PathBuf, EngineError> {
        let path = self.admin_token();
        let _ = fs::remove_file(&path);
        write_secret_file(&path, format!("{secret}\n").as_bytes())?;
        Ok(path)
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> EngineError {
    EngineError::Io(format!("{}: {e}", path.display()))
}

/// Creates `path` with mode 0600 and writes `bytes`; refuses to overwrite.
fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_error(path, &e))?;
    f.write_all(bytes).map_err(|e| io_error(path, &e))?;
    f.sync_all().map_err(|e| io_error(path, &e))
}

fn read_secret_file(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, EngineError> {
    let meta = fs::metadata(path).map_err(|e| io_error(path, &e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(EngineError::Io(format!(
            "{} is readable by group or others; run chmod 600 on it",
            path.display()
        )));
    }
    fs::read(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| io_error(path, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_with_private_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path().join("data"));
        let a = dir.load_or_create_keys(Time::UNIX_EPOCH).unwrap();
        let b = dir.load_or_create_keys(Time::UNIX_EPOCH).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a.tokens().kids(), b.tokens().kids());
        assert_eq!(dir.public_key().unwrap(), a.public_key());
        for p in [dir.hmac_key(), dir.signing_key(), dir.token_keys_path()] {
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(
            fs::metadata(dir.root()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let token = dir.write_admin_token("hfa_x").unwrap();
        assert_eq!(
            fs::metadata(&token).unwrap().permissions().mode() & 0o777,
            0o600
        );
        dir.write_admin_token("hfa_y").unwrap();
        assert_eq!(fs::read_to_string(&token).unwrap(), "hfa_y\n");
    }

    #[test]
    fn a_world_readable_key_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        dir.load_or_create_keys(Time::UNIX_EPOCH).unwrap();
        fs::set_permissions(dir.hmac_key(), fs::Permissions::from_mode(0o644)).unwrap();
        let err = dir.load_or_create_keys(Time::UNIX_EPOCH).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
