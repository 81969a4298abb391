//! Failures a test plans for the mock: which operation, which order, before or after the
//! change is applied, how many times.

use crate::error::{Error, Operation};
use crate::model::OrderId;

/// A failure the mock will answer, planned with [`MockProvider::inject`](super::MockProvider::inject).
///
/// By default it fails the next call of its operation once, before anything is applied.
/// [`Fault::for_order`] limits it to calls about one order (for `track`, that shipment alone
/// is reported as [`TrackingUpdate::Failed`](crate::model::TrackingUpdate::Failed), the
/// others are answered); [`Fault::after_applying`] makes the mock apply the call and then
/// lose the answer, as a timeout after the provider committed does.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use fulfillkit::error::Operation;
/// use fulfillkit::provider::FulfillmentProvider;
/// use fulfillkit::provider::mock::{Fault, MockProvider};
/// use fulfillkit::model::Waybill;
/// use fulfillkit::Error;
///
/// let mock = MockProvider::new();
/// let timeout = Error::Timeout { what: "create".into() };
/// mock.inject(Fault::new(Operation::Create, timeout).after_applying());
/// let order = fulfillkit::testkit::sample_order("SO-1");
/// assert!(mock.create_order(&order, &Waybill::new()).await.is_err());
/// // The provider has the order although the caller heard a timeout.
/// assert_eq!(mock.created_count(), 1);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Fault {
    pub(super) operation: Operation,
    pub(super) error: Error,
    pub(super) order: Option<OrderId>,
    pub(super) after_applying: bool,
    pub(super) times: usize,
}

impl Fault {
    /// Fails the next call of `operation` with `error`, once, before applying it.
    pub fn new(operation: Operation, error: Error) -> Self {
        Self {
            operation,
            error,
            order: None,
            after_applying: false,
            times: 1,
        }
    }

    /// Only calls about `order_id` (creates, updates and cancels of it; its shipment in a
    /// `track`).
    pub fn for_order(mut self, order_id: impl Into<OrderId>) -> Self {
        self.order = Some(order_id.into());
        self
    }

    /// Applies the call first, then answers the error: the change is made at the provider
    /// but the caller does not hear of it.
    pub fn after_applying(mut self) -> Self {
        self.after_applying = true;
        self
    }

    /// Fails this many matching calls (0: none).
    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }

    /// Whether this fault fails a call of `operation` about `order_ids` (whole-call faults
    /// only: a per-order fault of a `track` fails a shipment, not the call).
    pub(super) fn fails_call(&self, operation: Operation, order_ids: &[OrderId]) -> bool {
        self.times > 0
            && self.operation == operation
            && match &self.order {
                None => true,
                Some(_) if operation == Operation::Track => false,
                Some(order) => order_ids.contains(order),
            }
    }

    /// Whether this fault fails the shipment of `order_id` in a `track`.
    pub(super) fn fails_shipment(&self, order_id: &OrderId) -> bool {
        self.times > 0
            && self.operation == Operation::Track
            && self.order.as_ref() == Some(order_id)
    }
}
