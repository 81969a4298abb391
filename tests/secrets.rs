//! Issue 10, part 5: the whole quickstart lifecycle over the simulators (two Wapi accounts,
//! Sphere in all three auth modes, the orchestrator with a collecting sink), plus wrong
//! credentials, a 500 echoing the credentials, a bad endpoint and a timeout, all under a TRACE
//! `tracing` subscriber that captures everything. Then every configuration, builder, provider,
//! the orchestrator, every error (with its source chain) and every event is formatted with
//! `{:?}` (and `{}` where it has one), and no API key, HMAC secret or signature may appear in
//! any of it. In its own test binary so that no other test's threads race the `tracing`
//! callsite registration of the spans captured here.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

mod support;
use support::{american, cod};

use fulfillkit::Error;
use fulfillkit::http::HttpConfig;
use fulfillkit::model::{AddressQuery, Resolution, ResolutionAction, Waybill};
use fulfillkit::orchestrator::{
    AcceptedPayment, CollectingSink, Condition, Instance, InstanceSettings, Orchestrator,
    PaymentKind, RoutingRule,
};
use fulfillkit::provider::FulfillmentProvider;
use fulfillkit::provider::sphere::{AuthMode, SphereBuilder};
use fulfillkit::provider::wapi::WapiBuilder;
use fulfillkit::simulator::{
    Faults, SphereInventoryRow, SphereSimulator, Step, WapiSimulator, WapiStockRow,
};
use fulfillkit::testkit::sample_order;

const WAPI_CLIENT_ID: &str = "0f9a1c2e-client-id-under-test";
const WAPI_SECRET: &str = "wapi-hmac-secret-Zq81xLm";
const SPHERE_KEY: &str = "sk_live_sphere-key-Pv03";
const SPHERE_KEY_ENCODED: &str = "sk_live_sphere-key-Pv03"; // no character needs encoding

/// A `tracing` writer that appends everything to a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `err` with `{}` and `{:?}`, and every source in its chain.
fn shown(err: &Error) -> Vec<String> {
    let mut out = vec![format!("{err}"), format!("{err:?}")];
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        out.push(format!("{s} {s:?}"));
        source = s.source();
    }
    out
}

fn hmac_hex(body: &[u8]) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(WAPI_SECRET.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every run of 40 or more hex digits in `text` (an HMAC-SHA1 signature is 40).
fn hex_runs(text: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut run = String::new();
    for c in text.chars().chain([' ']) {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            if run.len() >= 40 {
                runs.push(std::mem::take(&mut run));
            }
            run.clear();
        }
    }
    runs
}

fn fast_http(timeout: Duration) -> HttpConfig {
    let mut http = HttpConfig::default();
    http.request_timeout = timeout;
    http.retry = http
        .retry
        .with_max_retries(1)
        .with_backoff(Duration::from_millis(1), Duration::from_millis(5));
    http
}

#[tokio::test(flavor = "current_thread")]
async fn no_key_secret_or_signature_anywhere_after_the_whole_lifecycle() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut outputs: Vec<String> = Vec::new();

    // 1. The quickstart's three accounts, with credentials of our own.
    let wapi_prepaid = WapiSimulator::builder()
        .with_credentials(WAPI_CLIENT_ID, WAPI_SECRET)
        .with_pickup_point_directory(true)
        .with_stock([WapiStockRow::new("IT", "ITWH2", "Demo Product-1", 15)])
        .start()
        .await
        .unwrap();
    let wapi_cod = WapiSimulator::builder()
        .with_credentials(WAPI_CLIENT_ID, WAPI_SECRET)
        .start()
        .await
        .unwrap();
    let sphere = SphereSimulator::builder()
        .with_account("sim-api", SPHERE_KEY, "100", 100)
        .with_inventory([SphereInventoryRow::new(100, "Demo Product-1", 120)])
        .start()
        .await
        .unwrap();
    outputs.push(format!("{wapi_prepaid:?} {wapi_cod:?} {sphere:?}"));
    outputs.push(format!(
        "{:?} {:?}",
        wapi_prepaid.credentials(),
        sphere.credentials()
    ));

    let builders = (
        wapi_prepaid
            .provider_builder()
            .with_pickup_point_directory(true)
            .with_instance_label("wapi-prepaid"),
        wapi_cod.provider_builder().with_instance_label("wapi-cod"),
        sphere.provider_builder().with_instance_label("sphere-us"),
    );
    outputs.push(format!("{builders:?}"));
    let events = Arc::new(CollectingSink::new());
    let clock = fulfillkit::testkit::TestClock::at(Utc::now());
    let start = clock.now();
    let orchestrator_builder = Orchestrator::builder()
        .instance(
            Instance::new(
                "wapi-prepaid",
                "Wapi prepaid",
                Arc::new(builders.0.clone().build().unwrap()),
            )
            .with_settings(
                InstanceSettings::default().with_accepted_payment(AcceptedPayment::Prepaid),
            ),
        )
        .instance(
            Instance::new(
                "wapi-cod",
                "Wapi COD",
                Arc::new(builders.1.clone().build().unwrap()),
            )
            .with_settings(
                InstanceSettings::default().with_accepted_payment(AcceptedPayment::CashOnDelivery),
            ),
        )
        .instance(Instance::new(
            "sphere-us",
            "Sphere US",
            Arc::new(builders.2.clone().build().unwrap()),
        ))
        .rule(RoutingRule::new(
            "IT prepaid",
            Condition::All {
                conditions: vec![
                    Condition::country(["IT", "PL"]),
                    Condition::payment(PaymentKind::Prepaid),
                ],
            },
            "wapi-prepaid",
        ))
        .rule(RoutingRule::new(
            "IT cod",
            Condition::country(["IT", "PL"]),
            "wapi-cod",
        ))
        .rule(RoutingRule::new(
            "US",
            Condition::country(["US"]),
            "sphere-us",
        ))
        .events(events.clone())
        .clock(clock.clock());
    outputs.push(format!("{orchestrator_builder:?}"));
    let orchestrator = orchestrator_builder.build().unwrap();

    // 2. The lifecycle: directory, exports, an edit, days of tracking, a late edit that
    //    becomes an exception and is resolved, stock.
    let points = orchestrator
        .search_addresses(
            "wapi-prepaid",
            &AddressQuery::in_country("PL").with_text("warszawa"),
        )
        .await
        .unwrap();
    outputs.push(format!("{points:?}"));
    let orders = vec![
        sample_order("SO-1001"),
        cod(sample_order("SO-1002")),
        american(sample_order("SO-1004")),
    ];
    for order in &orders {
        let outcome = orchestrator.on_order_confirmed(order).await.unwrap();
        outputs.push(format!("{outcome:?}"));
    }
    let mut edited = orders[0].clone();
    edited.customer.phone = "+39 340 555 1234".into();
    outputs.push(format!(
        "{:?}",
        orchestrator.on_order_changed(&edited).await.unwrap()
    ));
    for day in 1..=4 {
        wapi_prepaid.tick();
        wapi_cod.tick();
        sphere.tick();
        if day == 3 {
            wapi_prepaid
                .advance_with("SO-1001", Step::new("InTransit").with_trouble("IsAbsent1"))
                .unwrap();
        }
        clock.set(start + chrono::Duration::days(day));
        let report = orchestrator.sync_tracking().await.unwrap();
        outputs.push(format!("{report:?}"));
        if day == 2 {
            let mut moved = orders[1].clone();
            moved.address.lines = vec!["Via Garibaldi 3".into()];
            outputs.push(format!(
                "{:?}",
                orchestrator.on_order_changed(&moved).await.unwrap()
            ));
            if let Ok(resolved) = orchestrator
                .resolve_exception(
                    &moved.id,
                    Resolution::new(ResolutionAction::AcceptProviderVersion, "operator-7"),
                )
                .await
            {
                outputs.push(format!("{resolved:?}"));
            }
        }
    }
    outputs.push(format!(
        "{:?}",
        orchestrator.stock_for_order(&orders[0]).await.unwrap()
    ));
    outputs.push(format!("{:?}", orchestrator.sync_stock().await.unwrap()));
    for order in &orders {
        outputs.push(format!(
            "{:?}",
            orchestrator.shipment(&order.id).await.unwrap()
        ));
    }
    outputs.push(format!("{orchestrator:?}"));
    for instance in orchestrator.instances() {
        outputs.push(format!("{instance:?} {:?}", instance.provider));
    }
    let all_events = events.events();
    assert!(!all_events.is_empty(), "the lifecycle produced events");
    for event in &all_events {
        outputs.push(format!("{event:?}"));
        outputs.push(serde_json::to_string(event).unwrap());
    }

    // 3. Sphere in every auth mode, directly: create, track, stock.
    for (i, mode) in [AuthMode::Bearer, AuthMode::Header, AuthMode::Query]
        .into_iter()
        .enumerate()
    {
        let builder = sphere.provider_builder().with_auth_mode(mode);
        outputs.push(format!("{builder:?}"));
        let provider = builder.build().unwrap();
        let order = american(sample_order(&format!("SO-20{i}")));
        let shipment = provider
            .create_order(&order, &Waybill::default())
            .await
            .unwrap();
        outputs.push(format!("{shipment:?}"));
        let update = provider
            .track(std::slice::from_ref(&shipment.reference))
            .await
            .unwrap();
        outputs.push(format!("{update:?}"));
        outputs.push(format!("{:?}", provider.stock(&[]).await.unwrap()));
        outputs.push(format!("{provider:?}"));

        // A wrong key in the same mode.
        let wrong = SphereBuilder::new("sim-api", "sk_wrong_key", "100", 100)
            .with_base_url(sphere.base_url())
            .with_auth_mode(mode)
            .build()
            .unwrap();
        let err = wrong.stock(&[]).await.unwrap_err();
        assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
        outputs.extend(shown(&err));
    }

    // 4. Errors: wrong credentials, a 500 echoing the credentials, a bad endpoint, a timeout.
    let order = sample_order("SO-3001");
    let wrong_secret = WapiBuilder::new(WAPI_CLIENT_ID, "not-the-secret")
        .with_base_url(wapi_cod.base_url())
        .with_rate_limit(None)
        .build()
        .unwrap();
    let err = wrong_secret
        .create_order(&order, &Waybill::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    outputs.extend(shown(&err));

    // Each provider knows only its own credential, so each server echoes only that one.
    let mut echo = mockito::Server::new_async().await;
    echo.mock("POST", mockito::Matcher::Any)
        .with_status(500)
        .with_body(format!(r#"{{"Error":"bad signature for {WAPI_SECRET}"}}"#))
        .create_async()
        .await;
    let mut sphere_echo_server = mockito::Server::new_async().await;
    sphere_echo_server
        .mock("GET", mockito::Matcher::Any)
        .with_status(500)
        .with_body(format!(r#"{{"error":"bad key {SPHERE_KEY}"}}"#))
        .create_async()
        .await;
    let wapi_echo = WapiBuilder::new(WAPI_CLIENT_ID, WAPI_SECRET)
        .with_base_url(format!("{}/api", echo.url()))
        .with_rate_limit(None)
        .with_http_config(fast_http(Duration::from_secs(5)))
        .build()
        .unwrap();
    let err = wapi_echo
        .create_order(&order, &Waybill::default())
        .await
        .unwrap_err();
    outputs.extend(shown(&err));
    let err = wapi_echo.stock(&[]).await.unwrap_err();
    outputs.extend(shown(&err));
    for mode in [AuthMode::Bearer, AuthMode::Header, AuthMode::Query] {
        let sphere_echo = SphereBuilder::new("sim-api", SPHERE_KEY, "100", 100)
            .with_base_url(format!("{}/v2/wms", sphere_echo_server.url()))
            .with_auth_mode(mode)
            .with_http_config(fast_http(Duration::from_secs(5)))
            .build()
            .unwrap();
        let err = sphere_echo.stock(&[]).await.unwrap_err();
        outputs.extend(shown(&err));
    }

    // A bad endpoint: a base URL where the simulator serves nothing.
    let lost = WapiBuilder::new(WAPI_CLIENT_ID, WAPI_SECRET)
        .with_base_url(format!("{}/nowhere", wapi_cod.base_url()))
        .with_rate_limit(None)
        .build()
        .unwrap();
    let err = lost
        .create_order(&order, &Waybill::default())
        .await
        .unwrap_err();
    outputs.extend(shown(&err));

    // A timeout: the simulator answers slower than the client waits.
    wapi_cod
        .set_faults(Faults::none().with_latency(Duration::from_millis(500)))
        .unwrap();
    let impatient = wapi_cod
        .provider_builder()
        .with_http_config(fast_http(Duration::from_millis(50)))
        .build()
        .unwrap();
    let err = impatient
        .create_order(&order, &Waybill::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    outputs.extend(shown(&err));
    wapi_cod.set_faults(Faults::none()).unwrap();

    // Builders that cannot build: their errors name the problem, not the credential.
    for err in [
        WapiBuilder::new("", WAPI_SECRET)
            .with_base_url("ftp://x")
            .build()
            .unwrap_err(),
        SphereBuilder::new("sim-api", SPHERE_KEY, "100", 100)
            .with_base_url(format!("https://h/v2?key={SPHERE_KEY}"))
            .build()
            .unwrap_err(),
        SphereBuilder::new("sim-api", format!("{SPHERE_KEY}\n"), "100", 100)
            .with_auth_mode(AuthMode::Header)
            .build()
            .unwrap_err(),
    ] {
        outputs.extend(shown(&err));
    }
    outputs.push(format!(
        "{:?} {:?}",
        WapiBuilder::new(WAPI_CLIENT_ID, WAPI_SECRET),
        SphereBuilder::new("sim-api", SPHERE_KEY, "100", 100)
    ));
    outputs.push(format!("{:?}", HttpConfig::default()));

    // 5. Nothing anywhere shows a credential or a signature.
    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("fulfillkit.http") && log.contains("wapi") && log.contains("sphere"),
        "spans were captured: {log}"
    );
    assert!(log.contains("TRACE"), "TRACE events were captured");
    outputs.push(log);

    // The signatures of bodies the simulators stored, as far as they can be recomputed.
    let mut signatures: Vec<String> = [&wapi_prepaid, &wapi_cod]
        .iter()
        .flat_map(|sim| sim.orders())
        .map(|o| hmac_hex(&serde_json::to_vec(&o.body).unwrap()))
        .collect();
    signatures.push(hmac_hex(b""));
    let secrets = [WAPI_SECRET, SPHERE_KEY, SPHERE_KEY_ENCODED, "Bearer sk_"];
    for out in &outputs {
        for secret in secrets {
            assert!(!out.contains(secret), "{secret:?} leaked: {out}");
        }
        for signature in &signatures {
            assert!(!out.contains(signature.as_str()), "signature leaked: {out}");
        }
        // No signature at all, whatever body it signs: no run of 40+ hex digits anywhere.
        let runs = hex_runs(out);
        assert!(runs.is_empty(), "hex runs {runs:?} in: {out}");
    }
    wapi_prepaid.shutdown().await;
    wapi_cod.shutdown().await;
    sphere.shutdown().await;
}
