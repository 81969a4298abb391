//! Intake of signed provider webhooks (feature `webhook`, on with `shipbob`): verification by
//! the [Standard Webhooks](https://www.standardwebhooks.com/) scheme, de-duplication by
//! `webhook-id`, and — for ShipBob — decoding into the [`TrackingUpdate`](crate::model::TrackingUpdate)s that a host passes
//! to [`Orchestrator::ingest_tracking`](crate::orchestrator::Orchestrator::ingest_tracking).
//!
//! The host's web framework stays its own: this module owns no server and takes what every
//! framework can give, the request's headers ([`HeaderLookup`]: an `http::HeaderMap` or
//! name/value pairs) and its **raw body bytes** (a re-serialized body no longer verifies).
//!
//! - [`Verifier`]: the three `webhook-*` headers, HMAC-SHA256 over `id.timestamp.body` with
//!   every configured [`WebhookSecret`] (several during a rotation), a timestamp tolerance
//!   (default 5 minutes), constant-time comparison; anything unverifiable is a typed
//!   [`WebhookError`] and nothing is decoded;
//! - [`Deduplicator`]: "have I processed this `webhook-id`?", with a bounded in-memory
//!   [`MemoryDeduplicator`]; hosts with several replicas back it by a shared store. Ingesting a
//!   delivery twice or out of order cannot corrupt a record anyway (tracking merges
//!   idempotently and order-independently): the de-duplicator saves the work;
//! - [`ShipBobWebhooks`] (feature `shipbob`): verification, de-duplication and decoding of
//!   ShipBob deliveries into tracking updates.
//!
//! ```
//! use fulfillkit::webhook::{Verifier, WebhookSecret};
//!
//! // Standard Webhooks' published test vector.
//! let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//! let headers = [
//!     ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
//!     ("webhook-timestamp", "1614265330"),
//!     ("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
//! ];
//! let verified = Verifier::new(secret).verify_at(&headers[..], br#"{"test": 2432232314}"#, 1614265330)?;
//! assert_eq!(verified.id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
//! # Ok::<(), fulfillkit::webhook::WebhookError>(())
//! ```

mod dedup;
#[cfg(feature = "shipbob")]
mod shipbob;
mod standard;

pub use dedup::{
    DEFAULT_DEDUP_CAPACITY, DEFAULT_DEDUP_RETENTION, Deduplicator, MemoryDeduplicator,
};
#[cfg(feature = "shipbob")]
pub use shipbob::{ShipBobWebhooks, WebhookIntake};
pub use standard::{
    DEFAULT_TOLERANCE, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, HeaderLookup,
    VerifiedWebhook, Verifier, WebhookSecret, sign,
};

/// Why a webhook delivery was not taken. Nothing was decoded or changed.
///
/// [`WebhookError::http_status`] says what to answer the sender.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// A required header is missing.
    #[error("webhook header {name} is missing")]
    MissingHeader {
        /// The header's name.
        name: &'static str,
    },
    /// A header is present but not what the scheme allows (not text, not a number, empty).
    #[error("webhook header {name} is malformed")]
    InvalidHeader {
        /// The header's name.
        name: &'static str,
    },
    /// The timestamp is further from now than the tolerance (a replay, or a skewed clock).
    #[error("webhook timestamp is {skew_secs} s away from now, beyond the tolerance")]
    TimestampOutOfTolerance {
        /// Seconds between the timestamp and now (positive: in the past).
        skew_secs: i64,
    },
    /// No signature matches any configured secret.
    #[error("webhook signature does not match")]
    InvalidSignature,
    /// A configured secret is not a Standard Webhooks secret (never quotes it).
    #[error("invalid webhook secret: {reason}")]
    InvalidSecret {
        /// What is wrong with it.
        reason: String,
    },
    /// The delivery verified but its body is not what the provider sends.
    #[error("webhook payload cannot be read: {message}")]
    Payload {
        /// What could not be read (a short excerpt at most, never a secret).
        message: String,
    },
    /// The delivery verified and was read, but turning it into updates needed the provider
    /// (or the de-duplication store), which failed; the sender should deliver it again.
    #[error("webhook could not be processed: {0}")]
    Processing(#[source] crate::Error),
}

impl WebhookError {
    /// The HTTP status to answer the sender: 401 for anything unverifiable (missing or
    /// malformed headers, a stale timestamp, a wrong signature), 400 for a verified body that
    /// cannot be read (a retry would not help), 500 for a bad configuration, 503 when
    /// processing failed and a retry may succeed.
    pub fn http_status(&self) -> u16 {
        match self {
            WebhookError::MissingHeader { .. }
            | WebhookError::InvalidHeader { .. }
            | WebhookError::TimestampOutOfTolerance { .. }
            | WebhookError::InvalidSignature => 401,
            WebhookError::Payload { .. } => 400,
            WebhookError::InvalidSecret { .. } => 500,
            WebhookError::Processing(_) => 503,
        }
    }

    /// Whether the delivery failed verification: it must change nothing and is answered 401.
    pub fn is_unverified(&self) -> bool {
        self.http_status() == 401
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_send_sync_and_say_what_to_answer() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<WebhookError>();
        assert_eq!(WebhookError::InvalidSignature.http_status(), 401);
        assert!(WebhookError::MissingHeader { name: HEADER_ID }.is_unverified());
        assert_eq!(
            WebhookError::Payload {
                message: "x".into()
            }
            .http_status(),
            400
        );
        let processing = WebhookError::Processing(crate::Error::Timeout { what: "x".into() });
        assert_eq!(processing.http_status(), 503);
        assert!(!processing.is_unverified());
    }
}
