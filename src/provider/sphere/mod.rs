//! The Sphere provider: the SphereWMS API v2 (`https://api.spherewms.com/v2/wms`) over the
//! shared [`http`](crate::http) client.
//!
//! Files: `builder.rs` (configuration), `client.rs` (API key, paging, HTTP status → error),
//! `wire.rs` (JSON shapes and their mapping to the model), `status.rs` (the status table and
//! which states still allow changes). This file holds the [`FulfillmentProvider`]
//! implementation. It is not confirmed that "Sphere Fulfillment" runs SphereWMS; base URL
//! and environment are configuration, so any deployment of the protocol can be targeted.
//!
//! The stored API guide covers only access, authentication and paging, so most of the
//! protocol is \[assumed] ([`protocol`] §7–§10); every such decision lives in
//! `wire.rs` or `status.rs`, where it can be corrected once a real key is available. The
//! behaviour built on them:
//! - **create** looks the order up by `order_number` first and reuses a match, so a repeated
//!   create never makes a second order even if SphereWMS does not enforce unique numbers.
//!   The `POST /orders` is not idempotent for the HTTP client: after a 5xx, a timeout or a
//!   dropped connection (a server can store the order and then fail to answer) the order is
//!   looked up, and re-posted (at most `max_retries` times, with the client's backoff) only
//!   when the lookup finds nothing. A duplicate answer (409, or 400/422 saying so) is
//!   followed by a lookup;
//! - **update** and **cancel** read the order first: a void order cancels as `Cancelled`, a
//!   status outside the six open ones is `TooLate { state }` without calling. A refused
//!   update or void (400/409/422) is judged by the status read again: past editing, or any
//!   409, is `TooLate`; a 400/422 on an order still open is the `Validation` error it says;
//! - **track** reads each order (`GET /orders/{id}`) one after the other (the rate limit, not
//!   latency, bounds throughput) and, from packing on, its shipments for the carrier and
//!   first tracking number; an unknown or non-numeric reference is `NotFound`; one order
//!   whose read fails is `TrackingUpdate::Failed` and the others are read (refused
//!   credentials and the rate limit fail the whole call);
//! - **stock** reads `available` for the instance's inventory account only, one read per sku
//!   (or the whole account for an empty list); a sku without a row is left out;
//! - **search_addresses** searches the ship-to Customer Master by `keyword`, only when
//!   enabled with [`SphereBuilder::with_customer_directory`] (otherwise `Unsupported`);
//!   `limit: 0` pages through every match.

mod builder;
mod client;
/// The protocol notes this adapter implements: the wire reference it was built from, every
/// field tagged as documented by Sphere (with the source) or assumed by us. Section numbers
/// (§) in this adapter's documentation refer to it.
#[allow(
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls,
    reason = "the notes are Markdown for people: [doc R]-style tags are not links"
)]
#[doc = include_str!("../../../docs/protocols/sphere.md")]
pub mod protocol {}
mod status;
mod wire;

use std::borrow::Cow;
use std::fmt;
use std::ops::ControlFlow;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use builder::{
    AuthMode, DEFAULT_BASE_URL, DEFAULT_CUSTOMER_CODE_PREFIX, DEFAULT_PAGE_SIZE,
    DEFAULT_RATE_LIMIT, DEFAULT_STOCK_BATCH, DEFAULT_TRACK_BATCH, SphereBuilder,
};
pub use client::MAX_PAGES;
/// The keys of Sphere's waybill form (`Waybill::values`), as the README lists them.
pub use wire::{NOTES, ORDER_DATE, PO_NUMBER, SHIP_VIA};

use self::client::{Missing, SphereClient, error_for, get, with_json};
use self::status::{Editability, editability, is_void_raw, may_have_shipments};
use crate::error::{Error, FieldError, Operation, Result};
use crate::http::{Method, Request, Response};
use crate::model::{
    AddressOption, AddressQuery, Order, OrderId, Shipment, ShipmentRef, Sku, StatusTable,
    StockLevel, TrackingUpdate, Waybill, WaybillForm,
};
use crate::provider::{CancelOutcome, Capabilities, FulfillmentProvider, UpdateOutcome};

/// Instance settings other than transport, fixed at build.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) client_code: String,
    pub(crate) location_id: u32,
    pub(crate) customer_code_prefix: String,
    pub(crate) cod_field: Option<String>,
    pub(crate) max_track_batch: usize,
    pub(crate) utc_offset_secs: i32,
    pub(crate) customer_directory: bool,
}

/// One SphereWMS client account (environment, client code, inventory account) as a
/// [`FulfillmentProvider`]; build it with [`SphereBuilder`].
pub struct SphereProvider {
    client: SphereClient,
    settings: Settings,
    order_config: wire::OrderConfig,
    table: StatusTable,
    form: WaybillForm,
}

impl fmt::Debug for SphereProvider {
    // The client holds the API key; its own `Debug` leaves it out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SphereProvider")
            .field("client", &self.client)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The SphereWMS `order_id` of `shipment`: its provider reference, which must be a decimal
/// integer.
fn order_id_of(shipment: &ShipmentRef) -> Option<u64> {
    let text = shipment.provider_ref.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// [`order_id_of`], or the validation error for a reference that cannot be SphereWMS's.
fn require_order_id(shipment: &ShipmentRef) -> Result<u64> {
    order_id_of(shipment).ok_or_else(|| {
        Error::validation(
            format!("shipment of order {}", shipment.order_id),
            vec![FieldError::new(
                "provider_ref",
                format!(
                    "must be a sphere order id (digits), got {:?}",
                    shipment.provider_ref.chars().take(40).collect::<String>()
                ),
            )],
        )
    })
}

/// How an order is named in errors: `sphere order 88213 (SO-1001)`.
fn order_label(id: u64, order_id: &OrderId) -> String {
    format!("sphere order {id} ({order_id})")
}

impl SphereProvider {
    pub(crate) fn new(client: SphereClient, settings: Settings, form: WaybillForm) -> Self {
        let order_config = wire::OrderConfig {
            client_code: settings.client_code.clone(),
            location_id: settings.location_id,
            customer_code_prefix: settings.customer_code_prefix.clone(),
            cod_field: settings.cod_field.clone(),
            utc_offset_secs: settings.utc_offset_secs,
        };
        Self {
            form,
            table: status::status_table(),
            client,
            order_config,
            settings,
        }
    }

    /// The status table this instance maps raw statuses with.
    pub fn status_table(&self) -> &StatusTable {
        &self.table
    }

    fn client_code(&self) -> (&'static str, String) {
        ("client_code", self.settings.client_code.clone())
    }

    /// "Find our order": `GET /orders?client_code=…&order_number=…`, paged, rows filtered
    /// locally (see [`wire::OrderRow::is_order`]); stops at the first page with a match.
    async fn find_order(&self, order_number: &str) -> Result<Option<wire::OrderRow>> {
        let client_code = self.settings.client_code.as_str();
        let mut found = Vec::new();
        self.client
            .paginate(
                &["orders"],
                &[
                    self.client_code(),
                    ("order_number", order_number.to_owned()),
                ],
                None,
                |rows: Vec<wire::OrderRow>| {
                    found.extend(
                        rows.into_iter()
                            .filter(|r| r.is_order(order_number, client_code)),
                    );
                    if found.is_empty() {
                        ControlFlow::Continue(())
                    } else {
                        ControlFlow::Break(())
                    }
                },
            )
            .await?;
        if found.len() > 1 {
            tracing::warn!(
                order_id = order_number,
                count = found.len(),
                "sphere has several orders with one order number; reusing one"
            );
        }
        Ok(wire::pick_existing(found))
    }

    /// `GET /orders/{order_id}`; `None` when SphereWMS answers 404.
    async fn read_order(&self, id: u64, shipment: &ShipmentRef) -> Result<Option<wire::OrderRow>> {
        let request = get(&["orders", &id.to_string()]);
        let endpoint = request.endpoint().to_owned();
        let response = self.client.send(request).await?;
        if response.status == 404 {
            return Ok(None);
        }
        if !response.is_success() {
            let what = order_label(id, &shipment.order_id);
            return Err(error_for(
                self.client.http(),
                &endpoint,
                &response,
                Missing::Order(&what),
            ));
        }
        let rows: wire::OneOrMany<wire::OrderRow> =
            self.client.http().decode(&endpoint, &response.body)?;
        let rows = rows.into_vec();
        // A list answer is searched for the id asked; a single object is taken as is.
        let row = if rows.len() == 1 {
            rows.into_iter().next()
        } else {
            rows.into_iter().find(|r| r.order_id == Some(id))
        };
        row.map(Some)
            .ok_or_else(|| Error::protocol(format!("sphere answered {endpoint} without the order")))
    }

    /// The order's current raw status (`None` when the row has none), or `NotFound`.
    async fn current_state(&self, id: u64, shipment: &ShipmentRef) -> Result<Option<String>> {
        match self.read_order(id, shipment).await? {
            Some(row) => Ok(row.status().map(str::to_owned)),
            None => Err(Error::NotFound {
                what: order_label(id, &shipment.order_id),
            }),
        }
    }

    /// What to call the state of a refused order without a status: SphereWMS's message.
    fn refusal_state(&self, response: &Response) -> String {
        let message = self
            .client
            .http()
            .scrub(&wire::error_details(&response.body).message);
        if message.is_empty() {
            format!("refused with HTTP {}", response.status)
        } else {
            message
        }
    }

    /// The shipments of order `id` (number `order_number`) from `GET /shipments`.
    async fn shipments_of(&self, id: u64, order_number: &str) -> Result<Vec<wire::ShipmentRow>> {
        let rows: Vec<wire::ShipmentRow> = self
            .client
            .list(
                &["shipments"],
                &[
                    self.client_code(),
                    ("order_number", order_number.to_owned()),
                ],
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter(|s| s.is_of(id, order_number))
            .collect())
    }

    /// The shipment for `order` at SphereWMS order `row`: no tracking number yet (shipments
    /// come later), the status the row reports.
    fn shipment_from(&self, order: &Order, row: &wire::OrderRow) -> Result<Shipment> {
        let id = row.order_id.ok_or_else(|| {
            Error::protocol(format!(
                "sphere returned order {} without an order_id",
                order.id
            ))
        })?;
        Ok(Shipment {
            reference: ShipmentRef::new(order.id.clone(), id.to_string()),
            tracking_number: None,
            status: wire::order_status(row, &self.table, self.settings.utc_offset_secs, Utc::now()),
        })
    }

    /// The shipment of an accepted create: the `order_id` of the answer, else (a sparse or
    /// unreadable answer) the order found by number.
    async fn created(&self, order: &Order, response: &Response) -> Result<Shipment> {
        let answered = serde_json::from_slice::<wire::OneOrMany<wire::OrderRow>>(&response.body)
            .ok()
            .and_then(|rows| rows.into_vec().into_iter().find(|r| r.order_id.is_some()));
        if let Some(row) = answered {
            return self.shipment_from(order, &row);
        }
        match self.find_order(order.id.as_str()).await? {
            Some(row) => self.shipment_from(order, &row),
            None => Err(Error::protocol(format!(
                "sphere accepted order {} without an order_id and it cannot be found: {}",
                order.id,
                self.client.http().excerpt(&response.body)
            ))),
        }
    }

    /// The outcome of a refused update or void (400/409/422) of order `id`, judged by its
    /// status read again: `Ok(state)` when it is too late, `Err(refusal)` otherwise.
    async fn judge_refusal(
        &self,
        id: u64,
        shipment: &ShipmentRef,
        response: &Response,
        endpoint: &str,
    ) -> Result<std::result::Result<String, Error>> {
        let what = order_label(id, &shipment.order_id);
        let refusal = error_for(
            self.client.http(),
            endpoint,
            response,
            Missing::Order(&what),
        );
        Ok(match self.current_state(id, shipment).await? {
            Some(state)
                if response.status == 409 || editability(&state) == Editability::TooLate =>
            {
                Ok(state)
            }
            None if response.status == 409 => Ok(self.refusal_state(response)),
            _ => Err(refusal),
        })
    }

    async fn track_one(
        &self,
        shipment: &ShipmentRef,
        now: DateTime<Utc>,
    ) -> Result<Option<TrackingUpdate>> {
        let not_found = || TrackingUpdate::NotFound {
            shipment: shipment.clone(),
            at: now,
        };
        let Some(id) = order_id_of(shipment) else {
            return Ok(Some(not_found()));
        };
        let Some(row) = self.read_order(id, shipment).await? else {
            return Ok(Some(not_found()));
        };
        let Some(mut status) =
            wire::order_status(&row, &self.table, self.settings.utc_offset_secs, now)
        else {
            tracing::warn!(order_id = %shipment.order_id, shipment = id, "sphere order has no status: no news");
            return Ok(None);
        };
        if may_have_shipments(status.code) {
            let number = row
                .order_number
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .unwrap_or(shipment.order_id.as_str());
            let shipments = self.shipments_of(id, number).await?;
            status = wire::with_shipments(status, &shipments);
        }
        Ok(Some(TrackingUpdate::Statuses {
            shipment: shipment.clone(),
            statuses: vec![status],
        }))
    }
}

#[async_trait]
impl FulfillmentProvider for SphereProvider {
    fn kind(&self) -> &str {
        "sphere"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(self.settings.max_track_batch, DEFAULT_STOCK_BATCH)
            .with_update(true)
            .with_cancel(true)
            .with_stock(true)
            .with_address_directory(self.settings.customer_directory)
    }

    fn waybill_form(&self) -> Cow<'_, WaybillForm> {
        Cow::Borrowed(&self.form)
    }

    async fn create_order(&self, order: &Order, waybill: &Waybill) -> Result<Shipment> {
        order.validate()?;
        self.form.validate(waybill)?;
        let body = wire::order_body(order, waybill, &self.order_config)?;
        let request = with_json(Request::new(Method::POST, &["orders"]), &body)?;
        let endpoint = request.endpoint().to_owned();
        // The order number is the idempotency key: reuse what SphereWMS already has.
        if let Some(row) = self.find_order(order.id.as_str()).await? {
            return self.shipment_from(order, &row);
        }
        let max_reposts = self.client.http().config().retry.max_retries;
        let mut backoff = self.client.http().backoff();
        let mut reposts = 0;
        loop {
            // Not idempotent for the HTTP client, which then re-sends only what surely was not
            // acted on (a refused connection, 408, 429). After a 5xx, a timeout or a dropped
            // connection the order may exist: only a lookup may decide to post again.
            let ambiguous = match self.client.send(request.clone().idempotent(false)).await {
                Ok(response) if response.is_success() => {
                    return self.created(order, &response).await;
                }
                Ok(response) if response.status >= 500 => {
                    error_for(self.client.http(), &endpoint, &response, Missing::Action)
                }
                Ok(response) => {
                    let details = wire::error_details(&response.body);
                    let duplicate = response.status == 409
                        || (matches!(response.status, 400 | 422) && wire::is_duplicate(&details));
                    if !duplicate {
                        return Err(error_for(
                            self.client.http(),
                            &endpoint,
                            &response,
                            Missing::Action,
                        ));
                    }
                    return match self.find_order(order.id.as_str()).await? {
                        Some(row) => self.shipment_from(order, &row),
                        None => Err(Error::Conflict {
                            message: format!(
                                "sphere refused order {} as a duplicate, but no order with that \
                                 number can be found: {}",
                                order.id,
                                self.client.http().scrub(&details.message)
                            ),
                        }),
                    };
                }
                Err(ambiguous @ (Error::Timeout { .. } | Error::Transport { .. })) => ambiguous,
                Err(other) => return Err(other),
            };
            tracing::warn!(
                order_id = %order.id,
                error = %ambiguous,
                "sphere create may or may not have been stored; looking it up"
            );
            match self.find_order(order.id.as_str()).await {
                Ok(Some(row)) => return self.shipment_from(order, &row),
                Ok(None) if reposts < max_reposts => {
                    reposts += 1;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Ok(None) => return Err(ambiguous),
                // Without an answer to "does it exist", posting again could make two.
                Err(lookup) => {
                    tracing::warn!(order_id = %order.id, error = %lookup, "sphere lookup failed");
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
        let body = wire::order_body(order, waybill, &self.order_config)?;
        if let Some(state) = self.current_state(id, shipment).await?
            && editability(&state) == Editability::TooLate
        {
            return Ok(UpdateOutcome::TooLate { state });
        }
        // A full replacement: repeating it is harmless.
        let request = with_json(
            Request::new(Method::POST, &["orders", &id.to_string()]),
            &body,
        )?
        .idempotent(true);
        let endpoint = request.endpoint().to_owned();
        let response = self.client.send(request).await?;
        if response.is_success() {
            return Ok(UpdateOutcome::Applied);
        }
        if matches!(response.status, 400 | 409 | 422) {
            return match self
                .judge_refusal(id, shipment, &response, &endpoint)
                .await?
            {
                Ok(state) => Ok(UpdateOutcome::TooLate { state }),
                Err(refusal) => Err(refusal),
            };
        }
        let what = order_label(id, &shipment.order_id);
        Err(error_for(
            self.client.http(),
            &endpoint,
            &response,
            Missing::Order(&what),
        ))
    }

    async fn cancel_order(&self, shipment: &ShipmentRef) -> Result<CancelOutcome> {
        let id = require_order_id(shipment)?;
        if let Some(state) = self.current_state(id, shipment).await? {
            if is_void_raw(&state) {
                return Ok(CancelOutcome::AlreadyCancelled { state: Some(state) });
            }
            if editability(&state) == Editability::TooLate {
                return Ok(CancelOutcome::TooLate { state });
            }
        }
        // Voiding twice leaves the order void; a refused repeat is judged below.
        let request = Request::new(Method::DELETE, &["orders", &id.to_string()]).idempotent(true);
        let endpoint = request.endpoint().to_owned();
        let response = self.client.send(request).await?;
        if response.is_success() {
            // The answer names the status the order is in now (`void`), when it is readable.
            let state = serde_json::from_slice::<wire::OneOrMany<wire::OrderRow>>(&response.body)
                .ok()
                .and_then(|rows| {
                    rows.into_vec()
                        .into_iter()
                        .find_map(|row| row.status().map(str::to_owned))
                });
            return Ok(CancelOutcome::Cancelled { state });
        }
        if matches!(response.status, 400 | 409 | 422) {
            // The void rule is about the order's state (doc U3): whatever the refusal says,
            // the state read again decides, and a void order counts as cancelled.
            return Ok(match self.current_state(id, shipment).await? {
                Some(state) if is_void_raw(&state) => {
                    CancelOutcome::AlreadyCancelled { state: Some(state) }
                }
                Some(state) => CancelOutcome::TooLate { state },
                None => CancelOutcome::TooLate {
                    state: self.refusal_state(&response),
                },
            });
        }
        let what = order_label(id, &shipment.order_id);
        Err(error_for(
            self.client.http(),
            &endpoint,
            &response,
            Missing::Order(&what),
        ))
    }

    async fn track(&self, shipments: &[ShipmentRef]) -> Result<Vec<TrackingUpdate>> {
        let now = Utc::now();
        let mut updates = Vec::with_capacity(shipments.len());
        // One order per lookup: the batches only bound how much one call does, and the reads
        // run one after the other because the instance's rate limit, not latency, is what
        // bounds throughput (and the orchestrator already runs instances concurrently).
        for batch in shipments.chunks(self.settings.max_track_batch.max(1)) {
            for shipment in batch {
                match self.track_one(shipment, now).await {
                    Ok(Some(update)) => updates.push(update),
                    Ok(None) => {}
                    // Every other read would fail the same way: the whole call fails.
                    Err(error @ (Error::Unauthenticated { .. } | Error::RateLimited { .. })) => {
                        return Err(error);
                    }
                    // One order's read failing fails that shipment only.
                    Err(error) => {
                        tracing::warn!(
                            order_id = %shipment.order_id,
                            shipment = %shipment.provider_ref,
                            %error,
                            "sphere tracking of one order failed"
                        );
                        updates.push(TrackingUpdate::failed(shipment.clone(), &error));
                    }
                }
            }
        }
        Ok(updates)
    }

    async fn stock(&self, skus: &[Sku]) -> Result<Vec<StockLevel>> {
        let location = self.settings.location_id;
        let client_code = self.settings.client_code.as_str();
        let filters = vec![self.client_code(), ("location_id", location.to_string())];
        if skus.is_empty() {
            let rows: Vec<wire::InventoryRow> = self.client.list(&["inventory"], &filters).await?;
            return Ok(wire::stock_levels(&rows, location, client_code));
        }
        let mut levels = Vec::with_capacity(skus.len());
        for (i, sku) in skus.iter().enumerate() {
            if skus[..i].contains(sku) {
                continue;
            }
            let mut query = filters.clone();
            query.push(("product_code", sku.as_str().to_owned()));
            let rows: Vec<wire::InventoryRow> = self.client.list(&["inventory"], &query).await?;
            levels.extend(
                wire::stock_levels(&rows, location, client_code)
                    .into_iter()
                    .filter(|level| level.sku == *sku),
            );
        }
        Ok(levels)
    }

    async fn search_addresses(&self, query: &AddressQuery) -> Result<Vec<AddressOption>> {
        if !self.settings.customer_directory {
            return Err(Error::unsupported(Operation::SearchAddresses, "sphere"));
        }
        // SphereWMS has no pickup points or lockers, only ship-to customers (doors).
        if query.pickup_points_only {
            return Ok(Vec::new());
        }
        // `limit: 0` is everything (the orchestrator's directory index asks so): page
        // through the whole listing, bounded by the client's page cap.
        let want = if query.limit > 0 {
            query.limit
        } else {
            usize::MAX
        };
        let mut filters = vec![self.client_code()];
        if let Some(keyword) = wire::customer_keyword(query) {
            filters.push(("keyword", keyword));
        }
        let mut found = Vec::new();
        self.client
            .paginate(
                &["customers"],
                &filters,
                Some(want.min(self.client.page_size())),
                |rows: Vec<wire::CustomerRow>| {
                    found.extend(
                        rows.iter()
                            .filter(|row| row.matches(query))
                            .map(wire::CustomerRow::to_address_option),
                    );
                    if found.len() >= want {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                },
            )
            .await?;
        found.truncate(want);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_are_decimal_integers_only() {
        let r = |text: &str| ShipmentRef::new("SO-1", text);
        assert_eq!(order_id_of(&r("88213")), Some(88213));
        assert_eq!(order_id_of(&r(" 88213 ")), Some(88213));
        for bad in ["", "WH1", "-1", "+1", "1.0", "99999999999999999999999", "٣"] {
            assert_eq!(order_id_of(&r(bad)), None, "{bad}");
            let err = require_order_id(&r(bad)).unwrap_err();
            assert_eq!(err.field_errors()[0].path, "provider_ref");
        }
    }
}
