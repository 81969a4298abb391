//! Every public model type survives a JSON round trip, and the `Order` JSON is stable.

use std::collections::BTreeSet;
use std::fmt::Debug;

use chrono::{NaiveTime, TimeZone, Utc};
use fulfillkit::model::*;
use fulfillkit::provider::{CancelOutcome, Capabilities, UpdateOutcome};
use rust_decimal::Decimal;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let text = serde_json::to_string(value).expect("serializes");
    let back: T = serde_json::from_str(&text).expect("deserializes");
    assert_eq!(&back, value, "round trip of {text}");
}

fn full_order() -> Order {
    let mut order = Order::new(
        "SO-1001",
        Customer {
            name: "Giulia Rossi".into(),
            phone: "+393401234567".into(),
            email: Some("giulia@example.com".into()),
        },
        Address {
            country: "IT".into(),
            region: Some("VE".into()),
            city: "Venezia".into(),
            postcode: "30121".into(),
            lines: vec!["Via Roma 12".into(), "int. 4".into()],
            provider_address_id: Some("ADDR-7".into()),
            pickup_point_id: Some("VE-PT-1".into()),
        },
        vec![CartLine {
            sku: "Demo Product-1".into(),
            name: "Demo".into(),
            product_type: Some("cosmetics".into()),
            quantity: 2,
            unit_price: Decimal::new(2450, 2),
        }],
        Payment::CashOnDelivery {
            amount: Decimal::new(4900, 2),
        },
        "EUR",
    )
    .with_tag("vip")
    .with_custom_field("channel", "web");
    order.confirmed_at = Some(Utc.with_ymd_and_hms(2024, 5, 2, 10, 15, 0).unwrap());
    order
}

#[test]
fn order_golden_json() {
    let expected = json!({
        "id": "SO-1001",
        "confirmed_at": "2024-05-02T10:15:00Z",
        "customer": {"name": "Giulia Rossi", "phone": "+393401234567", "email": "giulia@example.com"},
        "address": {
            "country": "IT", "region": "VE", "city": "Venezia", "postcode": "30121",
            "lines": ["Via Roma 12", "int. 4"],
            "provider_address_id": "ADDR-7", "pickup_point_id": "VE-PT-1"
        },
        "lines": [{
            "sku": "Demo Product-1", "name": "Demo", "product_type": "cosmetics",
            "quantity": 2, "unit_price": "24.50"
        }],
        "payment": {"kind": "cash_on_delivery", "amount": "49.00"},
        "currency": "EUR",
        "tags": ["vip"],
        "custom_fields": {"channel": "web"}
    });
    assert_eq!(serde_json::to_value(full_order()).unwrap(), expected);
    let back: Order = serde_json::from_value(expected).unwrap();
    assert_eq!(back, full_order());
    // Optional parts may be left out by the host.
    let minimal: Order = serde_json::from_value(json!({
        "id": "SO-2",
        "customer": {"name": "A B", "phone": "+48501234567"},
        "address": {"country": "PL", "city": "Łódź", "postcode": "90-001", "lines": ["Piotrkowska 1"]},
        "lines": [{"sku": "X", "name": "X", "quantity": 1, "unit_price": "1"}],
        "payment": {"kind": "prepaid"},
        "currency": "PLN"
    }))
    .unwrap();
    minimal.validate().unwrap();
}

#[test]
fn every_public_type_round_trips() {
    let at = Utc.with_ymd_and_hms(2024, 5, 4, 13, 48, 0).unwrap();
    let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
    let six = NaiveTime::from_hms_opt(18, 0, 0).unwrap();
    let point = PickupPoint {
        id: "WAW01A".into(),
        name: "Paczkomat WAW01A".into(),
        address: "ul. Prosta 1, Warszawa".into(),
        postcode: "00-001".into(),
        phones: vec!["+48221234567".into()],
        opening_hours: OpeningHours::on(
            &Weekday::ALL,
            &[TimeRange {
                from: nine,
                to: six,
            }],
        ),
        coordinates: Some(Coordinates {
            lat: 52.23,
            lon: 21.0,
        }),
    };
    let status = DeliveryStatus::new(StatusCode::Pending, "Mancata consegna", at)
        .with_problem(Problem::RecipientAbsent)
        .with_pickup_point(point.clone())
        .with_carrier("SDA", Some("383148H047484".into()));
    round_trip(&full_order());
    round_trip(&status);
    round_trip(&point);
    round_trip(&Problem::Other("dog bit courier".into()));
    for code in StatusCode::ALL {
        round_trip(&code);
    }
    assert_eq!(
        serde_json::to_value(StatusCode::InTransit).unwrap(),
        "in_transit"
    );
    round_trip(&StatusMapping {
        code: StatusCode::Returned,
        problem: Some(Problem::Refused),
    });
    round_trip(&StockLevel {
        sku: "A".into(),
        warehouse: Some("ITWH2".into()),
        available: 42,
        reserved: Some(8),
        in_transit: Some(5),
    });
    round_trip(&StockThresholds::new(3, 30).unwrap());
    round_trip(&Level::Few);
    round_trip(&StockView::Levels);
    round_trip(&StockDisplay::Exact { available: 15 });
    round_trip(&StockDisplay::Level(Level::Many));
    let mut requested = full_order();
    requested.customer.phone = "+393409999999".into();
    requested.address.city = "Padova".into();
    round_trip(&OrderException {
        order_id: "SO-1".into(),
        seq: 2,
        instance: "wapi-it-cod".into(),
        shipment: ShipmentRef::new("SO-1", "WH0000653702"),
        reason: ExceptionReason::TooLate,
        changed_fields: BTreeSet::from([KeyField::Address, KeyField::Phone]),
        provider_state: Some("AssignedToPartner".into()),
        delivery_status: Some(status.clone()),
        exported: full_order(),
        requested: requested.clone(),
        later_edits: vec![SuspendedEdit {
            order: requested,
            changed_fields: BTreeSet::from([KeyField::Address]),
            at,
        }],
        detected_at: at,
        resolution: Some(Resolution {
            action: ResolutionAction::Reexport,
            by: "operator-7".into(),
            note: Some("customer moved".into()),
        }),
        resolved_at: Some(at),
    });
    let query = AddressQuery::in_country("PL")
        .with_city("Łódź")
        .with_text("WAW")
        .with_limit(5);
    round_trip(&query);
    round_trip(&AddressOption {
        id: "WAW01A".into(),
        kind: AddressKind::Locker,
        label: "Paczkomat".into(),
        address: full_order().address,
        carrier: Some("Inpost".into()),
        opening_hours: Some(point.opening_hours.clone()),
    });
    let reference = ShipmentRef::new("SO-1", "WH0000653702");
    round_trip(&Shipment {
        reference: reference.clone(),
        tracking_number: Some("WH0000653702".into()),
        status: Some(status.clone()),
    });
    round_trip(&TrackingUpdate::Statuses {
        shipment: reference.clone(),
        statuses: vec![status],
    });
    round_trip(&TrackingUpdate::NotFound {
        shipment: reference,
        at,
    });
    round_trip(
        &Waybill::new()
            .with("courier", "SDA")
            .with("window", json!({"from": "09:00", "to": "12:00"})),
    );
    round_trip(
        &WaybillForm::new(vec![
            WaybillField::new(
                "c",
                "C",
                FieldKind::Select {
                    options: vec![SelectOption::plain("SDA")],
                },
            )
            .required()
            .with_default("SDA")
            .with_help("h"),
            WaybillField::new(
                "n",
                "N",
                FieldKind::Integer {
                    min: Some(1),
                    max: None,
                },
            ),
            WaybillField::new("t", "T", FieldKind::Text { max_len: Some(3) }),
            WaybillField::new("d", "D", FieldKind::Decimal),
            WaybillField::new("b", "B", FieldKind::Bool),
            WaybillField::new("w", "W", FieldKind::TimeWindow),
            WaybillField::new("day", "Day", FieldKind::Date),
        ])
        .unwrap(),
    );
    round_trip(&Capabilities::all(50, 100));
    round_trip(&UpdateOutcome::TooLate {
        state: "Packed".into(),
    });
    round_trip(&CancelOutcome::Cancelled {
        state: Some("void".into()),
    });
    round_trip(&CancelOutcome::AlreadyCancelled { state: None });
    round_trip(&fulfillkit::error::FieldError::new("a.b", "bad"));
    round_trip(&OrderId::new("x"));
    round_trip(&InstanceId::new("x"));
    round_trip(&Sku::new("x"));
    round_trip(&KeyField::Cart);
    round_trip(&Weekday::Sunday);
}
