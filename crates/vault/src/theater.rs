//! Opening (or creating) a theater repository and naming its order branches and worktrees.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Result, VaultError, io_at};
use crate::git::{Git, resolve_commit, zero_oid};
use crate::ids::validate_id;

/// A theater: one git repository whose mainline receives the work of its orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Theater {
    pub theater_id: String,
    /// The repository root, with symlinks resolved (git reports worktree paths that way).
    pub repo: PathBuf,
    /// The directory holding this theater's order worktrees, with symlinks resolved.
    pub worktrees: PathBuf,
    /// The branch HEAD pointed at when the theater was opened.
    pub mainline: String,
}

impl Theater {
    /// Opens `repo` as theater `theater_id`, creating it when absent: `git init -b main`,
    /// a README.md and an initial commit. An existing repository with an unborn HEAD gets an
    /// initial empty commit (the index and working tree are left alone). `mainline` is the
    /// branch HEAD points at; a detached HEAD is `NotARepo`, as is a path that is not a
    /// repository root and not an empty directory. `worktrees` is created if missing.
    pub fn open(theater_id: &str, repo: &Path, worktrees: &Path) -> Result<Theater> {
        validate_id(theater_id)?;
        let repo = std::path::absolute(repo).map_err(io_at("resolving", repo))?;
        match fs::metadata(&repo) {
            Ok(meta) if !meta.is_dir() => return Err(VaultError::NotARepo(repo)),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(&repo).map_err(io_at("creating", &repo))?;
            }
            Err(e) => return Err(io_at("reading", &repo)(e)),
        }
        let repo = fs::canonicalize(&repo).map_err(io_at("resolving", &repo))?;

        if !is_repo_root(&repo)? {
            let empty = fs::read_dir(&repo)
                .map_err(io_at("reading", &repo))?
                .next()
                .is_none();
            if !empty {
                return Err(VaultError::NotARepo(repo));
            }
            init_repo(&repo, theater_id)?;
        }

        let head = Git::new(&repo)
            .args(["symbolic-ref", "-q", "HEAD"])
            .output()?;
        // Not `--short`: that can answer `heads/main` when a tag is also called `main`.
        let full = head.stdout_text();
        let mainline = match full.strip_prefix("refs/heads/") {
            Some(name) if head.status.success() => name.to_owned(),
            _ => return Err(VaultError::NotARepo(repo)),
        };
        if resolve_commit(&repo, "HEAD")?.is_none() {
            initial_empty_commit(&repo, &mainline, theater_id)?;
        }

        fs::create_dir_all(worktrees).map_err(io_at("creating", worktrees))?;
        let worktrees = fs::canonicalize(worktrees).map_err(io_at("resolving", worktrees))?;
        Ok(Theater {
            theater_id: theater_id.to_owned(),
            repo,
            worktrees,
            mainline,
        })
    }

    /// `<worktrees>/order_<order_id>`. The id is not checked here; every method that uses
    /// the path checks it first.
    pub fn worktree_path(&self, order_id: &str) -> PathBuf {
        self.worktrees.join(Self::branch_for(order_id))
    }

    /// The default branch of an order: `order_<order_id>`.
    pub fn branch_for(order_id: &str) -> String {
        format!("order_{order_id}")
    }

    pub fn mainline_sha(&self) -> Result<String> {
        resolve_commit(&self.repo, &self.mainline_ref())?
            .ok_or_else(|| VaultError::NotFound(format!("mainline branch {}", self.mainline)))
    }

    pub(crate) fn mainline_ref(&self) -> String {
        format!("refs/heads/{}", self.mainline)
    }

    /// The repository's git directory (for a non-bare repository, `<repo>/.git`).
    pub(crate) fn git_dir(&self) -> Result<PathBuf> {
        let dir = Git::new(&self.repo)
            .args(["rev-parse", "--absolute-git-dir"])
            .text()?;
        Ok(PathBuf::from(dir))
    }

    pub(crate) fn is_bare(&self) -> Result<bool> {
        let bare = Git::new(&self.repo)
            .args(["rev-parse", "--is-bare-repository"])
            .text()?;
        Ok(bare == "true")
    }
}

/// Whether `dir` itself is a repository (its root or a bare repository), not merely inside one.
fn is_repo_root(dir: &Path) -> Result<bool> {
    // The ceiling stops discovery at `dir`, so a parent repository does not count.
    let ceiling = dir.parent().unwrap_or(dir);
    let git = Git::new(dir)
        .args(["rev-parse", "--absolute-git-dir"])
        .env("GIT_CEILING_DIRECTORIES", ceiling);
    let out = git.output()?;
    if out.status.success() {
        Ok(true)
    } else if out.stderr.contains("not a git repository") {
        Ok(false)
    } else {
        // e.g. "dubious ownership": say so rather than calling it "not a repository".
        Err(git.failure(&out))
    }
}

fn init_repo(repo: &Path, theater_id: &str) -> Result<()> {
    Git::new(repo).args(["init", "-q", "-b", "main"]).run()?;
    let readme = repo.join("README.md");
    let text = format!("# {theater_id}\n\nTheater repository managed by Garrison.\n");
    fs::write(&readme, text).map_err(io_at("writing", &readme))?;
    Git::new(repo).args(["add", "--", "README.md"]).run()?;
    Git::new(repo)
        .args(["commit", "-q", "--no-verify", "-m"])
        .arg(format!("Initialize theater {theater_id}"))
        .run()?;
    Ok(())
}

/// Gives an unborn branch a first commit with an empty tree, without touching the index, so
/// files the user has staged stay staged.
fn initial_empty_commit(repo: &Path, branch: &str, theater_id: &str) -> Result<()> {
    let tree = Git::new(repo)
        .args(["hash-object", "-t", "tree", "-w", "--stdin"])
        .input(Vec::new())
        .text()?;
    let commit = Git::new(repo)
        .args(["commit-tree", &tree, "-m"])
        .arg(format!("Initialize theater {theater_id}"))
        .text()?;
    Git::new(repo)
        .args(["update-ref", "-m", "garrison: initialize theater"])
        .arg(format!("refs/heads/{branch}"))
        .args([&commit, &zero_oid(&commit)])
        .run()?;
    Ok(())
}
