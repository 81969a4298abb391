//! The operator console in a real browser: headless Chromium from the distribution's
//! packages, driven by its chromedriver over the W3C WebDriver protocol (plain JSON over
//! HTTP, with the crate's own `reqwest`). It opens the console, resolves an exception and sees
//! it leave the open list, picks an address with the keyboard, and fills the waybill form with
//! a bad value and sees the field's error.
//!
//! Chromium and chromedriver are found on `PATH` (or `FULFILLKIT_CHROMIUM` /
//! `FULFILLKIT_CHROMEDRIVER`). Without them the test says it was skipped and why — unless `CI`
//! or `FULFILLKIT_REQUIRE_BROWSER=1` is set, where it fails: `.ci/run` installs both.

mod console_support;

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use serde_json::{Value, json};

use console_support::*;
use fulfillkit::http_api::{Caller, HttpApi};

/// How long one wait for the page may take before the test fails: a guard against a hung
/// browser, not a measure of speed.
const PATIENCE: Duration = Duration::from_secs(30);
/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

type Outcome<T> = Result<T, String>;

/// A binary named by `variable`, or the first of `names` on `PATH`.
fn find_binary(variable: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Whether a missing browser fails the test rather than skipping it.
fn browser_required() -> bool {
    std::env::var("FULFILLKIT_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| !v.is_empty())
}

/// chromedriver, killed when the test ends however it ends.
struct DriverProcess(Child);

impl Drop for DriverProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A WebDriver session.
struct Browser {
    http: reqwest::Client,
    session: String,
    base: String,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session through it.
    async fn start(driver: &Path, chromium: &Path) -> Outcome<(DriverProcess, Browser)> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let process = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", driver.display()))?;
        let process = DriverProcess(process);
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(PATIENCE)
            .build()
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        loop {
            let ready = match http.get(format!("{base}/status")).send().await {
                Ok(reply) => reply
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                break;
            }
            if started.elapsed() > PATIENCE {
                return Err("chromedriver did not become ready".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--no-default-browser-check", "--window-size=1280,1000",
                ],
            },
        }}});
        let reply: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .map_err(|e| format!("new session: {e}"))?
            .json()
            .await
            .map_err(|e| format!("new session: {e}"))?;
        let session = reply["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session: {reply}"))?
            .to_owned();
        Ok((
            process,
            Browser {
                http,
                session,
                base,
            },
        ))
    }

    /// One WebDriver command on the session; its `value`.
    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Outcome<Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let request = self.http.request(method.clone(), url);
        let request = if method == reqwest::Method::GET {
            request
        } else {
            request.json(&body)
        };
        let reply: Value = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        if let Some(error) = reply["value"]["error"].as_str() {
            return Err(format!(
                "{method} {path}: {error}: {}",
                reply["value"]["message"]
            ));
        }
        Ok(reply["value"].clone())
    }

    async fn open(&self, url: &str) -> Outcome<()> {
        self.command(reqwest::Method::POST, "/url", json!({"url": url}))
            .await
            .map(drop)
    }

    /// Runs `script` (a function body; `arguments` as given) in the page.
    async fn eval(&self, script: &str, args: Value) -> Outcome<Value> {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// Waits until `script` returns something truthy; returns it.
    async fn wait_for(&self, what: &str, script: &str) -> Outcome<Value> {
        let started = Instant::now();
        loop {
            let value = self.eval(script, json!([])).await?;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!("")
                && value != json!(0);
            if truthy {
                return Ok(value);
            }
            if started.elapsed() > PATIENCE {
                let page = self
                    .eval("return document.body.innerText.slice(0, 2000);", json!([]))
                    .await
                    .unwrap_or_default();
                return Err(format!("waited in vain for {what}; the page says:\n{page}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn element(&self, css: &str) -> Outcome<String> {
        let found = self
            .command(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await?;
        found[ELEMENT]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no element {css}"))
    }

    async fn click(&self, css: &str) -> Outcome<()> {
        let id = self.element(css).await?;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            json!({}),
        )
        .await
        .map(drop)
    }

    /// Types `text` (WebDriver key codes allowed) into the element, as a user would.
    async fn type_into(&self, css: &str, text: &str) -> Outcome<()> {
        let id = self.element(css).await?;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            json!({"text": text}),
        )
        .await
        .map(drop)
    }

    async fn quit(&self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
    }
}

/// The host's layer of a signed-in browser: alice of the warehouse.
async fn signed_in(mut request: Request, next: Next) -> Response {
    request
        .extensions_mut()
        .insert(Caller::new("warehouse", "alice"));
    next.run(request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_resolves_an_exception_and_meets_a_field_error() {
    let driver = find_binary("FULFILLKIT_CHROMEDRIVER", &["chromedriver"]);
    let chromium = find_binary(
        "FULFILLKIT_CHROMIUM",
        &[
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ],
    );
    let (driver, chromium) = match (driver, chromium) {
        (Some(driver), Some(chromium)) => (driver, chromium),
        (driver, chromium) => {
            let missing = [
                driver.is_none().then_some("chromedriver"),
                chromium.is_none().then_some("chromium"),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" and ");
            let why = format!(
                "{missing} not found on PATH (install the chromium and chromium-driver packages, \
                 or set FULFILLKIT_CHROMIUM / FULFILLKIT_CHROMEDRIVER)"
            );
            assert!(!browser_required(), "the browser test cannot run: {why}");
            // Straight to stderr: the test harness hides what a passing test prints.
            let _ = writeln!(
                std::io::stderr(),
                "console_browser: skipped, {why}; CI and FULFILLKIT_REQUIRE_BROWSER=1 make this a failure"
            );
            return;
        }
    };

    let console = console().await;
    let app = Router::new().nest(
        "/fulfillment",
        HttpApi::new(console.orchestrator.clone())
            .router()
            .layer(middleware::from_fn(signed_in)),
    );
    let site = serve(app).await;
    let (process, browser) = Browser::start(&driver, &chromium)
        .await
        .unwrap_or_else(|e| panic!("the browser did not start: {e}"));
    let outcome = walk_through(&browser, &format!("{site}/fulfillment/console/")).await;
    browser.quit().await;
    drop(process);
    if let Err(error) = outcome {
        panic!("{error}");
    }

    let resolved = console
        .orchestrator
        .exception("SO-1")
        .await
        .unwrap()
        .expect("an exception");
    let resolution = resolved.resolution.expect("resolved");
    assert_eq!(resolution.by, "alice", "the host's caller resolved it");
    assert!(
        console
            .orchestrator
            .saved_waybill(EXPORTED)
            .await
            .unwrap()
            .is_none(),
        "the bad value was not saved"
    );
}

/// What the operator does, step by step.
async fn walk_through(browser: &Browser, console_url: &str) -> Outcome<()> {
    // The open exceptions.
    browser.open(&format!("{console_url}#/exceptions")).await?;
    browser
        .wait_for(
            "the open exceptions",
            r##"return document.querySelectorAll("#exceptions-table tbody tr").length === 3;"##,
        )
        .await?;
    let who = browser
        .wait_for(
            "the caller",
            r##"return document.getElementById("caller").textContent;"##,
        )
        .await?;
    if who != json!("Signed in as alice (warehouse)") {
        return Err(format!("the console names {who}"));
    }

    // One exception: what changed, then the operator keeps the provider's version.
    browser.click(r##"a[href="#/exception/SO-1"]"##).await?;
    let changed = browser
        .wait_for(
            "what changed",
            r##"const row = document.querySelector("#changes-table tbody tr");
               return row && row.textContent;"##,
        )
        .await?;
    if !changed.as_str().unwrap_or("").contains("+393409999999") {
        return Err(format!("the change shown is {changed}"));
    }
    browser
        .click(r##"button[data-action="accept_provider_version"]"##)
        .await?;
    browser
        .wait_for(
            "SO-1 to leave the open list",
            r##"return location.hash.startsWith("#/exceptions")
                 && document.querySelector('#exceptions-table tr[data-order="SO-2"]') !== null
                 && document.querySelector('#exceptions-table tr[data-order="SO-1"]') === null;"##,
        )
        .await?;
    browser
        .wait_for(
            "the resolution to be announced",
            r##"return document.getElementById("status").textContent.includes("SO-1 is resolved");"##,
        )
        .await?;

    // The order card: the directory by keyboard, then a waybill value the form refuses.
    browser
        .open(&format!("{console_url}#/card?order={EXPORTED}"))
        .await?;
    browser
        .wait_for(
            "the waybill form and the stock",
            r##"return document.querySelector('#waybill-form [name="insured_value"]') !== null
                 && document.querySelector("#stock-table") !== null;"##,
        )
        .await?;
    let stock = browser
        .eval(
            r##"return document.querySelector('#stock-table tr[data-sku="Demo Product-1"]').textContent;"##,
            json!([]),
        )
        .await?;
    if !stock.as_str().unwrap_or("").contains("15 available") {
        return Err(format!("the warehouse sees the stock as {stock}"));
    }
    browser.type_into("#addr-q", "rialto").await?;
    browser
        .wait_for(
            "a directory entry",
            r##"return document.querySelector('#addr-list [role="option"]') !== null;"##,
        )
        .await?;
    // Arrow down to the first entry, Enter to choose it.
    browser.type_into("#addr-q", "\u{E015}\u{E007}").await?;
    browser
        .wait_for(
            "the chosen address",
            r##"return document.getElementById("addr-chosen").textContent.includes("Punto Rialto");"##,
        )
        .await?;

    browser
        .type_into(r##"#waybill-form [name="insured_value"]"##, "12,50")
        .await?;
    browser.click("#waybill-save").await?;
    let error = browser
        .wait_for(
            "the field's error",
            r##"const error = document.querySelector('[data-error-for="insured_value"]');
               return error && !error.hidden && error.textContent;"##,
        )
        .await?;
    if !error.as_str().unwrap_or("").contains("decimal") {
        return Err(format!("the field's error reads {error}"));
    }
    let marked = browser
        .eval(
            r##"const input = document.querySelector('#waybill-form [name="insured_value"]');
               return [input.getAttribute("aria-invalid"),
                       input.getAttribute("aria-describedby").includes(document.querySelector('[data-error-for="insured_value"]').id),
                       document.activeElement.id];"##,
            json!([]),
        )
        .await?;
    if marked != json!(["true", true, "waybill-errors"]) {
        return Err(format!(
            "the field is not marked invalid and described by its error, with focus on the summary: {marked}"
        ));
    }
    Ok(())
}
