//! The Sphere API key, raw or URL-encoded, reaches no `Debug`, no error (nor its sources) and
//! no TRACE log, in each of the three auth modes, also when SphereWMS echoes the key back and
//! when a connection drops in query mode (the key is then in the URL). In its own test binary
//! so that no other test's threads race the `tracing` callsite registration of the spans this
//! test captures.

use std::io::Write;
use std::sync::{Arc, Mutex};

use mockito::{Matcher, Server};

mod support;
use support::sphere::*;

use fulfillkit::Error;
use fulfillkit::model::ShipmentRef;
use fulfillkit::provider::FulfillmentProvider;
use fulfillkit::provider::sphere::{AuthMode, SphereBuilder};

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

/// `err`, its `Debug` and every source in its chain.
fn shown(err: &Error) -> Vec<String> {
    let mut out = vec![format!("{err} {err:?}")];
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        out.push(format!("{s} {s:?}"));
        source = s.source();
    }
    out
}

/// A body that echoes the key in both forms.
fn echo() -> String {
    format!(r#"{{"error":"bad key {KEY} / {KEY_ENCODED}"}}"#)
}

#[tokio::test(flavor = "current_thread")]
async fn no_key_in_debug_errors_or_trace_logs_in_any_auth_mode() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut outputs = vec![
        format!(
            "{:?}",
            SphereBuilder::new(ENVIRONMENT, KEY, CLIENT_CODE, LOCATION_ID)
        ),
        // A key pasted into the base URL is redacted in `Debug` and refused by `build`.
        format!(
            "{:?}",
            SphereBuilder::new(ENVIRONMENT, KEY, CLIENT_CODE, LOCATION_ID).with_base_url(format!(
                "https://api.spherewms.com/v2/wms?key={KEY_ENCODED}"
            ))
        ),
    ];
    let refused = SphereBuilder::new(ENVIRONMENT, KEY, CLIENT_CODE, LOCATION_ID)
        .with_base_url(format!(
            "https://api.spherewms.com/v2/wms?key={KEY_ENCODED}"
        ))
        .build()
        .unwrap_err();
    outputs.extend(shown(&refused));

    for mode in [AuthMode::Bearer, AuthMode::Header, AuthMode::Query] {
        let mut server = Server::new_async().await;
        // A create that succeeds after two 500s echoing the key.
        server
            .mock("GET", format!("{PREFIX}/orders").as_str())
            .match_query(Matcher::Any)
            .match_request(authed(mode))
            .with_body("[]")
            .create_async()
            .await;
        server
            .mock("POST", format!("{PREFIX}/orders").as_str())
            .match_query(Matcher::Any)
            .with_status(500)
            .with_body(echo())
            .expect(2)
            .create_async()
            .await;
        let ok = server
            .mock("POST", format!("{PREFIX}/orders").as_str())
            .match_query(Matcher::Any)
            .match_request(authed(mode))
            .with_status(201)
            .with_body(CREATED)
            .expect(1)
            .create_async()
            .await;
        let sphere = builder(&server).with_auth_mode(mode).build().unwrap();
        let (order, waybill) = jane();
        sphere.create_order(&order, &waybill).await.unwrap();
        ok.assert_async().await;
        outputs.push(format!("{:?}", builder(&server).with_auth_mode(mode)));
        outputs.push(format!("{sphere:?}"));

        // Every error path, each body echoing the key; one environment per status.
        for status in [400, 401, 403, 404, 408, 409, 422, 429, 500] {
            server
                .mock("GET", Matcher::Regex(format!("^/v2/wms/e{status}/")))
                .with_status(status)
                .with_body(echo())
                .create_async()
                .await;
            let mut http = fast_http();
            http.retry = http.retry.with_max_retries(0);
            let sphere = SphereBuilder::new(format!("e{status}"), KEY, CLIENT_CODE, LOCATION_ID)
                .with_base_url(format!("{}/v2/wms", server.url()))
                .with_auth_mode(mode)
                .with_http_config(http)
                .build()
                .unwrap();
            let err = sphere.stock(&["ABC-100".into()]).await.unwrap_err();
            outputs.extend(shown(&err));
            let err = sphere
                .cancel_order(&ShipmentRef::new("SO-1001", "88213"))
                .await
                .unwrap_err();
            outputs.extend(shown(&err));
        }
        // Malformed JSON echoing the key: the excerpt in the protocol error is scrubbed.
        server
            .mock("GET", format!("{PREFIX}/inventory").as_str())
            .match_query(Matcher::Any)
            .with_body(format!(r#"[{{"echo":"{KEY}" "{KEY_ENCODED}"#))
            .create_async()
            .await;
        let err = builder(&server)
            .with_auth_mode(mode)
            .build()
            .unwrap()
            .stock(&[])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
        outputs.extend(shown(&err));

        // A dropped connection: the transport error must not carry the URL.
        let dropping = RawServer::start(|_| Reply::Drop);
        let mut http = fast_http();
        http.retry = http.retry.with_max_retries(1);
        let err = builder_at(dropping.url())
            .with_auth_mode(mode)
            .with_http_config(http)
            .build()
            .unwrap()
            .create_order(&order, &waybill)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Transport { .. }), "{err:?}");
        outputs.extend(shown(&err));
        if mode == AuthMode::Query {
            // The key really was in the URL the server saw, so the check below means something.
            let target = &dropping.requests()[0].target;
            assert!(target.contains(&format!("key={KEY_ENCODED}")), "{target}");
        }
    }

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("fulfillkit.http") && log.contains("sphere"),
        "spans were captured: {log}"
    );
    outputs.push(log);
    for out in &outputs {
        assert!(!out.contains(KEY), "key leaked: {out}");
        assert!(!out.contains(KEY_ENCODED), "encoded key leaked: {out}");
        assert!(!out.contains("Bearer sk_"), "bearer header leaked: {out}");
    }
}
