//! Order lifecycles of the simulators: [`Step`] (one raw status, with Wapi's trouble status
//! and comment), [`Lifecycle`] (the steps an order goes through, one per `tick`), the presets
//! that follow the protocol documents, the seeded pick of a lifecycle for a new order, and the
//! stepping both simulators share: an order's `Progress` along its lifecycle and the
//! `OrderBook` rules of `tick`, `advance` and leaving the lifecycle.
//!
//! What an order records when it enters a step (Wapi's history, carrier and pickup point,
//! Sphere's shipment) is each simulator's own, in its `state.rs`.

use std::sync::Arc;

use crate::error::{Error, FieldError, Result};
use crate::model::normalize_status_key;

/// One stage of a [`Lifecycle`]: the raw status the provider reports.
///
/// Sphere orders carry only the status; `trouble`, `comment` and `at_pickup_point` are Wapi's
/// (its status history has a trouble status and a comment per entry).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Step {
    /// The raw status, exactly as the provider spells it (`InTransit`, `allocated`, …).
    pub status: String,
    /// Wapi's trouble status of this step (`IsAbsent1`, `IsRefused`, …).
    pub trouble: Option<String>,
    /// Wapi's `statusComment` of this step.
    pub comment: Option<String>,
    /// Wapi: the parcel waits at the order's pickup point; the comment and the location name
    /// the point, its address and opening hours.
    pub at_pickup_point: bool,
}

impl Step {
    /// A step to raw status `status`, without trouble or comment.
    pub fn new(status: impl Into<String>) -> Self {
        Self {
            status: status.into(),
            trouble: None,
            comment: None,
            at_pickup_point: false,
        }
    }

    /// Sets Wapi's trouble status (`IsAbsent1`, `IsAbsent`, `CannotLocateConsignee1`,
    /// `CannotLocateConsignee`, `IsRefused`).
    pub fn with_trouble(mut self, trouble: impl Into<String>) -> Self {
        self.trouble = Some(trouble.into());
        self
    }

    /// Sets Wapi's `statusComment`.
    pub fn with_comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// Marks the step as "waiting at the pickup point" (Wapi).
    pub fn at_pickup_point(mut self) -> Self {
        self.at_pickup_point = true;
        self
    }
}

impl From<&str> for Step {
    fn from(status: &str) -> Self {
        Step::new(status)
    }
}

/// The steps an order goes through, one per [`tick`](super::WapiSimulator::tick). The first
/// step is the status a new order gets.
///
/// An order that reaches its last step stays there. An explicit `advance` to a status moves
/// the order to the first step with that status (normalized comparison) at or after its
/// current one, else before it; to a status the lifecycle does not have, it leaves the
/// lifecycle and later ticks do not move it.
///
/// ```
/// use fulfillkit::simulator::{Lifecycle, Step};
///
/// let custom = Lifecycle::new([
///     Step::new("Pending"),
///     Step::new("AssignedToPartner"),
///     Step::new("InTransit").with_trouble("CannotLocateConsignee1"),
///     Step::new("Lost"),
/// ]);
/// assert_eq!(custom.steps().len(), 4);
/// assert_eq!(Lifecycle::sphere_shipped().steps()[0].status, "open");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    steps: Vec<Step>,
}

/// Wapi's `statusComment` for a first failed delivery (an Italian carrier's words, as in the
/// protocol's fixtures).
const ABSENT_COMMENT: &str = "Mancata consegna per destinatario assente";

impl Lifecycle {
    /// A lifecycle of `steps`, in order.
    pub fn new<I, S>(steps: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Step>,
    {
        Self {
            steps: steps.into_iter().map(Into::into).collect(),
        }
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Wapi, delivered at the first attempt: `Pending` → `AssignedToPartner` → `Dispatched` →
    /// `InTransit` → `Delivered` (protocol §9, diagram D).
    pub fn wapi_delivered() -> Self {
        Self::new([
            "Pending",
            "AssignedToPartner",
            "Dispatched",
            "InTransit",
            "Delivered",
        ])
    }

    /// Wapi, recipient absent at the first attempt, delivered at the second: … `InTransit` →
    /// `InTransit` + `IsAbsent1` → `InTransit` → `Delivered`.
    pub fn wapi_failed_attempt() -> Self {
        Self::new([
            Step::new("Pending"),
            Step::new("AssignedToPartner"),
            Step::new("Dispatched"),
            Step::new("InTransit"),
            Step::new("InTransit")
                .with_trouble("IsAbsent1")
                .with_comment(ABSENT_COMMENT),
            Step::new("InTransit").with_comment("Second delivery attempt"),
            Step::new("Delivered"),
        ])
    }

    /// Wapi, absent once, then refused and returned: … `InTransit` + `IsAbsent1` →
    /// `InTransit` + `IsRefused` → `Returning` → `ReturnedToSender` (stock re-added).
    pub fn wapi_returned() -> Self {
        Self::new([
            Step::new("Pending"),
            Step::new("AssignedToPartner"),
            Step::new("Dispatched"),
            Step::new("InTransit"),
            Step::new("InTransit")
                .with_trouble("IsAbsent1")
                .with_comment(ABSENT_COMMENT),
            Step::new("InTransit")
                .with_trouble("IsRefused")
                .with_comment("Recipient refused the parcel"),
            Step::new("Returning"),
            Step::new("ReturnedToSender"),
        ])
    }

    /// Wapi, to a pickup point or locker (the lifecycle of self-collect orders): … `InTransit`
    /// → `InTransit` waiting at the point (its name, address and opening hours in the comment
    /// and location) → `Delivered` when collected.
    pub fn wapi_pickup_point() -> Self {
        Self::new([
            Step::new("Pending"),
            Step::new("AssignedToPartner"),
            Step::new("Dispatched"),
            Step::new("InTransit"),
            Step::new("InTransit")
                .with_comment("Parcel available for pickup")
                .at_pickup_point(),
            Step::new("Delivered").with_comment("Collected at the pickup point"),
        ])
    }

    /// Sphere, shipped (a WMS knows nothing after that): `open` → `allocated` → `picked` →
    /// `packed` → `shipped` (protocol §10(a)). A shipment with a carrier tracking number is
    /// created when the order ships.
    pub fn sphere_shipped() -> Self {
        Self::new(["open", "allocated", "picked", "packed", "shipped"])
    }

    /// Sphere, shipped and then reported `delivered`.
    pub fn sphere_delivered() -> Self {
        Self::new([
            "open",
            "allocated",
            "picked",
            "packed",
            "shipped",
            "delivered",
        ])
    }

    /// Sphere, shipped and then `returned`.
    pub fn sphere_returned() -> Self {
        Self::new([
            "open",
            "allocated",
            "picked",
            "packed",
            "shipped",
            "returned",
        ])
    }

    /// Sphere, waiting for stock first: `open` → `backordered` → `allocated` → … →
    /// `shipped`.
    pub fn sphere_backordered() -> Self {
        Self::new([
            "open",
            "backordered",
            "allocated",
            "picked",
            "packed",
            "shipped",
        ])
    }

    /// The step an `advance` to `status` lands on, for an order at `current` (see the type's
    /// documentation).
    pub(crate) fn position_of(&self, status: &str, current: Option<usize>) -> Option<usize> {
        let key = normalize_status_key(status);
        let matches = |i: &usize| normalize_status_key(&self.steps[*i].status) == key;
        let from = current.unwrap_or(0);
        (from..self.steps.len())
            .find(matches)
            .or_else(|| (0..from).find(matches))
    }

    fn check(&self, path: &str, errors: &mut Vec<FieldError>) {
        if self.steps.is_empty() {
            errors.push(FieldError::new(path, "must have at least one step"));
        } else if self.steps.iter().any(|s| s.status.trim().is_empty()) {
            errors.push(FieldError::new(path, "steps must have a status"));
        }
    }

    /// Checks that the lifecycle can be followed.
    pub(crate) fn validate(&self, path: &str) -> Result<()> {
        let mut errors = Vec::new();
        self.check(path, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::validation("simulator lifecycle", errors))
        }
    }
}

/// Picks the lifecycle of each new order from weighted choices, with its own seeded RNG so
/// that the faults' sequence does not depend on it.
#[derive(Debug)]
pub(crate) struct LifecyclePicker {
    choices: Vec<(u32, Arc<Lifecycle>)>,
    total: u64,
    rng: fastrand::Rng,
}

impl LifecyclePicker {
    /// A picker over `choices` (weight, lifecycle).
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] when there is no choice, every weight is 0, or a lifecycle is
    /// empty.
    pub(crate) fn new(choices: Vec<(u32, Lifecycle)>, seed: u64) -> Result<Self> {
        let mut errors = Vec::new();
        for (i, (_, lifecycle)) in choices.iter().enumerate() {
            lifecycle.check(&format!("lifecycles[{i}]"), &mut errors);
        }
        let total: u64 = choices.iter().map(|(w, _)| u64::from(*w)).sum();
        if total == 0 {
            errors.push(FieldError::new(
                "lifecycles",
                "must have at least one lifecycle with a positive weight",
            ));
        }
        if !errors.is_empty() {
            return Err(Error::validation("simulator lifecycles", errors));
        }
        Ok(Self {
            choices: choices
                .into_iter()
                .filter(|(w, _)| *w > 0)
                .map(|(w, l)| (w, Arc::new(l)))
                .collect(),
            total,
            rng: fastrand::Rng::with_seed(seed),
        })
    }

    /// The lifecycle of the next new order.
    pub(crate) fn pick(&mut self) -> Arc<Lifecycle> {
        let mut ticket = self.rng.u64(0..self.total);
        for (weight, lifecycle) in &self.choices {
            let weight = u64::from(*weight);
            if ticket < weight {
                return lifecycle.clone();
            }
            ticket -= weight;
        }
        // Unreachable while `total` is the sum of the weights; the first choice is a safe
        // answer anyway.
        self.choices[0].1.clone()
    }
}

/// Where an order stands on its [`Lifecycle`]: the lifecycle it follows and the step it is at,
/// or no step once it left the lifecycle (cancelled, voided, or moved by an `advance` to a
/// status its lifecycle does not have). The rules of the [`Lifecycle`] documentation are
/// applied here, once for both simulators.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    lifecycle: Arc<Lifecycle>,
    position: Option<usize>,
}

impl Progress {
    /// A new order's progress, at the first step of `lifecycle`, and that step; `None` for a
    /// lifecycle without steps (which validation keeps out of the simulators).
    pub(crate) fn start(lifecycle: Arc<Lifecycle>) -> Option<(Self, Step)> {
        let first = lifecycle.steps().first()?.clone();
        let progress = Self {
            lifecycle,
            position: Some(0),
        };
        Some((progress, first))
    }

    /// Moves to the next step and returns it; `None`, without moving, at the last step or off
    /// the lifecycle.
    fn step_forward(&mut self) -> Option<Step> {
        let next = self.position? + 1;
        let step = self.lifecycle.steps().get(next)?.clone();
        self.position = Some(next);
        Some(step)
    }

    /// Moves to the step an `advance` to `status` lands on, or off the lifecycle when it has
    /// no such status.
    fn advance_to(&mut self, status: &str) {
        self.position = self.lifecycle.position_of(status, self.position);
    }

    /// Follows `lifecycle` from its first step with the order's `current_status`, or off it
    /// when it has none.
    pub(crate) fn follow(&mut self, lifecycle: Lifecycle, current_status: &str) {
        self.position = lifecycle.position_of(current_status, None);
        self.lifecycle = Arc::new(lifecycle);
    }
}

/// The orders of a simulator as lifecycle stepping sees them: each has a key, a [`Progress`]
/// and a way to record entering a step. `tick`, `advance` and `leave` are written once here on
/// top of these.
pub(crate) trait OrderBook {
    /// What orders are ticked by, in ascending order, so that the stamps of one tick follow
    /// the keys.
    type Key: Ord;

    /// The key of every order.
    fn keys(&self) -> Vec<Self::Key>;

    /// The progress of order `key`, if there is one.
    fn progress_mut(&mut self, key: &Self::Key) -> Option<&mut Progress>;

    /// Makes `step` the current status of order `key`, stamped now, with whatever the
    /// simulator records on the way (history, carrier, shipment).
    fn enter(&mut self, key: &Self::Key, step: &Step);

    /// Moves every order one step along its lifecycle; returns how many moved. Orders at
    /// their last step or off their lifecycle stay.
    fn tick(&mut self) -> usize {
        let mut keys = self.keys();
        keys.sort();
        let mut moved = 0;
        for key in keys {
            if let Some(step) = self.progress_mut(&key).and_then(Progress::step_forward) {
                self.enter(&key, &step);
                moved += 1;
            }
        }
        moved
    }

    /// Moves order `key` to `step` out of turn; later ticks continue from the step of its
    /// lifecycle with that status (see [`Lifecycle`]). `false` when there is no such order.
    fn advance(&mut self, key: &Self::Key, step: &Step) -> bool {
        let Some(progress) = self.progress_mut(key) else {
            return false;
        };
        progress.advance_to(&step.status);
        self.enter(key, step);
        true
    }

    /// Moves order `key` to `step` (a cancel or void) and off its lifecycle: ticks no longer
    /// move it. `false` when there is no such order.
    fn leave(&mut self, key: &Self::Key, step: &Step) -> bool {
        let Some(progress) = self.progress_mut(key) else {
            return false;
        };
        progress.position = None;
        self.enter(key, step);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// The smallest order book: each order's progress and the statuses it entered, and the
    /// keys in the order their steps were entered.
    #[derive(Default)]
    struct Book {
        orders: BTreeMap<u32, (Progress, Vec<String>)>,
        entered: Vec<u32>,
    }

    impl Book {
        fn add(&mut self, key: u32, lifecycle: Lifecycle) {
            let (progress, first) = Progress::start(Arc::new(lifecycle)).unwrap();
            self.orders.insert(key, (progress, Vec::new()));
            self.enter(&key, &first);
        }

        fn statuses(&self, key: u32) -> Vec<&str> {
            self.orders[&key].1.iter().map(String::as_str).collect()
        }
    }

    impl OrderBook for Book {
        type Key = u32;

        fn keys(&self) -> Vec<u32> {
            // Reversed, so that the test sees `tick` sort them.
            self.orders.keys().rev().copied().collect()
        }

        fn progress_mut(&mut self, key: &u32) -> Option<&mut Progress> {
            self.orders.get_mut(key).map(|(progress, _)| progress)
        }

        fn enter(&mut self, key: &u32, step: &Step) {
            if let Some((_, statuses)) = self.orders.get_mut(key) {
                statuses.push(step.status.clone());
                self.entered.push(*key);
            }
        }
    }

    #[test]
    fn ticks_move_each_order_one_step_until_its_last() {
        let mut book = Book::default();
        book.add(2, Lifecycle::new(["open", "shipped"]));
        book.add(1, Lifecycle::new(["a", "b", "c"]));
        book.entered.clear();
        assert_eq!(book.tick(), 2);
        assert_eq!(book.entered, [1, 2], "in key order");
        assert_eq!(book.tick(), 1, "order 2 stays at its last step");
        assert_eq!(book.tick(), 0);
        assert_eq!(book.statuses(1), ["a", "b", "c"]);
        assert_eq!(book.statuses(2), ["open", "shipped"]);
    }

    #[test]
    fn advance_leave_and_follow_move_the_progress() {
        let mut book = Book::default();
        book.add(1, Lifecycle::wapi_failed_attempt());
        // To a status of the lifecycle: ticks continue after it.
        assert!(book.advance(&1, &Step::new("Dispatched")));
        book.tick();
        assert_eq!(book.statuses(1).last(), Some(&"InTransit"));
        // To a status it does not have: off the lifecycle.
        assert!(book.advance(&1, &Step::new("Lost")));
        assert_eq!(book.tick(), 0);
        // Following another lifecycle resumes from the current status.
        let progress = book.progress_mut(&1).unwrap();
        progress.follow(Lifecycle::new(["Pending", "Lost", "Damaged"]), "Lost");
        assert_eq!(book.tick(), 1);
        assert_eq!(book.statuses(1).last(), Some(&"Damaged"));
        // Leaving: the step is entered, ticks no longer move the order.
        book.add(2, Lifecycle::wapi_delivered());
        assert!(book.leave(&2, &Step::new("Cancelled")));
        assert_eq!(book.tick(), 0);
        assert_eq!(book.statuses(2), ["Pending", "Cancelled"]);
        assert!(!book.advance(&3, &Step::new("Pending")));
        assert!(!book.leave(&3, &Step::new("Cancelled")));
    }

    #[test]
    fn an_empty_lifecycle_does_not_start() {
        assert!(Progress::start(Arc::new(Lifecycle::new(Vec::<Step>::new()))).is_none());
    }

    #[test]
    fn advancing_finds_the_next_matching_step() {
        let l = Lifecycle::wapi_failed_attempt();
        // `InTransit` appears three times: the first at or after the current step wins.
        assert_eq!(l.position_of("InTransit", Some(0)), Some(3));
        assert_eq!(l.position_of("in transit", Some(4)), Some(4));
        assert_eq!(l.position_of("InTransit", Some(6)), Some(3));
        assert_eq!(l.position_of("Lost", Some(2)), None);
        assert_eq!(l.position_of("pending", None), Some(0));
    }

    #[test]
    fn picks_follow_the_weights() {
        let mut picker = LifecyclePicker::new(
            vec![
                (3, Lifecycle::wapi_delivered()),
                (1, Lifecycle::wapi_returned()),
                (0, Lifecycle::wapi_failed_attempt()),
            ],
            5,
        )
        .unwrap();
        let returned = (0..4000)
            .filter(|_| *picker.pick() == Lifecycle::wapi_returned())
            .count();
        assert!((850..=1150).contains(&returned), "{returned}");
    }

    #[test]
    fn empty_choices_are_refused() {
        assert!(LifecyclePicker::new(vec![], 1).is_err());
        assert!(LifecyclePicker::new(vec![(0, Lifecycle::wapi_delivered())], 1).is_err());
        let err =
            LifecyclePicker::new(vec![(1, Lifecycle::new(Vec::<Step>::new()))], 1).unwrap_err();
        assert_eq!(err.field_errors()[0].path, "lifecycles[0]");
        assert!(Lifecycle::new([" "]).validate("lifecycle").is_err());
    }
}
