//! Handoff's tamper-evident audit log, independent of where it is stored.
//!
//! Owns the record format and its canonical encoding, the hash chain
//! (`hash = SHA-256(previous hash ‖ canonical record)`), Ed25519-signed
//! checkpoints and the streaming verifier. It does not store anything and
//! does not queue: the store persists records, the engine's appender owns the
//! chain head.

pub mod canonical;
pub mod checkpoint;
pub mod hex;
pub mod record;
pub mod verify;

pub use checkpoint::{Checkpoint, KeyError, PublicKey, Signer};
pub use record::{Draft, Hash, Head, Outcome, Record};
pub use verify::{Failure, Reason, Report, Verifier};
