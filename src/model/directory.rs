//! The provider's address / pickup-point directory: queries and the options it offers.

use serde::{Deserialize, Serialize};

use super::order::Address;
use super::status::{OpeningHours, PickupPoint};

/// A search in a provider's address / pickup-point directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AddressQuery {
    /// ISO 3166-1 alpha-2 country; required by most providers.
    pub country: String,
    /// Restrict to a city.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Restrict to a postcode (or its prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    /// Free text: name, street or code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Only pickup points / lockers.
    #[serde(default)]
    pub pickup_points_only: bool,
    /// At most this many results; 0 is everything that matches: a provider adapter pages
    /// through its provider's listing (bounded), as the orchestrator's directory index asks
    /// and the conformance suite checks. `Orchestrator::search_addresses`, which answers a
    /// search box from that index, caps 0 at its `DEFAULT_ADDRESS_LIMIT` instead.
    #[serde(default)]
    pub limit: usize,
}

impl AddressQuery {
    /// A query for everything in `country`.
    pub fn in_country(country: impl Into<String>) -> Self {
        Self {
            country: country.into(),
            ..Self::default()
        }
    }

    /// Restricts to `city`.
    pub fn with_city(mut self, city: impl Into<String>) -> Self {
        self.city = Some(city.into());
        self
    }

    /// Restricts to `postcode`.
    pub fn with_postcode(mut self, postcode: impl Into<String>) -> Self {
        self.postcode = Some(postcode.into());
        self
    }

    /// Pickup points and lockers only (no door addresses) when `yes`.
    pub fn pickup_points_only(mut self, yes: bool) -> Self {
        self.pickup_points_only = yes;
        self
    }

    /// Searches for `text`.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Limits the number of results.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
}

/// What kind of place a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AddressKind {
    /// Delivery to the door of this address.
    Door,
    /// A staffed pickup point.
    PickupPoint,
    /// A parcel locker.
    Locker,
}

/// One entry of a provider's directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AddressOption {
    /// The provider's id of the entry (goes into [`Address::provider_address_id`]).
    pub id: String,
    /// Door, pickup point or locker.
    pub kind: AddressKind,
    /// Display name.
    pub label: String,
    /// The address.
    pub address: Address,
    /// The carrier that serves the point, if the provider says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// Opening hours of a pickup point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opening_hours: Option<OpeningHours>,
}

impl AddressOption {
    /// The order address for this entry: its address, with the directory id set and, for a
    /// pickup point or locker, its code as the pickup point.
    pub fn to_address(&self) -> Address {
        let mut address = self.address.clone();
        address.provider_address_id = Some(self.id.clone());
        if self.kind != AddressKind::Door {
            address.pickup_point_id = Some(self.id.clone());
        }
        address
    }

    /// The entry as a [`PickupPoint`], if it is one.
    pub fn to_pickup_point(&self) -> Option<PickupPoint> {
        if self.kind == AddressKind::Door {
            return None;
        }
        Some(PickupPoint {
            id: self.id.clone(),
            name: self.label.clone(),
            address: self.address.lines.join(", "),
            postcode: self.address.postcode.clone(),
            phones: Vec::new(),
            opening_hours: self.opening_hours.clone().unwrap_or_default(),
            coordinates: None,
        })
    }
}
