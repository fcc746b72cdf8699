//! The integration tests of `garrison-client`: one test binary, each suite
//! a module under `suite/`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod suite;
