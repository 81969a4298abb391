//! Plain data: orders, waybills, delivery statuses, stock, exceptions, directory entries.
//!
//! Everything here is `Serialize + Deserialize + Clone + Debug + PartialEq` with stable
//! snake_case JSON, so a host can keep it in its own database. Nothing here does I/O; the only
//! logic is validation and classification.

mod codes;
mod directory;
mod exception;
mod ids;
mod order;
mod shipment;
mod status;
mod stock;
mod waybill;

pub use codes::{is_country_code, is_currency_code};
pub use directory::{AddressKind, AddressOption, AddressQuery};
pub use exception::{KeyField, OrderException, Resolution, ResolutionAction};
pub use ids::{InstanceId, OrderId, Sku};
pub use order::{Address, CartLine, Customer, Order, Payment, normalize_phone};
pub use shipment::{Shipment, ShipmentRef, TrackingUpdate};
pub use status::{
    Coordinates, DeliveryStatus, ORIGINAL_MAX_CHARS, OpeningHours, PickupPoint, Problem,
    StatusCode, StatusMapping, StatusTable, TimeRange, Weekday, clean_original,
    normalize_status_key,
};
pub use stock::{Level, StockDisplay, StockLevel, StockPolicy, StockThresholds, StockView};
pub use waybill::{FieldKind, SelectOption, Waybill, WaybillField, WaybillForm};
