//! The provider conformance suite fails a provider that breaks a contract, with a message
//! naming the contract: one deliberately broken provider per contract, each a wrapper over
//! `MockProvider` with one breakage switched on, run through the whole suite (`run_all`).

use std::sync::atomic::{AtomicUsize, Ordering};

use fulfillkit::error::Operation;
use fulfillkit::model::{
    AddressOption, AddressQuery, Order, Shipment, ShipmentRef, Sku, StatusCode, StockLevel,
    TrackingUpdate, Waybill,
};
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::provider::{CancelOutcome, Capabilities, FulfillmentProvider, UpdateOutcome};
use fulfillkit::testkit::{self, ConformanceDriver};
use fulfillkit::{Error, Result, async_trait};

/// One way a plugin author gets the contract wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breakage {
    /// None: the control.
    Nothing,
    /// A repeated create returns a new reference.
    NewReferenceOnRepeat,
    /// A repeated create makes a second order at the provider but returns the first reference.
    SecondOrderSameReference,
    /// Capabilities claim stock; `stock` answers `Unsupported`.
    ClaimedStockUnsupported,
    /// Capabilities claim a directory; `search_addresses` answers `Unsupported`.
    ClaimedDirectoryUnsupported,
    /// Capabilities deny stock; `stock` answers something other than `Unsupported`.
    DeniedStockAnswersOtherError,
    /// Every update is `TooLate`, even before the lock stage.
    UpdateAlwaysTooLate,
    /// Every cancel is `TooLate`, even before the lock stage.
    CancelAlwaysTooLate,
    /// Updates are applied whatever the stage.
    UpdateIgnoresLock,
    /// Cancels go through whatever the stage.
    CancelIgnoresLock,
    /// "Too late" is decided from the current status word: an unknown word re-opens editing.
    UnknownStatusReopens,
    /// Statuses the table does not know are dropped from `track`.
    DropsUnknownStatus,
    /// One unknown shipment fails the whole `track` call.
    UnknownShipmentFailsTrack,
    /// `track` answers only the first batch of a longer slice.
    AnswersOneBatchOnly,
    /// `track` sends the whole slice in one request, past `max_track_batch`.
    IgnoresBatchLimit,
    /// `search_addresses` with `limit: 0` answers one default page of 20.
    DirectoryDefaultPage,
    /// `track` never answers.
    TrackHangs,
}

use Breakage::*;

#[derive(Debug)]
struct Broken {
    inner: MockProvider,
    breakage: Breakage,
    /// Orders made at the "provider" beyond the mock's own (SecondOrderSameReference).
    phantom_orders: AtomicUsize,
}

impl Broken {
    fn new(breakage: Breakage) -> Self {
        Self {
            inner: MockProvider::new(),
            breakage,
            phantom_orders: AtomicUsize::new(0),
        }
    }

    fn is(&self, breakage: Breakage) -> bool {
        self.breakage == breakage
    }

    /// Whether the shipment's latest status is one the table does not know.
    fn latest_is_unknown(&self, shipment: &ShipmentRef) -> bool {
        self.inner
            .statuses(&shipment.order_id)
            .last()
            .is_some_and(|s| s.code == StatusCode::Unknown)
    }
}

#[async_trait]
impl FulfillmentProvider for Broken {
    fn kind(&self) -> &str {
        "broken"
    }

    fn capabilities(&self) -> Capabilities {
        match self.breakage {
            DeniedStockAnswersOtherError => Capabilities::all(50, 100).with_stock(false),
            IgnoresBatchLimit | AnswersOneBatchOnly => Capabilities::all(3, 100),
            _ => Capabilities::all(50, 100),
        }
    }

    async fn create_order(&self, order: &Order, waybill: &Waybill) -> Result<Shipment> {
        let repeat = self.inner.stored_order(&order.id).is_some();
        let mut shipment = self.inner.create_order(order, waybill).await?;
        if repeat && self.is(NewReferenceOnRepeat) {
            shipment.reference.provider_ref.push_str("-again");
        }
        if repeat && self.is(SecondOrderSameReference) {
            self.phantom_orders.fetch_add(1, Ordering::SeqCst);
        }
        Ok(shipment)
    }

    async fn update_order(
        &self,
        shipment: &ShipmentRef,
        order: &Order,
        waybill: &Waybill,
    ) -> Result<UpdateOutcome> {
        match self.breakage {
            UpdateAlwaysTooLate => Ok(UpdateOutcome::TooLate {
                state: "Registered".into(),
            }),
            UpdateIgnoresLock => Ok(UpdateOutcome::Applied),
            UnknownStatusReopens if self.latest_is_unknown(shipment) => Ok(UpdateOutcome::Applied),
            _ => self.inner.update_order(shipment, order, waybill).await,
        }
    }

    async fn cancel_order(&self, shipment: &ShipmentRef) -> Result<CancelOutcome> {
        match self.breakage {
            CancelAlwaysTooLate => Ok(CancelOutcome::TooLate {
                state: "Registered".into(),
            }),
            CancelIgnoresLock => Ok(CancelOutcome::Cancelled { state: None }),
            UnknownStatusReopens if self.latest_is_unknown(shipment) => {
                Ok(CancelOutcome::Cancelled { state: None })
            }
            _ => self.inner.cancel_order(shipment).await,
        }
    }

    async fn track(&self, shipments: &[ShipmentRef]) -> Result<Vec<TrackingUpdate>> {
        match self.breakage {
            TrackHangs => std::future::pending().await,
            AnswersOneBatchOnly => self.inner.track(&shipments[..shipments.len().min(3)]).await,
            IgnoresBatchLimit => self.inner.track(shipments).await,
            _ => {
                // A well-behaved adapter splits the slice into requests of max_track_batch.
                let mut updates = Vec::new();
                for chunk in shipments.chunks(self.capabilities().max_track_batch) {
                    updates.extend(self.inner.track(chunk).await?);
                }
                if self.is(UnknownShipmentFailsTrack)
                    && let Some(ghost) = updates
                        .iter()
                        .find(|u| matches!(u, TrackingUpdate::NotFound { .. }))
                {
                    return Err(Error::NotFound {
                        what: format!("shipment {}", ghost.shipment().provider_ref),
                    });
                }
                if self.is(DropsUnknownStatus) {
                    for update in &mut updates {
                        if let TrackingUpdate::Statuses { statuses, .. } = update {
                            statuses.retain(|s| s.code != StatusCode::Unknown);
                        }
                    }
                }
                Ok(updates)
            }
        }
    }

    async fn stock(&self, skus: &[Sku]) -> Result<Vec<StockLevel>> {
        match self.breakage {
            ClaimedStockUnsupported => Err(Error::unsupported(Operation::Stock, "broken")),
            DeniedStockAnswersOtherError => Err(Error::protocol("no stock endpoint")),
            _ => self.inner.stock(skus).await,
        }
    }

    async fn search_addresses(&self, query: &AddressQuery) -> Result<Vec<AddressOption>> {
        match self.breakage {
            ClaimedDirectoryUnsupported => {
                Err(Error::unsupported(Operation::SearchAddresses, "broken"))
            }
            DirectoryDefaultPage if query.limit == 0 => {
                self.inner
                    .search_addresses(&query.clone().with_limit(20))
                    .await
            }
            _ => self.inner.search_addresses(query).await,
        }
    }
}

#[async_trait]
impl ConformanceDriver for Broken {
    async fn lock(&self, shipment: &ShipmentRef) -> Result<()> {
        self.inner.lock(shipment).await
    }

    async fn report_raw_status(&self, shipment: &ShipmentRef, raw: &str) -> Result<()> {
        self.inner.report_raw_status(shipment, raw).await
    }

    async fn orders_held(&self) -> Option<usize> {
        Some(self.inner.created_count() + self.phantom_orders.load(Ordering::SeqCst))
    }

    /// The inner mock's call record holds exactly what this wrapper sent it.
    fn largest_track_batch(&self) -> Option<usize> {
        Some(self.inner.largest_batch(Operation::Track))
    }

    async fn directory_query(&self) -> Result<AddressQuery> {
        self.inner.directory_query().await
    }
}

async fn run(breakage: Breakage) {
    let broken = Broken::new(breakage);
    let _ = testkit::run_all(&broken, &broken).await;
}

#[tokio::test]
async fn the_control_conforms() {
    // Every test below differs from this one by its breakage alone.
    let control = Broken::new(Nothing);
    let report = testkit::run_all(&control, &control).await;
    assert_eq!(report.skipped, []);
}

#[tokio::test]
#[should_panic(
    expected = "provider contract `create_order (idempotent)`: broken: a repeated create must return the same shipment"
)]
async fn new_reference_on_repeat() {
    run(NewReferenceOnRepeat).await;
}

#[tokio::test]
#[should_panic(
    expected = "provider contract `create_order (one order at the provider)`: broken: a repeated create must not make a second order"
)]
async fn second_order_same_reference() {
    run(SecondOrderSameReference).await;
}

#[tokio::test]
#[should_panic(
    expected = "provider contract `capabilities (claimed operations answer)`: broken: the capabilities claim stock"
)]
async fn claimed_stock_unsupported() {
    run(ClaimedStockUnsupported).await;
}

#[tokio::test]
#[should_panic(
    expected = "provider contract `capabilities (claimed operations answer)`: broken: the capabilities claim an address directory"
)]
async fn claimed_directory_unsupported() {
    run(ClaimedDirectoryUnsupported).await;
}

#[tokio::test]
#[should_panic(
    expected = "provider contract `capabilities (denied operations are Unsupported)`: broken: stock is not in the capabilities and must be Unsupported"
)]
async fn denied_stock_answers_other_error() {
    run(DeniedStockAnswersOtherError).await;
}

#[tokio::test]
#[should_panic(
    expected = "provider contract `update_order (inside the window)`: broken: an edit before the lock stage must be Applied"
)]
async fn update_always_too_late() {
    run(UpdateAlwaysTooLate).await;
}

#[tokio::test]
#[should_panic(
    expected = "provider contract `cancel_order (inside the window)`: broken: a cancel before the lock stage must cancel"
)]
async fn cancel_always_too_late() {
    run(CancelAlwaysTooLate).await;
}

#[tokio::test]
#[should_panic(
    expected = "provider contract `update_order (after the lock)`: broken: update after the lock stage must be TooLate"
)]
async fn update_ignores_lock() {
    run(UpdateIgnoresLock).await;
}

#[tokio::test]
#[should_panic(
    expected = "provider contract `cancel_order (after the lock)`: broken: cancel after the lock stage must be TooLate"
)]
async fn cancel_ignores_lock() {
    run(CancelIgnoresLock).await;
}

#[tokio::test]
#[should_panic(
    expected = "provider contract `lock (an unknown status keeps it)`: broken: update after the lock stage must be TooLate"
)]
async fn unknown_status_reopens_editing() {
    run(UnknownStatusReopens).await;
}

#[tokio::test]
#[should_panic(expected = "provider contract `track (unknown status)`: broken: the raw status")]
async fn drops_unknown_status() {
    run(DropsUnknownStatus).await;
}

#[tokio::test]
#[should_panic(
    expected = "provider contract `track (unknown shipment)`: broken: one unknown shipment (FK-CONF-GHOST) must not fail the whole track call"
)]
async fn unknown_shipment_fails_track() {
    run(UnknownShipmentFailsTrack).await;
}

#[tokio::test]
#[should_panic(expected = "provider contract `track (long slices)`: broken: no statuses for")]
async fn answers_one_batch_only() {
    run(AnswersOneBatchOnly).await;
}

#[tokio::test]
#[should_panic(
    expected = "provider contract `track (batch size)`: broken: sent 4 shipments in one request, max_track_batch is 3"
)]
async fn ignores_batch_limit() {
    run(IgnoresBatchLimit).await;
}

#[tokio::test]
#[should_panic(
    expected = "provider contract `search_addresses (limit 0 is everything)`: broken: limit 0 must mean everything"
)]
async fn directory_default_page() {
    run(DirectoryDefaultPage).await;
}

// Paused time: the suite's time limit passes at once when nothing else can run.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "provider contract `track (unknown status)`: no answer within")]
async fn a_hanging_provider_fails_instead_of_hanging() {
    run(TrackHangs).await;
}
