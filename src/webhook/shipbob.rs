//! ShipBob webhook intake: [`ShipBobWebhooks`] verifies a delivery (Standard Webhooks, the
//! subscription's secret or secrets), drops a message already processed, and turns the rest
//! into [`TrackingUpdate`]s through the provider (protocol doc §7).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{
    Deduplicator, HeaderLookup, MemoryDeduplicator, VerifiedWebhook, Verifier, WebhookError,
    WebhookSecret,
};
use crate::error::Error;
use crate::model::TrackingUpdate;
use crate::provider::shipbob::ShipBobProvider;

/// What a verified ShipBob delivery brought.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookIntake {
    /// Tracking updates to pass to
    /// [`Orchestrator::ingest_tracking`](crate::orchestrator::Orchestrator::ingest_tracking);
    /// then call [`ShipBobWebhooks::processed`] with the id.
    Updates {
        /// `webhook-id` of the message.
        webhook_id: String,
        /// The topic, when ShipBob sent one.
        topic: Option<String>,
        /// The updates (one, for the order the delivery is about).
        updates: Vec<TrackingUpdate>,
    },
    /// The message was processed before (a retry or a duplicate): nothing to do.
    Duplicate {
        /// `webhook-id` of the message.
        webhook_id: String,
    },
    /// A verified message without tracking news (returns, receiving, billing topics).
    Ignored {
        /// `webhook-id` of the message.
        webhook_id: String,
        /// The topic.
        topic: Option<String>,
    },
}

impl WebhookIntake {
    /// The message id.
    pub fn webhook_id(&self) -> &str {
        match self {
            WebhookIntake::Updates { webhook_id, .. }
            | WebhookIntake::Duplicate { webhook_id }
            | WebhookIntake::Ignored { webhook_id, .. } => webhook_id,
        }
    }
}

/// Verifies, de-duplicates and decodes ShipBob webhook deliveries for one provider instance.
///
/// The host's route hands over the headers and the raw body, answers with
/// [`WebhookError::http_status`] on error (ShipBob retries anything but a 2xx), and otherwise
/// ingests the updates and marks the message processed:
///
/// ```no_run
/// # async fn route(
/// #     orchestrator: &fulfillkit::orchestrator::Orchestrator,
/// #     intake: &fulfillkit::webhook::ShipBobWebhooks,
/// #     headers: &reqwest::header::HeaderMap,
/// #     body: &[u8],
/// # ) -> u16 {
/// use fulfillkit::model::InstanceId;
/// use fulfillkit::webhook::WebhookIntake;
///
/// match intake.receive(headers, body).await {
///     Ok(WebhookIntake::Updates { webhook_id, updates, .. }) => {
///         let instance = InstanceId::new("shipbob-us");
///         if orchestrator.ingest_tracking(&instance, updates).await.is_err() {
///             return 503; // ShipBob delivers it again
///         }
///         let _ = intake.processed(&webhook_id).await;
///         200
///     }
///     Ok(_) => 200,
///     Err(error) => error.http_status(),
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct ShipBobWebhooks {
    verifier: Verifier,
    provider: Arc<ShipBobProvider>,
    dedup: Arc<dyn Deduplicator>,
}

impl fmt::Debug for ShipBobWebhooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShipBobWebhooks")
            .field("verifier", &self.verifier)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl ShipBobWebhooks {
    /// An intake for `provider`'s deliveries signed with `secret` (the subscription's), with
    /// a [`MemoryDeduplicator`] and the default tolerance of 5 minutes.
    pub fn new(provider: Arc<ShipBobProvider>, secret: WebhookSecret) -> Self {
        Self {
            verifier: Verifier::new(secret),
            provider,
            dedup: Arc::new(MemoryDeduplicator::default()),
        }
    }

    /// Also accepts deliveries signed with `secret` (during a rotation).
    pub fn with_secret(mut self, secret: WebhookSecret) -> Self {
        self.verifier = self.verifier.with_secret(secret);
        self
    }

    /// Sets the timestamp tolerance (default 5 minutes).
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.verifier = self.verifier.with_tolerance(tolerance);
        self
    }

    /// Uses `dedup` to remember processed messages (a shared store with several replicas).
    pub fn with_deduplicator(mut self, dedup: Arc<dyn Deduplicator>) -> Self {
        self.dedup = dedup;
        self
    }

    /// Verifies and decodes a delivery now (the system clock); see
    /// [`ShipBobWebhooks::receive_at`].
    ///
    /// # Errors
    ///
    /// See [`ShipBobWebhooks::receive_at`].
    pub async fn receive(
        &self,
        headers: &(impl HeaderLookup + ?Sized),
        body: &[u8],
    ) -> Result<WebhookIntake, WebhookError> {
        let verified = self.verifier.verify(headers, body)?;
        self.decode(verified).await
    }

    /// Verifies a delivery as of `now` (Unix seconds), drops a message already processed, and
    /// decodes the rest into tracking updates. Nothing is stored: the host ingests the
    /// updates, then calls [`ShipBobWebhooks::processed`].
    ///
    /// # Errors
    ///
    /// The verifier's errors for anything unverifiable (then nothing is read or changed);
    /// [`WebhookError::Payload`] for a verified body that is not ShipBob's;
    /// [`WebhookError::Processing`] when reading the order or the de-duplication store
    /// failed (a retry may succeed).
    pub async fn receive_at(
        &self,
        headers: &(impl HeaderLookup + ?Sized),
        body: &[u8],
        now: i64,
    ) -> Result<WebhookIntake, WebhookError> {
        let verified = self.verifier.verify_at(headers, body, now)?;
        self.decode(verified).await
    }

    async fn decode(&self, verified: VerifiedWebhook) -> Result<WebhookIntake, WebhookError> {
        if self
            .dedup
            .is_known(&verified.id)
            .await
            .map_err(WebhookError::Processing)?
        {
            return Ok(WebhookIntake::Duplicate {
                webhook_id: verified.id,
            });
        }
        let updates = self
            .provider
            .webhook_updates(verified.topic.as_deref(), &verified.body)
            .await
            .map_err(|error| match error {
                Error::Protocol { message } => WebhookError::Payload { message },
                other => WebhookError::Processing(other),
            })?;
        if updates.is_empty() {
            return Ok(WebhookIntake::Ignored {
                webhook_id: verified.id,
                topic: verified.topic,
            });
        }
        Ok(WebhookIntake::Updates {
            webhook_id: verified.id,
            topic: verified.topic,
            updates,
        })
    }

    /// Records message `webhook_id` as processed, once its updates are stored.
    ///
    /// # Errors
    ///
    /// The de-duplication store's error.
    pub async fn processed(&self, webhook_id: &str) -> crate::Result<()> {
        self.dedup.remember(webhook_id).await
    }
}
