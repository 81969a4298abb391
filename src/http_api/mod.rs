//! The embeddable HTTP API and operator console (feature `axum`): an axum [`Router`] the host
//! nests under its own path and behind its own authentication layer.
//!
//! fulfillkit owns no server, users or sessions here. The host runs axum, authenticates the
//! request its own way and says who is asking with a [`Caller`] (a role name for stock views,
//! an operator name for resolutions) in the request's extensions — or gives
//! [`HttpApi::with_caller`] a function that makes one from its own user type. A request
//! without a caller is refused (401 problem) before any route, asset or document, so nothing
//! is reachable around the host's layer.
//!
//! ```no_run
//! # async fn mount(orchestrator: fulfillkit::orchestrator::Orchestrator) -> std::io::Result<()> {
//! use axum::{Router, extract::Request, middleware::{self, Next}, response::Response};
//! use fulfillkit::http_api::{self, Caller};
//!
//! async fn host_auth(mut request: Request, next: Next) -> Response {
//!     // The host's own session check goes here; it knows the user's role and name.
//!     request.extensions_mut().insert(Caller::new("warehouse", "alice"));
//!     next.run(request).await
//! }
//!
//! let app = Router::new()
//!     .nest("/fulfillment", http_api::router(orchestrator).layer(middleware::from_fn(host_auth)));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! What the router serves, relative to where it is nested:
//!
//! - `api/…`: JSON endpoints — instances; an order's waybill form (JSON Schema and saved
//!   values) and saving values (checked against the form, one error per field); stock for an
//!   order as the caller's role may see it; the address / pickup-point directory of an
//!   instance; the order exceptions with filters and pages, one with both order versions and
//!   what changed, and resolving it; failed and flagged exports with retry and
//!   `attach_shipment`. Errors are RFC 9457 problem details ([`Problem`]).
//! - `api/openapi.json`: the OpenAPI 3.1 document, generated from the handlers.
//! - `console/`: the operator console, plain HTML, CSS and JavaScript embedded in the crate
//!   (no build step, no CDN): the exception list and its detail with the resolution buttons,
//!   failed and flagged exports, and a demo order card rendering the waybill form from its
//!   JSON Schema, with address autocomplete and stock by role.
//!
//! Every state-changing request carries a JSON body (`{}` when there is nothing to say):
//! browsers send no JSON to another site without a CORS preflight, which protects a host whose
//! sessions are cookies from cross-site requests. Authorization beyond identity (who may
//! resolve an exception) is the host's layer's to decide, by path.
//!
//! Provider webhooks are not for operators and cannot pass the host's login: their
//! authentication is the provider's signature. [`HttpApi::webhook_router`] serves them
//! (`POST {instance}`, the raw body and headers handed to [`crate::webhook`]) for the host to
//! mount outside its authentication layer.

mod caller;
mod console;
mod exception_source;
mod extract;
mod openapi;
mod problem;
mod routes;
#[cfg(feature = "shipbob")]
mod webhooks;

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::http::request::Parts;

pub use caller::Caller;
pub use problem::{PROBLEM_JSON, Problem, ProblemField};

use crate::model::InstanceId;
use crate::orchestrator::Orchestrator;

/// The operator API and console for `orchestrator`, taking the [`Caller`] from the request's
/// extensions; see the [module docs](self). Shorthand for `HttpApi::new(orchestrator).router()`.
pub fn router(orchestrator: Orchestrator) -> Router {
    HttpApi::new(orchestrator).router()
}

/// Builds the routers of the HTTP API: the operator API and console ([`HttpApi::router`]) and
/// the provider webhook intake ([`HttpApi::webhook_router`]).
#[derive(Clone)]
pub struct HttpApi {
    orchestrator: Orchestrator,
    caller: caller::CallerSource,
    #[cfg(feature = "shipbob")]
    webhooks: std::collections::BTreeMap<InstanceId, crate::webhook::ShipBobWebhooks>,
}

impl fmt::Debug for HttpApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("HttpApi");
        debug.field("orchestrator", &self.orchestrator);
        #[cfg(feature = "shipbob")]
        debug.field("webhooks", &self.webhooks.keys().collect::<Vec<_>>());
        debug.finish_non_exhaustive()
    }
}

/// What every handler shares.
pub(crate) struct ApiState {
    orchestrator: Orchestrator,
    caller: caller::CallerSource,
    /// The OpenAPI document of the operator router, made once from its handlers.
    openapi: utoipa::openapi::OpenApi,
    /// Instances whose webhooks the webhook router takes.
    webhook_instances: Vec<InstanceId>,
}

impl fmt::Debug for ApiState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

impl HttpApi {
    /// The API for `orchestrator`, taking the [`Caller`] from the request's extensions, with
    /// no webhook intake.
    pub fn new(orchestrator: Orchestrator) -> Self {
        Self {
            orchestrator,
            caller: caller::CallerSource(caller::from_extensions()),
            #[cfg(feature = "shipbob")]
            webhooks: std::collections::BTreeMap::new(),
        }
    }

    /// Makes the [`Caller`] of each request with `caller` instead — typically from the
    /// host's own user type its layer left in the extensions. `None` refuses the request
    /// (401 problem).
    ///
    /// ```no_run
    /// # fn f(orchestrator: fulfillkit::orchestrator::Orchestrator) {
    /// # #[derive(Clone)] struct User { role: String, login: String }
    /// use fulfillkit::http_api::{Caller, HttpApi};
    ///
    /// let router = HttpApi::new(orchestrator)
    ///     .with_caller(|parts| {
    ///         let user = parts.extensions.get::<User>()?;
    ///         Some(Caller::new(&user.role, &user.login))
    ///     })
    ///     .router();
    /// # }
    /// ```
    pub fn with_caller(
        mut self,
        caller: impl Fn(&Parts) -> Option<Caller> + Send + Sync + 'static,
    ) -> Self {
        self.caller = caller::CallerSource(Arc::new(caller));
        self
    }

    /// Takes ShipBob's webhooks for `instance` at `POST {instance}` of the
    /// [webhook router](Self::webhook_router), with `intake` (its secrets and de-duplication).
    #[cfg(feature = "shipbob")]
    pub fn with_shipbob_webhooks(
        mut self,
        instance: impl Into<InstanceId>,
        intake: crate::webhook::ShipBobWebhooks,
    ) -> Self {
        self.webhooks.insert(instance.into(), intake);
        self
    }

    /// The operator API (`api/…`), its OpenAPI document (`api/openapi.json`) and the console
    /// (`console/`), every route behind the caller check.
    pub fn router(&self) -> Router {
        let (api, openapi) = routes::api().split_for_parts();
        let state = Arc::new(self.state(openapi));
        Router::new()
            .merge(api)
            .merge(openapi::routes())
            .merge(console::routes())
            .fallback(routes::no_such_route)
            .method_not_allowed_fallback(routes::method_not_allowed)
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                caller::require_caller,
            ))
            .with_state(state)
    }

    /// The OpenAPI 3.1 document of [`Self::router`], as JSON (the router serves it too, with
    /// the path it is mounted at as its server).
    pub fn openapi(&self) -> serde_json::Value {
        let (_, openapi) = routes::api().split_for_parts();
        serde_json::to_value(openapi::document(openapi, None)).unwrap_or_default()
    }

    /// The provider webhook intake: `POST {instance}` with the provider's raw body and
    /// headers, for each instance given with [`Self::with_shipbob_webhooks`]. Mount it where
    /// the provider can reach it, **outside** the host's login (the signature authenticates
    /// the sender); it never needs a [`Caller`]. Answers are what the provider expects: 200
    /// once the updates are stored, 401 for anything unverifiable, 400 for an unreadable
    /// payload, 503 when storing failed (the provider delivers again), as problem details.
    #[cfg(feature = "shipbob")]
    pub fn webhook_router(&self) -> Router {
        webhooks::routes(self.webhooks.clone(), self.orchestrator.clone())
    }

    fn state(&self, openapi: utoipa::openapi::OpenApi) -> ApiState {
        ApiState {
            orchestrator: self.orchestrator.clone(),
            caller: self.caller.clone(),
            openapi,
            #[cfg(feature = "shipbob")]
            webhook_instances: self.webhooks.keys().cloned().collect(),
            #[cfg(not(feature = "shipbob"))]
            webhook_instances: Vec::new(),
        }
    }
}
