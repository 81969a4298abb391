//! Re-export numbering: the order number a provider sees after an order is exported anew.
//!
//! A provider's create is idempotent on the order number, so exporting an order anew
//! ([`ResolutionAction::Reexport`](crate::model::ResolutionAction::Reexport)) needs a new one.
//! [`ShipmentRecord::export_seq`](super::ShipmentRecord::export_seq) counts re-exports and the
//! provider sees [`provider_order_id`]: the host's id while it is 0, `"{id}~R{seq}"` after.
//! Host ids may not contain [`REEXPORT_MARKER`] (`~`; the orchestrator refuses such an order
//! with the rest of its validation, [`host_id_problem`]), so a re-export's number can never be
//! another order's id: a host order `SO-8-R1` and the first
//! re-export of `SO-8` (`SO-8~R1`) are two orders at the provider.
//!
//! This file writes the numbers and reads them back; nothing else does either.

use std::borrow::Cow;

use crate::error::FieldError;
use crate::model::{Order, OrderId, REEXPORT_MARKER};

/// The problem with a host order id that enters the re-export namespace, if it does.
pub(crate) fn host_id_problem(order_id: &OrderId) -> Option<FieldError> {
    order_id.as_str().contains(REEXPORT_MARKER).then(|| {
        FieldError::new(
            "id",
            "must not contain '~' (fulfillkit numbers re-exported orders with it)",
        )
    })
}

/// The order number the provider knows after `export_seq` re-exports: `order_id` itself at 0,
/// `"{order_id}~R{export_seq}"` after.
///
/// The provider's [`ShipmentRef::order_id`](crate::model::ShipmentRef) is this number, while
/// records, exceptions and events keep the host's id.
///
/// ```
/// use fulfillkit::model::OrderId;
/// use fulfillkit::orchestrator::provider_order_id;
///
/// assert_eq!(provider_order_id(&OrderId::new("SO-1"), 0).as_str(), "SO-1");
/// assert_eq!(provider_order_id(&OrderId::new("SO-1"), 2).as_str(), "SO-1~R2");
/// ```
pub fn provider_order_id(order_id: &OrderId, export_seq: u32) -> OrderId {
    if export_seq == 0 {
        order_id.clone()
    } else {
        OrderId::new(format!("{order_id}{REEXPORT_MARKER}R{export_seq}"))
    }
}

/// The host's order id and re-export count behind a provider's order number, when it is a
/// re-export's ([`provider_order_id`] with a count of at least 1); `None` for a host id.
pub(crate) fn parse_provider_order_id(number: &OrderId) -> Option<(OrderId, u32)> {
    let (host, seq) = number.as_str().rsplit_once(REEXPORT_MARKER)?;
    let digits = seq.strip_prefix('R')?;
    if host.is_empty() || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seq: u32 = digits.parse().ok().filter(|n| *n > 0)?;
    // Only the exact spelling `provider_order_id` writes (no leading zeros).
    (provider_order_id(&OrderId::new(host), seq) == *number).then(|| (OrderId::new(host), seq))
}

/// `order` as the provider knows it: with [`provider_order_id`] as its id.
pub(crate) fn provider_order(order: &Order, export_seq: u32) -> Cow<'_, Order> {
    if export_seq == 0 {
        Cow::Borrowed(order)
    } else {
        let mut renumbered = order.clone();
        renumbered.id = provider_order_id(&order.id, export_seq);
        Cow::Owned(renumbered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_back_to_the_host_id() {
        let id = OrderId::new("SO-8");
        for seq in [1, 2, 10, u32::MAX] {
            let number = provider_order_id(&id, seq);
            assert_eq!(parse_provider_order_id(&number), Some((id.clone(), seq)));
        }
        assert_eq!(parse_provider_order_id(&id), None);
        for other in [
            "SO-8-R1", "SO-8~R", "SO-8~R0", "SO-8~R01", "~R1", "SO-8~Rx", "SO-8~1",
        ] {
            assert_eq!(
                parse_provider_order_id(&OrderId::new(other)),
                None,
                "{other}"
            );
        }
    }
}
