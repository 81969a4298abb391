//! Shared test helpers.
pub mod sphere;
pub mod wapi;
