//! Engine integration tests against the real embedded store.

mod appender;
mod support;
mod use_cases;
