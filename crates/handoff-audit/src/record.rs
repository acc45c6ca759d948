//! Audit records, their canonical bytes and the chain head that seals them.

use crate::canonical;
use aws_lc_rs::digest;
use handoff_core::Time;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Domain separator at the start of every record's canonical bytes.
const RECORD_TAG: &[u8] = b"handoff-audit-record-v1\0";

/// A SHA-256 hash in the chain.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The hash before the first record: 32 zero bytes.
    pub const GENESIS: Self = Self([0; 32]);

    /// Reads a hash from 32 stored bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::hex::encode(&self.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl TryFrom<String> for Hash {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        crate::hex::decode(&s)
            .and_then(|b| Self::from_slice(&b))
            .ok_or_else(|| "expected 64 hex digits".to_owned())
    }
}

impl From<Hash> for String {
    fn from(h: Hash) -> Self {
        h.to_string()
    }
}

/// The outcome a record reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A mutation that took effect.
    Success,
    /// An attempt that was refused or failed.
    Failure,
    /// A decision that allowed.
    Allow,
    /// A decision that denied.
    Deny,
}

impl Outcome {
    /// The lowercase word, as stored and hashed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }

    /// Parses the stored word.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Success, Self::Failure, Self::Allow, Self::Deny]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// A record before it is sealed into the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// When the event happened.
    pub time: Time,
    /// What happened, dotted (`identity.create`, `credential.revoke`, ...).
    pub kind: String,
    /// Who did it (`token:tok_…`, `system`, later a chain of identities).
    pub actor: String,
    /// What it was done to (an identity, credential or token id).
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Event details; secret values must already be replaced by HMACs.
    pub details: serde_json::Value,
}

/// A sealed record: a link in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the log, starting at 1 with no gaps.
    pub seq: u64,
    /// When the event happened (microsecond precision).
    pub time: Time,
    /// What happened.
    pub kind: String,
    /// Who did it.
    pub actor: String,
    /// What it was done to.
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Canonical JSON of the details; hashed byte for byte.
    pub details: String,
    /// The previous record's hash (zeros for the first).
    pub prev_hash: Hash,
    /// SHA-256(prev_hash ‖ canonical bytes of this record).
    pub hash: Hash,
}

impl Record {
    /// The hash this record should carry, computed from its contents.
    pub fn compute_hash(&self) -> Hash {
        chain_hash(
            &self.prev_hash,
            self.seq,
            self.time,
            &self.kind,
            &self.actor,
            &self.target,
            self.outcome,
            &self.details,
        )
    }

    /// The details as JSON.
    pub fn details_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.details).unwrap_or(serde_json::Value::Null)
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one argument per hashed field, in order"
)]
fn chain_hash(
    prev: &Hash,
    seq: u64,
    time: Time,
    kind: &str,
    actor: &str,
    target: &str,
    outcome: Outcome,
    details: &str,
) -> Hash {
    // Fields are length-prefixed so no two records share canonical bytes.
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&prev.0);
    ctx.update(RECORD_TAG);
    ctx.update(&seq.to_be_bytes());
    ctx.update(&time.timestamp_micros().to_be_bytes());
    for field in [kind, actor, target, outcome.as_str(), details] {
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        ctx.update(&len.to_be_bytes());
        ctx.update(field.as_bytes());
    }
    let out = ctx.finish();
    Hash(<[u8; 32]>::try_from(out.as_ref()).unwrap_or_default())
}

/// The head of the chain: the last sealed sequence number and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head {
    /// Last sequence number (0 for an empty log).
    pub seq: u64,
    /// Last hash ([`Hash::GENESIS`] for an empty log).
    pub hash: Hash,
}

impl Head {
    /// The head of an empty log.
    pub const EMPTY: Self = Self {
        seq: 0,
        hash: Hash::GENESIS,
    };

    /// Seals `draft` as the next record and advances the head.
    pub fn seal(&mut self, draft: Draft) -> Record {
        let seq = self.seq + 1;
        let time = handoff_core::clock::truncate(draft.time);
        let details = canonical::to_string(&draft.details);
        let hash = chain_hash(
            &self.hash,
            seq,
            time,
            &draft.kind,
            &draft.actor,
            &draft.target,
            draft.outcome,
            &details,
        );
        let record = Record {
            seq,
            time,
            kind: draft.kind,
            actor: draft.actor,
            target: draft.target,
            outcome: draft.outcome,
            details,
            prev_hash: self.hash,
            hash,
        };
        *self = Self { seq, hash };
        record
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    pub(crate) fn draft(i: u64) -> Draft {
        Draft {
            time: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
                + chrono::TimeDelta::seconds(i as i64),
            kind: "identity.create".into(),
            actor: "token:tok_0123456789abcdef".into(),
            target: format!("agent:bot-{i}"),
            outcome: Outcome::Success,
            details: serde_json::json!({"environment": "prod", "i": i}),
        }
    }

    #[test]
    fn sealing_links_records() {
        let mut head = Head::EMPTY;
        let a = head.seal(draft(1));
        let b = head.seal(draft(2));
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(a.prev_hash, Hash::GENESIS);
        assert_eq!(b.prev_hash, a.hash);
        assert_eq!(a.compute_hash(), a.hash);
        assert_eq!(
            head,
            Head {
                seq: 2,
                hash: b.hash
            }
        );
    }

    #[test]
    fn every_field_changes_the_hash() {
        let mut head = Head::EMPTY;
        let r = head.seal(draft(1));
        let mut variants = vec![];
        let mut v = r.clone();
        v.seq = 2;
        variants.push(v);
        let mut v = r.clone();
        v.time += chrono::TimeDelta::microseconds(1);
        variants.push(v);
        let mut v = r.clone();
        v.kind.push('x');
        variants.push(v);
        let mut v = r.clone();
        v.actor.push('x');
        variants.push(v);
        let mut v = r.clone();
        v.target.push('x');
        variants.push(v);
        let mut v = r.clone();
        v.outcome = Outcome::Failure;
        variants.push(v);
        let mut v = r.clone();
        v.details = "{}".into();
        variants.push(v);
        let mut v = r.clone();
        v.prev_hash = Hash([1; 32]);
        variants.push(v);
        // Moving bytes between adjacent fields must not collide.
        let mut v = r.clone();
        v.kind = "identity.creat".into();
        v.actor = format!("e{}", r.actor);
        variants.push(v);
        for v in variants {
            assert_ne!(v.compute_hash(), r.hash, "{v:?}");
        }
    }

    /// A pinned vector: the encoding must never drift silently, or every
    /// existing log stops verifying.
    #[test]
    fn first_record_hash_is_pinned() {
        let mut head = Head::EMPTY;
        let r = head.seal(draft(1));
        assert_eq!(r.details, r#"{"environment":"prod","i":1}"#);
        assert_eq!(r.hash.to_string(), PINNED_FIRST_HASH);
    }

    const PINNED_FIRST_HASH: &str =
        "a526807eb6a6aa56f252a1d16e8e66fe6b8f40357737b634e1ddb1b38482a82e";
}
