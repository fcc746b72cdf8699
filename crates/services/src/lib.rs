//! The services (CO, observer, integration, duty officer, sentinel, learning, milestones, scheduler):
//! logic over the ledger, vault and agent crates.
//!
//! Built so far: `appleseed` (the local learning state: runtime event ingest,
//! projection, openclaw-import and reports). The orchestration and milestone
//! issues build the rest.

pub mod appleseed;
