//! Where events go: the [`EventSink`] trait the host implements, and the sinks fulfillkit
//! ships. The events themselves are plain data in [`model`](crate::model) (re-exported here).
//!
//! Delivery is at least once (see [`Event`]): deduplicate by [`Event::id`](Event).

use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::model::Event;

/// Where events go. Implement it to feed the host's trigger engine.
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Delivers one event. Called after the change is stored, in the order changes happen
    /// for one order; once it returns, the event is marked delivered in the store. An event
    /// left undelivered by a crash is delivered again later with the same
    /// [`Event::id`]: deduplicate by it.
    async fn emit(&self, event: Event);
}

/// A sink backed by a bounded tokio channel: `emit` waits while the channel is full, so a slow
/// consumer slows the orchestrator down instead of losing events.
#[derive(Debug, Clone)]
pub struct ChannelSink {
    sender: mpsc::Sender<Event>,
}

impl ChannelSink {
    /// A sink and the receiver the host reads events from.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<Event>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        (Self { sender }, receiver)
    }
}

#[async_trait]
impl EventSink for ChannelSink {
    async fn emit(&self, event: Event) {
        if self.sender.send(event).await.is_err() {
            tracing::warn!("event receiver dropped; event discarded (the store keeps the state)");
        }
    }
}

/// A sink that keeps every event in memory, for tests.
#[derive(Debug, Default)]
pub struct CollectingSink {
    events: Mutex<Vec<Event>>,
}

impl CollectingSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.lock().clone()
    }

    /// Takes every event so far, leaving none.
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Event>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl EventSink for CollectingSink {
    async fn emit(&self, event: Event) {
        self.lock().push(event);
    }
}

/// A sink that drops every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

#[async_trait]
impl EventSink for NullSink {
    async fn emit(&self, _event: Event) {}
}
