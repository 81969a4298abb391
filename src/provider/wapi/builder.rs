//! [`WapiBuilder`]: configuration of one Wapi account, validated in [`WapiBuilder::build`].

use std::fmt;

use super::WapiProvider;
use super::client::WapiClient;
use crate::error::{Error, FieldError, Result};
use crate::http::{
    HttpClient, HttpConfig, RateLimit, RetryConfig, Secret, check_base_url, redacted_url,
};
use crate::model::CommentRules;

/// Production base URL of the documented Warehouse API.
pub const PRODUCTION_URL: &str = "https://warehouse-api.azurewebsites.net/api";
/// Test base URL of the documented Warehouse API.
pub const TEST_URL: &str = "https://warehouse-api-test.azurewebsites.net/api";
/// Default requests per second per instance (protocol §12, an assumption: Wapi documents
/// no limit).
pub const DEFAULT_RATE_LIMIT: u32 = 5;
/// Most WH numbers per tracking request (protocol §12, assumed).
pub const DEFAULT_TRACK_BATCH: usize = 50;

/// Builds a [`WapiProvider`].
///
/// ```
/// use fulfillkit::provider::wapi::WapiBuilder;
///
/// let wapi = WapiBuilder::new("2f0c…client-guid", "hmac-secret")
///     .with_test_environment()
///     .with_warehouse("ITWH6", false)
///     .with_courier_service("SDA")
///     .with_instance_label("wapi-it-cod")
///     .build()?;
/// # Ok::<(), fulfillkit::Error>(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until it is built"]
pub struct WapiBuilder {
    client_id: String,
    secret: Secret,
    base_url: String,
    instance: String,
    warehouse: Option<(String, bool)>,
    courier_services: Vec<String>,
    stock_country: Option<String>,
    http: HttpConfig,
    max_track_batch: usize,
    utc_offset_secs: i32,
    cancel_after_assignment: bool,
    pickup_points: bool,
    comment_rules: CommentRules,
    whole_account_stock: bool,
}

impl fmt::Debug for WapiBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client id is not a secret, but it identifies the account: keep it out of logs.
        f.debug_struct("WapiBuilder")
            .field("base_url", &redacted_url(&self.base_url))
            .field("instance", &self.instance)
            .field("warehouse", &self.warehouse)
            .field("courier_services", &self.courier_services)
            .field("max_track_batch", &self.max_track_batch)
            .finish_non_exhaustive()
    }
}

impl WapiBuilder {
    /// A builder for the account with `client_id` (the GUID Wapi issued) and its HMAC
    /// `secret`, against the production URL, 5 requests/s, default retries and timeouts.
    pub fn new(client_id: impl Into<String>, secret: impl Into<Secret>) -> Self {
        let http = HttpConfig {
            rate_limit: Some(RateLimit::per_second(DEFAULT_RATE_LIMIT)),
            ..HttpConfig::default()
        };
        Self {
            client_id: client_id.into(),
            secret: secret.into(),
            base_url: PRODUCTION_URL.into(),
            instance: "wapi".into(),
            warehouse: None,
            courier_services: Vec::new(),
            stock_country: None,
            http,
            max_track_batch: DEFAULT_TRACK_BATCH,
            utc_offset_secs: 0,
            cancel_after_assignment: false,
            pickup_points: false,
            comment_rules: super::default_comment_rules(),
            whole_account_stock: false,
        }
    }

    /// A builder from `WAPI_CLIENT_ID`, `WAPI_SECRET` and (optional) `WAPI_BASE_URL`.
    /// Missing values are reported by [`WapiBuilder::build`].
    pub fn from_env() -> Self {
        let var = |name| std::env::var(name).unwrap_or_default();
        let mut builder = Self::new(var("WAPI_CLIENT_ID"), var("WAPI_SECRET"));
        if let Ok(url) = std::env::var("WAPI_BASE_URL") {
            builder.base_url = url;
        }
        builder
    }

    /// Sets the base URL (default [`PRODUCTION_URL`]), e.g. a simulator's.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Uses Wapi's test environment ([`TEST_URL`]).
    pub fn with_test_environment(self) -> Self {
        self.with_base_url(TEST_URL)
    }

    /// Names this instance in logs and spans (default `wapi`).
    pub fn with_instance_label(mut self, label: impl Into<String>) -> Self {
        self.instance = label.into();
        self
    }

    /// Prefers warehouse `code` (`whCode`); with `mandatory`, Wapi may not fall back to
    /// another warehouse (`whCodeAsMandatory`).
    pub fn with_warehouse(mut self, code: impl Into<String>, mandatory: bool) -> Self {
        self.warehouse = Some((code.into(), mandatory));
        self
    }

    /// Offers courier service `service` (agreed with Wapi IT, e.g. `SDA`, `DPD PL`) in the
    /// waybill form's `courier_service` select. Nothing is sent unless the waybill picks one
    /// (an Inpost Packomat order must carry none).
    pub fn with_courier_service(mut self, service: impl Into<String>) -> Self {
        self.courier_services.push(service.into());
        self
    }

    /// Reads stock for this country only (ISO code as Wapi accepts it, e.g. `IT`).
    ///
    /// Stock is scoped, in this order, by the warehouse ([`Self::with_warehouse`]), else by
    /// this country; without either it is the whole account's — every country and warehouse
    /// summed — which must be chosen explicitly with [`Self::with_whole_account_stock`]
    /// (otherwise `build` logs a warning: an Italian instance would show Spanish stock).
    pub fn with_stock_country(mut self, country: impl Into<String>) -> Self {
        self.stock_country = Some(country.into());
        self
    }

    /// Reads the stock of the whole account (every country and warehouse summed) — the
    /// explicit choice for an instance that ships from all of them.
    pub fn with_whole_account_stock(mut self) -> Self {
        self.whole_account_stock = true;
        self
    }

    /// Sets the rate limit (default 5 requests/s).
    pub fn with_rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.http.rate_limit = limit;
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.http.retry = retry;
        self
    }

    /// Sets the connect and request timeouts (defaults 5 s and 30 s).
    pub fn with_timeouts(
        mut self,
        connect: std::time::Duration,
        request: std::time::Duration,
    ) -> Self {
        self.http.connect_timeout = connect;
        self.http.request_timeout = request;
        self
    }

    /// Replaces the whole transport configuration (body caps, jitter seed, ...).
    pub fn with_http_config(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// Sets the most WH numbers per tracking request (default 50).
    pub fn with_max_track_batch(mut self, max: usize) -> Self {
        self.max_track_batch = max;
        self
    }

    /// Reads Wapi's offset-less history timestamps as local time at `seconds` east of UTC
    /// (default 0: UTC).
    pub fn with_utc_offset(mut self, seconds: i32) -> Self {
        self.utc_offset_secs = seconds;
        self
    }

    /// Tries to cancel orders already `AssignedToPartner` (only by special agreement with
    /// Wapi; protocol §6).
    pub fn with_cancel_after_assignment(mut self, yes: bool) -> Self {
        self.cancel_after_assignment = yes;
        self
    }

    /// Enables `search_addresses` over `POST /pickupPoints/search`. **Wapi has no such
    /// endpoint**: only the bundled simulator and operator-run lists serve it (protocol
    /// §13).
    pub fn with_pickup_point_directory(mut self, yes: bool) -> Self {
        self.pickup_points = yes;
        self
    }

    /// Refines `InTransit` statuses by the carrier's comment with `rules` (default
    /// [`default_comment_rules`](super::default_comment_rules): waiting at a pickup point →
    /// `Arrived`, out for delivery → `OnDelivery`, in the languages Wapi's carriers write;
    /// `CommentRules::new()` for none).
    pub fn with_comment_rules(mut self, rules: CommentRules) -> Self {
        self.comment_rules = rules;
        self
    }

    /// Checks the configuration and builds the provider.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] listing every problem: missing client id or secret, a base URL
    /// that is not http(s), a zero batch size, invalid transport settings.
    pub fn build(self) -> Result<WapiProvider> {
        let mut errors = Vec::new();
        if self.client_id.trim().is_empty() {
            errors.push(FieldError::new("client_id", "is required (WAPI_CLIENT_ID)"));
        } else if reqwest::header::HeaderValue::from_str(&self.client_id).is_err() {
            // Sent as the `x-client-id` header: refuse it here rather than on every request.
            errors.push(FieldError::new(
                "client_id",
                "must be a valid HTTP header value (no control characters)",
            ));
        }
        if self.secret.is_empty() {
            errors.push(FieldError::new("secret", "is required (WAPI_SECRET)"));
        }
        let base = match check_base_url(&self.base_url) {
            Ok(url) => Some(url),
            Err(problem) => {
                errors.push(problem);
                None
            }
        };
        if self.max_track_batch == 0 {
            errors.push(FieldError::new("max_track_batch", "must be at least 1"));
        }
        if let Err(e) = self.http.validate() {
            errors.extend(
                e.field_errors()
                    .iter()
                    .map(|f| FieldError::new(format!("http.{}", f.path), f.reason.clone())),
            );
        }
        // The courier services become the options of the form's select: no repeats.
        let form = match super::wire::waybill_form(&self.courier_services) {
            Ok(form) => Some(form),
            Err(e) => {
                errors.extend(
                    e.field_errors()
                        .iter()
                        .map(|f| FieldError::new("courier_services", f.reason.clone())),
                );
                None
            }
        };
        let (Some(base), Some(form), true) = (base, form, errors.is_empty()) else {
            return Err(Error::validation("wapi configuration", errors));
        };
        if self.warehouse.is_none() && self.stock_country.is_none() && !self.whole_account_stock {
            tracing::warn!(
                instance = %self.instance,
                "wapi stock is read for the whole account (every country and warehouse): \
                 scope it with with_warehouse or with_stock_country, or choose it with \
                 with_whole_account_stock"
            );
        }
        let http = HttpClient::new(
            "wapi",
            self.instance.clone(),
            base,
            self.http,
            vec![self.secret.clone()],
        )?;
        Ok(WapiProvider::new(
            WapiClient::new(http, self.client_id, self.secret),
            super::Settings {
                warehouse: self.warehouse,
                stock_country: self.stock_country,
                max_track_batch: self.max_track_batch,
                utc_offset_secs: self.utc_offset_secs,
                cancel_after_assignment: self.cancel_after_assignment,
                pickup_points: self.pickup_points,
                comment_rules: self.comment_rules,
            },
            form,
        ))
    }
}
