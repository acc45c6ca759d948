//! Handoff's policy engine: Cedar policies over the identity graph.
//!
//! This crate owns the Cedar schema (Handoff's built-in fragment merged with
//! the operator's), the mapping of inventory identities to Cedar entities
//! ([`Directory`]), policy packs ([`PackFiles`] → [`compile`] →
//! [`Policies`]), AuthZEN-shaped evaluation ([`Pdp`]: single requests,
//! per-hop evaluation for delegation chains, and the three searches) and the
//! offline test runner ([`run_tests`]).
//!
//! It does no storage, no async and no HTTP: the engine keeps pack versions
//! and the inventory, the server speaks the AuthZEN wire format, and both
//! hand this crate plain values. See `docs/policy.md` for the mapping from
//! AuthZEN to Cedar and how to write a pack.

mod compile;
mod diagnostic;
mod directory;
mod entities;
mod error;
mod gather;
mod limits;
mod names;
mod pack;
mod pdp;
mod policies;
mod request;
mod schema;
mod search;
mod settings;
mod slice;
mod testing;
mod value;

pub use compile::compile;
pub use diagnostic::Diagnostic;
pub use directory::Directory;
pub use error::{PackError, PolicyError};
pub use pack::{MAX_PACK_BYTES, MAX_PACK_FILES, PackFiles};
pub use pdp::{MAX_HOPS, Pdp};
pub use policies::Policies;
pub use request::{Action, Decision, Entity, Hop, HopDecision, Request};
pub use settings::{DecisionLog, DelegationLimits, LogRule, PackSettings};
pub use testing::{TestFailure, TestReport, run_tests};
pub use value::{MAX_GATHERED_ENTITIES, MAX_PROPERTY_DEPTH, MAX_REQUEST_BYTES, MAX_REQUEST_VALUES};
