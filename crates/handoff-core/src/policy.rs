//! Policy versions: every accepted policy pack gets the next version number;
//! older versions stay readable and any of them can be made active again.

use crate::Time;
use serde::{Deserialize, Serialize};

/// What is known about one stored policy version, without its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// 1, 2, 3, … in upload order.
    pub version: u64,
    /// SHA-256 of the pack's files (hex), to tell identical uploads apart.
    pub digest: String,
    /// How many policies the pack holds.
    pub policy_count: u32,
    /// When it was uploaded.
    pub created_at: Time,
    /// Who uploaded it (the audit log's actor name).
    pub created_by: String,
}
