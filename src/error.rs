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
    /// Another replica (or caller) holds the order's edit lease and did not release it in
    /// time: nothing was sent; try again later.
    #[error("{what} is busy: another replica is changing it")]
    Busy {
        /// What was busy, e.g. `order SO-1001`.
        what: String,
    },
    /// The store failed: the database is down, a query failed, a row could not be read. What
    /// a [`Store`](crate::store::Store) implementation returns for its own failures; retrying
    /// later may succeed.
    #[error("store error during {what}")]
    Store {
        /// What was being done, e.g. `claim due shipments`.
        what: String,
        /// The underlying error.
        #[source]
        source: Source,
    },
    /// A provider error that fits no other variant: a server error that outlasted the HTTP
    /// client's retries, an unexpected HTTP status, or an adapter's own failure.
    #[error("{}", provider_message(provider, *status, endpoint.as_deref(), message))]
    Provider {
        /// Which provider kind.
        provider: String,
        /// The HTTP status the provider answered, if it answered one.
        status: Option<u16>,
        /// The endpoint called, e.g. `POST /outbounds`.
        endpoint: Option<String>,
        /// The provider's own message (redacted, at most 500 characters), or the source's.
        message: String,
        /// Whether the same call may succeed later, decided once by the adapter from the HTTP
        /// status ([`transient_status`]); [`Error::is_retryable`] reports it.
        retryable: bool,
        /// The underlying error, if any.
        #[source]
        source: Option<Source>,
    },
}

fn provider_message(
    provider: &str,
    status: Option<u16>,
    endpoint: Option<&str>,
    message: &str,
) -> String {
    let mut text = match (endpoint, status) {
        (Some(endpoint), Some(status)) => {
            format!("{provider} answered {endpoint} with HTTP {status}")
        }
        (Some(endpoint), None) => format!("{provider} failed during {endpoint}"),
        (None, Some(status)) => format!("{provider} answered HTTP {status}"),
        (None, None) => format!("{provider} failed"),
    };
    if !message.is_empty() {
        text.push_str(": ");
        text.push_str(message);
    }
    text
}

/// Whether an HTTP status says the same request may succeed later: 408, 425, 429 and every
/// 5xx. Every other status is permanent: the request, the credentials or an operator must
/// change first. The one rule the adapters and the HTTP client's retries share.
pub fn transient_status(status: u16) -> bool {
    matches!(status, 408 | 425 | 429) || (500..600).contains(&status)
}

/// The kind of an [`Error`], as data: what [`Failure`] stores and an operator UI filters by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::Validation`].
    Validation,
    /// [`Error::NotFound`].
    NotFound,
    /// [`Error::Conflict`].
    Conflict,
    /// [`Error::Unauthenticated`].
    Unauthenticated,
    /// [`Error::RateLimited`].
    RateLimited,
    /// [`Error::TooLate`].
    TooLate,
    /// [`Error::Unsupported`].
    Unsupported,
    /// [`Error::Timeout`].
    Timeout,
    /// [`Error::Transport`].
    Transport,
    /// [`Error::Protocol`].
    Protocol,
    /// [`Error::NoRoute`].
    NoRoute,
    /// [`Error::Provider`].
    Provider,
    /// [`Error::Busy`].
    Busy,
    /// [`Error::Store`].
    Store,
}

impl ErrorKind {
    /// The kind as its snake_case name, as serialized (`rate_limited`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Validation => "validation",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::TooLate => "too_late",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Transport => "transport",
            ErrorKind::Protocol => "protocol",
            ErrorKind::NoRoute => "no_route",
            ErrorKind::Provider => "provider",
            ErrorKind::Busy => "busy",
            ErrorKind::Store => "store",
        }
    }
}

/// An error as it is kept in a record or an event and shown to an operator: its kind, the
/// whole message with its causes, whether retrying may help, and — when a provider answered —
/// the HTTP status and the endpoint. Serde data; never holds a secret (error messages never
/// do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Failure {
    /// What kind of error it was.
    pub kind: ErrorKind,
    /// The error's message followed by its causes, joined with `: `, at most 1,000 characters.
    pub message: String,
    /// [`Error::is_retryable`] of the error.
    pub retryable: bool,
    /// The provider's HTTP status, when it answered one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The endpoint called, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// Longest [`Failure::message`] kept, in characters.
const FAILURE_MESSAGE_MAX_CHARS: usize = 1_000;

impl Failure {
    /// A failure of `kind` with `message`, for failures that are not an [`Error`].
    pub fn new(kind: ErrorKind, message: impl Into<String>, retryable: bool) -> Self {
        Self {
            kind,
            message: message.into(),
            retryable,
            http_status: None,
            endpoint: None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<&Error> for Failure {
    fn from(error: &Error) -> Self {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.ends_with(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        if let Some((cut, _)) = message.char_indices().nth(FAILURE_MESSAGE_MAX_CHARS) {
            message.truncate(cut);
            message.push('…');
        }
        let (http_status, endpoint) = match error {
            Error::Provider {
                status, endpoint, ..
            } => (*status, endpoint.clone()),
            Error::Timeout { what } | Error::Transport { what, .. } => (None, Some(what.clone())),
            _ => (None, None),
        };
        Self {
            kind: error.kind(),
            message,
            retryable: error.is_retryable(),
            http_status,
            endpoint,
        }
    }
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

    /// A permanent [`Error::Provider`] wrapping `source` (an adapter's own failure).
    pub fn provider(
        provider: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Provider {
            provider: provider.into(),
            status: None,
            endpoint: None,
            message: String::new(),
            retryable: false,
            source: Some(Arc::new(source)),
        }
    }

    /// A [`Error::Provider`] for an HTTP `status` the adapter has no better variant for;
    /// retryable when the status is transient ([`transient_status`]). `message` is the
    /// provider's own words, already redacted; it is cut to 500 characters.
    pub fn provider_status(
        provider: impl Into<String>,
        endpoint: impl Into<String>,
        status: u16,
        message: impl Into<String>,
    ) -> Self {
        let mut message = message.into();
        if let Some((cut, _)) = message.char_indices().nth(500) {
            message.truncate(cut);
            message.push('…');
        }
        Error::Provider {
            provider: provider.into(),
            status: Some(status),
            endpoint: Some(endpoint.into()),
            message,
            retryable: transient_status(status),
            source: None,
        }
    }

    /// The error's kind, as data.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Validation { .. } => ErrorKind::Validation,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::Unauthenticated { .. } => ErrorKind::Unauthenticated,
            Error::RateLimited { .. } => ErrorKind::RateLimited,
            Error::TooLate { .. } => ErrorKind::TooLate,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Transport { .. } => ErrorKind::Transport,
            Error::Protocol { .. } => ErrorKind::Protocol,
            Error::NoRoute { .. } => ErrorKind::NoRoute,
            Error::Provider { .. } => ErrorKind::Provider,
            Error::Busy { .. } => ErrorKind::Busy,
            Error::Store { .. } => ErrorKind::Store,
        }
    }

    /// The error as a [`Failure`] to store or show.
    pub fn to_failure(&self) -> Failure {
        Failure::from(self)
    }

    /// A [`Error::Store`] wrapping `source`, for [`Store`](crate::store::Store)
    /// implementations.
    pub fn store(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Store {
            what: what.into(),
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

    /// Whether the same call may succeed if tried again later, unchanged — the one answer to
    /// that question in the crate; the orchestrator never decides otherwise.
    ///
    /// True for rate limits, timeouts, transport failures, a busy order, store failures and
    /// provider errors the adapter found transient (an HTTP 5xx, 408, 425 or 429: [`transient_status`]); false for
    /// everything that needs a change of data, credentials or an operator.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RateLimited { .. }
            | Error::Timeout { .. }
            | Error::Transport { .. }
            | Error::Busy { .. }
            | Error::Store { .. } => true,
            Error::Provider { retryable, .. } => *retryable,
            _ => false,
        }
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
        assert!(!err.is_retryable());
        let failure = err.to_failure();
        assert_eq!(failure.message, "wapi failed: inner cause");
        assert_eq!(failure.kind, ErrorKind::Provider);
    }

    #[test]
    fn retryability_follows_the_http_status() {
        for (status, retryable) in [
            (500, true),
            (502, true),
            (503, true),
            (408, true),
            (425, true),
            (429, true),
            (400, false),
            (403, false),
            (410, false),
            (413, false),
            (422, false),
        ] {
            let err = Error::provider_status("wapi", "POST /outbounds", status, "nope");
            assert_eq!(err.is_retryable(), retryable, "{status}");
            let failure = err.to_failure();
            assert_eq!(failure.http_status, Some(status));
            assert_eq!(failure.endpoint.as_deref(), Some("POST /outbounds"));
            assert_eq!(failure.retryable, retryable);
            assert_eq!(
                failure.message,
                format!("wapi answered POST /outbounds with HTTP {status}: nope")
            );
        }
    }

    #[test]
    fn failures_are_serde_data() {
        let failure = Error::Timeout {
            what: "POST /tracking".into(),
        }
        .to_failure();
        let json = serde_json::to_value(&failure).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "timeout", "message": "POST /tracking timed out",
                "retryable": true, "endpoint": "POST /tracking"})
        );
        assert_eq!(serde_json::from_value::<Failure>(json).unwrap(), failure);
    }

    #[test]
    fn rate_limited_message_names_the_wait() {
        let err = Error::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(err.to_string(), "rate limited (retry after 2000 ms)");
    }
}
