//! The learning service (ironclaw-service-contracts.md §3.10): outcome-based
//! routing updates, plus the feed that turns Garrison's own runs into
//! Appleseed evidence.
//!
//! - [`tick`] (`POST /learn/tick`) recomputes order outcomes per profile and
//!   task type from the ledger, writes a versioned routing-policy document
//!   under `<data-dir>/learning/` and appends `POLICY_UPDATED`.
//! - [`appleseed_feed::run`] follows the ledger and ingests a `session_started`
//!   envelope for every `RUN_CREATED` and a `session_feedback` envelope for
//!   every `RUN_COMPLETED`/`RUN_FAILED`/`RUN_CANCELLED` into `<data-dir>/appleseed`, through the
//!   same ingest (validation, duplicate skipping, projection) external
//!   runtimes use.

pub mod appleseed_feed;
mod policy;

use std::path::PathBuf;

use garrison_ledger::LedgerError;

pub use policy::{
    Corrections, LATEST_FILE, LEARNING_DIR, Latency, MIN_SETTLED, PolicyDoc, ProfileStats, Route,
    policy_file, tick,
};

/// Why a learning step failed.
#[derive(Debug, thiserror::Error)]
pub enum LearningError {
    #[error("the learning service cannot use the ledger: {0}")]
    Ledger(#[from] LedgerError),
    /// Writing the policy document or the feed position failed.
    #[error("learning state: {0}")]
    State(#[from] crate::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("learning task failed: {0}")]
    Task(String),
}
