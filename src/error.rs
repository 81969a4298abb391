//! The one error type of the crate.
//!
//! Every fallible function returns [`Result<T>`](Result), whose error is [`Error`]. Its variants
//! are the decisions a caller can act on (fix the data, re-authenticate, retry later, hand to an
//! operator); [`Error::is_retryable`] answers the most common question. Provider adapters keep
//! their own private error types and convert them into [`Error`] in one place.
//!
//! `Error` is `Clone` so that a stored failure (an export that failed, a scripted mock failure)
//! can be reported more than once; sources are shared behind an [`Arc`] and stay reachable
//! through [`std::error::Error::source`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed, shareable error source.
pub type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// One problem with one field of an input (an order, a waybill, a configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Where the problem is, as a path into the input: `customer.phone`, `lines[2].quantity`.
    pub path: String,
    /// What is wrong, lowercase, without a trailing period.
    pub reason: String,
}

impl FieldError {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// An operation of the [`FulfillmentProvider`](crate::provider::FulfillmentProvider) trait.
///
/// Used to say which operation is unsupported, and to script failures of the mock provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operation {
    /// `create_order`.
    Create,
    /// `update_order`.
    Update,
    /// `cancel_order`.
    Cancel,
    /// `track`.
    Track,
    /// `stock`.
    Stock,
    /// `search_addresses`.
    SearchAddresses,
}

impl Operation {
    /// Every operation, in declaration order.
    pub const ALL: [Operation; 6] = [
        Operation::Create,
        Operation::Update,
        Operation::Cancel,
        Operation::Track,
        Operation::Stock,
        Operation::SearchAddresses,
    ];

    /// The trait method's name, e.g. `create_order`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create_order",
            Operation::Update => "update_order",
            Operation::Cancel => "cancel_order",
            Operation::Track => "track",
            Operation::Stock => "stock",
            Operation::SearchAddresses => "search_addresses",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in fulfillkit.
///
/// Match on the variant to decide what to do; new variants may be added in minor releases.
/// Messages never contain credentials.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is invalid; `fields` lists every problem found, not just the first.
    #[error("invalid {subject}: {}", join_fields(.fields))]
    Validation {
        /// What was validated, e.g. `order SO-1001` or `waybill for order SO-1001`.
        subject: String,
        /// Every problem, with its path.
        fields: Vec<FieldError>,
    },
    /// The provider (or the store) does not know the thing asked for.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `shipment WH0000000024`.
        what: String,
    },
    /// The request contradicts the provider's state, e.g. a duplicate order number.
    #[error("conflict: {message}")]
    Conflict {
        /// What conflicted.
        message: String,
    },
    /// The provider refused the credentials.
    #[error("{provider} refused the credentials")]
    Unauthenticated {
        /// Which provider (kind or instance) refused.
        provider: String,
    },
    /// The provider asked us to slow down and the retry budget ran out.
    #[error("rate limited{}", fmt_retry_after(.retry_after))]
    RateLimited {
        /// How long the provider asked us to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// The provider can no longer change the order (packed, handed to the carrier, ...).
    #[error("too late to change the order at the provider (state: {state})")]
    TooLate {
        /// The provider's state that made the change impossible, as the provider names it.
        state: String,
    },
    /// The provider does not support this operation; its `Capabilities` say so too.
    #[error("{provider} does not support {operation}")]
    Unsupported {
        /// The operation asked for.
        operation: Operation,
        /// Which provider kind.
        provider: String,
    },
    /// A request to the provider did not finish in time.
    #[error("{what} timed out")]
    Timeout {
        /// What timed out, e.g. `POST /outbounds`.
        what: String,
    },
    /// The request could not be sent or the connection broke.
    #[error("transport error during {what}")]
    Transport {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: Source,
    },
    /// The provider answered something we cannot read (malformed JSON, body over the size cap,
    /// an undocumented status).
    #[error("protocol error: {message}")]
    Protocol {
        /// What could not be read, with a short excerpt of the body (never a secret).
        message: String,
    },
    /// No routing rule matched the order.
    #[error("no routing rule matched order {order_id} (tried: {})", .rules_tried.join(", "))]
    NoRoute {
        /// The order that could not be routed.
        order_id: String,
        /// The names of the rules tried, in order.
        rules_tried: Vec<String>,
    },
    /// A provider error that fits no other variant.
    #[error("{provider} failed")]
    Provider {
        /// Which provider kind.
        provider: String,
        /// The provider's error.
        #[source]
        source: Source,
    },
}

fn join_fields(fields: &[FieldError]) -> String {
    let parts: Vec<String> = fields.iter().map(ToString::to_string).collect();
    parts.join("; ")
}

fn fmt_retry_after(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (retry after {} ms)", d.as_millis()),
        None => String::new(),
    }
}

impl Error {
    /// A [`Error::Validation`] for `subject` with the given problems.
    pub fn validation(subject: impl Into<String>, fields: Vec<FieldError>) -> Self {
        Error::Validation {
            subject: subject.into(),
            fields,
        }
    }

    /// A [`Error::Protocol`] with `message`.
    pub fn protocol(message: impl Into<String>) -> Self {
        Error::Protocol {
            message: message.into(),
        }
    }

    /// A [`Error::Unsupported`] for `operation` on `provider`.
    pub fn unsupported(operation: Operation, provider: impl Into<String>) -> Self {
        Error::Unsupported {
            operation,
            provider: provider.into(),
        }
    }

    /// A [`Error::Provider`] wrapping `source`.
    pub fn provider(
        provider: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Provider {
            provider: provider.into(),
            source: Arc::new(source),
        }
    }

    /// A [`Error::Transport`] wrapping `source`.
    pub fn transport(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Transport {
            what: what.into(),
            source: Arc::new(source),
        }
    }

    /// Whether the same call may succeed if tried again later, unchanged.
    ///
    /// True for rate limits, timeouts and transport failures; false for everything that needs
    /// a change of data, credentials or an operator.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::RateLimited { .. } | Error::Timeout { .. } | Error::Transport { .. }
        )
    }

    /// The field problems of a [`Error::Validation`], empty for any other variant.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            Error::Validation { fields, .. } => fields,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_send_sync_static() {
        fn assert_bounds<T: Send + Sync + 'static + std::error::Error>() {}
        assert_bounds::<Error>();
    }

    #[test]
    fn validation_message_lists_every_field() {
        let err = Error::validation(
            "order SO-1",
            vec![
                FieldError::new("customer.name", "must not be empty"),
                FieldError::new("lines[0].quantity", "must be at least 1"),
            ],
        );
        assert_eq!(
            err.to_string(),
            "invalid order SO-1: customer.name: must not be empty; lines[0].quantity: must be at least 1"
        );
        assert_eq!(err.field_errors().len(), 2);
    }

    #[test]
    fn retryable_kinds() {
        assert!(Error::RateLimited { retry_after: None }.is_retryable());
        assert!(Error::Timeout { what: "x".into() }.is_retryable());
        assert!(Error::transport("x", std::io::Error::other("reset")).is_retryable());
        assert!(
            !Error::TooLate {
                state: "Packed".into()
            }
            .is_retryable()
        );
        assert!(!Error::protocol("bad json").is_retryable());
        assert!(!Error::validation("order 1", vec![]).is_retryable());
    }

    #[test]
    fn source_is_kept() {
        use std::error::Error as _;
        let err = Error::provider("wapi", std::io::Error::other("inner cause"));
        let source = err.source().expect("source kept");
        assert_eq!(source.to_string(), "inner cause");
        assert_eq!(err.to_string(), "wapi failed");
    }

    #[test]
    fn rate_limited_message_names_the_wait() {
        let err = Error::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(err.to_string(), "rate limited (retry after 2000 ms)");
    }
}
