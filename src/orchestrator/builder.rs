//! [`OrchestratorBuilder`]: instances, routing rules, store, event sink, clock, caches and
//! policies, checked together in [`OrchestratorBuilder::build`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::{
    Clock, DirectoryCache, EventSink, Inner, Instance, MemoryStore, NullSink, Orchestrator,
    PollPolicy, RetryLimits, RoutingRule, StockCache, Store, locks,
};
use crate::error::{Error, FieldError, Result};

/// Builds an [`Orchestrator`].
#[must_use = "a builder does nothing until it is built"]
pub struct OrchestratorBuilder {
    instances: Vec<Instance>,
    rules: Vec<RoutingRule>,
    store: Option<Arc<dyn Store>>,
    events: Option<Arc<dyn EventSink>>,
    clock: Option<Clock>,
    stale_intent: Duration,
    stock_ttl: Duration,
    directory_ttl: Duration,
    poll_policy: PollPolicy,
    tracking_concurrency: usize,
    retry_limits: RetryLimits,
}

impl fmt::Debug for OrchestratorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrchestratorBuilder")
            .field("instances", &self.instances)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl OrchestratorBuilder {
    /// Adds an instance.
    pub fn instance(mut self, instance: Instance) -> Self {
        self.instances.push(instance);
        self
    }

    /// Adds a routing rule after the ones already added (first match wins).
    pub fn rule(mut self, rule: RoutingRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Adds routing rules in order.
    pub fn rules(mut self, rules: impl IntoIterator<Item = RoutingRule>) -> Self {
        self.rules.extend(rules);
        self
    }

    /// Sets the store (default: a new [`MemoryStore`]).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Sets the event sink (default: [`NullSink`]).
    pub fn events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = Some(events);
        self
    }

    /// Sets the clock (default: the system clock).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How old an unfinished export intent written by *another* orchestrator (a replica
    /// sharing the store) must be before this one takes it over (default 10 minutes, longer
    /// than a provider call with all its retries). An intent this orchestrator wrote and no
    /// longer works on (the call's future was dropped, or saving its result failed) is taken
    /// over at once.
    pub fn stale_intent_after(mut self, age: Duration) -> Self {
        self.stale_intent = age;
        self
    }

    /// How long stock read from a provider is served from the cache (default 60 s).
    pub fn stock_cache_ttl(mut self, ttl: Duration) -> Self {
        self.stock_ttl = ttl;
        self
    }

    /// How long a provider's address directory is served from the cache (default 1 h).
    pub fn directory_cache_ttl(mut self, ttl: Duration) -> Self {
        self.directory_ttl = ttl;
        self
    }

    /// When each shipment is polled next, by status (see [`PollPolicy`]).
    pub fn poll_policy(mut self, policy: PollPolicy) -> Self {
        self.poll_policy = policy;
        self
    }

    /// How long failed exports and pending edits are retried before an operator gets them
    /// (default 20 attempts within 3 days; see [`RetryLimits`]).
    pub fn retry_limits(mut self, limits: RetryLimits) -> Self {
        self.retry_limits = limits;
        self
    }

    /// Most tracking requests in flight per instance (default 4, at least 1).
    pub fn tracking_concurrency(mut self, requests: usize) -> Self {
        self.tracking_concurrency = requests.max(1);
        self
    }

    /// Checks the configuration and builds the orchestrator.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] listing every problem: duplicate instance ids, rules naming an
    /// unknown instance, strict addresses on a provider without an address directory, a poll
    /// policy with a zero or absurd interval ([`PollPolicy::validate`]).
    pub fn build(self) -> Result<Orchestrator> {
        let mut errors = Vec::new();
        if let Err(e) = self.poll_policy.validate() {
            errors.extend(
                e.field_errors()
                    .iter()
                    .map(|f| FieldError::new(format!("poll_policy.{}", f.path), f.reason.clone())),
            );
        }
        let mut by_id = HashMap::new();
        for (i, instance) in self.instances.iter().enumerate() {
            if by_id.insert(instance.id.clone(), i).is_some() {
                errors.push(FieldError::new(
                    format!("instances[{i}].id"),
                    format!("duplicate instance id {}", instance.id),
                ));
            }
            // The instance's waybill defaults must be values its provider's form accepts.
            let form = instance.provider.waybill_form();
            let defaults = &instance.settings.waybill_defaults;
            let checked = form.validate(&form.fill_defaults(defaults));
            for problem in checked.err().iter().flat_map(|e| e.field_errors()) {
                // A required field the operator fills per order is not the defaults' business.
                if problem.reason != "is required" {
                    errors.push(FieldError::new(
                        format!("instances[{i}].settings.waybill_defaults.{}", problem.path),
                        problem.reason.clone(),
                    ));
                }
            }
            if instance.settings.strict_addresses
                && !instance.provider.capabilities().address_directory
            {
                errors.push(FieldError::new(
                    format!("instances[{i}].settings.strict_addresses"),
                    format!(
                        "{} has no address directory, so strict addresses cannot be enforced",
                        instance.provider.kind()
                    ),
                ));
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if !by_id.contains_key(&rule.instance) {
                errors.push(FieldError::new(
                    format!("rules[{i}].instance"),
                    format!(
                        "rule {:?} names unknown instance {}",
                        rule.name, rule.instance
                    ),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(Error::validation("orchestrator configuration", errors));
        }
        Ok(Orchestrator {
            inner: Arc::new(Inner {
                instances: self.instances,
                by_id,
                rules: self.rules,
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                events: self.events.unwrap_or_else(|| Arc::new(NullSink)),
                clock: self.clock.unwrap_or_else(|| Arc::new(Utc::now)),
                stale_intent: self.stale_intent,
                stock_cache: StockCache::new(self.stock_ttl),
                directory_cache: DirectoryCache::new(self.directory_ttl),
                poll_policy: self.poll_policy,
                tracking_concurrency: self.tracking_concurrency,
                retry_limits: self.retry_limits,
                locks: locks::OrderLocks::default(),
                owner: format!("fulfillkit-{:016x}", fastrand::u64(..)),
            }),
        })
    }
}

impl OrchestratorBuilder {
    /// A builder with no instances, no rules, a [`MemoryStore`] and a [`NullSink`].
    pub(super) fn new() -> Self {
        OrchestratorBuilder {
            instances: Vec::new(),
            rules: Vec::new(),
            store: None,
            events: None,
            clock: None,
            stale_intent: Duration::from_secs(600),
            stock_ttl: Duration::from_secs(60),
            directory_ttl: Duration::from_secs(3600),
            poll_policy: PollPolicy::default(),
            tracking_concurrency: 4,
            retry_limits: RetryLimits::default(),
        }
    }
}
