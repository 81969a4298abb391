//! Errors as RFC 9457 problem details (`application/problem+json`): one [`Problem`] type, made
//! from the crate's [`Error`] in one place ([`Problem::from_error`]) and from the request
//! extractors' rejections, so every error of the API has the same shape.
//!
//! The `type` of a problem is a URN naming its kind (`urn:fulfillkit:problem:not-found`);
//! clients match on it (or on the `kind` member, the crate's [`ErrorKind`]), never on `title`
//! or `detail`, which are for people.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{Error, ErrorKind, FieldError};

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answer of the API: RFC 9457 problem details, with the crate's error kind, whether
/// retrying may help, and, for invalid input, one entry per field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[non_exhaustive]
pub struct Problem {
    /// What kind of problem: `urn:fulfillkit:problem:<kind>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the kind, the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What happened in this occurrence (with the order id it concerns). Never holds a
    /// credential: the crate's error messages never do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The crate's [`ErrorKind`] (`validation`, `not_found`, …), when the problem is one of
    /// the crate's errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub kind: Option<ErrorKind>,
    /// Whether the same request may succeed later, unchanged.
    pub retryable: bool,
    /// Every invalid field, for `validation` and `bad-request` problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
    /// Seconds to wait before retrying (also sent as `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[non_exhaustive]
pub struct ProblemField {
    /// The field as a JSON Pointer into the request (`/values/comment`), as RFC 9457's
    /// example extension does.
    pub pointer: String,
    /// The field as the crate names it (`values.comment`, `lines[2].quantity`).
    pub path: String,
    /// What is wrong with it.
    pub detail: String,
}

impl ProblemField {
    /// The entry for a crate [`FieldError`].
    pub fn from_field(field: &FieldError) -> Self {
        Self {
            pointer: json_pointer(&field.path),
            path: field.path.clone(),
            detail: field.reason.clone(),
        }
    }

    /// An entry for request parameter or member `name`.
    pub fn new(name: &str, detail: impl Into<String>) -> Self {
        Self {
            pointer: json_pointer(name),
            path: name.to_owned(),
            detail: detail.into(),
        }
    }
}

/// `values.comment` → `/values/comment`, `lines[2].quantity` → `/lines/2/quantity`, with `~`
/// and `/` escaped as JSON Pointer requires.
fn json_pointer(path: &str) -> String {
    let mut pointer = String::with_capacity(path.len() + 1);
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        let (name, indices) = match rest.find('[') {
            Some(at) => {
                let (name, indices) = rest.split_at(at);
                rest = indices;
                (name, rest)
            }
            None => (rest, ""),
        };
        if !name.is_empty() {
            pointer.push('/');
            pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
        }
        for index in indices.split(['[', ']']).filter(|i| !i.is_empty()) {
            pointer.push('/');
            pointer.push_str(index);
        }
    }
    pointer
}

/// The HTTP status, type slug and title of each error kind. Errors that are the provider's
/// (or the store's) and not the caller's are 5xx: a refused provider credential is 502, not
/// 401, so the host's login never mistakes it for its own session ending.
fn classify(kind: ErrorKind) -> (StatusCode, &'static str, &'static str) {
    match kind {
        ErrorKind::Validation => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "invalid input",
        ),
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not-found", "not found"),
        ErrorKind::Conflict => (
            StatusCode::CONFLICT,
            "conflict",
            "conflicts with the current state",
        ),
        ErrorKind::TooLate => (
            StatusCode::CONFLICT,
            "too-late",
            "too late to change the order at the provider",
        ),
        ErrorKind::Unsupported => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported",
            "the provider does not support this operation",
        ),
        ErrorKind::NoRoute => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "no-route",
            "no routing rule matched the order",
        ),
        ErrorKind::Unauthenticated => (
            StatusCode::BAD_GATEWAY,
            "provider-unauthenticated",
            "the provider refused fulfillkit's credentials",
        ),
        ErrorKind::RateLimited => (
            StatusCode::SERVICE_UNAVAILABLE,
            "rate-limited",
            "the provider asked to slow down",
        ),
        ErrorKind::Timeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "the provider did not answer in time",
        ),
        ErrorKind::Transport => (
            StatusCode::BAD_GATEWAY,
            "transport",
            "the provider could not be reached",
        ),
        ErrorKind::Protocol => (
            StatusCode::BAD_GATEWAY,
            "protocol",
            "the provider answered something unreadable",
        ),
        // `ErrorKind` is non-exhaustive: a kind added later is the provider's failure until
        // it is given its own line here.
        _ => (
            StatusCode::BAD_GATEWAY,
            "provider",
            "the provider failed the request",
        ),
    }
}

impl Problem {
    /// A problem of `status` with type slug `slug` (`urn:fulfillkit:problem:<slug>`).
    pub fn new(status: StatusCode, slug: &str, title: impl Into<String>) -> Self {
        Self {
            problem_type: format!("urn:fulfillkit:problem:{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail: None,
            kind: None,
            retryable: false,
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// The problem for one of the crate's errors.
    pub fn from_error(error: &Error) -> Self {
        let kind = error.kind();
        let (status, slug, title) = classify(kind);
        let mut problem = Self::new(status, slug, title).with_detail(error.to_string());
        problem.kind = Some(kind);
        problem.retryable = error.is_retryable();
        problem.errors = error
            .field_errors()
            .iter()
            .map(ProblemField::from_field)
            .collect();
        if let Error::RateLimited {
            retry_after: Some(wait),
        } = error
        {
            problem.retry_after = Some(seconds_up(*wait));
        }
        problem
    }

    /// A 400 for a request that cannot be read (a malformed parameter or body), naming the
    /// fields at fault.
    pub fn bad_request(detail: impl Into<String>, errors: Vec<ProblemField>) -> Self {
        let mut problem = Self::new(StatusCode::BAD_REQUEST, "bad-request", "malformed request")
            .with_detail(detail);
        problem.errors = errors;
        problem
    }

    /// A 401: the host's layer did not say who is asking.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "the caller is not identified",
        )
        .with_detail(
            "the host's authentication layer identified no caller (role and operator name) for \
             this request",
        )
    }

    /// A 404 for a path the API does not have.
    pub fn no_such_route(path: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "no-such-route", "no such endpoint")
            .with_detail(format!("no endpoint at {path}"))
    }

    /// Sets the detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// Whole seconds, rounded up: a client told "0" would retry at once.
fn seconds_up(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl From<Error> for Problem {
    fn from(error: Error) -> Self {
        Problem::from_error(&error)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(status = self.status, detail = ?self.detail, "fulfillkit http api error");
        }
        let retry_after = self.retry_after;
        let mut response = (status, Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_json_pointers() {
        assert_eq!(json_pointer("values.comment"), "/values/comment");
        assert_eq!(json_pointer("lines[2].quantity"), "/lines/2/quantity");
        assert_eq!(json_pointer("a[0][1]"), "/a/0/1");
        assert_eq!(json_pointer("values.a/b~c"), "/values/a~1b~0c");
        assert_eq!(json_pointer("limit"), "/limit");
        assert_eq!(json_pointer(""), "");
    }

    #[test]
    fn every_kind_has_a_status_and_a_type() {
        let cases = [
            (
                Error::validation("x", vec![FieldError::new("values.a", "bad")]),
                422,
                "validation",
            ),
            (Error::NotFound { what: "x".into() }, 404, "not-found"),
            (
                Error::Conflict {
                    message: "x".into(),
                },
                409,
                "conflict",
            ),
            (
                Error::TooLate {
                    state: "Packed".into(),
                },
                409,
                "too-late",
            ),
            (
                Error::Unauthenticated {
                    provider: "wapi".into(),
                },
                502,
                "provider-unauthenticated",
            ),
            (
                Error::RateLimited {
                    retry_after: Some(Duration::from_millis(1500)),
                },
                503,
                "rate-limited",
            ),
            (Error::Timeout { what: "x".into() }, 504, "timeout"),
            (Error::protocol("x"), 502, "protocol"),
            (
                Error::provider_status("wapi", "POST /x", 500, "boom"),
                502,
                "provider",
            ),
        ];
        for (error, status, slug) in cases {
            let problem = Problem::from_error(&error);
            assert_eq!(problem.status, status, "{error}");
            assert_eq!(
                problem.problem_type,
                format!("urn:fulfillkit:problem:{slug}")
            );
            assert_eq!(problem.retryable, error.is_retryable());
        }
        let limited = Problem::from_error(&Error::RateLimited {
            retry_after: Some(Duration::from_millis(1500)),
        });
        assert_eq!(limited.retry_after, Some(2));
        let invalid = Problem::from_error(&Error::validation(
            "waybill",
            vec![FieldError::new("values.a", "bad")],
        ));
        assert_eq!(invalid.errors, vec![ProblemField::new("values.a", "bad")]);
    }
}
