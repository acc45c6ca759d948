//! Engine integration tests against the real embedded store.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed set-up step should fail the test loudly"
)]

mod appender;
mod policy;
mod policy_support;
mod shared;
mod support;
mod use_cases;
