//! When to retry a request and how long to wait: [`RetryConfig`], decorrelated-jitter
//! [`Backoff`], and [`decide`], the one pure function that makes the decision.
//!
//! Retried for every call: 408, 425, 429 and connect errors, after which the provider has
//! surely not acted on the request. Retried only for idempotent calls (reads, full replacements, and
//! creates the provider de-duplicates by order number): 5xx, timeouts and connections dropped
//! after the request was sent, since the provider may have acted on it — a server can store
//! an order and then fail to answer. A create of a provider that can look orders up is sent
//! as not idempotent, and the adapter looks the order up before it sends the create again.
//! `Retry-After` (seconds or HTTP-date) is honoured on 429 and 503, capped by the remaining
//! retry budget.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// How often and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Retries after the first attempt (default 5).
    pub max_retries: usize,
    /// First backoff (default 100 ms).
    pub initial_backoff: Duration,
    /// Longest single backoff (default 15 s).
    pub max_backoff: Duration,
    /// Total time after which no retry starts (default 2 min).
    pub retry_timeout: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            retry_timeout: Duration::from_secs(120),
        }
    }
}

impl RetryConfig {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// Sets the number of retries.
    pub fn with_max_retries(mut self, n: usize) -> Self {
        self.max_retries = n;
        self
    }

    /// Sets the initial and maximum backoff.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Sets the total retry budget.
    pub fn with_retry_timeout(mut self, timeout: Duration) -> Self {
        self.retry_timeout = timeout;
        self
    }
}

/// Decorrelated-jitter backoff ("Exponential Backoff And Jitter", AWS architecture blog):
/// each wait is uniform in `[initial, 3 × previous]`, capped at `max`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    previous: Duration,
    rng: fastrand::Rng,
}

impl Backoff {
    /// A backoff for `config`, drawing jitter from `rng` (seed it for deterministic tests).
    pub(crate) fn new(config: &RetryConfig, rng: fastrand::Rng) -> Self {
        Self {
            initial: config.initial_backoff,
            max: config.max_backoff,
            previous: config.initial_backoff,
            rng,
        }
    }

    /// The next wait.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let low = self.initial.as_nanos() as u64;
        let high = (self.previous.as_nanos() as u64).saturating_mul(3).max(low);
        let pick = if high > low {
            self.rng.u64(low..=high)
        } else {
            low
        };
        let delay = Duration::from_nanos(pick).min(self.max);
        self.previous = delay;
        delay
    }
}

/// What happened on one attempt, as far as the retry decision cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptOutcome {
    /// The provider answered with this HTTP status (and maybe a `Retry-After`).
    Status {
        /// HTTP status code.
        status: u16,
        /// The parsed `Retry-After` header, if present.
        retry_after: Option<Duration>,
    },
    /// The connection could not be made: the request was never sent.
    ConnectFailed,
    /// No answer in time: the provider may have acted on the request.
    TimedOut,
    /// The connection broke after the request was sent.
    ConnectionDropped,
}

/// The decision after one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Keep this outcome: success, a final error, or a retryable error with no budget left.
    Stop,
    /// Wait this long, then try again.
    RetryAfter(Duration),
}

/// Whether and when to retry, given the outcome of attempt number `retries_done + 1`.
///
/// `elapsed` is the time since the first attempt started, `backoff` the next jittered delay
/// (used when the provider gave no `Retry-After`). Pure: no clock, no network.
pub(crate) fn decide(
    outcome: AttemptOutcome,
    retries_done: usize,
    idempotent: bool,
    elapsed: Duration,
    backoff: Duration,
    config: &RetryConfig,
) -> Decision {
    let retryable = match outcome {
        AttemptOutcome::Status { status, .. } => {
            crate::error::transient_status(status) && (status < 500 || idempotent)
        }
        AttemptOutcome::ConnectFailed => true,
        AttemptOutcome::TimedOut | AttemptOutcome::ConnectionDropped => idempotent,
    };
    if !retryable || retries_done >= config.max_retries {
        return Decision::Stop;
    }
    let wait = match outcome {
        AttemptOutcome::Status {
            status: 429 | 503,
            retry_after: Some(asked),
        } => asked,
        _ => backoff,
    };
    let remaining = config.retry_timeout.saturating_sub(elapsed);
    if wait > remaining {
        Decision::Stop
    } else {
        Decision::RetryAfter(wait)
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date (relative to `now`; a date in
/// the past means "now").
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn status(status: u16) -> AttemptOutcome {
        AttemptOutcome::Status {
            status,
            retry_after: None,
        }
    }

    #[test]
    fn decision_table() {
        let config = RetryConfig::default();
        let b = MS(250);
        let early = Duration::from_secs(1);
        // (outcome, retries done, idempotent, expected)
        let cases = [
            (status(200), 0, true, Decision::Stop),
            (status(201), 0, false, Decision::Stop),
            (status(400), 0, true, Decision::Stop),
            (status(401), 0, true, Decision::Stop),
            (status(404), 0, true, Decision::Stop),
            (status(409), 0, true, Decision::Stop),
            (status(422), 0, true, Decision::Stop),
            (status(408), 0, false, Decision::RetryAfter(b)),
            (status(425), 0, false, Decision::RetryAfter(b)),
            (status(429), 0, false, Decision::RetryAfter(b)),
            (status(500), 0, true, Decision::RetryAfter(b)),
            // A server may fail after acting on a request: only a repeatable one is re-sent.
            (status(500), 0, false, Decision::Stop),
            (status(503), 0, false, Decision::Stop),
            (status(502), 2, true, Decision::RetryAfter(b)),
            (status(503), 4, true, Decision::RetryAfter(b)),
            (status(503), 5, true, Decision::Stop),
            (
                AttemptOutcome::ConnectFailed,
                0,
                false,
                Decision::RetryAfter(b),
            ),
            (AttemptOutcome::TimedOut, 0, true, Decision::RetryAfter(b)),
            (AttemptOutcome::TimedOut, 0, false, Decision::Stop),
            (
                AttemptOutcome::ConnectionDropped,
                1,
                true,
                Decision::RetryAfter(b),
            ),
            (AttemptOutcome::ConnectionDropped, 1, false, Decision::Stop),
        ];
        for (outcome, done, idempotent, expected) in cases {
            assert_eq!(
                decide(outcome, done, idempotent, early, b, &config),
                expected,
                "{outcome:?} after {done} retries, idempotent={idempotent}"
            );
        }
    }

    #[test]
    fn retry_after_is_honoured_on_429_and_503_only() {
        let config = RetryConfig::default();
        let asked = Some(Duration::from_secs(3));
        let with = |status| AttemptOutcome::Status {
            status,
            retry_after: asked,
        };
        let b = MS(100);
        let t = Duration::ZERO;
        assert_eq!(
            decide(with(429), 0, true, t, b, &config),
            Decision::RetryAfter(Duration::from_secs(3))
        );
        assert_eq!(
            decide(with(503), 0, true, t, b, &config),
            Decision::RetryAfter(Duration::from_secs(3))
        );
        assert_eq!(
            decide(with(500), 0, true, t, b, &config),
            Decision::RetryAfter(b)
        );
    }

    #[test]
    fn budget_caps_every_wait() {
        let config = RetryConfig::default().with_retry_timeout(Duration::from_secs(10));
        let long_ask = AttemptOutcome::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(60)),
        };
        assert_eq!(
            decide(long_ask, 0, true, Duration::ZERO, MS(100), &config),
            Decision::Stop
        );
        // 9.95 s spent, 100 ms backoff would overrun the 10 s budget.
        assert_eq!(
            decide(status(500), 1, true, MS(9_950), MS(100), &config),
            Decision::Stop
        );
        assert_eq!(
            decide(status(500), 1, true, MS(9_900), MS(100), &config),
            Decision::RetryAfter(MS(100))
        );
    }

    #[test]
    fn backoff_is_jittered_bounded_and_deterministic_under_a_seed() {
        let config = RetryConfig::default().with_backoff(MS(100), MS(2_000));
        let run = |seed| {
            let mut b = Backoff::new(&config, fastrand::Rng::with_seed(seed));
            (0..20).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7), "same seed, same delays");
        assert_ne!(a, run(8), "another seed, other delays");
        let mut previous = MS(100);
        for d in &a {
            assert!(*d >= MS(100) && *d <= MS(2_000), "{d:?}");
            assert!(*d <= previous * 3, "{d:?} after {previous:?}");
            previous = *d;
        }
        assert!(
            a.iter().any(|d| *d > MS(300)),
            "grows beyond the first step"
        );
    }

    #[test]
    fn retry_after_parsing() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }
}
