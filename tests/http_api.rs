//! The HTTP API over real HTTP, mounted as a host mounts it (nested under `/fulfillment`,
//! behind the host's authentication layer): the caller check, problem details, pages and
//! filters, the waybill form and its field errors, stock by role, the directory, exception
//! resolution, failed exports, the OpenAPI document against the router, the console's assets,
//! and provider webhooks through the webhook router.

mod console_support;

use std::collections::BTreeSet;

use axum::Router;
use axum::middleware;
use reqwest::Method;
use serde_json::{Value, json};

use console_support::*;
use fulfillkit::error::Operation;
use fulfillkit::http_api::{Caller, HttpApi};
use fulfillkit::orchestrator::ExportState;

const PROBLEM: &str = "application/problem+json";

/// One answer: status, content type, headers and the body as JSON (`Null` when it is not).
struct Reply {
    status: u16,
    content_type: String,
    headers: reqwest::header::HeaderMap,
    text: String,
    json: Value,
}

impl Reply {
    fn problem_type(&self) -> &str {
        self.json["type"].as_str().unwrap_or("")
    }

    #[track_caller]
    fn assert_problem(&self, status: u16, slug: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.content_type, PROBLEM, "{}", self.text);
        assert_eq!(
            self.problem_type(),
            format!("urn:fulfillkit:problem:{slug}"),
            "{}",
            self.text
        );
        assert_eq!(self.json["status"], status, "{}", self.text);
    }

    /// The `path`s of the problem's field errors.
    fn error_paths(&self) -> Vec<String> {
        self.json["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["path"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A client of the host's app, as one of its users (or as nobody).
struct Api {
    base: String,
    http: reqwest::Client,
    user: Option<String>,
}

impl Api {
    fn new(base: &str, user: Option<&str>) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a client"),
            user: user.map(str::to_owned),
        }
    }

    fn as_user(&self, user: &str) -> Self {
        Self::new(&self.base, Some(user))
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(user) = &self.user {
            request = request.header(USER_HEADER, user);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = response.text().await.expect("a body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            headers,
            text,
            json,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(body)).await
    }
}

/// The host's app over the fixture, and a client signed in as alice of the warehouse.
async fn start() -> (Console, Api) {
    let console = console().await;
    let base = serve(host_app(console.orchestrator.clone())).await;
    (
        console,
        Api::new(&format!("{base}/fulfillment"), Some("warehouse:alice")),
    )
}

fn order_ids(reply: &Reply) -> Vec<String> {
    reply.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["order_id"].as_str().expect("an order id").to_owned())
        .collect()
}

#[tokio::test]
async fn the_hosts_refusal_keeps_every_route_out_of_reach() {
    let (console, api) = start().await;
    let nobody = Api::new(&api.base, None);
    for path in [
        "/api/me",
        "/api/instances",
        "/api/exceptions",
        "/api/openapi.json",
        "/console/",
        "/api/no-such-thing",
    ] {
        let reply = nobody.get(path).await;
        assert_eq!(reply.status, 403, "{path}: {}", reply.text);
    }
    let refused = nobody
        .post("/api/exceptions/SO-1/resolve", json!({"action": "manual"}))
        .await;
    assert_eq!(refused.status, 403);
    let exception = console
        .orchestrator
        .exception("SO-1")
        .await
        .unwrap()
        .expect("an exception");
    assert!(exception.is_open(), "a refused request changed nothing");
}

#[tokio::test]
async fn a_host_layer_that_names_no_caller_gets_401_problems_everywhere() {
    let console = console().await;
    // A host that forgot to say who is asking: its layer lets everything through.
    let passthrough = Router::new().nest(
        "/fulfillment",
        HttpApi::new(console.orchestrator.clone())
            .router()
            .layer(middleware::from_fn(
                |request: axum::extract::Request, next: middleware::Next| async move {
                    next.run(request).await
                },
            )),
    );
    let base = serve(passthrough).await;
    let api = Api::new(&format!("{base}/fulfillment"), None);
    for path in [
        "",
        "/console",
        "/console/",
        "/console/console.js",
        "/api/me",
        "/api/exceptions",
        "/api/exceptions/SO-1",
        "/api/openapi.json",
        "/api/no-such-thing",
    ] {
        api.get(path).await.assert_problem(401, "unauthenticated");
    }
    api.post("/api/exceptions/SO-1/resolve", json!({"action": "manual"}))
        .await
        .assert_problem(401, "unauthenticated");
    let exception = console.orchestrator.exception("SO-1").await.unwrap();
    assert!(exception.expect("an exception").is_open());
}

#[tokio::test]
async fn with_caller_reads_the_hosts_own_user_type() {
    #[derive(Clone)]
    struct HostUser {
        login: String,
        groups: Vec<String>,
    }
    let console = console().await;
    let api = HttpApi::new(console.orchestrator.clone())
        .with_caller(|parts| {
            let user = parts.extensions.get::<HostUser>()?;
            let role = if user.groups.iter().any(|g| g == "ops") {
                "warehouse"
            } else {
                "sales"
            };
            Some(Caller::new(role, &user.login))
        })
        .router()
        .layer(middleware::from_fn(
            |mut request: axum::extract::Request, next: middleware::Next| async move {
                if request.headers().contains_key("x-session") {
                    request.extensions_mut().insert(HostUser {
                        login: "bob".into(),
                        groups: vec!["ops".into()],
                    });
                }
                next.run(request).await
            },
        ));
    let base = serve(Router::new().nest("/ops", api)).await;
    let http = reqwest::Client::new();
    let me: Value = http
        .get(format!("{base}/ops/api/me"))
        .header("x-session", "1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me, json!({"role": "warehouse", "operator": "bob"}));
    let anonymous = http.get(format!("{base}/ops/api/me")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn a_blank_operator_name_is_no_caller() {
    let (_console, api) = start().await;
    api.as_user("warehouse: ")
        .get("/api/me")
        .await
        .assert_problem(401, "unauthenticated");
}

#[tokio::test]
async fn instances_say_what_the_callers_role_sees() {
    let (_console, api) = start().await;
    let warehouse = api.get("/api/instances").await;
    assert_eq!(warehouse.status, 200, "{}", warehouse.text);
    let items = warehouse.json["items"].as_array().expect("items");
    let ids: Vec<&str> = items.iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(ids, ["it", "pl"]);
    assert_eq!(items[0]["label"], "Italy");
    assert_eq!(items[0]["provider"], "mock");
    assert_eq!(items[0]["stock_view"], "exact");
    assert_eq!(items[0]["capabilities"]["address_directory"], true);
    assert_eq!(items[0]["capabilities"]["update"], false);
    assert_eq!(items[1]["capabilities"]["stock"], false);
    let sales = api.as_user("sales:sam").get("/api/instances").await;
    assert_eq!(sales.json["items"][0]["stock_view"], "levels");
    let courier = api.as_user("courier:cy").get("/api/instances").await;
    assert_eq!(courier.json["items"][0]["stock_view"], "hidden");
}

#[tokio::test]
async fn exceptions_come_in_pages_that_cover_the_list_once() {
    let (_console, api) = start().await;
    let all = api.get("/api/exceptions").await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(order_ids(&all), EXCEPTIONS);
    assert!(all.json.get("next").is_none(), "one page holds them all");

    let mut seen = Vec::new();
    let mut path = "/api/exceptions?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = api.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let ids = order_ids(&page);
        assert!(ids.len() <= 2);
        seen.extend(ids);
        pages += 1;
        match page.json["next"].as_str() {
            Some(next) => {
                path = format!("/api/exceptions?limit=2&after={}", urlencode(next));
            }
            None => break,
        }
        assert!(pages < 10, "the pages never end");
    }
    assert_eq!(seen, EXCEPTIONS, "every exception once, in order");

    for bad in ["limit=0", "limit=101", "limit=ten"] {
        let reply = api.get(&format!("/api/exceptions?{bad}")).await;
        reply.assert_problem(400, "bad-request");
        if bad != "limit=ten" {
            assert_eq!(reply.error_paths(), ["limit"], "{bad}");
            assert_eq!(reply.json["errors"][0]["pointer"], "/limit");
        } else {
            assert!(
                reply.json["detail"]
                    .as_str()
                    .unwrap_or("")
                    .contains("limit")
            );
        }
    }
}

#[tokio::test]
async fn exceptions_filter_by_status_instance_and_time() {
    let (console, api) = start().await;
    let start_time = fulfillkit::testkit::TestClock::new().now();
    let ids = |query: &str| {
        let api = &api;
        let query = query.to_owned();
        async move {
            let reply = api.get(&format!("/api/exceptions?{query}")).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            order_ids(&reply)
        }
    };
    assert!(ids("status=resolved").await.is_empty());
    assert_eq!(ids("status=all").await, EXCEPTIONS);
    assert_eq!(ids("instance=it").await, EXCEPTIONS);
    assert!(ids("instance=pl").await.is_empty());
    // One exception an hour from the fixture's start.
    let since = urlencode(&(start_time + chrono::Duration::minutes(30)).to_rfc3339());
    let until = urlencode(&(start_time + chrono::Duration::minutes(90)).to_rfc3339());
    assert_eq!(ids(&format!("since={since}&until={until}")).await, ["SO-2"]);
    assert_eq!(ids(&format!("since={since}")).await, ["SO-2", "SO-3"]);

    api.get(&format!("/api/exceptions?since={until}&until={since}"))
        .await
        .assert_problem(400, "bad-request");
    api.get("/api/exceptions?since=yesterday")
        .await
        .assert_problem(400, "bad-request");
    api.get("/api/exceptions?status=pending")
        .await
        .assert_problem(400, "bad-request");

    console
        .orchestrator
        .resolve_exception(
            "SO-2",
            fulfillkit::model::Resolution::new(
                fulfillkit::model::ResolutionAction::Manual,
                "someone",
            ),
        )
        .await
        .unwrap();
    assert_eq!(ids("").await, ["SO-1", "SO-3"]);
    assert_eq!(ids("status=resolved").await, ["SO-2"]);
}

#[tokio::test]
async fn an_exception_shows_both_versions_and_is_resolved_by_the_caller() {
    let (console, api) = start().await;
    let detail = api.get("/api/exceptions/SO-2").await;
    assert_eq!(detail.status, 200, "{}", detail.text);
    assert_eq!(detail.json["open"], true);
    assert_eq!(
        detail.json["changes"],
        json!([{"field": "name", "exported": "Giulia Rossi", "requested": "Giulia Bianchi"}])
    );
    assert_eq!(
        detail.json["exception"]["exported"]["customer"]["name"],
        "Giulia Rossi"
    );
    assert_eq!(
        detail.json["exception"]["requested"]["customer"]["name"],
        "Giulia Bianchi"
    );
    let address = api.get("/api/exceptions/SO-3").await;
    let change = &address.json["changes"][0];
    assert_eq!(change["field"], "address");
    assert!(
        change["requested"]
            .as_str()
            .unwrap()
            .starts_with("Fondamenta Nove 3, 30121 Venezia")
    );

    let resolved = api
        .post(
            "/api/exceptions/SO-2/resolve",
            json!({"action": "accept_provider_version", "note": "customer called"}),
        )
        .await;
    assert_eq!(resolved.status, 200, "{}", resolved.text);
    assert_eq!(resolved.json["open"], false);
    let resolution = &resolved.json["exception"]["resolution"];
    assert_eq!(resolution["action"], "accept_provider_version");
    assert_eq!(
        resolution["by"], "alice",
        "the caller, not the body, resolves"
    );
    assert_eq!(resolution["note"], "customer called");
    let stored = console
        .orchestrator
        .exception("SO-2")
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.is_open());
    assert!(
        console
            .orchestrator
            .automation_allowed("SO-2")
            .await
            .unwrap()
    );

    api.post("/api/exceptions/SO-2/resolve", json!({"action": "manual"}))
        .await
        .assert_problem(409, "conflict");
    api.get("/api/exceptions/SO-4")
        .await
        .assert_problem(404, "not-found");
    api.post("/api/exceptions/SO-4/resolve", json!({"action": "manual"}))
        .await
        .assert_problem(404, "not-found");
    let unknown_action = api
        .post("/api/exceptions/SO-1/resolve", json!({"action": "shrug"}))
        .await;
    assert_eq!(unknown_action.status, 422, "{}", unknown_action.text);
    assert_eq!(unknown_action.content_type, PROBLEM);
    let not_json = api
        .http
        .post(format!("{}/api/exceptions/SO-1/resolve", api.base))
        .header(USER_HEADER, "warehouse:alice")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("action=manual")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 415, "a form post (CSRF) is refused");
    let long_note = "n".repeat(2_001);
    let reply = api
        .post(
            "/api/exceptions/SO-1/resolve",
            json!({"action": "manual", "note": long_note}),
        )
        .await;
    reply.assert_problem(422, "validation");
    assert_eq!(reply.error_paths(), ["note"]);
    assert!(
        console
            .orchestrator
            .exception("SO-1")
            .await
            .unwrap()
            .unwrap()
            .is_open()
    );
}

#[tokio::test]
async fn the_waybill_form_is_json_schema_and_saving_names_each_bad_field() {
    let (console, api) = start().await;
    let form = api.get("/api/orders/SO-4/waybill").await;
    assert_eq!(form.status, 200, "{}", form.text);
    assert_eq!(form.json["instance"], "it");
    assert_eq!(
        form.json["schema"]["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(
        form.json["ui_schema"]["ui:order"],
        json!(["insured_value", "comment", "day_part"])
    );
    assert_eq!(
        form.json["schema"]["properties"]["day_part"]["oneOf"][0],
        json!({"const": null, "title": "—"})
    );
    assert_eq!(form.json["values"], json!({}));

    let bad = api
        .put(
            "/api/orders/SO-4/waybill",
            json!({"values": {"insured_value": "12,50", "comment": "c".repeat(51), "day_part": "night", "colour": "red"}}),
        )
        .await;
    bad.assert_problem(422, "validation");
    let paths: BTreeSet<String> = bad.error_paths().into_iter().collect();
    assert_eq!(
        paths,
        BTreeSet::from(
            [
                "values.insured_value",
                "values.comment",
                "values.day_part",
                "values.colour"
            ]
            .map(String::from)
        )
    );
    let insured = bad.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "values.insured_value")
        .unwrap();
    assert_eq!(insured["pointer"], "/values/insured_value");
    assert!(insured["detail"].as_str().unwrap().contains("decimal"));
    assert!(
        console
            .orchestrator
            .saved_waybill("SO-4")
            .await
            .unwrap()
            .is_none()
    );

    let good = api
        .put(
            "/api/orders/SO-4/waybill",
            json!({"values": {"insured_value": "12.50", "day_part": "evening", "comment": null}}),
        )
        .await;
    assert_eq!(good.status, 200, "{}", good.text);
    let again = api.get("/api/orders/SO-4/waybill").await;
    assert_eq!(again.json["values"]["insured_value"], "12.50");
    assert_eq!(again.json["values"]["day_part"], "evening");
    let saved = console
        .orchestrator
        .saved_waybill("SO-4")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(saved.instance.as_ref().map(|i| i.as_str()), Some("it"));

    // An order fulfillkit has no record of needs the instance named.
    let unknown = api.get("/api/orders/NEW-1/waybill").await;
    unknown.assert_problem(422, "validation");
    assert_eq!(unknown.error_paths(), ["instance"]);
    let named = api.get("/api/orders/NEW-1/waybill?instance=pl").await;
    assert_eq!(named.status, 200, "{}", named.text);
    assert_eq!(named.json["schema"]["properties"], json!({}));
    api.get("/api/orders/NEW-1/waybill?instance=nowhere")
        .await
        .assert_problem(404, "not-found");
    let elsewhere = api
        .put(
            "/api/orders/SO-4/waybill",
            json!({"instance": "pl", "values": {}}),
        )
        .await;
    elsewhere.assert_problem(422, "validation");
    assert_eq!(elsewhere.error_paths(), ["instance"]);
    let draft = api
        .put(
            "/api/orders/NEW-1/waybill",
            json!({"instance": "it", "values": {"day_part": "morning"}}),
        )
        .await;
    assert_eq!(draft.status, 200, "{}", draft.text);
    assert_eq!(
        api.get("/api/orders/NEW-1/waybill").await.json["instance"],
        "it",
        "the saved values name their instance"
    );
    api.put("/api/orders/SO-4/waybill", json!({"values": "none"}))
        .await
        .assert_problem(422, "bad-request");
}

#[tokio::test]
async fn stock_is_shown_as_the_callers_role_may_see_it() {
    let (console, api) = start().await;
    let exact = api.get("/api/orders/SO-4/stock").await;
    assert_eq!(exact.status, 200, "{}", exact.text);
    assert_eq!(exact.json["instance"], "it");
    assert_eq!(exact.json["view"], "exact");
    assert_eq!(
        exact.json["lines"],
        json!([{"line": 0, "sku": "Demo Product-1", "quantity": 2, "stock": {"exact": {"available": 15}}}])
    );
    let levels = api.as_user("sales:sam").get("/api/orders/SO-4/stock").await;
    assert_eq!(levels.json["view"], "levels");
    assert_eq!(
        levels.json["lines"][0]["stock"],
        json!({"level": "in_stock"})
    );
    assert!(
        !levels.text.contains("15"),
        "a levels role never sees the count"
    );

    let reads = console.it.calls_of(Operation::Stock).len();
    let hidden = api
        .as_user("courier:cy")
        .get("/api/orders/SO-4/stock")
        .await;
    assert_eq!(hidden.json["view"], "hidden");
    assert_eq!(hidden.json["lines"][0]["stock"], "hidden");
    assert_eq!(
        console.it.calls_of(Operation::Stock).len(),
        reads,
        "a role that sees nothing costs no provider call"
    );

    // An order the host has not confirmed yet goes in the body, routed by the rules.
    let mut draft = fulfillkit::testkit::sample_order("DRAFT-1");
    draft.lines[0].sku = "Unknown-SKU".into();
    let posted = api.post("/api/stock", json!({"order": draft})).await;
    assert_eq!(posted.status, 200, "{}", posted.text);
    assert_eq!(posted.json["instance"], "it");
    assert_eq!(posted.json["lines"][0]["stock"], Value::Null);

    api.get("/api/orders/NEW-1/stock")
        .await
        .assert_problem(404, "not-found");
    api.get(&format!("/api/orders/{POLISH}/stock"))
        .await
        .assert_problem(422, "unsupported");
}

#[tokio::test]
async fn the_directory_is_searched_per_instance() {
    let (_console, api) = start().await;
    let found = api
        .get("/api/instances/it/addresses?country=it&text=rialto")
        .await;
    assert_eq!(found.status, 200, "{}", found.text);
    let items = found.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], "VE01");
    assert_eq!(items[0]["kind"], "pickup_point");
    assert_eq!(items[0]["order_address"]["pickup_point_id"], "VE01");
    assert_eq!(items[0]["order_address"]["provider_address_id"], "VE01");

    let lockers = api
        .get("/api/instances/it/addresses?country=IT&pickup_points_only=true&limit=2")
        .await;
    assert_eq!(lockers.json["items"].as_array().unwrap().len(), 2);

    let missing = api.get("/api/instances/it/addresses?text=rialto").await;
    missing.assert_problem(400, "bad-request");
    assert!(missing.json["detail"].as_str().unwrap().contains("country"));
    let bad_country = api.get("/api/instances/it/addresses?country=Italy").await;
    bad_country.assert_problem(400, "bad-request");
    assert_eq!(bad_country.error_paths(), ["country"]);
    api.get("/api/instances/it/addresses?country=IT&limit=51")
        .await
        .assert_problem(400, "bad-request");
    api.get("/api/instances/pl/addresses?country=PL")
        .await
        .assert_problem(422, "unsupported");
    api.get("/api/instances/nowhere/addresses?country=PL")
        .await
        .assert_problem(404, "not-found");
}

#[tokio::test]
async fn failed_exports_are_listed_retried_and_attached() {
    let (console, api) = start().await;
    let all = api.get("/api/exports/failed").await;
    assert_eq!(all.status, 200, "{}", all.text);
    let ids = order_ids;
    assert_eq!(ids(&all), [RETRYABLE, FLAGGED]);
    let retryable = &all.json["items"][0];
    assert_eq!(retryable["flagged"], false);
    assert_eq!(retryable["failure"]["kind"], "timeout");
    assert_eq!(retryable["attempts"], 1);
    assert_eq!(all.json["items"][1]["flagged"], true);
    assert_eq!(all.json["items"][1]["failure"]["kind"], "conflict");

    assert_eq!(
        ids(&api.get("/api/exports/failed?flagged=true").await),
        [FLAGGED]
    );
    assert_eq!(
        ids(&api.get("/api/exports/failed?flagged=false").await),
        [RETRYABLE]
    );
    let first = api.get("/api/exports/failed?limit=1").await;
    assert_eq!(ids(&first), [RETRYABLE]);
    let next = first.json["next"].as_str().expect("a next page");
    let second = api
        .get(&format!(
            "/api/exports/failed?limit=1&after={}",
            urlencode(next)
        ))
        .await;
    assert_eq!(ids(&second), [FLAGGED]);
    assert!(second.json.get("next").is_none());

    let retried = api
        .post(&format!("/api/exports/{RETRYABLE}/retry"), json!({}))
        .await;
    assert_eq!(retried.status, 200, "{}", retried.text);
    assert_eq!(retried.json["export_state"], "exported");

    // The flagged order: a retry meets the duplicate again; attaching its reference works.
    console.it.fail_next(
        Operation::Create,
        fulfillkit::Error::Conflict {
            message: "order SO-6 already exists".into(),
        },
        1,
    );
    api.post(&format!("/api/exports/{FLAGGED}/retry"), json!({}))
        .await
        .assert_problem(409, "conflict");
    api.post(
        &format!("/api/exports/{FLAGGED}/attach"),
        json!({"provider_ref": "NOT-THERE"}),
    )
    .await
    .assert_problem(404, "not-found");
    api.post(
        &format!("/api/exports/{FLAGGED}/attach"),
        json!({"provider_ref": " "}),
    )
    .await
    .assert_problem(422, "validation");
    let attached = api
        .post(
            &format!("/api/exports/{FLAGGED}/attach"),
            json!({"provider_ref": console.flagged_ref}),
        )
        .await;
    assert_eq!(attached.status, 200, "{}", attached.text);
    assert_eq!(attached.json["export_state"], "exported");
    assert_eq!(
        attached.json["export"]["shipment"]["provider_ref"],
        console.flagged_ref.as_str()
    );
    let record = console
        .orchestrator
        .shipment(FLAGGED)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(record.export, ExportState::Exported { .. }));

    assert!(ids(&api.get("/api/exports/failed").await).is_empty());
    let report = api.post("/api/exports/retry", json!({})).await;
    assert_eq!(report.status, 200, "{}", report.text);
    assert_eq!(report.json["attempted"], 0);
    api.post("/api/exports/NEW-1/retry", json!({}))
        .await
        .assert_problem(404, "not-found");
    api.post("/api/exports/retry", json!({"everything": true}))
        .await
        .assert_problem(422, "bad-request");
}

#[tokio::test]
async fn every_error_is_a_problem_document() {
    let (_console, api) = start().await;
    let missing = api.get("/api/no-such-thing").await;
    missing.assert_problem(404, "no-such-route");
    assert!(
        missing.json["detail"]
            .as_str()
            .unwrap()
            .contains("/fulfillment/api/no-such-thing")
    );
    let wrong_method = api.send(Method::DELETE, "/api/instances", None).await;
    wrong_method.assert_problem(405, "method-not-allowed");
    assert_eq!(
        wrong_method
            .headers
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("GET,HEAD")
    );
    let syntax = api
        .http
        .put(format!("{}/api/orders/SO-4/waybill", api.base))
        .header(USER_HEADER, "warehouse:alice")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(syntax.status(), 400);
    assert_eq!(
        syntax
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap(),
        PROBLEM
    );
    let order = api.get("/api/orders/NEW-1").await;
    order.assert_problem(404, "not-found");
    assert!(order.json["detail"].as_str().unwrap().contains("NEW-1"));
    assert_eq!(order.json["kind"], "not_found");
    assert_eq!(order.json["retryable"], false);
    // A cursor no page handed out is the caller's mistake, named, not a 500 or an empty page.
    let forged = api.get("/api/exceptions?after=SO-1").await;
    forged.assert_problem(422, "validation");
    assert_eq!(forged.error_paths(), ["after"]);
}

#[tokio::test]
async fn the_openapi_document_and_the_router_agree() {
    let (console, api) = start().await;
    let reply = api.get("/api/openapi.json").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let doc = reply.json;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"], json!([{"url": "/fulfillment"}]));
    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    let expected = BTreeSet::from([
        "/api/me",
        "/api/instances",
        "/api/instances/{instance}/addresses",
        "/api/orders/{order_id}",
        "/api/orders/{order_id}/waybill",
        "/api/orders/{order_id}/stock",
        "/api/stock",
        "/api/exceptions",
        "/api/exceptions/{order_id}",
        "/api/exceptions/{order_id}/resolve",
        "/api/exports/failed",
        "/api/exports/retry",
        "/api/exports/{order_id}/retry",
        "/api/exports/{order_id}/attach",
    ]);
    assert_eq!(documented, expected);
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for schema in [
        "Problem",
        "ProblemField",
        "ExceptionList",
        "WaybillView",
        "OrderStockView",
    ] {
        assert!(schemas.contains_key(schema), "{schema} is documented");
    }
    // Every documented operation is routed: none answers "no such route" or "method not
    // allowed", and every error it documents is a problem document.
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{instance}", "it")
            .replace("{order_id}", "NEW-1");
        for (method, operation) in item.as_object().expect("a path item") {
            let method: Method = method.to_uppercase().parse().expect("a method");
            let body = (method != Method::GET).then(|| json!({}));
            let reply = api.send(method.clone(), &concrete, body).await;
            assert!(
                !reply.problem_type().ends_with("no-such-route")
                    && !reply.problem_type().ends_with("method-not-allowed"),
                "{method} {path} is documented but not routed: {}",
                reply.text
            );
            for (status, response) in operation["responses"].as_object().expect("responses") {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        response["content"][PROBLEM].is_object(),
                        "{method} {path} {status} is a problem document"
                    );
                }
            }
            operations += 1;
        }
    }
    assert_eq!(operations, 15);
    let from_code = HttpApi::new(console.orchestrator.clone()).openapi();
    assert_eq!(from_code["paths"], doc["paths"]);
}

#[tokio::test]
async fn the_console_is_served_from_the_crate() {
    let (_console, api) = start().await;
    for path in ["", "/console"] {
        let redirect = api.get(path).await;
        assert_eq!(redirect.status, 303, "{path}");
        assert_eq!(
            redirect
                .headers
                .get("location")
                .and_then(|v| v.to_str().ok()),
            Some("/fulfillment/console/"),
            "{path}"
        );
    }
    let page = api.get("/console/").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert!(
        page.text
            .contains(r#"<script src="console.js" defer></script>"#)
    );
    assert!(
        !page.text.contains("http://") && !page.text.contains("https://"),
        "no CDN"
    );
    let policy = page
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    for (asset, kind) in [
        ("/console/console.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
    ] {
        let reply = api.get(asset).await;
        assert_eq!(reply.status, 200, "{asset}");
        assert_eq!(reply.content_type, kind);
        assert!(
            !reply.text.contains("http://") && !reply.text.contains("https://"),
            "{asset}: no network"
        );
    }
}

/// Percent-encodes a query value.
fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn shipbob_webhooks_reach_the_orchestrator_through_the_webhook_router() {
    use fulfillkit::model::StatusCode;
    use fulfillkit::orchestrator::{Condition, Instance, Orchestrator, RoutingRule};
    use fulfillkit::simulator::{Lifecycle, ShipBobSimulator};
    use fulfillkit::webhook::{ShipBobWebhooks, WebhookSecret};

    let shipbob = ShipBobSimulator::builder()
        .with_lifecycle(Lifecycle::new([
            "None",
            "Processing/Packed",
            "Completed/InTransit",
        ]))
        .start()
        .await
        .unwrap();
    let provider = std::sync::Arc::new(
        shipbob
            .provider_builder()
            .with_instance_label("shipbob-us")
            .build()
            .unwrap(),
    );
    let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let orchestrator = Orchestrator::builder()
        .instance(Instance::new("shipbob-us", "ShipBob", provider.clone()))
        .rule(RoutingRule::new(
            "us",
            Condition::country(["US"]),
            "shipbob-us",
        ))
        .build()
        .unwrap();
    let api = HttpApi::new(orchestrator.clone()).with_shipbob_webhooks(
        "shipbob-us",
        ShipBobWebhooks::new(provider.clone(), secret.clone()),
    );
    // The webhook router goes outside the host's login: ShipBob signs, it does not log in.
    let base = serve(Router::new().nest("/hooks", api.webhook_router()).nest(
        "/fulfillment",
        api.router().layer(middleware::from_fn(host_auth)),
    ))
    .await;
    provider
        .subscribe_webhooks(&format!("{base}/hooks/shipbob-us"), &secret)
        .await
        .unwrap();

    let mut order = fulfillkit::testkit::sample_order("US-1");
    order.address.country = "US".into();
    order.address.region = Some("OH".into());
    order.address.city = "Columbus".into();
    order.address.postcode = "43004".into();
    order.address.lines = vec!["12 Elm St".into()];
    order.customer.phone = "+16145550101".into();
    order.currency = "USD".into();
    order.lines[0].sku = "LIGHT-ROAST".into();
    let outcome = orchestrator.on_order_confirmed(&order).await.unwrap();
    assert!(outcome.is_exported(), "{outcome:?}");
    shipbob.tick();
    shipbob.tick();
    assert!(
        shipbob
            .settle_webhooks(std::time::Duration::from_secs(10))
            .await
    );

    let attempts = shipbob.webhook_attempts();
    assert!(!attempts.is_empty(), "ShipBob sent webhooks");
    assert!(
        attempts.iter().all(|a| a.delivered()),
        "every delivery was taken: {attempts:?}"
    );
    let record = orchestrator.shipment("US-1").await.unwrap().unwrap();
    let status = record.current_status.expect("a status from the webhooks");
    assert_eq!(status.code, StatusCode::InTransit, "{status:?}");

    let http = reqwest::Client::new();
    let unsigned = http
        .post(format!("{base}/hooks/shipbob-us"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let problem: Value = unsigned.json().await.unwrap();
    assert_eq!(problem["type"], "urn:fulfillkit:problem:webhook-unverified");
    let elsewhere = http
        .post(format!("{base}/hooks/nowhere"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 404);

    // The operator router says which instances take webhooks.
    let operator = Api::new(&format!("{base}/fulfillment"), Some("warehouse:alice"));
    let instances = operator.get("/api/instances").await;
    assert_eq!(instances.json["items"][0]["webhooks"], true);
}
