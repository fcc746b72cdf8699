//! The suites of this crate's integration tests, one module each.

mod tls;
