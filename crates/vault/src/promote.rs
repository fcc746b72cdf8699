//! Promotion of an order's committed work into the theater's mainline, all or nothing.
//!
//! The merge is computed entirely in the object store (`git merge-tree`), so a conflict
//! changes nothing anywhere; only a clean result moves the mainline, by fast-forward of the
//! checkout that has it, or by compare-and-swap of the ref when none does.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::RECORD_FILES;
use crate::error::{Result, VaultError, tail};
use crate::git::{Git, list_worktrees, merge_base, resolve_commit, zero_oid};
use crate::ids::validate_id;
use crate::theater::Theater;

/// Recomputations allowed when the mainline moves under a promotion.
const ATTEMPTS: usize = 3;

/// What `git merge --ff-only` says (C locale) when the checkout's state blocks it.
const BUSY_SIGNS: &[&str] = &[
    "would be overwritten",
    "would be removed",
    "unmerged",
    "not concluded",
    "needs merge",
    "index.lock",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Promotion {
    Merged {
        commit_sha: String,
        files: Vec<String>,
    },
    Conflict {
        paths: Vec<String>,
    },
}

enum Advance {
    Done,
    Moved,
}

impl Theater {
    /// Promotes the order's committed work into the mainline without ever leaving anything
    /// half-merged:
    ///  1. On top of the order branch tip, a commit moves the RECORD_FILES paths the order
    ///     added or changed to `.garrison/orders/<order_id>/<same path>` (built in a temporary
    ///     index, never touching the worktree), so the records of many orders never collide.
    ///     Where the mainline already had a file at such a path, it keeps its version.
    ///  2. `git merge-tree` against the mainline tip: conflicts → `Promotion::Conflict`, and
    ///     nothing changed anywhere.
    ///  3. Otherwise a merge commit (mainline tip, records commit) becomes the new mainline:
    ///     by `git merge --ff-only` in the checkout that has the mainline checked out (local
    ///     changes in the way → MainlineBusy, mainline untouched), else by compare-and-swap
    ///     of the ref. `files` are the paths that changed against the old tip.
    ///
    /// When the mainline already holds everything the order has (a repeated promotion), it
    /// is left as it is and `commit_sha` is its tip, with no files.
    pub fn promote(&self, order_id: &str, message: &str) -> Result<Promotion> {
        validate_id(order_id)?;
        let branch = match self.worktree(order_id) {
            Ok(wt) => wt.branch,
            Err(VaultError::NotFound(_)) => Self::branch_for(order_id),
            Err(e) => return Err(e),
        };
        let branch_ref = format!("refs/heads/{branch}");
        for _ in 0..ATTEMPTS {
            let old = self.mainline_sha()?;
            let tip = resolve_commit(&self.repo, &branch_ref)?.ok_or_else(|| {
                VaultError::NotFound(format!("branch {branch} of order {order_id}"))
            })?;
            let base = merge_base(&self.repo, &old, &tip)?.ok_or_else(|| VaultError::Git {
                args: format!("git merge-base {old} {tip}"),
                status: "no common ancestor".to_owned(),
                stderr: format!("branch {branch} shares no history with {}", self.mainline),
            })?;
            let records = self.records_commit(order_id, &tip, &base)?;

            let merge = Git::new(&self.repo).args([
                "merge-tree",
                "--write-tree",
                "--name-only",
                "--no-messages",
                "-z",
                &old,
                &records,
            ]);
            let out = merge.output()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let mut fields = text.split('\0').filter(|f| !f.is_empty());
            let tree = fields.next();
            match out.code() {
                Some(0) => {}
                Some(1) => {
                    let mut paths: Vec<String> = Vec::new();
                    for path in fields {
                        if !paths.iter().any(|p| p == path) {
                            paths.push(path.to_owned());
                        }
                    }
                    return Ok(Promotion::Conflict { paths });
                }
                _ => return Err(merge.failure(&out)),
            }
            let tree = tree.ok_or_else(|| merge.failure(&out))?;
            let old_tree = Git::new(&self.repo)
                .args(["rev-parse", "--verify"])
                .arg(format!("{old}^{{tree}}"))
                .text()?;
            if tree == old_tree {
                return Ok(Promotion::Merged {
                    commit_sha: old,
                    files: Vec::new(),
                });
            }
            let merged = Git::new(&self.repo)
                .args([
                    "commit-tree",
                    tree,
                    "-p",
                    &old,
                    "-p",
                    &records,
                    "-m",
                    message,
                ])
                .text()?;
            match self.advance_mainline(&old, &merged)? {
                Advance::Moved => continue,
                Advance::Done => {
                    let files = Git::new(&self.repo)
                        .args(["diff-tree", "-r", "-z", "--name-only", "--no-renames"])
                        .args([&old, &merged])
                        .run()?;
                    let files = String::from_utf8_lossy(&files)
                        .split('\0')
                        .filter(|f| !f.is_empty())
                        .map(str::to_owned)
                        .collect();
                    return Ok(Promotion::Merged {
                        commit_sha: merged,
                        files,
                    });
                }
            }
        }
        Err(VaultError::MainlineBusy(format!(
            "{} kept moving while order {order_id} was being promoted; try again",
            self.mainline
        )))
    }

    /// The commit on top of `tip` that files the order's records under
    /// `.garrison/orders/<order_id>/`, or `tip` itself when there is nothing to move.
    /// Only record paths that differ from `base` move: a repository that tracks its own
    /// `outputs/` or `task.md` keeps them where they are.
    fn records_commit(&self, order_id: &str, tip: &str, base: &str) -> Result<String> {
        let at_base = record_entries(&self.repo, base)?;
        let at_base: HashMap<&str, &Entry> = at_base.iter().map(|e| (e.path.as_str(), e)).collect();
        let at_tip = record_entries(&self.repo, tip)?;
        let moved: Vec<&Entry> = at_tip
            .iter()
            .filter(|e| {
                at_base
                    .get(e.path.as_str())
                    .is_none_or(|b| !b.same_content(e))
            })
            .collect();
        if moved.is_empty() {
            return Ok(tip.to_owned());
        }

        let prefix = format!(".garrison/orders/{order_id}/");
        let zero = zero_oid(tip);
        let mut input = String::new();
        for entry in &moved {
            let path = &entry.path;
            match at_base.get(path.as_str()) {
                Some(old) => input.push_str(&format!("{} {}\t{path}\0", old.mode, old.oid)),
                None => input.push_str(&format!("0 {zero}\t{path}\0")),
            }
            input.push_str(&format!("{} {}\t{prefix}{path}\0", entry.mode, entry.oid));
        }

        let index = TempIndex::new(&self.git_dir()?, order_id);
        let git = |args: &[&str]| {
            Git::new(&self.repo)
                .args(args)
                .env("GIT_INDEX_FILE", &index.0)
        };
        git(&["read-tree", tip]).run()?;
        git(&["update-index", "-z", "--index-info"])
            .input(input.into_bytes())
            .run()?;
        let tree = git(&["write-tree"]).text()?;
        Git::new(&self.repo)
            .args(["commit-tree", &tree, "-p", tip, "-m"])
            .arg(format!(
                "Garrison: file the records of order {order_id} under {prefix}"
            ))
            .text()
    }

    /// Moves the mainline from `old` to `new` (a descendant of `old`).
    fn advance_mainline(&self, old: &str, new: &str) -> Result<Advance> {
        let main_ref = self.mainline_ref();
        let holder = list_worktrees(&self.repo)?
            .into_iter()
            .find(|w| !w.prunable && w.branch.as_deref() == Some(main_ref.as_str()));
        let Some(holder) = holder else {
            let git = Git::new(&self.repo)
                .args(["update-ref", "-m", "garrison: promote order", &main_ref])
                .args([new, old]);
            let out = git.output()?;
            return if out.status.success() {
                Ok(Advance::Done)
            } else if self.mainline_sha()? != old {
                Ok(Advance::Moved)
            } else {
                Err(git.failure(&out))
            };
        };

        let git = Git::new(&holder.path).args([
            "merge",
            "--ff-only",
            "--no-edit",
            "--no-autostash",
            "--no-stat",
            "-q",
            new,
        ]);
        let out = git.output()?;
        if out.status.success() {
            Ok(Advance::Done)
        } else if self.mainline_sha()? != old {
            Ok(Advance::Moved)
        } else if BUSY_SIGNS.iter().any(|sign| out.stderr.contains(sign)) {
            Err(VaultError::MainlineBusy(format!(
                "{} is checked out at {} with local changes that block the fast-forward: {}",
                self.mainline,
                holder.path.display(),
                tail(&out.stderr)
            )))
        } else {
            Err(git.failure(&out))
        }
    }
}

/// One file (blob, symlink or submodule) of a tree.
struct Entry {
    mode: String,
    oid: String,
    path: String,
}

impl Entry {
    fn same_content(&self, other: &Entry) -> bool {
        self.mode == other.mode && self.oid == other.oid
    }
}

/// Every file under the root RECORD_FILES paths of `commit`.
fn record_entries(repo: &Path, commit: &str) -> Result<Vec<Entry>> {
    let out = Git::new(repo)
        .args(["ls-tree", "-r", "-z", "--full-tree", commit, "--"])
        .args(RECORD_FILES)
        .run()?;
    let text = String::from_utf8_lossy(&out);
    let mut entries = Vec::new();
    for line in text.split('\0').filter(|l| !l.is_empty()) {
        // `<mode> SP <type> SP <oid> TAB <path>`
        let Some((meta, path)) = line.split_once('\t') else {
            continue;
        };
        let mut meta = meta.split(' ');
        let (Some(mode), Some(_kind), Some(oid)) = (meta.next(), meta.next(), meta.next()) else {
            continue;
        };
        let root = path.split('/').next().unwrap_or(path);
        if RECORD_FILES.contains(&root) {
            entries.push(Entry {
                mode: mode.to_owned(),
                oid: oid.to_owned(),
                path: path.to_owned(),
            });
        }
    }
    Ok(entries)
}

/// A private index file in the git directory, deleted when dropped.
struct TempIndex(PathBuf);

impl TempIndex {
    fn new(git_dir: &Path, order_id: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "garrison-promote-{order_id}-{}-{n}.index",
            std::process::id()
        );
        TempIndex(git_dir.join(name))
    }
}

impl Drop for TempIndex {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
        let _ = fs::remove_file(self.0.with_extension("index.lock"));
    }
}
