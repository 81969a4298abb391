//! The ShipBob adapter over the wire, against the bundled simulator: the conformance suite,
//! lifecycles (a split order included), the change feed, cancel and update windows, stock,
//! the rate limit, and signed webhook deliveries to a host.

use std::collections::HashMap;

mod support;
use support::shipbob::*;

use fulfillkit::Error;
use fulfillkit::model::{ShipmentRef, StatusCode, TrackingUpdate, Waybill};
use fulfillkit::provider::{CancelOutcome, FulfillmentProvider, UpdateOutcome};
use fulfillkit::simulator::{Faults, Lifecycle, ShipBobInventoryRow, ShipBobSimulator};
use fulfillkit::testkit;

async fn sim() -> ShipBobSimulator {
    ShipBobSimulator::builder()
        .with_rate_limit(None)
        .start()
        .await
        .unwrap()
}

fn statuses(updates: &[TrackingUpdate], shipment: &ShipmentRef) -> Vec<(StatusCode, String)> {
    updates
        .iter()
        .find(|u| u.shipment() == shipment)
        .map(|u| {
            u.statuses()
                .iter()
                .map(|s| (s.code, s.original.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn current(updates: &[TrackingUpdate], shipment: &ShipmentRef) -> (StatusCode, String) {
    let all = updates
        .iter()
        .find(|u| u.shipment() == shipment)
        .map(|u| u.statuses().to_vec())
        .unwrap_or_default();
    let merged = fulfillkit::model::merge_statuses(&[], &all, Default::default());
    let current = merged.current.expect("a status");
    (current.code, current.original.to_string())
}

#[tokio::test]
async fn conformance_over_the_wire() {
    let sim = sim().await;
    let provider = sim
        .provider_builder()
        .with_max_track_batch(20)
        .build()
        .unwrap();
    testkit::run_all(&provider, &SimDriver(&sim)).await;
    // The repeated create made one order: the second was refused and the first adopted.
    assert_eq!(sim.stats().creates_of("FK-CONF-1"), 2);
    assert_eq!(sim.stats().duplicates_refused, 1);
    assert!(sim.stats().duplicated_order_numbers() == ["FK-CONF-1"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_order_is_tracked_from_import_to_delivery_with_the_carriers_history() {
    let sim = sim().await;
    let provider = sim.provider_builder().build().unwrap();
    let order = american("SO-1");
    let shipment = provider
        .create_order(&order, &Waybill::new())
        .await
        .unwrap();
    assert_eq!(
        shipment.reference.provider_ref,
        sim.order_id("SO-1").unwrap().to_string()
    );
    assert_eq!(
        shipment.status.as_ref().map(|s| s.code),
        Some(StatusCode::Registered)
    );
    let reference = shipment.reference.clone();
    let mut seen = Vec::new();
    for _ in 0..9 {
        sim.tick();
        let updates = provider
            .track(std::slice::from_ref(&reference))
            .await
            .unwrap();
        seen.push(current(&updates, &reference));
    }
    let codes: Vec<StatusCode> = seen.iter().map(|(c, _)| *c).collect();
    use StatusCode::*;
    assert_eq!(
        codes,
        [
            Accepted, Accepted, Packed, Packed, Packed, InTransit, InTransit, OnDelivery, Delivered
        ]
    );
    let updates = provider
        .track(std::slice::from_ref(&reference))
        .await
        .unwrap();
    let texts: Vec<String> = statuses(&updates, &reference)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(texts[0], "Completed/Delivered (203)");
    // The carrier's own history, oldest first, with the label on each.
    assert!(
        texts.contains(&"tracking: PreTransit/Label created".to_string()),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"tracking: InTransit/OutForDelivery".to_string()),
        "{texts:?}"
    );
    let TrackingUpdate::Statuses { statuses, .. } = &updates[0] else {
        panic!("{updates:?}");
    };
    let delivered = statuses.iter().find(|s| s.code == Delivered).unwrap();
    assert_eq!(delivered.carrier.as_deref(), Some("USPS"));
    assert!(
        delivered
            .carrier_tracking_number
            .as_deref()
            .unwrap()
            .starts_with("9400")
    );
    assert!(
        delivered
            .tracking_url
            .as_deref()
            .unwrap()
            .contains("usps.com")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_split_order_is_delivered_when_its_last_parcel_is() {
    let sim = ShipBobSimulator::builder()
        .with_rate_limit(None)
        .with_split_orders(1.0)
        .start()
        .await
        .unwrap();
    let provider = sim.provider_builder().build().unwrap();
    let shipment = provider
        .create_order(&american("SO-SPLIT"), &Waybill::new())
        .await
        .unwrap();
    let held = sim.shipbob_order("SO-SPLIT").unwrap();
    assert_eq!(held.shipments.len(), 2);
    let reference = shipment.reference;
    // Nine ticks: the first parcel is delivered, the second (a tick behind) out for delivery.
    for _ in 0..9 {
        sim.tick();
    }
    let held = sim.shipbob_order("SO-SPLIT").unwrap();
    assert_eq!(held.status, "Fulfilled");
    assert_eq!(held.shipments[0].state, "Completed/Delivered");
    assert_eq!(held.shipments[1].state, "Completed/OutForDelivery");
    let updates = provider
        .track(std::slice::from_ref(&reference))
        .await
        .unwrap();
    assert_eq!(current(&updates, &reference).0, StatusCode::OnDelivery);
    assert!(
        statuses(&updates, &reference)
            .iter()
            .all(|(c, _)| *c <= StatusCode::OnDelivery),
        "nothing of the delivered parcel may run ahead"
    );
    sim.tick();
    let updates = provider
        .track(std::slice::from_ref(&reference))
        .await
        .unwrap();
    assert_eq!(current(&updates, &reference).0, StatusCode::Delivered);
    sim.shutdown().await;
}

#[tokio::test]
async fn tracking_reads_the_change_feed_not_one_order_per_call() {
    let sim = sim().await;
    let provider = sim.provider_builder().build().unwrap();
    let mut refs = Vec::new();
    for n in 0..30 {
        let created = provider
            .create_order(&american(&format!("SO-FEED-{n}")), &Waybill::new())
            .await
            .unwrap();
        refs.push(created.reference);
    }
    sim.tick();
    sim.reset_stats();
    let updates = provider.track(&refs).await.unwrap();
    assert_eq!(updates.len(), 30);
    assert!(updates.iter().all(|u| !u.statuses().is_empty()));
    let stats = sim.stats();
    // Two feed listings, and at most one read by id, of the orders created before the feed
    // was first read that it did not bring (their cached views might have missed a change;
    // how many depends on the clock): nothing per order.
    let listings = stats.requests_to("GET /order");
    assert!((2..=3).contains(&listings), "{:?}", stats.requests);
    assert!(stats.largest_track_batch <= 30);
    assert_eq!(stats.requests_to("GET /order/{id}"), 0);
    // From now on the feed alone: two listings per call, whatever the number of orders.
    for _ in 0..3 {
        sim.tick();
        sim.reset_stats();
        let updates = provider.track(&refs).await.unwrap();
        assert!(updates.iter().all(|u| !u.statuses().is_empty()));
        assert_eq!(sim.stats().requests_to("GET /order"), 2);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn an_unknown_reference_is_not_found_and_a_bad_one_too() {
    let sim = sim().await;
    let provider = sim.provider_builder().build().unwrap();
    let refs = [
        ShipmentRef::new("SO-X", "999"),
        ShipmentRef::new("SO-Y", "not-a-number"),
    ];
    let updates = provider.track(&refs).await.unwrap();
    assert!(
        updates
            .iter()
            .all(|u| matches!(u, TrackingUpdate::NotFound { .. }))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn cancel_within_the_window_then_too_late() {
    let sim = sim().await;
    let provider = sim.provider_builder().build().unwrap();
    let early = provider
        .create_order(&american("SO-C1"), &Waybill::new())
        .await
        .unwrap();
    let outcome = provider.cancel_order(&early.reference).await.unwrap();
    assert_eq!(
        outcome,
        CancelOutcome::Cancelled {
            state: Some("Cancelled".into())
        }
    );
    // Again: already cancelled, nothing cancelled twice.
    let again = provider.cancel_order(&early.reference).await.unwrap();
    assert!(
        matches!(again, CancelOutcome::AlreadyCancelled { .. }),
        "{again:?}"
    );
    assert_eq!(sim.shipbob_order("SO-C1").unwrap().cancels, 1);
    let updates = provider
        .track(std::slice::from_ref(&early.reference))
        .await
        .unwrap();
    assert_eq!(current(&updates, &early.reference).0, StatusCode::Cancelled);

    let late = provider
        .create_order(&american("SO-C2"), &Waybill::new())
        .await
        .unwrap();
    sim.advance("SO-C2", "Processing/Packed").unwrap();
    let outcome = provider.cancel_order(&late.reference).await.unwrap();
    assert_eq!(
        outcome,
        CancelOutcome::TooLate {
            state: "Processing/Packed (101)".into()
        }
    );
    assert_eq!(sim.shipbob_order("SO-C2").unwrap().cancels, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_refusal_as_422_is_judged_the_same() {
    let sim = ShipBobSimulator::builder()
        .with_rate_limit(None)
        .with_cancel_refusals_as_422(true)
        .start()
        .await
        .unwrap();
    let provider = sim.provider_builder().build().unwrap();
    let late = provider
        .create_order(&american("SO-C3"), &Waybill::new())
        .await
        .unwrap();
    sim.advance("SO-C3", "LabeledCreated").unwrap();
    let outcome = provider.cancel_order(&late.reference).await.unwrap();
    assert_eq!(
        outcome,
        CancelOutcome::TooLate {
            state: "LabeledCreated".into()
        }
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn updates_reach_every_parcel_within_the_window() {
    let sim = sim().await;
    let provider = sim.provider_builder().build().unwrap();
    let order = american("SO-U1");
    let created = provider
        .create_order(&order, &Waybill::new())
        .await
        .unwrap();
    let same = provider
        .update_order(&created.reference, &order, &Waybill::new())
        .await
        .unwrap();
    assert_eq!(same, UpdateOutcome::NoChange);

    let mut moved = order.clone();
    moved.address.lines = vec!["200 W Madison St".into()];
    moved.address.postcode = "60606".into();
    moved.customer.name = "Jane Q Roe".into();
    moved.lines[0].quantity = 3;
    let applied = provider
        .update_order(&created.reference, &moved, &Waybill::new())
        .await
        .unwrap();
    assert_eq!(applied, UpdateOutcome::Applied);
    let held = sim.shipbob_order("SO-U1").unwrap();
    assert_eq!(held.recipient["address"]["address1"], "200 W Madison St");
    assert_eq!(held.recipient["name"], "Jane Q Roe");
    assert_eq!(held.shipments[0].lines, [("LIGHT-ROAST".to_string(), 3)]);
    let again = provider
        .update_order(&created.reference, &moved, &Waybill::new())
        .await
        .unwrap();
    assert_eq!(again, UpdateOutcome::NoChange);

    sim.advance("SO-U1", "Processing/Picked").unwrap();
    moved.customer.name = "Too Late".into();
    let late = provider
        .update_order(&created.reference, &moved, &Waybill::new())
        .await
        .unwrap();
    assert_eq!(
        late,
        UpdateOutcome::TooLate {
            state: "Processing/Picked (100)".into()
        }
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_parcel_sent_back_is_reported_until_it_is_back_at_shipbob() {
    let sim = ShipBobSimulator::builder()
        .with_rate_limit(None)
        .with_lifecycle(Lifecycle::shipbob_return_to_sender())
        .start()
        .await
        .unwrap();
    let provider = sim.provider_builder().build().unwrap();
    let created = provider
        .create_order(&american("SO-RTS"), &Waybill::new())
        .await
        .unwrap();
    let reference = created.reference.clone();
    let mut seen = Vec::new();
    for _ in 0..7 {
        sim.tick();
        let updates = provider
            .track(std::slice::from_ref(&reference))
            .await
            .unwrap();
        seen.push(current(&updates, &reference));
    }
    use StatusCode::*;
    let codes: Vec<StatusCode> = seen.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        codes,
        [
            Accepted,
            Packed,
            InTransit,
            Pending,
            ReturningToSender,
            DeliveredToSender,
            DeliveredToSender
        ]
    );
    // The return order's own words: arrived back, then completed (a change to report).
    assert_eq!(seen[5].1, "return: RTS/Arrived");
    assert_eq!(seen[6].1, "return: RTS/Completed");
    assert_eq!(
        sim.shipbob_order("SO-RTS").unwrap().shipments[0]
            .return_order
            .as_deref(),
        Some("RTS/Completed")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_valid_address_releases_an_address_hold() {
    let sim = ShipBobSimulator::builder()
        .with_rate_limit(None)
        .with_lifecycle(Lifecycle::shipbob_address_hold())
        .start()
        .await
        .unwrap();
    let provider = sim.provider_builder().build().unwrap();
    let order = american("SO-HOLD");
    let created = provider
        .create_order(&order, &Waybill::new())
        .await
        .unwrap();
    sim.tick();
    let updates = provider
        .track(std::slice::from_ref(&created.reference))
        .await
        .unwrap();
    let TrackingUpdate::Statuses { statuses, .. } = &updates[0] else {
        panic!("{updates:?}")
    };
    let held = statuses.last().unwrap();
    assert_eq!(held.original, "OnHold/InvalidAddress (401)");
    assert_eq!(
        held.problem,
        Some(fulfillkit::model::Problem::AddressNotFound)
    );
    let mut fixed = order.clone();
    fixed.address.lines = vec!["100 N Racine Avenue".into()];
    let applied = provider
        .update_order(&created.reference, &fixed, &Waybill::new())
        .await
        .unwrap();
    assert_eq!(applied, UpdateOutcome::Applied);
    assert_eq!(
        sim.shipbob_order("SO-HOLD").unwrap().shipments[0].state,
        "Processing"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn stock_is_fulfillable_quantity_network_wide_or_at_the_pinned_center() {
    let sim = sim().await;
    let provider = sim.provider_builder().build().unwrap();
    provider
        .create_order(&american("SO-S1"), &Waybill::new())
        .await
        .unwrap();
    let levels = provider.stock(&["LIGHT-ROAST".into()]).await.unwrap();
    assert_eq!(levels.len(), 1);
    // 1000 + 688 on hand, 2 committed by the order.
    assert_eq!((levels[0].available, levels[0].reserved), (1686, Some(2)));
    let all = provider.stock(&[]).await.unwrap();
    let by_sku: HashMap<_, _> = all
        .iter()
        .map(|l| (l.sku.as_str().to_owned(), l.available))
        .collect();
    assert_eq!(by_sku["LIGHT-ROAST-5LB"], 40);
    assert_eq!(by_sku["Demo Product-1"], 750);

    let pinned = sim
        .provider_builder()
        .with_location_id(211)
        .build()
        .unwrap();
    let levels = pinned
        .stock(&["LIGHT-ROAST".into(), "LIGHT-ROAST-5LB".into()])
        .await
        .unwrap();
    assert_eq!(levels.len(), 1, "{levels:?}");
    assert_eq!(
        (levels[0].available, levels[0].warehouse.as_deref()),
        (688, Some("211"))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn stock_pages_follow_the_next_link() {
    let rows = (0..7).map(|i| ShipBobInventoryRow::new(500 + i, format!("SKU-{i}"), 10 + i));
    let sim = ShipBobSimulator::builder()
        .with_rate_limit(None)
        .with_inventory(rows)
        .start()
        .await
        .unwrap();
    let provider = sim.provider_builder().build().unwrap();
    let levels = provider.stock(&[]).await.unwrap();
    assert_eq!(levels.len(), 7);
    sim.shutdown().await;
}

#[tokio::test]
async fn over_the_rate_limit_the_adapter_is_told_to_wait() {
    let sim = ShipBobSimulator::builder()
        .with_rate_limit(Some(3))
        .start()
        .await
        .unwrap();
    let mut http = fast_http();
    // The simulator asks for the rest of its 60 s window in `x-retry-after`; a retry budget
    // shorter than that makes the client give up at once and hand the wait to its caller.
    http.retry = http
        .retry
        .with_max_retries(1)
        .with_retry_timeout(std::time::Duration::from_secs(1));
    let provider = sim
        .provider_builder()
        .with_http_config(http)
        .build()
        .unwrap();
    let mut limited = None;
    for _ in 0..5 {
        if let Err(e) = provider.stock(&["LIGHT-ROAST".into()]).await {
            limited = Some(e);
            break;
        }
    }
    let err = limited.expect("the fourth call in a minute is refused");
    let Error::RateLimited {
        retry_after: Some(wait),
    } = &err
    else {
        panic!("expected a rate limit with the simulator's x-retry-after, got {err:?}");
    };
    assert!(*wait <= std::time::Duration::from_secs(60), "{wait:?}");
    assert!(err.is_retryable());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_create_lost_after_it_was_stored_is_adopted_not_repeated() {
    let sim = ShipBobSimulator::builder()
        .with_rate_limit(None)
        .with_faults(
            Faults::none()
                .with_lost_responses(1.0)
                .with_endpoints(["POST /order"]),
        )
        .start()
        .await
        .unwrap();
    let provider = sim
        .provider_builder()
        .with_http_config(fast_http())
        .build()
        .unwrap();
    let created = provider
        .create_order(&american("SO-LOST"), &Waybill::new())
        .await
        .unwrap();
    assert_eq!(
        created.reference.provider_ref,
        sim.order_id("SO-LOST").unwrap().to_string()
    );
    assert_eq!(sim.stats().creates_of("SO-LOST"), 1);
    assert_eq!(sim.orders().len(), 1);

    sim.set_faults(
        Faults::none()
            .with_applied_server_errors(1.0)
            .with_endpoints(["POST /order"]),
    )
    .unwrap();
    let created = provider
        .create_order(&american("SO-500"), &Waybill::new())
        .await
        .unwrap();
    assert_eq!(
        created.reference.provider_ref,
        sim.order_id("SO-500").unwrap().to_string()
    );
    assert_eq!(sim.stats().creates_of("SO-500"), 1);

    // A 500 before anything was stored: looked up, not found, posted again.
    sim.set_faults(
        Faults::none()
            .with_server_errors(1.0)
            .with_endpoints(["POST /order"])
            .with_seed(3),
    )
    .unwrap();
    let err = provider
        .create_order(&american("SO-DOWN"), &Waybill::new())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(sim.order_id("SO-DOWN"), None);
    sim.set_faults(Faults::none()).unwrap();
    let created = provider
        .create_order(&american("SO-DOWN"), &Waybill::new())
        .await
        .unwrap();
    assert_eq!(
        created.reference.provider_ref,
        sim.order_id("SO-DOWN").unwrap().to_string()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_simulator_refuses_a_wrong_token() {
    let sim = sim().await;
    let provider = fulfillkit::provider::shipbob::ShipBobBuilder::new("wrong", 432951)
        .with_base_url(sim.base_url())
        .with_rate_limit(None)
        .build()
        .unwrap();
    let err = provider
        .create_order(&american("SO-T"), &Waybill::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    assert_eq!(sim.stats().unauthorized, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn fault_knobs_are_set_over_http() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    let knobs = format!("{}/_sim/faults", sim.base_url());
    let set = |body: &'static str| http.post(&knobs).body(body).send();
    assert_eq!(
        set(r#"{"server_error": 1.0, "seed": 3}"#)
            .await
            .unwrap()
            .status(),
        204
    );
    // Every API request now fails; the control endpoint still answers.
    assert_eq!(sim.faults().server_error, 1.0);
    assert_eq!(sim.faults().seed, 3);
    // Knobs not named stay; invalid ones change nothing and say why.
    let refused = set(r#"{"server_error": 2.0}"#).await.unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("server_error"));
    let unknown = set(r#"{"servr_error": 0.5}"#).await.unwrap();
    assert_eq!(unknown.status(), 400);
    assert_eq!(sim.faults().server_error, 1.0);
    assert_eq!(set(r#"{"server_error": 0.0}"#).await.unwrap().status(), 204);
    assert_eq!(sim.faults(), Faults::none().with_seed(3));
    sim.shutdown().await;
}

#[tokio::test]
async fn the_sandbox_simulation_endpoints_ship_and_deliver() {
    let sim = sim().await;
    let provider = sim.provider_builder().build().unwrap();
    let created = provider
        .create_order(&american("SO-SIM"), &Waybill::new())
        .await
        .unwrap();
    let shipment_id = sim.shipbob_order("SO-SIM").unwrap().shipments[0].id;
    sim.advance("SO-SIM", "Processing").unwrap();
    let http = reqwest::Client::new();
    let token = format!("Bearer {}", fulfillkit::simulator::SHIPBOB_DEFAULT_TOKEN);
    let answer: serde_json::Value = http
        .post(format!("{}/2026-07/simulate/shipment", sim.base_url()))
        .header("authorization", &token)
        .header("shipbob_channel_id", "432951")
        .json(
            &serde_json::json!({"shipment_id": shipment_id.to_string(), "simulation": {
            "action": "ShipOrder", "delay": null,
            "next": {"action": "DeliverOrder", "delay": 60, "next": null}}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = answer["simulation_id"].as_str().unwrap();
    let status: serde_json::Value = http
        .get(format!("{}/2026-07/simulate/status/{id}", sim.base_url()))
        .header("authorization", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["simulation"]["status"], "Success");
    assert_eq!(status["simulation"]["next"]["action"], "DeliverOrder");
    assert_eq!(status["simulation"]["next"]["status"], "Success");
    let updates = provider
        .track(std::slice::from_ref(&created.reference))
        .await
        .unwrap();
    assert_eq!(
        current(&updates, &created.reference).0,
        StatusCode::Delivered
    );
    // Delivering what is on hold fails, and says so.
    provider
        .create_order(&american("SO-SIM2"), &Waybill::new())
        .await
        .unwrap();
    sim.advance("SO-SIM2", "OnHold/InvalidAddress").unwrap();
    let second = sim.shipbob_order("SO-SIM2").unwrap().shipments[0].id;
    let answer: serde_json::Value = http
        .post(format!("{}/2026-07/simulate/shipment", sim.base_url()))
        .header("authorization", &token)
        .json(&serde_json::json!({"shipment_id": second, "simulation": {"action": "ShipOrder"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = answer["simulation_id"].as_str().unwrap();
    let status: serde_json::Value = http
        .get(format!("{}/2026-07/simulate/status/{id}", sim.base_url()))
        .header("authorization", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["simulation"]["status"], "Failed");
    assert_eq!(
        sim.shipbob_order("SO-SIM2").unwrap().shipments[0].state,
        "OnHold/InvalidAddress"
    );
    sim.shutdown().await;
}
