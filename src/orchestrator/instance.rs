//! Provider instances: one configured account of one fulfillment company, and its settings.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{InstanceId, Payment, StatusMapping, StatusOrder, StockPolicy, Waybill};
use crate::provider::FulfillmentProvider;

/// Which payments an instance accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcceptedPayment {
    /// Prepaid orders only.
    Prepaid,
    /// Cash-on-delivery orders only.
    CashOnDelivery,
    /// Both.
    #[default]
    Any,
}

impl AcceptedPayment {
    /// Whether an order paid with `payment` may go to an instance accepting `self`.
    pub fn accepts(self, payment: &Payment) -> bool {
        match self {
            AcceptedPayment::Any => true,
            AcceptedPayment::Prepaid => !payment.is_cash_on_delivery(),
            AcceptedPayment::CashOnDelivery => payment.is_cash_on_delivery(),
        }
    }
}

/// The settings of one instance that the host keeps in its database (serde).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct InstanceSettings {
    /// The merchant's legal entity this account belongs to.
    pub legal_entity: Option<String>,
    /// The provider warehouse this account ships from, for display.
    pub warehouse: Option<String>,
    /// Which payments the account takes; routing never sends it any other.
    pub accepted_payment: AcceptedPayment,
    /// Stock thresholds and who sees how much.
    pub stock_policy: StockPolicy,
    /// Refuse any address not chosen from the provider's directory.
    pub strict_addresses: bool,
    /// Waybill values used when the operator gives none.
    pub waybill_defaults: Waybill,
    /// Raw provider status → meaning, over the provider's own table.
    pub status_overrides: BTreeMap<String, StatusMapping>,
    /// How a status history is ordered before the current status is picked.
    pub status_order: StatusOrder,
    /// A disabled instance receives no new orders.
    pub enabled: bool,
}

impl Default for InstanceSettings {
    fn default() -> Self {
        Self {
            legal_entity: None,
            warehouse: None,
            accepted_payment: AcceptedPayment::Any,
            stock_policy: StockPolicy::default(),
            strict_addresses: false,
            waybill_defaults: Waybill::default(),
            status_overrides: BTreeMap::new(),
            status_order: StatusOrder::default(),
            enabled: true,
        }
    }
}

impl InstanceSettings {
    /// Sets the legal entity.
    pub fn with_legal_entity(mut self, entity: impl Into<String>) -> Self {
        self.legal_entity = Some(entity.into());
        self
    }

    /// Sets the warehouse.
    pub fn with_warehouse(mut self, warehouse: impl Into<String>) -> Self {
        self.warehouse = Some(warehouse.into());
        self
    }

    /// Sets the accepted payment.
    pub fn with_accepted_payment(mut self, accepted: AcceptedPayment) -> Self {
        self.accepted_payment = accepted;
        self
    }

    /// Sets the stock policy.
    pub fn with_stock_policy(mut self, policy: StockPolicy) -> Self {
        self.stock_policy = policy;
        self
    }

    /// Sets how status histories are ordered.
    pub fn with_status_order(mut self, order: StatusOrder) -> Self {
        self.status_order = order;
        self
    }

    /// Switches strict addresses on or off.
    pub fn with_strict_addresses(mut self, strict: bool) -> Self {
        self.strict_addresses = strict;
        self
    }

    /// Sets the waybill defaults.
    pub fn with_waybill_defaults(mut self, defaults: Waybill) -> Self {
        self.waybill_defaults = defaults;
        self
    }

    /// Overrides the meaning of one raw provider status.
    pub fn with_status_override(mut self, raw: impl Into<String>, mapping: StatusMapping) -> Self {
        self.status_overrides.insert(raw.into(), mapping);
        self
    }

    /// Enables or disables the instance.
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }
}

/// One configured account of a provider. The same provider kind may be registered many times
/// (two Wapi accounts for two legal entities, one for prepaid and one for COD).
#[derive(Clone)]
pub struct Instance {
    /// Unique id, used by routing rules and stored in shipment records.
    pub id: InstanceId,
    /// Human-readable name.
    pub label: String,
    /// The provider adapter, configured for this account.
    pub provider: Arc<dyn FulfillmentProvider>,
    /// The host-kept settings.
    pub settings: InstanceSettings,
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("provider", &self.provider.kind())
            .field("settings", &self.settings)
            .finish()
    }
}

impl Instance {
    /// An instance with default settings.
    pub fn new(
        id: impl Into<InstanceId>,
        label: impl Into<String>,
        provider: Arc<dyn FulfillmentProvider>,
    ) -> Self {
        Self {
            id: id.into(),
            label: label.into(),
            provider,
            settings: InstanceSettings::default(),
        }
    }

    /// Replaces the settings.
    pub fn with_settings(mut self, settings: InstanceSettings) -> Self {
        self.settings = settings;
        self
    }
}
