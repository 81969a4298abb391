//! A shipment: an order as it exists at a provider, and what tracking reports about it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::OrderId;
use super::status::DeliveryStatus;
use crate::error::Failure;

/// How to address an exported order at its provider.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShipmentRef {
    /// The host's order id.
    pub order_id: OrderId,
    /// The provider's own reference (Wapi's WH number, SphereWMS's order id).
    pub provider_ref: String,
}

impl ShipmentRef {
    /// A reference.
    pub fn new(order_id: impl Into<OrderId>, provider_ref: impl Into<String>) -> Self {
        Self {
            order_id: order_id.into(),
            provider_ref: provider_ref.into(),
        }
    }
}

/// An order created at a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    /// How to address it.
    pub reference: ShipmentRef,
    /// The tracking number to show the customer, if the provider gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    /// The status the provider reported at creation, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DeliveryStatus>,
}

/// What a provider reports for one shipment in a `track` call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TrackingUpdate {
    /// The shipment's statuses as the provider reports them (history, oldest first where the
    /// provider gives one; at least the current status).
    Statuses {
        /// Which shipment.
        shipment: ShipmentRef,
        /// Its statuses.
        statuses: Vec<DeliveryStatus>,
    },
    /// The provider does not know the shipment (removed, or never registered).
    NotFound {
        /// Which shipment.
        shipment: ShipmentRef,
        /// When the provider said so.
        at: DateTime<Utc>,
    },
    /// This shipment's answer could not be read or fetched (the others of the call were);
    /// it is polled again next time.
    Failed {
        /// Which shipment.
        shipment: ShipmentRef,
        /// Why.
        failure: Failure,
    },
}

impl TrackingUpdate {
    /// The shipment this update is about.
    pub fn shipment(&self) -> &ShipmentRef {
        match self {
            TrackingUpdate::Statuses { shipment, .. }
            | TrackingUpdate::NotFound { shipment, .. }
            | TrackingUpdate::Failed { shipment, .. } => shipment,
        }
    }

    /// The statuses reported (empty for `NotFound` and `Failed`).
    pub fn statuses(&self) -> &[DeliveryStatus] {
        match self {
            TrackingUpdate::Statuses { statuses, .. } => statuses,
            TrackingUpdate::NotFound { .. } | TrackingUpdate::Failed { .. } => &[],
        }
    }

    /// A [`TrackingUpdate::Failed`] for `shipment` with `error`.
    pub fn failed(shipment: ShipmentRef, error: &crate::error::Error) -> Self {
        TrackingUpdate::Failed {
            shipment,
            failure: error.to_failure(),
        }
    }
}
