//! Handoff's domain core: identities, credentials, admin tokens, delegations
//! and the rules that govern them (id syntax, ownership, status transitions,
//! attenuation at every handoff, cascading revocation).
//!
//! This crate does no IO: no tokio, no SQL, no HTTP. Time comes in through a
//! [`Clock`], so tests control it.

pub mod client_key;
pub mod clock;
pub mod credential;
pub mod delegation;
pub mod error;
pub mod identity;
pub mod page;
pub mod policy;
pub mod scope;
pub mod secret;
pub mod status;
pub mod token;

pub use client_key::ClientKey;
pub use clock::{Clock, FixedClock, SystemClock};
pub use credential::{Credential, CredentialId};
pub use delegation::{Ask, Delegation, DelegationId, Limits, Lineage, Refusal};
pub use error::Invalid;
pub use identity::{Attributes, Environment, Identity, IdentityId, Kind, Source};
pub use page::{Cursor, Limit};
pub use policy::PolicyVersion;
pub use scope::{Audience, Scope};
pub use secret::{Presented, SecretKind};
pub use status::Status;
pub use token::{AdminToken, AdminTokenId, Role};

/// Time as used everywhere in Handoff: UTC with microsecond precision.
pub type Time = chrono::DateTime<chrono::Utc>;
