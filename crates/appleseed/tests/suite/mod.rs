//! The suites of this crate's integration tests, one module each.

mod appleseed;
mod appleseed_governance;
mod learning;
