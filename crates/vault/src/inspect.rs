//! Read-only questions about a worktree: is it dirty, what is HEAD, when was the last commit.

use std::fs;
use std::path::{Path, PathBuf};

use crate::bootstrap::copied_files;
use crate::error::{Result, VaultError, io_at};
use crate::git::{Git, resolve_commit};
use crate::ids::validate_rev;

/// A caller-given path confirmed to be the root of a git checkout.
pub(crate) struct Checkout {
    pub top: PathBuf,
    /// The checkout's own git directory (`.git/worktrees/<name>` for a linked worktree).
    pub git_dir: PathBuf,
}

/// Confirms `path` is a checkout root before any git command runs there: inside some other
/// repository (say, a home directory under git) a commit would otherwise land in the wrong place.
pub(crate) fn checkout(path: &Path) -> Result<Checkout> {
    let real = fs::canonicalize(path).map_err(io_at("resolving", path))?;
    let git = Git::new(&real).args(["rev-parse", "--show-toplevel", "--absolute-git-dir"]);
    let out = git.output()?;
    if !out.status.success() {
        return Err(VaultError::NotARepo(path.to_path_buf()));
    }
    let text = out.stdout_text();
    let mut lines = text.lines();
    let (Some(top), Some(git_dir)) = (lines.next(), lines.next()) else {
        return Err(git.failure(&out));
    };
    let top = PathBuf::from(top);
    if fs::canonicalize(&top).map_err(io_at("resolving", &top))? != real {
        return Err(VaultError::NotARepo(path.to_path_buf()));
    }
    Ok(Checkout {
        top: real,
        git_dir: PathBuf::from(git_dir),
    })
}

/// Uncommitted paths (`git status --porcelain`), empty when clean. Untracked files count;
/// ignored files and files copied in by `Theater::bootstrap` do not.
pub fn dirty_files(worktree: &Path) -> Result<Vec<String>> {
    let co = checkout(worktree)?;
    let copied = copied_files(&co.git_dir)?;
    let out = Git::new(&co.top)
        .args([
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--ignore-submodules=none",
        ])
        // A status check must not take the index lock a worker's own git may need.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .run()?;
    let text = String::from_utf8_lossy(&out);
    let mut fields = text.split('\0');
    let mut files = Vec::new();
    while let Some(entry) = fields.next() {
        let (Some(xy), Some(path)) = (entry.get(..2), entry.get(3..)) else {
            continue;
        };
        // A rename or copy is followed by its source path.
        if xy.contains(['R', 'C']) {
            fields.next();
        }
        if !copied.iter().any(|c| c == path) {
            files.push(path.to_owned());
        }
    }
    Ok(files)
}

pub fn head_sha(worktree: &Path) -> Result<String> {
    let co = checkout(worktree)?;
    resolve_commit(&co.top, "HEAD")?
        .ok_or_else(|| VaultError::NotFound(format!("no commit on HEAD in {}", worktree.display())))
}

/// Committer time (unix seconds) of HEAD in the worktree.
pub fn last_commit_unix(worktree: &Path) -> Result<i64> {
    let co = checkout(worktree)?;
    let git = Git::new(&co.top).args([
        "rev-list",
        "--max-count=1",
        "--no-commit-header",
        "--format=%ct",
        "HEAD",
        "--",
    ]);
    let text = git.text()?;
    text.trim().parse().map_err(|_| VaultError::Git {
        args: "git rev-list --format=%ct HEAD".to_owned(),
        status: "unexpected output".to_owned(),
        stderr: text.clone(),
    })
}

/// Number of commits on HEAD that are not on `base` (`git rev-list --count base..HEAD`).
pub fn commits_since(worktree: &Path, base: &str) -> Result<u64> {
    validate_rev(base)?;
    let co = checkout(worktree)?;
    let base_sha = resolve_commit(&co.top, base)?
        .ok_or_else(|| VaultError::NotFound(format!("commit {base}")))?;
    let git = Git::new(&co.top)
        .args(["rev-list", "--count"])
        .arg(format!("{base_sha}..HEAD"))
        .arg("--");
    let text = git.text()?;
    text.trim().parse().map_err(|_| VaultError::Git {
        args: "git rev-list --count".to_owned(),
        status: "unexpected output".to_owned(),
        stderr: text.clone(),
    })
}

/// How one path differs from a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathChange {
    Added(String),
    Modified(String),
    Deleted(String),
    /// A tracked file moved (git's rename detection, content mostly kept).
    Renamed {
        from: String,
        to: String,
    },
}

impl PathChange {
    /// The path as it is now (the old one for a deletion).
    pub fn path(&self) -> &str {
        match self {
            PathChange::Added(p) | PathChange::Modified(p) | PathChange::Deleted(p) => p,
            PathChange::Renamed { to, .. } => to,
        }
    }

    /// `added`, `modified`, `deleted` or `renamed`.
    pub fn action(&self) -> &'static str {
        match self {
            PathChange::Added(_) => "added",
            PathChange::Modified(_) => "modified",
            PathChange::Deleted(_) => "deleted",
            PathChange::Renamed { .. } => "renamed",
        }
    }
}

/// What differs in the worktree from commit `base`: what the order committed
/// since `base` plus what it has not committed yet (untracked files are
/// added; files copied in by `Theater::bootstrap` left out), sorted by path.
pub fn changes(worktree: &Path, base: &str) -> Result<Vec<PathChange>> {
    validate_rev(base)?;
    let co = checkout(worktree)?;
    let base_sha = resolve_commit(&co.top, base)?
        .ok_or_else(|| VaultError::NotFound(format!("commit {base}")))?;
    let tracked = Git::new(&co.top)
        .args(["diff", "--name-status", "-z", "-M", &base_sha, "--"])
        .env("GIT_OPTIONAL_LOCKS", "0")
        .run()?;
    let untracked = Git::new(&co.top)
        .args(["ls-files", "-z", "--others", "--exclude-standard"])
        .run()?;
    let copied = copied_files(&co.git_dir)?;
    let text = String::from_utf8_lossy(&tracked);
    let mut fields = text.split('\0').filter(|f| !f.is_empty());
    let mut out = Vec::new();
    while let Some(status) = fields.next() {
        let Some(path) = fields.next().map(str::to_owned) else {
            break;
        };
        out.push(match status.as_bytes().first() {
            Some(b'A') => PathChange::Added(path),
            Some(b'D') => PathChange::Deleted(path),
            Some(b'R' | b'C') => match fields.next() {
                Some(to) => PathChange::Renamed {
                    from: path,
                    to: to.to_owned(),
                },
                None => PathChange::Added(path),
            },
            _ => PathChange::Modified(path),
        });
    }
    out.extend(
        String::from_utf8_lossy(&untracked)
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(|p| PathChange::Added(p.to_owned())),
    );
    out.retain(|c| !copied.iter().any(|p| p == c.path()));
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out.dedup();
    Ok(out)
}

/// Every path [`changes`] touches (both sides of a rename), sorted: what an
/// order's lock scope must cover.
pub fn changed_files(worktree: &Path, base: &str) -> Result<Vec<String>> {
    let mut files: Vec<String> = changes(worktree, base)?
        .into_iter()
        .flat_map(|c| match c {
            PathChange::Renamed { from, to } => vec![from, to],
            other => vec![other.path().to_owned()],
        })
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}
