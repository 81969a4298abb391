//! An order as a host might hand it over, from arbitrary bytes: it either does not parse, or
//! it validates (or fails validation) and totals without panicking.
#![no_main]

use fulfillkit::model::Order;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(order) = serde_json::from_slice::<Order>(data) {
        let _ = order.total();
        if let Err(err) = order.validate() {
            assert!(!err.field_errors().is_empty());
            let _ = err.to_string();
        }
        let json = serde_json::to_vec(&order).expect("an order serializes");
        let back: Order = serde_json::from_slice(&json).expect("an order reads back");
        assert_eq!(back, order);
    }
});
