//! Edits after export: key-field changes pushed to the provider, order exceptions when it is
//! too late, suspended automation.
//!
//! (Issue 7 fills this in.)
