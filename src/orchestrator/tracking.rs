//! Tracking: polling providers for status changes, merging them into the record, and emitting
//! an event on every real change.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// When each shipment is polled next, by its current status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PollPolicy {
    /// Maximum age of tracking (from export) after which a shipment is no longer polled.
    pub max_tracking_age: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            max_tracking_age: Duration::from_secs(150 * 24 * 3600),
        }
    }
}
