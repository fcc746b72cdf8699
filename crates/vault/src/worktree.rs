//! The lifecycle of an order's worktree: create, re-create for a reissue, look up, remove, archive.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bootstrap::delete_copies;
use crate::error::{Result, VaultError, io_at};
use crate::git::{Git, ListedWorktree, list_worktrees, merge_base, resolve_commit, same_path};
use crate::ids::{validate_branch, validate_id};
use crate::inspect::{dirty_files, head_sha};
use crate::theater::Theater;

/// An order's checkout: its own directory on its own branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Worktree {
    pub order_id: String,
    pub path: PathBuf,
    pub branch: String,
    /// The mainline commit the branch started from (for an existing branch: its merge base
    /// with the mainline).
    pub base_sha: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Archived {
    pub tag: String,
    pub commit_sha: String,
}

impl Theater {
    /// Creates the order's worktree on a new branch from the mainline tip. Idempotent: if the
    /// worktree already exists on that branch it is returned unchanged. A branch that already
    /// exists without a worktree (one kept by `remove_worktree`) is checked out as it is.
    pub fn create_worktree(&self, order_id: &str, branch: &str) -> Result<Worktree> {
        self.check_order_branch(order_id, branch)?;
        if let Some(listed) = self.registered(order_id)? {
            return self.matching(order_id, branch, &listed);
        }
        let path = self.worktree_path(order_id);
        self.prepare_worktrees_dir()?;
        let branch_ref = format!("refs/heads/{branch}");
        let git = if resolve_commit(&self.repo, &branch_ref)?.is_some() {
            Git::new(&self.repo)
                .args(["worktree", "add", "--quiet", "--"])
                .arg(&path)
                .arg(branch)
        } else {
            Git::new(&self.repo)
                .args([
                    "worktree",
                    "add",
                    "--quiet",
                    "--no-track",
                    "-b",
                    branch,
                    "--",
                ])
                .arg(&path)
                .arg(self.mainline_sha()?)
        };
        let out = git.output()?;
        if !out.status.success() {
            // A concurrent call for the same order may have won the race.
            return match self.registered(order_id)? {
                Some(listed) => self.matching(order_id, branch, &listed),
                None => Err(git.failure(&out)),
            };
        }
        self.worktree(order_id)
    }

    /// For a reissued order: discards any previous worktree for the order (force) and
    /// re-creates it with the branch reset to the current mainline tip, so a new attempt
    /// never inherits half-done work.
    pub fn recreate_worktree(&self, order_id: &str, branch: &str) -> Result<Worktree> {
        self.check_order_branch(order_id, branch)?;
        let path = self.worktree_path(order_id);
        if self.registered(order_id)?.is_some() {
            Git::new(&self.repo)
                .args(["worktree", "remove", "--force", "--"])
                .arg(&path)
                .run()?;
        } else if fs::symlink_metadata(&path).is_ok() {
            // A leftover directory at the vault's own path for this order.
            remove_path(&path)?;
        }
        self.prepare_worktrees_dir()?;
        let base_sha = self.mainline_sha()?;
        Git::new(&self.repo)
            .args([
                "worktree",
                "add",
                "--quiet",
                "--no-track",
                "-B",
                branch,
                "--",
            ])
            .arg(&path)
            .arg(&base_sha)
            .run()?;
        Ok(Worktree {
            order_id: order_id.to_owned(),
            path,
            branch: branch.to_owned(),
            base_sha,
        })
    }

    /// The existing worktree for an order (NotFound if none), read from
    /// `git worktree list --porcelain`.
    pub fn worktree(&self, order_id: &str) -> Result<Worktree> {
        validate_id(order_id)?;
        let listed = self
            .registered(order_id)?
            .ok_or_else(|| VaultError::NotFound(format!("no worktree for order {order_id}")))?;
        self.describe(order_id, &listed)
    }

    /// Safe removal (`git worktree remove`, then prune). Refuses with Dirty when the worktree
    /// has uncommitted changes unless `force`. The branch is kept (history stays inspectable).
    /// NotFound when the order has no worktree.
    pub fn remove_worktree(&self, order_id: &str, force: bool) -> Result<()> {
        validate_id(order_id)?;
        let listed = self
            .registered(order_id)?
            .ok_or_else(|| VaultError::NotFound(format!("no worktree for order {order_id}")))?;
        if !force {
            refuse_dirty(&listed.path)?;
        }
        self.remove_registered(&listed.path, force)
    }

    /// Tags the branch tip `archive/order_<id>` and removes the (clean) worktree; Dirty if
    /// uncommitted changes. A repeated call after success returns the existing tag. The tag
    /// always names the latest archived attempt of the order.
    pub fn archive(&self, order_id: &str) -> Result<Archived> {
        validate_id(order_id)?;
        let tag = format!("archive/{}", Self::branch_for(order_id));
        let tag_ref = format!("refs/tags/{tag}");
        let Some(listed) = self.registered(order_id)? else {
            return match resolve_commit(&self.repo, &tag_ref)? {
                Some(commit_sha) => Ok(Archived { tag, commit_sha }),
                None => Err(VaultError::NotFound(format!(
                    "no worktree for order {order_id}"
                ))),
            };
        };
        refuse_dirty(&listed.path)?;
        let commit_sha = head_sha(&listed.path)?;
        Git::new(&self.repo)
            .args([
                "update-ref",
                "-m",
                "garrison: archive order",
                &tag_ref,
                &commit_sha,
            ])
            .run()?;
        self.remove_registered(&listed.path, false)?;
        Ok(Archived { tag, commit_sha })
    }

    fn check_order_branch(&self, order_id: &str, branch: &str) -> Result<()> {
        validate_id(order_id)?;
        validate_branch(branch)?;
        if branch == self.mainline {
            return Err(VaultError::InvalidId(format!(
                "branch {branch:?} is the theater's mainline; an order needs its own branch"
            )));
        }
        Ok(())
    }

    /// The live registration of the order's worktree path, if any. Registrations whose
    /// directory has vanished are pruned first so they do not block a new one.
    pub(crate) fn registered(&self, order_id: &str) -> Result<Option<ListedWorktree>> {
        let path = self.worktree_path(order_id);
        let list = list_worktrees(&self.repo)?;
        if list.iter().any(|w| w.prunable) {
            Git::new(&self.repo).args(["worktree", "prune"]).run()?;
        }
        Ok(list
            .into_iter()
            .find(|w| !w.prunable && same_path(&w.path, &path)))
    }

    fn matching(&self, order_id: &str, branch: &str, listed: &ListedWorktree) -> Result<Worktree> {
        let wt = self.describe(order_id, listed)?;
        if wt.branch == branch {
            Ok(wt)
        } else {
            Err(VaultError::InvalidId(format!(
                "order {order_id} already has a worktree on branch {:?}, not {branch:?}",
                wt.branch
            )))
        }
    }

    fn describe(&self, order_id: &str, listed: &ListedWorktree) -> Result<Worktree> {
        let not_on_branch = || {
            VaultError::NotFound(format!(
                "the worktree of order {order_id} at {} is not on a branch",
                listed.path.display()
            ))
        };
        let branch = listed
            .branch
            .as_deref()
            .and_then(|b| b.strip_prefix("refs/heads/"))
            .ok_or_else(not_on_branch)?;
        let head = listed.head.as_deref().ok_or_else(not_on_branch)?;
        let mainline = self.mainline_sha()?;
        let base_sha = merge_base(&self.repo, &mainline, head)?.ok_or_else(|| {
            VaultError::NotFound(format!(
                "branch {branch} shares no history with mainline {}",
                self.mainline
            ))
        })?;
        Ok(Worktree {
            order_id: order_id.to_owned(),
            path: self.worktree_path(order_id),
            branch: branch.to_owned(),
            base_sha,
        })
    }

    fn prepare_worktrees_dir(&self) -> Result<()> {
        fs::create_dir_all(&self.worktrees).map_err(io_at("creating", &self.worktrees))
    }

    fn remove_registered(&self, path: &Path, force: bool) -> Result<()> {
        let mut git = Git::new(&self.repo).args(["worktree", "remove"]);
        if force {
            git = git.arg("--force");
        } else {
            // Copied files are left out of our dirty check but would make git refuse.
            delete_copies(path)?;
        }
        git.arg("--").arg(path).run()?;
        Git::new(&self.repo).args(["worktree", "prune"]).run()?;
        Ok(())
    }
}

fn refuse_dirty(path: &Path) -> Result<()> {
    let files = dirty_files(path)?;
    if files.is_empty() {
        Ok(())
    } else {
        Err(VaultError::Dirty {
            path: path.to_path_buf(),
            files,
        })
    }
}

fn remove_path(path: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(path).map_err(io_at("reading", path))?;
    if meta.is_dir() {
        fs::remove_dir_all(path).map_err(io_at("removing", path))
    } else {
        fs::remove_file(path).map_err(io_at("removing", path))
    }
}
