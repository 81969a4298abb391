//! # fulfillkit
//!
//! Connects a CRM or shop backend to fulfillment companies (3PLs): a confirmed order is
//! exported to the right fulfillment account within seconds, kept in sync when an operator
//! edits it, tracked until delivery, and the 3PL's stock and address directory are at hand.
//!
//! The crate is organised in layers, each depending only on those below it:
//!
//! - [`model`]: plain data ([`Order`](model::Order), [`Waybill`](model::Waybill) and
//!   [`WaybillForm`](model::WaybillForm), [`DeliveryStatus`](model::DeliveryStatus) with its
//!   normalized [`StatusCode`](model::StatusCode), stock levels, order exceptions);
//! - [`provider`]: the [`FulfillmentProvider`](provider::FulfillmentProvider) trait every 3PL
//!   adapter implements, and `MockProvider` (feature `mock`) for tests;
//! - [`http`]: the one HTTP client the bundled providers share (retries, rate limit, body
//!   caps, secret redaction);
//! - [`testkit`] (feature `mock`): a conformance suite any provider can run against itself;
//! - [`webhook`] (feature `webhook`, on with `shipbob`): verification of Standard Webhooks
//!   signatures, de-duplication by message id, and ShipBob deliveries as tracking updates;
//! - [`simulator`] (feature `simulator`): stateful HTTP fakes of Wapi, Sphere and ShipBob with
//!   fault knobs;
//! - [`orchestrator`]: instances, routing rules, export on confirmation, the shipment
//!   records in the host's [`Store`](orchestrator::Store) and the events sent to its
//!   [`EventSink`](orchestrator::EventSink);
//! - [`http_api`] (feature `axum`): the operator API and console as an axum `Router` the host
//!   nests under its own path and authentication;
//! - [`error`]: one [`Error`] whose variants say what a caller can do about it.
//!
//! ## Example
//!
//! Validate an order, export it, and follow it to delivery (with the bundled mock provider):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> fulfillkit::Result<()> {
//! use fulfillkit::model::{StatusCode, Waybill};
//! use fulfillkit::provider::{FulfillmentProvider, mock::MockProvider};
//!
//! let provider = MockProvider::new();
//! let order = fulfillkit::testkit::sample_order("SO-1001");
//! order.validate()?;
//!
//! let shipment = provider.create_order(&order, &Waybill::new()).await?;
//! provider.advance(&order.id, StatusCode::InTransit)?;
//! provider.advance(&order.id, StatusCode::Delivered)?;
//!
//! let updates = provider.track(&[shipment.reference.clone()]).await?;
//! let current = updates[0].statuses().last().expect("a status");
//! assert_eq!(current.code, StatusCode::Delivered);
//! assert_eq!(current.original, "Delivered");
//! # Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
#![forbid(unsafe_code)]
// The module overview links to feature-gated modules (`testkit`, `simulator`); a build without
// those features has nothing to link to. `cargo doc --all-features` (and docs.rs) check every link.
#![cfg_attr(
    not(all(feature = "mock", feature = "simulator")),
    allow(rustdoc::broken_intra_doc_links)
)]

pub mod error;
pub mod http;
#[cfg(feature = "axum")]
pub mod http_api;
pub mod model;
pub mod orchestrator;
pub mod provider;
#[cfg(feature = "simulator")]
pub mod simulator;
pub mod store;
mod telemetry;
#[cfg(any(test, feature = "mock"))]
pub mod testkit;
#[cfg(feature = "webhook")]
pub mod webhook;

pub use error::{Error, ErrorKind, Failure, Result};

/// The attribute the crate's traits are written with, re-exported so an implementation of
/// [`FulfillmentProvider`](provider::FulfillmentProvider), [`Store`](store::Store) or
/// [`ConformanceDriver`](crate::testkit::ConformanceDriver) needs no direct dependency on
/// `async-trait` (and cannot pick a different version): `use fulfillkit::async_trait;`.
pub use async_trait::async_trait;

// The README's examples are compiled and run as doctests, so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
