//! Ed25519-signed checkpoints: a signature over `(seq, hash, time)` of the
//! chain head, so that truncating or rewriting the log behind a checkpoint is
//! detected even by someone who can recompute every hash.

use crate::record::Hash;
use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use handoff_core::Time;
use serde::{Deserialize, Serialize};

/// Domain separator for checkpoint signatures.
const CHECKPOINT_TAG: &[u8] = b"handoff-audit-checkpoint-v1\0";

/// A signed statement that the record `seq` has hash `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The sequence number it covers (every record up to and including it).
    pub seq: u64,
    /// The hash of record `seq`.
    pub hash: Hash,
    /// When it was signed.
    pub time: Time,
    /// Which key signed it (hex of the first 8 bytes of SHA-256 of the public key).
    pub key_id: String,
    /// Ed25519 signature, 64 bytes.
    #[serde(with = "hex_bytes")]
    pub signature: Vec<u8>,
}

fn message(seq: u64, hash: &Hash, time: Time) -> Vec<u8> {
    let mut m = Vec::with_capacity(CHECKPOINT_TAG.len() + 8 + 32 + 8);
    m.extend_from_slice(CHECKPOINT_TAG);
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&hash.0);
    m.extend_from_slice(&time.timestamp_micros().to_be_bytes());
    m
}

/// A key could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The random generator or key generation failed.
    #[error("could not generate a signing key")]
    Generate,
    /// The stored key is not a valid Ed25519 PKCS#8 document.
    #[error("the checkpoint signing key is not a valid Ed25519 PKCS#8 key")]
    Invalid,
}

/// Signs checkpoints.
#[derive(Debug)]
pub struct Signer {
    pair: Ed25519KeyPair,
    key_id: String,
}

impl Signer {
    /// A fresh key as a PKCS#8 document, to be written to disk with mode 0600.
    pub fn generate_pkcs8() -> Result<Vec<u8>, KeyError> {
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|_| KeyError::Generate)
    }

    /// Loads a PKCS#8 key.
    pub fn from_pkcs8(bytes: &[u8]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8(bytes).map_err(|_| KeyError::Invalid)?;
        let key_id = key_id(pair.public_key().as_ref());
        Ok(Self { pair, key_id })
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            bytes: self.pair.public_key().as_ref().to_vec(),
            key_id: self.key_id.clone(),
        }
    }

    /// Signs the head `(seq, hash)` at `time`.
    pub fn sign(&self, seq: u64, hash: Hash, time: Time) -> Checkpoint {
        let time = handoff_core::clock::truncate(time);
        let signature = self.pair.sign(&message(seq, &hash, time)).as_ref().to_vec();
        Checkpoint {
            seq,
            hash,
            time,
            key_id: self.key_id.clone(),
            signature,
        }
    }
}

fn key_id(public: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, public);
    crate::hex::encode(d.as_ref().get(..8).unwrap_or_default())
}

/// A checkpoint verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    bytes: Vec<u8>,
    key_id: String,
}

impl PublicKey {
    /// Reads a raw 32-byte Ed25519 public key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != 32 {
            return Err(KeyError::Invalid);
        }
        Ok(Self {
            bytes: bytes.to_vec(),
            key_id: key_id(bytes),
        })
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The key id checkpoints carry.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Whether `cp` was signed by this key.
    pub fn verify(&self, cp: &Checkpoint) -> bool {
        cp.key_id == self.key_id
            && UnparsedPublicKey::new(&signature::ED25519, &self.bytes)
                .verify(&message(cp.seq, &cp.hash, cp.time), &cp.signature)
                .is_ok()
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::hex::encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        crate::hex::decode(&s).ok_or_else(|| serde::de::Error::custom("expected hex"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn signatures_verify_and_bind_every_field() {
        let signer = Signer::from_pkcs8(&Signer::generate_pkcs8().unwrap()).unwrap();
        let key = signer.public_key();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let cp = signer.sign(7, Hash([3; 32]), t);
        assert!(key.verify(&cp));
        let mut bad = cp.clone();
        bad.seq = 8;
        assert!(!key.verify(&bad));
        let mut bad = cp.clone();
        bad.hash = Hash([4; 32]);
        assert!(!key.verify(&bad));
        let mut bad = cp.clone();
        bad.time += chrono::TimeDelta::seconds(1);
        assert!(!key.verify(&bad));
        let other = Signer::from_pkcs8(&Signer::generate_pkcs8().unwrap()).unwrap();
        assert!(!other.public_key().verify(&cp));
        let json = serde_json::to_string(&cp).unwrap();
        assert_eq!(serde_json::from_str::<Checkpoint>(&json).unwrap(), cp);
    }

    #[test]
    fn garbage_keys_are_rejected() {
        assert!(Signer::from_pkcs8(b"not a key").is_err());
        assert!(PublicKey::from_bytes(&[0; 31]).is_err());
    }
}
