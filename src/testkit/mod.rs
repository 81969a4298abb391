//! A conformance suite any [`FulfillmentProvider`](crate::provider::FulfillmentProvider) can
//! run against itself, and one for any [`Store`](crate::store::Store) (feature `mock`).
//!
//! Each check is a free async function over `&dyn FulfillmentProvider` that asserts one
//! contract of the trait and panics with a clear message when it is broken, the way
//! `object_store`'s integration suite works. Checks are chosen by the provider's
//! [`Capabilities`](crate::provider::Capabilities); [`run_all`] runs every check that applies,
//! each under [`CHECK_TIME_LIMIT`], and returns a [`ConformanceReport`] of what it checked and
//! what it skipped. A failure names the broken contract: ``provider contract `<name>`: ...``.
//!
//! Some contracts need the provider's state to be steered (an order packed, an odd status
//! reported). The test supplies that through a [`ConformanceDriver`]: for [`MockProvider`] it
//! calls the mock's own knobs, for an HTTP adapter it scripts the fake server.
//!
//! The [`Store`](crate::store::Store) checks live in [`run_store_suite`] and its parts.
//!
//! The crate's own tests keep one deliberately broken provider and one broken store per
//! contract (`tests/conformance_broken.rs`, `tests/store_suite_broken.rs`), each failing the
//! suite with the contract's name: a check that cannot fail proves nothing.
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
mod contract;
mod provider;
mod store;

pub use clock::TestClock;
pub use provider::{
    ConformanceDriver, ConformanceReport, LARGE_DIRECTORY_LIMIT, Skipped,
    cancel_after_lock_is_too_late, cancel_inside_window_cancels, claimed_operations_answer,
    create_is_idempotent, directory_limit_zero_is_everything, run_all, track_honours_batch_limit,
    unknown_shipment_does_not_fail_track, unknown_status_after_lock_stays_too_late,
    unknown_status_keeps_original, unsupported_operations_say_so, update_after_lock_is_too_late,
    update_inside_window_applies,
};

pub use store::{
    CHECK_TIME_LIMIT, apply_tracking_in_place, claim_due_lists_and_claims, claims_expire,
    concurrent_writers, every_field_round_trips, exception_history, insert_is_if_absent,
    keeps_exceptions, keeps_waybills, list_failed_and_exporting, list_pending_updates,
    order_leases, outbox, run_store_suite, sample_record, update_is_compare_and_swap,
};

use async_trait::async_trait;
use rust_decimal::Decimal;

use crate::error::Result;
use crate::model::{
    Address, AddressKind, AddressOption, AddressQuery, CartLine, Customer, Order, Payment,
    ShipmentRef,
};
use crate::provider::mock::MockProvider;

/// Entries [`MockProvider`]'s driver puts in its directory for the `limit: 0` check: more than
/// any provider's default page.
const MOCK_DIRECTORY_ENTRIES: usize = 45;

/// The mock steers itself: it locks at its lock stage, counts what it holds, and fills its
/// own directory. It has no wire, so `largest_track_batch` is `None` (its call record holds
/// the caller's slices, not requests it sent).
#[async_trait]
impl ConformanceDriver for MockProvider {
    async fn lock(&self, shipment: &ShipmentRef) -> Result<()> {
        self.advance(&shipment.order_id, self.lock_stage())
    }

    async fn report_raw_status(&self, shipment: &ShipmentRef, raw: &str) -> Result<()> {
        self.advance_raw(&shipment.order_id, raw)
    }

    async fn orders_held(&self) -> Option<usize> {
        Some(self.created_count())
    }

    fn largest_track_batch(&self) -> Option<usize> {
        None
    }

    async fn directory_query(&self) -> Result<AddressQuery> {
        const CITY: &str = "Conformance City";
        let query = AddressQuery::in_country("IT").with_city(CITY);
        let entries = (0..MOCK_DIRECTORY_ENTRIES).map(|n| AddressOption {
            id: format!("FK-CONF-POINT-{n:03}"),
            kind: AddressKind::PickupPoint,
            label: format!("Conformance point {n}"),
            address: Address {
                country: "IT".into(),
                region: None,
                city: CITY.into(),
                postcode: "30121".into(),
                lines: vec![format!("Calle {n}")],
                provider_address_id: None,
                pickup_point_id: None,
            },
            carrier: None,
            opening_hours: None,
        });
        self.add_directory_entries(entries);
        Ok(query)
    }
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
