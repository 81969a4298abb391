//! The OpenAPI document: its front matter (title, tags, the problem schema) here, its paths
//! and schemas generated from the handlers' `#[utoipa::path]` attributes as `routes.rs`
//! registers them — the attribute that documents a route is the one that mounts it, so the
//! document cannot list a route the router lacks, or miss one it has.

use std::sync::Arc;

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::{self, Server};

use super::ApiState;

/// Where the router serves the document, relative to where it is mounted.
pub(super) const PATH: &str = "/api/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fulfillkit operator API",
        description = "Order exceptions, failed exports, the waybill form, stock by role and the \
            address directory of fulfillkit's orchestrator, as embedded in the host's \
            application. Every request needs the caller the host's authentication layer \
            identifies; errors are RFC 9457 problem details.",
        license(name = "MIT OR Apache-2.0")
    ),
    tags(
        (name = "caller", description = "Who is asking, as the host's layer said"),
        (name = "instances", description = "Provider accounts and their address directories"),
        (name = "orders", description = "The order card: shipment, waybill form, stock"),
        (name = "exceptions", description = "Edits the provider could no longer accept"),
        (name = "exports", description = "Exports that failed or wait for an operator"),
    ),
    components(schemas(super::problem::Problem, super::problem::ProblemField))
)]
pub(super) struct FrontMatter;

/// The document with `server` as its one server (the path the router is mounted at).
pub(super) fn document(mut doc: openapi::OpenApi, server: Option<String>) -> openapi::OpenApi {
    doc.servers = server.map(|url| vec![Server::new(url)]);
    doc
}

/// `GET api/openapi.json`, naming as its server the path the host mounted the router at.
async fn serve(State(state): State<Arc<ApiState>>, uri: OriginalUri) -> Json<openapi::OpenApi> {
    let path = uri.0.path();
    let mount = path.strip_suffix(PATH).unwrap_or("");
    let server = if mount.is_empty() { "/" } else { mount };
    Json(document(state.openapi.clone(), Some(server.to_owned())))
}

/// The route of the document itself (not part of the document).
pub(super) fn routes() -> axum::Router<Arc<ApiState>> {
    axum::Router::new().route(PATH, get(serve))
}
