//! The services (CO, observer, integration, duty officer, sentinel, learning, milestones, scheduler):
//! logic over the ledger, vault and agent crates.
//!
//! Built so far: `openclawssy` (the `/v1` run service, chat sessions, agent
//! config and secret store), `appleseed` (the local learning state: runtime event ingest,
//! projection, openclaw-import and reports), `milestones` (the outbound
//! milestone emitter) and `http_client` (the plain-HTTP client both the CLI and
//! the emitter use). The orchestration issues build the rest.

pub mod appleseed;
pub mod http_client;
pub mod learning;
pub mod metrics;
pub mod milestones;
pub mod openclawssy;
pub mod orchestration;
mod values;
