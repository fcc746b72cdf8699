//! Contract types for the five OpenClaw contracts, with validation. Pure: no I/O, no async.
//!
//! Each payload type validates into a verdict carrying the contract's code and a
//! human reason; `garrison validate` is a thin shell over [`validate`].

pub mod ironclaw;
pub mod task;
