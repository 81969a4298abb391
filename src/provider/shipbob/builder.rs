//! [`ShipBobBuilder`]: configuration of one ShipBob channel, validated in
//! [`ShipBobBuilder::build`].

use std::fmt;
use std::time::Duration;

use super::ShipBobProvider;
use super::client::{ShipBobClient, bearer};
use crate::error::{Error, FieldError, Result};
use crate::http::{
    HttpClient, HttpConfig, RateLimit, RetryConfig, Secret, check_base_url, redacted_url,
};

/// Production base URL (protocol doc §1).
pub const PRODUCTION_URL: &str = "https://api.shipbob.com";
/// Sandbox base URL (§1); sandbox data never reaches production.
pub const SANDBOX_URL: &str = "https://sandbox-api.shipbob.com";
/// The dated API version used unless configured: the current one in the protocol document.
pub const DEFAULT_API_VERSION: &str = "2026-07";
/// Default client-side rate limit: 2 requests/s with a burst of 10, so that no 60-second
/// window holds more than 130 calls — under ShipBob's 150 per minute (§3.2 \[assumed]).
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit {
    per_second: 2,
    burst: 10,
};
/// Default orders per tracking request (`GET /order?IDs=…`); at most 250, ShipBob's page size.
pub const DEFAULT_TRACK_BATCH: usize = 100;
/// Default shortest time between two reads of the change feed (`LastUpdateStartDate`): a
/// tracking call within this time of the last read answers from what that read brought.
pub const DEFAULT_FEED_INTERVAL: Duration = Duration::from_secs(60);
/// How far back each read of the change feed reaches before the newest change the previous
/// one saw, for changes committed late (§5.3: 5 minutes).
pub const FEED_OVERLAP: Duration = Duration::from_secs(5 * 60);
/// The `shipping_method` sent unless the waybill or the instance names another.
pub const DEFAULT_SHIPPING_METHOD: &str = "Standard";
/// Most skus per stock request.
pub const DEFAULT_STOCK_BATCH: usize = 100;

/// Builds a [`ShipBobProvider`].
///
/// ```
/// use fulfillkit::provider::shipbob::ShipBobBuilder;
///
/// let shipbob = ShipBobBuilder::new("pat-from-the-dashboard", 432951)
///     .with_sandbox()
///     .with_location_id(228)               // pin the Moreno Valley (CA) FC
///     .with_shipping_method("Expedited")
///     .with_instance_label("shipbob-us")
///     .build()?;
/// # Ok::<(), fulfillkit::Error>(())
/// ```
#[derive(Clone)]
pub struct ShipBobBuilder {
    token: Secret,
    channel_id: i64,
    base_url: String,
    api_version: String,
    instance: String,
    location_id: Option<i64>,
    shipping_method: String,
    http: HttpConfig,
    max_track_batch: usize,
    feed_interval: Duration,
    feed_overlap: Duration,
}

impl fmt::Debug for ShipBobBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShipBobBuilder")
            .field("channel_id", &self.channel_id)
            .field("base_url", &redacted_url(&self.base_url))
            .field("api_version", &self.api_version)
            .field("instance", &self.instance)
            .field("location_id", &self.location_id)
            .field("shipping_method", &self.shipping_method)
            .field("max_track_batch", &self.max_track_batch)
            .finish_non_exhaustive()
    }
}

impl ShipBobBuilder {
    /// A builder for the Personal Access Token `token` (dashboard → Integrations → API
    /// Tokens) writing as channel `channel_id` (`GET /channel`: the channel with `*_write`
    /// scopes), against production, API version [`DEFAULT_API_VERSION`], 2 requests/s,
    /// default retries and timeouts.
    pub fn new(token: impl Into<Secret>, channel_id: i64) -> Self {
        let http = HttpConfig {
            rate_limit: Some(DEFAULT_RATE_LIMIT),
            ..HttpConfig::default()
        };
        Self {
            token: token.into(),
            channel_id,
            base_url: PRODUCTION_URL.into(),
            api_version: DEFAULT_API_VERSION.into(),
            instance: "shipbob".into(),
            location_id: None,
            shipping_method: DEFAULT_SHIPPING_METHOD.into(),
            http,
            max_track_batch: DEFAULT_TRACK_BATCH,
            feed_interval: DEFAULT_FEED_INTERVAL,
            feed_overlap: FEED_OVERLAP,
        }
    }

    /// A builder from `SHIPBOB_TOKEN`, `SHIPBOB_CHANNEL_ID` and (optional) `SHIPBOB_BASE_URL`
    /// and `SHIPBOB_API_VERSION`. Missing or unreadable values are reported by
    /// [`ShipBobBuilder::build`].
    pub fn from_env() -> Self {
        let var = |name| std::env::var(name).ok();
        let channel = var("SHIPBOB_CHANNEL_ID")
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(0);
        let mut builder = Self::new(var("SHIPBOB_TOKEN").unwrap_or_default(), channel);
        if let Some(url) = var("SHIPBOB_BASE_URL") {
            builder.base_url = url;
        }
        if let Some(version) = var("SHIPBOB_API_VERSION") {
            builder.api_version = version;
        }
        builder
    }

    /// Sets the base URL (default [`PRODUCTION_URL`]), e.g. a simulator's.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Uses ShipBob's sandbox ([`SANDBOX_URL`]).
    pub fn with_sandbox(self) -> Self {
        self.with_base_url(SANDBOX_URL)
    }

    /// Sets the dated API version, the first path segment (default [`DEFAULT_API_VERSION`]).
    pub fn with_api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = version.into();
        self
    }

    /// Names this instance in logs and spans (default `shipbob`).
    pub fn with_instance_label(mut self, label: impl Into<String>) -> Self {
        self.instance = label.into();
        self
    }

    /// Pins the instance to fulfillment center `location_id`: sent on every create, and stock
    /// is read for that center only (default: ShipBob routes, stock is network-wide).
    pub fn with_location_id(mut self, location_id: i64) -> Self {
        self.location_id = Some(location_id);
        self
    }

    /// Sets the `shipping_method` sent when the waybill names none (default `Standard`).
    pub fn with_shipping_method(mut self, method: impl Into<String>) -> Self {
        self.shipping_method = method.into();
        self
    }

    /// Sets the rate limit (default [`DEFAULT_RATE_LIMIT`]; `None` for none).
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
    pub fn with_timeouts(mut self, connect: Duration, request: Duration) -> Self {
        self.http.connect_timeout = connect;
        self.http.request_timeout = request;
        self
    }

    /// Replaces the whole transport configuration (body caps, jitter seed, rate limit, ...).
    pub fn with_http_config(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// Sets the most orders per tracking request (default 100, at most 250).
    pub fn with_max_track_batch(mut self, max: usize) -> Self {
        self.max_track_batch = max;
        self
    }

    /// Sets the shortest time between two reads of the change feed (default
    /// [`DEFAULT_FEED_INTERVAL`]); zero reads it on every tracking call (tests, simulators).
    pub fn with_feed_interval(mut self, interval: Duration) -> Self {
        self.feed_interval = interval;
        self
    }

    /// Sets how far each read of the change feed reaches back before the newest change the
    /// last one saw (default [`FEED_OVERLAP`], 5 minutes: ShipBob may make a change visible
    /// after a newer one). Zero suits a simulator, whose changes are visible at once.
    pub fn with_feed_overlap(mut self, overlap: Duration) -> Self {
        self.feed_overlap = overlap;
        self
    }

    /// Checks the configuration and builds the provider.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] listing every problem: a missing token or channel id, a base URL
    /// that is not http(s), an API version that is not one path segment, a batch size outside
    /// 1..=250, invalid transport settings.
    pub fn build(self) -> Result<ShipBobProvider> {
        let mut errors = Vec::new();
        let authorization = if self.token.expose().trim().is_empty() {
            errors.push(FieldError::new("token", "is required (SHIPBOB_TOKEN)"));
            None
        } else {
            match bearer(&self.token) {
                Ok(value) => Some(value),
                Err(e) => {
                    errors.extend(e.field_errors().iter().cloned());
                    None
                }
            }
        };
        if self.channel_id <= 0 {
            errors.push(FieldError::new(
                "channel_id",
                "must be the positive id of the token's channel (SHIPBOB_CHANNEL_ID)",
            ));
        }
        let base = match check_base_url(&self.base_url) {
            Ok(url) => Some(url),
            Err(problem) => {
                errors.push(problem);
                None
            }
        };
        let version = self.api_version.trim();
        if version.is_empty()
            || !version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
        {
            errors.push(FieldError::new(
                "api_version",
                "must be a dated version such as 2026-07 (letters, digits, '-', '.')",
            ));
        }
        if !(1..=250).contains(&self.max_track_batch) {
            errors.push(FieldError::new(
                "max_track_batch",
                "must be within 1..=250 (ShipBob's page size)",
            ));
        }
        if self.shipping_method.trim().is_empty() {
            errors.push(FieldError::new("shipping_method", "must not be empty"));
        }
        if let Err(e) = self.http.validate() {
            errors.extend(
                e.field_errors()
                    .iter()
                    .map(|f| FieldError::new(format!("http.{}", f.path), f.reason.clone())),
            );
        }
        let form = super::wire::waybill_form();
        let (Some(base), Some(authorization), Ok(form), true) =
            (base, authorization, form, errors.is_empty())
        else {
            return Err(Error::validation("shipbob configuration", errors));
        };
        let http = HttpClient::new(
            "shipbob",
            self.instance.clone(),
            base,
            self.http,
            vec![self.token.clone()],
        )?;
        Ok(ShipBobProvider::new(
            ShipBobClient::new(http, authorization, self.channel_id, version.to_owned()),
            super::Settings {
                channel_id: self.channel_id,
                location_id: self.location_id,
                shipping_method: self.shipping_method.trim().to_owned(),
                max_track_batch: self.max_track_batch,
                feed_interval: self.feed_interval,
                feed_overlap: self.feed_overlap,
            },
            form,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_at_once_and_no_token_in_them() {
        let err = ShipBobBuilder::new("", 0)
            .with_base_url("ftp://x")
            .with_api_version("2026/07")
            .with_max_track_batch(0)
            .build()
            .unwrap_err();
        let paths: Vec<_> = err.field_errors().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "token",
                "channel_id",
                "base_url",
                "api_version",
                "max_track_batch"
            ]
        );
        let err = ShipBobBuilder::new("sec\nret", 1).build().unwrap_err();
        assert!(!format!("{err} {err:?}").contains("sec\nret"));
        let debug = format!("{:?}", ShipBobBuilder::new("pat-s3cr3t", 1));
        assert!(!debug.contains("s3cr3t"), "{debug}");
    }

    #[test]
    fn defaults() {
        let provider = ShipBobBuilder::new("pat", 432951).build().unwrap();
        assert!(format!("{provider:?}").contains("2026-07"));
    }
}
