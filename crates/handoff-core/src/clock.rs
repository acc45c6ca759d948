//! The one place that reads the system clock. Everything else takes a [`Clock`].

use crate::Time;
use chrono::{DurationRound, TimeDelta, Utc};
use std::sync::Mutex;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time, truncated to microseconds (the precision we store).
    fn now(&self) -> Time;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "the clock module is the one place allowed to read the system time"
    )]
    fn now(&self) -> Time {
        truncate(Utc::now())
    }
}

/// A clock that stands still until moved; for tests.
#[derive(Debug)]
pub struct FixedClock(Mutex<Time>);

impl FixedClock {
    /// A clock showing `at`.
    pub fn new(at: Time) -> Self {
        Self(Mutex::new(truncate(at)))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: TimeDelta) {
        if let Ok(mut t) = self.0.lock() {
            *t += by;
        }
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Time {
        self.0.lock().map(|t| *t).unwrap_or_default()
    }
}

/// Truncates a time to microseconds, the precision every store keeps.
pub fn truncate(t: Time) -> Time {
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}
