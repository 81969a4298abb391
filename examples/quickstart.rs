//! Quickstart: validate an order, export it to a (mock) fulfillment company, follow it to
//! delivery, and see an edit refused once the parcel is packed.
//!
//! Run with `cargo run --example quickstart`.

use chrono::Utc;
use fulfillkit::model::{DeliveryStatus, PickupPoint, Problem, StatusCode, Waybill};
use fulfillkit::provider::mock::MockProvider;
use fulfillkit::provider::{FulfillmentProvider, UpdateOutcome};
use fulfillkit::testkit::sample_order;

#[tokio::main(flavor = "current_thread")]
async fn main() -> fulfillkit::Result<()> {
    let provider = MockProvider::new().with_kind("mock-3pl");

    // 1. A confirmed order from the shop, checked before anything is sent.
    let order = sample_order("SO-1001");
    order.validate()?;
    println!(
        "order {}: {} × {} to {}, {} (total {} {})",
        order.id,
        order.lines[0].quantity,
        order.lines[0].sku,
        order.address.city,
        order.address.country,
        order.total(),
        order.currency
    );

    // A broken order is refused with every problem named.
    let mut broken = order.clone();
    broken.customer.phone = "12".into();
    broken.lines[0].quantity = 0;
    if let Err(err) = broken.validate() {
        println!("refused: {err}");
    }

    // 2. Export: create the order at the provider. Creating it again is harmless.
    let shipment = provider.create_order(&order, &Waybill::new()).await?;
    let again = provider.create_order(&order, &Waybill::new()).await?;
    assert_eq!(shipment, again);
    println!(
        "exported to {} as {} ({} order at the provider)",
        provider.kind(),
        shipment.reference.provider_ref,
        provider.created_count()
    );

    // 3. The parcel moves; tracking reports the provider's words and the normalized code.
    provider.advance(&order.id, StatusCode::Packed)?;
    provider.advance(&order.id, StatusCode::InTransit)?;
    let point = PickupPoint {
        id: "VE-07".into(),
        name: "Edicola San Marco".into(),
        address: "Calle Larga 7, Venezia".into(),
        postcode: "30124".into(),
        phones: vec![],
        opening_hours: Default::default(),
        coordinates: None,
    };
    provider.push_status(
        &order.id,
        DeliveryStatus::new(StatusCode::Pending, "Destinatario assente", Utc::now())
            .with_problem(Problem::RecipientAbsent)
            .with_pickup_point(point),
    )?;
    provider.advance(&order.id, StatusCode::Delivered)?;

    let updates = provider
        .track(std::slice::from_ref(&shipment.reference))
        .await?;
    println!("tracking {}:", shipment.reference.provider_ref);
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
            "  {:>4} {:<18} \"{}\"{problem}{point}",
            status.code.code(),
            format!("{:?}", status.code),
            status.original
        );
    }

    // 4. An edit after packing is too late: the provider refuses it.
    let mut edited = order.clone();
    edited.customer.phone = "+393409999999".into();
    match provider
        .update_order(&shipment.reference, &edited, &Waybill::new())
        .await?
    {
        UpdateOutcome::TooLate { state } => {
            println!("edit refused by the provider: too late (state {state})")
        }
        other => println!("edit: {other:?}"),
    }
    Ok(())
}
