//! Integration tests of the `handoff` binary: each starts real servers on
//! loopback ports and drives them through the CLI, as an operator would.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail loudly; clippy.toml's allow-in-tests does not reach integration test helpers"
)]

mod cli;
mod delegation;
mod policy;
mod quickstart;
mod support;
mod tamper;
mod tls;
