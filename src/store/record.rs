//! The shipment record: everything fulfillkit keeps about one order's shipment, with its
//! export state and the fingerprints that detect edits after export.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Failure;
use crate::model::{
    Automation, DeliveryStatus, InstanceId, KeyField, Order, OrderId, ShipmentRef, Waybill,
};

/// Where the export of an order stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExportState {
    /// The export was decided and the provider is being called (an intent). A record left in
    /// this state by a crashed process is completed by reconciliation.
    Exporting {
        /// When the intent was written.
        since: DateTime<Utc>,
        /// The orchestrator that wrote it ([`Orchestrator::owner`](crate::orchestrator::Orchestrator::owner)):
        /// its owner knows at once when the export was abandoned (the call's future dropped,
        /// the record's save failed), others wait for the stale-intent age.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
    },
    /// The provider has the order.
    Exported {
        /// How to address it there.
        shipment: ShipmentRef,
        /// The tracking number to show, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tracking_number: Option<String>,
        /// When the provider confirmed it.
        at: DateTime<Utc>,
    },
    /// The provider refused or could not be reached.
    Failed {
        /// Whether `retry_failed_exports` tries again: the error is retryable
        /// ([`Error::is_retryable`](crate::Error::is_retryable)) and the retry limits are not reached. `false` is work for
        /// an operator.
        retryable: bool,
        /// What went wrong the last time, with the provider's status, endpoint and message.
        failure: Failure,
        /// Attempts so far.
        attempts: u32,
        /// When the first of these attempts failed (the retry limits count from here).
        since: DateTime<Utc>,
    },
}

/// A stable fingerprint of one key field (FNV-1a 64 over a canonical text), kept to detect
/// edits after export. Stable across processes and releases, so it can be stored; it is
/// serialized as 16 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(u64);

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{:016x}", self.0))
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let hex = text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit());
        match u64::from_str_radix(&text, 16) {
            Ok(value) if hex => Ok(Fingerprint(value)),
            _ => Err(serde::de::Error::invalid_value(
                serde::de::Unexpected::Str(&text),
                &"16 hex digits",
            )),
        }
    }
}

impl Fingerprint {
    fn of(parts: &[&str]) -> Self {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut hash = OFFSET;
        for part in parts {
            // A separator byte that cannot occur in text keeps ("ab","c") apart from ("a","bc").
            for byte in part.bytes().chain(std::iter::once(0xff)) {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(PRIME);
            }
        }
        Fingerprint(hash)
    }
}

/// Fingerprints of the key fields of an order, each separately.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprints {
    /// Customer name.
    pub name: Fingerprint,
    /// Customer phone (normalized).
    pub phone: Fingerprint,
    /// Shipping address.
    pub address: Fingerprint,
    /// Cart: sku, quantity and price of each line, independent of line order.
    pub cart: Fingerprint,
}

impl Fingerprints {
    /// The fingerprints of `order`. Tags, custom fields and other data do not count.
    pub fn of(order: &Order) -> Self {
        let a = &order.address;
        let mut lines: Vec<String> = order
            .lines
            .iter()
            .map(|l| {
                format!(
                    "{}\u{1f}{}\u{1f}{}",
                    l.sku,
                    l.quantity,
                    l.unit_price.normalize()
                )
            })
            .collect();
        lines.sort_unstable();
        let line_refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut address = vec![
            a.country.as_str(),
            a.region.as_deref().unwrap_or(""),
            a.city.as_str(),
            a.postcode.as_str(),
            a.provider_address_id.as_deref().unwrap_or(""),
            a.pickup_point_id.as_deref().unwrap_or(""),
        ];
        address.extend(a.lines.iter().map(String::as_str));
        Self {
            name: Fingerprint::of(&[order.customer.name.trim()]),
            phone: Fingerprint::of(&[&crate::model::normalize_phone(&order.customer.phone)]),
            address: Fingerprint::of(&address),
            cart: Fingerprint::of(&line_refs),
        }
    }

    /// The key fields that differ between `self` and `other`.
    pub fn changed(&self, other: &Fingerprints) -> Vec<KeyField> {
        let mut changed = Vec::new();
        if self.name != other.name {
            changed.push(KeyField::Name);
        }
        if self.phone != other.phone {
            changed.push(KeyField::Phone);
        }
        if self.address != other.address {
            changed.push(KeyField::Address);
        }
        if self.cart != other.cart {
            changed.push(KeyField::Cart);
        }
        changed
    }
}

/// An edit after export that has not reached the provider yet (a transient failure), kept so
/// that `retry_pending_updates` sends it later: nothing is lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingUpdate {
    /// The order as edited.
    pub order: Order,
    /// The waybill to send with it.
    pub waybill: Waybill,
    /// The key fields that changed against the exported version.
    pub changed_fields: Vec<KeyField>,
    /// When the edit was first seen.
    pub since: DateTime<Utc>,
    /// Attempts so far.
    pub attempts: u32,
    /// What went wrong the last time.
    pub last_failure: Failure,
}

/// Everything fulfillkit keeps about one order's shipment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShipmentRecord {
    /// The order.
    pub order_id: OrderId,
    /// The instance it is (being) exported to.
    pub instance: InstanceId,
    /// The order as last sent to (or meant for) the provider. Shared: a record is copied on
    /// every read and write, the order rarely changes.
    pub order: Arc<Order>,
    /// The waybill as last sent (shared, like the order).
    pub waybill: Arc<Waybill>,
    /// Export state.
    pub export: ExportState,
    /// Fingerprints of the key fields as the provider has them.
    pub fingerprints: Fingerprints,
    /// The current delivery status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_status: Option<Arc<DeliveryStatus>>,
    /// Every status seen, merged (shared: replaced whole when a merge changes it).
    #[serde(default)]
    pub history: Arc<[DeliveryStatus]>,
    /// The current status as last reported in an event (change detection compares with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reported: Option<Arc<DeliveryStatus>>,
    /// When tracking should poll this shipment next; `None`: as soon as possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_poll_at: Option<DateTime<Utc>>,
    /// Tracking gave up on this shipment (maximum tracking age reached).
    #[serde(default)]
    pub tracking_stopped: bool,
    /// An edit waiting to be sent to the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_update: Option<Box<PendingUpdate>>,
    /// How many times the order was exported anew (exception resolution `Reexport`); the
    /// provider-facing order number carries it so the provider sees a new order.
    #[serde(default)]
    pub export_seq: u32,
    /// Whether automation may act on the order.
    pub automation: Automation,
    /// Optimistic-concurrency version, bumped by every successful [`Store::update`](super::Store::update).
    pub version: u64,
    /// When the record last changed.
    pub updated_at: DateTime<Utc>,
}

impl ShipmentRecord {
    /// A new record of `order` at `instance`, in `export` state, with `waybill`, written at
    /// `at`: no statuses yet, automation active, version 0.
    pub fn new(
        order: Order,
        instance: impl Into<InstanceId>,
        waybill: Waybill,
        export: ExportState,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            order_id: order.id.clone(),
            instance: instance.into(),
            fingerprints: Fingerprints::of(&order),
            order: Arc::new(order),
            waybill: Arc::new(waybill),
            export,
            current_status: None,
            history: Arc::default(),
            last_reported: None,
            next_poll_at: None,
            tracking_stopped: false,
            pending_update: None,
            export_seq: 0,
            automation: Automation::Active,
            version: 0,
            updated_at: at,
        }
    }

    /// Appends `status` to the history (a new shared history; the old one is left to other
    /// readers).
    pub fn push_status(&mut self, status: DeliveryStatus) {
        let mut history = Vec::with_capacity(self.history.len() + 1);
        history.extend_from_slice(&self.history);
        history.push(status);
        self.history = history.into();
    }

    /// The provider reference, once exported.
    pub fn shipment(&self) -> Option<&ShipmentRef> {
        match &self.export {
            ExportState::Exported { shipment, .. } => Some(shipment),
            _ => None,
        }
    }

    /// Whether tracking has more to learn: exported, not stopped, and not in a final status.
    pub fn is_active(&self) -> bool {
        self.shipment().is_some()
            && !self.tracking_stopped
            && !self
                .current_status
                .as_ref()
                .is_some_and(|s| s.code.is_final_for(&self.order.payment))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::sample_order;
    use rust_decimal::Decimal;

    #[test]
    fn fingerprints_see_only_key_fields() {
        let order = sample_order("SO-1");
        let base = Fingerprints::of(&order);
        let same = |o: &Order| base.changed(&Fingerprints::of(o));

        let mut o = order.clone();
        o.tags.insert("vip".into());
        o.custom_fields.insert("k".into(), "v".into());
        o.confirmed_at = Some(Utc::now());
        o.lines[0].name = "renamed".into();
        assert_eq!(same(&o), vec![]);

        let mut o = order.clone();
        o.customer.phone = "+39 340 123 4567".into(); // same number, other spacing
        assert_eq!(same(&o), vec![]);

        let mut o = order.clone();
        o.lines[0].unit_price = Decimal::new(24500, 3); // 24.500 == 24.50
        assert_eq!(same(&o), vec![]);

        for (edit, field) in [
            (
                (|o: &mut Order| o.customer.name = "Other".into()) as fn(&mut Order),
                KeyField::Name,
            ),
            (
                |o| o.customer.phone = "+393409999999".into(),
                KeyField::Phone,
            ),
            (
                |o| o.address.lines[0] = "Via Po 1".into(),
                KeyField::Address,
            ),
            (
                |o| o.address.pickup_point_id = Some("P1".into()),
                KeyField::Address,
            ),
            (|o| o.lines[0].quantity += 1, KeyField::Cart),
            (|o| o.lines[0].sku = "Other".into(), KeyField::Cart),
        ] {
            let mut o = order.clone();
            edit(&mut o);
            assert_eq!(same(&o), vec![field]);
        }
    }

    #[test]
    fn cart_fingerprint_ignores_line_order() {
        let mut order = sample_order("SO-1");
        let mut second = order.lines[0].clone();
        second.sku = "Demo Product-2".into();
        order.lines.push(second);
        let mut reordered = order.clone();
        reordered.lines.reverse();
        assert_eq!(Fingerprints::of(&order), Fingerprints::of(&reordered));
    }

    #[test]
    fn fingerprint_is_stable_and_separates_parts() {
        // A stored fingerprint must mean the same thing in every release.
        assert_eq!(Fingerprint::of(&["abc"]), Fingerprint::of(&["abc"]));
        assert_eq!(
            serde_json::to_value(Fingerprint::of(&[])).ok(),
            Some(serde_json::json!("cbf29ce484222325"))
        );
        assert_ne!(Fingerprint::of(&["ab", "c"]), Fingerprint::of(&["a", "bc"]));
    }
    #[test]
    fn fingerprint_reads_back_and_refuses_what_it_never_wrote() {
        let fp = Fingerprint::of(&["Mario Rossi"]);
        let text = serde_json::to_string(&fp).expect("serialize");
        assert_eq!(serde_json::from_str::<Fingerprint>(&text).ok(), Some(fp));
        for bad in [
            r#""""#,
            r#""cbf29ce48422232""#,   // 15 digits
            r#""cbf29ce4842223255""#, // 17 digits
            r#""+bf29ce484222325""#,  // a sign, which u64::from_str_radix would take
            r#""cbf29ce48422232g""#,
            "12",
        ] {
            assert!(
                serde_json::from_str::<Fingerprint>(bad).is_err(),
                "{bad} was accepted"
            );
        }
    }
}
