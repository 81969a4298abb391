//! [`OrchestratorBuilder`]: instances, routing rules, store, event sink, clock, caches and
//! policies, checked together in [`OrchestratorBuilder::build`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::{
    Clock, DirectoryCache, EditLease, EventSink, Inner, Instance, MemoryStore, NullSink,
    Orchestrator, PollPolicy, RetryLimits, RoutingRule, StockCache, Store, locks,
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
    owner: Option<String>,
    claim_ttl: Duration,
    edit_lease: EditLease,
    outbox_grace: Duration,
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

    /// The name this orchestrator writes into export intents, tracking claims and edit
    /// leases (default: `fulfillkit-` and 16 random hex digits). Every process sharing a
    /// store needs its own: a replica's hostname or pod name plus a start time does; the same
    /// name in two live processes lets them take each other's claims and leases.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// How long a tracking claim holds (default 5 minutes): longer than one tracking round
    /// of a page of shipments. A replica that dies mid-round holds its claimed shipments this
    /// long, then another replica polls them.
    pub fn tracking_claim_ttl(mut self, ttl: Duration) -> Self {
        self.claim_ttl = ttl;
        self
    }

    /// The per-order edit lease (defaults: held at most 5 minutes, waited for at most 5
    /// seconds). An edit, cancel or exception resolution takes it through the store before
    /// calling the provider, so replicas change one order one at a time; `ttl` bounds how
    /// long a crashed replica blocks the order (longer than a provider call with its
    /// retries), `wait` how long a caller waits for another's lease before
    /// [`Error::Busy`].
    pub fn edit_lease(mut self, ttl: Duration, wait: Duration) -> Self {
        self.edit_lease = EditLease { ttl, wait };
        self
    }

    /// How old an undelivered event must be before
    /// [`Orchestrator::deliver_pending_events`] delivers it (default 30 s): younger ones are
    /// usually on their way to the sink right now, from the call that wrote them.
    pub fn outbox_grace(mut self, age: Duration) -> Self {
        self.outbox_grace = age;
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
        for (path, duration) in [
            ("tracking_claim_ttl", self.claim_ttl),
            ("edit_lease.ttl", self.edit_lease.ttl),
        ] {
            if duration.is_zero() {
                errors.push(FieldError::new(path, "must be positive"));
            }
        }
        if self.owner.as_deref().is_some_and(|o| o.trim().is_empty()) {
            errors.push(FieldError::new("owner", "must not be empty"));
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
                owner: self
                    .owner
                    .unwrap_or_else(|| format!("fulfillkit-{:016x}", fastrand::u64(..))),
                claim_ttl: self.claim_ttl,
                edit_lease: self.edit_lease,
                outbox_grace: self.outbox_grace,
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
            owner: None,
            claim_ttl: Duration::from_secs(300),
            edit_lease: EditLease {
                ttl: Duration::from_secs(300),
                wait: Duration::from_secs(5),
            },
            outbox_grace: Duration::from_secs(30),
        }
    }
}
