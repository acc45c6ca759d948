//! Integration tests of handoff-policy: the example packs, the AuthZEN
//! interop decision files, pack diagnostics and per-hop evaluation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail loudly"
)]

mod chains;
mod diagnostics;
mod examples;
mod interop;
mod support;
