//! The Wapi provider: Wapi's documented "Warehouse API" (`warehouse-api*.azurewebsites.net`)
//! over the shared [`http`](crate::http) client.
//!
//! Files: `builder.rs` (configuration), `client.rs` (signing, auth headers, HTTP status →
//! error), `wire.rs` (JSON shapes and their mapping to the model), `status.rs` (the status
//! table and which states still allow changes). This file holds the
//! [`FulfillmentProvider`] implementation.
//!
//! Assumptions the [`protocol`] notes mark `[assumed]` and this adapter follows:
//! - a create is retried with the identical signed bytes after a timeout or a 5xx (Wapi
//!   refuses a duplicate `orderNumber`); after a refused duplicate the tracking endpoint is
//!   asked with the order number, and a row about a WH number is adopted; where Wapi does not
//!   answer that way the refusal is [`Error::Conflict`] for an operator to attach;
//! - within one process, a repeated create of an order this instance created returns the
//!   remembered shipment without calling Wapi (so `create_order` is idempotent here);
//! - update and cancel answer `TooLate` without a call when the last status this instance saw
//!   is past editing; otherwise the real call is made and Wapi's reply wins;
//! - tracking uses `getDetailedOrderStatus` (timestamps), in batches of 50; history
//!   timestamps are UTC unless an offset is configured;
//! - stock uses `getProductRemainderV2`, one call per request filtered locally;
//! - no pickup-point directory exists at Wapi: `search_addresses` is `Unsupported` unless the
//!   simulator-only endpoint is enabled explicitly.

mod builder;
mod client;
/// The protocol notes this adapter implements: the wire reference it was built from, every
/// field tagged as documented by Wapi (with the source) or assumed by us. Section numbers
/// (§) in this adapter's documentation refer to it.
#[allow(
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls,
    reason = "the notes are Markdown for people: [doc R]-style tags are not links"
)]
#[doc = include_str!("../../../docs/protocols/wapi.md")]
pub mod protocol {}
mod status;
mod wire;

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;

pub use builder::{DEFAULT_RATE_LIMIT, DEFAULT_TRACK_BATCH, PRODUCTION_URL, TEST_URL, WapiBuilder};
pub use status::default_comment_rules;
#[cfg(all(test, feature = "simulator"))]
pub(crate) use wire::parse_status_date;
/// The keys of Wapi's waybill form (`Waybill::values`), as the README lists them.
pub use wire::{
    CHECK_BEFORE_COD, COMMENT, COURIER_SERVICE, PREFERRED_DELIVERY_DATE,
    PREFERRED_DELIVERY_DAY_PART,
};

use self::client::{WapiClient, endpoint, error_for};
use self::status::{Editability, cancel_editability, update_editability};
use crate::error::{Error, Operation, Result};
use crate::model::{
    AddressOption, AddressQuery, CommentRules, Order, Shipment, ShipmentRef, Sku, StatusTable,
    StockLevel, TrackingUpdate, Waybill, WaybillForm,
};
use crate::provider::{CancelOutcome, Capabilities, FulfillmentProvider, UpdateOutcome};

/// Most entries kept in each of the in-process memories (created shipments, last statuses).
const MEMORY_CAP: usize = 100_000;

/// Instance settings other than transport, fixed at build.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) warehouse: Option<(String, bool)>,
    pub(crate) stock_country: Option<String>,
    pub(crate) max_track_batch: usize,
    pub(crate) utc_offset_secs: i32,
    pub(crate) cancel_after_assignment: bool,
    pub(crate) pickup_points: bool,
    pub(crate) comment_rules: CommentRules,
}

/// A bounded insertion-ordered map: the oldest entry goes when the cap is reached.
#[derive(Debug)]
struct Memory<V> {
    /// Keys are shared with `order`: one allocation per key.
    map: HashMap<Arc<str>, V>,
    order: VecDeque<Arc<str>>,
}

impl<V> Default for Memory<V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<V: Clone> Memory<V> {
    fn get(&self, key: &str) -> Option<V> {
        self.map.get(key).cloned()
    }

    fn put(&mut self, key: &str, value: V) {
        if let Some(known) = self.map.get_mut(key) {
            *known = value;
            return;
        }
        let key: Arc<str> = Arc::from(key);
        self.map.insert(Arc::clone(&key), value);
        self.order.push_back(key);
        if self.order.len() > MEMORY_CAP
            && let Some(old) = self.order.pop_front()
        {
            self.map.remove(&old);
        }
    }
}

/// One Wapi account as a [`FulfillmentProvider`]; build it with [`WapiBuilder`].
#[derive(Debug)]
pub struct WapiProvider {
    client: WapiClient,
    settings: Settings,
    defaults: wire::WireDefaults,
    table: StatusTable,
    form: WaybillForm,
    /// Order id → shipment this instance created.
    created: Mutex<Memory<Shipment>>,
    /// WH number → the last raw status seen.
    last_status: Mutex<Memory<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl WapiProvider {
    pub(crate) fn new(client: WapiClient, settings: Settings, form: WaybillForm) -> Self {
        let defaults = wire::WireDefaults {
            warehouse: settings.warehouse.clone(),
            // No implicit courier: an Inpost Packomat order must carry none (protocol §4),
            // so the service comes from the waybill (or the instance's waybill defaults).
            courier_service: None,
        };
        Self {
            form,
            client,
            defaults,
            table: status::status_table(),
            settings,
            created: Mutex::default(),
            last_status: Mutex::default(),
        }
    }

    /// The status table this instance maps raw statuses with.
    pub fn status_table(&self) -> &StatusTable {
        &self.table
    }

    /// Reads the current raw status of one WH number via `POST /tracking`.
    async fn current_raw_status(&self, wh_number: &str) -> Result<Option<String>> {
        const PATH: &[&str] = &["tracking"];
        let request = wire::TrackingRequest {
            tracking_numbers: vec![wh_number.to_owned()],
        };
        let response = self.client.post_ok(PATH, &request, true).await?;
        let parsed: wire::TrackingResponse =
            self.client.http().decode(&endpoint(PATH), &response.body)?;
        let raw = parsed
            .statuses
            .into_iter()
            .find(|s| s.tracking_number == wh_number)
            .map(|s| s.delivery_status);
        if let Some(raw) = &raw {
            lock(&self.last_status).put(wh_number, raw.clone());
        }
        Ok(raw)
    }

    /// The shipment of `order` when Wapi refused its create as a repeated number (the first
    /// create went through but its answer was lost): Wapi documents no lookup by order
    /// number, so the tracking endpoint is asked with the order number in place of a WH
    /// number; where it answers with a row about another number, that number is the WH
    /// number \[assumed]. Where it does not, the order is for an operator to attach
    /// (`Orchestrator::attach_shipment`).
    async fn adopt_existing(&self, order: &Order) -> Result<Shipment> {
        const PATH: &[&str] = &["tracking"];
        let number = order.id.as_str();
        let request = wire::TrackingRequest {
            tracking_numbers: vec![number.to_owned()],
        };
        let found = match self.client.post_ok(PATH, &request, true).await {
            Ok(response) => self
                .client
                .http()
                .decode::<wire::TrackingResponse>(&endpoint(PATH), &response.body)
                .map(|parsed| wire::wh_number_for(parsed, number)),
            Err(error) => Err(error),
        };
        match found {
            Ok(Some((wh, raw))) => {
                lock(&self.last_status).put(&wh, raw);
                let shipment = Shipment {
                    reference: ShipmentRef::new(order.id.clone(), wh.clone()),
                    tracking_number: Some(wh),
                    status: None,
                };
                lock(&self.created).put(number, shipment.clone());
                Ok(shipment)
            }
            outcome => {
                if let Err(error) = outcome {
                    tracing::warn!(order_id = number, %error, "wapi lookup by order number failed");
                }
                Err(Error::Conflict {
                    message: format!(
                        "order {number} already exists at wapi and its WH number could not be \
                         looked up: an operator must attach it"
                    ),
                })
            }
        }
    }

    fn known_status(&self, wh_number: &str) -> Option<String> {
        lock(&self.last_status).get(wh_number)
    }

    async fn track_batch(&self, batch: &[ShipmentRef]) -> Result<Vec<TrackingUpdate>> {
        const PATH: &[&str] = &["tracking", "getDetailedOrderStatus"];
        let request = wire::TrackingRequest {
            tracking_numbers: batch.iter().map(|s| s.provider_ref.clone()).collect(),
        };
        let response = self.client.post_ok(PATH, &request, true).await?;
        let details: Vec<wire::DetailedStatus> =
            self.client.http().decode(&endpoint(PATH), &response.body)?;
        let now = Utc::now();
        let mut asked: HashMap<&str, &ShipmentRef> = HashMap::with_capacity(batch.len());
        for shipment in batch {
            asked
                .entry(shipment.provider_ref.as_str())
                .or_insert(shipment);
        }
        let mut updates = Vec::with_capacity(details.len());
        let mut seen = Vec::with_capacity(details.len());
        for detail in details {
            // A number we did not ask for is ignored; one we asked for but missing is "no news".
            let Some(&shipment) = asked.get(&*detail.tracking_number) else {
                continue;
            };
            let mapped = wire::map_detailed(
                &detail,
                &self.table,
                &self.settings.comment_rules,
                self.settings.utc_offset_secs,
                now,
            );
            match mapped {
                Ok(statuses) => {
                    updates.push(TrackingUpdate::Statuses {
                        shipment: shipment.clone(),
                        statuses,
                    });
                    seen.push((detail.tracking_number, detail.delivery_status));
                }
                // One unreadable entry fails its shipment only; the others are applied.
                Err(error) => {
                    tracing::warn!(
                        order_id = %shipment.order_id,
                        shipment = %shipment.provider_ref,
                        %error,
                        "wapi tracking answer for one shipment cannot be read"
                    );
                    updates.push(TrackingUpdate::failed(shipment.clone(), &error));
                }
            }
        }
        // Remembered only once the whole answer was understood, under one lock.
        let mut last_status = lock(&self.last_status);
        for (number, raw) in seen {
            last_status.put(&number, raw.into_owned());
        }
        Ok(updates)
    }
}

#[async_trait]
impl FulfillmentProvider for WapiProvider {
    fn kind(&self) -> &str {
        "wapi"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(self.settings.max_track_batch, 1_000)
            .with_update(true)
            .with_cancel(true)
            .with_stock(true)
            .with_address_directory(self.settings.pickup_points)
    }

    fn waybill_form(&self) -> Cow<'_, WaybillForm> {
        Cow::Borrowed(&self.form)
    }

    async fn create_order(&self, order: &Order, waybill: &Waybill) -> Result<Shipment> {
        if let Some(existing) = lock(&self.created).get(order.id.as_str()) {
            return Ok(existing);
        }
        order.validate()?;
        self.form.validate(waybill)?;
        const PATH: &[&str] = &["outbounds"];
        let body = wire::create_body(order, waybill, &self.defaults)?;
        // Wapi refuses a second `orderNumber`, so re-sending the same bytes after a timeout
        // cannot create a second order.
        let response = self.client.post(PATH, &body, true).await?;
        if !response.is_success() {
            let error = error_for(self.client.http(), &endpoint(PATH), &response);
            return match error {
                Error::Validation { fields, .. } if looks_like_duplicate(&fields) => {
                    self.adopt_existing(order).await
                }
                other => Err(other),
            };
        }
        let created: wire::CreatedResponse =
            self.client.http().decode(&endpoint(PATH), &response.body)?;
        if created.tracking_number.trim().is_empty() {
            return Err(Error::protocol(format!(
                "wapi created order {} without a WH number",
                order.id
            )));
        }
        let shipment = Shipment {
            reference: ShipmentRef::new(order.id.clone(), created.tracking_number.clone()),
            tracking_number: Some(created.tracking_number),
            status: None,
        };
        lock(&self.created).put(order.id.as_str(), shipment.clone());
        Ok(shipment)
    }

    async fn update_order(
        &self,
        shipment: &ShipmentRef,
        order: &Order,
        waybill: &Waybill,
    ) -> Result<UpdateOutcome> {
        if let Some(raw) = self.known_status(&shipment.provider_ref)
            && update_editability(&raw) == Editability::TooLate
        {
            return Ok(UpdateOutcome::TooLate { state: raw });
        }
        order.validate()?;
        self.form.validate(waybill)?;
        const PATH: &[&str] = &["outbounds", "UpdateOrder"];
        let body = wire::UpdateOrderBody {
            order: wire::create_body(order, waybill, &self.defaults)?,
            tracking_number: shipment.provider_ref.clone(),
        };
        // A full replacement: repeating it is harmless.
        let response = self.client.post(PATH, &body, true).await?;
        if response.is_success() {
            // The 200 body is not valid JSON in the docs; any 200 means updated.
            return Ok(UpdateOutcome::Applied);
        }
        let text = wire::error_text(&response.body);
        match wire::classify_update_refusal(&text) {
            Some(wire::UpdateRefusal::NoChanges) => Ok(UpdateOutcome::NoChange),
            Some(wire::UpdateRefusal::CriticalIncident) => Ok(UpdateOutcome::TooLate {
                state: "critical incident".into(),
            }),
            Some(wire::UpdateRefusal::CannotBeEdited) => {
                let state = self
                    .current_raw_status(&shipment.provider_ref)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "cannot be edited".into());
                Ok(UpdateOutcome::TooLate { state })
            }
            None => Err(error_for(self.client.http(), &endpoint(PATH), &response)),
        }
    }

    async fn cancel_order(&self, shipment: &ShipmentRef) -> Result<CancelOutcome> {
        if let Some(raw) = self.known_status(&shipment.provider_ref) {
            // A repeated cancel is answered as such, not as "too late" (conformance contract
            // `cancel_order (inside the window)`).
            if status::is_cancelled_raw(&raw) {
                return Ok(CancelOutcome::AlreadyCancelled { state: Some(raw) });
            }
            if cancel_editability(&raw, self.settings.cancel_after_assignment)
                == Editability::TooLate
            {
                return Ok(CancelOutcome::TooLate { state: raw });
            }
        }
        const PATH: &[&str] = &["outbounds", "cancelOrder"];
        let body = wire::CancelOrderBody {
            tracking_number: shipment.provider_ref.clone(),
            order_number: shipment.order_id.as_str().to_owned(),
            source_order_id: String::new(),
            comment: String::new(),
        };
        let response = self.client.post(PATH, &body, true).await?;
        if response.is_success() {
            // The 200 body is prose; the order's status in Wapi's own vocabulary is now this.
            lock(&self.last_status).put(&shipment.provider_ref, status::CANCELLED.to_owned());
            return Ok(CancelOutcome::Cancelled {
                state: Some(status::CANCELLED.to_owned()),
            });
        }
        // Credentials, throttling and server faults are errors as such; any other refusal is
        // judged by the order's real state (protocol §6).
        if matches!(response.status, 401 | 404 | 408 | 429) || response.status >= 500 {
            return Err(error_for(self.client.http(), &endpoint(PATH), &response));
        }
        let message = self.client.http().scrub(&wire::error_text(&response.body));
        match self.current_raw_status(&shipment.provider_ref).await? {
            Some(raw) if status::is_cancelled_raw(&raw) => {
                Ok(CancelOutcome::AlreadyCancelled { state: Some(raw) })
            }
            // Still pending and refused all the same: not a bad request of ours.
            Some(raw) if status::is_pending_raw(&raw) => Err(Error::Conflict {
                message: format!(
                    "wapi refused to cancel order {} ({}) while it is {raw}: {message}",
                    shipment.order_id, shipment.provider_ref
                ),
            }),
            Some(raw) => Ok(CancelOutcome::TooLate { state: raw }),
            None => Err(Error::NotFound {
                what: format!(
                    "wapi order {} ({})",
                    shipment.provider_ref, shipment.order_id
                ),
            }),
        }
    }

    async fn track(&self, shipments: &[ShipmentRef]) -> Result<Vec<TrackingUpdate>> {
        let mut updates = Vec::with_capacity(shipments.len());
        for batch in shipments.chunks(self.settings.max_track_batch.max(1)) {
            updates.extend(self.track_batch(batch).await?);
        }
        Ok(updates)
    }

    async fn stock(&self, skus: &[Sku]) -> Result<Vec<StockLevel>> {
        const PATH: &[&str] = &["stock", "getProductRemainderV2"];
        let request = wire::StockRequestV2 {
            country: self.settings.stock_country.clone(),
            product_name: None,
            warehouse_name: self
                .settings
                .warehouse
                .as_ref()
                .map(|(code, _)| code.clone()),
        };
        let response = self.client.post_ok(PATH, &request, true).await?;
        let rows: wire::OneOrMany<wire::StockRowV2> =
            self.client.http().decode(&endpoint(PATH), &response.body)?;
        Ok(rows
            .into_vec()
            .iter()
            .map(wire::StockRowV2::to_stock_level)
            .filter(|level| skus.is_empty() || skus.contains(&level.sku))
            .collect())
    }

    async fn search_addresses(&self, query: &AddressQuery) -> Result<Vec<AddressOption>> {
        if !self.settings.pickup_points {
            return Err(Error::unsupported(Operation::SearchAddresses, "wapi"));
        }
        const PATH: &[&str] = &["pickupPoints", "search"];
        let mut request = wire::PickupPointSearch::from_query(query);
        if query.limit > 0 {
            let response = self.client.post_ok(PATH, &request, true).await?;
            let found: wire::PickupPointsResponse =
                self.client.http().decode(&endpoint(PATH), &response.body)?;
            return Ok(found.to_options());
        }
        // `limit: 0` is everything: full pages until a short one. A server that ignores
        // `offset` answers the first page again, which adds nothing: stop there.
        let mut found: Vec<AddressOption> = Vec::new();
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        for page in 0..MAX_DIRECTORY_PAGES {
            request.limit = Some(DIRECTORY_PAGE);
            request.offset = (page > 0).then_some(page * DIRECTORY_PAGE);
            let response = self.client.post_ok(PATH, &request, true).await?;
            let answer: wire::PickupPointsResponse =
                self.client.http().decode(&endpoint(PATH), &response.body)?;
            let options = answer.to_options();
            let full = options.len() >= DIRECTORY_PAGE;
            let before = found.len();
            for option in options {
                if seen.insert(option.id.clone()) {
                    found.push(option);
                }
            }
            if !full || found.len() == before {
                return Ok(found);
            }
        }
        Err(Error::protocol(format!(
            "wapi {} still returned full pages after {MAX_DIRECTORY_PAGES} pages of {DIRECTORY_PAGE}",
            endpoint(PATH)
        )))
    }
}

/// Points asked per page when a directory search wants everything (`limit: 0`): the most our
/// `POST /pickupPoints/search` returns at once (protocol §13).
const DIRECTORY_PAGE: usize = 100;

/// Most pages one directory search walks before it gives up as a listing that never ends.
const MAX_DIRECTORY_PAGES: usize = 1_000;

/// Whether a 400's message says the order number is already taken. The reply to a duplicate
/// is undocumented; these are the words such APIs use.
fn looks_like_duplicate(fields: &[crate::error::FieldError]) -> bool {
    fields.iter().any(|f| {
        let text = f.reason.to_lowercase();
        ["duplicate", "already exists", "already exist", "unique"]
            .iter()
            .any(|w| text.contains(w))
    })
}
