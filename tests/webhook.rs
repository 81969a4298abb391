//! Standard Webhooks verification through the public API: the protocol document's test
//! vectors (§7.6), key rotation, the timestamp tolerance, and hostile headers and bodies.

use std::time::Duration;

use proptest::prelude::*;

use fulfillkit::webhook::{Verifier, WebhookError, WebhookSecret, sign};

const DOC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BYTES_SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
const ID: &str = "msg_2zQshipbobVector0001";
const TS: i64 = 1790000000;
const BODY: &str = r#"{"id":100810005,"order_id":309589638,"reference_id":"SO-1001","status":"Completed","tracking":{"carrier":"USPS","tracking_number":"9400111899223197428490"}}"#;
const SIG_DOC: &str = "v1,FJeX4S/4RD/lD5TsA3Fs+WeilNY4H0HwJJ9I42FHHJY=";
const SIG_BYTES: &str = "v1,/cIeXTM1HNSMqVQGXT8XArtusrgkRBb4llGmCG0kNNQ=";

fn secret(text: &str) -> WebhookSecret {
    WebhookSecret::parse(text).unwrap()
}

fn headers(id: &str, ts: &str, signature: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Webhook-Id", id.to_owned()),
        ("webhook-timestamp", ts.to_owned()),
        ("WEBHOOK-SIGNATURE", signature.to_owned()),
        ("x-webhook-topic", "order.shipment.delivered".to_owned()),
    ]
}

#[test]
fn the_documents_vectors_verify() {
    // Row 1: Standard Webhooks' own reference vector.
    let row1 = headers(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    );
    Verifier::new(secret(DOC_SECRET))
        .verify_at(&row1, br#"{"test": 2432232314}"#, 1614265330)
        .unwrap();
    // Row 2 and row 4: one body, two secrets.
    let verified = Verifier::new(secret(DOC_SECRET))
        .verify_at(&headers(ID, "1790000000", SIG_DOC), BODY.as_bytes(), TS)
        .unwrap();
    assert_eq!((verified.id.as_str(), verified.timestamp), (ID, TS));
    assert_eq!(verified.topic.as_deref(), Some("order.shipment.delivered"));
    assert_eq!(&verified.body[..], BODY.as_bytes());
    Verifier::new(secret(BYTES_SECRET))
        .verify_at(&headers(ID, "1790000000", SIG_BYTES), BODY.as_bytes(), TS)
        .unwrap();
    // Row 3: one space more and the row-2 signature fails; its own passes.
    let spaced = BODY.replace(r#""status":"#, r#""status": "#);
    let err = Verifier::new(secret(DOC_SECRET))
        .verify_at(&headers(ID, "1790000000", SIG_DOC), spaced.as_bytes(), TS)
        .unwrap_err();
    assert!(matches!(err, WebhookError::InvalidSignature));
    Verifier::new(secret(DOC_SECRET))
        .verify_at(
            &headers(
                ID,
                "1790000000",
                "v1,39aEiZDeXQb6d2r1h/MMdE46OkopRaUzR3c2vqLHGqI=",
            ),
            spaced.as_bytes(),
            TS,
        )
        .unwrap();
    assert_eq!(
        sign(&secret(BYTES_SECRET), ID, TS, BODY.as_bytes()),
        SIG_BYTES
    );
}

#[test]
fn during_a_rotation_either_secret_verifies_and_no_other() {
    let both = format!("{SIG_BYTES} {SIG_DOC}");
    let h = headers(ID, "1790000000", &both);
    for s in [DOC_SECRET, BYTES_SECRET] {
        Verifier::new(secret(s))
            .verify_at(&h, BODY.as_bytes(), TS)
            .unwrap();
    }
    let other = WebhookSecret::from_bytes([7u8; 32]).unwrap();
    assert!(matches!(
        Verifier::new(other.clone()).verify_at(&h, BODY.as_bytes(), TS),
        Err(WebhookError::InvalidSignature)
    ));
    // A verifier holding the old and the new secret takes a delivery signed with either.
    let rotating = Verifier::new(other).with_secret(secret(BYTES_SECRET));
    rotating
        .verify_at(&headers(ID, "1790000000", SIG_BYTES), BODY.as_bytes(), TS)
        .unwrap();
}

#[test]
fn the_timestamp_tolerance_is_five_minutes_either_way() {
    let v = Verifier::new(secret(DOC_SECRET));
    let h = headers(ID, "1790000000", SIG_DOC);
    assert!(v.verify_at(&h, BODY.as_bytes(), 1790000300).is_ok());
    assert!(v.verify_at(&h, BODY.as_bytes(), 1789999700).is_ok());
    for now in [1790000301, 1789999699] {
        let err = v.verify_at(&h, BODY.as_bytes(), now).unwrap_err();
        assert!(
            matches!(err, WebhookError::TimestampOutOfTolerance { .. }),
            "{now}: {err}"
        );
        assert_eq!(err.http_status(), 401);
    }
    let strict = v.with_tolerance(Duration::from_secs(10));
    assert!(strict.verify_at(&h, BODY.as_bytes(), 1790000011).is_err());
}

#[test]
fn missing_or_malformed_headers_are_typed_errors() {
    let v = Verifier::new(secret(DOC_SECRET));
    let full = headers(ID, "1790000000", SIG_DOC);
    for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let partial: Vec<_> = full
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case(missing))
            .cloned()
            .collect();
        let err = v.verify_at(&partial, BODY.as_bytes(), TS).unwrap_err();
        assert!(
            matches!(err, WebhookError::MissingHeader { name } if name == missing),
            "{err}"
        );
    }
    for (ts, sig) in [("soon", SIG_DOC), ("1790000000", ""), ("", SIG_DOC)] {
        let err = v
            .verify_at(&headers(ID, ts, sig), BODY.as_bytes(), TS)
            .unwrap_err();
        assert!(
            matches!(err, WebhookError::InvalidHeader { .. }),
            "{ts} {sig}: {err}"
        );
    }
    // Other versions, broken entries and garbage never match.
    for sig in [
        "v2,FJeX4S/4RD/lD5TsA3Fs+WeilNY4H0HwJJ9I42FHHJY=",
        "v1a,FJeX4S/4RD/lD5TsA3Fs+WeilNY4H0HwJJ9I42FHHJY=",
        "FJeX4S/4RD/lD5TsA3Fs+WeilNY4H0HwJJ9I42FHHJY=",
        "v1,!!!",
        "v1,FJeX4S/4RD/lD5TsA3Fs+WeilNY4H0HwJJ9I42FHHJ",
    ] {
        let err = v
            .verify_at(&headers(ID, "1790000000", sig), BODY.as_bytes(), TS)
            .unwrap_err();
        assert!(
            matches!(err, WebhookError::InvalidSignature),
            "{sig}: {err}"
        );
    }
    // A http::HeaderMap works as it comes from a web framework.
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in &full {
        map.insert(
            reqwest::header::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    assert!(v.verify_at(&map, BODY.as_bytes(), TS).is_ok());
}

#[test]
fn errors_never_quote_the_secret() {
    let err = WebhookSecret::parse("whsec_not*base64*at*all*but*long*enough").unwrap_err();
    assert!(!err.to_string().contains("not*base64"), "{err}");
    let v = Verifier::new(secret(DOC_SECRET));
    let text = format!("{v:?} {:?}", secret(DOC_SECRET));
    assert!(!text.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "{text}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary headers and bodies never panic and never verify without the secret.
    #[test]
    fn hostile_deliveries_never_verify(
        id in ".{0,300}",
        ts in prop_oneof![any::<i64>().prop_map(|t| t.to_string()), ".{0,30}"],
        sig in prop_oneof![".{0,200}", "(v1,[A-Za-z0-9+/=]{0,60} ?){0,5}"],
        body in prop::collection::vec(any::<u8>(), 0..256),
        now in any::<i64>(),
    ) {
        let v = Verifier::new(secret(DOC_SECRET));
        let h = vec![("webhook-id", id), ("webhook-timestamp", ts), ("webhook-signature", sig)];
        prop_assert!(v.verify_at(&h, &body, now).is_err());
    }

    /// What `sign` makes verifies for any body and id, and one flipped byte breaks it.
    #[test]
    fn signatures_round_trip(
        id in "msg_[A-Za-z0-9]{1,40}",
        body in prop::collection::vec(any::<u8>(), 1..512),
        at in 0usize..512,
        ts in 0i64..4_000_000_000,
    ) {
        let s = secret(BYTES_SECRET);
        let signature = sign(&s, &id, ts, &body);
        let h = vec![("webhook-id", id.clone()), ("webhook-timestamp", ts.to_string()), ("webhook-signature", signature)];
        let v = Verifier::new(s);
        prop_assert!(v.verify_at(&h, &body, ts).is_ok());
        let mut tampered = body.clone();
        let at = at % tampered.len();
        tampered[at] ^= 0x01;
        prop_assert!(matches!(v.verify_at(&h, &tampered, ts), Err(WebhookError::InvalidSignature)));
    }
}
