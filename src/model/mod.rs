//! Plain data: orders, waybills, delivery statuses, stock, exceptions, directory entries.
//!
//! Everything here is `Serialize + Deserialize + Clone + Debug + PartialEq` with stable
//! snake_case JSON, so a host can keep it in its own database. Nothing here does I/O; the only
//! logic is validation and classification.

mod codes;
mod directory;
mod event;
mod exception;
mod ids;
mod limits;
mod merge;
mod order;
mod shared_text;
mod shipment;
mod status;
mod stock;
mod text;
mod waybill;

pub use codes::{is_country_code, is_currency_code};
pub use directory::{AddressKind, AddressOption, AddressQuery};
pub use event::{Automation, Event, EventId, EventKind};
pub use exception::{
    ExceptionReason, KeyField, OrderException, Resolution, ResolutionAction, SuspendedEdit,
};
pub use ids::{InstanceId, OrderId, Sku};
pub(crate) use limits::usable_id;
pub use limits::{
    ADDRESS_LINES_MAX, CART_LINES_MAX, ID_MAX_CHARS, LABELS_MAX, REEXPORT_MARKER, TEXT_MAX_CHARS,
};
pub(crate) use merge::merge_statuses_owned;
pub use merge::{MergedHistory, StatusOrder, is_reportable_change, merge_statuses};
pub use order::{Address, CartLine, Customer, Order, Payment, normalize_phone};
pub use shared_text::Text;
pub use shipment::{Shipment, ShipmentRef, TrackingUpdate};
#[cfg(feature = "wapi")]
pub(crate) use status::with_status_key;
pub use status::{
    CommentRule, CommentRules, Coordinates, DeliveryStatus, ORIGINAL_MAX_CHARS, OpeningHours,
    PickupPoint, Problem, StatusCode, StatusMapping, StatusTable, TimeRange, Weekday,
    clean_original, normalize_status_key,
};
pub use stock::{Level, StockDisplay, StockLevel, StockPolicy, StockThresholds, StockView};
pub use text::normalize_search_text;
pub use waybill::{FieldKind, INTEGER_LIMIT, SelectOption, Waybill, WaybillField, WaybillForm};
