//! The suites of this crate's integration tests, one module each; `common`
//! holds their shared helpers.

mod appleseed;
mod common;
mod dashboard;
mod http;
mod jobs;
mod learning;
mod metrics;
mod milestones;
mod openapi;
mod orchestration;
mod outbox;
mod v1;
