//! Identity lifecycle status and its allowed transitions.

use crate::Invalid;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Lifecycle status of an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// May authenticate and act.
    Active,
    /// Temporarily blocked; can be resumed.
    Suspended,
    /// Blocked for good unless decommissioned afterwards.
    Disabled,
    /// Retired; terminal.
    Decommissioned,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 4] = [
        Self::Active,
        Self::Suspended,
        Self::Disabled,
        Self::Decommissioned,
    ];

    /// The lowercase word used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Disabled => "disabled",
            Self::Decommissioned => "decommissioned",
        }
    }

    /// Parses the lowercase word.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                Invalid::new(
                    "status",
                    format!(
                        "unknown status \"{}\": expected active, suspended, disabled or decommissioned",
                        crate::identity::shorten(s)
                    ),
                )
            })
    }

    /// Whether `self → to` is allowed: `active → suspended ↔ active`,
    /// any non-terminal status `→ disabled`, `disabled → decommissioned`.
    pub fn can_become(self, to: Self) -> bool {
        use Status::{Active, Decommissioned, Disabled, Suspended};
        matches!(
            (self, to),
            (Active, Suspended)
                | (Suspended, Active)
                | (Active | Suspended, Disabled)
                | (Disabled, Decommissioned)
        )
    }

    /// Checks `self → to`.
    pub fn transition(self, to: Self) -> Result<Self, TransitionError> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(TransitionError { from: self, to })
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status change the lifecycle does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot change status from {from} to {to}")]
pub struct TransitionError {
    /// The current status.
    pub from: Status,
    /// The requested status.
    pub to: Status,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transition_is_allowed_or_rejected_as_specified() {
        use Status::{Active, Decommissioned, Disabled, Suspended};
        let allowed = [
            (Active, Suspended),
            (Suspended, Active),
            (Active, Disabled),
            (Suspended, Disabled),
            (Disabled, Decommissioned),
        ];
        for from in Status::ALL {
            for to in Status::ALL {
                let expect = allowed.contains(&(from, to));
                assert_eq!(from.can_become(to), expect, "{from} -> {to}");
                assert_eq!(from.transition(to).is_ok(), expect, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn statuses_round_trip_through_words() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()).unwrap(), s);
        }
        assert!(Status::parse("Active").is_err());
        assert!(Status::parse("").is_err());
    }
}
