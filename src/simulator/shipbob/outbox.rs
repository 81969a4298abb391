//! Webhook deliveries of the ShipBob simulator (protocol doc §7.3–§7.5): a queue of signed
//! messages to the subscribed URLs, sent by a background task (or on demand), retried on any
//! answer but a 2xx with ShipBob's schedule scaled down, with knobs for duplicates, reordering
//! and a dropped `order.shipment.delivered`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use reqwest::header::{HeaderName, HeaderValue};
use url::Url;

use crate::http::{HttpClient, HttpConfig, Method, Request, RetryConfig};
use crate::webhook::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, WebhookSecret, sign};

/// ShipBob's delays after each failed attempt: immediately, 5 s, 5 min, 30 min, 2 h, 5 h,
/// 10 h, 10 h (§7.4); the simulator scales them by its time scale.
const SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
/// Attempts per message: the first and the eight retries.
pub(crate) const MAX_ATTEMPTS: u32 = 1 + SCHEDULE.len() as u32;
/// Longest a reordered delivery is held back.
const REORDER_HOLD: Duration = Duration::from_millis(30);

/// How the simulator delivers webhooks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WebhookKnobs {
    /// Probability that a message is delivered twice (the same `webhook-id`).
    pub(crate) duplicates: f64,
    /// Deliveries overtake each other.
    pub(crate) reorder: bool,
    /// `order.shipment.delivered` is never sent (it "does not always fire", §5.2).
    pub(crate) drop_delivered: bool,
    /// Factor on ShipBob's retry schedule (default 1/1000: 5 s become 5 ms).
    pub(crate) time_scale: f64,
    /// Deliveries wait for `deliver_webhooks` instead of going out by themselves.
    pub(crate) manual: bool,
}

impl Default for WebhookKnobs {
    fn default() -> Self {
        Self {
            duplicates: 0.0,
            reorder: false,
            drop_delivered: false,
            time_scale: 0.001,
            manual: false,
        }
    }
}

/// One attempt to deliver a webhook message, as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookAttempt {
    /// `webhook-id` (the same on every attempt and duplicate of one message).
    pub webhook_id: String,
    /// The topic (`x-webhook-topic`).
    pub topic: String,
    /// Where it went.
    pub url: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The host's HTTP status; `None` when no answer came.
    pub status: Option<u16>,
}

impl WebhookAttempt {
    /// Whether the host accepted it (a 2xx; ShipBob counts a 3xx as a failure).
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// A message waiting to be (re)sent.
#[derive(Debug, Clone)]
struct Pending {
    id: String,
    topic: String,
    body: Bytes,
    url: String,
    secret: WebhookSecret,
    attempt: u32,
    due: Instant,
}

/// The queue and its log.
#[derive(Debug)]
pub(crate) struct Outbox {
    queue: VecDeque<Pending>,
    attempts: Vec<WebhookAttempt>,
    in_flight: usize,
    rng: fastrand::Rng,
    pub(crate) knobs: WebhookKnobs,
    clients: HashMap<String, Arc<HttpClient>>,
}

impl Outbox {
    pub(crate) fn new(knobs: WebhookKnobs, seed: u64) -> Self {
        Self {
            queue: VecDeque::new(),
            attempts: Vec::new(),
            in_flight: 0,
            rng: fastrand::Rng::with_seed(seed ^ 0x5EB0B),
            knobs,
            clients: HashMap::new(),
        }
    }

    /// A fresh message id: `msg_` and 27 base62 characters.
    pub(crate) fn message_id(&mut self) -> String {
        const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let tail: String = (0..27)
            .map(|_| char::from(BASE62[self.rng.usize(..BASE62.len())]))
            .collect();
        format!("msg_{tail}")
    }

    /// A fresh `whsec_` secret (24 bytes; not cryptographic: this is a simulator).
    pub(crate) fn secret(&mut self) -> WebhookSecret {
        let key: Vec<u8> = (0..24).map(|_| self.rng.u8(..)).collect();
        WebhookSecret::from_bytes(key).expect("24 bytes is a valid key")
    }

    /// Queues `body` of `topic` for `url`, signed with `secret` when sent.
    pub(crate) fn enqueue(&mut self, topic: &str, body: Bytes, url: &str, secret: &WebhookSecret) {
        if self.knobs.drop_delivered && topic == "order.shipment.delivered" {
            return;
        }
        let id = self.message_id();
        let copies = if self.rng.f64() < self.knobs.duplicates {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let hold = if self.knobs.reorder && !self.knobs.manual {
                REORDER_HOLD.mul_f64(self.rng.f64())
            } else {
                Duration::ZERO
            };
            self.queue.push_back(Pending {
                id: id.clone(),
                topic: topic.to_owned(),
                body: body.clone(),
                url: url.to_owned(),
                secret: secret.clone(),
                attempt: 1,
                due: Instant::now() + hold,
            });
        }
    }

    /// Takes the messages due now (all of them when `everything`), in sending order.
    fn take_due(&mut self, everything: bool) -> Vec<Pending> {
        let now = Instant::now();
        let (due, later): (Vec<Pending>, Vec<Pending>) = self
            .queue
            .drain(..)
            .partition(|p| everything || p.due <= now);
        self.queue = later.into();
        let mut due = due;
        if self.knobs.reorder {
            due.reverse();
        }
        self.in_flight += due.len();
        due
    }

    /// When the next queued message is due.
    fn next_due(&self) -> Option<Instant> {
        self.queue.iter().map(|p| p.due).min()
    }

    /// Whether nothing is queued or being sent.
    pub(crate) fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.in_flight == 0
    }

    /// Every attempt so far.
    pub(crate) fn attempts(&self) -> Vec<WebhookAttempt> {
        self.attempts.clone()
    }

    fn client(&mut self, url: &str) -> Option<Arc<HttpClient>> {
        if let Some(client) = self.clients.get(url) {
            return Some(Arc::clone(client));
        }
        let base = Url::parse(url).ok()?;
        let config = HttpConfig {
            retry: RetryConfig::none(),
            // ShipBob waits 15 s for an answer (§7.3).
            request_timeout: Duration::from_secs(15),
            ..HttpConfig::default()
        };
        let client = Arc::new(
            HttpClient::new("shipbob-webhooks", "simulator", base, config, Vec::new()).ok()?,
        );
        self.clients.insert(url.to_owned(), Arc::clone(&client));
        Some(client)
    }
}

/// Sends what is due (or everything queued, with `everything`) and records the attempts;
/// failures go back into the queue with the next delay of the schedule. Returns how many
/// attempts were made.
pub(crate) async fn send_due(outbox: &std::sync::Mutex<Outbox>, everything: bool) -> usize {
    let batch = super::lock(outbox).take_due(everything);
    let count = batch.len();
    for pending in batch {
        let client = super::lock(outbox).client(&pending.url);
        let status = match client {
            Some(client) => attempt(&client, &pending).await,
            None => None,
        };
        let mut outbox = super::lock(outbox);
        outbox.in_flight -= 1;
        outbox.attempts.push(WebhookAttempt {
            webhook_id: pending.id.clone(),
            topic: pending.topic.clone(),
            url: pending.url.clone(),
            attempt: pending.attempt,
            status,
        });
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        if !delivered && pending.attempt < MAX_ATTEMPTS {
            let delay = SCHEDULE[(pending.attempt - 1) as usize].mul_f64(outbox.knobs.time_scale);
            outbox.queue.push_back(Pending {
                attempt: pending.attempt + 1,
                due: Instant::now() + delay,
                ..pending
            });
        }
    }
    count
}

/// One POST of a message, signed now; the host's status, or `None` without an answer.
async fn attempt(client: &HttpClient, pending: &Pending) -> Option<u16> {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let signature = sign(&pending.secret, &pending.id, timestamp, &pending.body);
    let header = |text: &str| HeaderValue::from_str(text).ok();
    let (Some(id), Some(ts), Some(sig), Some(topic)) = (
        header(&pending.id),
        header(&timestamp.to_string()),
        header(&signature),
        header(&pending.topic),
    ) else {
        return None;
    };
    let request = Request::new(Method::POST, &[] as &[&str])
        .with_endpoint("POST webhook")
        .with_header(HeaderName::from_static(HEADER_ID), id, false)
        .with_header(HeaderName::from_static(HEADER_TIMESTAMP), ts, false)
        .with_header(HeaderName::from_static(HEADER_SIGNATURE), sig, false)
        .with_header(HeaderName::from_static("x-webhook-topic"), topic, false)
        .with_json_body(pending.body.clone());
    client.send(&request).await.ok().map(|r| r.status)
}

/// The background sender: sends what is due, then sleeps until the next message is due or
/// a new one arrives. Does nothing in manual mode.
pub(crate) async fn run(outbox: Arc<std::sync::Mutex<Outbox>>, wake: Arc<tokio::sync::Notify>) {
    loop {
        let manual = super::lock(&outbox).knobs.manual;
        if !manual && send_due(&outbox, false).await > 0 {
            continue;
        }
        let next = super::lock(&outbox).next_due();
        let wait = match next {
            Some(due) if !manual => due
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
            _ => Duration::from_millis(200),
        };
        let _ = tokio::time::timeout(wait, wake.notified()).await;
    }
}
