//! The vault's one error type; `code()` is the stable string surfaces report.

use std::path::{Path, PathBuf};

pub type Result<T> = std::result::Result<T, VaultError>;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// A git command failed: args, exit status, stderr tail.
    #[error("`{args}` failed ({status}): {stderr}")]
    Git {
        args: String,
        status: String,
        stderr: String,
    },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "{}: not a theater repository (it must be a git repository whose HEAD is on a branch)",
        .0.display()
    )]
    NotARepo(PathBuf),
    #[error("invalid id: {0}")]
    InvalidId(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{} has uncommitted changes: {}", path.display(), files.join(", "))]
    Dirty { path: PathBuf, files: Vec<String> },
    #[error("mainline busy: {0}")]
    MainlineBusy(String),
}

impl VaultError {
    pub fn code(&self) -> &'static str {
        match self {
            VaultError::Git { .. } => "GIT_FAILED",
            VaultError::Io(_) => "IO_ERROR",
            VaultError::NotARepo(_) => "NOT_A_REPO",
            VaultError::InvalidId(_) => "INVALID_ID",
            VaultError::NotFound(_) => "NOT_FOUND",
            VaultError::Dirty { .. } => "WORKTREE_DIRTY",
            VaultError::MainlineBusy(_) => "MAINLINE_BUSY",
        }
    }
}

/// Wraps an I/O error so its message names what was being done and to which path.
pub(crate) fn io_at(action: &str, path: &Path) -> impl FnOnce(std::io::Error) -> VaultError {
    let context = format!("{action} {}", path.display());
    move |e| VaultError::Io(std::io::Error::new(e.kind(), format!("{context}: {e}")))
}

/// Keeps the end of a command's output: that is where git and build tools say what went wrong.
pub(crate) fn tail(text: &str) -> String {
    const MAX_LINES: usize = 20;
    const MAX_CHARS: usize = 2000;
    let text = text.trim_end();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines[lines.len().saturating_sub(MAX_LINES)..].join("\n");
    if out.len() > MAX_CHARS {
        let mut cut = out.len() - MAX_CHARS;
        while !out.is_char_boundary(cut) {
            cut += 1;
        }
        out = format!("…{}", &out[cut..]);
    }
    out
}
