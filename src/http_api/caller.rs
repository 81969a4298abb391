//! Who is asking: the host's authentication layer says it, fulfillkit only reads it.
//!
//! The host's middleware puts a [`Caller`] into the request's extensions (or the host gives
//! [`HttpApi::with_caller`](super::HttpApi::with_caller) a function that makes one from its
//! own user type). A request without one is refused with a 401 problem before any route,
//! asset or document is reached, so nothing of the API is reachable around the host's layer.

use std::fmt;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiState;
use super::problem::Problem;

/// The person using the API, as the host's authentication identified them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Caller {
    /// The host's role name, which each instance's
    /// [`StockPolicy`](crate::model::StockPolicy) maps to a stock view.
    role: String,
    /// The operator's name or id, recorded as [`Resolution::by`](crate::model::Resolution::by)
    /// when they resolve an exception.
    operator: String,
}

impl Caller {
    /// A caller with the host's `role` name and `operator` name (or user id).
    pub fn new(role: impl Into<String>, operator: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            operator: operator.into(),
        }
    }

    /// The host's role name.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The operator's name or id.
    pub fn operator(&self) -> &str {
        &self.operator
    }
}

/// Makes the [`Caller`] of a request from what the host's layer left in it.
pub(super) type CallerFn = Arc<dyn Fn(&Parts) -> Option<Caller> + Send + Sync>;

/// The default: a [`Caller`] the host's middleware inserted into the request's extensions.
pub(super) fn from_extensions() -> CallerFn {
    Arc::new(|parts: &Parts| parts.extensions.get::<Caller>().cloned())
}

/// Wraps a [`CallerFn`] so that the state can be `Debug`.
#[derive(Clone)]
pub(super) struct CallerSource(pub(super) CallerFn);

impl fmt::Debug for CallerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallerSource(..)")
    }
}

/// The layer every route sits behind: resolves the caller, refuses the request without one
/// (or with a blank operator name, which could not be recorded on a resolution), and leaves
/// the caller in the extensions for the handlers.
pub(super) async fn require_caller(
    State(state): State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    match (state.caller.0)(&parts) {
        Some(caller) if !caller.operator.trim().is_empty() => {
            parts.extensions.insert(caller);
            next.run(Request::from_parts(parts, body)).await
        }
        _ => Problem::unauthenticated().into_response(),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(Problem::unauthenticated)
    }
}
