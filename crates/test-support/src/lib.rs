//! Helpers shared by Garrison's test suites. A dev-dependency only: nothing
//! here reaches a shipped binary.
//!
//! - [`process`]: the `garrison` binary with a clean environment, a child
//!   killed on drop, a served child waiting for its listen line, and running
//!   one test alone in a fresh copy of its test binary.
//! - [`model`]: a scripted OpenAI chat-completions server on 127.0.0.1.
//! - [`db`]: scratch PostgreSQL databases on `GARRISON_TEST_DATABASE_URL`.
//!
//! It depends on no garrison crate (they depend on it for their tests; a
//! cycle would give the tests two copies of their types), so helpers that
//! need garrison types stay in the suites that use them.

pub mod db;
pub mod model;
pub mod process;
