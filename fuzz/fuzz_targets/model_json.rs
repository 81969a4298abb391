//! The serde model types a host stores and reads back (tracking updates, waybills, waybill
//! forms, exceptions), from arbitrary bytes: no panic, and what parses serializes again.
#![no_main]

use fulfillkit::model::{OrderException, TrackingUpdate, Waybill, WaybillForm};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(update) = serde_json::from_slice::<TrackingUpdate>(data) {
        let _ = serde_json::to_vec(&update).expect("serializes");
    }
    if let Ok(waybill) = serde_json::from_slice::<Waybill>(data) {
        let _ = serde_json::to_vec(&waybill).expect("serializes");
    }
    if let Ok(form) = serde_json::from_slice::<WaybillForm>(data) {
        let _ = serde_json::to_vec(&form).expect("serializes");
    }
    if let Ok(exception) = serde_json::from_slice::<OrderException>(data) {
        let _ = serde_json::to_vec(&exception).expect("serializes");
    }
});
