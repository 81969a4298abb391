//! No secret (HMAC secret, signature) of the Wapi adapter reaches `Debug`, an error or a
//! TRACE log. In its own test binary so that no other test's threads race the `tracing`
//! callsite registration of the spans this test captures.

use std::io::Write;
use std::sync::{Arc, Mutex};

use mockito::Server;

mod support;
use support::wapi::*;

use fulfillkit::provider::FulfillmentProvider;
use fulfillkit::provider::wapi::WapiBuilder;

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
    let (order, waybill) = cod_italy();
    server
        .mock("POST", "/api/outbounds")
        .with_status(500)
        .with_body(format!(r#"{{"Error":"bad key {SECRET}"}}"#))
        .expect(2)
        .create_async()
        .await;
    server
        .mock("POST", "/api/outbounds")
        .with_body(r#"{"trackingNumber":"WH1"}"#)
        .create_async()
        .await;
    let wapi = provider(&server);
    wapi.create_order(&order, &waybill).await.unwrap();

    let mut outputs = vec![
        format!("{:?}", builder(&server)),
        format!("{:?}", WapiBuilder::new(CLIENT_ID, SECRET)),
        format!("{wapi:?}"),
    ];
    for (status, body) in [
        (400, format!(r#"{{"error":"signature {SECRET} invalid"}}"#)),
        (400, format!(r#"{{"error":"{SECRET}"}}"#)),
        (401, SECRET.to_string()),
        (404, SECRET.to_string()),
        (500, format!(r#"{{"Error":"{SECRET}"}}"#)),
    ] {
        let (err, _s) = create_against(status, &body).await;
        outputs.push(format!("{err} {err:?}"));
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            outputs.push(format!("{s} {s:?}"));
            source = s.source();
        }
    }
    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("fulfillkit.http"),
        "spans were captured: {log}"
    );
    outputs.push(log);
    let signature_of_sent_body =
        hmac_hex(serde_json::to_vec(&cod_italy_body()).unwrap().as_slice());
    for out in &outputs {
        assert!(!out.contains(SECRET), "secret leaked: {out}");
        assert!(
            !out.contains(&signature_of_sent_body),
            "signature leaked: {out}"
        );
    }
}
