//! Runs one check under the time limit and names its contract in whatever failure it ends
//! with: a hang, a broken assertion, or an error the implementation returned where the check
//! expected an answer (a database that is down fails as `store contract `insert`: ...`).

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Polls the inner future, turning a panic while polling into an `Err` with its payload.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

fn text(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
}

/// Runs `check` for `contract` of a `side` (`store`, `provider`) within `limit`.
///
/// # Panics
///
/// When the check panics (with its message, prefixed by `<side> contract `<contract>`: `
/// unless it names a contract already) or takes longer than `limit`.
pub(crate) async fn run_check(
    side: &str,
    contract: &str,
    limit: Duration,
    check: impl Future<Output = ()>,
) {
    match tokio::time::timeout(limit, CatchUnwind(Box::pin(check))).await {
        Ok(Ok(())) => {}
        Ok(Err(payload)) => {
            let named = format!("{side} contract `");
            match text(payload.as_ref()) {
                Some(message) if !message.starts_with(&named) => {
                    panic!("{side} contract `{contract}`: {message}")
                }
                _ => resume_unwind(payload),
            }
        }
        Err(_) => panic!(
            "{side} contract `{contract}`: no answer within {} s (a call hung, or a listing never ended)",
            limit.as_secs()
        ),
    }
}
