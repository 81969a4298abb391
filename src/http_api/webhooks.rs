//! Provider webhooks, per instance: the raw body and the headers go to [`crate::webhook`],
//! the updates it finds to [`Orchestrator::ingest_tracking`], and the answer says what the
//! provider should do (a 2xx stops its retries; anything else makes it deliver again).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;

use super::extract::ApiPath;
use super::problem::Problem;
use crate::error::Error;
use crate::model::InstanceId;
use crate::orchestrator::Orchestrator;
use crate::webhook::{ShipBobWebhooks, WebhookError, WebhookIntake};

/// The intakes by instance, and where their updates go.
struct Intakes {
    by_instance: BTreeMap<InstanceId, ShipBobWebhooks>,
    orchestrator: Orchestrator,
}

/// `POST {instance}` for each instance with an intake.
pub(super) fn routes(
    by_instance: BTreeMap<InstanceId, ShipBobWebhooks>,
    orchestrator: Orchestrator,
) -> Router {
    Router::new()
        .route("/{instance}", post(receive))
        .fallback(super::routes::no_such_route)
        .with_state(Arc::new(Intakes {
            by_instance,
            orchestrator,
        }))
}

/// What a delivery brought.
#[derive(Debug, Serialize)]
struct Received {
    /// The delivery's `webhook-id`.
    webhook_id: String,
    /// `updates` (stored), `duplicate` (processed before) or `ignored` (no tracking news).
    outcome: &'static str,
    /// Tracking updates stored.
    updates: usize,
}

/// The problem for a delivery that was not taken, with the status
/// [`WebhookError::http_status`] chose.
fn webhook_problem(error: &WebhookError) -> Problem {
    let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let (slug, title) = match status.as_u16() {
        401 => ("webhook-unverified", "the webhook could not be verified"),
        400 => ("webhook-payload", "the webhook's payload cannot be read"),
        503 => (
            "webhook-processing",
            "the webhook could not be processed now",
        ),
        _ => (
            "webhook-configuration",
            "the webhook intake is misconfigured",
        ),
    };
    let mut problem = Problem::new(status, slug, title).with_detail(error.to_string());
    problem.retryable = status == StatusCode::SERVICE_UNAVAILABLE;
    problem
}

async fn receive(
    State(intakes): State<Arc<Intakes>>,
    ApiPath(instance): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Received>, Problem> {
    let Some(intake) = intakes.by_instance.get(instance.as_str()) else {
        return Err(Problem::from_error(&Error::NotFound {
            what: format!("webhook intake of instance {instance}"),
        }));
    };
    let received = intake
        .receive(&headers, &body)
        .await
        .map_err(|e| webhook_problem(&e))?;
    let webhook_id = received.webhook_id().to_owned();
    let (outcome, updates) = match received {
        WebhookIntake::Updates { updates, .. } => {
            let count = updates.len();
            intakes
                .orchestrator
                .ingest_tracking(&instance, updates)
                .await
                .map_err(|e| webhook_problem(&WebhookError::Processing(e)))?;
            // Once stored, the delivery is taken: a de-duplication store that fails here only
            // costs a harmless repeat (ingesting merges idempotently).
            if let Err(error) = intake.processed(&webhook_id).await {
                tracing::warn!(%instance, %error, "webhook processed but not remembered");
            }
            ("updates", count)
        }
        WebhookIntake::Duplicate { .. } => ("duplicate", 0),
        // Ignored, and whatever a later release adds: no tracking news.
        _ => ("ignored", 0),
    };
    Ok(Json(Received {
        webhook_id,
        outcome,
        updates,
    }))
}
