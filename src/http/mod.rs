//! The one HTTP client every bundled provider uses: timeouts, retries with decorrelated-jitter
//! backoff, `Retry-After`, a per-instance rate limit, capped response bodies, secret
//! redaction, and a `tracing` span per attempt.
//!
//! Providers build a [`Request`] (method, path segments, query, headers, body bytes, whether it
//! is idempotent) and get back a [`Response`] for whatever final HTTP status the provider
//! answered; mapping that status to the crate [`Error`] is the provider's job (one function
//! per provider). The client itself only fails with [`Error::Timeout`], [`Error::Transport`],
//! [`Error::RateLimited`] (429 after the retry budget) and [`Error::Protocol`] (a body over the
//! cap, or a redirect).
//!
//! Credentials stay with the provider they belong to:
//! - **no redirect is followed** and no `Referer` is ever sent: a 3xx answer is an
//!   [`Error::Protocol`] naming the origin it points to, so an API key, a signature or a body
//!   never travels to another server, and another server's answer is never taken for the
//!   provider's;
//! - base URLs with a user name or password are refused ([`check_base_url`]);
//! - every response body is scrubbed before anyone reads it: each configured secret and each
//!   value of a request header marked sensitive (a signature, a bearer token) that a provider
//!   echoes back becomes `[redacted]`, so it cannot reach an error, a stored record or an event.
//!
//! What lives elsewhere: signing and authentication headers (each provider's `client.rs`),
//! JSON shapes (each provider's `wire.rs`).

mod retry;
mod secret;
mod shared;

use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LOCATION, RETRY_AFTER, USER_AGENT};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::Instrument;
use url::Url;

pub use reqwest::Method;
pub(crate) use retry::{AttemptOutcome, Backoff, Decision, decide};
pub use retry::{RetryConfig, parse_retry_after};
pub use secret::Secret;
pub use shared::{SharedBudget, SharedRateLimit};

use crate::error::{Error, FieldError, Result};
use crate::telemetry;

/// Default connect timeout: 5 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default timeout of one request, body included: 30 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap of a successful response body: 8 MiB.
pub const DEFAULT_MAX_BODY: usize = 8 * 1024 * 1024;
/// Default cap of an error response body (the rest is not read): 64 KiB.
pub const DEFAULT_MAX_ERROR_BODY: usize = 64 * 1024;
/// Longest body excerpt put into an error message, in characters.
const EXCERPT_CHARS: usize = 200;
/// What a secret echoed in a response body is replaced with.
const REDACTED: &[u8] = b"[redacted]";

/// `url` as it may be shown in `Debug` output: any query (where a `?key=` could hide) replaced
/// by `[redacted]`, any password by `redacted`. Text that is not a URL is cut before its first `?`.
#[cfg(any(feature = "sphere", feature = "wapi", feature = "shipbob"))]
pub(crate) fn redacted_url(url: &str) -> String {
    match Url::parse(url.trim()) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Cannot fail on a URL that already has a password.
                let _ = parsed.set_password(Some("redacted"));
            }
            if parsed.query().is_some() {
                parsed.set_query(Some("[redacted]"));
            }
            parsed.to_string()
        }
        Err(_) => match url.find('?') {
            Some(at) => format!("{}?[redacted]", &url[..at]),
            None => url.to_owned(),
        },
    }
}

/// Parses a provider's base URL from configuration: http or https, usable as a base, and
/// without user name, password, query or fragment (credentials go in the provider's own
/// settings, where they are kept out of `Debug` output and logs).
///
/// # Errors
///
/// The [`FieldError`] at `base_url` saying what is wrong; it never quotes the URL.
pub fn check_base_url(text: &str) -> std::result::Result<Url, FieldError> {
    let refuse = |reason: &str| FieldError::new("base_url", reason);
    let url = Url::parse(text.trim()).map_err(|_| refuse("must be an http(s) URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(refuse("must be an http(s) URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(
            "must not carry a user name or password (credentials are separate settings)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("must not have a query or fragment"));
    }
    Ok(url)
}

/// A request rate limit: `per_second` sustained, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Requests allowed at once after a quiet period.
    pub burst: u32,
}

impl RateLimit {
    /// `per_second` requests per second with a burst of the same size.
    pub fn per_second(per_second: u32) -> Self {
        Self {
            per_second,
            burst: per_second,
        }
    }
}

/// Transport settings of one provider instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Time to establish a connection (default 5 s).
    pub connect_timeout: Duration,
    /// Time for one whole request, body included (default 30 s).
    pub request_timeout: Duration,
    /// Retry policy.
    pub retry: RetryConfig,
    /// Rate limit per instance; `None` for none.
    pub rate_limit: Option<RateLimit>,
    /// Where `rate_limit` is kept when several processes share the provider account
    /// ([`with_shared_rate_limit`](Self::with_shared_rate_limit)); `None`: in this process.
    /// Not serialized (it is a live connection, not data).
    #[serde(skip)]
    pub shared_rate_limit: Option<SharedBudget>,
    /// Cap of a successful response body (default 8 MiB); a larger one is a protocol error.
    pub max_body_bytes: usize,
    /// Cap of an error response body (default 64 KiB); the rest is not read.
    pub max_error_body_bytes: usize,
    /// Seed of the jitter RNG, for reproducible tests; random when `None`.
    pub jitter_seed: Option<u64>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            retry: RetryConfig::default(),
            rate_limit: None,
            shared_rate_limit: None,
            max_body_bytes: DEFAULT_MAX_BODY,
            max_error_body_bytes: DEFAULT_MAX_ERROR_BODY,
            jitter_seed: None,
        }
    }
}

impl HttpConfig {
    /// Keeps `rate_limit` in `budget` under `account` instead of in this process, so that
    /// every replica of the host using the account shares it: together they send at most
    /// `rate_limit` (without a `rate_limit` there is nothing to share and this does nothing).
    /// Each request then first reserves its place in the budget (one database round trip
    /// with `PgStore`).
    ///
    /// ```
    /// # #[cfg(feature = "postgres")]
    /// # fn f(store: fulfillkit::store::postgres::PgStore) {
    /// use std::sync::Arc;
    /// use fulfillkit::http::{HttpConfig, RateLimit};
    ///
    /// let mut http = HttpConfig::default();
    /// http.rate_limit = Some(RateLimit::per_second(2));
    /// let http = http.with_shared_rate_limit(Arc::new(store), "shipbob:channel-1");
    /// # let _ = http;
    /// # }
    /// ```
    pub fn with_shared_rate_limit(
        mut self,
        budget: std::sync::Arc<dyn SharedRateLimit>,
        account: impl Into<String>,
    ) -> Self {
        self.shared_rate_limit = Some(SharedBudget {
            budget,
            account: account.into(),
        });
        self
    }

    /// Checks the settings, reporting every problem.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for zero timeouts, zero rate limits or zero body caps.
    pub fn validate(&self) -> Result<()> {
        let mut errors = Vec::new();
        if self.connect_timeout.is_zero() {
            errors.push(FieldError::new("connect_timeout", "must be positive"));
        }
        if self.request_timeout.is_zero() {
            errors.push(FieldError::new("request_timeout", "must be positive"));
        }
        if let Some(limit) = self.rate_limit {
            if limit.per_second == 0 {
                errors.push(FieldError::new("rate_limit.per_second", "must be positive"));
            }
            if limit.burst == 0 {
                errors.push(FieldError::new("rate_limit.burst", "must be positive"));
            }
        }
        if self.max_body_bytes == 0 {
            errors.push(FieldError::new("max_body_bytes", "must be positive"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::validation("http configuration", errors))
        }
    }
}

/// One request to a provider.
#[derive(Clone)]
pub struct Request {
    method: Method,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Option<Bytes>,
    idempotent: bool,
    endpoint: String,
    /// Values of the headers marked sensitive, scrubbed from the answer's body.
    sensitive: Vec<Bytes>,
}

impl fmt::Debug for Request {
    // Headers and query may carry credentials; the endpoint label says what the request is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("endpoint", &self.endpoint)
            .field("idempotent", &self.idempotent)
            .field("body_len", &self.body.as_ref().map(Bytes::len))
            .finish_non_exhaustive()
    }
}

impl Request {
    /// A request to the base URL's path followed by `segments` (each percent-encoded, so an
    /// id with `/` stays one segment). Not idempotent unless marked.
    pub fn new<S: AsRef<str>>(method: Method, segments: &[S]) -> Self {
        let segments: Vec<String> = segments.iter().map(|s| s.as_ref().to_owned()).collect();
        let endpoint = format!("{method} /{}", segments.join("/"));
        Self {
            method,
            segments,
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: None,
            idempotent: false,
            endpoint,
            sensitive: Vec::new(),
        }
    }

    /// Sets the label used in logs and errors (default: method and path), e.g. when the path
    /// holds an id that should not be logged.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// Adds a query parameter.
    pub fn with_query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }

    /// Adds a header. A `sensitive` one is never printed by the HTTP stack, and its value (and
    /// a bearer token's token) is scrubbed from the answer's body should the provider echo it.
    pub fn with_header(
        mut self,
        name: HeaderName,
        mut value: HeaderValue,
        sensitive: bool,
    ) -> Self {
        value.set_sensitive(sensitive);
        if sensitive {
            let bytes = Bytes::copy_from_slice(value.as_bytes());
            if let Some(token) = bytes.strip_prefix(b"Bearer ") {
                self.sensitive.push(Bytes::copy_from_slice(token));
            }
            self.sensitive.push(bytes);
        }
        self.headers.insert(name, value);
        self
    }

    /// Sets a JSON body, sent exactly as given on every attempt.
    pub fn with_json_body(mut self, body: Bytes) -> Self {
        self.headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self.body = Some(body);
        self
    }

    /// Marks the request safe to repeat after a timeout or a dropped connection (reads, and
    /// writes the provider de-duplicates).
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }

    /// The label used in logs and errors.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The body bytes, if any.
    pub fn body(&self) -> Option<&Bytes> {
        self.body.as_ref()
    }
}

/// The provider's final answer to a request.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body, at most the configured cap.
    pub body: Bytes,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Labels attached to every span and error of a client.
#[derive(Debug, Clone)]
struct Labels {
    provider: String,
    instance: String,
}

/// The shared HTTP client of one provider instance; see the [module docs](self).
pub struct HttpClient {
    inner: reqwest::Client,
    base: Url,
    config: HttpConfig,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    labels: Labels,
    rng: Mutex<fastrand::Rng>,
    secrets: Vec<Secret>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("provider", &self.labels.provider)
            .field("instance", &self.labels.instance)
            .field("base", &self.base.as_str())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why one attempt failed before a status was read.
enum AttemptError {
    Connect(reqwest::Error),
    Timeout,
    Dropped(reqwest::Error),
    Fatal(Error),
}

impl HttpClient {
    /// A client for `provider` / `instance` talking to `base`.
    ///
    /// `secrets` are scrubbed from every body excerpt that goes into an error, in case a
    /// provider echoes a credential back.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for an invalid configuration; [`Error::Transport`] if the TLS
    /// backend cannot be initialised.
    pub fn new(
        provider: impl Into<String>,
        instance: impl Into<String>,
        base: Url,
        config: HttpConfig,
        secrets: Vec<Secret>,
    ) -> Result<Self> {
        config.validate()?;
        let provider = provider.into();
        if !base.username().is_empty() || base.password().is_some() {
            return Err(Error::validation(
                format!("{provider} configuration"),
                vec![FieldError::new(
                    "base_url",
                    "must not carry a user name or password (credentials are separate settings)",
                )],
            ));
        }
        let mut default_headers = HeaderMap::new();
        default_headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("fulfillkit/", env!("CARGO_PKG_VERSION"))),
        );
        default_headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        let inner = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .default_headers(default_headers)
            // A redirect would carry the credentials (and a 307/308 the body) to whatever
            // origin it names, and its answer would pass for the provider's.
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .build()
            .map_err(|e| Error::transport(format!("{provider} client setup"), e.without_url()))?;
        let limiter = config.rate_limit.and_then(|limit| {
            let per_second = NonZeroU32::new(limit.per_second)?;
            let burst = NonZeroU32::new(limit.burst)?;
            Some(Arc::new(RateLimiter::direct(
                Quota::per_second(per_second).allow_burst(burst),
            )))
        });
        let rng = match config.jitter_seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        Ok(Self {
            inner,
            base,
            config,
            limiter,
            labels: Labels {
                provider,
                instance: instance.into(),
            },
            rng: Mutex::new(rng),
            secrets,
        })
    }

    /// The base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Sends `request`, retrying as the module docs say, and returns the final response whatever
    /// its status.
    ///
    /// # Errors
    ///
    /// [`Error::RateLimited`] when 429 persists past the retry budget; [`Error::Timeout`] /
    /// [`Error::Transport`] when no response came; [`Error::Protocol`] for a body over the cap.
    pub async fn send(&self, request: &Request) -> Result<Response> {
        let url = self.url_for(request);
        let started = Instant::now();
        let mut backoff = Backoff::new(&self.config.retry, self.fork_rng());
        let mut retries = 0;
        loop {
            if let (Some(shared), Some(limit)) =
                (&self.config.shared_rate_limit, self.config.rate_limit)
            {
                let waiting = Instant::now();
                let wait = shared.budget.reserve(&shared.account, limit).await?;
                tokio::time::sleep(wait).await;
                telemetry::rate_limit_wait(
                    &self.labels.provider,
                    &self.labels.instance,
                    waiting.elapsed(),
                );
            } else if let Some(limiter) = &self.limiter {
                let waiting = Instant::now();
                limiter.until_ready().await;
                telemetry::rate_limit_wait(
                    &self.labels.provider,
                    &self.labels.instance,
                    waiting.elapsed(),
                );
            }
            let span = tracing::debug_span!(
                "fulfillkit.http",
                provider = %self.labels.provider,
                instance = %self.labels.instance,
                endpoint = %request.endpoint,
                attempt = retries + 1,
                status = tracing::field::Empty,
                latency_ms = tracing::field::Empty,
            );
            let attempt_started = Instant::now();
            let result = self.attempt(&url, request).instrument(span.clone()).await;
            let took = attempt_started.elapsed();
            span.record("latency_ms", took.as_millis() as u64);
            if telemetry::ENABLED {
                let status = match &result {
                    Ok(response) => response.status.to_string(),
                    Err(AttemptError::Timeout) => "timeout".into(),
                    Err(AttemptError::Connect(_)) => "connect".into(),
                    Err(AttemptError::Dropped(_)) => "dropped".into(),
                    Err(AttemptError::Fatal(_)) => "refused".into(),
                };
                telemetry::http_request(
                    &self.labels.provider,
                    &self.labels.instance,
                    &request.endpoint,
                    status,
                    took,
                );
            }
            let (outcome, kept) = match result {
                Ok(response) => {
                    span.record("status", response.status);
                    let retry_after = asked_wait(&response.headers, SystemTime::now());
                    let outcome = AttemptOutcome::Status {
                        status: response.status,
                        retry_after,
                    };
                    (outcome, Ok(response))
                }
                Err(AttemptError::Connect(e)) => (
                    AttemptOutcome::ConnectFailed,
                    Err(Error::transport(request.endpoint.clone(), e)),
                ),
                Err(AttemptError::Timeout) => (
                    AttemptOutcome::TimedOut,
                    Err(Error::Timeout {
                        what: request.endpoint.clone(),
                    }),
                ),
                Err(AttemptError::Dropped(e)) => (
                    AttemptOutcome::ConnectionDropped,
                    Err(Error::transport(request.endpoint.clone(), e)),
                ),
                Err(AttemptError::Fatal(e)) => return Err(e),
            };
            let decision = decide(
                outcome,
                retries,
                request.idempotent,
                started.elapsed(),
                backoff.next_delay(),
                &self.config.retry,
            );
            match decision {
                Decision::Stop => {
                    span.in_scope(|| tracing::trace!(?outcome, "final attempt"));
                    return match (outcome, kept) {
                        (
                            AttemptOutcome::Status {
                                status: 429,
                                retry_after,
                            },
                            Ok(_),
                        ) => Err(Error::RateLimited { retry_after }),
                        (_, kept) => kept,
                    };
                }
                Decision::RetryAfter(delay) => {
                    span.in_scope(|| {
                        tracing::debug!(?outcome, delay_ms = delay.as_millis() as u64, "retrying")
                    });
                    telemetry::http_retry(
                        &self.labels.provider,
                        &self.labels.instance,
                        &request.endpoint,
                    );
                    tokio::time::sleep(delay).await;
                    retries += 1;
                }
            }
        }
    }

    /// Parses a JSON body, or fails with [`Error::Protocol`] naming `endpoint` and quoting a
    /// short, secret-free excerpt of the body. `T` may borrow from `body` (e.g. `Cow<str>`
    /// fields with `#[serde(borrow)]`), so that texts read once are not copied.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] when the body is not the expected JSON.
    pub fn decode<'a, T: Deserialize<'a>>(&self, endpoint: &str, body: &'a [u8]) -> Result<T> {
        serde_json::from_slice(body).map_err(|e| {
            Error::protocol(format!(
                "{} answered {endpoint} with a body that does not parse ({e}): {}",
                self.labels.provider,
                self.excerpt(body)
            ))
        })
    }

    /// A short excerpt of `body` for an error message, with every configured secret replaced
    /// by `[redacted]`.
    pub fn excerpt(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let mut short: String = text.trim().chars().take(EXCERPT_CHARS).collect();
        if text.trim().chars().count() > EXCERPT_CHARS {
            short.push('…');
        }
        self.scrub(&short)
    }

    /// `text` with every configured secret replaced by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        self.secrets
            .iter()
            .filter(|s| !s.expose().is_empty())
            .fold(text.to_owned(), |t, s| t.replace(s.expose(), "[redacted]"))
    }

    /// A fresh backoff under this client's retry policy, for an adapter that repeats a call
    /// itself (a create re-sent only after a lookup found nothing).
    #[cfg_attr(
        not(feature = "sphere"),
        allow(dead_code, reason = "only Sphere re-sends itself")
    )]
    pub(crate) fn backoff(&self) -> Backoff {
        Backoff::new(&self.config.retry, self.fork_rng())
    }

    fn fork_rng(&self) -> fastrand::Rng {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        rng.fork()
    }

    fn url_for(&self, request: &Request) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(&request.segments);
        }
        if !request.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&request.query);
        }
        url
    }

    async fn attempt(&self, url: &Url, request: &Request) -> Result<Response, AttemptError> {
        let mut builder = self
            .inner
            .request(request.method.clone(), url.clone())
            .headers(request.headers.clone());
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let mut response = builder.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            return Err(AttemptError::Fatal(self.redirected(
                request,
                url,
                status,
                response.headers(),
            )));
        }
        let headers = response.headers().clone();
        let success = (200..300).contains(&status);
        let cap = if success {
            self.config.max_body_bytes
        } else {
            self.config.max_error_body_bytes
        };
        if success
            && response
                .content_length()
                .is_some_and(|len| len > cap as u64)
        {
            return Err(AttemptError::Fatal(self.over_cap(request, cap)));
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > cap {
                if success {
                    return Err(AttemptError::Fatal(self.over_cap(request, cap)));
                }
                // An error body is only read for its message: keep the first `cap` bytes.
                body.extend_from_slice(&chunk[..cap - body.len()]);
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            headers,
            body: self.redact(body.freeze(), request),
        })
    }

    /// `body` with every configured secret and every sensitive header value of `request`
    /// replaced by `[redacted]`; the same bytes, uncopied, when none occurs.
    fn redact(&self, mut body: Bytes, request: &Request) -> Bytes {
        let needles = self
            .secrets
            .iter()
            .map(|s| s.expose().as_bytes())
            .chain(request.sensitive.iter().map(|b| &b[..]));
        for needle in needles.filter(|n| !n.is_empty()) {
            if memchr::memmem::find(&body, needle).is_none() {
                continue;
            }
            let mut scrubbed = BytesMut::with_capacity(body.len());
            let mut from = 0;
            for at in memchr::memmem::find_iter(&body, needle) {
                // Overlapping matches: the earlier one already covered this one.
                if at < from {
                    continue;
                }
                scrubbed.extend_from_slice(&body[from..at]);
                scrubbed.extend_from_slice(REDACTED);
                from = at + needle.len();
            }
            scrubbed.extend_from_slice(&body[from..]);
            body = scrubbed.freeze();
        }
        body
    }

    /// The error for a 3xx answer: redirects are never followed (see the module docs). Only
    /// the origin of the location is named, never its path or query.
    fn redirected(&self, request: &Request, url: &Url, status: u16, headers: &HeaderMap) -> Error {
        let target = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|location| url.join(location).ok())
            .map(|to| to.origin().ascii_serialization());
        match target {
            Some(origin) => Error::protocol(format!(
                "{} answered {} with a redirect (HTTP {status}) to {origin}; redirects are \
                 not followed",
                self.labels.provider, request.endpoint
            )),
            None => Error::protocol(format!(
                "{} answered {} with HTTP {status} and no readable location; redirects are \
                 not followed",
                self.labels.provider, request.endpoint
            )),
        }
    }

    fn over_cap(&self, request: &Request, cap: usize) -> Error {
        Error::protocol(format!(
            "{} answered {} with a body over the {cap}-byte cap",
            self.labels.provider, request.endpoint
        ))
    }
}

fn classify(error: reqwest::Error) -> AttemptError {
    // The URL can carry a credential (query-string auth): never keep it in an error.
    let error = error.without_url();
    if error.is_timeout() {
        AttemptError::Timeout
    } else if error.is_connect() {
        AttemptError::Connect(error)
    } else {
        AttemptError::Dropped(error)
    }
}

/// The wait a provider asked for: ShipBob's `x-retry-after` (seconds, its documented header)
/// first, then the standard `Retry-After` (seconds or an HTTP-date). An unreadable value is
/// no request to wait (the client's own backoff applies).
pub(crate) fn asked_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    [X_RETRY_AFTER, RETRY_AFTER.as_str()]
        .into_iter()
        .filter_map(|name| headers.get(name)?.to_str().ok())
        .find_map(|value| parse_retry_after(value, now))
}

/// ShipBob's rate-limit header: seconds until the sliding window has room again.
const X_RETRY_AFTER: &str = "x-retry-after";

#[cfg(test)]
mod tests {
    use super::*;

    fn client(server: &mockito::Server, config: HttpConfig) -> HttpClient {
        HttpClient::new(
            "test",
            "test-1",
            Url::parse(&format!("{}/api", server.url())).unwrap(),
            config,
            vec![Secret::new("s3cr3t")],
        )
        .unwrap()
    }

    fn fast() -> HttpConfig {
        HttpConfig {
            retry: RetryConfig::default()
                .with_backoff(Duration::from_millis(1), Duration::from_millis(5)),
            jitter_seed: Some(1),
            ..HttpConfig::default()
        }
    }

    #[tokio::test]
    async fn joins_segments_and_query_under_the_base_path() {
        let mut server = mockito::Server::new_async().await;
        let mock = server
            .mock("GET", "/api/orders/a%2Fb")
            .match_query(mockito::Matcher::UrlEncoded("page".into(), "0".into()))
            .match_header(
                "user-agent",
                concat!("fulfillkit/", env!("CARGO_PKG_VERSION")),
            )
            .with_body("[]")
            .create_async()
            .await;
        let c = client(&server, fast());
        let r = c
            .send(&Request::new(Method::GET, &["orders", "a/b"]).with_query("page", "0"))
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        mock.assert_async().await;
    }

    #[tokio::test]
    async fn retries_5xx_then_succeeds() {
        let mut server = mockito::Server::new_async().await;
        // mockito serves the first mock until its expected hits are used, then the next.
        let fail = server
            .mock("POST", "/api/x")
            .with_status(500)
            .expect(2)
            .create_async()
            .await;
        let ok = server
            .mock("POST", "/api/x")
            .match_body("same bytes")
            .with_status(200)
            .with_body("done")
            .expect(1)
            .create_async()
            .await;
        let req = Request::new(Method::POST, &["x"])
            .with_json_body(Bytes::from_static(b"same bytes"))
            .idempotent(true);
        let r = client(&server, fast()).send(&req).await.unwrap();
        assert_eq!((r.status, &r.body[..]), (200, &b"done"[..]));
        fail.assert_async().await;
        ok.assert_async().await;
    }

    #[tokio::test]
    async fn a_request_that_is_not_idempotent_is_not_sent_again_after_a_5xx() {
        // The server may have stored it before failing: the caller decides (after a lookup).
        let mut server = mockito::Server::new_async().await;
        let mock = server
            .mock("POST", "/api/x")
            .with_status(500)
            .expect(1)
            .create_async()
            .await;
        let r = client(&server, fast())
            .send(&Request::new(Method::POST, &["x"]))
            .await
            .unwrap();
        assert_eq!(r.status, 500);
        mock.assert_async().await;
    }

    #[tokio::test]
    async fn redirects_are_refused_and_never_followed_nor_referred() {
        let mut elsewhere = mockito::Server::new_async().await;
        let stolen = elsewhere
            .mock("POST", mockito::Matcher::Any)
            .expect(0)
            .create_async()
            .await;
        let mut server = mockito::Server::new_async().await;
        for status in [301, 302, 303, 307, 308] {
            let redirect = server
                .mock("POST", "/api/x")
                .match_header("referer", mockito::Matcher::Missing)
                .with_status(status)
                .with_header(
                    "location",
                    &format!("{}/collect?key=s3cr3t", elsewhere.url()),
                )
                .expect(1)
                .create_async()
                .await;
            let request = Request::new(Method::POST, &["x"])
                .with_header(
                    HeaderName::from_static("key"),
                    HeaderValue::from_static("s3cr3t"),
                    true,
                )
                .with_json_body(Bytes::from_static(b"{}"))
                .idempotent(true);
            let err = client(&server, fast()).send(&request).await.unwrap_err();
            let Error::Protocol { message } = &err else {
                panic!("{status}: {err:?}");
            };
            assert!(message.contains(&elsewhere.url()), "{message}");
            assert!(message.contains(&format!("HTTP {status}")), "{message}");
            assert!(
                !message.contains("s3cr3t") && !message.contains("collect"),
                "{message}"
            );
            redirect.assert_async().await;
            redirect.remove_async().await;
        }
        stolen.assert_async().await;
    }

    #[tokio::test]
    async fn secrets_and_sensitive_header_values_echoed_in_bodies_are_redacted() {
        let mut server = mockito::Server::new_async().await;
        server
            .mock("POST", "/api/echo")
            .with_status(200)
            .with_body_from_request(|request| {
                let signature = request
                    .header("x-signature")
                    .first()
                    .map(|v| v.as_bytes().to_vec())
                    .unwrap_or_default();
                let mut body = b"{\"you_sent\":\"".to_vec();
                body.extend_from_slice(&signature);
                body.extend_from_slice(b"\",\"key\":\"s3cr3t\",\"token\":\"t0ken\"}");
                body
            })
            .create_async()
            .await;
        let request = Request::new(Method::POST, &["echo"])
            .with_header(
                HeaderName::from_static("x-signature"),
                HeaderValue::from_static("62632382e16fa3a1eba48be2c5aab85a879a5dfb"),
                true,
            )
            .with_header(
                reqwest::header::AUTHORIZATION,
                HeaderValue::from_static("Bearer t0ken"),
                true,
            );
        let r = client(&server, fast()).send(&request).await.unwrap();
        assert_eq!(
            std::str::from_utf8(&r.body).unwrap(),
            r#"{"you_sent":"[redacted]","key":"[redacted]","token":"[redacted]"}"#
        );
    }

    #[test]
    fn base_urls_with_credentials_are_refused() {
        assert!(check_base_url("https://api.example.com/v2").is_ok());
        for bad in [
            "https://user:pw@api.example.com/v2",
            "https://user@api.example.com/v2",
            "https://api.example.com/v2?key=1",
            "ftp://api.example.com",
            "not a url",
        ] {
            let problem = check_base_url(bad).unwrap_err();
            assert_eq!(problem.path, "base_url");
            assert!(!problem.reason.contains("pw"), "{problem}");
        }
        let err = HttpClient::new(
            "test",
            "t",
            Url::parse("http://u:pw@127.0.0.1:1/").unwrap(),
            HttpConfig::default(),
            vec![],
        )
        .unwrap_err();
        assert_eq!(err.field_errors()[0].path, "base_url");
    }

    #[tokio::test]
    async fn gives_up_after_max_retries_and_returns_the_last_response() {
        let mut server = mockito::Server::new_async().await;
        let mock = server
            .mock("POST", "/api/x")
            .with_status(503)
            .with_body(r#"{"Error":"down"}"#)
            .expect(3)
            .create_async()
            .await;
        let mut config = fast();
        config.retry = config.retry.with_max_retries(2);
        let r = client(&server, config)
            .send(&Request::new(Method::POST, &["x"]).idempotent(true))
            .await
            .unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(&r.body[..], br#"{"Error":"down"}"#);
        mock.assert_async().await;
    }

    #[tokio::test]
    async fn does_not_retry_other_4xx() {
        let mut server = mockito::Server::new_async().await;
        let mock = server
            .mock("POST", "/api/x")
            .with_status(422)
            .expect(1)
            .create_async()
            .await;
        let r = client(&server, fast())
            .send(&Request::new(Method::POST, &["x"]).idempotent(true))
            .await
            .unwrap();
        assert_eq!(r.status, 422);
        mock.assert_async().await;
    }

    #[tokio::test]
    async fn persistent_429_is_rate_limited_with_the_asked_wait() {
        let mut server = mockito::Server::new_async().await;
        let mock = server
            .mock("GET", "/api/x")
            .with_status(429)
            .with_header("retry-after", "0")
            .expect(3)
            .create_async()
            .await;
        let mut config = fast();
        config.retry = config.retry.with_max_retries(2);
        let err = client(&server, config)
            .send(&Request::new(Method::GET, &["x"]))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::RateLimited { retry_after: Some(d) } if d.is_zero()));
        mock.assert_async().await;
    }

    #[tokio::test]
    async fn x_retry_after_is_the_wait_asked_before_retry_after() {
        let mut server = mockito::Server::new_async().await;
        let mock = server
            .mock("GET", "/api/x")
            .with_status(429)
            .with_header("x-retry-after", "25")
            .with_header("retry-after", "0")
            .expect(1)
            .create_async()
            .await;
        // 25 s is more than the retry budget: no retry, and the caller learns the wait.
        let mut config = fast();
        config.retry = config.retry.with_retry_timeout(Duration::from_secs(1));
        let err = client(&server, config)
            .send(&Request::new(Method::GET, &["x"]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(25)),
            "{err:?}"
        );
        mock.assert_async().await;
    }

    #[test]
    fn an_unreadable_x_retry_after_falls_back_to_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert("x-retry-after", HeaderValue::from_static("soon"));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let now = SystemTime::now();
        assert_eq!(asked_wait(&headers, now), Some(Duration::from_secs(7)));
        headers.remove(RETRY_AFTER);
        assert_eq!(asked_wait(&headers, now), None);
    }

    #[tokio::test]
    async fn body_over_the_cap_is_a_protocol_error() {
        let mut server = mockito::Server::new_async().await;
        server
            .mock("GET", "/api/big")
            .with_body(vec![b'x'; 2048])
            .create_async()
            .await;
        let mut config = fast();
        config.max_body_bytes = 1024;
        let err = client(&server, config)
            .send(&Request::new(Method::GET, &["big"]))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Protocol { message } if message.contains("1024-byte cap")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn error_bodies_are_truncated_not_refused() {
        let mut server = mockito::Server::new_async().await;
        server
            .mock("GET", "/api/e")
            .with_status(400)
            .with_body(vec![b'e'; 4096])
            .create_async()
            .await;
        let mut config = fast();
        config.max_error_body_bytes = 100;
        let r = client(&server, config)
            .send(&Request::new(Method::GET, &["e"]))
            .await
            .unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(r.body.len(), 100);
    }

    #[tokio::test]
    async fn connect_errors_are_retried_and_reported_as_transport() {
        // A port nobody listens on: bind, read the port, drop the listener.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut config = fast();
        config.retry = config.retry.with_max_retries(1);
        let c = HttpClient::new(
            "test",
            "t",
            Url::parse(&format!("http://127.0.0.1:{port}/api?key=s3cr3t")).unwrap(),
            config,
            vec![Secret::new("s3cr3t")],
        )
        .unwrap();
        let err = c
            .send(&Request::new(Method::GET, &["x"]))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Transport { .. }), "{err:?}");
        let all = format!("{err} {err:?} {:?}", std::error::Error::source(&err));
        assert!(!all.contains("s3cr3t"), "{all}");
    }

    #[test]
    fn decode_errors_name_the_endpoint_and_scrub_secrets() {
        let c = HttpClient::new(
            "wapi",
            "w",
            Url::parse("http://127.0.0.1:1/api").unwrap(),
            HttpConfig::default(),
            vec![Secret::new("s3cr3t")],
        )
        .unwrap();
        let err = c
            .decode::<Vec<u32>>("POST /tracking", b"{\"echo\":\"s3cr3t\" oops")
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("POST /tracking"), "{msg}");
        assert!(msg.contains("[redacted]"), "{msg}");
        assert!(!msg.contains("s3cr3t"), "{msg}");
    }

    #[test]
    #[cfg(any(feature = "sphere", feature = "wapi", feature = "shipbob"))]
    fn urls_in_debug_output_lose_query_and_password() {
        assert_eq!(
            redacted_url("https://u:pw@api.spherewms.com/v2/wms?key=s3cr3t#x"),
            "https://u:redacted@api.spherewms.com/v2/wms?[redacted]#x"
        );
        assert_eq!(
            redacted_url("https://api.spherewms.com/v2/wms"),
            "https://api.spherewms.com/v2/wms"
        );
        assert_eq!(redacted_url("not a url?key=s3cr3t"), "not a url?[redacted]");
    }

    #[test]
    fn config_validation_reports_every_problem() {
        let config = HttpConfig {
            connect_timeout: Duration::ZERO,
            rate_limit: Some(RateLimit {
                per_second: 0,
                burst: 0,
            }),
            ..HttpConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(err.field_errors().len(), 3);
    }
}
