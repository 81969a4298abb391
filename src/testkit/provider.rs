//! The provider checks: each is a free async function asserting one contract of
//! [`FulfillmentProvider`], panicking with ``provider contract `<name>`: <kind>: ...`` when the
//! provider breaks it. [`run_all`] runs the ones the capabilities select, each under
//! [`CHECK_TIME_LIMIT`](super::CHECK_TIME_LIMIT).

use std::collections::BTreeSet;
use std::future::Future;

use async_trait::async_trait;

use super::sample_order;
use crate::error::{Error, Operation, Result};
use crate::model::{AddressOption, AddressQuery, Order, ShipmentRef, StatusCode, Waybill};
use crate::provider::{CancelOutcome, Capabilities, FulfillmentProvider, UpdateOutcome};

/// A status text no provider's table knows.
const ALIEN_STATUS: &str = "Parcel abducted by aliens 👽";

/// The `limit` the directory check compares `limit: 0` with: more than any default page.
pub const LARGE_DIRECTORY_LIMIT: usize = 10_000;

/// Steers a provider's state, and observes it, for the checks that need it.
///
/// Four methods are required. Two of them observe the provider from outside the trait —
/// [`orders_held`](Self::orders_held) and [`largest_track_batch`](Self::largest_track_batch) —
/// and may answer `None` when the driver truly cannot see; the check that needs the answer is
/// then skipped, and [`run_all`] lists it in its [`ConformanceReport`]. They are required so
/// that skipping is a decision, not an accident.
///
/// # Examples
///
/// A driver for an in-memory provider with a back office:
///
/// ```
/// use fulfillkit::async_trait;
/// use fulfillkit::model::ShipmentRef;
/// use fulfillkit::provider::mock::MockProvider;
/// use fulfillkit::testkit::ConformanceDriver;
///
/// struct Driver<'a>(&'a MockProvider);
///
/// #[async_trait]
/// impl ConformanceDriver for Driver<'_> {
///     async fn lock(&self, shipment: &ShipmentRef) -> fulfillkit::Result<()> {
///         self.0.advance(&shipment.order_id, fulfillkit::model::StatusCode::Packed)
///     }
///     async fn report_raw_status(&self, shipment: &ShipmentRef, raw: &str) -> fulfillkit::Result<()> {
///         self.0.advance_raw(&shipment.order_id, raw)
///     }
///     async fn orders_held(&self) -> Option<usize> {
///         Some(self.0.created_count())
///     }
///     fn largest_track_batch(&self) -> Option<usize> {
///         None // the mock has no wire to observe
///     }
///     // The mock claims an address directory: fill it past a default page, say what to ask.
///     async fn directory_query(&self) -> fulfillkit::Result<fulfillkit::model::AddressQuery> {
///         self.0.directory_query().await
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mock = MockProvider::new();
/// let report = fulfillkit::testkit::run_all(&mock, &Driver(&mock)).await;
/// assert!(report.skipped.iter().any(|s| s.check == "track (batch size)"));
/// # }
/// ```
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

    /// How many orders the provider holds now (created, whatever their state), as seen from
    /// outside the adapter (the fake server's order book, the sandbox's listing). The
    /// idempotency check compares it before and after creates: a create that makes a second
    /// order at the provider but returns the first one's reference is caught only here.
    ///
    /// `None` when the driver cannot see it (the check is then skipped and reported).
    async fn orders_held(&self) -> Option<usize>;

    /// The largest number of shipments the provider received in one tracking request (from
    /// the fake server's request log). Checked against
    /// [`Capabilities::max_track_batch`].
    ///
    /// `None` when the driver cannot see the requests (the check is then skipped and
    /// reported).
    fn largest_track_batch(&self) -> Option<usize>;

    /// A shipment the provider has never heard of, in the shape of its references (so the
    /// adapter sends it, rather than refusing it as malformed).
    fn unknown_shipment(&self) -> ShipmentRef {
        ShipmentRef::new("FK-CONF-GHOST", "987654321")
    }

    /// A directory query that matches **more entries than the provider's default page** (fill
    /// the fake directory first if needed), for the `limit: 0` check. Needed only when the
    /// capabilities claim an address directory; the default answers [`Error::Unsupported`],
    /// which fails that check.
    async fn directory_query(&self) -> Result<AddressQuery> {
        Err(Error::unsupported(
            Operation::SearchAddresses,
            "conformance driver (implement ConformanceDriver::directory_query)",
        ))
    }
}

/// A check [`run_all`] did not run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Skipped {
    /// The check's contract name, e.g. `track (batch size)`.
    pub check: &'static str,
    /// Why it did not run.
    pub reason: &'static str,
}

/// What [`run_all`] checked. A broken contract panics; this lists what passed and what could
/// not be checked, so a test can insist that nothing was skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConformanceReport {
    /// The contracts checked, in order.
    pub passed: Vec<&'static str>,
    /// The contracts not checked (capabilities the provider does not claim, observations the
    /// driver cannot make).
    pub skipped: Vec<Skipped>,
}

impl ConformanceReport {
    fn skip(&mut self, check: &'static str, reason: &'static str) {
        self.skipped.push(Skipped { check, reason });
    }
}

/// Runs `check` under [`CHECK_TIME_LIMIT`](super::CHECK_TIME_LIMIT), failing with the
/// contract's name if it hangs, breaks an assertion or meets an error.
async fn limited(
    report: &mut ConformanceReport,
    contract: &'static str,
    check: impl Future<Output = ()>,
) {
    super::contract::run_check("provider", contract, super::CHECK_TIME_LIMIT, check).await;
    report.passed.push(contract);
}

/// Runs every check that the provider's capabilities select, each under
/// [`CHECK_TIME_LIMIT`](super::CHECK_TIME_LIMIT) (the test runtime needs tokio's time
/// driver, as `#[tokio::test]` has), and says what it checked.
///
/// # Panics
///
/// On the first broken contract, with a message ``provider contract `<name>`: ...``.
pub async fn run_all(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
) -> ConformanceReport {
    let caps = provider.capabilities();
    let mut report = ConformanceReport::default();
    limited(
        &mut report,
        "create_order (idempotent)",
        create_is_idempotent(provider, driver),
    )
    .await;
    if driver.orders_held().await.is_none() {
        report.skip(
            "create_order (one order at the provider)",
            "the driver cannot count the provider's orders (orders_held is None)",
        );
    }
    limited(
        &mut report,
        "capabilities (claimed operations answer)",
        claimed_operations_answer(provider, driver),
    )
    .await;
    limited(
        &mut report,
        "capabilities (denied operations are Unsupported)",
        unsupported_operations_say_so(provider),
    )
    .await;
    if caps.update {
        limited(
            &mut report,
            "update_order (inside the window)",
            update_inside_window_applies(provider, driver),
        )
        .await;
        limited(
            &mut report,
            "update_order (after the lock)",
            update_after_lock_is_too_late(provider, driver),
        )
        .await;
    } else {
        report.skip("update_order", "capabilities do not claim update");
    }
    if caps.cancel {
        limited(
            &mut report,
            "cancel_order (inside the window)",
            cancel_inside_window_cancels(provider, driver),
        )
        .await;
        limited(
            &mut report,
            "cancel_order (after the lock)",
            cancel_after_lock_is_too_late(provider, driver),
        )
        .await;
    } else {
        report.skip("cancel_order", "capabilities do not claim cancel");
    }
    if caps.update || caps.cancel {
        limited(
            &mut report,
            "lock (an unknown status keeps it)",
            unknown_status_after_lock_stays_too_late(provider, driver),
        )
        .await;
    }
    limited(
        &mut report,
        "track (unknown status)",
        unknown_status_keeps_original(provider, driver),
    )
    .await;
    limited(
        &mut report,
        "track (unknown shipment)",
        unknown_shipment_does_not_fail_track(provider, driver),
    )
    .await;
    limited(
        &mut report,
        "track (long slices)",
        track_honours_batch_limit(provider, driver),
    )
    .await;
    if driver.largest_track_batch().is_none() {
        report.skip(
            "track (batch size)",
            "the driver cannot see the requests (largest_track_batch is None)",
        );
    }
    if caps.address_directory {
        limited(
            &mut report,
            "search_addresses (limit 0 is everything)",
            directory_limit_zero_is_everything(provider, driver),
        )
        .await;
    } else {
        report.skip(
            "search_addresses",
            "capabilities do not claim an address directory",
        );
    }
    report
}

fn kind(provider: &dyn FulfillmentProvider) -> String {
    provider.kind().to_owned()
}

/// Creating the same order twice returns the same shipment, and (where the driver can count
/// the provider's orders) the provider holds exactly one order more, not two.
pub async fn create_is_idempotent(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
) {
    let kind = kind(provider);
    let order = driver.order(1);
    let waybill = driver.waybill();
    let before = driver.orders_held().await;
    let first = provider
        .create_order(&order, &waybill)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "provider contract `create_order (idempotent)`: {kind}: create_order failed: {e}"
            )
        });
    assert_eq!(
        first.reference.order_id, order.id,
        "provider contract `create_order (idempotent)`: {kind}: the shipment must carry the order id"
    );
    let after_first = driver.orders_held().await;
    let second = provider.create_order(&order, &waybill).await.unwrap_or_else(|e| {
        panic!(
            "provider contract `create_order (idempotent)`: {kind}: repeated create_order failed: {e}"
        )
    });
    assert_eq!(
        first.reference, second.reference,
        "provider contract `create_order (idempotent)`: {kind}: a repeated create must return the same shipment"
    );
    let after_second = driver.orders_held().await;
    if let (Some(before), Some(after_first), Some(after_second)) =
        (before, after_first, after_second)
    {
        assert_eq!(
            after_first,
            before + 1,
            "provider contract `create_order (one order at the provider)`: {kind}: a create must make exactly one order at the provider ({before} before, {after_first} after)"
        );
        assert_eq!(
            after_second, after_first,
            "provider contract `create_order (one order at the provider)`: {kind}: a repeated create must not make a second order at the provider ({after_first} after the first create, {after_second} after the second)"
        );
    }
}

/// An edit of an order the provider has not locked is applied (never `TooLate`, never
/// `NoChange`); repeating it changes nothing.
pub async fn update_inside_window_applies(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
) {
    let kind = kind(provider);
    let order = driver.order(5);
    let shipment = create(provider, driver, &order).await;
    let edited = edited(&order);
    let outcome = provider
        .update_order(&shipment, &edited, &driver.waybill())
        .await;
    assert!(
        matches!(outcome, Ok(UpdateOutcome::Applied)),
        "provider contract `update_order (inside the window)`: {kind}: an edit before the lock stage must be Applied, got {outcome:?}"
    );
    let again = provider
        .update_order(&shipment, &edited, &driver.waybill())
        .await;
    assert!(
        matches!(again, Ok(UpdateOutcome::Applied | UpdateOutcome::NoChange)),
        "provider contract `update_order (inside the window)`: {kind}: repeating an applied edit must be NoChange or Applied, got {again:?}"
    );
}

/// A cancel of an order the provider has not locked cancels it (never `TooLate`); a second
/// cancel says it is cancelled.
pub async fn cancel_inside_window_cancels(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
) {
    let kind = kind(provider);
    let order = driver.order(6);
    let shipment = create(provider, driver, &order).await;
    let outcome = provider.cancel_order(&shipment).await;
    assert!(
        matches!(&outcome, Ok(o) if o.is_cancelled()),
        "provider contract `cancel_order (inside the window)`: {kind}: a cancel before the lock stage must cancel, got {outcome:?}"
    );
    let again = provider.cancel_order(&shipment).await;
    assert!(
        matches!(&again, Ok(o) if o.is_cancelled()),
        "provider contract `cancel_order (inside the window)`: {kind}: a second cancel must say the order is cancelled, got {again:?}"
    );
}

/// Once the order is locked at the provider, an update is `TooLate` (never applied).
pub async fn update_after_lock_is_too_late(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
) {
    let order = driver.order(2);
    let shipment = create(provider, driver, &order).await;
    lock(driver, &shipment).await;
    assert_update_too_late(
        provider,
        driver,
        &shipment,
        &order,
        "update_order (after the lock)",
    )
    .await;
}

/// Once the order is locked at the provider, a cancel is `TooLate`.
pub async fn cancel_after_lock_is_too_late(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
) {
    let order = driver.order(3);
    let shipment = create(provider, driver, &order).await;
    lock(driver, &shipment).await;
    assert_cancel_too_late(provider, &shipment, "cancel_order (after the lock)").await;
}

/// A status the provider's table does not know, reported after the lock stage, does not
/// re-open editing: updates and cancels (those the capabilities claim) stay `TooLate`.
pub async fn unknown_status_after_lock_stays_too_late(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
) {
    const CONTRACT: &str = "lock (an unknown status keeps it)";
    let caps = provider.capabilities();
    let order = driver.order(7);
    let shipment = create(provider, driver, &order).await;
    lock(driver, &shipment).await;
    driver
        .report_raw_status(&shipment, ALIEN_STATUS)
        .await
        .unwrap_or_else(|e| {
            panic!("provider contract `{CONTRACT}`: the driver could not set the raw status: {e}")
        });
    if caps.update {
        assert_update_too_late(provider, driver, &shipment, &order, CONTRACT).await;
    }
    if caps.cancel {
        assert_cancel_too_late(provider, &shipment, CONTRACT).await;
    }
}

/// A status text the provider's table does not know becomes `Unknown`, original text kept.
pub async fn unknown_status_keeps_original(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
) {
    let kind = kind(provider);
    let order = driver.order(4);
    let shipment = create(provider, driver, &order).await;
    driver
        .report_raw_status(&shipment, ALIEN_STATUS)
        .await
        .unwrap_or_else(|e| {
            panic!("provider contract `track (unknown status)`: the driver could not set the raw status: {e}")
        });
    let updates = provider
        .track(std::slice::from_ref(&shipment))
        .await
        .unwrap_or_else(|e| {
            panic!("provider contract `track (unknown status)`: {kind}: track failed: {e}")
        });
    let statuses = updates
        .iter()
        .find(|u| *u.shipment() == shipment)
        .map(|u| u.statuses().to_vec())
        .unwrap_or_default();
    let reported = statuses
        .iter()
        .find(|s| s.original == ALIEN_STATUS)
        .unwrap_or_else(|| {
            panic!(
                "provider contract `track (unknown status)`: {kind}: the raw status {ALIEN_STATUS:?} was not reported: {statuses:?}"
            )
        });
    assert_eq!(
        reported.code,
        StatusCode::Unknown,
        "provider contract `track (unknown status)`: {kind}: a raw status the table does not know must map to Unknown"
    );
}

/// A shipment the provider does not know, tracked between two it knows, does not fail the
/// call: the known ones get their statuses, the unknown one is `NotFound`, `Failed` or left
/// out.
pub async fn unknown_shipment_does_not_fail_track(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
) {
    let kind = kind(provider);
    let first = create(provider, driver, &driver.order(8)).await;
    let second = create(provider, driver, &driver.order(9)).await;
    let ghost = driver.unknown_shipment();
    let refs = [first.clone(), ghost.clone(), second.clone()];
    let updates = provider.track(&refs).await.unwrap_or_else(|e| {
        panic!(
            "provider contract `track (unknown shipment)`: {kind}: one unknown shipment ({}) must not fail the whole track call, got {e}",
            ghost.order_id
        )
    });
    for known in [&first, &second] {
        assert!(
            updates
                .iter()
                .any(|u| u.shipment() == known && !u.statuses().is_empty()),
            "provider contract `track (unknown shipment)`: {kind}: {} must still get its statuses when tracked with an unknown shipment",
            known.order_id
        );
    }
    let about_ghost: Vec<_> = updates.iter().filter(|u| *u.shipment() == ghost).collect();
    assert!(
        about_ghost.iter().all(|u| u.statuses().is_empty()),
        "provider contract `track (unknown shipment)`: {kind}: an unknown shipment must be NotFound, Failed or left out, got {about_ghost:?}"
    );
}

/// `track` answers a slice longer than `max_track_batch` (splitting it) and, where the driver
/// can see the requests, never sends more than `max_track_batch` at once.
pub async fn track_honours_batch_limit(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
) {
    let kind = kind(provider);
    let max = provider.capabilities().max_track_batch;
    // One more than a batch, but bounded so a provider declaring a huge batch stays cheap.
    let count = max.min(60) + 1;
    let mut refs = Vec::with_capacity(count);
    for n in 0..count {
        refs.push(create(provider, driver, &driver.order(100 + n)).await);
    }
    let updates = provider.track(&refs).await.unwrap_or_else(|e| {
        panic!("provider contract `track (long slices)`: {kind}: track of {count} failed: {e}")
    });
    for r in &refs {
        assert!(
            updates
                .iter()
                .any(|u| u.shipment() == r && !u.statuses().is_empty()),
            "provider contract `track (long slices)`: {kind}: no statuses for {} in a track of {count}",
            r.order_id
        );
    }
    if let Some(largest) = driver.largest_track_batch() {
        assert!(
            largest <= max,
            "provider contract `track (batch size)`: {kind}: sent {largest} shipments in one request, max_track_batch is {max}"
        );
    }
}

/// Every operation the capabilities claim answers something other than `Unsupported`: stock
/// (for no skus: everything) and the directory (for the driver's query).
pub async fn claimed_operations_answer(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
) {
    let kind = kind(provider);
    let caps: Capabilities = provider.capabilities();
    if caps.stock {
        let result = provider.stock(&[]).await;
        assert!(
            !matches!(result, Err(Error::Unsupported { .. })),
            "provider contract `capabilities (claimed operations answer)`: {kind}: the capabilities claim stock, but stock answered Unsupported"
        );
    }
    if caps.address_directory {
        let query = directory_query(&kind, driver).await;
        let result = provider.search_addresses(&query).await;
        assert!(
            !matches!(result, Err(Error::Unsupported { .. })),
            "provider contract `capabilities (claimed operations answer)`: {kind}: the capabilities claim an address directory, but search_addresses answered Unsupported"
        );
    }
}

/// Every operation the capabilities deny returns `Unsupported` naming the operation.
pub async fn unsupported_operations_say_so(provider: &dyn FulfillmentProvider) {
    let kind = kind(provider);
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
            "provider contract `capabilities (denied operations are Unsupported)`: {kind}: {operation} is not in the capabilities and must be Unsupported, got {result:?}"
        );
    }
}

/// `search_addresses` with `limit: 0` answers everything the query matches: at least what
/// a [`LARGE_DIRECTORY_LIMIT`] answers (an adapter pages through its provider rather than
/// returning one default page), and a `limit` of 1 answers at most one entry.
pub async fn directory_limit_zero_is_everything(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
) {
    const CONTRACT: &str = "search_addresses (limit 0 is everything)";
    let kind = kind(provider);
    let query = directory_query(&kind, driver).await;
    let search = |limit: usize| {
        let query = query.clone().with_limit(limit);
        let kind = kind.clone();
        async move {
            provider.search_addresses(&query).await.unwrap_or_else(|e| {
                panic!("provider contract `{CONTRACT}`: {kind}: search_addresses (limit {limit}) failed: {e}")
            })
        }
    };
    let everything = search(0).await;
    let large = search(LARGE_DIRECTORY_LIMIT).await;
    assert!(
        !large.is_empty(),
        "provider contract `{CONTRACT}`: {kind}: the driver's directory_query matched nothing, so the check proves nothing (seed more entries than one default page)"
    );
    let ids = |found: &[AddressOption]| found.iter().map(|o| o.id.clone()).collect::<BTreeSet<_>>();
    let (all_ids, large_ids) = (ids(&everything), ids(&large));
    assert!(
        all_ids.is_superset(&large_ids),
        "provider contract `{CONTRACT}`: {kind}: limit 0 must mean everything, but it answered {} entries and limit {LARGE_DIRECTORY_LIMIT} answered {} (missing {:?})",
        everything.len(),
        large.len(),
        large_ids.difference(&all_ids).take(5).collect::<Vec<_>>()
    );
    let one = search(1).await;
    assert!(
        one.len() <= 1,
        "provider contract `{CONTRACT}`: {kind}: limit 1 answered {} entries",
        one.len()
    );
}

async fn directory_query(kind: &str, driver: &dyn ConformanceDriver) -> AddressQuery {
    driver.directory_query().await.unwrap_or_else(|e| {
        panic!(
            "provider contract `search_addresses (limit 0 is everything)`: {kind}: the capabilities claim an address directory; implement ConformanceDriver::directory_query ({e})"
        )
    })
}

fn edited(order: &Order) -> Order {
    let mut edited = order.clone();
    edited.customer.name = format!("{} Jr", edited.customer.name);
    edited
}

async fn lock(driver: &dyn ConformanceDriver, shipment: &ShipmentRef) {
    driver.lock(shipment).await.unwrap_or_else(|e| {
        panic!(
            "the conformance driver could not lock {}: {e}",
            shipment.order_id
        )
    });
}

async fn assert_update_too_late(
    provider: &dyn FulfillmentProvider,
    driver: &dyn ConformanceDriver,
    shipment: &ShipmentRef,
    order: &Order,
    contract: &str,
) {
    let kind = kind(provider);
    let outcome = provider
        .update_order(shipment, &edited(order), &driver.waybill())
        .await;
    assert!(
        matches!(
            outcome,
            Ok(UpdateOutcome::TooLate { .. }) | Err(Error::TooLate { .. })
        ),
        "provider contract `{contract}`: {kind}: update after the lock stage must be TooLate, got {outcome:?}"
    );
}

async fn assert_cancel_too_late(
    provider: &dyn FulfillmentProvider,
    shipment: &ShipmentRef,
    contract: &str,
) {
    let kind = kind(provider);
    let outcome = provider.cancel_order(shipment).await;
    assert!(
        matches!(
            outcome,
            Ok(CancelOutcome::TooLate { .. }) | Err(Error::TooLate { .. })
        ),
        "provider contract `{contract}`: {kind}: cancel after the lock stage must be TooLate, got {outcome:?}"
    );
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
