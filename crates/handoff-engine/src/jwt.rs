//! Handoff's own access tokens: JWTs (RFC 7519) in the RFC 9068 profile,
//! carrying the RFC 8693 §4.1 `act` chain, signed with the server's token
//! keys ([`TokenKeys`]) and verified against them.
//!
//! Owns the claim set ([`Claims`], [`Act`]), the errors ([`TokenError`])
//! and the key ring (generation, rotation, pruning, the JWKS and the key
//! file). Verification accepts only the algorithm of the key named by
//! `kid`, so `alg: none`, HMAC keyed with the public key and other
//! algorithm confusion fail. Tokens of other issuers, client assertions
//! and the parsing rules all verifiers share are [`crate::trusted`]'s.
//!
//! It never reads the clock (jsonwebtoken's own `exp`/`nbf` checks, which
//! would, are switched off) and never logs token contents.

use crate::EngineError;
use crate::trusted::{check_algorithm, clip, parse_header, verify_signature};
use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use handoff_core::{Invalid, Time};
use jsonwebtoken::{DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};
use zeroize::{Zeroize, Zeroizing};

pub use crate::trusted::{Assertion, External, TrustedIssuer, unverified_issuer, verify_assertion};

/// The largest token accepted anywhere, in bytes; larger input is refused
/// before it is decoded.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The `typ` header of Handoff's access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// How far in the future an own token's `iat` may lie (clock steps between
/// replicas).
const MAX_IAT_AHEAD_SECONDS: i64 = 60;

/// The largest key file accepted.
const MAX_KEY_FILE_BYTES: u64 = 1024 * 1024;

/// A signature algorithm of Handoff's own token keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// Ed25519 (RFC 8037).
    #[serde(rename = "EdDSA")]
    EdDSA,
    /// ECDSA on P-256 with SHA-256 (RFC 7518 §3.4).
    #[serde(rename = "ES256")]
    ES256,
}

impl Algorithm {
    /// The JOSE name (`EdDSA`, `ES256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
        }
    }

    /// The same algorithm as jsonwebtoken names it.
    pub fn jose(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signing algorithm name that is neither `EdDSA` nor `ES256`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signing algorithm \"{0}\"; expected \"EdDSA\" or \"ES256\"")]
pub struct UnknownAlgorithm(pub String);

impl std::str::FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Parses the JOSE name, ignoring ASCII case (configuration input).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("EdDSA") {
            Ok(Self::EdDSA)
        } else if s.eq_ignore_ascii_case("ES256") {
            Ok(Self::ES256)
        } else {
            Err(UnknownAlgorithm(clip(s)))
        }
    }
}

/// The `act` (actor) claim, RFC 8693 §4.1: the outermost actor is the
/// current one, each nested `act` the one before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Act {
    /// The actor's subject.
    pub sub: String,
    /// The actor before this one, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Act>>,
}

impl Act {
    /// A chain of one actor.
    pub fn new(sub: impl Into<String>) -> Self {
        Self {
            sub: sub.into(),
            act: None,
        }
    }

    /// This chain with `sub` added as the new current (outermost) actor.
    #[must_use]
    pub fn then(self, sub: impl Into<String>) -> Self {
        Self {
            sub: sub.into(),
            act: Some(Box::new(self)),
        }
    }

    /// The actors' subjects, current first.
    pub fn actors(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let mut next = Some(self);
        while let Some(a) = next {
            out.push(a.sub.as_str());
            next = a.act.as_deref();
        }
        out
    }
}

/// The claims of a Handoff access token (RFC 9068 §2.2 plus RFC 8693 `act`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The issuer: this server's issuer URL.
    pub iss: String,
    /// The subject the token acts for.
    pub sub: String,
    /// The audiences; one is written as a string, several as an array.
    #[serde(with = "audience")]
    pub aud: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// The token's unique id.
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
    /// The actor chain, when the token was issued by delegation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Act>,
    /// The id of the exchange transaction (delegation chain) it belongs to.
    pub txn: String,
    /// How many handoffs led to this token (0 for a direct grant).
    pub depth: u32,
}

/// The claims an own token must carry, in the order they are checked.
const REQUIRED_CLAIMS: [&str; 10] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "jti",
    "client_id",
    "scope",
    "txn",
    "depth",
];

/// `aud` as a string when there is one entry, an array otherwise (RFC 7519 §4.1.3).
mod audience {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(aud: &[String], s: S) -> Result<S::Ok, S::Error> {
        match aud {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        })
    }
}

/// Why a token was refused. Safe to show a client; never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Larger than [`MAX_TOKEN_BYTES`].
    #[error("token is larger than 16 KiB")]
    TooLarge,
    /// Not three base64url parts of JSON objects.
    #[error("token is malformed")]
    Malformed,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    InvalidSignature,
    /// `exp` has passed.
    #[error("token has expired")]
    Expired,
    /// `nbf` (or an own token's `iat`) lies in the future.
    #[error("token is not valid yet")]
    NotYetValid,
    /// An assertion whose `exp` is further ahead than allowed.
    #[error("token expires too far in the future")]
    LifetimeTooLong,
    /// The header has no `kid` and the key cannot be chosen without one.
    #[error("token has no key id")]
    MissingKeyId,
    /// No key has this `kid`.
    #[error("unknown key id \"{0}\"")]
    UnknownKey(String),
    /// The key named by `kid` cannot verify signatures (symmetric,
    /// encryption-only or of an unsupported type).
    #[error("key \"{0}\" cannot verify tokens")]
    UnusableKey(String),
    /// `alg: none`.
    #[error("algorithm \"none\" is not accepted")]
    AlgorithmNone,
    /// The header's algorithm is not the one of the selected key.
    #[error("algorithm \"{0}\" is not accepted for this key")]
    AlgorithmNotAccepted(String),
    /// The header's `typ` is not the expected one.
    #[error("token type \"{0}\" is not accepted")]
    WrongType(String),
    /// The header names a critical extension (RFC 7515 §4.1.11) we do not implement.
    #[error("header parameter \"crit\" is not supported")]
    CriticalHeader,
    /// `iss` is not the expected issuer.
    #[error("issuer \"{0}\" is not trusted")]
    UntrustedIssuer(String),
    /// `aud` does not contain the expected audience.
    #[error("audience does not match")]
    AudienceMismatch,
    /// A required claim is absent.
    #[error("missing claim \"{0}\"")]
    MissingClaim(String),
    /// A claim has the wrong type or an impossible value.
    #[error("claim \"{0}\" is invalid")]
    InvalidClaim(String),
    /// A claim does not have the value it must have (e.g. an assertion's
    /// `sub` is not the client id).
    #[error("claim \"{0}\" does not have the expected value")]
    ClaimMismatch(String),
}

/// One token key: the private key (PKCS#8), its public half and dates.
#[derive(Clone)]
struct TokenKey {
    kid: String,
    alg: Algorithm,
    pkcs8: Zeroizing<Vec<u8>>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Ed25519: the 32-byte key; P-256: the 65-byte uncompressed point.
    public: Vec<u8>,
    created_at: Time,
    retired_at: Option<Time>,
}

impl TokenKey {
    fn generate(alg: Algorithm, now: Time) -> Result<Self, EngineError> {
        let rng = SystemRandom::new();
        let doc = match alg {
            Algorithm::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng),
            Algorithm::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            }
        }
        .map_err(|_| EngineError::Io("token key generation failed".into()))?;
        Self::from_pkcs8(alg, Zeroizing::new(doc.as_ref().to_vec()), now, None)
    }

    fn from_pkcs8(
        alg: Algorithm,
        pkcs8: Zeroizing<Vec<u8>>,
        created_at: Time,
        retired_at: Option<Time>,
    ) -> Result<Self, EngineError> {
        let bad = || EngineError::Io(format!("the {alg} token key is not a valid PKCS#8 key"));
        let (public, encoding, decoding) = match alg {
            Algorithm::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| bad())?;
                let public = pair.public_key().as_ref().to_vec();
                let decoding = DecodingKey::from_ed_der(&public);
                (public, EncodingKey::from_ed_der(&pkcs8), decoding)
            }
            Algorithm::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                    .map_err(|_| bad())?;
                let public = pair.public_key().as_ref().to_vec();
                let decoding = DecodingKey::from_ec_der(&public);
                (public, EncodingKey::from_ec_der(&pkcs8), decoding)
            }
        };
        let kid = thumbprint(alg, &public)?;
        Ok(Self {
            kid,
            alg,
            pkcs8,
            encoding,
            decoding,
            public,
            created_at,
            retired_at,
        })
    }

    fn jwk(&self) -> Value {
        let mut m = public_members(self.alg, &self.public).unwrap_or_default();
        m.insert("kid".into(), self.kid.clone().into());
        m.insert("alg".into(), self.alg.as_str().into());
        m.insert("use".into(), "sig".into());
        Value::Object(m)
    }
}

/// The public JWK members (RFC 8037 §2 for OKP, RFC 7518 §6.2 for EC).
fn public_members(alg: Algorithm, public: &[u8]) -> Result<Map<String, Value>, EngineError> {
    let mut m = Map::new();
    match alg {
        Algorithm::EdDSA => {
            m.insert("crv".into(), "Ed25519".into());
            m.insert("kty".into(), "OKP".into());
            m.insert("x".into(), URL_SAFE_NO_PAD.encode(public).into());
        }
        Algorithm::ES256 => {
            let (x, y) = match (public.len(), public.get(1..33), public.get(33..)) {
                (65, Some(x), Some(y)) => (x, y),
                _ => return Err(EngineError::Io("the ES256 public key is malformed".into())),
            };
            m.insert("crv".into(), "P-256".into());
            m.insert("kty".into(), "EC".into());
            m.insert("x".into(), URL_SAFE_NO_PAD.encode(x).into());
            m.insert("y".into(), URL_SAFE_NO_PAD.encode(y).into());
        }
    }
    Ok(m)
}

/// The RFC 7638 JWK thumbprint (SHA-256, base64url), used as the key id.
fn thumbprint(alg: Algorithm, public: &[u8]) -> Result<String, EngineError> {
    // serde_json's Map is ordered by key, so this is the canonical form:
    // the required members in lexicographic order, no whitespace.
    let canonical = serde_json::to_vec(&public_members(alg, public)?)
        .map_err(|e| EngineError::Io(format!("token key thumbprint: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, &canonical)))
}

/// One key as the key file stores it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKey {
    kid: String,
    alg: Algorithm,
    /// The PKCS#8 document, base64url without padding.
    pkcs8: String,
    created_at: Time,
    retired_at: Option<Time>,
}

impl Drop for StoredKey {
    fn drop(&mut self) {
        self.pkcs8.zeroize();
    }
}

/// The server's token-signing keys: the current signing key and the
/// retired ones that still verify the tokens they signed until pruned.
/// Safe to share between threads.
pub struct TokenKeys {
    /// In creation order; the signing key is the newest one not retired.
    keys: RwLock<Vec<TokenKey>>,
    /// The key file, when the keys persist.
    path: Option<PathBuf>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<String> = self
            .read()
            .iter()
            .map(|k| format!("{} {}", k.alg, k.kid))
            .collect();
        f.debug_struct("TokenKeys")
            .field("keys", &kids)
            .field("path", &self.path)
            .finish()
    }
}

impl TokenKeys {
    /// One fresh key that lives only in memory; for tests and for servers
    /// whose tokens need not survive a restart.
    pub fn ephemeral(alg: Algorithm, now: Time) -> Result<Self, EngineError> {
        Ok(Self {
            keys: RwLock::new(vec![TokenKey::generate(alg, now)?]),
            path: None,
        })
    }

    /// Loads the key file at `path`, creating it (mode 0600, with one `alg`
    /// key) if missing. `alg` is used only when a key must be created: an
    /// existing signing key of another algorithm is kept (change algorithm
    /// with [`TokenKeys::rotate`]).
    pub fn load_or_create(path: &Path, alg: Algorithm, now: Time) -> Result<Self, EngineError> {
        let mut keys = match fs::symlink_metadata(path) {
            Ok(_) => read_key_file(path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_error(path, &e)),
        };
        let created = if keys.iter().any(|k| k.retired_at.is_none()) {
            false
        } else {
            keys.push(TokenKey::generate(alg, now)?);
            true
        };
        if created {
            write_key_file(path, &keys)?;
        }
        Ok(Self {
            keys: RwLock::new(keys),
            path: Some(path.to_owned()),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<TokenKey>> {
        // A writer replaces the whole vector only after persisting it, so a
        // poisoned lock still guards a consistent ring.
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Signs `claims` with the newest key not retired; the header is
    /// `{alg, typ: "at+jwt", kid}` (RFC 9068 §2.1).
    pub fn sign(&self, claims: &Claims) -> Result<String, EngineError> {
        let keys = self.read();
        let key = keys
            .iter()
            .rev()
            .find(|k| k.retired_at.is_none())
            .ok_or_else(|| EngineError::Io("no token signing key is active".into()))?;
        let mut header = Header::new(key.alg.jose());
        header.typ = Some(ACCESS_TOKEN_TYPE.into());
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| EngineError::Io(format!("token signing failed: {e}")))?;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(EngineError::Invalid(Invalid::new(
                "token",
                "the token would be larger than 16 KiB",
            )));
        }
        Ok(token)
    }

    /// Verifies one of this server's tokens: `typ` `at+jwt`, `kid` one of
    /// ours (retired keys still verify), that key's algorithm only,
    /// `iss == issuer`, `exp > now` and `iat <= now + 60 s`. The audience is
    /// the caller's to check.
    pub fn verify(&self, token: &str, issuer: &str, now: Time) -> Result<Claims, TokenError> {
        let header = parse_header(token)?;
        // RFC 9068 §4: "at+jwt" or its full media type name, any case.
        let typ = header.typ.as_deref().unwrap_or_default();
        let typ_ok = typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)
            || typ.eq_ignore_ascii_case("application/at+jwt");
        if !typ_ok {
            return Err(TokenError::WrongType(clip(typ)));
        }
        let kid = header.kid.ok_or(TokenError::MissingKeyId)?;
        let mut map = {
            let keys = self.read();
            let key = keys
                .iter()
                .find(|k| k.kid == kid)
                .ok_or_else(|| TokenError::UnknownKey(clip(&kid)))?;
            check_algorithm(&header.alg, key.alg.jose())?;
            verify_signature(token, &key.decoding, key.alg.jose())?
        };
        for name in REQUIRED_CLAIMS {
            if map.get(name).is_none_or(Value::is_null) {
                return Err(TokenError::MissingClaim(name.into()));
            }
        }
        // Claims carries no `nbf`; an own token never has one.
        map.remove("nbf");
        let claims: Claims =
            serde_json::from_value(Value::Object(map)).map_err(|_| TokenError::Malformed)?;
        if claims.iss != issuer {
            return Err(TokenError::UntrustedIssuer(clip(&claims.iss)));
        }
        let now = now.timestamp();
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        if claims.iat > now.saturating_add(MAX_IAT_AHEAD_SECONDS) {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }

    /// The JWKS (RFC 7517 §5) of every key that may still verify a token.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self.read().iter().map(TokenKey::jwk).collect();
        serde_json::json!({ "keys": keys })
    }

    /// Adds a fresh `alg` key and signs with it from now on; the previous
    /// signing key is retired at `now` but still verifies. Persists first
    /// when file-backed. Returns the new key id.
    pub fn rotate(&self, alg: Algorithm, now: Time) -> Result<String, EngineError> {
        let fresh = TokenKey::generate(alg, now)?;
        let kid = fresh.kid.clone();
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = keys.clone();
        for k in next.iter_mut().filter(|k| k.retired_at.is_none()) {
            k.retired_at = Some(now);
        }
        next.push(fresh);
        if let Some(path) = &self.path {
            write_key_file(path, &next)?;
        }
        *keys = next;
        Ok(kid)
    }

    /// Drops the keys retired more than `max_lifetime` ago (the longest a
    /// token lives, so every token they signed has expired) and returns
    /// their ids. Persists when file-backed and something was dropped.
    pub fn prune(
        &self,
        now: Time,
        max_lifetime: chrono::TimeDelta,
    ) -> Result<Vec<String>, EngineError> {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        let (gone, kept): (Vec<TokenKey>, Vec<TokenKey>) = keys
            .iter()
            .cloned()
            .partition(|k| k.retired_at.is_some_and(|r| now - r > max_lifetime));
        if gone.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(path) = &self.path {
            write_key_file(path, &kept)?;
        }
        *keys = kept;
        Ok(gone.into_iter().map(|k| k.kid).collect())
    }

    /// The algorithm of the current signing key (EdDSA if none is active).
    pub fn algorithm(&self) -> Algorithm {
        self.read()
            .iter()
            .rev()
            .find(|k| k.retired_at.is_none())
            .map_or(Algorithm::EdDSA, |k| k.alg)
    }

    /// Keys from their stored form (what [`TokenKeys::to_bytes`] wrote),
    /// held in memory only: the caller persists them (in the database,
    /// sealed under the master key).
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self, EngineError> {
        let keys = parse_keys(bytes, origin)?;
        if !keys.iter().any(|k| k.retired_at.is_none()) {
            return Err(EngineError::Io(format!("{origin}: no key is active")));
        }
        Ok(Self {
            keys: RwLock::new(keys),
            path: None,
        })
    }

    /// The stored form of every key (private keys included: seal it).
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, EngineError> {
        serialize_keys(&self.read())
    }

    /// Takes `other`'s keys (another node rotated them).
    pub fn replace_with(&self, other: &TokenKeys) {
        let next = other.read().clone();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = next;
    }

    /// Every key: id, algorithm, creation and retirement time, oldest first.
    pub fn kids(&self) -> Vec<(String, Algorithm, Time, Option<Time>)> {
        self.read()
            .iter()
            .map(|k| (k.kid.clone(), k.alg, k.created_at, k.retired_at))
            .collect()
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> EngineError {
    EngineError::Io(format!("{}: {e}", path.display()))
}

fn read_key_file(path: &Path) -> Result<Vec<TokenKey>, EngineError> {
    let meta = fs::metadata(path).map_err(|e| io_error(path, &e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(EngineError::Io(format!(
            "{} is readable by group or others; run chmod 600 on it",
            path.display()
        )));
    }
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(EngineError::Io(format!("{} is too large", path.display())));
    }
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| io_error(path, &e))?);
    parse_keys(&bytes, &path.display().to_string())
}

/// Token keys from their stored form (a JSON array of [`StoredKey`]);
/// `origin` names where they came from in errors.
fn parse_keys(bytes: &[u8], origin: &str) -> Result<Vec<TokenKey>, EngineError> {
    let corrupt = |what: &str| EngineError::Io(format!("{origin}: {what}"));
    let stored: Vec<StoredKey> = serde_json::from_slice(bytes)
        .map_err(|e| corrupt(&format!("not a token key file: {e}")))?;
    let mut keys: Vec<TokenKey> = Vec::with_capacity(stored.len());
    for s in &stored {
        let pkcs8 = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(&s.pkcs8)
                .map_err(|_| corrupt("a key is not base64url"))?,
        );
        let key = TokenKey::from_pkcs8(s.alg, pkcs8, s.created_at, s.retired_at)?;
        if key.kid != s.kid {
            return Err(corrupt(&format!(
                "key id \"{}\" does not match its key",
                clip(&s.kid)
            )));
        }
        if keys.iter().any(|k| k.kid == key.kid) {
            return Err(corrupt(&format!("key id \"{}\" appears twice", key.kid)));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Writes the key file atomically: a fresh 0600 temporary file beside it,
/// synced, then renamed over it, then the directory synced.
fn write_key_file(path: &Path, keys: &[TokenKey]) -> Result<(), EngineError> {
    let bytes = serialize_keys(keys)?;
    write_file_atomically(path, &bytes)
}

/// The stored form of `keys`: a JSON array of [`StoredKey`] and a newline.
fn serialize_keys(keys: &[TokenKey]) -> Result<Zeroizing<Vec<u8>>, EngineError> {
    let stored: Vec<StoredKey> = keys
        .iter()
        .map(|k| StoredKey {
            kid: k.kid.clone(),
            alg: k.alg,
            pkcs8: URL_SAFE_NO_PAD.encode(&k.pkcs8),
            created_at: k.created_at,
            retired_at: k.retired_at,
        })
        .collect();
    let mut bytes = Zeroizing::new(
        serde_json::to_vec_pretty(&stored)
            .map_err(|e| EngineError::Io(format!("token key file: {e}")))?,
    );
    bytes.push(b'\n');
    Ok(bytes)
}

fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| io_error(&dir, &e))?;
    }
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&tmp, &e)),
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io_error(&tmp, &e))?;
    f.write_all(bytes).map_err(|e| io_error(&tmp, &e))?;
    f.sync_all().map_err(|e| io_error(&tmp, &e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| io_error(path, &e))?;
    fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(&dir, &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::hmac;
    use base64::engine::general_purpose::STANDARD;
    use chrono::TimeDelta;
    use serde_json::json;

    const ISSUER: &str = "https://handoff.example";

    fn t0() -> Time {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn claims(now: Time) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: "user:alice".into(),
            aud: vec!["https://api.example".into()],
            exp: (now + TimeDelta::minutes(5)).timestamp(),
            iat: now.timestamp(),
            jti: "tok_1".into(),
            client_id: "agent:planner".into(),
            scope: "read:docs write:docs".into(),
            act: Some(Act::new("agent:planner")),
            txn: "txn_1".into(),
            depth: 1,
        }
    }

    /// A compact JWS from arbitrary header and payload, signed by `sign`.
    fn forge(header: &Value, payload: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap());
        let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).unwrap());
        let input = format!("{h}.{p}");
        let sig = URL_SAFE_NO_PAD.encode(sign(input.as_bytes()));
        format!("{input}.{sig}")
    }

    fn parts(token: &str) -> (Value, Value) {
        let mut it = token.split('.');
        let mut next = || {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap()
        };
        (next(), next())
    }

    fn current_kid(keys: &TokenKeys) -> String {
        keys.kids().last().unwrap().0.clone()
    }

    #[test]
    fn sign_then_verify_round_trips_for_both_algorithms() {
        for alg in [Algorithm::EdDSA, Algorithm::ES256] {
            let keys = TokenKeys::ephemeral(alg, t0()).unwrap();
            let c = claims(t0());
            let token = keys.sign(&c).unwrap();
            let (header, _) = parts(&token);
            assert_eq!(
                header,
                json!({"alg": alg.as_str(), "typ": "at+jwt", "kid": current_kid(&keys)})
            );
            assert_eq!(keys.verify(&token, ISSUER, t0()).unwrap(), c);
            assert_eq!(keys.algorithm(), alg);
        }
    }

    #[test]
    fn nested_act_serializes_current_actor_outermost_and_round_trips() {
        let keys = TokenKeys::ephemeral(Algorithm::EdDSA, t0()).unwrap();
        let act = Act::new("agent:first")
            .then("agent:second")
            .then("agent:third");
        assert_eq!(act.actors(), ["agent:third", "agent:second", "agent:first"]);
        let mut c = claims(t0());
        c.act = Some(act.clone());
        c.depth = 3;
        let token = keys.sign(&c).unwrap();
        let (_, payload) = parts(&token);
        assert_eq!(
            payload["act"],
            json!({"sub": "agent:third", "act": {"sub": "agent:second", "act": {"sub": "agent:first"}}})
        );
        assert_eq!(keys.verify(&token, ISSUER, t0()).unwrap().act, Some(act));

        c.act = None;
        let (_, payload) = parts(&keys.sign(&c).unwrap());
        assert!(payload.get("act").is_none());
    }

    #[test]
    fn aud_is_a_string_for_one_entry_and_an_array_for_several() {
        let keys = TokenKeys::ephemeral(Algorithm::EdDSA, t0()).unwrap();
        let mut c = claims(t0());
        let (_, payload) = parts(&keys.sign(&c).unwrap());
        assert_eq!(payload["aud"], json!("https://api.example"));

        c.aud = vec!["a".into(), "b".into()];
        let token = keys.sign(&c).unwrap();
        let (_, payload) = parts(&token);
        assert_eq!(payload["aud"], json!(["a", "b"]));
        assert_eq!(keys.verify(&token, ISSUER, t0()).unwrap().aud, ["a", "b"]);

        let mut v = serde_json::to_value(claims(t0())).unwrap();
        v["aud"] = json!(["only"]);
        let parsed: Claims = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(parsed.aud, ["only"]);
        v["aud"] = json!("only");
        let parsed: Claims = serde_json::from_value(v).unwrap();
        assert_eq!(parsed.aud, ["only"]);
    }

    #[test]
    fn tampered_payload_fails_the_signature() {
        let keys = TokenKeys::ephemeral(Algorithm::ES256, t0()).unwrap();
        let token = keys.sign(&claims(t0())).unwrap();
        let mut c = claims(t0());
        c.scope = "admin".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        let mut it = token.split('.');
        let (h, _, s) = (it.next().unwrap(), it.next(), it.next().unwrap());
        let tampered = format!("{h}.{forged_payload}.{s}");
        assert_eq!(
            keys.verify(&tampered, ISSUER, t0()),
            Err(TokenError::InvalidSignature)
        );
    }

    #[test]
    fn alg_none_is_rejected() {
        let keys = TokenKeys::ephemeral(Algorithm::EdDSA, t0()).unwrap();
        let payload = serde_json::to_value(claims(t0())).unwrap();
        for alg in ["none", "None", "NONE"] {
            let header = json!({"alg": alg, "typ": "at+jwt", "kid": current_kid(&keys)});
            let unsigned = forge(&header, &payload, |_| Vec::new());
            assert!(unsigned.ends_with('.'));
            assert_eq!(
                keys.verify(&unsigned, ISSUER, t0()),
                Err(TokenError::AlgorithmNone)
            );
            assert_eq!(
                TokenError::AlgorithmNone.to_string(),
                "algorithm \"none\" is not accepted"
            );
        }
    }

    #[test]
    fn hs256_keyed_with_the_public_key_is_rejected() {
        const ED25519_SPKI: &str = "302a300506032b6570032100";
        const P256_SPKI: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
        for (alg, prefix) in [
            (Algorithm::EdDSA, ED25519_SPKI),
            (Algorithm::ES256, P256_SPKI),
        ] {
            let keys = TokenKeys::ephemeral(alg, t0()).unwrap();
            let public = keys.read().first().unwrap().public.clone();
            let jwk = keys.jwks()["keys"][0].clone();
            let mut der = handoff_audit::hex::decode(prefix).unwrap();
            der.extend_from_slice(&public);
            let pem = format!(
                "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                STANDARD.encode(&der)
            );
            let secrets: Vec<Vec<u8>> = vec![
                public.clone(),
                jwk["x"].as_str().unwrap().as_bytes().to_vec(),
                der,
                pem.into_bytes(),
            ];
            let payload = serde_json::to_value(claims(t0())).unwrap();
            for secret in secrets {
                let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": current_kid(&keys)});
                let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
                let token = forge(&header, &payload, |m| hmac::sign(&key, m).as_ref().to_vec());
                let err = keys.verify(&token, ISSUER, t0()).unwrap_err();
                assert_eq!(err, TokenError::AlgorithmNotAccepted("HS256".into()));
                assert_eq!(
                    err.to_string(),
                    "algorithm \"HS256\" is not accepted for this key"
                );
            }
        }
    }

    #[test]
    fn a_token_in_the_other_algorithm_is_rejected() {
        let ed = TokenKeys::ephemeral(Algorithm::EdDSA, t0()).unwrap();
        let es = TokenKeys::ephemeral(Algorithm::ES256, t0()).unwrap();
        let token = es.sign(&claims(t0())).unwrap();
        // Re-label the ES256 token with the EdDSA key's kid.
        let (_, payload) = parts(&token);
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": current_kid(&ed)});
        let relabelled = forge(&header, &payload, |_| vec![0; 64]);
        assert_eq!(
            ed.verify(&relabelled, ISSUER, t0()),
            Err(TokenError::AlgorithmNotAccepted("ES256".into()))
        );
    }

    #[test]
    fn unknown_or_missing_kid_is_rejected() {
        let keys = TokenKeys::ephemeral(Algorithm::EdDSA, t0()).unwrap();
        let other = TokenKeys::ephemeral(Algorithm::EdDSA, t0()).unwrap();
        let token = other.sign(&claims(t0())).unwrap();
        let err = keys.verify(&token, ISSUER, t0()).unwrap_err();
        assert_eq!(err, TokenError::UnknownKey(current_kid(&other)));
        assert_eq!(
            err.to_string(),
            format!("unknown key id \"{}\"", current_kid(&other))
        );

        let payload = serde_json::to_value(claims(t0())).unwrap();
        let no_kid = forge(&json!({"alg": "EdDSA", "typ": "at+jwt"}), &payload, |_| {
            vec![0; 64]
        });
        assert_eq!(
            keys.verify(&no_kid, ISSUER, t0()),
            Err(TokenError::MissingKeyId)
        );
    }

    #[test]
    fn expired_and_not_yet_valid_tokens_are_rejected() {
        let keys = TokenKeys::ephemeral(Algorithm::EdDSA, t0()).unwrap();
        let token = keys.sign(&claims(t0())).unwrap();
        let exp = t0() + TimeDelta::minutes(5);
        assert!(
            keys.verify(&token, ISSUER, exp - TimeDelta::milliseconds(1))
                .is_ok()
        );
        assert_eq!(keys.verify(&token, ISSUER, exp), Err(TokenError::Expired));
        assert_eq!(TokenError::Expired.to_string(), "token has expired");
        assert!(
            keys.verify(&token, ISSUER, t0() - TimeDelta::seconds(60))
                .is_ok()
        );
        assert_eq!(
            keys.verify(&token, ISSUER, t0() - TimeDelta::seconds(61)),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            TokenError::NotYetValid.to_string(),
            "token is not valid yet"
        );
    }

    #[test]
    fn a_wrong_issuer_is_rejected() {
        let keys = TokenKeys::ephemeral(Algorithm::EdDSA, t0()).unwrap();
        let mut c = claims(t0());
        c.iss = "https://evil.example".into();
        let token = keys.sign(&c).unwrap();
        let err = keys.verify(&token, ISSUER, t0()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "issuer \"https://evil.example\" is not trusted"
        );
    }

    #[test]
    fn a_wrong_typ_or_missing_claim_is_rejected() {
        let keys = TokenKeys::ephemeral(Algorithm::EdDSA, t0()).unwrap();
        let pkcs8 = keys.read().first().unwrap().pkcs8.clone();
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
        let sign = |m: &[u8]| pair.sign(m).as_ref().to_vec();
        let kid = current_kid(&keys);
        let payload = serde_json::to_value(claims(t0())).unwrap();

        let good = forge(
            &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid}),
            &payload,
            sign,
        );
        assert!(keys.verify(&good, ISSUER, t0()).is_ok());
        let full_type = json!({"alg": "EdDSA", "typ": "application/at+jwt", "kid": kid});
        assert!(
            keys.verify(&forge(&full_type, &payload, sign), ISSUER, t0())
                .is_ok()
        );

        let id_token = forge(
            &json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}),
            &payload,
            sign,
        );
        assert_eq!(
            keys.verify(&id_token, ISSUER, t0()),
            Err(TokenError::WrongType("JWT".into()))
        );
        let crit = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "crit": ["exp"]});
        assert_eq!(
            keys.verify(&forge(&crit, &payload, sign), ISSUER, t0()),
            Err(TokenError::CriticalHeader)
        );

        let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid});
        let mut without_txn = payload.clone();
        without_txn.as_object_mut().unwrap().remove("txn");
        let err = keys
            .verify(&forge(&header, &without_txn, sign), ISSUER, t0())
            .unwrap_err();
        assert_eq!(err.to_string(), "missing claim \"txn\"");
        let mut bad_depth = payload.clone();
        bad_depth["depth"] = json!(-1);
        assert_eq!(
            keys.verify(&forge(&header, &bad_depth, sign), ISSUER, t0()),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn oversized_and_malformed_tokens_are_rejected() {
        let keys = TokenKeys::ephemeral(Algorithm::EdDSA, t0()).unwrap();
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(keys.verify(&huge, ISSUER, t0()), Err(TokenError::TooLarge));
        assert_eq!(unverified_issuer(&huge), Err(TokenError::TooLarge));
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "..",
            "!!!.e30.x",
            "e30.e30.x",
            "W10.e30.x",
        ] {
            assert!(keys.verify(bad, ISSUER, t0()).is_err(), "{bad}");
        }
        // A repeated member is malformed, not last-one-wins.
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","alg":"HS256"}"#);
        let p = URL_SAFE_NO_PAD.encode(br#"{"iss":"a"}"#);
        assert_eq!(
            keys.verify(&format!("{h}.{p}.x"), ISSUER, t0()),
            Err(TokenError::Malformed)
        );
        let p = URL_SAFE_NO_PAD.encode(br#"{"iss":"a","iss":"b"}"#);
        assert_eq!(
            unverified_issuer(&format!("{h}.{p}.x")),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn an_overlong_claim_set_is_not_signed() {
        let keys = TokenKeys::ephemeral(Algorithm::EdDSA, t0()).unwrap();
        let mut c = claims(t0());
        c.scope = "s ".repeat(MAX_TOKEN_BYTES);
        assert!(matches!(keys.sign(&c), Err(EngineError::Invalid(_))));
    }

    #[test]
    fn unverified_issuer_reads_iss_only() {
        let keys = TokenKeys::ephemeral(Algorithm::EdDSA, t0()).unwrap();
        let token = keys.sign(&claims(t0())).unwrap();
        assert_eq!(unverified_issuer(&token).unwrap(), ISSUER);
        let no_iss = forge(&json!({"alg": "EdDSA"}), &json!({"sub": "x"}), |_| vec![1]);
        assert_eq!(
            unverified_issuer(&no_iss),
            Err(TokenError::MissingClaim("iss".into()))
        );
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_until_pruned() {
        let keys = TokenKeys::ephemeral(Algorithm::EdDSA, t0()).unwrap();
        let old_kid = current_kid(&keys);
        let old = keys.sign(&claims(t0())).unwrap();

        let t1 = t0() + TimeDelta::minutes(1);
        let new_kid = keys.rotate(Algorithm::ES256, t1).unwrap();
        assert_ne!(new_kid, old_kid);
        assert_eq!(keys.algorithm(), Algorithm::ES256);
        let new = keys.sign(&claims(t1)).unwrap();
        let (header, _) = parts(&new);
        assert_eq!(header["kid"], json!(new_kid));
        assert_eq!(header["alg"], json!("ES256"));
        assert!(keys.verify(&old, ISSUER, t1).is_ok());
        assert!(keys.verify(&new, ISSUER, t1).is_ok());

        let jwks = keys.jwks();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, [old_kid.as_str(), new_kid.as_str()]);
        assert_eq!(
            keys.kids(),
            [
                (old_kid.clone(), Algorithm::EdDSA, t0(), Some(t1)),
                (new_kid.clone(), Algorithm::ES256, t1, None)
            ]
        );

        let lifetime = TimeDelta::minutes(15);
        assert!(keys.prune(t1 + lifetime, lifetime).unwrap().is_empty());
        let later = t1 + lifetime + TimeDelta::seconds(1);
        assert_eq!(
            keys.prune(later, lifetime).unwrap(),
            std::slice::from_ref(&old_kid)
        );
        assert_eq!(keys.jwks()["keys"].as_array().unwrap().len(), 1);
        assert_eq!(
            keys.verify(&old, ISSUER, t1),
            Err(TokenError::UnknownKey(old_kid))
        );
        assert!(keys.verify(&new, ISSUER, t1).is_ok());
        // The signing key is never pruned.
        assert!(
            keys.prune(later + TimeDelta::days(365), lifetime)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn jwks_publishes_public_members_only() {
        let keys = TokenKeys::ephemeral(Algorithm::EdDSA, t0()).unwrap();
        keys.rotate(Algorithm::ES256, t0()).unwrap();
        let jwks = keys.jwks();
        let [ed, es] = [&jwks["keys"][0], &jwks["keys"][1]];
        let mut ed_members: Vec<&String> = ed.as_object().unwrap().keys().collect();
        ed_members.sort();
        assert_eq!(ed_members, ["alg", "crv", "kid", "kty", "use", "x"]);
        assert_eq!(
            (ed["kty"].as_str(), ed["crv"].as_str()),
            (Some("OKP"), Some("Ed25519"))
        );
        assert_eq!(
            (es["kty"].as_str(), es["crv"].as_str()),
            (Some("EC"), Some("P-256"))
        );
        assert!(es.get("y").is_some() && es.get("d").is_none());
        assert_eq!(es["use"], json!("sig"));
        // kid is the RFC 7638 thumbprint, which jsonwebtoken computes alike.
        for jwk in [ed, es] {
            let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
            let expected = parsed
                .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap();
            assert_eq!(jwk["kid"].as_str(), Some(expected.as_str()));
        }
        let debug = format!("{keys:?}");
        let pkcs8 = URL_SAFE_NO_PAD.encode(&keys.read().first().unwrap().pkcs8);
        assert!(!debug.contains(&pkcs8) && debug.contains("EdDSA"));
    }

    #[test]
    fn load_or_create_persists_keys_privately() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("keys").join("token-signing.json");
        let a = TokenKeys::load_or_create(&path, Algorithm::EdDSA, t0()).unwrap();
        let b = TokenKeys::load_or_create(&path, Algorithm::ES256, t0()).unwrap();
        assert_eq!(a.kids(), b.kids());
        assert_eq!(b.algorithm(), Algorithm::EdDSA);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let token = a.sign(&claims(t0())).unwrap();
        assert!(b.verify(&token, ISSUER, t0()).is_ok());

        let t1 = t0() + TimeDelta::hours(1);
        let kid = a.rotate(Algorithm::ES256, t1).unwrap();
        let c = TokenKeys::load_or_create(&path, Algorithm::EdDSA, t1).unwrap();
        assert_eq!(c.kids(), a.kids());
        assert_eq!(current_kid(&c), kid);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        a.prune(t1 + TimeDelta::days(1), TimeDelta::hours(1))
            .unwrap();
        let d = TokenKeys::load_or_create(&path, Algorithm::EdDSA, t1).unwrap();
        assert_eq!(d.kids().len(), 1);
        assert!(!path.with_file_name("token-signing.json.tmp").exists());
    }

    #[test]
    fn a_readable_or_corrupt_key_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("token-signing.json");
        TokenKeys::load_or_create(&path, Algorithm::EdDSA, t0()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = TokenKeys::load_or_create(&path, Algorithm::EdDSA, t0()).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let mut stored: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        stored[0]["kid"] = json!("forged");
        fs::write(&path, serde_json::to_vec(&stored).unwrap()).unwrap();
        let err = TokenKeys::load_or_create(&path, Algorithm::EdDSA, t0()).unwrap_err();
        assert!(err.to_string().contains("does not match its key"), "{err}");
    }

    #[test]
    fn algorithm_names_parse() {
        assert_eq!("EdDSA".parse::<Algorithm>(), Ok(Algorithm::EdDSA));
        assert_eq!("es256".parse::<Algorithm>(), Ok(Algorithm::ES256));
        assert_eq!(
            "RS256".parse::<Algorithm>().unwrap_err().to_string(),
            "unknown signing algorithm \"RS256\"; expected \"EdDSA\" or \"ES256\""
        );
        assert_eq!(
            serde_json::to_value(Algorithm::EdDSA).unwrap(),
            json!("EdDSA")
        );
        assert_eq!(Algorithm::ES256.to_string(), "ES256");
    }
}
