//! Appleseed: the local learning state (appleseed-event-contract.md).
//!
//! Pure file I/O under one state dir — no ledger, no network, no model.
//! Raw runtime event envelopes are stored first (`runtime_event_envelopes.jsonl`);
//! only `session_feedback` is projected (`projected_feedback.jsonl`); operator
//! reports land under `reports/`. A payload is validated as a whole before
//! anything is written, so a rejection leaves every file untouched.

mod evolution;
mod gate;
mod governance;
mod ids;
mod import;
mod index;
mod ingest;
mod projection;
mod reports;
mod store;

pub mod learning;

use std::path::PathBuf;

use garrison_contracts::appleseed::AppleseedError;

pub use evolution::{Metrics, PROMPT_REVISION, Proposal, ROUTING, derive, task_type};
pub use gate::{BLOCKED, Evaluation, GATE_ID, GatePolicy, READY, REVIEW, evaluate};
pub use governance::{
    EVOLUTION_REPORT, GOVERNANCE_REPORT, Governance, OPERATOR_REVIEW, PROMOTION_ARTIFACT,
    WORKFLOW_HISTORY, WORKFLOW_STATE, render_governance_markdown,
};
pub use ids::{Clock, derived_id, format_timestamp};
pub use import::{ImportOutcome, InputKind};
pub use ingest::{IngestOutcome, Skipped};
pub use projection::{ProjectedFeedbackRecord, feedback_id};
pub use reports::{
    GATE_MIN_EVIDENCE, INSPECTION_REPORT, Inspection, LATEST_BUNDLE, LATEST_SESSION_REPORT,
    render_inspection_markdown, render_session_markdown,
};
pub use store::{ENVELOPES_FILE, EVENTS_FILE, PROJECTED_FILE, REPORTS_DIR, Store};

/// Why an Appleseed command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The payload broke the contract; nothing was written.
    #[error("rejected: {0}")]
    Rejected(#[from] AppleseedError),
    /// The payload is not one this command accepts; nothing was written.
    #[error("rejected: {0}")]
    Invalid(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A stored ledger line (not the last one) does not parse.
    #[error("{}: line {line} is corrupt: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

impl Error {
    /// Whether the input was refused (as opposed to the state dir failing).
    pub fn is_rejection(&self) -> bool {
        matches!(self, Error::Rejected(_) | Error::Invalid(_))
    }
}

/// One Appleseed state dir and the clock its generated values come from.
#[derive(Debug)]
pub struct Appleseed {
    store: Store,
    clock: Clock,
}

impl Appleseed {
    /// The state dir at `dir` (created on the first write, not before).
    pub fn open(dir: impl Into<PathBuf>) -> Appleseed {
        Appleseed {
            store: Store::new(dir),
            clock: Clock::System,
        }
    }

    /// Uses `clock` for generated timestamps and ids (tests pin it).
    pub fn with_clock(mut self, clock: Clock) -> Appleseed {
        self.clock = clock;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}
