//! ShipBob's transport: the Personal Access Token as bearer, the instance's
//! `shipbob_channel_id` header on every call, the dated API version as the first path segment,
//! pacing by `x-remaining-calls`, the two paging styles (headers for orders, `next` links in
//! the body for inventory and subscriptions), and the one function that turns a non-success
//! answer into the crate error ([`error_for`]).
//!
//! The token never leaves this file except as the `Authorization` header, marked sensitive:
//! the shared HTTP client never prints it and scrubs it from every body it reads.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::wire::{self, OrderView, Page};
use crate::error::{Error, FieldError, Result};
use crate::http::{HttpClient, Method, Request, Response, Secret};

/// Most pages read from one listing before giving up with [`Error::Protocol`].
pub const MAX_PAGES: usize = 1_000;
/// Orders per page of `GET /order` (the documented maximum, §4.4).
pub(crate) const ORDER_PAGE: usize = 250;

const CHANNEL: HeaderName = HeaderName::from_static("shipbob_channel_id");
const REMAINING: &str = "x-remaining-calls";
/// Below this many remaining calls the client slows down (§3.2 \[assumed]).
const LOW_WATER: u32 = 10;
/// ShipBob's window: 150 calls per 60 s, so one call frees up every 400 ms.
const CALL_SPACING: Duration = Duration::from_millis(400);

/// What a 404 means for the call at hand.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Missing<'a> {
    /// A thing that may be gone (an order, a shipment): [`Error::NotFound`] naming it.
    Thing(&'a str),
    /// An endpoint that should exist: [`Error::Protocol`].
    Endpoint,
}

/// The crate error for a non-success `response` to `endpoint` (protocol doc §3.3, mapping
/// \[assumed]):
///
/// | HTTP | error |
/// |---|---|
/// | 401, 403 | `Unauthenticated` (a bad token, or a missing scope or channel) |
/// | 404 | `NotFound` for a thing, `Protocol` for an endpoint, as `missing` says |
/// | 400, 422 | `Validation`, one field error per model-state key, else one at `body` |
/// | 409 | `Conflict` |
/// | 429 | `RateLimited`, with `x-retry-after` (else `Retry-After`) |
/// | other | `Provider` with status, endpoint and ShipBob's message; retryable for 5xx, 408, 425 |
///
/// Every text taken from the body is scrubbed of the token first (the HTTP client did so).
pub(crate) fn error_for(
    http: &HttpClient,
    endpoint: &str,
    response: &Response,
    missing: Missing<'_>,
) -> Error {
    let details = wire::error_details(&response.body);
    let message = http.scrub(&details.message);
    match response.status {
        401 | 403 => Error::Unauthenticated {
            provider: "shipbob".into(),
        },
        404 => match missing {
            Missing::Thing(what) => Error::NotFound {
                what: what.to_owned(),
            },
            Missing::Endpoint => Error::protocol(format!(
                "shipbob does not know {endpoint} (HTTP 404): {message}"
            )),
        },
        400 | 422 => super::super::refused_request(
            http,
            "shipbob",
            endpoint,
            response.status,
            message,
            &details.fields,
        ),
        409 => Error::Conflict {
            message: format!("shipbob refused {endpoint}: {message}"),
        },
        429 => Error::RateLimited {
            retry_after: retry_after(&response.headers),
        },
        status => Error::provider_status("shipbob", endpoint, status, message),
    }
}

/// The wait a 429 asks for: `x-retry-after` (seconds, ShipBob's header), else a standard
/// `Retry-After` (§3.2).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    crate::http::asked_wait(headers, std::time::SystemTime::now())
}

/// How long to wait before the next call when ShipBob said `remaining` calls are left in its
/// window: nothing above [`LOW_WATER`], then one call's share of the window per missing call
/// (a pure function, so the pacing is tested without a clock).
pub(crate) fn pacing_delay(remaining: Option<u32>) -> Duration {
    match remaining {
        Some(left) if left < LOW_WATER => CALL_SPACING * (LOW_WATER - left),
        _ => Duration::ZERO,
    }
}

/// The orders of a listing, and the server's clock (`Date`) when its first page was answered.
#[derive(Debug, Default)]
pub(crate) struct OrderListing {
    pub(crate) orders: Vec<OrderView>,
    pub(crate) server_time: Option<DateTime<Utc>>,
}

/// Authenticates and sends requests for one ShipBob channel.
pub(crate) struct ShipBobClient {
    http: HttpClient,
    authorization: HeaderValue,
    channel: HeaderValue,
    version: String,
    /// `x-remaining-calls` of the last answer; `u32::MAX` before any.
    remaining: AtomicU32,
}

impl fmt::Debug for ShipBobClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShipBobClient")
            .field("http", &self.http)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The `Authorization` value for `token`, marked sensitive.
///
/// # Errors
///
/// [`Error::Validation`] when the token is not a valid header value (never quoting it).
pub(crate) fn bearer(token: &Secret) -> Result<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
        Error::validation(
            "shipbob configuration",
            vec![FieldError::new(
                "token",
                "must be a valid HTTP header value (visible ASCII)",
            )],
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `request` with `body` serialized as its JSON body.
///
/// # Errors
///
/// [`Error::Protocol`] if the body cannot be serialized.
pub(crate) fn with_json<B: Serialize>(request: Request, body: &B) -> Result<Request> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| Error::protocol(format!("cannot serialize the shipbob request body: {e}")))?;
    Ok(request.with_json_body(Bytes::from(bytes)))
}

impl ShipBobClient {
    pub(crate) fn new(
        http: HttpClient,
        authorization: HeaderValue,
        channel_id: i64,
        version: String,
    ) -> Self {
        Self {
            http,
            authorization,
            channel: HeaderValue::from(channel_id),
            version,
            remaining: AtomicU32::new(u32::MAX),
        }
    }

    pub(crate) fn http(&self) -> &HttpClient {
        &self.http
    }

    /// A request to `{base}/{version}/{segments…}`, labelled without the version (ids stay in
    /// the label: they are ShipBob's numbers, not secrets).
    pub(crate) fn request(&self, method: Method, segments: &[&str]) -> Request {
        let label = format!("{method} /{}", segments.join("/"));
        let mut all = Vec::with_capacity(segments.len() + 1);
        all.push(self.version.as_str());
        all.extend_from_slice(segments);
        Request::new(method, &all).with_endpoint(label)
    }

    /// A `GET`, safe to repeat.
    pub(crate) fn get(&self, segments: &[&str]) -> Request {
        self.request(Method::GET, segments).idempotent(true)
    }

    /// Sends `request` with the token and the channel header, after the pacing the last answer
    /// asked for; returns ShipBob's answer whatever its status.
    pub(crate) async fn send(&self, request: Request) -> Result<Response> {
        let wait = pacing_delay(match self.remaining.load(Ordering::Relaxed) {
            u32::MAX => None,
            left => Some(left),
        });
        if !wait.is_zero() {
            tracing::debug!(wait_ms = wait.as_millis() as u64, "shipbob: few calls left");
            tokio::time::sleep(wait).await;
        }
        let request = request
            .with_header(AUTHORIZATION, self.authorization.clone(), true)
            .with_header(CHANNEL, self.channel.clone(), false);
        let response = self.http.send(&request).await?;
        if let Some(left) = response
            .headers
            .get(REMAINING)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok())
        {
            self.remaining.store(left, Ordering::Relaxed);
        }
        Ok(response)
    }

    /// Sends `request` and requires a 2xx answer, mapping anything else through
    /// [`error_for`].
    pub(crate) async fn send_ok(&self, request: Request, missing: Missing<'_>) -> Result<Response> {
        let endpoint = request.endpoint().to_owned();
        let response = self.send(request).await?;
        if response.is_success() {
            Ok(response)
        } else {
            Err(error_for(&self.http, &endpoint, &response, missing))
        }
    }

    /// Sends `request`, requires a 2xx answer and decodes it as `T`.
    pub(crate) async fn fetch<T: DeserializeOwned>(
        &self,
        request: Request,
        missing: Missing<'_>,
    ) -> Result<(T, Response)> {
        let endpoint = request.endpoint().to_owned();
        let response = self.send_ok(request, missing).await?;
        let value = self.http.decode(&endpoint, &response.body)?;
        Ok((value, response))
    }

    /// The request a `next` link (or `Next-Page` header) points to: a path below the base URL
    /// with its query, relative or absolute. A link to another origin is refused — the token
    /// would go with it.
    fn follow(&self, link: &str, endpoint: &str) -> Result<Request> {
        let base = self.http.base_url();
        let url = base.join(link.trim()).map_err(|_| {
            Error::protocol(format!(
                "shipbob answered {endpoint} with an unreadable next link"
            ))
        })?;
        if url.origin() != base.origin() {
            return Err(Error::protocol(format!(
                "shipbob answered {endpoint} with a next link to another origin ({}); not followed",
                url.origin().ascii_serialization()
            )));
        }
        let below = below_base(base, &url).ok_or_else(|| {
            Error::protocol(format!(
                "shipbob answered {endpoint} with a next link outside the API"
            ))
        })?;
        let segments: Vec<&str> = below.iter().map(String::as_str).collect();
        let mut request = Request::new(Method::GET, &segments)
            .with_endpoint(endpoint.to_owned())
            .idempotent(true);
        for (key, value) in url.query_pairs() {
            request = request.with_query(key.into_owned(), value.into_owned());
        }
        Ok(request)
    }

    /// Every order `GET /order` lists with the filters `query`, page by page: `Limit=250`,
    /// following the `Next-Page` header when there is one, else the next `Page` until a page
    /// holds fewer than `Limit` rows (§4.4 \[assumed]).
    ///
    /// # Errors
    ///
    /// Any error of a page; [`Error::Protocol`] for a page that is not a list of orders, or a
    /// listing still going after [`MAX_PAGES`] pages.
    pub(crate) async fn list_orders(&self, query: &[(&str, String)]) -> Result<OrderListing> {
        let mut all = OrderListing::default();
        let mut request = self.orders_page(query, 1);
        for page in 1..=MAX_PAGES {
            let (rows, response): (Vec<OrderView>, Response) =
                self.fetch(request, Missing::Endpoint).await?;
            let count = rows.len();
            all.orders.extend(rows);
            if page == 1 {
                all.server_time = header_text(&response.headers, "date")
                    .and_then(|d| httpdate::parse_http_date(d).ok())
                    .map(DateTime::<Utc>::from);
            }
            let next = header_text(&response.headers, "next-page");
            let total_pages = header_text(&response.headers, "total-pages")
                .and_then(|t| t.trim().parse::<usize>().ok());
            request = match next.filter(|n| !n.trim().is_empty()) {
                Some(link) => self.follow(link, "GET /order")?,
                None if count < ORDER_PAGE || total_pages.is_some_and(|t| page >= t) => {
                    return Ok(all);
                }
                None => self.orders_page(query, page + 1),
            };
            if count == 0 {
                return Ok(all);
            }
        }
        Err(Error::protocol(format!(
            "shipbob GET /order still returned pages after {MAX_PAGES}"
        )))
    }

    fn orders_page(&self, query: &[(&str, String)], page: usize) -> Request {
        let mut request = self.get(&["order"]);
        for (key, value) in query {
            request = request.with_query(*key, value.as_str());
        }
        request
            .with_query("Limit", ORDER_PAGE.to_string())
            .with_query("Page", page.to_string())
    }

    /// Every item of a listing whose body is `{"items": […], "next": …}` (inventory,
    /// subscriptions), following `next` verbatim until it is null (§6).
    ///
    /// # Errors
    ///
    /// Any error of a page; [`Error::Protocol`] for an unreadable page or link, or a listing
    /// still going after [`MAX_PAGES`] pages.
    pub(crate) async fn list_linked<T: DeserializeOwned>(&self, first: Request) -> Result<Vec<T>> {
        let endpoint = first.endpoint().to_owned();
        let mut all = Vec::new();
        let mut request = first;
        for _ in 0..MAX_PAGES {
            let (page, _): (Page<T>, Response) = self.fetch(request, Missing::Endpoint).await?;
            let empty = page.items.is_empty();
            all.extend(page.items);
            match page.next.filter(|n| !n.trim().is_empty()) {
                Some(link) if !empty => request = self.follow(&link, &endpoint)?,
                _ => return Ok(all),
            }
        }
        Err(Error::protocol(format!(
            "shipbob {endpoint} still returned pages after {MAX_PAGES}"
        )))
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The path segments of `url` below `base`'s path, decoded; `None` when `url` is not below it.
fn below_base(base: &Url, url: &Url) -> Option<Vec<String>> {
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let base_segments: Vec<&str> = base
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let mut segments = url.path_segments()?.filter(|s| !s.is_empty());
    for expected in base_segments {
        if segments.next()? != expected {
            return None;
        }
    }
    Some(segments.map(|s| decode(&s.replace('+', "%2B"))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpConfig;

    fn client(base: &str) -> ShipBobClient {
        let http = HttpClient::new(
            "shipbob",
            "t",
            Url::parse(base).unwrap(),
            HttpConfig::default(),
            vec![Secret::new("pat")],
        )
        .unwrap();
        ShipBobClient::new(
            http,
            bearer(&Secret::new("pat")).unwrap(),
            432951,
            "2026-07".into(),
        )
    }

    #[test]
    fn next_links_stay_with_the_api() {
        let c = client("https://api.shipbob.com");
        let r = c
            .follow(
                "/2026-07/inventory-level?PageSize=100&Cursor=a%2Bb",
                "GET /inventory-level",
            )
            .unwrap();
        assert_eq!(r.endpoint(), "GET /inventory-level");
        assert_eq!(
            c.http()
                .base_url()
                .join("/2026-07/inventory-level")
                .unwrap()
                .as_str(),
            "https://api.shipbob.com/2026-07/inventory-level"
        );
        assert!(
            c.follow("https://api.shipbob.com/2026-07/order?Page=2", "x")
                .is_ok()
        );
        for bad in [
            "https://evil.example/2026-07/order",
            "http://api.shipbob.com/x",
        ] {
            let err = c.follow(bad, "GET /order").unwrap_err();
            assert!(matches!(err, Error::Protocol { .. }), "{bad}: {err}");
        }
        let under = client("http://127.0.0.1:9/sb");
        assert!(under.follow("/other/2026-07/order", "x").is_err());
        assert!(under.follow("/sb/2026-07/order?Page=2", "x").is_ok());
    }

    #[test]
    fn pacing_starts_below_ten_remaining_calls() {
        assert_eq!(pacing_delay(None), Duration::ZERO);
        assert_eq!(pacing_delay(Some(150)), Duration::ZERO);
        assert_eq!(pacing_delay(Some(10)), Duration::ZERO);
        assert_eq!(pacing_delay(Some(9)), Duration::from_millis(400));
        assert_eq!(pacing_delay(Some(0)), Duration::from_secs(4));
    }

    #[test]
    fn the_wait_of_a_429_comes_from_x_retry_after_first() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert("x-retry-after", HeaderValue::from_static("25"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(25)));
    }

    #[test]
    fn the_bearer_is_sensitive_and_checked() {
        let value = bearer(&Secret::new("pat-123")).unwrap();
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().unwrap(), "Bearer pat-123");
        let err = bearer(&Secret::new("bad\ntoken")).unwrap_err();
        assert!(!err.to_string().contains("bad\ntoken"));
    }
}
