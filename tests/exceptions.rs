//! Edits after export against `MockProvider`: which edits reach the provider, updates applied
//! or refused as too late, order exceptions with both versions, pending updates after a
//! transient failure, suspended automation, every resolution path, and edits racing tracking.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use fulfillkit::Error;
use fulfillkit::error::Operation;
use fulfillkit::model::*;
use fulfillkit::orchestrator::*;
use fulfillkit::provider::Capabilities;
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::store::Effects;
use fulfillkit::testkit::sample_order;

/// A clock the test moves by hand, so detection times can be filtered on.
#[derive(Clone)]
struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    fn new() -> Self {
        let start = Utc
            .with_ymd_and_hms(2024, 5, 2, 8, 0, 0)
            .single()
            .expect("valid time");
        Self(Arc::new(Mutex::new(start)))
    }

    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }

    fn advance(&self, by: chrono::Duration) {
        *self.0.lock().unwrap() += by;
    }
}

struct Setup {
    orchestrator: Arc<Orchestrator>,
    /// The Italian instance `it`.
    mock: Arc<MockProvider>,
    /// The Polish instance `pl`.
    pl: Arc<MockProvider>,
    events: Arc<CollectingSink>,
    store: Arc<MemoryStore>,
    clock: TestClock,
}

fn setup_with(it: MockProvider) -> Setup {
    let mock = Arc::new(it);
    let pl = Arc::new(MockProvider::new());
    let events = Arc::new(CollectingSink::new());
    let store = Arc::new(MemoryStore::new());
    let clock = TestClock::new();
    let now = clock.clone();
    let orchestrator = Orchestrator::builder()
        .instance(Instance::new("it", "Italy", mock.clone()))
        .instance(Instance::new("pl", "Poland", pl.clone()))
        .rule(RoutingRule::new("italy", Condition::country(["IT"]), "it"))
        .rule(RoutingRule::new("poland", Condition::country(["PL"]), "pl"))
        .store(store.clone())
        .events(events.clone())
        .clock(Arc::new(move || now.now()))
        .build()
        .unwrap();
    Setup {
        orchestrator: Arc::new(orchestrator),
        mock,
        pl,
        events,
        store,
        clock,
    }
}

fn setup() -> Setup {
    setup_with(MockProvider::new())
}

/// A mock that cannot update orders but can cancel them: every edit becomes an exception at
/// once, and a re-export can still cancel the first shipment.
fn without_update() -> MockProvider {
    MockProvider::new().with_capabilities(Capabilities::all(50, 100).with_update(false))
}

fn polish(mut order: Order) -> Order {
    order.address.country = "PL".into();
    order.address.city = "Łódź".into();
    order.address.postcode = "90-001".into();
    order.address.lines = vec!["ul. Piotrkowska 1".into()];
    order.customer.phone = "+48501234567".into();
    order.currency = "PLN".into();
    order
}

fn with_phone(order: &Order, phone: &str) -> Order {
    let mut edited = order.clone();
    edited.customer.phone = phone.into();
    edited
}

async fn exported(s: &Setup, order: &Order) {
    let outcome = s.orchestrator.on_order_confirmed(order).await.unwrap();
    assert!(
        matches!(outcome, ExportOutcome::Exported { .. }),
        "{outcome:?}"
    );
    s.events.take();
}

async fn record(s: &Setup, id: &OrderId) -> ShipmentRecord {
    s.orchestrator.shipment(id).await.unwrap().expect("record")
}

/// One edit of an order.
type Edit = fn(&mut Order);

fn update_calls(mock: &MockProvider) -> usize {
    mock.calls_of(Operation::Update).len()
}

/// Raises a `TooLate` exception for `order`: packed at the provider, then the phone edited.
async fn too_late_exception(s: &Setup, order: &Order) -> (Order, OrderException) {
    s.mock.advance(&order.id, StatusCode::Packed).unwrap();
    let edited = with_phone(order, "+393409999999");
    match s.orchestrator.on_order_changed(&edited).await.unwrap() {
        ChangeOutcome::Exception { exception } => (edited, exception),
        other => panic!("expected an exception, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Which edits count

#[tokio::test]
async fn each_key_field_alone_triggers_an_update() {
    let s = setup();
    let order = sample_order("SO-1");
    exported(&s, &order).await;

    let edits: [(Edit, KeyField); 4] = [
        (
            |o| o.customer.name = "Giulia Bianchi".into(),
            KeyField::Name,
        ),
        (
            |o| o.customer.phone = "+393409999999".into(),
            KeyField::Phone,
        ),
        (
            |o| o.address.lines[0] = "Via Po 1".into(),
            KeyField::Address,
        ),
        (|o| o.lines[0].quantity = 3, KeyField::Cart),
    ];
    let mut current = order.clone();
    for (i, (edit, field)) in edits.into_iter().enumerate() {
        edit(&mut current);
        let outcome = s.orchestrator.on_order_changed(&current).await.unwrap();
        assert!(
            matches!(&outcome, ChangeOutcome::Applied { changed_fields } if *changed_fields == [field]),
            "{field:?}: {outcome:?}"
        );
        assert_eq!(update_calls(&s.mock), i + 1);
        assert_eq!(s.mock.stored_order(&order.id).unwrap().0, current);
        let r = record(&s, &order.id).await;
        assert_eq!(r.fingerprints, Fingerprints::of(&current));
        assert_eq!(*r.order, current);
        let events = s.events.take();
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].kind,
            EventKind::OrderUpdated {
                changed_fields: vec![field]
            }
        );
        assert_eq!(events[0].automation, Automation::Active);
    }
    // The same version again: nothing to send.
    assert!(matches!(
        s.orchestrator.on_order_changed(&current).await.unwrap(),
        ChangeOutcome::Unchanged
    ));
    assert_eq!(update_calls(&s.mock), 4);
}

#[tokio::test]
async fn tags_custom_fields_and_cart_order_never_reach_the_provider() {
    let s = setup();
    let mut order = sample_order("SO-1");
    let mut second = order.lines[0].clone();
    second.sku = "Demo Product-2".into();
    order.lines.push(second);
    exported(&s, &order).await;

    let mut edited = order
        .clone()
        .with_tag("vip")
        .with_custom_field("channel", "phone");
    edited.lines.reverse();
    edited.lines[0].name = "renamed on the label only".into();
    let outcome = s.orchestrator.on_order_changed(&edited).await.unwrap();
    assert!(matches!(outcome, ChangeOutcome::Unchanged), "{outcome:?}");
    assert_eq!(update_calls(&s.mock), 0);
    assert!(s.events.take().is_empty());
    assert_eq!(*record(&s, &order.id).await.order, order);
}

#[tokio::test]
async fn an_order_not_exported_or_an_invalid_edit_sends_nothing() {
    let s = setup();
    assert!(matches!(
        s.orchestrator
            .on_order_changed(&sample_order("SO-404"))
            .await
            .unwrap(),
        ChangeOutcome::NotExported
    ));

    let order = sample_order("SO-1");
    exported(&s, &order).await;
    let mut invalid = with_phone(&order, "call me");
    invalid.lines[0].quantity = 0;
    let err = s.orchestrator.on_order_changed(&invalid).await.unwrap_err();
    let paths: Vec<_> = err.field_errors().iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["customer.phone", "lines[0].quantity"]);
    assert_eq!(update_calls(&s.mock), 0);
    let r = record(&s, &order.id).await;
    assert_eq!(r.fingerprints, Fingerprints::of(&order));
    assert!(r.pending_update.is_none());
}

#[tokio::test]
async fn an_edit_of_a_failed_export_is_what_the_retry_sends() {
    let s = setup();
    let order = sample_order("SO-1");
    s.mock.fail_next(
        Operation::Create,
        Error::Timeout {
            what: "create".into(),
        },
        1,
    );
    s.orchestrator.on_order_confirmed(&order).await.unwrap_err();
    let edited = with_phone(&order, "+393409999999");
    assert!(matches!(
        s.orchestrator.on_order_changed(&edited).await.unwrap(),
        ChangeOutcome::NotExported
    ));
    assert_eq!(
        s.orchestrator
            .retry_failed_exports()
            .await
            .unwrap()
            .exported,
        1
    );
    assert_eq!(s.mock.stored_order(&order.id).unwrap().0, edited);
}

// ---------------------------------------------------------------------------------------------
// Applied, already there, too late, unsupported

#[tokio::test]
async fn applied_before_the_lock_stage_and_an_exception_with_both_versions_after() {
    let s = setup();
    let order = sample_order("SO-1");
    exported(&s, &order).await;

    s.mock.advance(&order.id, StatusCode::Accepted).unwrap();
    let renamed = {
        let mut o = order.clone();
        o.customer.name = "Giulia Bianchi".into();
        o
    };
    assert!(matches!(
        s.orchestrator.on_order_changed(&renamed).await.unwrap(),
        ChangeOutcome::Applied { .. }
    ));
    s.events.take();

    s.mock.advance(&order.id, StatusCode::Packed).unwrap();
    let mut moved = with_phone(&renamed, "+393409999999");
    moved.address.city = "Padova".into();
    moved.address.postcode = "35121".into();
    let exception = match s.orchestrator.on_order_changed(&moved).await.unwrap() {
        ChangeOutcome::Exception { exception } => exception,
        other => panic!("{other:?}"),
    };
    let r = record(&s, &order.id).await;
    assert_eq!(exception.order_id, order.id);
    assert_eq!(exception.instance.as_str(), "it");
    assert_eq!(Some(&exception.shipment), r.shipment());
    assert_eq!(exception.reason, ExceptionReason::TooLate);
    assert_eq!(exception.provider_state.as_deref(), Some("Packed"));
    assert_eq!(
        exception.changed_fields,
        [KeyField::Phone, KeyField::Address].into()
    );
    assert_eq!(exception.exported, renamed, "what the provider has");
    assert_eq!(exception.requested, moved, "what the host asked for");
    assert_eq!(
        exception.delivery_status.as_ref(),
        r.current_status.as_deref()
    );
    assert_eq!(exception.detected_at, s.clock.now());
    assert!(exception.is_open());

    // The record keeps the provider's version and is suspended.
    assert_eq!(*r.order, renamed);
    assert_eq!(r.fingerprints, Fingerprints::of(&renamed));
    assert_eq!(r.automation, Automation::Suspended);
    assert!(r.pending_update.is_none());
    assert_eq!(s.mock.stored_order(&order.id).unwrap().0, renamed);
    assert_eq!(
        s.store.exception(&order.id).await.unwrap(),
        Some(exception.clone())
    );

    let events = s.events.take();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].kind,
        EventKind::ExceptionRaised {
            exception: exception.clone()
        }
    );
    assert_eq!(events[0].automation, Automation::Suspended);
    assert!(!s.orchestrator.automation_allowed(&order.id).await.unwrap());
}

#[tokio::test]
async fn a_provider_that_already_has_the_values_saves_them_without_an_event() {
    let s = setup();
    let order = sample_order("SO-1");
    exported(&s, &order).await;
    let edited = with_phone(&order, "+393409999999");
    // Someone changed it at the provider's portal already.
    let reference = record(&s, &order.id).await.shipment().unwrap().clone();
    let waybill = record(&s, &order.id).await.waybill;
    use fulfillkit::provider::FulfillmentProvider;
    let _ = s
        .mock
        .update_order(&reference, &edited, &waybill)
        .await
        .unwrap();

    let outcome = s.orchestrator.on_order_changed(&edited).await.unwrap();
    assert!(
        matches!(&outcome, ChangeOutcome::AlreadyAtProvider { changed_fields } if *changed_fields == [KeyField::Phone]),
        "{outcome:?}"
    );
    assert_eq!(
        record(&s, &order.id).await.fingerprints,
        Fingerprints::of(&edited)
    );
    assert!(s.events.take().is_empty());
}

#[tokio::test]
async fn a_provider_that_cannot_update_raises_an_unsupported_exception_at_once() {
    let s = setup_with(without_update());
    let order = sample_order("SO-1");
    exported(&s, &order).await;
    let edited = with_phone(&order, "+393409999999");
    let exception = match s.orchestrator.on_order_changed(&edited).await.unwrap() {
        ChangeOutcome::Exception { exception } => exception,
        other => panic!("{other:?}"),
    };
    assert_eq!(exception.reason, ExceptionReason::Unsupported);
    assert_eq!(exception.provider_state, None);
    assert_eq!(update_calls(&s.mock), 0, "capabilities say it cannot");
    assert_eq!(
        record(&s, &order.id).await.automation,
        Automation::Suspended
    );
}

#[tokio::test]
async fn a_too_late_error_from_the_provider_is_an_exception_too() {
    let s = setup();
    let order = sample_order("SO-1");
    exported(&s, &order).await;
    s.mock.fail_next(
        Operation::Update,
        Error::TooLate {
            state: "AssignedToPartner".into(),
        },
        1,
    );
    let outcome = s
        .orchestrator
        .on_order_changed(&with_phone(&order, "+393409999999"))
        .await
        .unwrap();
    assert!(
        matches!(&outcome, ChangeOutcome::Exception { exception }
            if exception.provider_state.as_deref() == Some("AssignedToPartner")),
        "{outcome:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Transient failures

#[tokio::test]
async fn a_transient_failure_keeps_the_edit_pending_and_the_retry_sends_it() {
    let s = setup();
    let order = sample_order("SO-1");
    exported(&s, &order).await;
    let edited = with_phone(&order, "+393409999999");

    s.mock.fail_next(
        Operation::Update,
        Error::Timeout {
            what: "update".into(),
        },
        1,
    );
    let outcome = s.orchestrator.on_order_changed(&edited).await.unwrap();
    assert!(
        matches!(&outcome, ChangeOutcome::Pending { failure, changed_fields } if failure.kind == fulfillkit::ErrorKind::Timeout && *changed_fields == [KeyField::Phone]),
        "{outcome:?}"
    );
    let r = record(&s, &order.id).await;
    let pending = r.pending_update.clone().expect("kept");
    let first_seen = s.clock.now();
    assert_eq!(pending.order, edited);
    assert_eq!(pending.attempts, 1);
    assert_eq!(pending.since, first_seen);
    assert!(pending.last_failure.message.contains("timed out"));
    assert_eq!(r.fingerprints, Fingerprints::of(&order), "not applied yet");
    assert_eq!(r.automation, Automation::Active);
    assert!(s.store.exception(&order.id).await.unwrap().is_none());
    assert!(s.events.take().is_empty());

    // A server fault after the HTTP client's retries, then a rate limit: still pending.
    s.mock.fail_next(
        Operation::Update,
        Error::provider_status("mock", "update_order", 503, "down for maintenance"),
        1,
    );
    s.mock.fail_next(
        Operation::Update,
        Error::RateLimited { retry_after: None },
        1,
    );
    for attempts in [2, 3] {
        s.clock.advance(chrono::Duration::minutes(1));
        let report = s.orchestrator.retry_pending_updates().await.unwrap();
        assert_eq!((report.attempted, report.failed), (1, 1), "{report:?}");
        let pending = record(&s, &order.id).await.pending_update.expect("kept");
        assert_eq!(pending.attempts, attempts);
        assert_eq!(pending.since, first_seen, "when the edit was first seen");
    }

    let report = s.orchestrator.retry_pending_updates().await.unwrap();
    assert_eq!((report.attempted, report.applied), (1, 1), "{report:?}");
    let r = record(&s, &order.id).await;
    assert!(r.pending_update.is_none());
    assert_eq!(r.fingerprints, Fingerprints::of(&edited));
    assert_eq!(s.mock.stored_order(&order.id).unwrap().0, edited);
    assert!(s.store.exception(&order.id).await.unwrap().is_none());
    let kinds: Vec<_> = s.events.take().into_iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [EventKind::OrderUpdated {
            changed_fields: vec![KeyField::Phone]
        }]
    );
    // Nothing left to send.
    assert_eq!(
        s.orchestrator.retry_pending_updates().await.unwrap(),
        UpdateRetryReport::default()
    );
}

#[tokio::test]
async fn a_newer_edit_replaces_the_pending_one_and_a_late_pending_edit_becomes_an_exception() {
    let s = setup();
    let order = sample_order("SO-1");
    exported(&s, &order).await;
    s.mock.fail_next(
        Operation::Update,
        Error::Timeout {
            what: "update".into(),
        },
        2,
    );
    let first = with_phone(&order, "+393409999999");
    let _ = s.orchestrator.on_order_changed(&first).await.unwrap();
    let mut second = first.clone();
    second.customer.name = "Giulia Bianchi".into();
    let _ = s.orchestrator.on_order_changed(&second).await.unwrap();
    let pending = record(&s, &order.id).await.pending_update.expect("kept");
    assert_eq!(pending.order, second);
    assert_eq!(pending.attempts, 2);

    // Packed before the retry: the pending edit is too late now.
    s.mock.advance(&order.id, StatusCode::Packed).unwrap();
    let report = s.orchestrator.retry_pending_updates().await.unwrap();
    assert_eq!(report.exceptions, 1, "{report:?}");
    let exception = s.store.exception(&order.id).await.unwrap().expect("raised");
    assert_eq!(exception.requested, second);
    assert_eq!(exception.exported, order);
    assert!(record(&s, &order.id).await.pending_update.is_none());
}

// ---------------------------------------------------------------------------------------------
// Suspended automation

#[tokio::test]
async fn a_suspended_order_is_not_exported_updated_or_triggered_but_still_tracked() {
    let s = setup();
    let order = sample_order("SO-1");
    exported(&s, &order).await;
    let (edited, _) = too_late_exception(&s, &order).await;
    s.events.take();
    assert!(!s.orchestrator.automation_allowed(&order.id).await.unwrap());
    assert!(
        s.orchestrator
            .automation_allowed(&OrderId::new("SO-unknown"))
            .await
            .unwrap()
    );

    // Confirmation: nothing sent.
    assert_eq!(
        s.orchestrator.on_order_confirmed(&edited).await.unwrap(),
        ExportOutcome::Suspended
    );

    // Further edits are recorded on the exception, never sent.
    let updates_before = update_calls(&s.mock);
    let mut again = edited.clone();
    again.customer.name = "Giulia Bianchi".into();
    s.clock.advance(chrono::Duration::minutes(5));
    let outcome = s.orchestrator.on_order_changed(&again).await.unwrap();
    assert!(
        matches!(&outcome, ChangeOutcome::Suspended { changed_fields, recorded: true }
            if *changed_fields == [KeyField::Name, KeyField::Phone]),
        "{outcome:?}"
    );
    // The same version again, or a tag: nothing new to record.
    let outcome = s
        .orchestrator
        .on_order_changed(&again.clone().with_tag("vip"))
        .await
        .unwrap();
    assert!(
        matches!(
            outcome,
            ChangeOutcome::Suspended {
                recorded: false,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(update_calls(&s.mock), updates_before);
    let exception = s.store.exception(&order.id).await.unwrap().unwrap();
    assert_eq!(exception.later_edits.len(), 1);
    assert_eq!(exception.later_edits[0].order, again);
    assert_eq!(exception.later_edits[0].at, s.clock.now());
    assert_eq!(
        exception.later_edits[0].changed_fields,
        [KeyField::Name, KeyField::Phone].into()
    );
    assert_eq!(exception.latest_requested(), &again);
    // An invalid edit is still refused.
    assert!(matches!(
        s.orchestrator
            .on_order_changed(&with_phone(&again, "12"))
            .await
            .unwrap_err(),
        Error::Validation { .. }
    ));

    // Tracking goes on, flagged.
    s.mock.advance(&order.id, StatusCode::InTransit).unwrap();
    s.clock.advance(chrono::Duration::hours(2));
    let report = s.orchestrator.sync_tracking().await.unwrap();
    assert_eq!(report.changed, 1, "{report:?}");
    let events = s.events.take();
    assert!(!events.is_empty());
    assert!(
        events.iter().all(|e| e.automation == Automation::Suspended),
        "{events:?}"
    );
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        EventKind::DeliveryStatusChanged { to, .. } if to.code == StatusCode::InTransit
    )));
    assert!(s.events.take().is_empty());
    assert_eq!(update_calls(&s.mock), updates_before);
}

#[tokio::test]
async fn pending_updates_of_a_suspended_order_are_left_alone() {
    let s = setup();
    let order = sample_order("SO-1");
    exported(&s, &order).await;
    too_late_exception(&s, &order).await;
    // A pending edit next to an open exception (e.g. written by an older replica).
    let r = record(&s, &order.id).await;
    let mut stale = r.clone();
    stale.pending_update = Some(Box::new(PendingUpdate {
        order: with_phone(&order, "+393401111111"),
        waybill: (*r.waybill).clone(),
        changed_fields: vec![KeyField::Phone],
        since: s.clock.now(),
        attempts: 1,
        last_failure: fulfillkit::Error::Timeout {
            what: "update".into(),
        }
        .to_failure(),
    }));
    s.store.update(stale, Effects::none()).await.unwrap();
    let calls = update_calls(&s.mock);
    let report = s.orchestrator.retry_pending_updates().await.unwrap();
    assert_eq!((report.attempted, report.skipped), (0, 1), "{report:?}");
    assert_eq!(update_calls(&s.mock), calls);
}

// ---------------------------------------------------------------------------------------------
// Resolution

fn resolved_events(events: &[Event]) -> Vec<&OrderException> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ExceptionResolved { exception } => {
                assert_eq!(e.automation, Automation::Active, "resolution resumes");
                Some(exception)
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn accepting_the_provider_version_resumes_and_does_not_resend_the_refused_edit() {
    let s = setup();
    let order = sample_order("SO-1");
    exported(&s, &order).await;
    let (edited, _) = too_late_exception(&s, &order).await;
    s.events.take();
    s.clock.advance(chrono::Duration::minutes(30));

    let resolved = s
        .orchestrator
        .resolve_exception(
            &order.id,
            Resolution::new(ResolutionAction::AcceptProviderVersion, "operator-7")
                .with_note("parcel already packed"),
        )
        .await
        .unwrap();
    assert!(!resolved.is_open());
    assert_eq!(resolved.resolved_at, Some(s.clock.now()));
    assert_eq!(
        resolved.resolution,
        Some(Resolution {
            action: ResolutionAction::AcceptProviderVersion,
            by: "operator-7".into(),
            note: Some("parcel already packed".into()),
        })
    );
    assert_eq!(
        s.store.exception(&order.id).await.unwrap(),
        Some(resolved.clone())
    );
    let events = s.events.take();
    assert_eq!(resolved_events(&events), [&resolved]);
    assert!(s.orchestrator.automation_allowed(&order.id).await.unwrap());
    let r = record(&s, &order.id).await;
    assert_eq!(*r.order, order, "the provider's version stays");
    assert_eq!(s.mock.stored_order(&order.id).unwrap().0, order);

    // The host keeping its edited version, or going back to the provider's: nothing to send.
    let calls = update_calls(&s.mock);
    for version in [&edited, &order] {
        assert!(matches!(
            s.orchestrator.on_order_changed(version).await.unwrap(),
            ChangeOutcome::Unchanged
        ));
    }
    assert_eq!(update_calls(&s.mock), calls);
    // A new edit is tried, and is too late again: a new exception.
    let newer = with_phone(&order, "+393402222222");
    assert!(matches!(
        s.orchestrator.on_order_changed(&newer).await.unwrap(),
        ChangeOutcome::Exception { .. }
    ));
}

#[tokio::test]
async fn reexport_cancels_the_first_shipment_and_creates_a_second() {
    let s = setup_with(without_update());
    let order = sample_order("SO-1");
    exported(&s, &order).await;
    let first = record(&s, &order.id).await.shipment().unwrap().clone();
    let edited = with_phone(&order, "+393409999999");
    assert!(matches!(
        s.orchestrator.on_order_changed(&edited).await.unwrap(),
        ChangeOutcome::Exception { .. }
    ));
    let mut latest = edited.clone();
    latest.address.lines = vec!["Via Po 1".into()];
    let _ = s.orchestrator.on_order_changed(&latest).await.unwrap();
    s.events.take();

    let resolved = s
        .orchestrator
        .resolve_exception(
            &order.id,
            Resolution::new(ResolutionAction::Reexport, "operator-7"),
        )
        .await
        .unwrap();
    assert_eq!(
        resolved.resolution.as_ref().map(|r| r.action),
        Some(ResolutionAction::Reexport)
    );

    // Two shipments at the provider: the first cancelled, the second with the latest edit
    // under the next provider-facing number.
    assert_eq!(s.mock.created_count(), 2);
    assert_eq!(
        s.mock.statuses(&order.id).last().map(|s| s.code),
        Some(StatusCode::Cancelled)
    );
    let renumbered = provider_order_id(&order.id, 1);
    assert_eq!(renumbered.as_str(), "SO-1~R1");
    let (at_provider, _) = s.mock.stored_order(&renumbered).expect("second shipment");
    assert_eq!(at_provider.id, renumbered);
    assert_eq!(at_provider.customer, latest.customer);
    assert_eq!(at_provider.address, latest.address);

    let r = record(&s, &order.id).await;
    let second = r.shipment().expect("exported").clone();
    assert_ne!(second, first);
    assert_eq!(second.order_id, renumbered);
    assert_eq!(r.order_id, order.id, "the host's id is kept");
    assert_eq!(r.export_seq, 1);
    assert_eq!(*r.order, latest);
    assert_eq!(r.fingerprints, Fingerprints::of(&latest));
    assert_eq!(r.automation, Automation::Active);
    assert_eq!(
        r.current_status.as_ref().map(|s| s.code),
        Some(StatusCode::Registered),
        "the new shipment's own history"
    );

    let events = s.events.take();
    let kinds: Vec<_> = events
        .iter()
        .map(|e| match &e.kind {
            EventKind::DeliveryStatusChanged { to, .. } => format!("status {:?}", to.code),
            EventKind::Exported { shipment, .. } => format!("exported {}", shipment.order_id),
            EventKind::ExceptionResolved { .. } => "resolved".into(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["status Cancelled", "exported SO-1~R1", "resolved"]);
    assert_eq!(events[0].automation, Automation::Suspended);
    assert_eq!(events[2].automation, Automation::Active);
    assert!(
        events
            .iter()
            .all(|e| e.order_id.as_ref() == Some(&order.id))
    );

    // Confirming again never makes a third shipment; tracking follows the second.
    assert!(matches!(
        s.orchestrator.on_order_confirmed(&latest).await.unwrap(),
        ExportOutcome::AlreadyExported { .. }
    ));
    assert_eq!(s.mock.created_count(), 2);
    s.mock.advance(&renumbered, StatusCode::InTransit).unwrap();
    s.clock.advance(chrono::Duration::hours(2));
    s.orchestrator.sync_tracking().await.unwrap();
    assert_eq!(
        record(&s, &order.id).await.current_status.map(|s| s.code),
        Some(StatusCode::InTransit)
    );
}

#[tokio::test]
async fn after_a_reexport_edits_go_to_the_second_shipment() {
    let s = setup();
    let order = sample_order("SO-1");
    exported(&s, &order).await;
    // Refused once (the provider's words), while the order can still be cancelled.
    s.mock.fail_next(
        Operation::Update,
        Error::TooLate {
            state: "Picking".into(),
        },
        1,
    );
    let edited = with_phone(&order, "+393409999999");
    let _ = s.orchestrator.on_order_changed(&edited).await.unwrap();
    s.orchestrator
        .resolve_exception(&order.id, Resolution::new(ResolutionAction::Reexport, "op"))
        .await
        .unwrap();
    let renumbered = provider_order_id(&order.id, 1);

    let mut renamed = edited.clone();
    renamed.customer.name = "Giulia Bianchi".into();
    assert!(matches!(
        s.orchestrator.on_order_changed(&renamed).await.unwrap(),
        ChangeOutcome::Applied { .. }
    ));
    let (at_provider, _) = s.mock.stored_order(&renumbered).unwrap();
    assert_eq!(at_provider.customer.name, "Giulia Bianchi");
    assert_eq!(at_provider.id, renumbered);
    assert_eq!(
        s.mock.stored_order(&order.id).unwrap().0.customer.name,
        order.customer.name,
        "the cancelled shipment is left alone"
    );
}

#[tokio::test]
async fn a_second_exception_of_an_order_joins_its_history_instead_of_replacing_the_first() {
    let s = setup();
    let order = sample_order("SO-1");
    exported(&s, &order).await;
    s.mock.fail_next(
        Operation::Update,
        Error::TooLate {
            state: "Picking".into(),
        },
        1,
    );
    let edited = with_phone(&order, "+393409999999");
    let first = s.orchestrator.on_order_changed(&edited).await.unwrap();
    let first = first.exception().cloned().expect("first exception");
    assert_eq!(first.seq, 1);
    s.orchestrator
        .resolve_exception(&order.id, Resolution::new(ResolutionAction::Reexport, "op"))
        .await
        .unwrap();
    // The new shipment is packed, and a later edit is refused again.
    s.mock
        .advance(&provider_order_id(&order.id, 1), StatusCode::Packed)
        .unwrap();
    s.clock.advance(chrono::Duration::hours(1));
    let again = with_phone(&edited, "+393401111111");
    let second = s.orchestrator.on_order_changed(&again).await.unwrap();
    let second = second.exception().cloned().expect("second exception");
    assert_eq!(second.seq, 2);
    assert_eq!(second.exported.customer.phone, edited.customer.phone);

    let history = s.orchestrator.exception_history(&order.id).await.unwrap();
    assert_eq!(history.len(), 2, "both exceptions are kept");
    assert_eq!(
        history[0].resolution.as_ref().map(|r| r.action),
        Some(ResolutionAction::Reexport),
        "the first keeps its resolution"
    );
    assert!(history[1].is_open());
    assert_eq!(
        s.orchestrator.exception(&order.id).await.unwrap(),
        Some(second.clone()),
        "the latest is the order's exception"
    );
    let resolved = s
        .orchestrator
        .exceptions(&ExceptionFilter::resolved(), None, 10)
        .await
        .unwrap();
    let open = s
        .orchestrator
        .exceptions(&ExceptionFilter::open(), None, 10)
        .await
        .unwrap();
    assert_eq!(resolved.exceptions, [history[0].clone()]);
    assert_eq!(open.exceptions, [second]);
}

#[tokio::test]
async fn reexport_when_the_provider_can_no_longer_cancel_ships_nothing_twice() {
    let s = setup();
    let order = sample_order("SO-1");
    exported(&s, &order).await;
    too_late_exception(&s, &order).await;
    s.events.take();
    let before = record(&s, &order.id).await;

    let err = s
        .orchestrator
        .resolve_exception(&order.id, Resolution::new(ResolutionAction::Reexport, "op"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::TooLate { state } if state == "Packed"),
        "{err:?}"
    );
    assert_eq!(s.mock.created_count(), 1);
    assert!(
        s.store
            .exception(&order.id)
            .await
            .unwrap()
            .unwrap()
            .is_open()
    );
    assert_eq!(record(&s, &order.id).await, before, "record untouched");
    assert!(s.events.take().is_empty());
    // The operator picks another way out.
    s.orchestrator
        .resolve_exception(&order.id, Resolution::new(ResolutionAction::Manual, "op"))
        .await
        .unwrap();
}

#[tokio::test]
async fn reexport_checks_the_new_version_before_cancelling_anything() {
    let s = setup_with(without_update());
    let order = sample_order("SO-1");
    exported(&s, &order).await;
    // An edit to a country no rule serves.
    let mut abroad = order.clone();
    abroad.address.country = "FR".into();
    let _ = s.orchestrator.on_order_changed(&abroad).await.unwrap();
    let err = s
        .orchestrator
        .resolve_exception(&order.id, Resolution::new(ResolutionAction::Reexport, "op"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoRoute { .. }), "{err:?}");
    assert!(s.mock.calls_of(Operation::Cancel).is_empty());
    assert!(
        s.store
            .exception(&order.id)
            .await
            .unwrap()
            .unwrap()
            .is_open()
    );
}

#[tokio::test]
async fn reexport_can_be_repeated_after_the_new_export_failed() {
    let s = setup_with(without_update());
    let order = sample_order("SO-1");
    exported(&s, &order).await;
    let edited = with_phone(&order, "+393409999999");
    let _ = s.orchestrator.on_order_changed(&edited).await.unwrap();
    s.mock.fail_next(
        Operation::Create,
        Error::Timeout {
            what: "create".into(),
        },
        1,
    );
    let reexport = || Resolution::new(ResolutionAction::Reexport, "op");
    let err = s
        .orchestrator
        .resolve_exception(&order.id, reexport())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    let r = record(&s, &order.id).await;
    assert!(matches!(r.export, ExportState::Failed { .. }));
    assert_eq!(r.automation, Automation::Suspended, "still for an operator");
    assert!(
        s.store
            .exception(&order.id)
            .await
            .unwrap()
            .unwrap()
            .is_open()
    );
    // Automation does not retry it behind the operator's back.
    assert_eq!(
        s.orchestrator
            .retry_failed_exports()
            .await
            .unwrap()
            .attempted,
        0
    );
    // An edit in between is recorded, and it is what the repeated re-export sends.
    let later = with_phone(&order, "+393408888888");
    assert!(matches!(
        s.orchestrator.on_order_changed(&later).await.unwrap(),
        ChangeOutcome::Suspended { recorded: true, .. }
    ));

    s.orchestrator
        .resolve_exception(&order.id, reexport())
        .await
        .unwrap();
    assert_eq!(
        s.mock.calls_of(Operation::Cancel).len(),
        1,
        "cancelled once"
    );
    assert_eq!(s.mock.created_count(), 2);
    let r = record(&s, &order.id).await;
    assert_eq!(r.export_seq, 1);
    assert_eq!(*r.order, later);
    let renumbered = provider_order_id(&order.id, 1);
    assert_eq!(
        s.mock.stored_order(&renumbered).unwrap().0.customer.phone,
        later.customer.phone
    );
}

#[tokio::test]
async fn cancelled_at_provider_marks_the_shipment_cancelled_and_resumes() {
    let s = setup();
    let order = sample_order("SO-1");
    exported(&s, &order).await;
    too_late_exception(&s, &order).await;
    s.events.take();
    let resolved = s
        .orchestrator
        .resolve_exception(
            &order.id,
            Resolution::new(ResolutionAction::CancelledAtProvider, "op"),
        )
        .await
        .unwrap();
    let r = record(&s, &order.id).await;
    let status = r.current_status.clone().expect("status");
    assert_eq!(status.code, StatusCode::Cancelled);
    assert_eq!(r.last_reported, Some(status.clone()), "reported once");
    assert_eq!(r.history.last(), Some(&*status));
    assert_eq!(r.automation, Automation::Active);
    assert!(!r.is_active(), "tracking is done with it");
    let events = s.events.take();
    assert_eq!(events.len(), 2);
    assert!(matches!(
        &events[0].kind,
        EventKind::DeliveryStatusChanged { to, .. } if to.code == StatusCode::Cancelled
    ));
    assert_eq!(events[0].automation, Automation::Active);
    assert_eq!(resolved_events(&events), [&resolved]);
}

#[tokio::test]
async fn manual_resolution_resumes_and_twice_or_without_exception_is_an_error() {
    let s = setup();
    let order = sample_order("SO-1");
    exported(&s, &order).await;
    let manual = || Resolution::new(ResolutionAction::Manual, "op");

    let err = s
        .orchestrator
        .resolve_exception(&order.id, manual())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");

    too_late_exception(&s, &order).await;
    let err = s
        .orchestrator
        .resolve_exception(&order.id, Resolution::new(ResolutionAction::Manual, " "))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation { .. }), "{err:?}");

    let resolved = s
        .orchestrator
        .resolve_exception(&order.id, manual())
        .await
        .unwrap();
    assert_eq!(
        resolved.resolution.map(|r| r.action),
        Some(ResolutionAction::Manual)
    );
    assert!(s.orchestrator.automation_allowed(&order.id).await.unwrap());
    s.events.take();

    let err = s
        .orchestrator
        .resolve_exception(&order.id, manual())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { message } if message.contains("SO-1") && message.contains("already resolved")),
        "{err:?}"
    );
    assert!(s.events.take().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The list

#[tokio::test]
async fn exceptions_are_listed_by_state_instance_and_date_in_pages() {
    let s = setup();
    let start = s.clock.now();
    let italian = ["SO-1", "SO-2", "SO-3"].map(sample_order);
    for order in &italian {
        exported(&s, order).await;
        too_late_exception(&s, order).await;
        s.clock.advance(chrono::Duration::hours(1));
    }
    let warsaw = polish(sample_order("SO-4"));
    exported(&s, &warsaw).await;
    s.pl.advance(&warsaw.id, StatusCode::InTransit).unwrap();
    let _ = s
        .orchestrator
        .on_order_changed(&with_phone(&warsaw, "+48501111111"))
        .await
        .unwrap();
    s.orchestrator
        .resolve_exception(
            &italian[1].id,
            Resolution::new(ResolutionAction::Manual, "op"),
        )
        .await
        .unwrap();

    let ids = |page: &ExceptionPage| {
        page.exceptions
            .iter()
            .map(|e| e.order_id.to_string())
            .collect::<Vec<_>>()
    };
    let list = |filter: ExceptionFilter| {
        let orchestrator = s.orchestrator.clone();
        async move { orchestrator.exceptions(&filter, None, 100).await.unwrap() }
    };
    assert_eq!(
        ids(&list(ExceptionFilter::open()).await),
        ["SO-1", "SO-3", "SO-4"]
    );
    assert_eq!(ids(&list(ExceptionFilter::resolved()).await), ["SO-2"]);
    assert_eq!(
        ids(&list(ExceptionFilter::open().with_instance("pl")).await),
        ["SO-4"]
    );
    let second_hour = ExceptionFilter::default().detected_between(
        Some(start + chrono::Duration::hours(1)),
        Some(start + chrono::Duration::hours(2)),
    );
    assert_eq!(ids(&list(second_hour).await), ["SO-2"]);

    let first = s
        .orchestrator
        .exceptions(&ExceptionFilter::default(), None, 2)
        .await
        .unwrap();
    assert_eq!(ids(&first), ["SO-1", "SO-2"]);
    let after = first.next_after.clone().expect("more");
    let second = s
        .orchestrator
        .exceptions(&ExceptionFilter::default(), Some(&after), 2)
        .await
        .unwrap();
    assert_eq!(ids(&second), ["SO-3", "SO-4"]);
    let third = s
        .orchestrator
        .exceptions(&ExceptionFilter::default(), second.next_after.as_ref(), 2)
        .await
        .unwrap();
    assert!(third.exceptions.is_empty());
    assert_eq!(third.next_after, None);
}

// ---------------------------------------------------------------------------------------------
// Races

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_edits_and_tracking_of_one_shipment_lose_no_field() {
    // Latency on every provider call makes each edit's update and each tracking poll overlap,
    // so the record changes under both while they wait.
    let s = setup_with(MockProvider::new().with_latency(Duration::from_millis(3)));
    let order = sample_order("SO-1");
    exported(&s, &order).await;

    const ROUNDS: usize = 12;
    let editor = {
        let orchestrator = s.orchestrator.clone();
        let order = order.clone();
        tokio::spawn(async move {
            let mut last = order.clone();
            for i in 0..ROUNDS {
                last.customer.name = format!("Giulia Rossi {i}");
                let outcome = orchestrator.on_order_changed(&last).await.unwrap();
                assert!(
                    matches!(outcome, ChangeOutcome::Applied { .. }),
                    "{outcome:?}"
                );
            }
            last
        })
    };
    let tracker = {
        let orchestrator = s.orchestrator.clone();
        let mock = s.mock.clone();
        let clock = s.clock.clone();
        let id = order.id.clone();
        tokio::spawn(async move {
            for i in 0..ROUNDS {
                // Distinct texts below the lock stage, so every edit is still accepted.
                let code = StatusCode::Accepted;
                let at = clock.now() + chrono::Duration::minutes(i as i64 + 1);
                mock.push_status(&id, DeliveryStatus::new(code, format!("step {i}"), at))
                    .unwrap();
                clock.advance(chrono::Duration::hours(2));
                orchestrator.sync_tracking().await.unwrap();
            }
        })
    };
    let last = editor.await.unwrap();
    tracker.await.unwrap();

    let r = record(&s, &order.id).await;
    assert_eq!(*r.order, last, "the last edit is the record's version");
    assert_eq!(r.fingerprints, Fingerprints::of(&last));
    assert_eq!(s.mock.stored_order(&order.id).unwrap().0, last);
    let seen: Vec<&str> = r.history.iter().map(|h| h.original.as_str()).collect();
    for i in 0..ROUNDS {
        let text = format!("step {i}");
        assert!(seen.contains(&text.as_str()), "{text} lost: {seen:?}");
    }
    assert_eq!(
        r.current_status.map(|c| c.original.clone()),
        s.mock
            .statuses(&order.id)
            .last()
            .map(|c| c.original.clone())
    );
}
