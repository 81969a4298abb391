//! Fault knobs of the simulators ([`Faults`]), their counters ([`FaultCounts`]) and the seeded
//! draw that decides, per request, which fault (if any) it gets.

use std::time::Duration;

use crate::error::{Error, FieldError, Result};

/// Faults a simulator injects, each a probability per request or a duration.
///
/// For every request that the knobs apply to (all endpoints, or those named with
/// [`Faults::with_endpoints`]), the simulator draws from one RNG seeded with
/// [`Faults::seed`], always the same number of draws per request, so a seed gives one sequence
/// of faults whatever the endpoints and bodies. The probabilities are disjoint slices of one
/// draw, in this order, so each knob produces its fault at exactly its own rate and their sum
/// must not exceed 1:
///
/// 1. [`server_error`](Faults::server_error): HTTP 500 with the provider's error body; the
///    request is not applied;
/// 2. [`rate_limited`](Faults::rate_limited): HTTP 429 with `Retry-After:
///    {retry_after_secs}`; not applied;
/// 3. [`reset_before_response`](Faults::reset_before_response): the connection is closed
///    without a response; not applied;
/// 4. [`lost_after_apply`](Faults::lost_after_apply): the request is applied (the order
///    exists, the update is stored), then the connection is closed without a response;
/// 5. [`server_error_after_apply`](Faults::server_error_after_apply): the request is applied,
///    then answered HTTP 500 as if it had failed (a server that stores the order and then
///    breaks while answering).
///
/// [`latency`](Faults::latency) plus a uniform share of
/// [`latency_jitter`](Faults::latency_jitter) delays every such request before it is
/// answered (or dropped).
///
/// ```
/// use std::time::Duration;
/// use fulfillkit::simulator::Faults;
///
/// let faults = Faults::none()
///     .with_latency(Duration::from_millis(20))
///     .with_server_errors(0.05)
///     .with_rate_limits(0.02, 1)
///     .with_lost_responses(0.01)
///     .with_endpoints(["POST /outbounds"])
///     .with_seed(42);
/// assert!(faults.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Faults {
    /// Delay added to every request the knobs apply to (default none).
    pub latency: Duration,
    /// Up to this much more delay, uniformly drawn per request (default none).
    pub latency_jitter: Duration,
    /// Probability of an HTTP 500.
    pub server_error: f64,
    /// Probability of an HTTP 429.
    pub rate_limited: f64,
    /// The `Retry-After` of a 429, in seconds (default 1).
    pub retry_after_secs: u64,
    /// Probability of closing the connection before responding, without applying the request.
    pub reset_before_response: f64,
    /// Probability of applying the request, then closing the connection without a response.
    pub lost_after_apply: f64,
    /// Probability of applying the request, then answering HTTP 500.
    pub server_error_after_apply: f64,
    /// Endpoint labels the knobs apply to (see [`SimStats`](super::SimStats)); empty for all
    /// (simulator control endpoints, `/_sim/…`, are never faulted).
    pub endpoints: Vec<String>,
    /// Seed of the fault RNG.
    pub seed: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Self::none()
    }
}

impl Faults {
    /// No faults: every request is answered at once.
    pub fn none() -> Self {
        Self {
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            server_error: 0.0,
            rate_limited: 0.0,
            retry_after_secs: 1,
            reset_before_response: 0.0,
            lost_after_apply: 0.0,
            server_error_after_apply: 0.0,
            endpoints: Vec::new(),
            seed: 0,
        }
    }

    /// Delays every request by `latency`.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Adds up to `jitter` more delay, uniformly drawn per request.
    pub fn with_latency_jitter(mut self, jitter: Duration) -> Self {
        self.latency_jitter = jitter;
        self
    }

    /// Answers HTTP 500 with probability `probability`.
    pub fn with_server_errors(mut self, probability: f64) -> Self {
        self.server_error = probability;
        self
    }

    /// Answers HTTP 429 with `Retry-After: {retry_after_secs}` with probability
    /// `probability`.
    pub fn with_rate_limits(mut self, probability: f64, retry_after_secs: u64) -> Self {
        self.rate_limited = probability;
        self.retry_after_secs = retry_after_secs;
        self
    }

    /// Closes the connection before responding (request not applied) with probability
    /// `probability`.
    pub fn with_resets(mut self, probability: f64) -> Self {
        self.reset_before_response = probability;
        self
    }

    /// Applies the request, then closes the connection without a response, with probability
    /// `probability`.
    pub fn with_lost_responses(mut self, probability: f64) -> Self {
        self.lost_after_apply = probability;
        self
    }

    /// Applies the request, then answers HTTP 500 with the provider's error body, with
    /// probability `probability`: the client is told it failed although it took effect.
    pub fn with_applied_server_errors(mut self, probability: f64) -> Self {
        self.server_error_after_apply = probability;
        self
    }

    /// Restricts the knobs to the endpoints labelled `labels` (e.g. `POST /outbounds`); other
    /// requests are answered normally and draw nothing from the RNG.
    pub fn with_endpoints<I, S>(mut self, labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.endpoints = labels.into_iter().map(Into::into).collect();
        self
    }

    /// Seeds the fault RNG.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks the knobs.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] when a probability is not within `0..=1` or the five of them add
    /// up to more than 1.
    pub fn validate(&self) -> Result<()> {
        let mut errors = Vec::new();
        let knobs = [
            ("server_error", self.server_error),
            ("rate_limited", self.rate_limited),
            ("reset_before_response", self.reset_before_response),
            ("lost_after_apply", self.lost_after_apply),
            ("server_error_after_apply", self.server_error_after_apply),
        ];
        for (name, p) in knobs {
            if !(0.0..=1.0).contains(&p) {
                errors.push(FieldError::new(name, "must be a probability within 0..=1"));
            }
        }
        let sum: f64 = knobs.iter().map(|(_, p)| p).sum();
        // A little slack for sums like 0.7 + 0.2 + 0.1 that land just above 1 in binary.
        if errors.is_empty() && sum > 1.0 + 1e-9 {
            errors.push(FieldError::new(
                "probabilities",
                "must add up to at most 1 (the faults exclude each other)",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::validation("simulator faults", errors))
        }
    }

    /// Whether the knobs apply to `endpoint` (a label such as `POST /order`). Simulator
    /// control endpoints (`/_sim/…`) are never faulted: a test must be able to turn the
    /// faults off.
    fn applies_to(&self, endpoint: &str) -> bool {
        if endpoint.contains(" /_sim/") {
            return false;
        }
        self.endpoints.is_empty() || self.endpoints.iter().any(|e| e == endpoint)
    }
}

/// Faults injected so far, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FaultCounts {
    /// Requests delayed by latency.
    pub delayed: u64,
    /// HTTP 500 answers.
    pub server_errors: u64,
    /// HTTP 429 answers.
    pub rate_limited: u64,
    /// Connections closed before the response, the request not applied.
    pub resets: u64,
    /// Connections closed after the request was applied.
    pub lost_after_apply: u64,
    /// HTTP 500 answers after the request was applied.
    pub server_errors_after_apply: u64,
}

impl FaultCounts {
    /// Every fault that changed the answer (latency aside).
    pub fn total(&self) -> u64 {
        self.server_errors
            + self.rate_limited
            + self.resets
            + self.lost_after_apply
            + self.server_errors_after_apply
    }
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Answered normally.
    None,
    /// HTTP 500.
    ServerError,
    /// HTTP 429 with this `Retry-After`.
    RateLimited { retry_after_secs: u64 },
    /// Closed before the response, not applied.
    Reset,
    /// Applied, then closed without a response.
    LostAfterApply,
    /// Applied, then HTTP 500.
    ServerErrorAfterApply,
}

/// The delay and fault of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Injection {
    pub(crate) delay: Duration,
    pub(crate) fault: Fault,
}

/// The configured knobs with their RNG.
#[derive(Debug)]
pub(crate) struct FaultState {
    faults: Faults,
    rng: fastrand::Rng,
}

impl FaultState {
    pub(crate) fn new(faults: Faults) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(faults.seed),
            faults,
        }
    }

    pub(crate) fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The injection for the next request to `endpoint`, counted into `counts`.
    pub(crate) fn draw(&mut self, endpoint: &str, counts: &mut FaultCounts) -> Injection {
        let f = &self.faults;
        if !f.applies_to(endpoint) {
            return Injection {
                delay: Duration::ZERO,
                fault: Fault::None,
            };
        }
        // Two draws per request whatever the knobs, so that the sequence depends on the seed
        // and the number of requests only.
        let pick = self.rng.f64();
        let jitter = self.rng.f64();
        let delay = f.latency + f.latency_jitter.mul_f64(jitter);
        let slices = [
            (f.server_error, Fault::ServerError),
            (
                f.rate_limited,
                Fault::RateLimited {
                    retry_after_secs: f.retry_after_secs,
                },
            ),
            (f.reset_before_response, Fault::Reset),
            (f.lost_after_apply, Fault::LostAfterApply),
            (f.server_error_after_apply, Fault::ServerErrorAfterApply),
        ];
        let mut low = 0.0;
        let mut fault = Fault::None;
        for (p, candidate) in slices {
            if pick >= low && pick < low + p {
                fault = candidate;
                break;
            }
            low += p;
        }
        if !delay.is_zero() {
            counts.delayed += 1;
        }
        match fault {
            Fault::None => {}
            Fault::ServerError => counts.server_errors += 1,
            Fault::RateLimited { .. } => counts.rate_limited += 1,
            Fault::Reset => counts.resets += 1,
            Fault::LostAfterApply => counts.lost_after_apply += 1,
            Fault::ServerErrorAfterApply => counts.server_errors_after_apply += 1,
        }
        Injection { delay, fault }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequence(faults: Faults, n: usize) -> Vec<Fault> {
        let mut state = FaultState::new(faults);
        let mut counts = FaultCounts::default();
        (0..n)
            .map(|_| state.draw("POST /x", &mut counts).fault)
            .collect()
    }

    #[test]
    fn a_seed_gives_one_sequence() {
        let faults = Faults::none()
            .with_server_errors(0.2)
            .with_resets(0.2)
            .with_seed(9);
        assert_eq!(sequence(faults.clone(), 200), sequence(faults.clone(), 200));
        assert_ne!(
            sequence(faults.clone(), 200),
            sequence(faults.with_seed(10), 200)
        );
    }

    #[test]
    fn rates_are_disjoint_slices() {
        let faults = Faults::none()
            .with_server_errors(0.25)
            .with_rate_limits(0.25, 3)
            .with_resets(0.25)
            .with_lost_responses(0.25)
            .with_seed(1);
        let mut state = FaultState::new(faults);
        let mut counts = FaultCounts::default();
        for _ in 0..4000 {
            assert_ne!(state.draw("POST /x", &mut counts).fault, Fault::None);
        }
        for n in [
            counts.server_errors,
            counts.rate_limited,
            counts.resets,
            counts.lost_after_apply,
        ] {
            assert!((850..=1150).contains(&n), "{counts:?}");
        }
    }

    #[test]
    fn endpoints_outside_the_list_draw_nothing() {
        let faults = Faults::none()
            .with_server_errors(1.0)
            .with_latency(Duration::from_millis(5))
            .with_endpoints(["POST /a"]);
        let mut state = FaultState::new(faults);
        let mut counts = FaultCounts::default();
        let other = state.draw("POST /b", &mut counts);
        assert_eq!((other.fault, other.delay), (Fault::None, Duration::ZERO));
        let hit = state.draw("POST /a", &mut counts);
        assert_eq!(
            (hit.fault, hit.delay),
            (Fault::ServerError, Duration::from_millis(5))
        );
        assert_eq!((counts.server_errors, counts.delayed), (1, 1));
    }

    #[test]
    fn validation() {
        assert!(Faults::none().validate().is_ok());
        let err = Faults::none()
            .with_server_errors(1.5)
            .with_resets(-0.1)
            .validate()
            .unwrap_err();
        let paths: Vec<_> = err.field_errors().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["server_error", "reset_before_response"]);
        let err = Faults::none()
            .with_server_errors(0.6)
            .with_lost_responses(0.6)
            .validate()
            .unwrap_err();
        assert_eq!(err.field_errors()[0].path, "probabilities");
        assert!(
            Faults::none()
                .with_server_errors(0.7)
                .with_rate_limits(0.2, 0)
                .with_resets(0.1)
                .validate()
                .is_ok()
        );
        assert!(
            Faults::none()
                .with_server_errors(f64::NAN)
                .validate()
                .is_err()
        );
    }
}
