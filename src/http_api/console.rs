//! The operator console: one HTML page, a stylesheet and a script, embedded in the crate
//! (`include_str!`), so it needs no build step at install time and loads nothing from the
//! network. It talks to the JSON API with relative URLs, so it works wherever the host mounts
//! the router.

use std::sync::Arc;

use axum::Router;
use axum::extract::OriginalUri;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::ApiState;

const INDEX_HTML: &str = include_str!("assets/index.html");
const CONSOLE_JS: &str = include_str!("assets/console.js");
const CONSOLE_CSS: &str = include_str!("assets/console.css");

/// Only this origin's script and style, no inline code, no framing by other sites.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; \
    frame-ancestors 'self'; base-uri 'none'";

pub(super) fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/", get(to_console))
        .route("/console", get(to_console))
        .route(
            "/console/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/console.js",
            get(|| async { asset(CONSOLE_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/console.css",
            get(|| async { asset(CONSOLE_CSS, "text/css; charset=utf-8") }),
        )
}

/// The console's address with its trailing slash (its relative links need it), wherever the
/// router is mounted.
async fn to_console(uri: OriginalUri) -> Redirect {
    let path = uri.0.path();
    let base = path.strip_suffix("/console").unwrap_or(path);
    // One leading slash whatever the request had: `//host/…` would leave the site.
    let base = base.trim_matches('/');
    if base.is_empty() {
        Redirect::to("/console/")
    } else {
        Redirect::to(&format!("/{base}/console/"))
    }
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Assets change with the crate's version; revalidating costs little.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
