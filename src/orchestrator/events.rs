//! Events the orchestrator emits to the host, and the [`EventSink`] they go to.
//!
//! The store is the source of truth; events tell the host's trigger engine that something
//! changed. Every event says whether automation is active for its order, so host triggers and
//! validators can skip orders with an open exception.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::store::Automation;
use crate::error::Failure;
use crate::model::{
    DeliveryStatus, InstanceId, KeyField, Level, OrderException, OrderId, ShipmentRef, Sku,
};

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

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
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
    /// An event about an order.
    pub fn for_order(
        kind: EventKind,
        order_id: OrderId,
        instance: InstanceId,
        occurred_at: DateTime<Utc>,
        automation: Automation,
    ) -> Self {
        Self {
            kind,
            order_id: Some(order_id),
            instance,
            occurred_at,
            automation,
        }
    }
}

/// Where events go. Implement it to feed the host's trigger engine.
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Delivers one event. Called after the change is stored, in the order changes happen
    /// for one order.
    async fn emit(&self, event: Event);
}

/// A sink backed by a bounded tokio channel: `emit` waits while the channel is full, so a slow
/// consumer slows the orchestrator down instead of losing events.
#[derive(Debug, Clone)]
pub struct ChannelSink {
    sender: mpsc::Sender<Event>,
}

impl ChannelSink {
    /// A sink and the receiver the host reads events from.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<Event>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        (Self { sender }, receiver)
    }
}

#[async_trait]
impl EventSink for ChannelSink {
    async fn emit(&self, event: Event) {
        if self.sender.send(event).await.is_err() {
            tracing::warn!("event receiver dropped; event discarded (the store keeps the state)");
        }
    }
}

/// A sink that keeps every event in memory, for tests.
#[derive(Debug, Default)]
pub struct CollectingSink {
    events: Mutex<Vec<Event>>,
}

impl CollectingSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.lock().clone()
    }

    /// Takes every event so far, leaving none.
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Event>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl EventSink for CollectingSink {
    async fn emit(&self, event: Event) {
        self.lock().push(event);
    }
}

/// A sink that drops every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

#[async_trait]
impl EventSink for NullSink {
    async fn emit(&self, _event: Event) {}
}
