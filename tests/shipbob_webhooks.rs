//! ShipBob webhooks end to end: the simulator signs and delivers to a host URL (a mockito
//! server standing in for the host's route), the host verifies and decodes them with
//! `ShipBobWebhooks`, and the orchestrator ingests the updates. Duplicate and reordered
//! deliveries end in the same record without a duplicate event; anything unverifiable changes
//! nothing; a failing host is retried with the same message id.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mockito::{Matcher, Server, ServerGuard};

mod support;
use support::shipbob::*;

use fulfillkit::model::{InstanceId, OrderId, StatusCode, TrackingUpdate, Waybill};
use fulfillkit::orchestrator::{
    CollectingSink, Condition, EventKind, Instance, Orchestrator, RoutingRule, ShipmentRecord,
};
use fulfillkit::provider::FulfillmentProvider;
use fulfillkit::provider::shipbob::ShipBobProvider;
use fulfillkit::simulator::ShipBobSimulator;
use fulfillkit::webhook::{ShipBobWebhooks, WebhookError, WebhookIntake, WebhookSecret};

/// One delivery as the host received it: headers and raw body.
type Delivery = (Vec<(String, String)>, Vec<u8>);

/// A host route at `/hooks/shipbob` answering 200 and keeping what it received.
async fn host() -> (ServerGuard, Arc<Mutex<Vec<Delivery>>>) {
    let mut server = Server::new_async().await;
    let received: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let sink = received.clone();
    server
        .mock("POST", "/hooks/shipbob")
        .with_status(200)
        .with_body_from_request(move |request| {
            let headers = [
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
                "x-webhook-topic",
                "content-type",
            ]
            .iter()
            .filter_map(|name| {
                let value = request.header(*name).first()?.to_str().ok()?.to_owned();
                Some(((*name).to_owned(), value))
            })
            .collect();
            let body = request.body().cloned().unwrap_or_default();
            sink.lock().unwrap().push((headers, body));
            b"ok".to_vec()
        })
        .create_async()
        .await;
    (server, received)
}

struct Rig {
    sim: ShipBobSimulator,
    provider: Arc<ShipBobProvider>,
    orchestrator: Orchestrator,
    events: Arc<CollectingSink>,
    intake: ShipBobWebhooks,
}

async fn rig(url: &str, duplicates: f64, reorder: bool) -> Rig {
    let secret = WebhookSecret::parse(WEBHOOK_SECRET).unwrap();
    let sim = ShipBobSimulator::builder()
        .with_rate_limit(None)
        .with_manual_webhook_delivery(true)
        .with_webhook_duplicates(duplicates)
        .with_webhook_reordering(reorder)
        .start()
        .await
        .unwrap();
    let provider = Arc::new(sim.provider_builder().build().unwrap());
    // The adapter subscribes once; a second call finds the subscription.
    let first = provider.subscribe_webhooks(url, &secret).await.unwrap();
    assert_eq!(
        provider.subscribe_webhooks(url, &secret).await.unwrap(),
        first
    );
    assert_eq!(sim.stats().requests_to("POST /webhook"), 1);
    let events = Arc::new(CollectingSink::new());
    let orchestrator = Orchestrator::builder()
        .instance(Instance::new("shipbob", "ShipBob", provider.clone()))
        .rule(RoutingRule::new("all", Condition::Always, "shipbob"))
        .events(events.clone())
        .build()
        .unwrap();
    let intake = ShipBobWebhooks::new(provider.clone(), secret);
    Rig {
        sim,
        provider,
        orchestrator,
        events,
        intake,
    }
}

impl Rig {
    /// The host's route: verify, skip what was processed, ingest, remember.
    async fn receive(&self, delivery: &Delivery) -> Result<WebhookIntake, WebhookError> {
        let intake = self.intake.receive(&delivery.0, &delivery.1).await?;
        if let WebhookIntake::Updates {
            webhook_id,
            updates,
            ..
        } = &intake
        {
            self.orchestrator
                .ingest_tracking(&InstanceId::new("shipbob"), updates.clone())
                .await
                .unwrap();
            self.intake.processed(webhook_id).await.unwrap();
        }
        Ok(intake)
    }

    async fn record(&self, id: &str) -> ShipmentRecord {
        self.orchestrator
            .shipment(&OrderId::new(id))
            .await
            .unwrap()
            .unwrap()
    }

    /// The `(code, original)` of every status event, in order.
    fn status_events(&self) -> Vec<(StatusCode, String)> {
        self.events
            .events()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::DeliveryStatusChanged { to, .. } => {
                    Some((to.code, to.original.to_string()))
                }
                _ => None,
            })
            .collect()
    }
}

/// Exports an order, moves it to delivery, and delivers every queued webhook to the host.
async fn ship_and_deliver(rig: &Rig, id: &str) {
    let outcome = rig
        .orchestrator
        .on_order_confirmed(&american(id))
        .await
        .unwrap();
    assert!(outcome.is_exported(), "{outcome:?}");
    for _ in 0..9 {
        rig.sim.tick();
    }
    rig.sim.deliver_webhooks().await;
}

#[tokio::test]
async fn duplicate_and_reordered_deliveries_end_in_the_same_record() {
    let (calm_host, calm_received) = host().await;
    let calm = rig(&format!("{}/hooks/shipbob", calm_host.url()), 0.0, false).await;
    ship_and_deliver(&calm, "SO-W1").await;
    let (rough_host, rough_received) = host().await;
    let rough = rig(&format!("{}/hooks/shipbob", rough_host.url()), 1.0, true).await;
    ship_and_deliver(&rough, "SO-W1").await;

    let calm_deliveries = calm_received.lock().unwrap().clone();
    let rough_deliveries = rough_received.lock().unwrap().clone();
    // order.shipped, three carrier updates, the shipment delivered, the order delivered.
    assert_eq!(calm_deliveries.len(), 6);
    assert_eq!(rough_deliveries.len(), 12, "each message twice");
    let topic = |d: &Delivery| {
        d.0.iter()
            .find(|(k, _)| k == "x-webhook-topic")
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(topic(&calm_deliveries[0]), "order.shipped");
    assert_eq!(
        topic(&rough_deliveries[0]),
        "order.delivered",
        "newest first"
    );
    assert!(calm_deliveries.iter().all(|d| {
        d.0.iter()
            .any(|(k, v)| k == "content-type" && v == "application/json")
    }));

    let mut duplicates = 0;
    for delivery in &calm_deliveries {
        calm.receive(delivery).await.unwrap();
    }
    for delivery in &rough_deliveries {
        if matches!(
            rough.receive(delivery).await.unwrap(),
            WebhookIntake::Duplicate { .. }
        ) {
            duplicates += 1;
        }
    }
    assert_eq!(
        duplicates, 6,
        "every second copy is dropped by its webhook-id"
    );

    let calm_record = calm.record("SO-W1").await;
    let rough_record = rough.record("SO-W1").await;
    let current = |r: &ShipmentRecord| {
        let s = r.current_status.as_ref().unwrap();
        (s.code, s.original.clone())
    };
    assert_eq!(current(&calm_record).0, StatusCode::Delivered);
    assert_eq!(current(&rough_record), current(&calm_record));
    for events in [calm.status_events(), rough.status_events()] {
        let mut seen = events.clone();
        seen.dedup();
        assert_eq!(seen, events, "no event twice in a row: {events:?}");
        assert_eq!(events.last().map(|e| e.0), Some(StatusCode::Delivered));
    }

    // Ingesting every delivery again, duplicates and all, without the de-duplicator: the
    // record and the events do not change — the merge is idempotent and order-independent.
    let before = (rough_record.history.clone(), rough.events.events().len());
    for delivery in rough_deliveries.iter().rev() {
        let verified =
            fulfillkit::webhook::Verifier::new(WebhookSecret::parse(WEBHOOK_SECRET).unwrap())
                .verify(&delivery.0, &delivery.1)
                .unwrap();
        let updates = rough
            .provider
            .webhook_updates(verified.topic.as_deref(), &verified.body)
            .await
            .unwrap();
        rough
            .orchestrator
            .ingest_tracking(&InstanceId::new("shipbob"), updates)
            .await
            .unwrap();
    }
    let after = rough.record("SO-W1").await;
    assert_eq!(after.history, before.0);
    assert_eq!(rough.events.events().len(), before.1);

    // Polling afterwards (reconciliation) agrees on the current status.
    rough.orchestrator.sync_tracking().await.unwrap();
    assert_eq!(current(&rough.record("SO-W1").await), current(&calm_record));
    calm.sim.shutdown().await;
    rough.sim.shutdown().await;
}

#[tokio::test]
async fn an_unverifiable_delivery_changes_nothing() {
    let (host, received) = host().await;
    let rig = rig(&format!("{}/hooks/shipbob", host.url()), 0.0, false).await;
    let outcome = rig
        .orchestrator
        .on_order_confirmed(&american("SO-W2"))
        .await
        .unwrap();
    assert!(outcome.is_exported(), "{outcome:?}");
    for _ in 0..6 {
        rig.sim.tick();
    }
    rig.sim.deliver_webhooks().await;
    let delivery = received.lock().unwrap()[0].clone();
    let record = rig.record("SO-W2").await;
    rig.sim.reset_stats();

    let mut tampered = delivery.clone();
    tampered.1.push(b' ');
    let mut wrong_id = delivery.clone();
    wrong_id
        .0
        .iter_mut()
        .find(|(k, _)| k == "webhook-id")
        .unwrap()
        .1 = "msg_other".into();
    let mut unsigned = delivery.clone();
    unsigned.0.retain(|(k, _)| k != "webhook-signature");
    for (what, bad) in [
        ("body", tampered),
        ("id", wrong_id),
        ("signature", unsigned),
    ] {
        let err = rig.receive(&bad).await.unwrap_err();
        assert!(err.is_unverified(), "{what}: {err}");
        assert_eq!(err.http_status(), 401);
    }
    let stranger = ShipBobWebhooks::new(
        rig.provider.clone(),
        WebhookSecret::from_bytes([9u8; 24]).unwrap(),
    );
    assert!(matches!(
        stranger.receive(&delivery.0, &delivery.1).await,
        Err(WebhookError::InvalidSignature)
    ));
    let replayed = rig
        .intake
        .receive_at(
            &delivery.0,
            &delivery.1,
            chrono::Utc::now().timestamp() + 301,
        )
        .await
        .unwrap_err();
    assert!(matches!(
        replayed,
        WebhookError::TimestampOutOfTolerance { .. }
    ));
    // Nothing was read from ShipBob and nothing changed.
    assert_eq!(rig.sim.stats().total_requests(), 0);
    assert_eq!(rig.record("SO-W2").await, record);
    // The genuine delivery goes through.
    assert!(matches!(
        rig.receive(&delivery).await.unwrap(),
        WebhookIntake::Updates { .. }
    ));
    rig.sim.shutdown().await;
}

#[tokio::test]
async fn a_failing_host_is_retried_with_the_same_message_id() {
    let mut host = Server::new_async().await;
    let failing = host
        .mock("POST", "/hooks/shipbob")
        .with_status(503)
        .expect(2)
        .create_async()
        .await;
    let ok = host
        .mock("POST", "/hooks/shipbob")
        .with_status(204)
        .expect(1)
        .create_async()
        .await;
    let sim = ShipBobSimulator::builder()
        .with_rate_limit(None)
        .with_webhook(
            format!("{}/hooks/shipbob", host.url()),
            WebhookSecret::parse(WEBHOOK_SECRET).unwrap(),
        )
        .with_webhook_time_scale(0.0001)
        .start()
        .await
        .unwrap();
    let provider = sim.provider_builder().build().unwrap();
    provider
        .create_order(&american("SO-W3"), &Waybill::new())
        .await
        .unwrap();
    sim.advance("SO-W3", "OnHold/InvalidAddress").unwrap();
    assert!(sim.settle_webhooks(Duration::from_secs(10)).await);
    failing.assert_async().await;
    ok.assert_async().await;
    let attempts = sim.webhook_attempts();
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts
            .iter()
            .all(|a| a.webhook_id == attempts[0].webhook_id)
    );
    assert!(attempts[0].webhook_id.starts_with("msg_") && attempts[0].webhook_id.len() == 31);
    assert_eq!(
        attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(attempts[2].status, Some(204));
    assert!(attempts[2].delivered() && !attempts[0].delivered());
    assert_eq!(attempts[0].topic, "order.shipment.on_hold");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_documents_delivery_decodes_into_a_tracking_update() {
    // The §11.5 delivery, signed with the secret of bytes 0x00..0x17 (vector 4). The order is
    // not in the adapter's cache, so it reads it once.
    let mut shipbob = Server::new_async().await;
    let read = shipbob
        .mock("GET", "/2026-07/order/309589638")
        .match_header("shipbob_channel_id", "432951")
        .with_body(r#"{"id":309589638,"reference_id":"SO-1001","status":"Fulfilled","shipments":[{"id":100810005,"order_id":309589638,"reference_id":"SO-1001","status":"Completed","status_details":[{"id":203,"name":"Delivered","description":"Delivered"}],"last_update_at":"2026-09-23T14:02:00Z","tracking":{"carrier":"USPS","tracking_number":"9400111899223197428490"}}]}"#)
        .expect(1)
        .create_async()
        .await;
    let carrier = shipbob
        .mock("GET", "/2026-07/shipments-tracking")
        .match_query(Matcher::UrlEncoded(
            "ShipmentIds".into(),
            "100810005".into(),
        ))
        .with_body("[]")
        .expect(1)
        .create_async()
        .await;
    let intake = ShipBobWebhooks::new(
        Arc::new(provider(&shipbob)),
        WebhookSecret::parse(WEBHOOK_SECRET).unwrap(),
    );
    let headers = [
        ("content-type", "application/json"),
        ("webhook-id", "msg_2zQshipbobVector0001"),
        ("webhook-timestamp", "1790000000"),
        (
            "webhook-signature",
            "v1,/cIeXTM1HNSMqVQGXT8XArtusrgkRBb4llGmCG0kNNQ=",
        ),
        ("x-webhook-topic", "order.shipment.delivered"),
    ];
    let body = br#"{"id":100810005,"order_id":309589638,"reference_id":"SO-1001","status":"Completed","tracking":{"carrier":"USPS","tracking_number":"9400111899223197428490"}}"#;
    let intake_result = intake
        .receive_at(&headers[..], body, 1790000000)
        .await
        .unwrap();
    read.assert_async().await;
    carrier.assert_async().await;
    let WebhookIntake::Updates {
        webhook_id,
        topic,
        updates,
    } = intake_result
    else {
        panic!("{intake_result:?}")
    };
    assert_eq!(webhook_id, "msg_2zQshipbobVector0001");
    assert_eq!(topic.as_deref(), Some("order.shipment.delivered"));
    let TrackingUpdate::Statuses { shipment, statuses } = &updates[0] else {
        panic!("{updates:?}")
    };
    assert_eq!(
        (shipment.order_id.as_str(), shipment.provider_ref.as_str()),
        ("SO-1001", "309589638")
    );
    assert_eq!(statuses[0].code, StatusCode::Delivered);
    assert_eq!(
        statuses[0].carrier_tracking_number.as_deref(),
        Some("9400111899223197428490")
    );

    // A topic without tracking news is taken and ignored; a body that is no model is a
    // payload error (400), after verification.
    let sign = |body: &[u8]| {
        fulfillkit::webhook::sign(
            &WebhookSecret::parse(WEBHOOK_SECRET).unwrap(),
            "msg_x",
            1790000000,
            body,
        )
    };
    let ret = br#"{"id":5,"status":"AwaitingArrival"}"#;
    let headers_ret = vec![
        ("webhook-id", "msg_x".to_string()),
        ("webhook-timestamp", "1790000000".to_string()),
        ("webhook-signature", sign(ret)),
        ("x-webhook-topic", "return.created".to_string()),
    ];
    assert!(matches!(
        intake
            .receive_at(&headers_ret, ret, 1790000000)
            .await
            .unwrap(),
        WebhookIntake::Ignored { .. }
    ));
    let junk = br#"[1,2,3]"#;
    let headers_junk = vec![
        ("webhook-id", "msg_x".to_string()),
        ("webhook-timestamp", "1790000000".to_string()),
        ("webhook-signature", sign(junk)),
    ];
    let err = intake
        .receive_at(&headers_junk, junk, 1790000000)
        .await
        .unwrap_err();
    assert!(matches!(err, WebhookError::Payload { .. }), "{err}");
    assert_eq!(err.http_status(), 400);
}
