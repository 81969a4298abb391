//! The mock's record of the calls it received: what was asked, with what, and how it ended.

use crate::error::Operation;
use crate::model::{AddressQuery, Order, OrderId, ShipmentRef, Sku, Waybill};

/// One call the mock received. Recorded when the call arrives (before its latency), so a
/// call the caller gave up on (a timeout, a dropped task) is in the record too, marked
/// [`Call::cancelled`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Call {
    /// Which operation.
    pub operation: Operation,
    /// The orders concerned (empty for stock and address searches).
    pub order_ids: Vec<OrderId>,
    /// How many items the call carried (shipments for `track`, skus for `stock`, else 1).
    pub batch: usize,
    /// Whether the call returned an error (an injected [`Fault`](super::Fault) included,
    /// also one that applied the change first).
    pub failed: bool,
    /// Whether the caller dropped the call before it answered (e.g. a timeout during the
    /// mock's latency). A cancelled call changed nothing unless it had passed its latency.
    pub cancelled: bool,
    /// What the call carried.
    pub payload: CallPayload,
    /// Position in the mock's life, to find the call again when it ends.
    pub(super) seq: u64,
}

/// The arguments of a [`Call`], as the mock received them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CallPayload {
    /// `create_order`.
    Create {
        /// The order sent.
        order: Box<Order>,
        /// The waybill sent.
        waybill: Waybill,
    },
    /// `update_order`.
    Update {
        /// Which shipment.
        shipment: ShipmentRef,
        /// The order sent.
        order: Box<Order>,
        /// The waybill sent.
        waybill: Waybill,
    },
    /// `cancel_order`.
    Cancel {
        /// Which shipment.
        shipment: ShipmentRef,
    },
    /// `track`.
    Track {
        /// The shipments asked about, in the caller's order.
        shipments: Vec<ShipmentRef>,
    },
    /// `stock`.
    Stock {
        /// The skus asked about (empty: all).
        skus: Vec<Sku>,
    },
    /// `search_addresses`.
    SearchAddresses {
        /// The query.
        query: AddressQuery,
    },
}

impl CallPayload {
    /// The operation this payload belongs to.
    pub fn operation(&self) -> Operation {
        match self {
            CallPayload::Create { .. } => Operation::Create,
            CallPayload::Update { .. } => Operation::Update,
            CallPayload::Cancel { .. } => Operation::Cancel,
            CallPayload::Track { .. } => Operation::Track,
            CallPayload::Stock { .. } => Operation::Stock,
            CallPayload::SearchAddresses { .. } => Operation::SearchAddresses,
        }
    }

    /// The orders concerned, in the caller's order.
    pub(super) fn order_ids(&self) -> Vec<OrderId> {
        match self {
            CallPayload::Create { order, .. } => vec![order.id.clone()],
            CallPayload::Update { shipment, .. } | CallPayload::Cancel { shipment } => {
                vec![shipment.order_id.clone()]
            }
            CallPayload::Track { shipments } => {
                shipments.iter().map(|s| s.order_id.clone()).collect()
            }
            CallPayload::Stock { .. } | CallPayload::SearchAddresses { .. } => Vec::new(),
        }
    }

    /// How many items the call carries.
    pub(super) fn batch(&self) -> usize {
        match self {
            CallPayload::Track { shipments } => shipments.len(),
            CallPayload::Stock { skus } => skus.len(),
            _ => 1,
        }
    }

    /// The order sent, for creates and updates.
    pub fn order(&self) -> Option<&Order> {
        match self {
            CallPayload::Create { order, .. } | CallPayload::Update { order, .. } => Some(order),
            _ => None,
        }
    }
}
