//! Configuration of a [`SphereProvider`]: [`SphereBuilder`] with the four values SphereWMS
//! issues (environment, API key, client code, location id), [`AuthMode`], and the defaults.
//! Everything is checked in [`SphereBuilder::build`], which reports every problem at once.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::SphereProvider;
use super::client::{SphereClient, auth_header, scrubbed_forms};
use super::wire::{CUSTOMER_CODE_MAX_CHARS, ORDER_BODY_KEYS};
use crate::error::{Error, FieldError, Result};
use crate::http::{
    HttpClient, HttpConfig, RateLimit, RetryConfig, Secret, check_base_url, redacted_url,
};

/// The SphereWMS API v2 base URL (protocol §1); requests go to `{base}/{environment}/{action}`.
pub const DEFAULT_BASE_URL: &str = "https://api.spherewms.com/v2/wms";
/// Default requests per second per instance (\[assumed]: SphereWMS documents no limit we
/// know of).
pub const DEFAULT_RATE_LIMIT: u32 = 5;
/// Default most shipments per `track` call. SphereWMS has no batch tracking endpoint (each
/// order is one status read plus, once packed, one shipments read), so this only bounds how
/// much work one call does.
pub const DEFAULT_TRACK_BATCH: usize = 25;
/// Default most skus per `stock` call (one inventory read per sku).
pub const DEFAULT_STOCK_BATCH: usize = 50;
/// Default rows per page of a listing (protocol §4; the maximum `limit` is unknown).
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Default prefix of the ship-to customer codes the adapter generates (`FK-` + order id).
pub const DEFAULT_CUSTOMER_CODE_PREFIX: &str = "FK-";

/// How the API key is sent (protocol §3). All three are accepted by SphereWMS \[doc A].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// `Authorization: Bearer {key}` (default: keeps the key out of URLs and access logs).
    #[default]
    Bearer,
    /// A `key: {key}` header.
    Header,
    /// A `?key={key}` query parameter (the only mode the older guide documents). The key is
    /// then part of every URL: fine for this crate, which never logs or reports one, but
    /// proxies and SphereWMS's own access logs may record it.
    Query,
}

/// Builds a [`SphereProvider`].
///
/// ```
/// use fulfillkit::provider::sphere::{AuthMode, SphereBuilder};
///
/// let sphere = SphereBuilder::new("faes-api", "api-key-from-sphere-support", "100", 100)
///     .with_auth_mode(AuthMode::Bearer)
///     .with_ship_via("UPS-GND")
///     .with_ship_via("FDX-2D")
///     .with_instance_label("sphere-us-east")
///     .build()?;
/// # Ok::<(), fulfillkit::Error>(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until it is built"]
pub struct SphereBuilder {
    environment: String,
    api_key: Secret,
    client_code: String,
    location_id: Option<u32>,
    base_url: String,
    auth_mode: AuthMode,
    customer_code_prefix: String,
    cod_field: Option<String>,
    ship_via: Vec<String>,
    instance: String,
    http: HttpConfig,
    max_track_batch: usize,
    page_size: usize,
    utc_offset_secs: i32,
    customer_directory: bool,
    /// Problems found while reading the environment, reported by `build`.
    env_problems: Vec<FieldError>,
}

impl fmt::Debug for SphereBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SphereBuilder")
            .field("base_url", &redacted_url(&self.base_url))
            .field("environment", &self.environment)
            .field("client_code", &self.client_code)
            .field("location_id", &self.location_id)
            .field("auth_mode", &self.auth_mode)
            .field("instance", &self.instance)
            .field("cod_field", &self.cod_field)
            .field("ship_via", &self.ship_via)
            .field("max_track_batch", &self.max_track_batch)
            .finish_non_exhaustive()
    }
}

impl SphereBuilder {
    /// A builder for `environment` (the name SphereWMS support issued, e.g. `faes-api`), its
    /// `api_key`, the merchant's `client_code` (e.g. `"100"`) and the inventory account
    /// `location_id` orders ship from and stock is read for, with the defaults: the public
    /// base URL, bearer auth, customer codes `FK-{order id}`, COD refused, 5 requests/s,
    /// default retries and timeouts (connect 5 s, request 30 s), tracking batches of 25,
    /// pages of 100, UTC, no customer directory.
    pub fn new(
        environment: impl Into<String>,
        api_key: impl Into<Secret>,
        client_code: impl Into<String>,
        location_id: u32,
    ) -> Self {
        let http = HttpConfig {
            rate_limit: Some(RateLimit::per_second(DEFAULT_RATE_LIMIT)),
            ..HttpConfig::default()
        };
        Self {
            environment: environment.into(),
            api_key: api_key.into(),
            client_code: client_code.into(),
            location_id: Some(location_id),
            base_url: DEFAULT_BASE_URL.into(),
            auth_mode: AuthMode::default(),
            customer_code_prefix: DEFAULT_CUSTOMER_CODE_PREFIX.into(),
            cod_field: None,
            ship_via: Vec::new(),
            instance: "sphere".into(),
            http,
            max_track_batch: DEFAULT_TRACK_BATCH,
            page_size: DEFAULT_PAGE_SIZE,
            utc_offset_secs: 0,
            customer_directory: false,
            env_problems: Vec::new(),
        }
    }

    /// A builder from `SPHERE_ENVIRONMENT`, `SPHERE_API_KEY`, `SPHERE_CLIENT_CODE`,
    /// `SPHERE_LOCATION_ID` and (optional) `SPHERE_BASE_URL`. Missing or unreadable values are
    /// reported by [`SphereBuilder::build`].
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`SphereBuilder::from_env`] over any source of variables (tests use a map, since
    /// changing the process environment races with other threads).
    fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let text = |name| var(name).unwrap_or_default();
        let mut builder = Self::new(
            text("SPHERE_ENVIRONMENT"),
            text("SPHERE_API_KEY"),
            text("SPHERE_CLIENT_CODE"),
            0,
        );
        builder.location_id = None;
        if let Some(raw) = var("SPHERE_LOCATION_ID").filter(|v| !v.trim().is_empty()) {
            match raw.trim().parse::<u32>() {
                Ok(id) => builder.location_id = Some(id),
                Err(_) => builder.env_problems.push(FieldError::new(
                    "location_id",
                    "must be a whole number (SPHERE_LOCATION_ID)",
                )),
            }
        }
        if let Some(url) = var("SPHERE_BASE_URL").filter(|v| !v.trim().is_empty()) {
            builder.base_url = url;
        }
        builder
    }

    /// Sets the base URL (default [`DEFAULT_BASE_URL`]), e.g. another deployment of the same
    /// protocol or a simulator's.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Sets how the API key is sent (default [`AuthMode::Bearer`]).
    pub fn with_auth_mode(mut self, mode: AuthMode) -> Self {
        self.auth_mode = mode;
        self
    }

    /// Sets the prefix of the ship-to customer codes generated for orders that name no
    /// directory entry (default `FK-`); prefix plus order id must fit 20 characters.
    pub fn with_customer_code_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.customer_code_prefix = prefix.into();
        self
    }

    /// Accepts cash-on-delivery orders, sending the amount in the order field `name` (as an
    /// exact JSON number). Without it COD orders are refused with
    /// [`Error::Validation`] at `payment`: no source says how SphereWMS takes COD.
    pub fn with_cod_field(mut self, name: impl Into<String>) -> Self {
        self.cod_field = Some(name.into());
        self
    }

    /// Offers the WMS carrier/service code `code` (e.g. `UPS-GND`) in the waybill form's
    /// `ship_via` select.
    pub fn with_ship_via(mut self, code: impl Into<String>) -> Self {
        self.ship_via.push(code.into());
        self
    }

    /// Names this instance in logs and spans (default `sphere`).
    pub fn with_instance_label(mut self, label: impl Into<String>) -> Self {
        self.instance = label.into();
        self
    }

    /// Sets the rate limit (default 5 requests/s).
    pub fn with_rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.http.rate_limit = limit;
        self
    }

    /// Sets the retry policy. Its `max_retries` also bounds how often a create is re-posted
    /// after a timeout or dropped connection (each time only after a lookup found nothing).
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

    /// Sets the most shipments per `track` call (default 25).
    pub fn with_max_track_batch(mut self, max: usize) -> Self {
        self.max_track_batch = max;
        self
    }

    /// Sets the rows asked for per page of a listing (default 100).
    pub fn with_page_size(mut self, rows: usize) -> Self {
        self.page_size = rows;
        self
    }

    /// Reads SphereWMS's offset-less dates as local time at `seconds` east of UTC (default 0:
    /// UTC, since the API states no time zone).
    pub fn with_utc_offset(mut self, seconds: i32) -> Self {
        self.utc_offset_secs = seconds;
        self
    }

    /// Enables `search_addresses` over `GET /customers` (the ship-to Customer Master). Off by
    /// default: the endpoint is assumed, and the [`protocol`](crate::provider::sphere::protocol) notes say to declare the
    /// capability only once it has been verified against a real account.
    pub fn with_customer_directory(mut self, yes: bool) -> Self {
        self.customer_directory = yes;
        self
    }

    /// Checks the configuration and builds the provider.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] listing every problem: a missing environment, key, client code or
    /// location id; an environment that is not one path segment; a key that cannot be a header
    /// value in a header mode; a base URL that is not http(s) or carries a query or fragment
    /// (the key has its own setting); a customer code prefix of 20 characters or more; a COD
    /// field that is blank or an order body key; a blank ship-via code; zero batch or page
    /// sizes; an offset beyond ±24 h; invalid transport settings.
    pub fn build(self) -> Result<SphereProvider> {
        let mut errors = self.env_problems.clone();
        let environment = self.environment.trim().to_owned();
        if environment.is_empty() {
            errors.push(FieldError::new(
                "environment",
                "is required (SPHERE_ENVIRONMENT)",
            ));
        } else if environment
            .chars()
            .any(|c| matches!(c, '/' | '?' | '#' | '\\') || c.is_whitespace())
        {
            errors.push(FieldError::new(
                "environment",
                "must be one path segment, e.g. faes-api",
            ));
        }
        let header = if self.api_key.is_empty() {
            errors.push(FieldError::new("api_key", "is required (SPHERE_API_KEY)"));
            None
        } else {
            match auth_header(self.auth_mode, &self.api_key) {
                Ok(header) => header,
                Err(e) => {
                    errors.extend(e.field_errors().iter().cloned());
                    None
                }
            }
        };
        let client_code = self.client_code.trim().to_owned();
        if client_code.is_empty() {
            errors.push(FieldError::new(
                "client_code",
                "is required (SPHERE_CLIENT_CODE)",
            ));
        }
        if self.location_id.is_none() && !errors.iter().any(|e| e.path == "location_id") {
            errors.push(FieldError::new(
                "location_id",
                "is required (SPHERE_LOCATION_ID)",
            ));
        }
        let base = match check_base_url(&self.base_url) {
            Ok(url) => Some(url),
            Err(problem) => {
                errors.push(problem);
                None
            }
        };
        if self.customer_code_prefix.chars().count() >= CUSTOMER_CODE_MAX_CHARS {
            errors.push(FieldError::new(
                "customer_code_prefix",
                format!("must be shorter than {CUSTOMER_CODE_MAX_CHARS} characters"),
            ));
        }
        if let Some(field) = &self.cod_field {
            if field.trim().is_empty() {
                errors.push(FieldError::new("cod_field", "must not be blank"));
            } else if ORDER_BODY_KEYS.contains(&field.trim()) {
                errors.push(FieldError::new(
                    "cod_field",
                    "must not be a field the order body already uses",
                ));
            }
        }
        if self.ship_via.iter().any(|code| code.trim().is_empty()) {
            errors.push(FieldError::new("ship_via", "codes must not be blank"));
        }
        if self.max_track_batch == 0 {
            errors.push(FieldError::new("max_track_batch", "must be at least 1"));
        }
        if self.page_size == 0 {
            errors.push(FieldError::new("page_size", "must be at least 1"));
        }
        if chrono::FixedOffset::east_opt(self.utc_offset_secs).is_none() {
            errors.push(FieldError::new("utc_offset", "must be within ±24 hours"));
        }
        if let Err(e) = self.http.validate() {
            errors.extend(
                e.field_errors()
                    .iter()
                    .map(|f| FieldError::new(format!("http.{}", f.path), f.reason.clone())),
            );
        }
        let ship_via: Vec<String> = self.ship_via.iter().map(|c| c.trim().to_owned()).collect();
        // The ship-via codes become the options of the form's select: no repeats.
        let form = match super::wire::waybill_form(&ship_via) {
            Ok(form) => Some(form),
            Err(e) => {
                errors.extend(
                    e.field_errors()
                        .iter()
                        .map(|f| FieldError::new("ship_via", f.reason.clone())),
                );
                None
            }
        };
        let (Some(mut base), Some(location_id), Some(form), true) =
            (base, self.location_id, form, errors.is_empty())
        else {
            return Err(Error::validation("sphere configuration", errors));
        };
        // `{base}/{environment}`: every action is a path below it.
        if let Ok(mut path) = base.path_segments_mut() {
            path.pop_if_empty().push(&environment);
        }
        let http = HttpClient::new(
            "sphere",
            self.instance.clone(),
            base,
            self.http,
            scrubbed_forms(&self.api_key),
        )?;
        Ok(SphereProvider::new(
            SphereClient::new(http, header, self.api_key, self.page_size),
            super::Settings {
                client_code,
                location_id,
                customer_code_prefix: self.customer_code_prefix,
                cod_field: self.cod_field.map(|f| f.trim().to_owned()),
                max_track_batch: self.max_track_batch,
                utc_offset_secs: self.utc_offset_secs,
                customer_directory: self.customer_directory,
            },
            form,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> SphereBuilder {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SphereBuilder::from_lookup(|name| vars.get(name).cloned())
    }

    fn paths(err: &Error) -> Vec<&str> {
        err.field_errors().iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn from_the_environment() {
        let sphere = from(&[
            ("SPHERE_ENVIRONMENT", "faes-api"),
            ("SPHERE_API_KEY", "k"),
            ("SPHERE_CLIENT_CODE", "100"),
            ("SPHERE_LOCATION_ID", " 100 "),
            ("SPHERE_BASE_URL", "http://127.0.0.1:9/v2/wms"),
        ]);
        assert_eq!(sphere.location_id, Some(100));
        assert_eq!(sphere.base_url, "http://127.0.0.1:9/v2/wms");
        let provider = sphere.build().unwrap();
        assert_eq!(
            provider.client.http().base_url().as_str(),
            "http://127.0.0.1:9/v2/wms/faes-api"
        );

        let err = from(&[]).build().unwrap_err();
        assert_eq!(
            paths(&err),
            ["environment", "api_key", "client_code", "location_id"]
        );
        for message in err.field_errors() {
            assert!(message.reason.contains("SPHERE_"), "{message}");
        }
        let err = from(&[
            ("SPHERE_ENVIRONMENT", "faes-api"),
            ("SPHERE_API_KEY", "k"),
            ("SPHERE_CLIENT_CODE", "100"),
            ("SPHERE_LOCATION_ID", "main"),
        ])
        .build()
        .unwrap_err();
        assert_eq!(paths(&err), ["location_id"]);
        assert!(err.field_errors()[0].reason.contains("whole number"));
    }

    #[test]
    fn the_default_base_url_gets_the_environment() {
        let provider = SphereBuilder::new("faes-api", "k", "100", 100)
            .build()
            .unwrap();
        assert_eq!(
            provider.client.http().base_url().as_str(),
            "https://api.spherewms.com/v2/wms/faes-api"
        );
        let provider = SphereBuilder::new("faes-api", "k", "100", 100)
            .with_base_url("http://localhost:1/v2/wms/")
            .build()
            .unwrap();
        assert_eq!(
            provider.client.http().base_url().as_str(),
            "http://localhost:1/v2/wms/faes-api"
        );
    }

    #[test]
    fn build_reports_every_problem() {
        let http = HttpConfig {
            connect_timeout: std::time::Duration::ZERO,
            ..HttpConfig::default()
        };
        let err = SphereBuilder::new("faes api/x", "bad\nkey", " ", 100)
            .with_base_url("https://api.spherewms.com/v2/wms?key=leak")
            .with_customer_code_prefix("A-VERY-LONG-PREFIX-20")
            .with_cod_field("notes")
            .with_ship_via(" ")
            .with_max_track_batch(0)
            .with_page_size(0)
            .with_utc_offset(90_000)
            .with_http_config(http)
            .build()
            .unwrap_err();
        assert_eq!(
            paths(&err),
            [
                "environment",
                "api_key",
                "client_code",
                "base_url",
                "customer_code_prefix",
                "cod_field",
                "ship_via",
                "max_track_batch",
                "page_size",
                "utc_offset",
                "http.connect_timeout"
            ]
        );
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains("bad\nkey") && !shown.contains("leak"),
            "{shown}"
        );

        let err = SphereBuilder::new("e", "k", "1", 1)
            .with_cod_field(" ")
            .build()
            .unwrap_err();
        assert_eq!(paths(&err), ["cod_field"]);
        // The query mode takes any key.
        assert!(
            SphereBuilder::new("e", "bad\nkey", "1", 1)
                .with_auth_mode(AuthMode::Query)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn auth_mode_serde() {
        for (mode, text) in [
            (AuthMode::Bearer, "\"bearer\""),
            (AuthMode::Header, "\"header\""),
            (AuthMode::Query, "\"query\""),
        ] {
            assert_eq!(serde_json::to_string(&mode).unwrap(), text);
            assert_eq!(serde_json::from_str::<AuthMode>(text).unwrap(), mode);
        }
        assert_eq!(AuthMode::default(), AuthMode::Bearer);
    }
}
