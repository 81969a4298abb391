//! The Standard Webhooks scheme (spec 1.0.0, symmetric `v1`): [`WebhookSecret`], [`sign`], and
//! the [`Verifier`] that checks the `webhook-id`, `webhook-timestamp` and `webhook-signature`
//! headers against the raw body.
//!
//! Signed content is `{webhook-id}.{webhook-timestamp}.{body}` with the body's bytes exactly
//! as received; the key is the base64-decoded part of the secret after `whsec_`; the
//! signature is `v1,` + base64(HMAC-SHA256). The header carries space-separated signatures
//! (several during a key rotation); entries of other versions are skipped. ShipBob signs by
//! this scheme unchanged (protocol doc §7.5).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::WebhookError;

/// `webhook-id`: the message id, stable across retries (the idempotency key).
pub const HEADER_ID: &str = "webhook-id";
/// `webhook-timestamp`: Unix seconds of the attempt.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// `webhook-signature`: space-separated `v1,<base64>` entries.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// How far a timestamp may be from now: 5 minutes, as in the reference libraries (ShipBob
/// documents none; protocol doc §7.5, \[assumed]).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

const PREFIX: &str = "whsec_";
const VERSION: &str = "v1";
/// Key sizes the spec allows, in bytes.
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
/// Longest header value looked at: a rotation has a handful of 48-character entries.
const MAX_SIGNATURE_HEADER: usize = 4096;
/// Longest `webhook-id` accepted.
const MAX_ID: usize = 256;

/// A Standard Webhooks secret (`whsec_` + base64 of 24 to 64 random bytes). Its `Debug`
/// prints nothing of it; it is not serializable.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` (padding optional; the prefix may be left out).
    ///
    /// # Errors
    ///
    /// [`WebhookError::InvalidSecret`] when the text is not base64 or the key is not 24 to 64
    /// bytes long. The message never quotes the secret.
    pub fn parse(text: &str) -> Result<Self, WebhookError> {
        let encoded = text.trim();
        let encoded = encoded.strip_prefix(PREFIX).unwrap_or(encoded);
        let key = STANDARD
            .decode(encoded)
            .or_else(|_| STANDARD_NO_PAD.decode(encoded))
            .map_err(|_| WebhookError::InvalidSecret {
                reason: "not base64 after the whsec_ prefix".into(),
            })?;
        Self::from_bytes(key)
    }

    /// A secret from its raw key bytes.
    ///
    /// # Errors
    ///
    /// [`WebhookError::InvalidSecret`] unless the key is 24 to 64 bytes long.
    pub fn from_bytes(key: impl Into<Vec<u8>>) -> Result<Self, WebhookError> {
        let key = key.into();
        if !KEY_BYTES.contains(&key.len()) {
            return Err(WebhookError::InvalidSecret {
                reason: format!(
                    "the key is {} bytes; Standard Webhooks keys are 24 to 64 bytes",
                    key.len()
                ),
            });
        }
        Ok(Self { key })
    }

    /// The secret as text, `whsec_` + base64: what a provider is told at subscription time.
    /// Call it only where the secret is sent.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.key))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC accepts keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

/// The `webhook-signature` value (`v1,<base64>`) of `body` sent as message `id` at
/// `timestamp` (Unix seconds) with `secret`: what a sender (the simulators) puts in the header.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = secret.mac(id, timestamp, body).finalize().into_bytes();
    format!("{VERSION},{}", STANDARD.encode(digest))
}

/// Where the verifier reads headers from: any header map of the host's framework, by name,
/// case-insensitively.
pub trait HeaderLookup {
    /// The first value of header `name` (lowercase) as text, if present and text.
    fn header(&self, name: &str) -> Option<&str>;
}

impl HeaderLookup for reqwest::header::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for std::collections::BTreeMap<K, V> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>, S> HeaderLookup for std::collections::HashMap<K, V, S> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

/// A delivery whose signature matched: its message id, timestamp, the provider's topic header
/// when it sent one, and the body exactly as received.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedWebhook {
    /// `webhook-id`: the same on every retry of one message.
    pub id: String,
    /// `webhook-timestamp`, Unix seconds.
    pub timestamp: i64,
    /// The topic, from `x-webhook-topic` (or the legacy `shipbob-topic`), when present.
    pub topic: Option<String>,
    /// The body, as received.
    pub body: Bytes,
}

/// Verifies Standard Webhooks deliveries against one or more secrets.
///
/// ```
/// use std::time::Duration;
/// use fulfillkit::webhook::{Verifier, WebhookSecret, sign};
///
/// let old = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// let new = WebhookSecret::parse("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX")?;
/// // During a rotation both secrets are accepted.
/// let verifier = Verifier::new(old).with_secret(new.clone()).with_tolerance(Duration::from_secs(60));
/// let body = br#"{"id":1}"#;
/// let signature = sign(&new, "msg_1", 1_790_000_000, body);
/// let headers = vec![
///     ("webhook-id", "msg_1".to_string()),
///     ("webhook-timestamp", "1790000000".to_string()),
///     ("webhook-signature", signature),
/// ];
/// assert!(verifier.verify_at(&headers, body, 1_790_000_030).is_ok());
/// assert!(verifier.verify_at(&headers, body, 1_790_000_061).is_err());
/// # Ok::<(), fulfillkit::webhook::WebhookError>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    secrets: Vec<WebhookSecret>,
    tolerance: Duration,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &self.secrets.len())
            .field("tolerance", &self.tolerance)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier accepting signatures made with `secret`, with the default tolerance.
    pub fn new(secret: WebhookSecret) -> Self {
        Self {
            secrets: vec![secret],
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// Also accepts `secret` (a key rotation: the old and the new secret both verify).
    pub fn with_secret(mut self, secret: WebhookSecret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// Sets how far a timestamp may be from now, either way (default 5 minutes).
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The tolerance in force.
    pub fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// Verifies a delivery now (the system clock).
    ///
    /// # Errors
    ///
    /// See [`Verifier::verify_at`].
    pub fn verify(
        &self,
        headers: &(impl HeaderLookup + ?Sized),
        body: &[u8],
    ) -> Result<VerifiedWebhook, WebhookError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        self.verify_at(headers, body, now)
    }

    /// Verifies a delivery as of `now` (Unix seconds): the three headers present, the
    /// timestamp within the tolerance, and one `v1` signature equal (in constant time) to the
    /// HMAC of one configured secret.
    ///
    /// # Errors
    ///
    /// [`WebhookError::MissingHeader`], [`WebhookError::InvalidHeader`],
    /// [`WebhookError::TimestampOutOfTolerance`] or [`WebhookError::InvalidSignature`].
    pub fn verify_at(
        &self,
        headers: &(impl HeaderLookup + ?Sized),
        body: &[u8],
        now: i64,
    ) -> Result<VerifiedWebhook, WebhookError> {
        let required = |name: &'static str| {
            let value = headers
                .header(name)
                .ok_or(WebhookError::MissingHeader { name })?
                .trim();
            if value.is_empty() {
                Err(WebhookError::InvalidHeader { name })
            } else {
                Ok(value)
            }
        };
        let id = required(HEADER_ID)?;
        if id.len() > MAX_ID || id.chars().any(char::is_control) {
            return Err(WebhookError::InvalidHeader { name: HEADER_ID });
        }
        let timestamp: i64 =
            required(HEADER_TIMESTAMP)?
                .parse()
                .map_err(|_| WebhookError::InvalidHeader {
                    name: HEADER_TIMESTAMP,
                })?;
        let signatures = required(HEADER_SIGNATURE)?;
        if signatures.len() > MAX_SIGNATURE_HEADER {
            return Err(WebhookError::InvalidHeader {
                name: HEADER_SIGNATURE,
            });
        }
        let skew = now.saturating_sub(timestamp);
        let tolerance = i64::try_from(self.tolerance.as_secs()).unwrap_or(i64::MAX);
        if skew.saturating_abs() > tolerance {
            return Err(WebhookError::TimestampOutOfTolerance { skew_secs: skew });
        }
        let candidates: Vec<Vec<u8>> = signatures
            .split(' ')
            .filter_map(|entry| entry.split_once(','))
            .filter(|(version, _)| *version == VERSION)
            .filter_map(|(_, signature)| STANDARD.decode(signature.trim()).ok())
            .collect();
        let matched = self.secrets.iter().any(|secret| {
            let mac = secret.mac(id, timestamp, body);
            // `verify_slice` compares in constant time; each candidate needs its own MAC.
            candidates
                .iter()
                .any(|candidate| mac.clone().verify_slice(candidate).is_ok())
        });
        if !matched {
            return Err(WebhookError::InvalidSignature);
        }
        let topic = ["x-webhook-topic", "shipbob-topic"]
            .iter()
            .find_map(|name| headers.header(name))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        Ok(VerifiedWebhook {
            id: id.to_owned(),
            timestamp,
            topic,
            body: Bytes::copy_from_slice(body),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const BYTES_SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
    const BODY_2: &[u8] = br#"{"id":100810005,"order_id":309589638,"reference_id":"SO-1001","status":"Completed","tracking":{"carrier":"USPS","tracking_number":"9400111899223197428490"}}"#;

    fn secret(text: &str) -> WebhookSecret {
        WebhookSecret::parse(text).unwrap()
    }

    #[test]
    fn the_documents_secrets_decode_to_the_documented_keys() {
        let hex: String = secret(DOC_SECRET)
            .key
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, "31f290f6bf06298aab4f08d43c3f082cf648a362da2da4b0");
        assert_eq!(secret(BYTES_SECRET).key, (0u8..24).collect::<Vec<_>>());
        assert_eq!(secret(BYTES_SECRET).expose(), BYTES_SECRET);
        assert_eq!(BODY_2.len(), 156);
    }

    #[test]
    fn signing_reproduces_the_documents_vectors() {
        // Protocol doc §7.6, rows 1 to 4.
        assert_eq!(
            sign(
                &secret(DOC_SECRET),
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let id = "msg_2zQshipbobVector0001";
        assert_eq!(
            sign(&secret(DOC_SECRET), id, 1790000000, BODY_2),
            "v1,FJeX4S/4RD/lD5TsA3Fs+WeilNY4H0HwJJ9I42FHHJY="
        );
        let spaced = String::from_utf8(BODY_2.to_vec())
            .unwrap()
            .replace(r#""status":"#, r#""status": "#);
        assert_eq!(spaced.len(), 157);
        assert_eq!(
            sign(&secret(DOC_SECRET), id, 1790000000, spaced.as_bytes()),
            "v1,39aEiZDeXQb6d2r1h/MMdE46OkopRaUzR3c2vqLHGqI="
        );
        assert_eq!(
            sign(&secret(BYTES_SECRET), id, 1790000000, BODY_2),
            "v1,/cIeXTM1HNSMqVQGXT8XArtusrgkRBb4llGmCG0kNNQ="
        );
    }

    #[test]
    fn secrets_outside_the_spec_are_refused_without_being_quoted() {
        for bad in [
            "whsec_",
            "whsec_!!!",
            "whsec_AAAA",
            &format!("whsec_{}", "A".repeat(100)),
        ] {
            let err = WebhookSecret::parse(bad).unwrap_err();
            assert!(matches!(err, WebhookError::InvalidSecret { .. }), "{bad}");
            assert!(!err.to_string().contains("AAAA"), "{err}");
        }
        // Padding is optional, the prefix too.
        assert_eq!(
            secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            secret(DOC_SECRET)
        );
        assert_eq!(
            format!("{:?}", secret(DOC_SECRET)),
            "WebhookSecret([redacted])"
        );
    }
}
