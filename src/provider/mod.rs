//! The [`FulfillmentProvider`] trait every fulfillment company's adapter implements, and the
//! adapters that ship with the crate.
//!
//! A provider adapter speaks one company's protocol and nothing else: it knows no routing,
//! stores or events (those live in the orchestrator). It is used as
//! `Arc<dyn FulfillmentProvider>`.
//!
//! The required surface is small: [`FulfillmentProvider::kind`],
//! [`capabilities`](FulfillmentProvider::capabilities),
//! [`create_order`](FulfillmentProvider::create_order) and [`track`](FulfillmentProvider::track).
//! The other operations default to [`Error::Unsupported`]; an adapter that implements one also
//! says so in its [`Capabilities`].

use std::borrow::Cow;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Operation, Result};
use crate::model::{
    AddressOption, AddressQuery, Order, Shipment, ShipmentRef, Sku, StockLevel, TrackingUpdate,
    Waybill, WaybillForm,
};

#[cfg(any(feature = "wapi", feature = "shipbob"))]
pub(crate) mod amount;
#[cfg(test)]
pub(crate) mod hostile_tests;
#[cfg(any(test, feature = "mock"))]
pub mod mock;
#[cfg(feature = "shipbob")]
pub mod shipbob;
#[cfg(feature = "sphere")]
pub mod sphere;
#[cfg(feature = "wapi")]
pub mod wapi;

/// A request the provider refused as invalid (400 / 422) as [`Error::Validation`]: its field
/// errors, scrubbed of secrets, or else one at `body` with its message (or the status).
#[cfg(any(feature = "sphere", feature = "shipbob"))]
pub(crate) fn refused_request(
    http: &crate::http::HttpClient,
    provider: &str,
    endpoint: &str,
    status: u16,
    message: String,
    fields: &[crate::error::FieldError],
) -> Error {
    let mut fields: Vec<crate::error::FieldError> = fields
        .iter()
        .map(|f| crate::error::FieldError::new(http.scrub(&f.path), http.scrub(&f.reason)))
        .collect();
    if fields.is_empty() {
        let reason = if message.is_empty() {
            format!("refused with HTTP {status}")
        } else {
            message
        };
        fields.push(crate::error::FieldError::new("body", reason));
    }
    Error::validation(format!("request to {provider} {endpoint}"), fields)
}

/// Reads one optional waybill value with `read`, recording a field error when it is present
/// but unreadable. Empty strings count as absent.
#[cfg(any(feature = "sphere", feature = "wapi"))]
pub(crate) fn waybill_value<T>(
    waybill: &Waybill,
    key: &str,
    reason: &str,
    errors: &mut Vec<crate::error::FieldError>,
    read: impl FnOnce(&serde_json::Value) -> Option<T>,
) -> Option<T> {
    let value = waybill
        .get(key)
        .filter(|v| v.as_str().is_none_or(|s| !s.trim().is_empty()))?;
    let read = read(value);
    if read.is_none() {
        errors.push(crate::error::FieldError::new(
            format!("waybill.values.{key}"),
            reason,
        ));
    }
    read
}

/// A JSON value that is either one `T` or an array of them: providers answer one object or a
/// list where their documentation shows only one shape, so both are accepted.
#[cfg(any(feature = "sphere", feature = "wapi"))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany<T> {
    /// An array.
    Many(Vec<T>),
    /// A single object.
    One(T),
}

#[cfg(any(feature = "sphere", feature = "wapi"))]
impl<T> OneOrMany<T> {
    /// The values as a vector.
    pub(crate) fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::Many(many) => many,
            OneOrMany::One(one) => vec![one],
        }
    }
}

/// What a provider can do, so callers (and the conformance testkit) need not try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// `update_order` is supported.
    pub update: bool,
    /// `cancel_order` is supported.
    pub cancel: bool,
    /// `stock` is supported.
    pub stock: bool,
    /// `search_addresses` is supported.
    pub address_directory: bool,
    /// The provider can push tracking updates (webhooks) to the host.
    pub push_tracking: bool,
    /// Most shipments the provider accepts in one tracking request.
    pub max_track_batch: usize,
    /// Most skus the provider accepts in one stock request.
    pub max_stock_batch: usize,
}

impl Capabilities {
    /// Only create and track, with the given batch limits (each at least 1).
    pub fn new(max_track_batch: usize, max_stock_batch: usize) -> Self {
        Self {
            update: false,
            cancel: false,
            stock: false,
            address_directory: false,
            push_tracking: false,
            max_track_batch: max_track_batch.max(1),
            max_stock_batch: max_stock_batch.max(1),
        }
    }

    /// Every operation, with the given batch limits.
    pub fn all(max_track_batch: usize, max_stock_batch: usize) -> Self {
        Self::new(max_track_batch, max_stock_batch)
            .with_update(true)
            .with_cancel(true)
            .with_stock(true)
            .with_address_directory(true)
    }

    /// Sets [`Capabilities::update`].
    pub fn with_update(mut self, yes: bool) -> Self {
        self.update = yes;
        self
    }

    /// Sets [`Capabilities::cancel`].
    pub fn with_cancel(mut self, yes: bool) -> Self {
        self.cancel = yes;
        self
    }

    /// Sets [`Capabilities::stock`].
    pub fn with_stock(mut self, yes: bool) -> Self {
        self.stock = yes;
        self
    }

    /// Sets [`Capabilities::address_directory`].
    pub fn with_address_directory(mut self, yes: bool) -> Self {
        self.address_directory = yes;
        self
    }

    /// Sets [`Capabilities::push_tracking`].
    pub fn with_push_tracking(mut self, yes: bool) -> Self {
        self.push_tracking = yes;
        self
    }

    /// Whether `operation` is supported.
    pub fn supports(&self, operation: Operation) -> bool {
        match operation {
            Operation::Create | Operation::Track => true,
            Operation::Update => self.update,
            Operation::Cancel => self.cancel,
            Operation::Stock => self.stock,
            Operation::SearchAddresses => self.address_directory,
        }
    }
}

/// The result of an update the provider answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
#[must_use = "the outcome says what happened at the provider"]
pub enum UpdateOutcome {
    /// The provider changed the order.
    Applied,
    /// The provider already had these values.
    NoChange,
    /// The provider can no longer change the order.
    TooLate {
        /// The provider's state, in its words.
        state: String,
    },
}

/// The result of a cancel the provider answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
#[must_use = "the outcome says what happened at the provider"]
pub enum CancelOutcome {
    /// The order is cancelled at the provider now.
    Cancelled {
        /// The provider's status after the cancel, in its words (e.g. `void`), when it says;
        /// the shipment's `Cancelled` status keeps this text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<String>,
    },
    /// The order was cancelled already; nothing changed.
    AlreadyCancelled {
        /// The provider's status, in its words, when it says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<String>,
    },
    /// The provider can no longer cancel the order.
    TooLate {
        /// The provider's state, in its words.
        state: String,
    },
}

impl CancelOutcome {
    /// Whether the order is cancelled at the provider (now or before).
    pub fn is_cancelled(&self) -> bool {
        matches!(
            self,
            CancelOutcome::Cancelled { .. } | CancelOutcome::AlreadyCancelled { .. }
        )
    }

    /// The provider's words for the order's state, when it gave them.
    pub fn state(&self) -> Option<&str> {
        match self {
            CancelOutcome::Cancelled { state } | CancelOutcome::AlreadyCancelled { state } => {
                state.as_deref()
            }
            CancelOutcome::TooLate { state } => Some(state),
        }
    }
}

/// One fulfillment company's API, as fulfillkit uses it.
///
/// Implementations must be cheap to share (`Arc<dyn FulfillmentProvider>`) and safe to call
/// concurrently. Every method that talks to the provider is async and returns the crate's
/// [`Error`]; an operation the provider lacks returns [`Error::Unsupported`] and is declared in
/// [`Capabilities`].
///
/// # Examples
///
/// A minimal provider needs four methods:
///
/// ```
/// use async_trait::async_trait;
/// use chrono::Utc;
/// use fulfillkit::model::{Order, Shipment, ShipmentRef, StatusCode, TrackingUpdate, Waybill};
/// use fulfillkit::model::DeliveryStatus;
/// use fulfillkit::provider::{Capabilities, FulfillmentProvider};
/// use fulfillkit::Result;
///
/// #[derive(Debug)]
/// struct Pigeon;
///
/// #[async_trait]
/// impl FulfillmentProvider for Pigeon {
///     fn kind(&self) -> &str { "pigeon" }
///     fn capabilities(&self) -> Capabilities { Capabilities::new(1, 1) }
///     async fn create_order(&self, order: &Order, _: &Waybill) -> Result<Shipment> {
///         // Idempotent: the reference is derived from the order id.
///         let reference = ShipmentRef::new(order.id.clone(), format!("P-{}", order.id));
///         Ok(Shipment { reference, tracking_number: None, status: None })
///     }
///     async fn track(&self, shipments: &[ShipmentRef]) -> Result<Vec<TrackingUpdate>> {
///         Ok(shipments.iter().map(|s| TrackingUpdate::Statuses {
///             shipment: s.clone(),
///             statuses: vec![DeliveryStatus::new(StatusCode::InTransit, "flying", Utc::now())],
///         }).collect())
///     }
/// }
/// ```
#[async_trait]
pub trait FulfillmentProvider: Debug + Send + Sync + 'static {
    /// The provider kind, e.g. `wapi`; the same for every instance of one adapter.
    fn kind(&self) -> &str;

    /// What this provider supports.
    fn capabilities(&self) -> Capabilities;

    /// The provider-specific waybill fields. Empty by default.
    ///
    /// Read for every export: a provider whose form does not change returns it borrowed
    /// (`Cow::Borrowed(&self.form)`), which costs nothing.
    fn waybill_form(&self) -> Cow<'_, WaybillForm> {
        Cow::Owned(WaybillForm::default())
    }

    /// Creates the order at the provider.
    ///
    /// Idempotent on the order id: a repeated call for the same order returns the same
    /// shipment and never creates a second one.
    async fn create_order(&self, order: &Order, waybill: &Waybill) -> Result<Shipment>;

    /// Replaces the provider's copy of the order with `order` and `waybill`.
    async fn update_order(
        &self,
        shipment: &ShipmentRef,
        order: &Order,
        waybill: &Waybill,
    ) -> Result<UpdateOutcome> {
        let _ = (shipment, order, waybill);
        Err(Error::unsupported(Operation::Update, self.kind()))
    }

    /// Cancels the order at the provider.
    async fn cancel_order(&self, shipment: &ShipmentRef) -> Result<CancelOutcome> {
        let _ = shipment;
        Err(Error::unsupported(Operation::Cancel, self.kind()))
    }

    /// The statuses of `shipments`, one update per shipment the provider answered about.
    ///
    /// Adapters split a longer slice into requests of at most
    /// [`Capabilities::max_track_batch`]. A shipment the provider does not know is reported as
    /// [`TrackingUpdate::NotFound`], and one whose answer cannot be read (an unreadable date,
    /// its own request failing) as [`TrackingUpdate::Failed`] — never as an error for the
    /// whole batch, so the other shipments are tracked; a shipment missing from the answer
    /// means "no news". An error for the whole call is for failures that concern every
    /// shipment (credentials, the rate limit, an unreadable reply).
    async fn track(&self, shipments: &[ShipmentRef]) -> Result<Vec<TrackingUpdate>>;

    /// Stock of `skus` (all skus if empty).
    async fn stock(&self, skus: &[Sku]) -> Result<Vec<StockLevel>> {
        let _ = skus;
        Err(Error::unsupported(Operation::Stock, self.kind()))
    }

    /// Searches the provider's address / pickup-point directory.
    async fn search_addresses(&self, query: &AddressQuery) -> Result<Vec<AddressOption>> {
        let _ = query;
        Err(Error::unsupported(Operation::SearchAddresses, self.kind()))
    }
}

/// Forwards every method, so `Arc<P>` and `Box<P>` (including `Arc<dyn FulfillmentProvider>`)
/// can be used wherever a provider is expected.
macro_rules! forward_provider {
    ($ptr:ident) => {
        #[async_trait]
        impl<P: FulfillmentProvider + ?Sized> FulfillmentProvider for $ptr<P> {
            fn kind(&self) -> &str {
                (**self).kind()
            }
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            fn waybill_form(&self) -> Cow<'_, WaybillForm> {
                (**self).waybill_form()
            }
            async fn create_order(&self, order: &Order, waybill: &Waybill) -> Result<Shipment> {
                (**self).create_order(order, waybill).await
            }
            async fn update_order(
                &self,
                shipment: &ShipmentRef,
                order: &Order,
                waybill: &Waybill,
            ) -> Result<UpdateOutcome> {
                (**self).update_order(shipment, order, waybill).await
            }
            async fn cancel_order(&self, shipment: &ShipmentRef) -> Result<CancelOutcome> {
                (**self).cancel_order(shipment).await
            }
            async fn track(&self, shipments: &[ShipmentRef]) -> Result<Vec<TrackingUpdate>> {
                (**self).track(shipments).await
            }
            async fn stock(&self, skus: &[Sku]) -> Result<Vec<StockLevel>> {
                (**self).stock(skus).await
            }
            async fn search_addresses(&self, query: &AddressQuery) -> Result<Vec<AddressOption>> {
                (**self).search_addresses(query).await
            }
        }
    };
}

forward_provider!(Arc);
forward_provider!(Box);
