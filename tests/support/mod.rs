//! Shared test helpers.
pub mod wapi;
