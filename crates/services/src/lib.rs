//! The services (CO, observer, integration, duty officer, sentinel, learning, milestones, scheduler):
//! logic over the ledger, vault and agent crates.
//!
//! `openclawssy` (the `/v1` run service, chat sessions, agent config and
//! secret store), `appleseed` (the local learning state: runtime event ingest, projection,
//! openclaw-import and reports), `milestones` (the outbound milestone
//! emitter), `orchestration`, `learning`, `scheduler` (jobs that start agent
//! runs on `@every` intervals or at one-shot times), `http_client` (the
//! plain-HTTP client the CLI and the emitter use) and `in_flight` (a
//! worker's report committing while it claims its next order).

pub mod appleseed;
pub mod http_client;
pub mod in_flight;
pub mod learning;
pub mod metrics;
pub mod milestones;
pub mod openclawssy;
pub mod orchestration;
pub mod scheduler;
mod values;
