//! The data a [`SphereSimulator`](super::SphereSimulator) starts with and the public types
//! that describe it: the default account and key, [`SphereCredentials`], the inventory
//! ([`SphereInventoryRow`]) and the Customer Master ([`SphereCustomer`]).
//!
//! What the simulator does with them at run time (orders, shipments, replies) is in
//! `state.rs` and `handlers.rs`.

use std::fmt;

use serde_json::{Map, Value, json};

use crate::http::Secret;

/// The environment a simulator started with
/// [`SphereSimulator::start`](super::SphereSimulator::start) serves.
pub const DEFAULT_ENVIRONMENT: &str = "sim-api";
/// The API key a simulator started with
/// [`SphereSimulator::start`](super::SphereSimulator::start) accepts.
pub const DEFAULT_API_KEY: &str = "sphere-simulator-key";
/// The client code of a simulator started with
/// [`SphereSimulator::start`](super::SphereSimulator::start).
pub const DEFAULT_CLIENT_CODE: &str = "100";
/// The inventory account (location id) of a simulator started with
/// [`SphereSimulator::start`](super::SphereSimulator::start).
pub const DEFAULT_LOCATION_ID: u32 = 100;

/// The account a [`SphereSimulator`](super::SphereSimulator) serves and the key it accepts.
#[derive(Clone)]
#[non_exhaustive]
pub struct SphereCredentials {
    /// The environment name (the path segment after the base URL).
    pub environment: String,
    /// The API key.
    pub api_key: Secret,
    /// The client code.
    pub client_code: String,
    /// The inventory account orders ship from.
    pub location_id: u32,
}

impl fmt::Debug for SphereCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SphereCredentials")
            .field("environment", &self.environment)
            .field("client_code", &self.client_code)
            .field("location_id", &self.location_id)
            .finish_non_exhaustive()
    }
}

/// One row of the simulator's inventory: a product in an inventory account (§7.4).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SphereInventoryRow {
    /// `location_id`: the inventory account.
    pub location_id: u32,
    /// `product_code`: the sku; the product master is the set of these codes.
    pub product_code: String,
    /// `description`.
    pub description: String,
    /// `on_hand`: units in the account.
    pub on_hand: i64,
    /// `allocated`: units held by orders.
    pub allocated: i64,
    /// `available`: units orderable now.
    pub available: i64,
}

impl SphereInventoryRow {
    /// `available` units of `product_code` in account `location_id`, none allocated.
    pub fn new(location_id: u32, product_code: impl Into<String>, available: i64) -> Self {
        let product_code = product_code.into();
        Self {
            location_id,
            description: product_code.clone(),
            product_code,
            on_hand: available,
            allocated: 0,
            available,
        }
    }

    /// Sets the allocated units (on hand becomes available + allocated).
    pub fn with_allocated(mut self, allocated: i64) -> Self {
        self.allocated = allocated;
        self.on_hand = self.available.saturating_add(allocated);
        self
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }
}

/// A ship-to customer of the simulator's Customer Master (§7.5).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SphereCustomer {
    /// `customer_code`.
    pub customer_code: String,
    /// `name`.
    pub name: String,
    /// `bill_to_code` (the customer itself unless set).
    pub bill_to_code: String,
    /// `street_1`.
    pub street_1: String,
    /// `street_2`.
    pub street_2: Option<String>,
    /// `street_3`.
    pub street_3: Option<String>,
    /// `city`.
    pub city: String,
    /// `state`.
    pub state: Option<String>,
    /// `zip`.
    pub zip: String,
    /// `country`, ISO alpha-2.
    pub country: String,
    /// `phone`.
    pub phone: Option<String>,
    /// `email`.
    pub email: Option<String>,
}

impl SphereCustomer {
    /// Customer `code` named `name` at `street_1`, `zip` `city`, `country`.
    pub fn new(
        code: impl Into<String>,
        name: impl Into<String>,
        country: impl Into<String>,
        city: impl Into<String>,
        zip: impl Into<String>,
        street_1: impl Into<String>,
    ) -> Self {
        let customer_code = code.into();
        Self {
            bill_to_code: customer_code.clone(),
            customer_code,
            name: name.into(),
            street_1: street_1.into(),
            street_2: None,
            street_3: None,
            city: city.into(),
            state: None,
            zip: zip.into(),
            country: country.into(),
            phone: None,
            email: None,
        }
    }

    /// Sets the state (region).
    pub fn with_state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }

    /// Sets the phone and email.
    pub fn with_contact(mut self, phone: impl Into<String>, email: impl Into<String>) -> Self {
        self.phone = Some(phone.into());
        self.email = Some(email.into());
        self
    }

    /// The customer described by an order's `ship_to`.
    pub(super) fn from_ship_to(code: &str, ship_to: &Map<String, Value>) -> Self {
        let text = |name: &str| {
            ship_to
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .unwrap_or("")
                .to_owned()
        };
        let optional = |name: &str| Some(text(name)).filter(|t| !t.is_empty());
        Self {
            customer_code: code.to_owned(),
            name: text("name"),
            bill_to_code: code.to_owned(),
            street_1: text("street_1"),
            street_2: optional("street_2"),
            street_3: optional("street_3"),
            city: text("city"),
            state: optional("state"),
            zip: text("zip"),
            country: text("country"),
            phone: optional("phone"),
            email: optional("email"),
        }
    }

    pub(super) fn to_json(&self) -> Value {
        json!({
            "customer_code": self.customer_code,
            "name": self.name,
            "bill_to_code": self.bill_to_code,
            "street_1": self.street_1,
            "street_2": self.street_2,
            "street_3": self.street_3,
            "city": self.city,
            "state": self.state,
            "zip": self.zip,
            "country": self.country,
            "phone": self.phone,
            "email": self.email,
        })
    }

    pub(super) fn matches(&self, keyword: &str) -> bool {
        let keyword = keyword.to_lowercase();
        [
            Some(&self.customer_code),
            Some(&self.name),
            Some(&self.street_1),
            self.street_2.as_ref(),
            self.street_3.as_ref(),
            Some(&self.city),
            self.state.as_ref(),
            Some(&self.zip),
        ]
        .into_iter()
        .flatten()
        .any(|t| t.to_lowercase().contains(&keyword))
    }
}

/// The inventory a simulator starts with at account `location`: the protocol fixture's
/// products and Wapi's test products (so `testkit::sample_order` is accepted), plus a
/// quarantine account at `location + 10` that is never orderable stock.
pub(super) fn default_inventory(location: u32) -> Vec<SphereInventoryRow> {
    vec![
        SphereInventoryRow::new(location, "ABC-100", 112)
            .with_allocated(8)
            .with_description("Widget"),
        SphereInventoryRow::new(location, "XYZ-7", 40).with_description("Gadget"),
        SphereInventoryRow::new(location, "Demo Product-1", 250).with_description("Demo 1"),
        SphereInventoryRow::new(location, "Demo Product-2", 0).with_description("Demo 2"),
        SphereInventoryRow::new(location.saturating_add(10), "ABC-100", 5)
            .with_description("Widget (quarantine)"),
    ]
}

/// The customers a simulator starts with.
pub(super) fn default_customers() -> Vec<SphereCustomer> {
    vec![
        SphereCustomer::new(
            "ACME-CMH",
            "Acme Store Columbus",
            "US",
            "Columbus",
            "43004",
            "100 Main St",
        )
        .with_state("OH")
        .with_contact("+16145550100", "columbus@acme.example"),
        SphereCustomer::new(
            "ACME-NYC",
            "Acme Store New York",
            "US",
            "New York",
            "10001",
            "350 5th Ave",
        )
        .with_state("NY"),
    ]
}
