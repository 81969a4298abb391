//! The JSON endpoints, one file per area, each registered from the `#[utoipa::path]`
//! attribute that documents it.

mod exceptions;
mod exports;
mod instances;
mod orders;

use std::sync::Arc;

use axum::extract::OriginalUri;
use axum::http::StatusCode;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use super::ApiState;
use super::openapi::FrontMatter;
use super::problem::{Problem, ProblemField};

/// Items per page when the request names no `limit`.
const DEFAULT_PAGE: usize = 25;
/// Most items per page.
const MAX_PAGE: usize = 100;

/// Every JSON endpoint, with the document generated from them.
pub(super) fn api() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::with_openapi(FrontMatter::openapi())
        .merge(instances::routes())
        .merge(orders::routes())
        .merge(exceptions::routes())
        .merge(exports::routes())
}

/// The page size a request asked for, checked.
fn page_limit(asked: Option<usize>) -> Result<usize, Problem> {
    let limit = asked.unwrap_or(DEFAULT_PAGE);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(Problem::bad_request(
            "limit is out of range",
            vec![ProblemField::new(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
            )],
        ))
    }
}

/// Any path the router does not have.
pub(super) async fn no_such_route(uri: OriginalUri) -> Problem {
    Problem::no_such_route(uri.0.path())
}

/// A path the router has, with a method it does not take.
pub(super) async fn method_not_allowed(uri: OriginalUri) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "method not allowed",
    )
    .with_detail(format!("{} does not take this method", uri.0.path()))
}
