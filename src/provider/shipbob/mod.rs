//! The ShipBob provider: ShipBob's public Developer API in its dated version `2026-07`
//! (`https://api.shipbob.com/2026-07/…`) over the shared [`http`](crate::http) client.
//!
//! Files: `builder.rs` (configuration), `client.rs` (token, channel header, version, paging,
//! HTTP status → error), `wire.rs` (JSON shapes and their mapping to the model), `status.rs`
//! (the status table and which states still allow changes), `tracking.rs` (the change feed,
//! the order cache and split orders). This file holds the [`FulfillmentProvider`]
//! implementation and webhook decoding; verification of webhook signatures lives in
//! [`webhook`](crate::webhook).
//!
//! The [`protocol`] document (shipped as `docs/protocols/shipbob.md`) tags every field
//! documented or assumed; the behaviour built on it:
//! - **create** posts the order with `reference_id` = the order id, the idempotency key
//!   (§4.2). The post is not idempotent for the HTTP client: after a 5xx, a timeout or a
//!   dropped connection the order is looked up (`GET /order?ReferenceIds=…`, exact match),
//!   adopted when found and posted again (at most `max_retries` times) only when not; a 422
//!   is followed by the same lookup, adopted when found, else the `Validation` error it is. A
//!   lookup that fails is an error to retry, never an operator case;
//! - **update** re-reads the order; once a shipment is picked it is `TooLate` (§11.2);
//!   otherwise name, phone, e-mail and address go to every open shipment
//!   (`:updateAddress`, `override_verification: false`) and a changed cart replaces the
//!   shipment's line items (`:updateLineItems`, keyed by `inventory_id`); a cart change of an
//!   order split into several shipments is `TooLate` for an operator \[assumed];
//! - **cancel** is `POST /order/{id}:cancel`; a refusal (`Failure`, 422) is judged by the
//!   order read again: all shipments cancelled → already cancelled, picked or later →
//!   `TooLate`; `PartialSuccess` is `TooLate` naming what will still ship;
//! - **track** answers from an order cache kept current by an incremental change feed
//!   (`LastUpdateStartDate` / `LastTrackingUpdateStartDate`), reads unknown orders by id in
//!   batches, and adds the carrier's statuses and history for labelled shipments
//!   (`/shipments-tracking`); see `tracking.rs`;
//! - **stock** is `total_fulfillable_quantity` of `GET /inventory-level`, or the pinned
//!   center's `fulfillable_quantity` of `/inventory-level/locations`, matched to skus
//!   exactly;
//! - **webhooks**: [`ShipBobProvider::webhook_updates`] turns a verified delivery into
//!   tracking updates through the same cache, so duplicates and out-of-order deliveries
//!   change nothing; [`ShipBobProvider::subscribe_webhooks`] creates the subscription once;
//! - there are no pickup points at ShipBob (§9): `search_addresses` is `Unsupported`, and an
//!   order to a pickup point or with cash on delivery is refused as invalid.

/// The protocol document this adapter implements: every field tagged as documented by
/// ShipBob (with the source) or assumed by us, the status table and the test vectors.
/// Section numbers (§) in this adapter's documentation refer to it.
#[allow(
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls,
    reason = "the notes are Markdown for people: [doc R]-style tags are not links"
)]
#[doc = include_str!("../../../docs/protocols/shipbob.md")]
pub mod protocol {}
mod builder;
mod client;
mod status;
mod tracking;
mod wire;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::time::Instant;

pub use builder::{
    DEFAULT_API_VERSION, DEFAULT_FEED_INTERVAL, DEFAULT_RATE_LIMIT, DEFAULT_SHIPPING_METHOD,
    DEFAULT_STOCK_BATCH, DEFAULT_TRACK_BATCH, FEED_OVERLAP, PRODUCTION_URL, SANDBOX_URL,
    ShipBobBuilder,
};
pub use client::MAX_PAGES;

use self::client::{Missing, ShipBobClient, error_for, with_json};
use self::status::{Editability, editability};
use self::wire::{OrderView, ShipmentView};
use crate::error::{Error, FieldError, Result};
use crate::http::{Method, Response};
use crate::model::{
    Order, Shipment, ShipmentRef, Sku, StatusCode, StatusTable, StockLevel, TrackingUpdate,
    Waybill, WaybillForm,
};
use crate::provider::{CancelOutcome, Capabilities, FulfillmentProvider, UpdateOutcome};
use crate::webhook::WebhookSecret;

/// The topics [`ShipBobProvider::subscribe_webhooks`] subscribes to (protocol doc §7.1).
pub const WEBHOOK_TOPICS: [&str; 8] = [
    "order.shipped",
    "order.shipment.tracking.updated",
    "order.shipment.delivered",
    "order.delivered",
    "order.shipment.exception",
    "order.shipment.on_hold",
    "order.shipment.cancelled",
    "order.shipment.address.updated",
];

/// Instance settings other than transport, fixed at build.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) channel_id: i64,
    pub(crate) location_id: Option<i64>,
    pub(crate) shipping_method: String,
    pub(crate) max_track_batch: usize,
    pub(crate) feed_interval: Duration,
    pub(crate) feed_overlap: Duration,
}

/// One ShipBob channel (a Personal Access Token and its channel id) as a
/// [`FulfillmentProvider`]; build it with [`ShipBobBuilder`].
pub struct ShipBobProvider {
    client: ShipBobClient,
    settings: Settings,
    defaults: wire::OrderDefaults,
    table: StatusTable,
    form: WaybillForm,
    tracker: tracking::Tracker,
}

impl fmt::Debug for ShipBobProvider {
    // The client holds the token; its own `Debug` leaves it out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShipBobProvider")
            .field("client", &self.client)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The ShipBob order id of `shipment`: its provider reference, a positive decimal integer.
pub(crate) fn order_id_of(shipment: &ShipmentRef) -> Option<i64> {
    let text = shipment.provider_ref.trim();
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|id| *id > 0)
}

/// [`order_id_of`], or the validation error for a reference that cannot be ShipBob's.
fn require_order_id(shipment: &ShipmentRef) -> Result<i64> {
    order_id_of(shipment).ok_or_else(|| {
        Error::validation(
            format!("shipment of order {}", shipment.order_id),
            vec![FieldError::new(
                "provider_ref",
                format!(
                    "must be a shipbob order id (digits), got {:?}",
                    shipment.provider_ref.chars().take(40).collect::<String>()
                ),
            )],
        )
    })
}

/// How an order is named in errors: `shipbob order 309589638 (SO-1001)`.
fn order_label(id: i64, order_id: &impl fmt::Display) -> String {
    format!("shipbob order {id} ({order_id})")
}

/// Errors that every other call would hit too: the whole operation fails with them.
pub(crate) fn is_fatal(error: &Error) -> bool {
    matches!(
        error,
        Error::Unauthenticated { .. } | Error::RateLimited { .. }
    )
}

/// The shipments of `order` that are not cancelled.
fn open_shipments(order: &OrderView) -> Vec<&ShipmentView> {
    order
        .shipments
        .iter()
        .filter(|s| editability(s) != Editability::Cancelled)
        .collect()
}

impl ShipBobProvider {
    pub(crate) fn new(client: ShipBobClient, settings: Settings, form: WaybillForm) -> Self {
        Self {
            defaults: wire::OrderDefaults {
                shipping_method: settings.shipping_method.clone(),
                location_id: settings.location_id,
            },
            tracker: tracking::Tracker::new(settings.feed_interval, settings.feed_overlap),
            table: status::status_table(),
            client,
            settings,
            form,
        }
    }

    /// The status table this instance maps ShipBob's statuses with (see the README's
    /// ShipBob section for its texts).
    pub fn status_table(&self) -> &StatusTable {
        &self.table
    }

    /// The channel this instance writes as (`shipbob_channel_id`).
    pub fn channel_id(&self) -> i64 {
        self.settings.channel_id
    }

    /// The order with reference `reference` in this channel (`GET /order?ReferenceIds=…`,
    /// compared exactly), stored in the cache. Several matches (never expected) prefer one
    /// that is not cancelled, then the oldest.
    async fn find_by_reference(&self, reference: &str) -> Result<Option<Arc<OrderView>>> {
        let listing = self
            .client
            .list_orders(&[("ReferenceIds", reference.to_owned())])
            .await?;
        let mut found: Vec<OrderView> = listing
            .orders
            .into_iter()
            .filter(|o| o.has_reference(reference) && o.id > 0)
            .collect();
        if found.len() > 1 {
            tracing::warn!(
                reference,
                count = found.len(),
                "shipbob has several orders with one reference id; adopting one"
            );
        }
        found.sort_by_key(|o| (o.status.as_deref() == Some("Cancelled"), o.id));
        Ok(found.into_iter().next().map(|o| self.tracker.store(o)))
    }

    /// The shipment for `order` at ShipBob order `view`.
    fn shipment_from(&self, order: &Order, view: &OrderView) -> Shipment {
        let reference = ShipmentRef::new(order.id.clone(), view.id.to_string());
        let status = match self.update_for(&reference, view, &Default::default(), Utc::now()) {
            TrackingUpdate::Statuses { statuses, .. } => statuses
                .into_iter()
                .filter(|s| s.code != StatusCode::Unknown)
                .max_by_key(|s| (s.code, s.at)),
            _ => None,
        };
        Shipment {
            tracking_number: view
                .shipments
                .iter()
                .find_map(|s| s.tracking_number().map(str::to_owned)),
            reference,
            status,
        }
    }

    /// The shipment of an accepted create: the order in the answer, else (an unreadable
    /// answer) the order found by reference.
    async fn created(&self, order: &Order, response: &Response) -> Result<Shipment> {
        if let Ok(view) = serde_json::from_slice::<OrderView>(&response.body)
            && view.id > 0
        {
            let view = self.tracker.store(view);
            return Ok(self.shipment_from(order, &view));
        }
        match self.find_by_reference(order.id.as_str()).await? {
            Some(view) => Ok(self.shipment_from(order, &view)),
            None => Err(Error::protocol(format!(
                "shipbob accepted order {} without an id and it cannot be found: {}",
                order.id,
                self.client.http().excerpt(&response.body)
            ))),
        }
    }

    /// Subscribes `url` to [`WEBHOOK_TOPICS`] with `secret` (`POST /webhook`), unless a
    /// subscription of this URL with all those topics exists; returns its id. ShipBob lists
    /// no secrets, so an existing subscription keeps the secret it was made with.
    ///
    /// # Errors
    ///
    /// The listing's or the create's error.
    pub async fn subscribe_webhooks(&self, url: &str, secret: &WebhookSecret) -> Result<String> {
        let listing = self
            .client
            .get(&["webhook"])
            .with_query("RecordsPerPage", "250");
        let existing: Vec<wire::Subscription> = self.client.list_linked(listing).await?;
        if let Some(id) = existing
            .iter()
            .filter(|s| s.url.as_deref() == Some(url))
            .find(|s| {
                WEBHOOK_TOPICS
                    .iter()
                    .all(|t| s.topics.iter().any(|h| h == t))
            })
            .and_then(wire::Subscription::id_text)
        {
            return Ok(id);
        }
        let body = wire::CreateSubscription {
            topics: WEBHOOK_TOPICS.iter().map(|t| (*t).to_owned()).collect(),
            url: url.to_owned(),
            description: format!("fulfillkit channel {}", self.settings.channel_id),
            secret: secret.expose(),
        };
        let request = with_json(self.client.request(Method::POST, &["webhook"]), &body)?;
        let (created, _) = self
            .client
            .fetch::<wire::Subscription>(request, Missing::Endpoint)
            .await?;
        created
            .id_text()
            .ok_or_else(|| Error::protocol("shipbob created a webhook subscription without an id"))
    }

    /// The tracking updates a verified webhook delivery of `topic` brings (protocol doc
    /// §7.3): the order model (`order.shipped`, `order.delivered`) or a shipment model (the
    /// `order.shipment.*` topics) updates the order cache — only where it is newer than what
    /// the cache holds — and the order's update is built from the cache, as polling does. A
    /// shipment of an order not in the cache, and any other shape, make the adapter read the
    /// order; a carrier update makes it read the carrier's statuses again rather than trust
    /// the body. Topics without tracking news (returns, receiving, billing) give nothing.
    ///
    /// Use [`ShipBobWebhooks`](crate::webhook::ShipBobWebhooks) to verify and de-duplicate
    /// deliveries first.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] for a body that is not one of ShipBob's models; the errors of the
    /// reads it needed.
    pub async fn webhook_updates(
        &self,
        topic: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<TrackingUpdate>> {
        if topic.is_some_and(|t| !is_tracking_topic(t)) {
            return Ok(Vec::new());
        }
        let unreadable = |why: String| Error::protocol(format!("shipbob webhook body {why}"));
        let value: serde_json::Value =
            wire::from_body(body).map_err(|e| unreadable(format!("is not JSON ({e})")))?;
        let Some(object) = value.as_object() else {
            return Err(unreadable("is not a JSON object".into()));
        };
        let order_id = |key: &str| object.get(key).and_then(serde_json::Value::as_i64);
        let view = if object
            .get("shipments")
            .is_some_and(serde_json::Value::is_array)
        {
            let order: OrderView =
                wire::from_body(body).map_err(|e| unreadable(format!("is not an order ({e})")))?;
            if order.id <= 0 {
                return Err(unreadable("names no order id".into()));
            }
            self.tracker.store(order)
        } else if let (Some(_), Some(parent)) = (order_id("id"), order_id("order_id")) {
            let shipment: ShipmentView = wire::from_body(body)
                .map_err(|e| unreadable(format!("is not a shipment ({e})")))?;
            if topic.is_some_and(|t| t.contains("tracking")) {
                self.tracker.forget_carrier(shipment.id);
            }
            match self.tracker.cached(parent) {
                Some(cached) => self.tracker.store(with_shipment(&cached, shipment)),
                None => {
                    self.read_order(parent, &format!("shipbob order {parent}"))
                        .await?
                }
            }
        } else if let Some(parent) = order_id("order_id") {
            // `order.shipment.tracking_received` and other shapes: the order says it all.
            self.tracker.forget(parent);
            self.read_order(parent, &format!("shipbob order {parent}"))
                .await?
        } else {
            return Err(unreadable("is neither an order nor a shipment".into()));
        };
        let Some(reference) = view
            .reference_id
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
        else {
            return Err(unreadable(format!("order {} has no reference_id", view.id)));
        };
        let shipment = ShipmentRef::new(reference, view.id.to_string());
        let carrier = self.carrier_statuses(std::slice::from_ref(&view)).await?;
        if let Some(error) = carrier.failed.values().next() {
            return Err(error.clone());
        }
        Ok(vec![self.update_for(
            &shipment,
            &view,
            &carrier,
            Utc::now(),
        )])
    }

    /// The outcome of a refused cancel of order `id`, judged by the order read again.
    async fn judge_cancel(
        &self,
        id: i64,
        shipment: &ShipmentRef,
        reason: &str,
    ) -> Result<CancelOutcome> {
        self.tracker.forget(id);
        let view = self
            .read_order(id, &order_label(id, &shipment.order_id))
            .await?;
        let open = open_shipments(&view);
        if open.is_empty() {
            return Ok(CancelOutcome::AlreadyCancelled {
                state: Some("Cancelled".into()),
            });
        }
        if let Some(state) = open.iter().find_map(|s| match editability(s) {
            Editability::TooLate(state) => Some(state),
            _ => None,
        }) {
            return Ok(CancelOutcome::TooLate { state });
        }
        // ShipBob refused while a shipment is in a status we cannot place: its reply decides
        // (as for updates), and an unknown word must not turn a lock into a retryable error.
        if let Some(unplaced) = open.iter().find(|s| !status::is_known_open(s)) {
            return Ok(CancelOutcome::TooLate {
                state: status::shipment_text(unplaced),
            });
        }
        let states: Vec<String> = open.iter().map(|s| status::shipment_text(s)).collect();
        Err(Error::Conflict {
            message: format!(
                "shipbob refused to cancel {} while it is {}: {reason}",
                order_label(id, &shipment.order_id),
                states.join(", ")
            ),
        })
    }

    /// Sends a shipment mutation and reads its answer: `Ok(None)` applied, `Ok(Some(state))`
    /// refused as too late (`CONFLICT`), an error otherwise.
    async fn mutate(&self, request: crate::http::Request, what: &str) -> Result<Option<String>> {
        let endpoint = request.endpoint().to_owned();
        let response = self.client.send(request).await?;
        if !response.is_success() {
            let details = wire::error_details(&response.body);
            if details.code.as_deref() == Some("CONFLICT") {
                return Ok(Some(self.client.http().scrub(&details.message)));
            }
            return Err(error_for(
                self.client.http(),
                &endpoint,
                &response,
                Missing::Thing(what),
            ));
        }
        let result: wire::MutationResult = self.client.http().decode(&endpoint, &response.body)?;
        if result.is_success != Some(false) {
            return Ok(None);
        }
        let error = result.error.unwrap_or_default();
        let message = self
            .client
            .http()
            .scrub(error.message.as_deref().unwrap_or("refused"));
        match error.code.as_deref() {
            Some("CONFLICT") | None => Ok(Some(message)),
            Some("NOT_FOUND") => Err(Error::NotFound {
                what: what.to_owned(),
            }),
            Some(code) => Err(Error::validation(
                format!("request to shipbob {endpoint}"),
                vec![FieldError::new("body", format!("{code}: {message}"))],
            )),
        }
    }

    /// The inventory id of `sku`: from the shipment's line items or products, else the
    /// inventory (an exact sku match).
    async fn inventory_id(
        &self,
        sku: &str,
        items: &[wire::LineItem],
        shipment: &ShipmentView,
    ) -> Result<Option<i64>> {
        let from_items = items.iter().find_map(|i| {
            let same = i
                .product_variant
                .as_ref()
                .and_then(|v| v.sku.as_deref())
                .is_some_and(|s| s == sku);
            same.then_some(i.inventory_id).flatten()
        });
        let from_products = || {
            shipment
                .products
                .iter()
                .filter(|p| p.reference_id.as_deref() == Some(sku) || p.sku.as_deref() == Some(sku))
                .find_map(|p| p.inventory_items.first().and_then(|i| i.id))
        };
        if let Some(id) = from_items.or_else(from_products) {
            return Ok(Some(id));
        }
        let levels = self.inventory_levels(Some(sku)).await?;
        Ok(levels
            .iter()
            .find(|l| l.sku.as_deref() == Some(sku))
            .and_then(|l| l.inventory_id))
    }

    /// `GET /inventory-level` (network totals), every page, optionally searched for `sku`.
    async fn inventory_levels(&self, sku: Option<&str>) -> Result<Vec<wire::InventoryLevel>> {
        let mut request = self
            .client
            .get(&["inventory-level"])
            .with_query("IsActive", "true")
            .with_query("PageSize", DEFAULT_STOCK_BATCH.to_string());
        if let Some(sku) = sku {
            request = request.with_query("SearchBy", sku);
        }
        self.client.list_linked(request).await
    }

    /// Replaces the line items of `shipment` with the cart of `body`; `Ok(Some(state))` when
    /// ShipBob says it is too late.
    async fn replace_cart(
        &self,
        shipment: &ShipmentView,
        body: &wire::CreateOrder,
        what: &str,
    ) -> Result<Option<String>> {
        let sid = shipment.id.to_string();
        let read = self
            .client
            .get(&["shipment", &format!("{sid}:getLineItems")]);
        let (items, _) = self
            .client
            .fetch::<Vec<wire::LineItem>>(read, Missing::Thing(what))
            .await?;
        let mut lines = Vec::with_capacity(body.products.len());
        let mut unknown = Vec::new();
        for product in &body.products {
            let Some(inventory_id) = self
                .inventory_id(&product.reference_id, &items, shipment)
                .await?
            else {
                unknown.push(FieldError::new(
                    format!("lines[{}].sku", product.external_line_id.saturating_sub(1)),
                    format!("{} is not in shipbob's inventory", product.reference_id),
                ));
                continue;
            };
            let lot = items
                .iter()
                .find(|i| i.inventory_id == Some(inventory_id))
                .and_then(|i| i.lot.clone())
                .unwrap_or_default();
            lines.push(wire::LineItemWrite {
                inventory_id,
                quantity: i64::from(product.quantity),
                lot_number: lot.lot_number,
                lot_date: lot.lot_date,
            });
        }
        if !unknown.is_empty() {
            return Err(Error::validation(
                format!("cart of {what} for shipbob"),
                unknown,
            ));
        }
        let request = with_json(
            self.client.request(
                Method::POST,
                &["shipment", &format!("{sid}:updateLineItems")],
            ),
            &wire::UpdateLineItems { items: lines },
        )?
        .idempotent(true);
        self.mutate(request, what).await
    }
}

/// Whether a webhook topic can carry tracking news (the `order.*` topics and their legacy
/// names); returns, receiving and billing cannot.
fn is_tracking_topic(topic: &str) -> bool {
    let topic = topic.trim().to_ascii_lowercase();
    topic.starts_with("order") || topic.starts_with("shipment_")
}

/// `cached` with `shipment` in place of its older self (or added), unless the cached one is
/// newer.
fn with_shipment(cached: &OrderView, shipment: ShipmentView) -> OrderView {
    let mut order = cached.clone();
    match order.shipments.iter_mut().find(|s| s.id == shipment.id) {
        Some(known) if known.version() > shipment.version() => {}
        Some(known) => {
            // A short body (no status details, no products) keeps what the cache knows.
            let mut merged = shipment;
            if merged.status_details.is_empty() && merged.status == known.status {
                merged.status_details = std::mem::take(&mut known.status_details);
            }
            if merged.products.is_empty() {
                merged.products = std::mem::take(&mut known.products);
            }
            if merged.tracking.is_none() {
                merged.tracking = known.tracking.take();
            }
            *known = merged;
        }
        None => order.shipments.push(shipment),
    }
    order
}

#[async_trait]
impl FulfillmentProvider for ShipBobProvider {
    fn kind(&self) -> &str {
        "shipbob"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(self.settings.max_track_batch, DEFAULT_STOCK_BATCH)
            .with_update(true)
            .with_cancel(true)
            .with_stock(true)
            .with_push_tracking(true)
    }

    fn waybill_form(&self) -> Cow<'_, WaybillForm> {
        Cow::Borrowed(&self.form)
    }

    async fn create_order(&self, order: &Order, waybill: &Waybill) -> Result<Shipment> {
        order.validate()?;
        self.form.validate(waybill)?;
        let body = wire::create_body(order, waybill, &self.defaults)?;
        // The reference is fixed here, before any attempt, and the same bytes go out each time.
        let request = with_json(self.client.request(Method::POST, &["order"]), &body)?;
        let endpoint = request.endpoint().to_owned();
        let reference = order.id.as_str();
        let max_reposts = self.client.http().config().retry.max_retries;
        let mut backoff = self.client.http().backoff();
        let mut reposts = 0;
        loop {
            // Not idempotent for the HTTP client, which then re-sends only what surely was not
            // acted on (a refused connection, 408, 425, 429). After a 5xx, a timeout or a
            // dropped connection the order may exist: only a lookup may decide to post again.
            let ambiguous = match self.client.send(request.clone().idempotent(false)).await {
                Ok(response) if response.is_success() => {
                    return self.created(order, &response).await;
                }
                Ok(response) if response.status == 422 => {
                    // ShipBob's duplicate reference (§4.2), or a body it refuses.
                    return match self.find_by_reference(reference).await? {
                        Some(view) => Ok(self.shipment_from(order, &view)),
                        None => Err(error_for(
                            self.client.http(),
                            &endpoint,
                            &response,
                            Missing::Endpoint,
                        )),
                    };
                }
                Ok(response) if response.status >= 500 || response.status == 408 => {
                    error_for(self.client.http(), &endpoint, &response, Missing::Endpoint)
                }
                Ok(response) => {
                    return Err(error_for(
                        self.client.http(),
                        &endpoint,
                        &response,
                        Missing::Endpoint,
                    ));
                }
                Err(ambiguous @ (Error::Timeout { .. } | Error::Transport { .. })) => ambiguous,
                Err(other) => return Err(other),
            };
            tracing::warn!(
                order_id = %order.id,
                error = %ambiguous,
                "shipbob create may or may not have been stored; looking it up"
            );
            match self.find_by_reference(reference).await {
                Ok(Some(view)) => return Ok(self.shipment_from(order, &view)),
                Ok(None) if reposts < max_reposts => {
                    reposts += 1;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Ok(None) => return Err(ambiguous),
                // Without an answer to "does it exist", posting again could make two.
                Err(lookup) => {
                    tracing::warn!(order_id = %order.id, error = %lookup, "shipbob lookup failed");
                    return Err(ambiguous);
                }
            }
        }
    }

    async fn update_order(
        &self,
        shipment: &ShipmentRef,
        order: &Order,
        waybill: &Waybill,
    ) -> Result<UpdateOutcome> {
        let id = require_order_id(shipment)?;
        order.validate()?;
        self.form.validate(waybill)?;
        let body = wire::create_body(order, waybill, &self.defaults)?;
        let what = order_label(id, &shipment.order_id);
        self.tracker.forget(id);
        let view = self.read_order(id, &what).await?;
        let open = open_shipments(&view);
        if open.is_empty() {
            return Ok(UpdateOutcome::TooLate {
                state: "Cancelled".into(),
            });
        }
        if let Some(state) = open.iter().find_map(|s| match editability(s) {
            Editability::TooLate(state) => Some(state),
            _ => None,
        }) {
            return Ok(UpdateOutcome::TooLate { state });
        }
        let wanted = wire::UpdateAddress::from(&body.recipient);
        let address_changed = open
            .iter()
            .any(|s| !same_recipient(s.recipient.as_ref().or(view.recipient.as_ref()), &wanted));
        let cart_changed = cart_of_view(&view) != cart_of_body(&body);
        if !address_changed && !cart_changed {
            return Ok(UpdateOutcome::NoChange);
        }
        if cart_changed && open.len() > 1 {
            return Ok(UpdateOutcome::TooLate {
                state: format!(
                    "split into {} shipments: a cart change needs an operator",
                    open.len()
                ),
            });
        }
        if address_changed {
            for s in &open {
                // A full replacement of the shipment's address: repeating it is harmless.
                let request = with_json(
                    self.client.request(
                        Method::PUT,
                        &["shipment", &format!("{}:updateAddress", s.id)],
                    ),
                    &wanted,
                )?
                .idempotent(true);
                if let Some(state) = self.mutate(request, &what).await? {
                    self.tracker.forget(id);
                    return Ok(UpdateOutcome::TooLate { state });
                }
            }
        }
        if cart_changed && let Some(state) = self.replace_cart(open[0], &body, &what).await? {
            self.tracker.forget(id);
            return Ok(UpdateOutcome::TooLate { state });
        }
        self.tracker.forget(id);
        Ok(UpdateOutcome::Applied)
    }

    async fn cancel_order(&self, shipment: &ShipmentRef) -> Result<CancelOutcome> {
        let id = require_order_id(shipment)?;
        self.tracker.forget(id);
        // Cancelling twice cannot do harm: a refused repeat is judged by the order's state.
        let request = self
            .client
            .request(Method::POST, &["order", &format!("{id}:cancel")])
            .idempotent(true);
        let endpoint = request.endpoint().to_owned();
        let response = self.client.send(request).await?;
        let what = order_label(id, &shipment.order_id);
        if response.is_success() {
            let answer: wire::CanceledOrder =
                self.client.http().decode(&endpoint, &response.body)?;
            let reasons = || {
                answer
                    .canceled_shipment_results
                    .iter()
                    .filter(|r| r.is_success == Some(false))
                    .map(|r| {
                        format!(
                            "shipment {}: {}",
                            r.shipment_id.unwrap_or_default(),
                            r.reason.as_deref().unwrap_or("refused")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            return match answer.status.as_deref().map(str::trim) {
                Some(s) if s.eq_ignore_ascii_case("Success") => Ok(CancelOutcome::Cancelled {
                    state: Some("Cancelled".into()),
                }),
                Some(s) if s.eq_ignore_ascii_case("PartialSuccess") => Ok(CancelOutcome::TooLate {
                    state: self
                        .client
                        .http()
                        .scrub(&format!("partially cancelled: {}", reasons())),
                }),
                _ => {
                    let reason = self.client.http().scrub(&reasons());
                    self.judge_cancel(id, shipment, &reason).await
                }
            };
        }
        if matches!(response.status, 400 | 409 | 422) {
            let reason = self
                .client
                .http()
                .scrub(&wire::error_details(&response.body).message);
            return self.judge_cancel(id, shipment, &reason).await;
        }
        Err(error_for(
            self.client.http(),
            &endpoint,
            &response,
            Missing::Thing(&what),
        ))
    }

    async fn track(&self, shipments: &[ShipmentRef]) -> Result<Vec<TrackingUpdate>> {
        let trusted_since = self.refresh_feed(Instant::now()).await?;
        let now = Utc::now();
        let mut updates = Vec::with_capacity(shipments.len());
        for batch in shipments.chunks(self.settings.max_track_batch.max(1)) {
            updates.extend(self.track_batch(batch, trusted_since, now).await?);
        }
        Ok(updates)
    }

    async fn stock(&self, skus: &[Sku]) -> Result<Vec<StockLevel>> {
        let search = match skus {
            [one] => Some(one.as_str()),
            _ => None,
        };
        let mut levels: BTreeMap<String, StockLevel> = BTreeMap::new();
        let wanted = |sku: &str| skus.is_empty() || skus.iter().any(|s| s.as_str() == sku);
        match self.settings.location_id {
            None => {
                for row in self.inventory_levels(search).await? {
                    let Some(sku) = row.sku.as_deref().filter(|s| wanted(s)) else {
                        continue;
                    };
                    let level = levels
                        .entry(sku.to_owned())
                        .or_insert_with(|| StockLevel::new(sku, 0));
                    level.available += row.total_fulfillable_quantity.unwrap_or(0);
                    *level.reserved.get_or_insert(0) += row.total_committed_quantity.unwrap_or(0);
                    *level.in_transit.get_or_insert(0) += row.total_awaiting_quantity.unwrap_or(0);
                }
            }
            Some(location) => {
                let mut request = self
                    .client
                    .get(&["inventory-level", "locations"])
                    .with_query("LocationId", location.to_string())
                    .with_query("PageSize", DEFAULT_STOCK_BATCH.to_string());
                if let Some(sku) = search {
                    request = request.with_query("SearchBy", sku);
                }
                let rows: Vec<wire::InventoryLocations> = self.client.list_linked(request).await?;
                for row in rows {
                    let Some(sku) = row.sku.as_deref().filter(|s| wanted(s)) else {
                        continue;
                    };
                    let level = levels.entry(sku.to_owned()).or_insert_with(|| StockLevel {
                        warehouse: Some(location.to_string()),
                        ..StockLevel::new(sku, 0)
                    });
                    // Not stocked at the pinned center: nothing available there.
                    for at in row
                        .locations
                        .iter()
                        .filter(|l| l.location_id == Some(location))
                    {
                        level.available += at.fulfillable_quantity.unwrap_or(0);
                        *level.reserved.get_or_insert(0) += at.committed_quantity.unwrap_or(0);
                        *level.in_transit.get_or_insert(0) += at.awaiting_quantity.unwrap_or(0);
                    }
                }
            }
        }
        Ok(levels.into_values().collect())
    }
}

/// Whether the recipient ShipBob holds is what `wanted` would write.
fn same_recipient(held: Option<&wire::RecipientView>, wanted: &wire::UpdateAddress) -> bool {
    let Some(held) = held else {
        return false;
    };
    let address = held.address.clone().unwrap_or_default();
    let same = |a: Option<&str>, b: Option<&str>| {
        a.map(str::trim).filter(|t| !t.is_empty()) == b.map(str::trim).filter(|t| !t.is_empty())
    };
    same(held.name.as_deref(), Some(&wanted.recipient_name))
        && same(address.address1.as_deref(), Some(&wanted.street_address1))
        && same(
            address.address2.as_deref(),
            wanted.street_address2.as_deref(),
        )
        && same(address.city.as_deref(), Some(&wanted.city))
        && same(address.state.as_deref(), wanted.state.as_deref())
        && same(address.zip_code.as_deref(), wanted.zip_code.as_deref())
        && address
            .country
            .as_deref()
            .is_some_and(|c| c.trim().eq_ignore_ascii_case(&wanted.country_code))
        && same(held.email.as_deref(), wanted.email.as_deref())
        && same(held.phone_number.as_deref(), wanted.phone_number.as_deref())
}

/// The cart ShipBob holds: quantity per reference id.
fn cart_of_view(view: &OrderView) -> BTreeMap<String, i64> {
    let mut cart = BTreeMap::new();
    for p in &view.products {
        if let Some(reference) = p.reference_id.as_deref().or(p.sku.as_deref()) {
            *cart.entry(reference.to_owned()).or_insert(0) += p.quantity.unwrap_or(0);
        }
    }
    cart
}

/// The cart a body asks for: quantity per reference id.
fn cart_of_body(body: &wire::CreateOrder) -> BTreeMap<String, i64> {
    let mut cart = BTreeMap::new();
    for p in &body.products {
        *cart.entry(p.reference_id.clone()).or_insert(0) += i64::from(p.quantity);
    }
    cart
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_are_positive_decimal_integers_only() {
        let r = |text: &str| ShipmentRef::new("SO-1", text);
        assert_eq!(order_id_of(&r("309589638")), Some(309589638));
        assert_eq!(order_id_of(&r(" 1 ")), Some(1));
        for bad in [
            "",
            "0",
            "WH1",
            "-1",
            "+1",
            "1.0",
            "99999999999999999999999",
            "٣",
        ] {
            assert_eq!(order_id_of(&r(bad)), None, "{bad}");
            let err = require_order_id(&r(bad)).unwrap_err();
            assert_eq!(err.field_errors()[0].path, "provider_ref");
        }
    }

    #[test]
    fn tracking_topics() {
        for yes in [
            "order.shipped",
            "order.shipment.delivered",
            "Order.Delivered",
            "shipment_delivered",
            "order_shipped",
        ] {
            assert!(is_tracking_topic(yes), "{yes}");
        }
        for no in ["return.created", "wro.completed", "billing.charge.created"] {
            assert!(!is_tracking_topic(no), "{no}");
        }
    }
}
