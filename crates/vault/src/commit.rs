//! Committing whatever a worker left in its worktree.

use std::path::Path;

use crate::bootstrap::copied_files;
use crate::error::Result;
use crate::git::Git;
use crate::inspect::{checkout, head_sha};

/// `git add -A` and commit with `message` (no hooks) when anything changed; the new HEAD sha,
/// or None when clean. Files copied in by `Theater::bootstrap` (secrets such as `.env`) are
/// never committed.
pub fn commit_all(worktree: &Path, message: &str) -> Result<Option<String>> {
    let co = checkout(worktree)?;
    let copied = copied_files(&co.git_dir)?;
    Git::new(&co.top)
        .args(["add", "-A", "--", "."])
        .args(copied.iter().map(|p| format!(":(exclude,literal){p}")))
        .run()?;
    if !copied.is_empty() {
        // Unstage copies a worker may have added itself.
        Git::new(&co.top)
            .args(["rm", "-q", "--cached", "--ignore-unmatch", "--"])
            .args(copied.iter().map(|p| format!(":(literal){p}")))
            .run()?;
    }
    let diff = Git::new(&co.top).args(["diff", "--cached", "--quiet"]);
    let out = diff.output()?;
    match out.code() {
        Some(0) => return Ok(None),
        Some(1) => {}
        _ => return Err(diff.failure(&out)),
    }
    Git::new(&co.top)
        .args([
            "commit",
            "-q",
            "--no-verify",
            "--allow-empty-message",
            "-m",
            message,
        ])
        .run()?;
    head_sha(&co.top).map(Some)
}
