//! The one place the API reads order exceptions from the orchestrator: a page by filter and
//! cursor, and one order's exception. Cursors leave here as opaque text (the `next` of a
//! page, the `after` of the next request), so how the orchestrator pages exceptions can
//! change without the API or its clients noticing.

use crate::error::{Error, Result};
use crate::model::OrderException;
use crate::orchestrator::{ExceptionCursor, ExceptionFilter, Orchestrator};

/// One page of exceptions and the cursor of the next, if any.
pub(super) struct Page {
    pub(super) exceptions: Vec<OrderException>,
    pub(super) next: Option<String>,
}

/// The exceptions passing `filter`, after the page cursor `after` (as a previous page's
/// `next` gave it), at most `limit`.
pub(super) async fn page(
    orchestrator: &Orchestrator,
    filter: &ExceptionFilter,
    after: Option<&str>,
    limit: usize,
) -> Result<Page> {
    let after = after.map(str::parse::<ExceptionCursor>).transpose()?;
    let page = orchestrator
        .exceptions(filter, after.as_ref(), limit)
        .await?;
    Ok(Page {
        exceptions: page.exceptions,
        next: page.next_after.map(|id| id.to_string()),
    })
}

/// The exception of `order_id` (the open one, or the last resolved).
///
/// # Errors
///
/// [`Error::NotFound`] when the order has none.
pub(super) async fn of_order(
    orchestrator: &Orchestrator,
    order_id: &str,
) -> Result<OrderException> {
    orchestrator
        .exception(order_id)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: format!("exception of order {order_id}"),
        })
}
