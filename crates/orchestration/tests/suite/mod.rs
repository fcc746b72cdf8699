//! The suites of this crate's integration tests, one module each; `common`
//! holds their shared helpers.

mod common;
mod orchestration;
mod secrets;
mod shared_ledger;
