//! Shared pieces of the hostile-input property tests (issue 10, part 4): strategies for
//! arbitrary JSON and arbitrary bytes, the classic hostile bodies (deep nesting, invalid UTF-8,
//! a BOM, truncations), and the tests of the shared HTTP client's [`HttpClient::decode`].
//! Each provider's `wire.rs` feeds these to its own parsers in its `hostile` test module.

use proptest::prelude::*;
use serde_json::{Map, Number, Value};

use crate::error::Error;
use crate::http::{HttpClient, HttpConfig, Secret};

/// Proptest cases per property: enough to shake out panics, small enough to keep the suite
/// fast.
pub(crate) const CASES: u32 = 256;

/// The proptest configuration of every hostile-input property.
pub(crate) fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Keys of both providers' replies, so that arbitrary objects often hit a real field with a
/// wrong value.
const KEYS: &[&str] = &[
    // Wapi.
    "trackingNumber",
    "deliveryStatus",
    "deliveryStatusText",
    "troubleStatus",
    "statusHistory",
    "statusDate",
    "statusName",
    "statusComment",
    "courierName",
    "courierSite",
    "courierTrackingNumber",
    "courierTrackingSiteLink",
    "statuses",
    "productName",
    "warehouseName",
    "availableQuantity",
    "reservedQuantity",
    "remainingQuantity",
    "InTransitQuantity",
    "points",
    "code",
    "Error",
    "title",
    // Sphere.
    "order_id",
    "order_number",
    "client_code",
    "status",
    "created_on",
    "updated_on",
    "location_id",
    "product_code",
    "available",
    "allocated",
    "on_hand",
    "customer_code",
    "shipment_id",
    "tracking_numbers",
    "packages",
    "tracking_number",
    "weight",
    "carrier",
    "ship_via",
    "errors",
    "field",
    // Both.
    "error",
    "message",
    "msg",
    "detail",
];

/// Text that is hard on parsers: empty, whitespace, control characters, a NUL, astral and
/// combining characters, right-to-left marks, date-like and number-like strings, and anything.
pub(crate) fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" \t\r\n ".to_owned()),
        Just("\u{0}\u{1}\u{7f}\n\r".to_owned()),
        Just("e\u{301}\u{200f}\u{202e}𝔘𝔫𝔦😀\u{feff}".to_owned()),
        Just("9999999999999999999999999999".to_owned()),
        Just("-1".to_owned()),
        Just("2024-05-02T05:56:52.05".to_owned()),
        Just("20240502101500".to_owned()),
        Just("+262143-12-31T23:59:59".to_owned()),
        prop::sample::select(KEYS).prop_map(str::to_owned),
        any::<String>(),
        "[0-9]{0,16}",
    ]
}

/// A JSON number of any kind: small and huge integers, negative ones, fractions, and floats
/// at the edges of f64.
fn arb_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        (-5i64..5).prop_map(Number::from),
        prop_oneof![
            any::<f64>(),
            Just(f64::MAX),
            Just(f64::MIN),
            Just(f64::MIN_POSITIVE),
            Just(9.0e15),
            Just(-0.0),
            Just(0.5),
            Just(1e300),
        ]
        .prop_filter_map("finite", Number::from_f64),
    ]
}

/// Arbitrary JSON, at most 5 levels deep and about 64 nodes; object keys are often real field
/// names of the providers.
pub(crate) fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        arb_number().prop_map(Value::Number),
        arb_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        let key = prop_oneof![
            3 => prop::sample::select(KEYS).prop_map(str::to_owned),
            1 => arb_text(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Arbitrary bytes: random ones, arbitrary JSON with bytes flipped or cut off, and JSON with
/// invalid UTF-8 spliced in.
pub(crate) fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        arb_json().prop_map(|v| serde_json::to_vec(&v).expect("a Value serializes")),
        (arb_json(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(v, at, byte)| {
            let mut bytes = serde_json::to_vec(&v).expect("a Value serializes");
            let at = at.index(bytes.len());
            bytes[at] = byte;
            bytes
        }),
        (arb_json(), any::<prop::sample::Index>()).prop_map(|(v, at)| {
            let bytes = serde_json::to_vec(&v).expect("a Value serializes");
            let at = at.index(bytes.len() + 1);
            bytes[..at].to_vec()
        }),
        (arb_json(), any::<prop::sample::Index>()).prop_map(|(v, at)| {
            let mut bytes = serde_json::to_vec(&v).expect("a Value serializes");
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, [0xFF, 0xFE, 0xC3, 0x28, 0xED, 0xA0, 0x80]);
            bytes
        }),
    ]
}

/// Date-like text: ISO forms with out-of-range fields, far years, too many fractional digits,
/// odd offsets, and the compact `YYYYMMDD[hhmmss]` forms, besides arbitrary text.
pub(crate) fn arb_date_text() -> impl Strategy<Value = String> {
    let year = prop_oneof![
        Just(2024i64),
        Just(0),
        Just(-1),
        Just(262_142),
        Just(262_143),
        Just(-262_144),
        Just(999_999),
        -300_000i64..300_000,
    ];
    let fraction = prop_oneof![Just(String::new()), Just(".".to_owned()), "\\.[0-9]{1,12}"];
    let offset = prop::sample::select(vec![
        "", "Z", "z", "+02:00", "-23:59", "+23:59", "+24:00", "+99:99", "+0200", " ",
    ]);
    let separator = prop::sample::select(vec!["T", " ", "t", ""]);
    let iso = (
        year,
        0u32..14,
        0u32..33,
        separator,
        0u32..26,
        0u32..62,
        0u32..62,
        fraction,
        offset,
    )
        .prop_map(|(y, mo, d, sep, h, mi, s, frac, off)| {
            format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{off}")
        });
    prop_oneof![
        3 => iso,
        1 => "[0-9]{8}",
        1 => "[0-9]{14}",
        1 => "[0-9]{1,20}",
        1 => arb_text(),
    ]
}

/// Offsets east of UTC in seconds, valid (within ±24 h) and not.
pub(crate) fn arb_offset() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(0),
        Just(7200),
        Just(86_399),
        Just(-86_399),
        Just(86_400),
        Just(i32::MIN),
        Just(i32::MAX),
        -90_000i32..90_000,
    ]
}

/// Any instant chrono can hold, from its first to its last second.
pub(crate) fn arb_instant() -> impl Strategy<Value = chrono::DateTime<chrono::Utc>> {
    use chrono::DateTime;
    prop_oneof![
        Just(DateTime::<chrono::Utc>::MIN_UTC),
        Just(DateTime::<chrono::Utc>::MAX_UTC),
        (DateTime::<chrono::Utc>::MIN_UTC.timestamp()
            ..=DateTime::<chrono::Utc>::MAX_UTC.timestamp())
            .prop_map(|secs| DateTime::from_timestamp(secs, 0).expect("in range")),
        (1_500_000_000i64..2_000_000_000)
            .prop_map(|secs| DateTime::from_timestamp(secs, 0).expect("in range")),
    ]
}

/// How deep the hostile nesting goes: far beyond serde_json's recursion limit of 128 and deep
/// enough to overflow a thread stack if anything recursed without a limit.
pub(crate) const DEEP: usize = 100_000;

/// The classic hostile bodies, each with a label.
pub(crate) fn hostile_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let deep_object = {
        let mut body = r#"{"a":"#.repeat(DEEP).into_bytes();
        body.extend(b"1");
        body.extend("}".repeat(DEEP).bytes());
        body
    };
    let deep_in_field = {
        let mut body =
            br#"[{"trackingNumber":"WH1","deliveryStatus":"x","statusHistory":"#.to_vec();
        body.extend("[".repeat(DEEP).bytes());
        body
    };
    vec![
        ("empty", Vec::new()),
        ("whitespace", b" \r\n\t ".to_vec()),
        ("nul bytes", vec![0; 64]),
        ("deep arrays, unclosed", "[".repeat(DEEP).into_bytes()),
        (
            "deep arrays, closed",
            format!("{}{}", "[".repeat(DEEP), "]".repeat(DEEP)).into_bytes(),
        ),
        ("deep objects", deep_object),
        ("deep in a field", deep_in_field),
        ("invalid utf-8", b"\xFF\xFE\xFD".to_vec()),
        (
            "invalid utf-8 in a string",
            b"{\"error\":\"\xC3\x28\",\"order_id\":\"\xED\xA0\x80\"}".to_vec(),
        ),
        (
            "lone surrogate escape",
            br#"{"error":"\ud800","trackingNumber":"\udfff"}"#.to_vec(),
        ),
        ("bom only", b"\xEF\xBB\xBF".to_vec()),
        ("bom and array", b"\xEF\xBB\xBF[]".to_vec()),
        (
            "huge number",
            format!("[{}]", "9".repeat(10_000)).into_bytes(),
        ),
        ("huge exponent", b"[1e999999999]".to_vec()),
        (
            "long string",
            format!(r#"{{"error":"{}"}}"#, "é".repeat(100_000)).into_bytes(),
        ),
        (
            "html",
            b"<html><body>502 Bad Gateway</body></html>".to_vec(),
        ),
        ("truncated", br#"[{"trackingNumber":"WH1","deliv"#.to_vec()),
    ]
}

/// Whether `err` is serde_json refusing nesting beyond its recursion limit.
pub(crate) fn is_recursion_limit(err: &serde_json::Error) -> bool {
    err.to_string().contains("recursion limit exceeded")
}

/// The message of a typed error a parser may give: `Protocol` or `Validation`.
pub(crate) fn assert_typed(err: &Error) {
    assert!(
        matches!(err, Error::Protocol { .. } | Error::Validation { .. }),
        "untyped error: {err:?}"
    );
}

/// One client for every case: building one sets up TLS, which is slow in debug builds.
pub(crate) fn client() -> &'static HttpClient {
    static CLIENT: std::sync::LazyLock<HttpClient> = std::sync::LazyLock::new(new_client);
    &CLIENT
}

fn new_client() -> HttpClient {
    HttpClient::new(
        "hostile",
        "h",
        url::Url::parse("http://127.0.0.1:1/api").expect("a valid URL"),
        HttpConfig::default(),
        vec![Secret::new("s3cr3t")],
    )
    .expect("a valid client")
}

#[test]
fn decode_refuses_hostile_bodies_with_a_protocol_error() {
    let http = client();
    for (label, body) in hostile_bodies() {
        for result in [
            http.decode::<Vec<Value>>("POST /x", &body).map(|_| ()),
            http.decode::<Value>("POST /x", &body).map(|_| ()),
            http.decode::<Map<String, Value>>("POST /x", &body)
                .map(|_| ()),
        ] {
            if let Err(err) = result {
                assert!(matches!(err, Error::Protocol { .. }), "{label}: {err:?}");
                // The excerpt is short whatever the body's size.
                assert!(err.to_string().chars().count() < 600, "{label}");
            }
        }
    }
    // Nesting past the limit is refused, not followed down the stack.
    for label in ["deep arrays, closed", "deep objects"] {
        let body = hostile_bodies()
            .into_iter()
            .find(|(l, _)| *l == label)
            .expect("a known body")
            .1;
        let err = serde_json::from_slice::<Value>(&body).unwrap_err();
        assert!(is_recursion_limit(&err), "{label}: {err}");
        let err = http.decode::<Value>("POST /x", &body).unwrap_err();
        assert!(
            err.to_string().contains("recursion limit exceeded"),
            "{err}"
        );
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decode_of_arbitrary_bytes_is_ok_or_a_scrubbed_protocol_error(body in arb_bytes()) {
        let http = client();
        if let Err(err) = http.decode::<Value>("POST /x", &body) {
            prop_assert!(matches!(err, Error::Protocol { .. }), "{:?}", err);
            prop_assert!(!err.to_string().contains("s3cr3t"));
        }
        let excerpt = http.excerpt(&body);
        prop_assert!(excerpt.chars().count() <= 201);
    }
}

/// Configured values with control characters: a typed `Validation` error at build time where
/// they would become a header, and harmless where they are only labels in spans.
#[cfg(all(feature = "wapi", feature = "sphere"))]
#[test]
fn control_characters_in_configuration_are_refused_at_build_time() {
    use crate::provider::sphere::{AuthMode, SphereBuilder};
    use crate::provider::wapi::WapiBuilder;

    for bad in ["id\nX-Injected: 1", "id\r\n", "id\u{0}", "id\u{7f}"] {
        let err = WapiBuilder::new(bad, "secret").build().unwrap_err();
        assert!(
            err.field_errors().iter().any(|f| f.path == "client_id"),
            "{bad:?}: {err:?}"
        );
        for mode in [AuthMode::Bearer, AuthMode::Header] {
            let err = SphereBuilder::new("env", bad, "100", 100)
                .with_auth_mode(mode)
                .build()
                .unwrap_err();
            assert!(matches!(err, Error::Validation { .. }), "{err:?}");
            assert!(!format!("{err} {err:?}").contains(bad), "{err}");
        }
        // Labels only name spans: accepted, never a header.
        assert!(
            WapiBuilder::new("id", "secret")
                .with_instance_label(bad)
                .build()
                .is_ok()
        );
        assert!(
            SphereBuilder::new("env", "key", "100", 100)
                .with_instance_label(bad)
                .build()
                .is_ok()
        );
    }
}
