//! The suites of this crate's integration tests, one module each; `common`
//! holds their shared helpers.

mod backup;
mod common;
mod conformance;
mod crash;
mod leases;
mod sqlite_group;
