//! A conformance suite any [`FulfillmentProvider`] can run against itself (feature `mock`).
//!
//! Each check is a free async function over `&dyn FulfillmentProvider` that asserts one
//! contract of the trait and panics with a clear message when it is broken, the way
//! `object_store`'s integration suite works. Checks are chosen by the provider's
//! [`Capabilities`]; [`run_all`] runs every check that applies.
//!
//! Some contracts need the provider's state to be steered (an order packed, an odd status
//! reported). The test supplies that through a [`ConformanceDriver`]: for [`MockProvider`] it
//! calls the mock's own knobs, for an HTTP adapter it scripts the fake server.
//!
//! The [`Store`](crate::store::Store) checks live in [`run_store_suite`] and its parts.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::sync::Arc;
//! use fulfillkit::provider::mock::MockProvider;
//!
//! let mock = Arc::new(MockProvider::new());
//! fulfillkit::testkit::run_all(&*mock, &*mock).await;
//! # }
//! ```

mod clock;
mod store;

pub use clock::TestClock;

pub use store::{
    CHECK_TIME_LIMIT, apply_tracking_in_place, claim_due_lists_and_claims, claims_expire,
    concurrent_writers, every_field_round_trips, exception_history, insert_is_if_absent,
    keeps_exceptions, keeps_waybills, list_failed_and_exporting, list_pending_updates,
    order_leases, outbox, run_store_suite, sample_record, update_is_compare_and_swap,
};

use async_trait::async_trait;
use rust_decimal::Decimal;

use crate::error::{Error, Operation, Result};
use crate::model::{
    Address, AddressQuery, CartLine, Customer, Order, Payment, ShipmentRef, StatusCode, Waybill,
};
use crate::provider::mock::MockProvider;
use crate::provider::{CancelOutcome, Capabilities, FulfillmentProvider, UpdateOutcome};

/// Steers a provider's state for the checks that need it.
#[async_trait]
pub trait ConformanceDriver: Send + Sync {
    /// A valid order for this provider; distinct `n` give distinct order ids.
    fn order(&self, n: usize) -> Order {
        sample_order(&format!("FK-CONF-{n}"))
    }

    /// A valid waybill for this provider.
    fn waybill(&self) -> Waybill {
        Waybill::new()
    }

    /// Moves the shipment to a stage where the provider refuses updates and cancels.
    async fn lock(&self, shipment: &ShipmentRef) -> Result<()>;

    /// Makes the provider report `raw` as the shipment's current status.
    async fn report_raw_status(&self, shipment: &ShipmentRef, raw: &str) -> Result<()>;

    /// The largest number of shipments the provider received in one tracking request, if the
    /// driver can observe it.
    fn largest_track_batch(&self) -> Option<usize> {
        None
    }
}

#[async_trait]
impl ConformanceDriver for MockProvider {
    async fn lock(&self, shipment: &ShipmentRef) -> Result<()> {
        self.advance(&shipment.order_id, StatusCode::Packed)
    }

    async fn report_raw_status(&self, shipment: &ShipmentRef, raw: &str) -> Result<()> {
        self.advance_raw(&shipment.order_id, raw)
    }

    // The mock has no wire: its call record holds the caller's slices (so orchestrator tests
    // can check the caller's batching), not requests it sent, so there is nothing to observe.
}

/// A valid prepaid order to Italy with one line of `Demo Product-1` (Wapi's test product).
pub fn sample_order(id: &str) -> Order {
    Order::new(
        id,
        Customer {
            name: "Giulia Rossi".into(),
            phone: "+393401234567".into(),
            email: Some("giulia@example.com".into()),
        },
        Address {
            country: "IT".into(),
            region: None,
            city: "Venezia".into(),
            postcode: "30121".into(),
            lines: vec!["Via Roma 12".into()],
            provider_address_id: None,
            pickup_point_id: None,
        },
        vec![CartLine {
            sku: "Demo Product-1".into(),
            name: "Demo Product 1".into(),
            product_type: None,
            quantity: 2,
            unit_price: Decimal::new(2450, 2),
        }],
        Payment::Prepaid,
        "EUR",
    )
}

/// Creating the same order twice returns the same shipment.
pub async fn create_is_idempotent(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
) {
    let order = driver.order(1);
    let waybill = driver.waybill();
    let first = provider
        .create_order(&order, &waybill)
        .await
        .unwrap_or_else(|e| panic!("{}: create_order failed: {e}", provider.kind()));
    assert_eq!(
        first.reference.order_id,
        order.id,
        "{}: the shipment must carry the order id",
        provider.kind()
    );
    let second = provider
        .create_order(&order, &waybill)
        .await
        .unwrap_or_else(|e| panic!("{}: repeated create_order failed: {e}", provider.kind()));
    assert_eq!(
        first.reference,
        second.reference,
        "{}: a repeated create must return the same shipment",
        provider.kind()
    );
}

/// Once the order is locked at the provider, an update is `TooLate` (never applied).
pub async fn update_after_lock_is_too_late(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
) {
    let order = driver.order(2);
    let shipment = create(provider, driver, &order).await;
    driver
        .lock(&shipment)
        .await
        .expect("driver could not lock the shipment");
    let mut edited = order.clone();
    edited.customer.name = format!("{} Jr", edited.customer.name);
    let outcome = provider
        .update_order(&shipment, &edited, &driver.waybill())
        .await;
    assert!(
        matches!(
            outcome,
            Ok(UpdateOutcome::TooLate { .. }) | Err(Error::TooLate { .. })
        ),
        "{}: update after the lock stage must be TooLate, got {outcome:?}",
        provider.kind()
    );
}

/// Once the order is locked at the provider, a cancel is `TooLate`.
pub async fn cancel_after_lock_is_too_late(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
) {
    let order = driver.order(3);
    let shipment = create(provider, driver, &order).await;
    driver
        .lock(&shipment)
        .await
        .expect("driver could not lock the shipment");
    let outcome = provider.cancel_order(&shipment).await;
    assert!(
        matches!(
            outcome,
            Ok(CancelOutcome::TooLate { .. }) | Err(Error::TooLate { .. })
        ),
        "{}: cancel after the lock stage must be TooLate, got {outcome:?}",
        provider.kind()
    );
}

/// A status text the provider's table does not know becomes `Unknown`, original text kept.
pub async fn unknown_status_keeps_original(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
) {
    const RAW: &str = "Parcel abducted by aliens 👽";
    let order = driver.order(4);
    let shipment = create(provider, driver, &order).await;
    driver
        .report_raw_status(&shipment, RAW)
        .await
        .expect("driver could not set the raw status");
    let updates = provider
        .track(std::slice::from_ref(&shipment))
        .await
        .unwrap_or_else(|e| panic!("{}: track failed: {e}", provider.kind()));
    let statuses = updates
        .iter()
        .find(|u| *u.shipment() == shipment)
        .map(|u| u.statuses().to_vec())
        .unwrap_or_default();
    let reported = statuses
        .iter()
        .find(|s| s.original == RAW)
        .unwrap_or_else(|| {
            panic!(
                "{}: the raw status {RAW:?} was not reported: {statuses:?}",
                provider.kind()
            )
        });
    assert_eq!(reported.code, StatusCode::Unknown, "{}", provider.kind());
}

/// `track` answers a slice longer than `max_track_batch` (splitting it) and, where the driver
/// can see the requests, never sends more than `max_track_batch` at once.
pub async fn track_honours_batch_limit(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
) {
    let max = provider.capabilities().max_track_batch;
    // One more than a batch, but bounded so a provider declaring a huge batch stays cheap.
    let count = max.min(60) + 1;
    let mut refs = Vec::with_capacity(count);
    for n in 0..count {
        refs.push(create(provider, driver, &driver.order(100 + n)).await);
    }
    let updates = provider
        .track(&refs)
        .await
        .unwrap_or_else(|e| panic!("{}: track of {count} failed: {e}", provider.kind()));
    for r in &refs {
        assert!(
            updates
                .iter()
                .any(|u| u.shipment() == r && !u.statuses().is_empty()),
            "{}: no statuses for {} in a track of {count}",
            provider.kind(),
            r.order_id
        );
    }
    if let Some(largest) = driver.largest_track_batch() {
        assert!(
            largest <= max,
            "{}: sent {largest} shipments in one request, max_track_batch is {max}",
            provider.kind()
        );
    }
}

/// Every operation the capabilities deny returns `Unsupported` naming the operation.
pub async fn unsupported_operations_say_so(provider: &dyn FulfillmentProvider) {
    let caps: Capabilities = provider.capabilities();
    let order = sample_order("FK-CONF-UNSUPPORTED");
    let reference = ShipmentRef::new(order.id.clone(), "FK-CONF-NONE");
    for operation in Operation::ALL {
        if caps.supports(operation) {
            continue;
        }
        let result = match operation {
            Operation::Update => provider
                .update_order(&reference, &order, &Waybill::new())
                .await
                .map(drop),
            Operation::Cancel => provider.cancel_order(&reference).await.map(drop),
            Operation::Stock => provider.stock(&[]).await.map(drop),
            Operation::SearchAddresses => provider
                .search_addresses(&AddressQuery::in_country("IT"))
                .await
                .map(drop),
            Operation::Create | Operation::Track => continue,
        };
        assert!(
            matches!(&result, Err(Error::Unsupported { operation: op, .. }) if *op == operation),
            "{}: {operation} is not in the capabilities and must be Unsupported, got {result:?}",
            provider.kind()
        );
    }
}

/// Runs every check that the provider's capabilities select.
pub async fn run_all(provider: &dyn FulfillmentProvider, driver: &dyn ConformanceDriver) {
    let caps = provider.capabilities();
    create_is_idempotent(provider, driver).await;
    if caps.update {
        update_after_lock_is_too_late(provider, driver).await;
    }
    if caps.cancel {
        cancel_after_lock_is_too_late(provider, driver).await;
    }
    unknown_status_keeps_original(provider, driver).await;
    track_honours_batch_limit(provider, driver).await;
    unsupported_operations_say_so(provider).await;
}

async fn create(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
    order: &Order,
) -> ShipmentRef {
    provider
        .create_order(order, &driver.waybill())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{}: create_order({}) failed: {e}",
                provider.kind(),
                order.id
            )
        })
        .reference
}
