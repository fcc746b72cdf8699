//! The services (CO, observer, integration, duty officer, sentinel, learning, milestones, scheduler):
//! logic over the ledger, vault and agent crates.
//!
//! Not yet implemented: the orchestration, milestone and learning issues build them.
