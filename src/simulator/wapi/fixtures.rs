//! The data a [`WapiSimulator`](super::WapiSimulator) starts with and the public types that
//! describe it: the default credentials, [`WapiCredentials`], the stock table
//! ([`WapiStockRow`]) and the pickup-point directory ([`WapiPickupPoint`]).
//!
//! What the simulator does with them at run time (orders, statuses, replies) is in `state.rs`
//! and `handlers.rs`.

use std::fmt;

use serde_json::{Value, json};

use crate::http::Secret;

/// The client id a simulator started with
/// [`WapiSimulator::start`](super::WapiSimulator::start) accepts.
pub const DEFAULT_CLIENT_ID: &str = "5f0c6d1e-51a7-4c3d-9e8f-00000000517a";
/// The HMAC secret a simulator started with
/// [`WapiSimulator::start`](super::WapiSimulator::start) accepts.
pub const DEFAULT_SECRET: &str = "wapi-simulator-secret";

/// The credentials a [`WapiSimulator`](super::WapiSimulator) accepts.
#[derive(Clone)]
#[non_exhaustive]
pub struct WapiCredentials {
    /// The `x-client-id`.
    pub client_id: String,
    /// The HMAC secret.
    pub secret: Secret,
}

impl fmt::Debug for WapiCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WapiCredentials").finish_non_exhaustive()
    }
}

/// One row of the simulator's stock table: a product in a warehouse of a country (§10).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WapiStockRow {
    /// ISO alpha-2 code of the country (`IT`); requests may name it so or by name.
    pub country: String,
    /// The country's name as Wapi writes it (`Italy`).
    pub country_name: String,
    /// `warehouseName`, e.g. `ITWH2`.
    pub warehouse_name: String,
    /// `productName`: the sku.
    pub product_name: String,
    /// `remainingQuantity`: units in the warehouse.
    pub remaining: i64,
    /// `reservedQuantity`: units held by orders.
    pub reserved: i64,
    /// `availableQuantity`: units orderable now (V1's `reminderQuantity` is their sum).
    pub available: i64,
    /// `InTransitQuantity`.
    pub in_transit: i64,
    /// `returningQuantity`.
    pub returning: i64,
}

impl WapiStockRow {
    /// `available` units of `product` in `warehouse` of `country` (ISO code), nothing
    /// reserved, in transit or returning.
    pub fn new(
        country: impl Into<String>,
        warehouse: impl Into<String>,
        product: impl Into<String>,
        available: i64,
    ) -> Self {
        let country = country.into();
        Self {
            country_name: country_name(&country).unwrap_or(&country).to_owned(),
            country,
            warehouse_name: warehouse.into(),
            product_name: product.into(),
            remaining: available,
            reserved: 0,
            available,
            in_transit: 0,
            returning: 0,
        }
    }

    /// Sets the reserved units (the remaining ones become available + reserved).
    pub fn with_reserved(mut self, reserved: i64) -> Self {
        self.reserved = reserved;
        self.remaining = self.available.saturating_add(reserved);
        self
    }

    /// Sets the units in transit and returning.
    pub fn with_in_transit(mut self, in_transit: i64, returning: i64) -> Self {
        self.in_transit = in_transit;
        self.returning = returning;
        self
    }

    /// Sets the country's name as Wapi writes it.
    pub fn with_country_name(mut self, name: impl Into<String>) -> Self {
        self.country_name = name.into();
        self
    }

    pub(super) fn in_country(&self, wanted: &str) -> bool {
        let wanted = wanted.trim();
        self.country.eq_ignore_ascii_case(wanted) || self.country_name.eq_ignore_ascii_case(wanted)
    }
}

/// The English names of the countries Wapi serves, for the stock replies.
fn country_name(code: &str) -> Option<&'static str> {
    Some(match code.to_ascii_uppercase().as_str() {
        "IT" => "Italy",
        "ES" => "Spain",
        "PL" => "Poland",
        "PT" => "Portugal",
        "BG" => "Bulgaria",
        "RO" => "Romania",
        "GR" => "Greece",
        "HU" => "Hungary",
        "CZ" => "Czech Republic",
        "SK" => "Slovakia",
        "HR" => "Croatia",
        "SI" => "Slovenia",
        "DE" => "Germany",
        "FR" => "France",
        _ => return None,
    })
}

/// A pickup point or parcel locker of the simulator's directory (§13).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WapiPickupPoint {
    /// `code`: what an order's `selfCollectPointName` names.
    pub code: String,
    /// `carrier`, e.g. `Inpost`.
    pub carrier: String,
    /// `name`, e.g. `Paczkomat WAW01A`.
    pub name: String,
    /// `addressText`: the street line.
    pub address_text: String,
    /// `city`.
    pub city: String,
    /// `zipCode`.
    pub zip_code: String,
    /// `country`, ISO alpha-2.
    pub country: String,
    /// `openingHours`, free text such as `24/7` or `Mo-Fr 09:00-19:00`.
    pub opening_hours: Option<String>,
}

impl WapiPickupPoint {
    /// A point `code` of `carrier` named `name` at `address_text`, `zip_code` `city`,
    /// `country`, without opening hours.
    pub fn new(
        code: impl Into<String>,
        carrier: impl Into<String>,
        name: impl Into<String>,
        country: impl Into<String>,
        city: impl Into<String>,
        zip_code: impl Into<String>,
        address_text: impl Into<String>,
    ) -> Self {
        Self {
            code: code.into(),
            carrier: carrier.into(),
            name: name.into(),
            address_text: address_text.into(),
            city: city.into(),
            zip_code: zip_code.into(),
            country: country.into(),
            opening_hours: None,
        }
    }

    /// Sets the opening hours.
    pub fn with_opening_hours(mut self, hours: impl Into<String>) -> Self {
        self.opening_hours = Some(hours.into());
        self
    }

    pub(super) fn to_json(&self) -> Value {
        json!({
            "code": self.code,
            "carrier": self.carrier,
            "name": self.name,
            "addressText": self.address_text,
            "city": self.city,
            "zipCode": self.zip_code,
            "country": self.country,
            "openingHours": self.opening_hours,
        })
    }

    /// `name, street, zip city`: how the point is named in a status.
    pub(super) fn place(&self) -> String {
        format!(
            "{}, {}, {} {}",
            self.name, self.address_text, self.zip_code, self.city
        )
    }
}

/// The stock table a simulator starts with: Wapi's test products (§1) in Italy and Spain.
pub(super) fn default_stock() -> Vec<WapiStockRow> {
    vec![
        WapiStockRow::new("IT", "ITWH2", "Demo Product-1", 42)
            .with_reserved(8)
            .with_in_transit(5, 1),
        WapiStockRow::new("IT", "ITWH2", "Demo Product-2", 0),
        WapiStockRow::new("ES", "ESWH1", "Demo Product-1", 120).with_reserved(3),
        WapiStockRow::new("ES", "ESWH1", "Demo Product-2", 17),
    ]
}

/// The pickup points a simulator starts with: lockers and points in Poland and Italy.
pub(super) fn default_pickup_points() -> Vec<WapiPickupPoint> {
    vec![
        WapiPickupPoint::new(
            "WAW01A",
            "Inpost",
            "Paczkomat WAW01A",
            "PL",
            "Warszawa",
            "00-001",
            "ul. Prosta 1",
        )
        .with_opening_hours("24/7"),
        WapiPickupPoint::new(
            "WAW07M",
            "Inpost",
            "Paczkomat WAW07M",
            "PL",
            "Warszawa",
            "00-695",
            "ul. Nowogrodzka 22",
        )
        .with_opening_hours("24/7"),
        WapiPickupPoint::new(
            "PL14062",
            "DPD PL",
            "DPD Pickup Żabka",
            "PL",
            "Kraków",
            "31-042",
            "Rynek Główny 13",
        )
        .with_opening_hours("Mo-Sa 06:00-23:00, Su 10:00-20:00"),
        WapiPickupPoint::new(
            "SDA-VE-0042",
            "SDA",
            "Punto Poste Tabaccheria Rialto",
            "IT",
            "Venezia",
            "30125",
            "Campo San Bartolomio 5300",
        )
        .with_opening_hours("Mo-Fr 08:30-19:30, Sa 09:00-13:00"),
    ]
}
