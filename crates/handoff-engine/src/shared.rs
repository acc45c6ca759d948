//! Keys kept in a shared database: every node signs and verifies with the
//! same keys, read from the store and opened with the master key. The first
//! node to start creates them; the others read what it stored.

use crate::jwt::{Algorithm, TokenKeys};
use crate::master_key::MasterKey;
use crate::{EngineError, Keys};
use handoff_audit::{PublicKey, Signer};
use handoff_core::Time;
use handoff_store::{Sealed, Store};
use zeroize::Zeroizing;

/// The secret holding the 32-byte HMAC key that hashes credentials.
pub const HMAC_SECRET: &str = "hmac";
/// The secret holding the checkpoint signing key (Ed25519 PKCS#8).
pub const CHECKPOINT_SECRET: &str = "audit-signing";
/// The secret holding the token-signing keys (JSON, as the key file).
pub const TOKEN_SECRET: &str = "token-signing";

/// What a node needs to change shared keys: the master key.
#[derive(Debug)]
pub struct SharedKeys {
    master: MasterKey,
}

impl SharedKeys {
    /// Loads the keys from `store`, creating those that are missing (a new
    /// token key is `algorithm`, dated `now`).
    pub async fn load(
        store: &dyn Store,
        master: MasterKey,
        algorithm: Algorithm,
        now: Time,
    ) -> Result<(Keys, Self), EngineError> {
        let (hmac, _) = open_or_create(store, &master, HMAC_SECRET, || {
            Ok(Zeroizing::new(
                crate::keys::random_bytes::<32>()?.as_ref().to_vec(),
            ))
        })
        .await?;
        let (pkcs8, _) = open_or_create(store, &master, CHECKPOINT_SECRET, || {
            Signer::generate_pkcs8()
                .map(Zeroizing::new)
                .map_err(|e| EngineError::Io(e.to_string()))
        })
        .await?;
        let (tokens, _) = open_or_create(store, &master, TOKEN_SECRET, || {
            TokenKeys::ephemeral(algorithm, now)?.to_bytes()
        })
        .await?;
        let tokens = TokenKeys::from_bytes(&tokens, "stored token keys")?;
        let keys = Keys::with_tokens(&hmac, &pkcs8, tokens)?;
        Ok((keys, Self { master }))
    }

    /// The checkpoint public key of a shared database (for offline
    /// verification), opened with the master key: a key swapped in the
    /// database without the master key fails here instead of verifying.
    pub async fn checkpoint_key(
        store: &dyn Store,
        master: &MasterKey,
    ) -> Result<PublicKey, EngineError> {
        let sealed = store
            .secret(CHECKPOINT_SECRET)
            .await?
            .ok_or_else(|| EngineError::NotFound("the database holds no checkpoint key".into()))?;
        let pkcs8 = master.open(CHECKPOINT_SECRET, &sealed.value)?;
        Signer::from_pkcs8(&pkcs8)
            .map(|s| s.public_key())
            .map_err(|e| EngineError::Io(e.to_string()))
    }

    /// Reads the token keys again (another node rotated them).
    pub(crate) async fn reload_tokens(
        &self,
        store: &dyn Store,
        tokens: &TokenKeys,
    ) -> Result<(), EngineError> {
        let (fresh, _) = self.current_tokens(store).await?;
        tokens.replace_with(&fresh);
        Ok(())
    }

    /// The stored token keys, for a rotation to start from, and their
    /// stored version.
    pub(crate) async fn current_tokens(
        &self,
        store: &dyn Store,
    ) -> Result<(TokenKeys, u64), EngineError> {
        let sealed = store
            .secret(TOKEN_SECRET)
            .await?
            .ok_or_else(|| EngineError::Store("the token keys disappeared".into()))?;
        Ok((self.open_tokens(&sealed)?, sealed.version))
    }

    /// Seals `tokens` for storing.
    pub(crate) fn seal_tokens(&self, tokens: &TokenKeys) -> Result<Vec<u8>, EngineError> {
        self.master.seal(TOKEN_SECRET, &tokens.to_bytes()?)
    }

    fn open_tokens(&self, sealed: &Sealed) -> Result<TokenKeys, EngineError> {
        let plain = self.master.open(TOKEN_SECRET, &sealed.value)?;
        TokenKeys::from_bytes(&plain, "stored token keys")
    }
}

/// Opens the secret `name`, storing `make()` first if there is none; when
/// another node stores it first, its value wins.
async fn open_or_create(
    store: &dyn Store,
    master: &MasterKey,
    name: &str,
    make: impl FnOnce() -> Result<Zeroizing<Vec<u8>>, EngineError>,
) -> Result<(Zeroizing<Vec<u8>>, u64), EngineError> {
    if let Some(sealed) = store.secret(name).await? {
        return Ok((master.open(name, &sealed.value)?, sealed.version));
    }
    let fresh = make()?;
    if store
        .create_secret(name, &master.seal(name, &fresh)?)
        .await?
    {
        tracing::info!(secret = name, "created a shared key in the database");
    }
    let sealed = store
        .secret(name)
        .await?
        .ok_or_else(|| EngineError::Store(format!("secret {name} vanished after creation")))?;
    Ok((master.open(name, &sealed.value)?, sealed.version))
}
