//! A provider's `Retry-After` header, from arbitrary text: parsed or refused, never a panic.
#![no_main]

use fulfillkit::http::parse_retry_after;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_retry_after(text, std::time::SystemTime::now());
    }
});
