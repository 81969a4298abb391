//! Events: what the orchestrator tells the host happened, as plain data. The sinks they go
//! to are in [`orchestrator`](crate::orchestrator); the store keeps undelivered ones (its
//! outbox) until a sink has taken them.
//!
//! Delivery is at least once: an event about an order is written by the store in the same
//! operation as the change that caused it, handed to the host's `EventSink` after the write,
//! and marked delivered once the sink has taken it. An event a crash left in the outbox is
//! delivered by `Orchestrator::deliver_pending_events` (also run by `reconcile`), so the sink
//! may see an event twice: each carries a stable [`EventId`] to deduplicate by. Stock events
//! ([`EventKind::StockChanged`]) describe no stored change and go to the sink directly.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::exception::{KeyField, OrderException};
use super::ids::{InstanceId, OrderId, Sku};
use super::shipment::ShipmentRef;
use super::status::DeliveryStatus;
use super::stock::Level;
use crate::error::Failure;

/// Whether fulfillkit (and the host's triggers) may act on an order automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Automation {
    /// Normal operation.
    #[default]
    Active,
    /// An open exception: no automatic export or update, events flagged, until resolved.
    Suspended,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "events are few per order; boxing would make every host match clumsier"
)]
pub enum EventKind {
    /// The order was created at the provider.
    Exported {
        /// Its reference there.
        shipment: ShipmentRef,
        /// The tracking number, if any.
        tracking_number: Option<String>,
    },
    /// The export failed; the record keeps the order for a retry, or (`retryable: false`)
    /// for an operator.
    ExportFailed {
        /// Whether `retry_failed_exports` will try again.
        retryable: bool,
        /// What went wrong, with the provider's status, endpoint and message.
        failure: Failure,
    },
    /// An edit after export reached the provider.
    OrderUpdated {
        /// The key fields that changed.
        changed_fields: Vec<KeyField>,
    },
    /// An edit came too late: the order needs an operator.
    ExceptionRaised {
        /// The exception.
        exception: OrderException,
    },
    /// An operator resolved an exception; automation resumes.
    ExceptionResolved {
        /// The exception, with its resolution.
        exception: OrderException,
    },
    /// The current delivery status really changed (code, text or pickup point). The statuses
    /// are shared with the shipment record, not copied for the event.
    DeliveryStatusChanged {
        /// The previous status, if any.
        from: Option<Arc<DeliveryStatus>>,
        /// The new current status.
        to: Arc<DeliveryStatus>,
    },
    /// Tracking gave up on the shipment without a final status (maximum tracking age).
    TrackingStopped {
        /// Why.
        reason: String,
    },
    /// A sku's stock level or quantity changed.
    StockChanged {
        /// The product.
        sku: Sku,
        /// Previous available quantity.
        from: Option<i64>,
        /// New available quantity.
        to: i64,
        /// New level under the instance's thresholds.
        level: Level,
    },
}

impl EventKind {
    /// The kind's snake_case name, as serialized in `type` (`delivery_status_changed`).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Exported { .. } => "exported",
            EventKind::ExportFailed { .. } => "export_failed",
            EventKind::OrderUpdated { .. } => "order_updated",
            EventKind::ExceptionRaised { .. } => "exception_raised",
            EventKind::ExceptionResolved { .. } => "exception_resolved",
            EventKind::DeliveryStatusChanged { .. } => "delivery_status_changed",
            EventKind::TrackingStopped { .. } => "tracking_stopped",
            EventKind::StockChanged { .. } => "stock_changed",
        }
    }
}

/// The stable id of one [`Event`]: random, written with the event, the same on every delivery
/// of it, so a host deduplicates by it. Serialized as its text (`evt_` and 32 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Arc<str>);

impl EventId {
    /// A new random id.
    pub fn random() -> Self {
        Self(format!("evt_{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)).into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for EventId {
    /// An id as a store read it back.
    fn from(value: &str) -> Self {
        Self(value.into())
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// Its stable id: the same on every delivery of this event.
    pub id: EventId,
    /// What happened.
    pub kind: EventKind,
    /// The order concerned (`None` for stock events).
    pub order_id: Option<OrderId>,
    /// The instance concerned.
    pub instance: InstanceId,
    /// When the orchestrator saw it.
    pub occurred_at: DateTime<Utc>,
    /// Whether automation is active for the order; `Suspended` events are for display only.
    pub automation: Automation,
}

impl Event {
    /// An event about an order, with a new random id.
    pub fn for_order(
        kind: EventKind,
        order_id: OrderId,
        instance: InstanceId,
        occurred_at: DateTime<Utc>,
        automation: Automation,
    ) -> Self {
        Self {
            id: EventId::random(),
            kind,
            order_id: Some(order_id),
            instance,
            occurred_at,
            automation,
        }
    }
}
