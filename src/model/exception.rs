//! Order exceptions: an edit after export that the provider could no longer accept, kept for
//! manual handling.
//!
//! An exception holds both versions of the order (what the provider has and what the host
//! asked for), why the change could not be made, the delivery status at that moment and every
//! later edit seen while it was open, so an operator can decide without looking anywhere
//! else. What an operator decided is its [`Resolution`]. Raising and resolving exceptions is
//! the orchestrator's job; this module only holds the data.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{InstanceId, OrderId};
use super::order::Order;
use super::shipment::ShipmentRef;
use super::status::DeliveryStatus;

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

/// Why an edit after export became an exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExceptionReason {
    /// The provider can no longer change the order (packed, handed to the carrier, ...);
    /// [`OrderException::provider_state`] says which state it is in.
    TooLate,
    /// The provider cannot change orders at all (its capabilities lack `update`).
    Unsupported,
    /// The provider failed the update with an error retrying cannot fix, or kept failing it
    /// past the retry limits; [`OrderException::provider_state`] holds the last failure.
    ProviderFailed,
}

impl ExceptionReason {
    /// The reason's snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionReason::TooLate => "too_late",
            ExceptionReason::Unsupported => "unsupported",
            ExceptionReason::ProviderFailed => "provider_failed",
        }
    }
}

/// What an operator did about an exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResolutionAction {
    /// Keep what the provider has; the edit is not sent.
    AcceptProviderVersion,
    /// Cancel at the provider when still possible and export the current order anew.
    Reexport,
    /// The operator cancelled the order at the provider; the shipment is marked cancelled.
    CancelledAtProvider,
    /// Handled outside fulfillkit.
    Manual,
}

/// An operator's decision about an exception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// What was done.
    pub action: ResolutionAction,
    /// Who resolved it (the host's user id or name).
    pub by: String,
    /// Free-form note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ResolutionAction {
    /// The action's snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            ResolutionAction::AcceptProviderVersion => "accept_provider_version",
            ResolutionAction::Reexport => "reexport",
            ResolutionAction::CancelledAtProvider => "cancelled_at_provider",
            ResolutionAction::Manual => "manual",
        }
    }
}

impl Resolution {
    /// A resolution by `by`, without a note.
    pub fn new(action: ResolutionAction, by: impl Into<String>) -> Self {
        Self {
            action,
            by: by.into(),
            note: None,
        }
    }

    /// Sets the note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// An edit of the order seen while its exception was open: recorded, not sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuspendedEdit {
    /// The order as edited.
    pub order: Order,
    /// The key fields that differ from the exported version.
    pub changed_fields: BTreeSet<KeyField>,
    /// When the edit was seen.
    pub at: DateTime<Utc>,
}

/// An edit after export that the provider could not accept, waiting for (or handled by) an
/// operator. While it is open, automation is suspended for the order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderException {
    /// The order.
    pub order_id: OrderId,
    /// The exception's number among the order's exceptions, from 1: an order keeps every
    /// exception it ever had, the latest with the highest number.
    #[serde(default)]
    pub seq: u32,
    /// The instance the order was exported to.
    pub instance: InstanceId,
    /// The provider's shipment the edit was meant for.
    pub shipment: ShipmentRef,
    /// Why the edit could not be made.
    pub reason: ExceptionReason,
    /// Which key fields the refused edit changed.
    pub changed_fields: BTreeSet<KeyField>,
    /// The provider's state that made the update impossible, in its words (for
    /// [`ExceptionReason::TooLate`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_state: Option<String>,
    /// The shipment's delivery status when the refusal was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_status: Option<DeliveryStatus>,
    /// The order as the provider has it (as last exported or updated).
    pub exported: Order,
    /// The order as the host asked for it in the refused edit.
    pub requested: Order,
    /// Edits seen while the exception was open, oldest first (at most the last 100).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub later_edits: Vec<SuspendedEdit>,
    /// When the refusal was seen.
    pub detected_at: DateTime<Utc>,
    /// How it was resolved; `None` while open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// When it was resolved; `None` while open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
}

impl OrderException {
    /// Whether the exception still waits for an operator.
    pub fn is_open(&self) -> bool {
        self.resolution.is_none()
    }

    /// The host's most recent version of the order: the last edit seen while the exception
    /// was open, or the refused edit.
    pub fn latest_requested(&self) -> &Order {
        self.later_edits
            .last()
            .map_or(&self.requested, |edit| &edit.order)
    }
}
