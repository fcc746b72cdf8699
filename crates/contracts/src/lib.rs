//! Contract types for the five OpenClaw contracts, with validation. Pure: no I/O, no async.
//!
//! Each payload type validates into a verdict carrying the contract's code and a
//! human reason; `garrison validate` is a thin shell over [`validate`].

pub mod appleseed;
pub mod canonical;
mod check;
pub mod go_duration;
pub mod ironclaw;
pub mod js_json;
pub mod locks;
pub mod milestone;
pub mod openclawssy;
pub mod secrets;
pub mod signature;
pub mod task;
pub mod validate;
pub mod values;
pub mod verdict;
pub mod workflow;

pub use canonical::{CanonicalError, canonicalize};
pub use check::{is_run_id, is_task_id, parse_timestamp, semver_major};
pub use signature::{sign, verify};
pub use validate::{Kind, UnknownKind, validate};
pub use verdict::{Code, Verdict, Violation};

#[cfg(test)]
mod test_support;
