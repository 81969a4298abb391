//! Shared test helpers.
pub mod shipbob;
pub mod sphere;
pub mod wapi;
