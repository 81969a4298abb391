//! [`TestClock`]: one "now" for a test, shared by the orchestrator and the mock provider.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::orchestrator::Clock;

/// A clock a test moves by hand. Clones share the time: give one to
/// [`OrchestratorBuilder::clock`](crate::orchestrator::OrchestratorBuilder::clock) (through
/// [`TestClock::clock`]) and the same to [`MockProvider::with_clock`](crate::provider::mock::MockProvider::with_clock),
/// and the orchestrator's polls, records and events and the mock's statuses keep one time.
///
/// ```
/// use fulfillkit::testkit::TestClock;
///
/// let clock = TestClock::new();
/// let start = clock.now();
/// clock.advance(chrono::Duration::hours(3));
/// assert_eq!(clock.now() - start, chrono::Duration::hours(3));
/// ```
#[derive(Debug, Clone)]
pub struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl Default for TestClock {
    fn default() -> Self {
        Self::new()
    }
}

impl TestClock {
    /// A clock at 2026-03-02 08:00 UTC (a fixed time, so tests do not depend on the day).
    pub fn new() -> Self {
        Self::at(
            Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0)
                .single()
                .unwrap_or_default(),
        )
    }

    /// A clock at `at`.
    pub fn at(at: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(at)))
    }

    /// The clock's time.
    pub fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }

    /// Moves the clock to `at` (backwards too).
    pub fn set(&self, at: DateTime<Utc>) {
        *self.lock() = at;
    }

    /// Moves the clock on by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now = now.checked_add_signed(by).unwrap_or(*now);
    }

    /// The clock as the orchestrator takes it.
    pub fn clock(&self) -> Clock {
        let shared = Arc::clone(&self.0);
        Arc::new(move || *shared.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
