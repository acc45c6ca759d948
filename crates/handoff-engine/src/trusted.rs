//! Tokens signed by others: subject tokens from trusted issuers (an
//! identity provider's JWTs presented for exchange, RFC 8693 §2.1) and
//! client assertions (`private_key_jwt`, RFC 7523 §3 / RFC 7521 §4.2).
//!
//! Both are verified against a JWK set the server was configured with:
//! the key is chosen by `kid`, its algorithm comes from the JWK (never
//! from the token) and every claim is checked against a `now` argument.
//! Fetching JWKS documents, caching them and remembering used assertion
//! `jti`s (replay) are the caller's.
//!
//! Also holds the parsing rules every verifier shares, [`crate::jwt`]'s
//! too: the 16 KiB bound, a strict header (`alg: none` and `crit` refused,
//! repeated members malformed), exactly one algorithm per key, and claim
//! readers. jsonwebtoken only checks signatures here; its own time checks
//! read the system clock and are switched off.

use crate::EngineError;
use crate::jwt::{MAX_TOKEN_BYTES, TokenError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use handoff_core::{Invalid, Time};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{DecodingKey, Validation};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::fmt;
use zeroize::Zeroizing;

/// The longest piece of token input quoted back in an error message.
const MAX_QUOTED_CHARS: usize = 64;

/// The largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The default clock-skew allowance for trusted issuers' tokens.
pub const DEFAULT_LEEWAY_SECONDS: i64 = 30;

/// How far ahead a client assertion's `exp` may lie.
const MAX_ASSERTION_LIFETIME_SECONDS: i64 = 5 * 60;

/// The clock-skew allowance for a client assertion's `nbf`.
const ASSERTION_NBF_LEEWAY_SECONDS: i64 = 30;

/// Token input quoted in an error: at most [`MAX_QUOTED_CHARS`] characters.
pub(crate) fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", s.get(..cut).unwrap_or_default()),
        None => s.to_owned(),
    }
}

/// A JSON object whose members are unique: a repeated claim or header
/// parameter makes the token malformed rather than last-one-wins
/// (RFC 7515 §5.2 step 4, RFC 7519 §4).
pub(crate) struct StrictObject(pub(crate) Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = StrictObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictObject, A::Error> {
                let mut map = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    if map.contains_key(&key) {
                        return Err(de::Error::custom("duplicate member"));
                    }
                    let value: Value = access.next_value()?;
                    map.insert(key, value);
                }
                Ok(StrictObject(map))
            }
        }
        d.deserialize_map(ObjectVisitor)
    }
}

/// The header parameters Handoff looks at, read before any key is chosen.
#[derive(Debug)]
pub(crate) struct RawHeader {
    /// `alg`, as written.
    pub(crate) alg: String,
    /// `kid`, when present.
    pub(crate) kid: Option<String>,
    /// `typ`, when present.
    pub(crate) typ: Option<String>,
}

/// The three parts of a compact JWS, size-checked.
fn split(token: &str) -> Result<[&str; 3], TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) if !h.is_empty() && !p.is_empty() => Ok([h, p, s]),
        _ => Err(TokenError::Malformed),
    }
}

/// Decodes one base64url part into a JSON object with unique members.
fn decode_part(part: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = Zeroizing::new(
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| TokenError::Malformed)?,
    );
    serde_json::from_slice::<StrictObject>(&bytes)
        .map(|o| o.0)
        .map_err(|_| TokenError::Malformed)
}

/// Reads and checks the header: size bound, shape, `alg` present and not
/// `none`, no `crit`. Verifies nothing.
pub(crate) fn parse_header(token: &str) -> Result<RawHeader, TokenError> {
    let [header, _, _] = split(token)?;
    let mut map = decode_part(header)?;
    let alg = match map.remove("alg") {
        Some(Value::String(alg)) => alg,
        _ => return Err(TokenError::Malformed),
    };
    // RFC 7518 §3.6: an unsecured JWS is never accepted, whatever the key.
    if alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::AlgorithmNone);
    }
    if map.contains_key("crit") {
        return Err(TokenError::CriticalHeader);
    }
    let optional = |v: Option<Value>| match v {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TokenError::Malformed),
    };
    Ok(RawHeader {
        alg,
        kid: optional(map.remove("kid"))?,
        typ: optional(map.remove("typ"))?,
    })
}

/// Accepts the header's algorithm only if it is exactly the key's.
pub(crate) fn check_algorithm(
    header_alg: &str,
    key_alg: jsonwebtoken::Algorithm,
) -> Result<(), TokenError> {
    let matches = header_alg
        .parse::<jsonwebtoken::Algorithm>()
        .is_ok_and(|a| a == key_alg);
    if matches {
        Ok(())
    } else {
        Err(TokenError::AlgorithmNotAccepted(clip(header_alg)))
    }
}

/// Verifies the signature with `key` under exactly `alg` and returns the
/// payload. jsonwebtoken checks no claims here: its time checks read the
/// system clock, so every claim is checked by the caller against `now`.
pub(crate) fn verify_signature(
    token: &str,
    key: &DecodingKey,
    alg: jsonwebtoken::Algorithm,
) -> Result<Map<String, Value>, TokenError> {
    split(token)?;
    let mut validation = Validation::new(alg);
    validation.algorithms = vec![alg];
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    match jsonwebtoken::decode::<StrictObject>(token, key, &validation) {
        Ok(data) => Ok(data.claims.0),
        Err(e) => Err(match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::InvalidSignature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                TokenError::AlgorithmNotAccepted(alg_name(alg))
            }
            _ => TokenError::Malformed,
        }),
    }
}

fn alg_name(alg: jsonwebtoken::Algorithm) -> String {
    serde_json::to_value(alg)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A string claim; absent or `null` is `None`, another type is invalid.
pub(crate) fn string_claim(
    claims: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(TokenError::InvalidClaim(clip(name))),
    }
}

/// A NumericDate claim (RFC 7519 §2): an integer or a finite number of
/// seconds (fractions are dropped).
pub(crate) fn numeric_date(
    claims: &Map<String, Value>,
    name: &str,
) -> Result<Option<i64>, TokenError> {
    let invalid = || TokenError::InvalidClaim(clip(name));
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                return Ok(Some(i));
            }
            let f = n.as_f64().filter(|f| f.is_finite()).ok_or_else(invalid)?;
            // Within ±2^53 a float converts to i64 exactly after flooring.
            if f.abs() > 9_007_199_254_740_992.0 {
                return Err(invalid());
            }
            #[expect(
                clippy::cast_possible_truncation,
                reason = "the value is finite, floored and within ±2^53"
            )]
            Ok(Some(f.floor() as i64))
        }
        Some(_) => Err(invalid()),
    }
}

/// The `aud` claim as a list (a string or an array of strings).
pub(crate) fn audience_claim(
    claims: &Map<String, Value>,
) -> Result<Option<Vec<String>>, TokenError> {
    let invalid = || TokenError::InvalidClaim("aud".into());
    match claims.get("aud") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid()),
    }
}

/// A time from seconds since the epoch.
pub(crate) fn time_from_seconds(seconds: i64, claim: &str) -> Result<Time, TokenError> {
    Time::from_timestamp(seconds, 0).ok_or_else(|| TokenError::InvalidClaim(clip(claim)))
}

/// Reads `iss` without verifying anything, to choose the verifier; the
/// answer must not be trusted for anything else.
pub fn unverified_issuer(token: &str) -> Result<String, TokenError> {
    let [_, payload, _] = split(token)?;
    let claims = decode_part(payload)?;
    string_claim(&claims, "iss")?.ok_or_else(|| TokenError::MissingClaim("iss".into()))
}

/// An identity provider whose JWTs are accepted as subject tokens.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    /// The `iss` its tokens carry.
    pub issuer: String,
    /// The audience its tokens must name for this server.
    pub audience: String,
    /// The claim that holds the subject (default `sub`).
    pub subject_claim: String,
    /// The claim that holds the scopes (default `scope`).
    pub scope_claim: String,
    /// Its public keys.
    pub keys: JwkSet,
    /// Clock-skew allowance for `exp` and `nbf`, in seconds (default 30).
    pub leeway_seconds: i64,
}

/// What a verified subject token from a trusted issuer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    /// The issuer.
    pub issuer: String,
    /// The value of the issuer's subject claim.
    pub subject: String,
    /// The scopes, space-separated, when the token carries any.
    pub scope: Option<String>,
    /// When the token expires.
    pub expires_at: Time,
    /// The token's id, when it has one.
    pub jti: Option<String>,
}

/// A verified client assertion. The caller must refuse a second use of
/// `jti` until `expires_at` (RFC 7523 §3 item 7).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Assertion {
    /// The assertion's id.
    pub jti: String,
    /// When it expires.
    pub expires_at: Time,
}

fn invalid(message: impl Into<String>) -> EngineError {
    EngineError::Invalid(Invalid::new("jwks", message))
}

impl TrustedIssuer {
    /// A trusted issuer from its JWKS document. An empty `subject_claim`
    /// or `scope_claim` means the default, `sub` or `scope`. Refuses a set
    /// without a usable signing key, with a symmetric key or with a
    /// repeated key id.
    pub fn from_jwks_json(
        issuer: String,
        audience: String,
        subject_claim: String,
        scope_claim: String,
        jwks_json: &str,
    ) -> Result<Self, EngineError> {
        let or_default = |claim: String, default: &str| {
            if claim.is_empty() {
                default.to_owned()
            } else {
                claim
            }
        };
        if issuer.is_empty() {
            return Err(EngineError::Invalid(Invalid::new(
                "issuer",
                "the issuer must not be empty",
            )));
        }
        if audience.is_empty() {
            return Err(EngineError::Invalid(Invalid::new(
                "audience",
                "the audience must not be empty",
            )));
        }
        if jwks_json.len() > MAX_JWKS_BYTES {
            return Err(invalid("the key set is larger than 256 KiB"));
        }
        let keys: JwkSet = serde_json::from_str(jwks_json)
            .map_err(|e| invalid(format!("the key set is not a JWKS document: {e}")))?;
        check_key_set(&keys)?;
        Ok(Self {
            issuer,
            audience,
            subject_claim: or_default(subject_claim, "sub"),
            scope_claim: or_default(scope_claim, "scope"),
            keys,
            leeway_seconds: DEFAULT_LEEWAY_SECONDS,
        })
    }

    /// Verifies a subject token: signature by the key named by `kid` under
    /// that key's algorithm, `iss` equal, `aud` containing our audience,
    /// `exp` present and not passed, `nbf` reached (both with the leeway),
    /// the subject claim a non-empty string.
    pub fn verify(&self, token: &str, now: Time) -> Result<External, TokenError> {
        let claims = verify_with_set(token, &self.keys)?;
        let iss = string_claim(&claims, "iss")?.ok_or_else(|| missing("iss"))?;
        if iss != self.issuer {
            return Err(TokenError::UntrustedIssuer(clip(&iss)));
        }
        let aud = audience_claim(&claims)?.ok_or_else(|| missing("aud"))?;
        if !aud.contains(&self.audience) {
            return Err(TokenError::AudienceMismatch);
        }
        let leeway = self.leeway_seconds.max(0);
        let now = now.timestamp();
        let exp = numeric_date(&claims, "exp")?.ok_or_else(|| missing("exp"))?;
        if exp <= now.saturating_sub(leeway) {
            return Err(TokenError::Expired);
        }
        if let Some(nbf) = numeric_date(&claims, "nbf")?
            && nbf > now.saturating_add(leeway)
        {
            return Err(TokenError::NotYetValid);
        }
        let subject = string_claim(&claims, &self.subject_claim)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing(&self.subject_claim))?;
        Ok(External {
            issuer: iss,
            subject,
            scope: scope(&claims, &self.scope_claim)?,
            expires_at: time_from_seconds(exp, "exp")?,
            jti: string_claim(&claims, "jti")?,
        })
    }
}

fn missing(claim: &str) -> TokenError {
    TokenError::MissingClaim(clip(claim))
}

/// The scope claim: a space-separated string or an array of strings.
fn scope(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, TokenError> {
    let invalid = || TokenError::InvalidClaim(clip(name));
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.split_whitespace().collect::<Vec<_>>().join(" "))),
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let s = item.as_str().ok_or_else(invalid)?;
                if s.is_empty() || s.contains(char::is_whitespace) {
                    return Err(invalid());
                }
                out.push(s);
            }
            Ok(Some(out.join(" ")))
        }
        Some(_) => Err(invalid()),
    }
}

/// Checks a configured key set: no symmetric key, no repeated `kid`, at
/// least one key that can verify signatures.
pub fn check_key_set(keys: &JwkSet) -> Result<(), EngineError> {
    let mut usable = 0usize;
    for (i, jwk) in keys.keys.iter().enumerate() {
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            return Err(invalid(
                "the key set holds a symmetric key; only public keys are accepted",
            ));
        }
        if let Some(kid) = &jwk.common.key_id {
            let repeated = keys
                .keys
                .iter()
                .take(i)
                .any(|k| k.common.key_id.as_ref() == Some(kid));
            if repeated {
                return Err(invalid(format!("key id \"{}\" appears twice", clip(kid))));
            }
        }
        if signing_algorithm(jwk).is_ok() {
            usable += 1;
        }
    }
    if usable == 0 {
        return Err(invalid("the key set has no usable signing key"));
    }
    Ok(())
}

/// The key that verifies a token with header `kid`: the one with that id,
/// or the only key of the set when the token names none.
fn select_key<'a>(keys: &'a JwkSet, kid: Option<&str>) -> Result<&'a Jwk, TokenError> {
    match kid {
        Some(kid) => keys
            .keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid))
            .ok_or_else(|| TokenError::UnknownKey(clip(kid))),
        None => match keys.keys.as_slice() {
            [only] => Ok(only),
            _ => Err(TokenError::MissingKeyId),
        },
    }
}

/// The one algorithm a JWK verifies: its `alg` member when present (and
/// consistent with the key type), otherwise inferred from the key type:
/// RSA → RS256, EC P-256 → ES256, EC P-384 → ES384, OKP Ed25519 → EdDSA.
/// Symmetric, encryption-only and unknown keys verify nothing.
fn signing_algorithm(jwk: &Jwk) -> Result<jsonwebtoken::Algorithm, TokenError> {
    use jsonwebtoken::Algorithm as A;
    let unusable = || TokenError::UnusableKey(clip(jwk.common.key_id.as_deref().unwrap_or("")));
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return Err(unusable());
    }
    let (inferred, allowed): (A, &[A]) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (
            A::RS256,
            &[A::RS256, A::RS384, A::RS512, A::PS256, A::PS384, A::PS512],
        ),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => (A::ES256, &[A::ES256]),
            EllipticCurve::P384 => (A::ES384, &[A::ES384]),
            _ => return Err(unusable()),
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => (A::EdDSA, &[A::EdDSA]),
            _ => return Err(unusable()),
        },
        _ => return Err(unusable()),
    };
    match jwk.common.key_algorithm {
        None => Ok(inferred),
        Some(declared) => match A::try_from(declared) {
            Ok(alg) if allowed.contains(&alg) => Ok(alg),
            _ => Err(unusable()),
        },
    }
}

/// Size bound (in [`parse_header`]), header, key choice, algorithm and signature; returns the
/// payload with no claim checked.
fn verify_with_set(token: &str, keys: &JwkSet) -> Result<Map<String, Value>, TokenError> {
    let header = parse_header(token)?;
    let jwk = select_key(keys, header.kid.as_deref())?;
    let alg = signing_algorithm(jwk)?;
    check_algorithm(&header.alg, alg)?;
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|_| TokenError::UnusableKey(clip(jwk.common.key_id.as_deref().unwrap_or(""))))?;
    verify_signature(token, &key, alg)
}

/// Verifies a client assertion (RFC 7523 §3, `private_key_jwt` of RFC 7521
/// §4.2): signed with a key of `keys`, `iss` and `sub` both `client_id`,
/// `aud` containing one of `audiences`, `exp` present, not passed and at
/// most 5 minutes ahead, `nbf` (if any) reached, `jti` present.
pub fn verify_assertion(
    assertion: &str,
    client_id: &str,
    keys: &JwkSet,
    audiences: &[String],
    now: Time,
) -> Result<Assertion, TokenError> {
    let claims = verify_with_set(assertion, keys)?;
    for name in ["iss", "sub"] {
        let value = string_claim(&claims, name)?.ok_or_else(|| missing(name))?;
        if value != client_id {
            return Err(TokenError::ClaimMismatch(name.into()));
        }
    }
    let aud = audience_claim(&claims)?.ok_or_else(|| missing("aud"))?;
    if !aud.iter().any(|a| audiences.contains(a)) {
        return Err(TokenError::AudienceMismatch);
    }
    let now = now.timestamp();
    let exp = numeric_date(&claims, "exp")?.ok_or_else(|| missing("exp"))?;
    if exp <= now {
        return Err(TokenError::Expired);
    }
    if exp > now.saturating_add(MAX_ASSERTION_LIFETIME_SECONDS) {
        return Err(TokenError::LifetimeTooLong);
    }
    if let Some(nbf) = numeric_date(&claims, "nbf")?
        && nbf > now.saturating_add(ASSERTION_NBF_LEEWAY_SECONDS)
    {
        return Err(TokenError::NotYetValid);
    }
    let jti = string_claim(&claims, "jti")?
        .filter(|j| !j.is_empty())
        .ok_or_else(|| missing("jti"))?;
    Ok(Assertion {
        jti,
        expires_at: time_from_seconds(exp, "exp")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{Algorithm, Claims, TokenKeys};
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    };
    use chrono::TimeDelta;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const IDP: &str = "https://idp.example";
    const AUD: &str = "https://handoff.example";
    const TOKEN_ENDPOINT: &str = "https://handoff.example/oauth/token";

    fn t0() -> Time {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A test key pair: its public JWK and a way to sign tokens with it.
    enum TestKey {
        Ed(Vec<u8>),
        Es(Vec<u8>),
        Rsa(aws_lc_rs::rsa::KeyPair),
    }

    impl TestKey {
        fn ed() -> Self {
            let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
            Self::Ed(doc.as_ref().to_vec())
        }

        fn es() -> Self {
            let doc = EcdsaKeyPair::generate_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .unwrap();
            Self::Es(doc.as_ref().to_vec())
        }

        fn rsa() -> Self {
            Self::Rsa(aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap())
        }

        /// The public JWK built from the aws-lc-rs public key; no `alg`.
        fn jwk(&self, kid: Option<&str>) -> Value {
            let mut jwk = match self {
                Self::Ed(pkcs8) => {
                    let pair = Ed25519KeyPair::from_pkcs8(pkcs8).unwrap();
                    json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())})
                }
                Self::Es(pkcs8) => {
                    let pair =
                        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).unwrap();
                    let point = pair.public_key().as_ref();
                    json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])})
                }
                Self::Rsa(pair) => {
                    let c = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                    json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)})
                }
            };
            if let Some(kid) = kid {
                jwk["kid"] = json!(kid);
            }
            jwk
        }

        fn alg(&self) -> &'static str {
            match self {
                Self::Ed(_) => "EdDSA",
                Self::Es(_) => "ES256",
                Self::Rsa(_) => "RS256",
            }
        }

        fn sign(&self, kid: Option<&str>, claims: &Value) -> String {
            match self {
                Self::Ed(pkcs8) | Self::Es(pkcs8) => {
                    let (alg, key) = match self {
                        Self::Ed(_) => (
                            jsonwebtoken::Algorithm::EdDSA,
                            EncodingKey::from_ed_der(pkcs8),
                        ),
                        _ => (
                            jsonwebtoken::Algorithm::ES256,
                            EncodingKey::from_ec_der(pkcs8),
                        ),
                    };
                    let mut header = Header::new(alg);
                    header.kid = kid.map(str::to_owned);
                    jsonwebtoken::encode(&header, claims, &key).unwrap()
                }
                Self::Rsa(pair) => {
                    let mut header = json!({"alg": "RS256", "typ": "JWT"});
                    if let Some(kid) = kid {
                        header["kid"] = json!(kid);
                    }
                    let input = format!(
                        "{}.{}",
                        b64(&serde_json::to_vec(&header).unwrap()),
                        b64(&serde_json::to_vec(claims).unwrap())
                    );
                    let mut sig = vec![0; pair.public_modulus_len()];
                    pair.sign(
                        &RSA_PKCS1_SHA256,
                        &SystemRandom::new(),
                        input.as_bytes(),
                        &mut sig,
                    )
                    .unwrap();
                    format!("{input}.{}", b64(&sig))
                }
            }
        }
    }

    fn jwks(jwks: &[Value]) -> String {
        json!({ "keys": jwks }).to_string()
    }

    fn issuer(keys: &[Value]) -> TrustedIssuer {
        TrustedIssuer::from_jwks_json(
            IDP.into(),
            AUD.into(),
            String::new(),
            String::new(),
            &jwks(keys),
        )
        .unwrap()
    }

    fn idp_claims() -> Value {
        json!({
            "iss": IDP,
            "sub": "00u1abcd",
            "email": "alice@example.com",
            "aud": [AUD, "other"],
            "exp": (t0() + TimeDelta::minutes(10)).timestamp(),
            "iat": t0().timestamp(),
            "scope": "read:docs  write:docs",
            "jti": "idp-1",
        })
    }

    #[test]
    fn a_token_signed_by_a_key_in_the_set_verifies() {
        for key in [TestKey::ed(), TestKey::es(), TestKey::rsa()] {
            let trusted = issuer(&[key.jwk(Some("k1")), TestKey::ed().jwk(Some("k2"))]);
            let token = key.sign(Some("k1"), &idp_claims());
            let external = trusted
                .verify(&token, t0())
                .unwrap_or_else(|e| panic!("{}: {e}", key.alg()));
            assert_eq!(
                external,
                External {
                    issuer: IDP.into(),
                    subject: "00u1abcd".into(),
                    scope: Some("read:docs write:docs".into()),
                    expires_at: t0() + TimeDelta::minutes(10),
                    jti: Some("idp-1".into()),
                }
            );
        }
    }

    #[test]
    fn the_configured_subject_and_scope_claims_are_read() {
        let key = TestKey::es();
        let trusted = TrustedIssuer::from_jwks_json(
            IDP.into(),
            AUD.into(),
            "email".into(),
            "scp".into(),
            &jwks(&[key.jwk(Some("k1"))]),
        )
        .unwrap();
        let mut claims = idp_claims();
        claims["scp"] = json!(["read:docs", "write:docs"]);
        let external = trusted
            .verify(&key.sign(Some("k1"), &claims), t0())
            .unwrap();
        assert_eq!(external.subject, "alice@example.com");
        assert_eq!(external.scope.as_deref(), Some("read:docs write:docs"));

        claims["scp"] = json!(42);
        assert_eq!(
            trusted.verify(&key.sign(Some("k1"), &claims), t0()),
            Err(TokenError::InvalidClaim("scp".into()))
        );
        claims.as_object_mut().unwrap().remove("scp");
        claims.as_object_mut().unwrap().remove("email");
        assert_eq!(
            trusted.verify(&key.sign(Some("k1"), &claims), t0()),
            Err(TokenError::MissingClaim("email".into()))
        );
    }

    #[test]
    fn a_wrong_audience_or_issuer_is_rejected() {
        let key = TestKey::ed();
        let trusted = issuer(&[key.jwk(Some("k1"))]);
        let mut claims = idp_claims();
        claims["aud"] = json!("https://someone-else.example");
        let err = trusted
            .verify(&key.sign(Some("k1"), &claims), t0())
            .unwrap_err();
        assert_eq!(err.to_string(), "audience does not match");
        claims.as_object_mut().unwrap().remove("aud");
        assert_eq!(
            trusted.verify(&key.sign(Some("k1"), &claims), t0()),
            Err(TokenError::MissingClaim("aud".into()))
        );

        let mut claims = idp_claims();
        claims["iss"] = json!("https://idp.evil");
        assert_eq!(
            trusted.verify(&key.sign(Some("k1"), &claims), t0()),
            Err(TokenError::UntrustedIssuer("https://idp.evil".into()))
        );
    }

    #[test]
    fn exp_is_required_and_times_allow_the_leeway() {
        let key = TestKey::ed();
        let trusted = issuer(&[key.jwk(Some("k1"))]);
        let mut claims = idp_claims();
        claims.as_object_mut().unwrap().remove("exp");
        let err = trusted
            .verify(&key.sign(Some("k1"), &claims), t0())
            .unwrap_err();
        assert_eq!(err.to_string(), "missing claim \"exp\"");

        let token = key.sign(Some("k1"), &idp_claims());
        let exp = t0() + TimeDelta::minutes(10);
        assert!(trusted.verify(&token, exp + TimeDelta::seconds(29)).is_ok());
        assert_eq!(
            trusted.verify(&token, exp + TimeDelta::seconds(30)),
            Err(TokenError::Expired)
        );

        let mut claims = idp_claims();
        claims["nbf"] = json!((t0() + TimeDelta::seconds(30)).timestamp());
        let token = key.sign(Some("k1"), &claims);
        assert!(trusted.verify(&token, t0()).is_ok());
        assert_eq!(
            trusted.verify(&token, t0() - TimeDelta::seconds(1)),
            Err(TokenError::NotYetValid)
        );

        let mut claims = idp_claims();
        claims["exp"] = json!("tomorrow");
        assert_eq!(
            trusted.verify(&key.sign(Some("k1"), &claims), t0()),
            Err(TokenError::InvalidClaim("exp".into()))
        );
        claims["exp"] = json!(t0().timestamp() as f64 + 600.5);
        assert!(trusted.verify(&key.sign(Some("k1"), &claims), t0()).is_ok());
    }

    #[test]
    fn the_key_is_chosen_by_kid_or_is_the_only_one() {
        let (a, b) = (TestKey::ed(), TestKey::es());
        let one = issuer(&[a.jwk(Some("a"))]);
        assert!(one.verify(&a.sign(None, &idp_claims()), t0()).is_ok());
        let one_without_kid = issuer(&[a.jwk(None)]);
        assert!(
            one_without_kid
                .verify(&a.sign(None, &idp_claims()), t0())
                .is_ok()
        );

        let two = issuer(&[a.jwk(Some("a")), b.jwk(Some("b"))]);
        assert_eq!(
            two.verify(&a.sign(None, &idp_claims()), t0()),
            Err(TokenError::MissingKeyId)
        );
        assert_eq!(
            two.verify(&a.sign(Some("c"), &idp_claims()), t0()),
            Err(TokenError::UnknownKey("c".into()))
        );
        // Signed by `a` but naming `b`: `b` is ES256, so EdDSA is refused.
        assert_eq!(
            two.verify(&a.sign(Some("b"), &idp_claims()), t0()),
            Err(TokenError::AlgorithmNotAccepted("EdDSA".into()))
        );
        // Signed by `b` with a header that names `a`: the signature fails.
        let forged = b.sign(Some("b"), &idp_claims()).replacen(
            &b64(br#"{"typ":"JWT","alg":"ES256","kid":"b"}"#),
            &b64(br#"{"typ":"JWT","alg":"ES256","kid":"a"}"#),
            1,
        );
        assert!(two.verify(&forged, t0()).is_err());
    }

    #[test]
    fn hs256_with_the_public_key_and_alg_none_are_rejected() {
        let key = TestKey::ed();
        let jwk = key.jwk(Some("k1"));
        let trusted = issuer(std::slice::from_ref(&jwk));
        let x = jwk["x"].as_str().unwrap();
        for secret in [x.as_bytes().to_vec(), URL_SAFE_NO_PAD.decode(x).unwrap()] {
            let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
            header.kid = Some("k1".into());
            let token =
                jsonwebtoken::encode(&header, &idp_claims(), &EncodingKey::from_secret(&secret))
                    .unwrap();
            assert_eq!(
                trusted.verify(&token, t0()),
                Err(TokenError::AlgorithmNotAccepted("HS256".into()))
            );
        }
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","kid":"k1"}"#),
            b64(&serde_json::to_vec(&idp_claims()).unwrap())
        );
        assert_eq!(trusted.verify(&none, t0()), Err(TokenError::AlgorithmNone));
    }

    #[test]
    fn a_declared_alg_must_fit_the_key() {
        let key = TestKey::es();
        let mut jwk = key.jwk(Some("k1"));
        jwk["alg"] = json!("ES256");
        assert!(
            issuer(&[jwk.clone()])
                .verify(&key.sign(Some("k1"), &idp_claims()), t0())
                .is_ok()
        );

        jwk["alg"] = json!("EdDSA");
        let err = TrustedIssuer::from_jwks_json(
            IDP.into(),
            AUD.into(),
            String::new(),
            String::new(),
            &jwks(&[jwk.clone()]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no usable signing key"), "{err}");
        let mut trusted = issuer(&[TestKey::ed().jwk(Some("other"))]);
        trusted.keys = serde_json::from_value(json!({ "keys": [jwk] })).unwrap();
        assert_eq!(
            trusted.verify(&key.sign(Some("k1"), &idp_claims()), t0()),
            Err(TokenError::UnusableKey("k1".into()))
        );
    }

    #[test]
    fn a_bad_key_set_is_refused() {
        let make = |set: &str| {
            TrustedIssuer::from_jwks_json(IDP.into(), AUD.into(), String::new(), String::new(), set)
        };
        let ed = TestKey::ed().jwk(Some("k1"));
        for (set, expected) in [
            ("not json".to_owned(), "not a JWKS document"),
            (jwks(&[]), "no usable signing key"),
            (
                jwks(&[json!({"kty": "oct", "k": "c2VjcmV0", "kid": "h"})]),
                "symmetric",
            ),
            (jwks(&[ed.clone(), ed.clone()]), "appears twice"),
        ] {
            let err = make(&set).unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        }
        let mut enc = ed.clone();
        enc["use"] = json!("enc");
        assert!(make(&jwks(&[enc])).is_err());
        assert!(make(&"x".repeat(MAX_JWKS_BYTES + 1)).is_err());
        assert!(
            TrustedIssuer::from_jwks_json(
                String::new(),
                AUD.into(),
                String::new(),
                String::new(),
                &jwks(&[ed])
            )
            .is_err()
        );
    }

    #[test]
    fn handoff_tokens_verify_through_the_published_jwks() {
        let keys = TokenKeys::ephemeral(Algorithm::EdDSA, t0()).unwrap();
        keys.rotate(Algorithm::ES256, t0()).unwrap();
        let trusted = TrustedIssuer::from_jwks_json(
            AUD.into(),
            "https://api.example".into(),
            String::new(),
            String::new(),
            &keys.jwks().to_string(),
        )
        .unwrap();
        let claims = Claims {
            iss: AUD.into(),
            sub: "user:alice".into(),
            aud: vec!["https://api.example".into()],
            exp: (t0() + TimeDelta::minutes(5)).timestamp(),
            iat: t0().timestamp(),
            jti: "tok_1".into(),
            client_id: "agent:planner".into(),
            scope: "read".into(),
            act: None,
            txn: "txn_1".into(),
            depth: 0,
        };
        let external = trusted.verify(&keys.sign(&claims).unwrap(), t0()).unwrap();
        assert_eq!(external.subject, "user:alice");
        assert_eq!(external.scope.as_deref(), Some("read"));
    }

    fn assertion_claims() -> Value {
        json!({
            "iss": "agent:planner",
            "sub": "agent:planner",
            "aud": TOKEN_ENDPOINT,
            "exp": (t0() + TimeDelta::minutes(2)).timestamp(),
            "iat": t0().timestamp(),
            "jti": "a-1",
        })
    }

    fn client_keys(key: &TestKey) -> JwkSet {
        serde_json::from_value(json!({ "keys": [key.jwk(Some("c1"))] })).unwrap()
    }

    fn check(key: &TestKey, claims: &Value) -> Result<Assertion, TokenError> {
        verify_assertion(
            &key.sign(Some("c1"), claims),
            "agent:planner",
            &client_keys(key),
            &[AUD.to_owned(), TOKEN_ENDPOINT.to_owned()],
            t0(),
        )
    }

    #[test]
    fn a_client_assertion_verifies() {
        for key in [TestKey::ed(), TestKey::es()] {
            assert_eq!(
                check(&key, &assertion_claims()).unwrap(),
                Assertion {
                    jti: "a-1".into(),
                    expires_at: t0() + TimeDelta::minutes(2),
                }
            );
        }
        let key = TestKey::ed();
        let mut claims = assertion_claims();
        claims["aud"] = json!(["https://elsewhere", AUD]);
        assert!(check(&key, &claims).is_ok());
    }

    #[test]
    fn a_bad_client_assertion_is_rejected() {
        let key = TestKey::ed();
        let with = |f: &dyn Fn(&mut Value)| {
            let mut claims = assertion_claims();
            f(&mut claims);
            check(&key, &claims)
        };
        assert_eq!(
            with(&|c| c["aud"] = json!("https://elsewhere/token")),
            Err(TokenError::AudienceMismatch)
        );
        assert_eq!(
            with(&|c| c["sub"] = json!("user:alice")),
            Err(TokenError::ClaimMismatch("sub".into()))
        );
        assert_eq!(
            with(&|c| {
                c["iss"] = json!("agent:other");
                c["sub"] = json!("agent:other");
            }),
            Err(TokenError::ClaimMismatch("iss".into()))
        );
        assert_eq!(
            with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
            Err(TokenError::MissingClaim("jti".into()))
        );
        assert_eq!(
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            Err(TokenError::MissingClaim("exp".into()))
        );
        let err =
            with(&|c| c["exp"] = json!((t0() + TimeDelta::minutes(6)).timestamp())).unwrap_err();
        assert_eq!(err, TokenError::LifetimeTooLong);
        assert_eq!(err.to_string(), "token expires too far in the future");
        assert!(with(&|c| c["exp"] = json!((t0() + TimeDelta::minutes(5)).timestamp())).is_ok());
        assert_eq!(
            with(&|c| c["exp"] = json!(t0().timestamp())),
            Err(TokenError::Expired)
        );
        // Signed by a key the client has not registered.
        let stranger = TestKey::ed();
        let token = stranger.sign(Some("c1"), &assertion_claims());
        assert_eq!(
            verify_assertion(
                &token,
                "agent:planner",
                &client_keys(&key),
                &[TOKEN_ENDPOINT.into()],
                t0()
            ),
            Err(TokenError::InvalidSignature)
        );
    }
}
