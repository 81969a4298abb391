//! Quickstart: three fulfillment instances (two accounts of one company for prepaid and cash on
//! delivery in Italy, one account of another company for Poland), routing rules, orders
//! confirmed and exported, one followed to delivery at a pickup point, one edit refused once
//! the parcel is packed.
//!
//! Runs on the in-process mock provider. Run with `cargo run --example quickstart`.

use std::sync::Arc;

use chrono::Utc;
use fulfillkit::model::{
    DeliveryStatus, Order, Payment, PickupPoint, Problem, StatusCode, Waybill,
};
use fulfillkit::orchestrator::{
    AcceptedPayment, CollectingSink, Condition, EventKind, ExportOutcome, Instance,
    InstanceSettings, Orchestrator, PaymentKind, RoutingRule,
};
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::provider::{FulfillmentProvider, UpdateOutcome};
use fulfillkit::testkit::sample_order;

#[tokio::main(flavor = "current_thread")]
async fn main() -> fulfillkit::Result<()> {
    // Two accounts at one company (kind "italian-3pl"), one at another ("polish-3pl").
    let it_prepaid = Arc::new(MockProvider::new().with_kind("italian-3pl"));
    let it_cod = Arc::new(MockProvider::new().with_kind("italian-3pl"));
    let pl = Arc::new(MockProvider::new().with_kind("polish-3pl"));
    let events = Arc::new(CollectingSink::new());

    let orchestrator = Orchestrator::builder()
        .instance(
            Instance::new(
                "it-prepaid",
                "Italy, prepaid (Acme Srl)",
                it_prepaid.clone(),
            )
            .with_settings(
                InstanceSettings::default()
                    .with_legal_entity("Acme Srl")
                    .with_accepted_payment(AcceptedPayment::Prepaid),
            ),
        )
        .instance(
            Instance::new(
                "it-cod",
                "Italy, cash on delivery (Acme Srl)",
                it_cod.clone(),
            )
            .with_settings(
                InstanceSettings::default()
                    .with_legal_entity("Acme Srl")
                    .with_accepted_payment(AcceptedPayment::CashOnDelivery),
            ),
        )
        .instance(Instance::new("pl", "Poland (Acme Sp. z o.o.)", pl.clone()))
        .rule(RoutingRule::new(
            "italy, prepaid",
            Condition::All {
                conditions: vec![
                    Condition::CountryIn {
                        countries: vec!["IT".into()],
                    },
                    Condition::PaymentIs {
                        payment: PaymentKind::Prepaid,
                    },
                ],
            },
            "it-prepaid",
        ))
        .rule(RoutingRule::new(
            "italy, cod",
            Condition::CountryIn {
                countries: vec!["IT".into()],
            },
            "it-cod",
        ))
        .rule(RoutingRule::new(
            "poland",
            Condition::CountryIn {
                countries: vec!["PL".into()],
            },
            "pl",
        ))
        .events(events.clone())
        .build()?;

    // 1. A handful of confirmed orders, each exported to the instance its rules pick.
    println!("== export on confirmation");
    let orders = vec![
        sample_order("SO-1001"),
        cod(sample_order("SO-1002")),
        polish(sample_order("SO-1003")),
        cod(polish(sample_order("SO-1004"))),
        sample_order("SO-1005"),
    ];
    for order in &orders {
        match orchestrator.on_order_confirmed(order).await? {
            ExportOutcome::Exported { instance, shipment } => println!(
                "{} ({}, {}) -> {instance} as {}",
                order.id,
                order.address.country,
                payment(order),
                shipment.reference.provider_ref
            ),
            other => println!("{}: {other:?}", order.id),
        }
    }
    // Confirming again is harmless: nothing is sent twice.
    if let ExportOutcome::AlreadyExported { instance, shipment } =
        orchestrator.on_order_confirmed(&orders[0]).await?
    {
        println!(
            "{} confirmed again -> already at {instance} as {}, nothing sent",
            orders[0].id, shipment.provider_ref
        );
    }

    // A broken order is refused with every problem named, and nothing is sent.
    let mut broken = sample_order("SO-1006");
    broken.customer.phone = "12".into();
    broken.lines[0].quantity = 0;
    if let Err(err) = orchestrator.on_order_confirmed(&broken).await {
        println!("SO-1006 refused: {err}");
    }

    // 2. The first parcel moves; the provider reports its words beside the normalized code.
    println!("\n== tracking {}", orders[0].id);
    let order = &orders[0];
    let record = orchestrator
        .shipment(&order.id)
        .await?
        .expect("exported above");
    let reference = record.shipment().expect("exported above").clone();
    it_prepaid.advance(&order.id, StatusCode::Packed)?;
    it_prepaid.advance(&order.id, StatusCode::InTransit)?;
    let point = PickupPoint {
        id: "VE-07".into(),
        name: "Edicola San Marco".into(),
        address: "Calle Larga 7, Venezia".into(),
        postcode: "30124".into(),
        phones: vec![],
        opening_hours: Default::default(),
        coordinates: None,
    };
    it_prepaid.push_status(
        &order.id,
        DeliveryStatus::new(StatusCode::Pending, "Destinatario assente", Utc::now())
            .with_problem(Problem::RecipientAbsent)
            .with_pickup_point(point),
    )?;
    it_prepaid.advance(&order.id, StatusCode::Delivered)?;
    let updates = it_prepaid.track(std::slice::from_ref(&reference)).await?;
    for status in updates[0].statuses() {
        let problem = status
            .problem
            .as_ref()
            .map(|p| format!(", problem {p:?}"))
            .unwrap_or_default();
        let point = status
            .pickup_point
            .as_ref()
            .map(|p| format!(", waiting at {} ({})", p.name, p.address))
            .unwrap_or_default();
        println!(
            "  {:>4} {:<12} \"{}\"{problem}{point}",
            status.code.code(),
            format!("{:?}", status.code),
            status.original
        );
    }

    // 3. An edit after packing is too late: the provider refuses it.
    let mut edited = order.clone();
    edited.customer.phone = "+393409999999".into();
    if let UpdateOutcome::TooLate { state } = it_prepaid
        .update_order(&reference, &edited, &Waybill::new())
        .await?
    {
        println!("  edit of the phone refused: too late (state {state})");
    }

    println!("\n== events");
    for event in events.events() {
        let what = match &event.kind {
            EventKind::Exported { shipment, .. } => {
                format!("exported as {}", shipment.provider_ref)
            }
            other => format!("{other:?}"),
        };
        let order = event.order_id.map(|o| o.to_string()).unwrap_or_default();
        println!("  {order} @ {}: {what}", event.instance);
    }
    Ok(())
}

fn cod(mut order: Order) -> Order {
    order.payment = Payment::CashOnDelivery {
        amount: order.total(),
    };
    order
}

fn polish(mut order: Order) -> Order {
    order.address.country = "PL".into();
    order.address.city = "Łódź".into();
    order.address.postcode = "90-001".into();
    order.address.lines = vec!["ul. Piotrkowska 1".into()];
    order.customer.phone = "+48501234567".into();
    order.currency = "PLN".into();
    order
}

fn payment(order: &Order) -> &'static str {
    match order.payment {
        Payment::Prepaid => "prepaid",
        Payment::CashOnDelivery { .. } => "cod",
    }
}
