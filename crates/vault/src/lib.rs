//! The vault owns git for Garrison: theater repositories, one worktree and branch per order,
//! the operational files an order starts with, commits of a worker's output, and the
//! all-or-nothing promotion of an order's work into the theater's mainline.
//!
//! Everything shells out to the `git` CLI synchronously; async callers run it on a blocking
//! thread. Ids and paths are checked before they reach a path or a git argument.

mod atomic;
mod bootstrap;
mod commit;
mod error;
mod git;
mod ids;
mod inspect;
mod prepare;
mod promote;
mod theater;
mod worktree;

pub use commit::commit_all;
pub use error::{Result, VaultError};
pub use ids::validate_id;
pub use inspect::{
    PathChange, changed_files, changes, commits_since, dirty_files, head_sha, last_commit_unix,
};
pub use prepare::{PrepareFiles, prepare};
pub use promote::Promotion;
pub use theater::Theater;
pub use worktree::{Archived, Worktree};

/// Operational files a worker writes at the worktree root (contract paths).
pub const RECORD_FILES: &[&str] = &[
    "order.json",
    "task.md",
    "state.json",
    "assignment.json",
    "result.json",
    "aar.json",
    "worklog.md",
    "outputs",
];
