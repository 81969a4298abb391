//! No secret of the ShipBob adapter (the Personal Access Token) or of its webhooks (the
//! `whsec_` secret) reaches `Debug`, `Display`, an error or a TRACE log. In its own test
//! binary so that no other test's threads race the `tracing` callsite registration.

use std::io::Write;
use std::sync::{Arc, Mutex};

use mockito::{Matcher, Server};

mod support;
use support::shipbob::*;

use fulfillkit::model::Waybill;
use fulfillkit::provider::FulfillmentProvider;
use fulfillkit::provider::shipbob::ShipBobBuilder;
use fulfillkit::simulator::ShipBobSimulator;
use fulfillkit::webhook::{ShipBobWebhooks, Verifier, WebhookSecret};

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

/// The base64 of the webhook secret's key, as it could appear without its prefix.
const SECRET_KEY_TEXT: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";

#[tokio::test(flavor = "current_thread")]
async fn no_secret_in_debug_errors_or_trace_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut server = Server::new_async().await;
    // A server that echoes the token everywhere it can.
    server
        .mock("POST", "/2026-07/order")
        .with_status(500)
        .with_body(format!(r#"{{"":["bad token {TOKEN}"]}}"#))
        .expect(1)
        .create_async()
        .await;
    server
        .mock("GET", "/2026-07/order")
        .match_query(Matcher::Any)
        .with_body(format!(
            r#"[{{"id":1,"reference_id":"SO-1001","status":"{TOKEN}","shipments":[]}}]"#
        ))
        .create_async()
        .await;
    let shipbob = provider(&server);
    let shipment = shipbob
        .create_order(&jane_roe(), &Waybill::new())
        .await
        .unwrap();

    let secret = WebhookSecret::parse(WEBHOOK_SECRET).unwrap();
    let intake = ShipBobWebhooks::new(Arc::new(provider(&server)), secret.clone());
    let mut outputs = vec![
        format!("{:?}", builder(&server)),
        format!("{:?}", ShipBobBuilder::new(TOKEN, CHANNEL)),
        format!("{shipbob:?}"),
        format!("{shipment:?}"),
        format!("{secret:?}"),
        format!("{:?}", Verifier::new(secret.clone())),
        format!("{intake:?}"),
    ];
    for (status, body) in [
        (
            400,
            format!(r#"{{"recipient.name":["{TOKEN} is not a name"]}}"#),
        ),
        (401, TOKEN.to_string()),
        (403, format!(r#"{{"message":"{TOKEN}"}}"#)),
        (404, TOKEN.to_string()),
        (409, TOKEN.to_string()),
        (429, format!(r#"{{"statusCode":429,"message":"{TOKEN}"}}"#)),
        (500, format!(r#"{{"":["{TOKEN}"]}}"#)),
        (200, format!("not json {TOKEN}")),
    ] {
        let mut server = Server::new_async().await;
        server
            .mock("POST", Matcher::Any)
            .with_status(status)
            .with_body(&body)
            .create_async()
            .await;
        server
            .mock("GET", Matcher::Any)
            .with_status(status)
            .with_body(&body)
            .create_async()
            .await;
        let mut http = fast_http();
        http.retry = http.retry.with_max_retries(0);
        let shipbob = builder(&server).with_http_config(http).build().unwrap();
        let results = [
            shipbob
                .create_order(&jane_roe(), &Waybill::new())
                .await
                .err(),
            shipbob.stock(&[]).await.err(),
            shipbob.cancel_order(&shipment.reference).await.err(),
            shipbob
                .track(std::slice::from_ref(&shipment.reference))
                .await
                .err(),
        ];
        for err in results.into_iter().flatten() {
            outputs.push(format!("{err} {err:?}"));
            let mut source = std::error::Error::source(&err);
            while let Some(s) = source {
                outputs.push(format!("{s} {s:?}"));
                source = s.source();
            }
        }
    }
    // Configuration errors never quote what was given.
    let err = ShipBobBuilder::new(format!("{TOKEN}\n"), 0)
        .build()
        .unwrap_err();
    outputs.push(format!("{err} {err:?}"));
    let err = WebhookSecret::parse(&format!("whsec_{TOKEN}")).unwrap_err();
    outputs.push(format!("{err} {err:?}"));

    // The simulator signs deliveries with the secret; its logs and answers do not show it.
    let sim = ShipBobSimulator::builder()
        .with_rate_limit(None)
        .with_credentials(TOKEN, CHANNEL)
        .start()
        .await
        .unwrap();
    let sim_provider = sim.provider_builder().build().unwrap();
    sim_provider
        .subscribe_webhooks("http://127.0.0.1:9/hooks", &secret)
        .await
        .unwrap();
    outputs.push(format!("{sim:?} {:?}", sim.credentials()));
    sim.shutdown().await;

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("fulfillkit.http"),
        "spans were captured: {log}"
    );
    outputs.push(log);
    for out in &outputs {
        assert!(!out.contains(TOKEN), "token leaked: {out}");
        assert!(
            !out.contains(SECRET_KEY_TEXT),
            "webhook secret leaked: {out}"
        );
    }
}
