//! Two status histories from arbitrary JSON (`[[stored...], [incoming...]]`), merged both ways:
//! never a panic, the current status is part of the history, and merging again changes
//! nothing.
#![no_main]

use fulfillkit::model::{DeliveryStatus, StatusOrder, merge_statuses};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((existing, incoming)) =
        serde_json::from_slice::<(Vec<DeliveryStatus>, Vec<DeliveryStatus>)>(data)
    else {
        return;
    };
    for order in [StatusOrder::Classification, StatusOrder::Time] {
        let merged = merge_statuses(&existing, &incoming, order);
        match &merged.current {
            Some(current) => assert!(merged.history.contains(current)),
            None => assert!(merged.history.is_empty()),
        }
        let again = merge_statuses(&merged.history, &incoming, order);
        assert_eq!(again, merged);
    }
});
