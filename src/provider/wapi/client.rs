//! Wapi's transport: HMAC-SHA1 signing of the exact body bytes, the two auth headers, and the
//! one function that turns a non-success answer into the crate error ([`error_for`]).

use std::fmt;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{HeaderName, HeaderValue};
use serde::Serialize;
use sha1::Sha1;

use super::wire;
use crate::error::{Error, FieldError, Result};
use crate::http::{HttpClient, Method, Request, Response, Secret};

const CLIENT_ID: HeaderName = HeaderName::from_static("x-client-id");
const SIGNATURE: HeaderName = HeaderName::from_static("x-signature");

/// Signs and sends requests for one Wapi account.
pub(crate) struct WapiClient {
    http: HttpClient,
    client_id: String,
    secret: Secret,
}

impl fmt::Debug for WapiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WapiClient")
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

/// `HMAC-SHA1(secret, body)` as 40 lowercase hex digits (protocol §2).
pub(crate) fn sign(secret: &Secret, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The crate error for a non-success `response` to `endpoint` (protocol §3): 401, or a
/// 400 about the signature, is `Unauthenticated`; other 400s are `Validation`; 404 is
/// `Protocol` (an endpoint we should not have called); 429 `RateLimited`; anything else a
/// `Provider` error carrying the status, the endpoint and Wapi's message, retryable for a 5xx,
/// 408 or 425 and permanent otherwise (a 403, 410, 413 …).
pub(crate) fn error_for(http: &HttpClient, endpoint: &str, response: &Response) -> Error {
    let message = http.scrub(&wire::error_text(&response.body));
    match response.status {
        401 => Error::Unauthenticated {
            provider: "wapi".into(),
        },
        400 if message.to_lowercase().contains("signature") => Error::Unauthenticated {
            provider: "wapi".into(),
        },
        400 => Error::validation(
            format!("request to wapi {endpoint}"),
            vec![FieldError::new("body", message)],
        ),
        404 => Error::protocol(format!(
            "wapi does not know {endpoint} (HTTP 404): {message}"
        )),
        429 => Error::RateLimited { retry_after: None },
        status => Error::provider_status("wapi", endpoint, status, message),
    }
}

impl WapiClient {
    pub(crate) fn new(http: HttpClient, client_id: String, secret: Secret) -> Self {
        Self {
            http,
            client_id,
            secret,
        }
    }

    pub(crate) fn http(&self) -> &HttpClient {
        &self.http
    }

    /// POSTs `body` to `path`: serialized once, signed, and those exact bytes sent on every
    /// attempt. `idempotent` lets the HTTP client retry after a timeout.
    pub(crate) async fn post<B: Serialize>(
        &self,
        path: &[&str],
        body: &B,
        idempotent: bool,
    ) -> Result<Response> {
        let bytes = Bytes::from(serde_json::to_vec(body).map_err(|e| {
            Error::protocol(format!("cannot serialize the wapi request body: {e}"))
        })?);
        let signature = sign(&self.secret, &bytes);
        let client_id = HeaderValue::from_str(&self.client_id).map_err(|_| {
            Error::validation(
                "wapi configuration",
                vec![FieldError::new("client_id", "must be a valid header value")],
            )
        })?;
        let signature = HeaderValue::from_str(&signature)
            .map_err(|_| Error::protocol("signature is not a header value"))?;
        let request = Request::new(Method::POST, path)
            .with_header(CLIENT_ID, client_id, true)
            .with_header(SIGNATURE, signature, true)
            .with_json_body(bytes)
            .idempotent(idempotent);
        self.http.send(&request).await
    }

    /// POSTs and requires a 2xx answer, mapping anything else through [`error_for`].
    pub(crate) async fn post_ok<B: Serialize>(
        &self,
        path: &[&str],
        body: &B,
        idempotent: bool,
    ) -> Result<Response> {
        let response = self.post(path, body, idempotent).await?;
        if response.is_success() {
            Ok(response)
        } else {
            Err(error_for(&self.http, &endpoint(path), &response))
        }
    }
}

/// The label of a Wapi endpoint, e.g. `POST /outbounds`.
pub(crate) fn endpoint(path: &[&str]) -> String {
    format!("POST /{}", path.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_test_vectors() {
        let key = Secret::new("wapi-test-secret");
        let vectors: [(&[u8], &str); 4] = [
            (
                br#"{"trackingNumbers":["WH0000000024"]}"#,
                "62632382e16fa3a1eba48be2c5aab85a879a5dfb",
            ),
            (
                br#"{"trackingNumbers": [ "WH0000000024" ]}"#,
                "68a92d9f942feca07d814bbf7697350812ec704e",
            ),
            (
                br#"{"country":"IT","productName":"Demo Product-1"}"#,
                "b1cd330176c0d1dddf0fe7f8e2e329606a9a6d8e",
            ),
            (b"", "2bbf4e1917e2f2e9e159c52f3d24139b508bf1c3"),
        ];
        for (body, expected) in vectors {
            assert_eq!(
                sign(&key, body),
                expected,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn rfc_2202_case_2() {
        assert_eq!(
            sign(&Secret::new("Jefe"), b"what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }
}
