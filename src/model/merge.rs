//! Merging a shipment's status history with what a provider reports, with the semantics of
//! SalesRender's `Track::mergeStatuses` and `LogisticStatusesResolverService`, and one
//! deliberate difference (an `Unknown` status never masks known ones).
//!
//! The rules, applied by [`merge_statuses`]:
//! 1. duplicates (same code, original text, timestamp and pickup point) are dropped;
//! 2. once a `Returned` status is present, every status later in time than the first one
//!    becomes `ReturningToSender` (text and time kept), except `DeliveredToSender`; duplicates
//!    this creates are dropped again;
//! 3. the history is ordered by classification, then time ([`StatusOrder::Classification`], so
//!    a back-dated status cannot become current by arriving last), or by time only
//!    ([`StatusOrder::Time`]);
//! 4. the current status is the last known-code status after ordering, unless the latest
//!    `Unknown` status is later in time than it (SalesRender would let one unmapped text,
//!    sorting last, freeze the shipment forever);
//! 5. a change is worth an event only when the current status differs in code, original text,
//!    time or pickup point from the one last reported ([`is_reportable_change`]): a new
//!    history entry that becomes current is news, a repeated poll is not.
//!
//! The result depends only on the set of statuses seen, never on the order batches arrive in,
//! and merging again changes nothing (both checked by property tests).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::status::{DeliveryStatus, PickupPoint, StatusCode};

/// How a history is ordered before the current status is picked.
///
/// `Classification` is SalesRender's order. `Time` is fulfillkit's own alternative, not
/// SalesRender's `sortTrackStatuses` setting: SalesRender's unsorted mode keeps arrival order
/// and skips its `RETURNED` rewrite, while fulfillkit's result never depends on arrival order
/// and always applies the rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusOrder {
    /// By classification, then time.
    #[default]
    Classification,
    /// By time, then classification.
    Time,
}

/// A merged history and its current status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MergedHistory {
    /// Every distinct status, ordered.
    pub history: Vec<DeliveryStatus>,
    /// The current status (`None` only for an empty history).
    pub current: Option<DeliveryStatus>,
}

/// Merges `existing` (a stored history) with `incoming` (what the provider reported).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use fulfillkit::model::{merge_statuses, DeliveryStatus, StatusCode, StatusOrder};
///
/// let t = |h| Utc.with_ymd_and_hms(2024, 5, 2, h, 0, 0).unwrap();
/// let returned = DeliveryStatus::new(StatusCode::Returned, "Refused", t(10));
/// let later = DeliveryStatus::new(StatusCode::InTransit, "In transit", t(12));
/// let merged = merge_statuses(&[returned], &[later], StatusOrder::Classification);
/// let current = merged.current.unwrap();
/// assert_eq!(current.code, StatusCode::ReturningToSender);
/// assert_eq!(current.original, "In transit");
/// ```
pub fn merge_statuses(
    existing: &[DeliveryStatus],
    incoming: &[DeliveryStatus],
    order: StatusOrder,
) -> MergedHistory {
    merge_statuses_owned(existing, incoming.to_vec(), order)
}

/// [`merge_statuses`] taking what the provider reported by value, so that it moves into the
/// history instead of being copied (tracking owns the provider's answer). The input order does
/// not matter: duplicates are resolved by the canonical order.
pub(crate) fn merge_statuses_owned(
    existing: &[DeliveryStatus],
    incoming: Vec<DeliveryStatus>,
    order: StatusOrder,
) -> MergedHistory {
    let mut all = incoming;
    all.reserve(existing.len());
    all.extend_from_slice(existing);
    dedup(&mut all);

    if let Some(first_return) = all
        .iter()
        .filter(|s| s.code == StatusCode::Returned)
        .map(|s| s.at)
        .min()
    {
        let mut rewrote = false;
        for status in &mut all {
            if status.at > first_return
                && status.code != StatusCode::DeliveredToSender
                && status.code != StatusCode::ReturningToSender
            {
                status.code = StatusCode::ReturningToSender;
                rewrote = true;
            }
        }
        if rewrote {
            dedup(&mut all);
        }
    }

    if order == StatusOrder::Time {
        all.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| canonical(a, b)));
    }
    let current = current_of(&all).cloned();
    MergedHistory {
        history: all,
        current,
    }
}

/// Whether `current` is a change worth reporting after `last_reported`: it differs in code,
/// original text, pickup point or time. A later status with the same code and text (a
/// second failed delivery attempt on another day) is a new history entry, and news, as in
/// SalesRender.
pub fn is_reportable_change(
    last_reported: Option<&DeliveryStatus>,
    current: &DeliveryStatus,
) -> bool {
    match last_reported {
        None => true,
        Some(last) => {
            last.code != current.code
                || last.original != current.original
                || last.at != current.at
                || last.pickup_point != current.pickup_point
        }
    }
}

/// Sorts into the canonical order (classification, time, text, pickup point, then the other
/// fields) and drops duplicates, keeping the first of each: a choice that depends only on the
/// set of statuses, not on their arrival order.
fn dedup(statuses: &mut Vec<DeliveryStatus>) {
    statuses.sort_by(canonical);
    statuses.dedup_by(|later, earlier| same_status(later, earlier));
}

fn same_status(a: &DeliveryStatus, b: &DeliveryStatus) -> bool {
    a.code == b.code && a.at == b.at && a.original == b.original && a.pickup_point == b.pickup_point
}

/// A total order on statuses: the duplicate key first, so duplicates end up adjacent.
fn canonical(a: &DeliveryStatus, b: &DeliveryStatus) -> Ordering {
    a.code
        .cmp(&b.code)
        .then_with(|| a.at.cmp(&b.at))
        .then_with(|| a.original.cmp(&b.original))
        .then_with(|| point_cmp(a.pickup_point.as_deref(), b.pickup_point.as_deref()))
        .then_with(|| a.carrier.cmp(&b.carrier))
        .then_with(|| a.carrier_tracking_number.cmp(&b.carrier_tracking_number))
        .then_with(|| a.tracking_url.cmp(&b.tracking_url))
        .then_with(|| a.problem.cmp(&b.problem))
}

fn point_cmp(a: Option<&PickupPoint>, b: Option<&PickupPoint>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) if a == b => Ordering::Equal,
        (Some(a), Some(b)) => (&a.id, &a.name, &a.address, &a.postcode, &a.phones)
            .cmp(&(&b.id, &b.name, &b.address, &b.postcode, &b.phones))
            .then_with(|| format!("{a:?}").cmp(&format!("{b:?}"))),
    }
}

/// Rule 4: the last known status, unless the latest `Unknown` one is later in time.
fn current_of(ordered: &[DeliveryStatus]) -> Option<&DeliveryStatus> {
    let known = ordered.iter().rev().find(|s| s.code != StatusCode::Unknown);
    let unknown = ordered
        .iter()
        .filter(|s| s.code == StatusCode::Unknown)
        .max_by(|a, b| a.at.cmp(&b.at).then_with(|| canonical(a, b)));
    match (known, unknown) {
        (Some(k), Some(u)) if u.at > k.at => Some(u),
        (Some(k), _) => Some(k),
        (None, u) => u,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};
    use proptest::prelude::*;

    fn t(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 2, hour, 0, 0).unwrap()
    }

    fn s(code: StatusCode, text: &str, hour: u32) -> DeliveryStatus {
        DeliveryStatus::new(code, text, t(hour))
    }

    fn codes(m: &MergedHistory) -> Vec<StatusCode> {
        m.history.iter().map(|s| s.code).collect()
    }

    use StatusCode::*;

    #[test]
    fn duplicates_are_dropped() {
        let a = s(InTransit, "In transit", 10);
        let m = merge_statuses(
            &[a.clone(), a.clone()],
            std::slice::from_ref(&a),
            StatusOrder::Classification,
        );
        assert_eq!(m.history, vec![a.clone()]);
        // Same code and time but other text, or another pickup point: not duplicates.
        let other_text = s(InTransit, "Partito", 10);
        let mut at_point = a.clone();
        at_point.pickup_point = Some(Box::new(PickupPoint {
            id: "P1".into(),
            name: "P".into(),
            address: "a".into(),
            postcode: "1".into(),
            phones: vec![],
            opening_hours: Default::default(),
            coordinates: None,
        }));
        let m = merge_statuses(&[a], &[other_text, at_point], StatusOrder::Classification);
        assert_eq!(m.history.len(), 3);
    }

    #[test]
    fn in_transit_after_returned_becomes_returning_to_sender() {
        let m = merge_statuses(
            &[s(InTransit, "In transit", 9), s(Returned, "Refused", 10)],
            &[s(InTransit, "In transit again", 12)],
            StatusOrder::Classification,
        );
        assert_eq!(codes(&m), [InTransit, Returned, ReturningToSender]);
        let current = m.current.unwrap();
        assert_eq!(
            (current.code, current.original.as_str()),
            (ReturningToSender, "In transit again")
        );
        assert_eq!(current.at, t(12));
    }

    #[test]
    fn delivered_to_sender_after_returned_stays() {
        let m = merge_statuses(
            &[s(Returned, "Refused", 10)],
            &[s(DeliveredToSender, "Back home", 14)],
            StatusOrder::Classification,
        );
        assert_eq!(m.current.unwrap().code, DeliveredToSender);
    }

    #[test]
    fn a_late_delivered_with_an_earlier_timestamp_stays_delivered() {
        let m = merge_statuses(
            &[s(Returned, "Refused", 10)],
            &[s(Delivered, "Delivered", 8)],
            StatusOrder::Classification,
        );
        assert_eq!(codes(&m), [Delivered, Returned]);
        assert_eq!(m.current.unwrap().code, Returned);
    }

    #[test]
    fn rewrite_creates_duplicates_that_are_dropped() {
        let m = merge_statuses(
            &[s(Returned, "R", 10), s(ReturningToSender, "Going back", 12)],
            &[s(InTransit, "Going back", 12)],
            StatusOrder::Classification,
        );
        assert_eq!(codes(&m), [Returned, ReturningToSender]);
    }

    #[test]
    fn back_dated_status_cannot_become_current_by_arriving_last() {
        let m = merge_statuses(
            &[s(Delivered, "Delivered", 15)],
            &[s(InTransit, "In transit (late report)", 16)],
            StatusOrder::Classification,
        );
        assert_eq!(m.current.unwrap().code, Delivered);
        // With plain time order the later report wins, as SalesRender's switch allows.
        let m = merge_statuses(
            &[s(Delivered, "Delivered", 15)],
            &[s(InTransit, "In transit (late report)", 16)],
            StatusOrder::Time,
        );
        assert_eq!(codes(&m), [Delivered, InTransit]);
        assert_eq!(m.current.unwrap().code, InTransit);
    }

    #[test]
    fn unknown_never_masks_a_later_known_status() {
        let unknown = s(Unknown, "Strange text", 10);
        let m = merge_statuses(
            std::slice::from_ref(&unknown),
            &[s(InTransit, "In transit", 12)],
            StatusOrder::Classification,
        );
        assert_eq!(
            m.current.unwrap().code,
            InTransit,
            "the later known status is current"
        );
        assert_eq!(
            m.history.last().unwrap().code,
            Unknown,
            "Unknown still sorts last"
        );
        let m = merge_statuses(
            &[s(InTransit, "In transit", 9)],
            std::slice::from_ref(&unknown),
            StatusOrder::Classification,
        );
        assert_eq!(m.current.unwrap(), unknown, "a later Unknown is current");
        let m = merge_statuses(
            &[],
            std::slice::from_ref(&unknown),
            StatusOrder::Classification,
        );
        assert_eq!(m.current.unwrap(), unknown);
        assert_eq!(merge_statuses(&[], &[], StatusOrder::Time).current, None);
    }

    #[test]
    fn reportable_changes() {
        let a = s(InTransit, "In transit", 10);
        assert!(is_reportable_change(None, &a));
        let mut carrier_only = a.clone();
        carrier_only.carrier = Some("SDA".into());
        assert!(
            !is_reportable_change(Some(&a), &carrier_only),
            "the carrier alone is no change"
        );
        // A second failed attempt on another day: the same code and text, a new entry.
        let mut later_same = a.clone();
        later_same.at = t(11);
        assert!(is_reportable_change(Some(&a), &later_same));
        assert!(is_reportable_change(Some(&a), &s(InTransit, "Partito", 10)));
        assert!(is_reportable_change(
            Some(&a),
            &s(Arrived, "In transit", 10)
        ));
        let mut at_point = a.clone();
        at_point.pickup_point = Some(Box::new(PickupPoint {
            id: "P".into(),
            name: "P".into(),
            address: "A".into(),
            postcode: "1".into(),
            phones: vec![],
            opening_hours: Default::default(),
            coordinates: None,
        }));
        assert!(is_reportable_change(Some(&a), &at_point));
    }

    fn arb_status() -> impl Strategy<Value = DeliveryStatus> {
        let code = prop::sample::select(StatusCode::ALL.to_vec());
        let text = prop::sample::select(vec!["a", "b", "c"]);
        let carrier = prop::option::of(prop::sample::select(vec!["SDA", "GLS"]));
        (code, text, 0u32..6, carrier).prop_map(|(code, text, hour, carrier)| {
            let mut status = DeliveryStatus::new(code, text, t(hour));
            status.carrier = carrier.map(Into::into);
            status
        })
    }

    proptest! {
        #[test]
        fn merging_is_idempotent(a in prop::collection::vec(arb_status(), 0..12), b in prop::collection::vec(arb_status(), 0..12), time in any::<bool>()) {
            let order = if time { StatusOrder::Time } else { StatusOrder::Classification };
            let once = merge_statuses(&a, &b, order);
            let twice = merge_statuses(&once.history, &b, order);
            prop_assert_eq!(&once, &twice);
            prop_assert_eq!(&merge_statuses(&once.history, &[], order), &once);
        }

        #[test]
        fn arrival_order_does_not_matter(batches in prop::collection::vec(prop::collection::vec(arb_status(), 0..6), 1..5), seed in any::<u64>(), time in any::<bool>()) {
            let order = if time { StatusOrder::Time } else { StatusOrder::Classification };
            let fold = |batches: &[Vec<DeliveryStatus>]| {
                batches.iter().fold(MergedHistory::default(), |acc, batch| merge_statuses(&acc.history, batch, order))
            };
            let forward = fold(&batches);
            let mut shuffled = batches.clone();
            fastrand::Rng::with_seed(seed).shuffle(&mut shuffled);
            for batch in &mut shuffled {
                batch.reverse();
            }
            prop_assert_eq!(fold(&shuffled), forward);
        }
    }
}

/// Hostile input (issue 10, part 4): wild status sequences (timestamps across chrono's whole
/// range, empty, long and odd texts, problems, pickup points) to the merge.
#[cfg(test)]
mod hostile {
    use proptest::prelude::*;

    use super::*;
    use crate::model::status::{Coordinates, Problem};
    use crate::provider::hostile_tests::{arb_instant, arb_text, config};

    fn arb_point() -> impl Strategy<Value = PickupPoint> {
        let coordinate = prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(f64::MAX),
            Just(f64::INFINITY),
            any::<f64>(),
        ];
        (
            arb_text(),
            arb_text(),
            prop::option::of((coordinate.clone(), coordinate)),
        )
            .prop_map(|(id, name, coordinates)| PickupPoint {
                id,
                name,
                address: String::new(),
                postcode: String::new(),
                phones: vec![],
                opening_hours: Default::default(),
                coordinates: coordinates.map(|(lat, lon)| Coordinates { lat, lon }),
            })
    }

    fn arb_status() -> impl Strategy<Value = DeliveryStatus> {
        let text = prop_oneof![
            arb_text(),
            Just("x".repeat(10_000)),
            Just("a".to_owned()),
            Just(String::new()),
        ];
        let problem = prop::option::of(prop_oneof![
            Just(Problem::RecipientAbsent),
            Just(Problem::Refused),
            arb_text().prop_map(Problem::Other),
        ]);
        (
            prop::sample::select(StatusCode::ALL.to_vec()),
            text,
            any::<bool>(),
            arb_instant(),
            problem,
            prop::option::of(arb_point()),
            prop::option::of(arb_text()),
        )
            .prop_map(|(code, text, raw, at, problem, point, carrier)| {
                let mut status = DeliveryStatus::new(code, &text, at);
                if raw {
                    // Bypass the constructor's cleaning, as a deserialized status may.
                    status.original = text.into();
                }
                status.problem = problem;
                status.pickup_point = point.map(Box::new);
                status.carrier = carrier.map(Into::into);
                status
            })
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn wild_sequences_merge_into_a_history_holding_the_current_status(
            existing in prop::collection::vec(arb_status(), 0..10),
            incoming in prop::collection::vec(arb_status(), 0..10),
            time in any::<bool>(),
        ) {
            let order = if time { StatusOrder::Time } else { StatusOrder::Classification };
            let merged = merge_statuses(&existing, &incoming, order);
            prop_assert!(merged.history.len() <= existing.len() + incoming.len());
            match &merged.current {
                None => prop_assert!(merged.history.is_empty()),
                Some(current) => prop_assert!(merged.history.contains(current)),
            }
            prop_assert_eq!(merged.current.is_none(), existing.is_empty() && incoming.is_empty());
            // Every status seen is kept (its code may be rewritten after a return).
            for seen in existing.iter().chain(&incoming) {
                prop_assert!(merged.history.iter().any(|h| h.at == seen.at && h.original == seen.original));
            }
            if let Some(current) = &merged.current {
                let _ = is_reportable_change(existing.last(), current);
            }
        }
    }
}
