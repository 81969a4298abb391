//! Order exceptions: an edit after export that the provider could no longer accept, kept for
//! manual handling.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{InstanceId, OrderId};

/// A key field of an order whose change must reach the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyField {
    /// The recipient's name.
    Name,
    /// The recipient's phone.
    Phone,
    /// The shipping address.
    Address,
    /// The cart (sku, quantity and price of each line).
    Cart,
}

impl KeyField {
    /// All key fields.
    pub const ALL: [KeyField; 4] = [
        KeyField::Name,
        KeyField::Phone,
        KeyField::Address,
        KeyField::Cart,
    ];
}

/// What an operator did about an exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionAction {
    /// Keep what the provider has; the edit is dropped.
    AcceptProviderVersion,
    /// Cancel at the provider when still possible and export the current order anew.
    Reexport,
    /// The operator cancelled the order at the provider.
    CancelledAtProvider,
    /// Handled outside fulfillkit.
    Manual,
}

/// How an exception was resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// What was done.
    pub action: ResolutionAction,
    /// Who resolved it (the host's user id or name).
    pub by: String,
    /// Free-form note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When it was resolved.
    pub at: DateTime<Utc>,
}

/// An edit after export that the provider refused because it was too late.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderException {
    /// The order.
    pub order_id: OrderId,
    /// The instance the order was exported to.
    pub instance: InstanceId,
    /// Which key fields the refused edit changed.
    pub changed_fields: BTreeSet<KeyField>,
    /// The provider's state that made the update impossible, in its words.
    pub provider_state: String,
    /// When the refusal was seen.
    pub detected_at: DateTime<Utc>,
    /// How it was resolved; `None` while open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
}

impl OrderException {
    /// Whether the exception still waits for an operator.
    pub fn is_open(&self) -> bool {
        self.resolution.is_none()
    }
}
