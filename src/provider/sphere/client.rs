//! SphereWMS's transport: the API key in the configured [`AuthMode`], JSON bodies, the paging
//! loop of protocol §4, and the one function that turns a non-success answer into the crate
//! error ([`error_for`]).
//!
//! The key never leaves this file except as the `Authorization` / `key` header (marked
//! sensitive) or the `key` query parameter of the URL the shared HTTP client builds for each
//! attempt; that client never logs or reports a URL or a header, and scrubs the key (raw and
//! URL-encoded) from every body excerpt it quotes.

use std::fmt;
use std::ops::ControlFlow;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue, RETRY_AFTER};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::builder::AuthMode;
use super::wire;
use crate::error::{Error, FieldError, Result};
use crate::http::{HttpClient, Method, Request, Response, Secret, parse_retry_after};

/// Most pages read from one listing before giving up with [`Error::Protocol`] (protocol §4).
pub const MAX_PAGES: usize = 1_000;

const KEY_HEADER: HeaderName = HeaderName::from_static("key");

/// How the API key travels (protocol §3).
enum Auth {
    /// `Authorization: Bearer {key}` or `key: {key}`, marked sensitive.
    Header(HeaderName, HeaderValue),
    /// `?key={key}`.
    Query(Secret),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Header(name, _) => write!(f, "Header({name})"),
            Auth::Query(_) => f.write_str("Query"),
        }
    }
}

/// Authenticates and sends requests for one SphereWMS environment.
pub(crate) struct SphereClient {
    http: HttpClient,
    auth: Auth,
    page_size: usize,
}

impl fmt::Debug for SphereClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SphereClient")
            .field("http", &self.http)
            .field("auth", &self.auth)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

/// The secrets the HTTP client scrubs from body excerpts: the key as is and, when it differs,
/// as it appears URL-encoded in a query string (a server may echo either).
pub(crate) fn scrubbed_forms(key: &Secret) -> Vec<Secret> {
    let encoded: String = url::form_urlencoded::byte_serialize(key.expose().as_bytes()).collect();
    let mut forms = vec![key.clone()];
    if encoded != key.expose() {
        forms.push(Secret::new(encoded));
    }
    forms
}

/// The header value carrying `key` in `mode`, if `mode` uses a header.
///
/// # Errors
///
/// [`Error::Validation`] when the key is not a valid header value.
pub(crate) fn auth_header(
    mode: AuthMode,
    key: &Secret,
) -> Result<Option<(HeaderName, HeaderValue)>> {
    let (name, text) = match mode {
        AuthMode::Bearer => (AUTHORIZATION, format!("Bearer {}", key.expose())),
        AuthMode::Header => (KEY_HEADER, key.expose().to_owned()),
        AuthMode::Query => return Ok(None),
    };
    let mut value = HeaderValue::from_str(&text).map_err(|_| {
        Error::validation(
            "sphere configuration",
            vec![FieldError::new(
                "api_key",
                "must be a valid HTTP header value (visible ASCII)",
            )],
        )
    })?;
    value.set_sensitive(true);
    Ok(Some((name, value)))
}

/// What a 404 means for the call at hand (protocol §8).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Missing<'a> {
    /// An order that SphereWMS does not know: [`Error::NotFound`] naming it.
    Order(&'a str),
    /// An endpoint that should exist: [`Error::Protocol`].
    Action,
}

/// The crate error for a non-success `response` to `endpoint` (protocol §8, \[assumed]):
///
/// | HTTP | error |
/// |---|---|
/// | 401, 403 | `Unauthenticated` (bad key, or environment / client not enabled for it) |
/// | 404 | `NotFound` for an order, `Protocol` for an action, as `missing` says |
/// | 400, 422 | `Validation`, one field error per `errors[].field`, else one at `body` |
/// | 408 | `Timeout` |
/// | 409 | `Conflict` (the void and update flows turn it into `TooLate` themselves) |
/// | 429 | `RateLimited`, with the `Retry-After` asked for |
/// | other | `Provider` with status, endpoint and SphereWMS's message; retryable for 5xx and 425 |
///
/// Every text taken from the body is scrubbed of the key first.
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
            provider: "sphere".into(),
        },
        404 => match missing {
            Missing::Order(what) => Error::NotFound {
                what: what.to_owned(),
            },
            Missing::Action => Error::protocol(format!(
                "sphere does not know {endpoint} (HTTP 404): {message}"
            )),
        },
        400 | 422 => super::super::refused_request(
            http,
            "sphere",
            endpoint,
            response.status,
            message,
            &details.fields,
        ),
        408 => Error::Timeout {
            what: format!("sphere {endpoint} (HTTP 408)"),
        },
        409 => Error::Conflict {
            message: format!("sphere refused {endpoint}: {message}"),
        },
        429 => Error::RateLimited {
            retry_after: response
                .headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, std::time::SystemTime::now())),
        },
        status => Error::provider_status("sphere", endpoint, status, message),
    }
}

/// A `GET` of `segments`, safe to repeat.
pub(crate) fn get(segments: &[&str]) -> Request {
    Request::new(Method::GET, segments).idempotent(true)
}

/// `request` with `body` serialized as its JSON body.
///
/// # Errors
///
/// [`Error::Protocol`] if the body cannot be serialized.
pub(crate) fn with_json<B: Serialize>(request: Request, body: &B) -> Result<Request> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| Error::protocol(format!("cannot serialize the sphere request body: {e}")))?;
    Ok(request.with_json_body(Bytes::from(bytes)))
}

impl SphereClient {
    /// A client sending through `http` with the key of `mode`; `header` is the value from
    /// [`auth_header`] (for the header modes) and `key` the key itself (for the query mode).
    pub(crate) fn new(
        http: HttpClient,
        header: Option<(HeaderName, HeaderValue)>,
        key: Secret,
        page_size: usize,
    ) -> Self {
        let auth = match header {
            Some((name, value)) => Auth::Header(name, value),
            None => Auth::Query(key),
        };
        Self {
            http,
            auth,
            page_size: page_size.max(1),
        }
    }

    pub(crate) fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Rows per page of a listing.
    pub(crate) fn page_size(&self) -> usize {
        self.page_size
    }

    /// Sends `request` with the key attached, returning SphereWMS's answer whatever its
    /// status.
    pub(crate) async fn send(&self, request: Request) -> Result<Response> {
        let request = match &self.auth {
            Auth::Header(name, value) => request.with_header(name.clone(), value.clone(), true),
            // Last, so the filters come first in the URL.
            Auth::Query(key) => request.with_query("key", key.expose()),
        };
        self.http.send(&request).await
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

    /// Reads the listing `segments` with the filters `query`, page by page (protocol §4):
    /// `limit` rows per page (default: the instance's page size), `page` from 0, each page a
    /// bare JSON array handed to `on_page`.
    ///
    /// Stops when `on_page` breaks, on an empty page, or on a page shorter than `limit`. A
    /// page *longer* than `limit` means the server ignored `limit`; it is taken as the whole
    /// list rather than risk reading the same rows again \[assumed].
    ///
    /// # Errors
    ///
    /// Any error of a page; [`Error::Protocol`] when a page is not an array of `T`, or when
    /// the listing still goes on after [`MAX_PAGES`] pages.
    pub(crate) async fn paginate<T, F>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        limit: Option<usize>,
        mut on_page: F,
    ) -> Result<()>
    where
        T: DeserializeOwned,
        F: FnMut(Vec<T>) -> ControlFlow<()> + Send,
    {
        let limit = limit.unwrap_or(self.page_size).max(1);
        let mut endpoint = String::new();
        for page in 0..MAX_PAGES {
            let mut request = get(segments);
            for (name, value) in query {
                request = request.with_query(*name, value.as_str());
            }
            let request = request
                .with_query("limit", limit.to_string())
                .with_query("page", page.to_string());
            endpoint = request.endpoint().to_owned();
            let response = self.send_ok(request, Missing::Action).await?;
            let rows: Vec<T> = self.http.decode(&endpoint, &response.body)?;
            let count = rows.len();
            if on_page(rows).is_break() || count != limit {
                return Ok(());
            }
        }
        Err(Error::protocol(format!(
            "sphere {endpoint} still returned full pages after {MAX_PAGES} pages of {limit}"
        )))
    }

    /// Every row of a listing (see [`SphereClient::paginate`]).
    pub(crate) async fn list<T>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Vec<T>>
    where
        T: DeserializeOwned + Send,
    {
        let mut all = Vec::new();
        self.paginate(segments, query, None, |rows: Vec<T>| {
            all.extend(rows);
            ControlFlow::Continue(())
        })
        .await?;
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_headers_are_sensitive_and_checked() {
        let key = Secret::new("k3y");
        let (name, value) = auth_header(AuthMode::Bearer, &key).unwrap().unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("authorization", "Bearer k3y")
        );
        assert!(value.is_sensitive());
        assert!(!format!("{value:?}").contains("k3y"));
        let (name, value) = auth_header(AuthMode::Header, &key).unwrap().unwrap();
        assert_eq!((name.as_str(), value.to_str().unwrap()), ("key", "k3y"));
        assert!(value.is_sensitive());
        assert!(auth_header(AuthMode::Query, &key).unwrap().is_none());
        let err = auth_header(AuthMode::Header, &Secret::new("bad\nkey")).unwrap_err();
        assert_eq!(err.field_errors()[0].path, "api_key");
        assert!(!err.to_string().contains("bad\nkey"));
        // Any key works in the query.
        assert!(auth_header(AuthMode::Query, &Secret::new("bad\nkey")).is_ok());
    }

    #[test]
    fn the_url_encoded_form_is_scrubbed_too() {
        let forms = scrubbed_forms(&Secret::new("a+b/c=="));
        let exposed: Vec<_> = forms.iter().map(Secret::expose).collect();
        assert_eq!(exposed, ["a+b/c==", "a%2Bb%2Fc%3D%3D"]);
        assert_eq!(scrubbed_forms(&Secret::new("plain")).len(), 1);
    }
}
