//! The suites of this crate's integration tests, one module each; `common`
//! holds their shared helpers.

mod appleseed;
mod architecture;
mod cli;
mod common;
mod dashboard_browser;
mod jobs;
mod milestones;
mod multinode;
