//! Helpers shared by the Sphere test files: account values, a fast transport configuration,
//! the protocol's §10(c) fixtures and the order behind them, an auth check per mode, and a
//! raw HTTP server that can drop or stall a connection (mockito always answers).
#![allow(dead_code, reason = "each test file uses a different subset")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mockito::ServerGuard;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use fulfillkit::model::*;
use fulfillkit::provider::sphere::{AuthMode, SphereBuilder, SphereProvider};

/// A key with characters that change when URL-encoded, so both forms can be checked.
pub const KEY: &str = "sk_live+Zx/9==";
/// [`KEY`] as it appears in a query string.
pub const KEY_ENCODED: &str = "sk_live%2BZx%2F9%3D%3D";
pub const ENVIRONMENT: &str = "test-env";
pub const CLIENT_CODE: &str = "100";
pub const LOCATION_ID: u32 = 100;
/// Path prefix of every action: `{base path}/{environment}`.
pub const PREFIX: &str = "/v2/wms/test-env";

// Bodies of protocol §10(c).
pub const CREATED: &str = r#"{"order_id":88213,"order_number":"SO-1001","client_code":"100","location_id":100,"status":"open","created_on":"20240502101500"}"#;
pub const FOUND: &str = r#"[{"order_id":88213,"order_number":"SO-1001","client_code":"100","location_id":100,"customer_code":"FK-SO-1001","status":"allocated","created_on":"20240502101500","updated_on":"20240502113000","lines":[{"line_number":1,"product_code":"ABC-100","quantity":2,"quantity_shipped":0}]}]"#;
pub const VOIDED: &str = r#"{"order_id":88213,"status":"void"}"#;
pub const VOID_REFUSED: &str = r#"{"error":"Order 88213 is allocated and cannot be voided"}"#;
pub const SHIPMENTS: &str = r#"[{"shipment_id":5120,"order_id":88213,"order_number":"SO-1001","client_code":"100","location_id":100,"ship_date":"20240503","ship_via":"UPS-GND","carrier":"UPS","service":"Ground","tracking_numbers":["1Z999AA10123456784"],"packages":[{"tracking_number":"1Z999AA10123456784","weight":2.4,"weight_unit":"LB"}]}]"#;
pub const INVENTORY: &str = r#"[{"client_code":"100","location_id":100,"product_code":"ABC-100","description":"Widget","on_hand":120,"allocated":8,"available":112}]"#;
pub const CUSTOMERS: &str = r#"[{"customer_code":"FK-SO-1001","name":"Jane Smith","bill_to_code":"FK-SO-1001","street_1":"12 Elm St","city":"Columbus","state":"OH","zip":"43004","country":"US"}]"#;
pub const UNAUTHORIZED: &str = r#"{"error":"Invalid API key"}"#;
pub const UNPROCESSABLE: &str =
    r#"{"errors":[{"field":"lines[0].product_code","message":"Unknown product code ABC-100"}]}"#;

/// An order row as `GET /orders/{id}` answers it, with `status`.
pub fn order_row(id: u64, number: &str, status: &str) -> String {
    json!({
        "order_id": id, "order_number": number, "client_code": CLIENT_CODE,
        "location_id": LOCATION_ID, "status": status,
        "created_on": "20240502101500", "updated_on": "20240502113000"
    })
    .to_string()
}

pub use super::fast_http;

pub fn builder_at(base: &str) -> SphereBuilder {
    SphereBuilder::new(ENVIRONMENT, KEY, CLIENT_CODE, LOCATION_ID)
        .with_base_url(format!("{base}/v2/wms"))
        .with_http_config(fast_http())
        .with_ship_via("UPS-GND")
        .with_ship_via("FDX-2D")
}

pub fn builder(server: &ServerGuard) -> SphereBuilder {
    builder_at(&server.url())
}

pub fn provider(server: &ServerGuard) -> SphereProvider {
    builder(server).build().unwrap()
}

/// The request carries the key exactly as `mode` sends it, and nowhere else.
pub fn authed(mode: AuthMode) -> impl Fn(&mockito::Request) -> bool + Send + Sync + 'static {
    move |req: &mockito::Request| {
        let header = |name: &str| {
            req.header(name)
                .first()
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let query_key = url::Url::parse(&format!("http://x{}", req.path_and_query()))
            .ok()
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "key")
                    .map(|(_, v)| v.into_owned())
            });
        let bearer = format!("Bearer {KEY}");
        let (authorization, key_header, key_query) = match mode {
            AuthMode::Bearer => (Some(bearer.as_str()), None, None),
            AuthMode::Header => (None, Some(KEY), None),
            AuthMode::Query => (None, None, Some(KEY)),
        };
        header("authorization").as_deref() == authorization
            && header("key").as_deref() == key_header
            && query_key.as_deref() == key_query
            && header("accept").as_deref() == Some("application/json")
    }
}

/// Bearer auth, as the default builder sends it.
pub fn bearer(req: &mockito::Request) -> bool {
    authed(AuthMode::Bearer)(req)
}

/// The order behind the §10(c) create fixture.
pub fn jane() -> (Order, Waybill) {
    let order = Order::new(
        "SO-1001",
        Customer {
            name: "Jane Smith".into(),
            phone: "+1 (614) 555-0101".into(),
            email: Some("jane@example.com".into()),
        },
        Address {
            country: "US".into(),
            region: Some("OH".into()),
            city: "Columbus".into(),
            postcode: "43004".into(),
            lines: vec!["12 Elm St".into(), "Apt 4".into()],
            provider_address_id: None,
            pickup_point_id: None,
        },
        vec![
            CartLine {
                sku: "ABC-100".into(),
                name: "Widget".into(),
                product_type: None,
                quantity: 2,
                unit_price: Decimal::new(2450, 2),
            },
            CartLine {
                sku: "XYZ-7".into(),
                name: "Sample".into(),
                product_type: None,
                quantity: 1,
                unit_price: Decimal::ZERO,
            },
        ],
        Payment::Prepaid,
        "USD",
    );
    let waybill = Waybill::new()
        .with("ship_via", "UPS-GND")
        .with("po_number", "")
        .with("order_date", "2024-05-02")
        .with("notes", "leave at door");
    (order, waybill)
}

/// The §10(c) create body.
pub fn jane_body() -> Value {
    json!({
        "client_code": "100", "order_number": "SO-1001", "location_id": 100,
        "customer_code": "FK-SO-1001",
        "ship_to": {
            "name": "Jane Smith", "street_1": "12 Elm St", "street_2": "Apt 4", "street_3": "",
            "city": "Columbus", "state": "OH", "zip": "43004", "country": "US",
            "phone": "+16145550101", "email": "jane@example.com"
        },
        "ship_via": "UPS-GND", "po_number": "", "order_date": "2024-05-02",
        "notes": "leave at door",
        "lines": [
            {"line_number": 1, "product_code": "ABC-100", "quantity": 2, "unit_price": 24.5},
            {"line_number": 2, "product_code": "XYZ-7", "quantity": 1}
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 server for what mockito cannot do: close a connection without answering, or
// hold it past the client's timeout.

/// One request the raw server read.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    pub fn query(&self, name: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// What the raw server does with one request.
pub enum Reply {
    /// Close the connection without a byte of answer.
    Drop,
    /// Keep the connection open this long, then close it without answering.
    Stall(Duration),
    /// Answer with this status and JSON body, then close.
    Respond(u16, String),
}

type Handler = dyn Fn(&RawRequest) -> Reply + Send + Sync;

/// A raw HTTP/1.1 server on 127.0.0.1: one thread per connection, one request per
/// connection (`Connection: close`), every request recorded before it is handled.
pub struct RawServer {
    url: String,
    seen: Arc<Mutex<Vec<RawRequest>>>,
}

impl RawServer {
    pub fn start(handler: impl Fn(&RawRequest) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let handler = handler.clone();
                let log = log.clone();
                std::thread::spawn(move || serve(stream, &*handler, &log));
            }
        });
        Self { url, seen }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests read so far with `method` and exactly `path`.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == method && r.path() == path)
            .count()
    }

    pub fn requests(&self) -> Vec<RawRequest> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<RawRequest>>) {
    let Some(request) = read_request(&stream) else {
        return;
    };
    log.lock().unwrap().push(request.clone());
    let mut stream = stream;
    match handler(&request) {
        Reply::Drop => {}
        Reply::Stall(duration) => std::thread::sleep(duration),
        Reply::Respond(status, body) => {
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
            let _ = stream.flush();
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn read_request(stream: &TcpStream) -> Option<RawRequest> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_lowercase(), value.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(RawRequest {
        method,
        target,
        headers,
        body,
    })
}
