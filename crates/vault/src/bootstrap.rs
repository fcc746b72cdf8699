//! Making a fresh worktree usable: copying untracked files (such as `.env`) from the theater
//! repository and running a setup command.
//!
//! Copied files are listed in the worktree's private git directory, so `commit_all` never
//! commits them and `dirty_files` does not report them, whatever the repository's `.gitignore`
//! says. Git's own exclude file cannot do this: it is shared with the main checkout.

use std::fs;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::atomic::{copy_atomic, write_atomic};
use crate::error::{Result, VaultError, io_at, tail};
use crate::git::{Git, LOCATION_ENV, same_path};
use crate::ids::{validate_id, validate_relative_path};
use crate::inspect::checkout;
use crate::theater::Theater;
use crate::worktree::Worktree;

const COPIES_FILE: &str = "garrison-copied-files";

impl Theater {
    /// Copies the listed untracked files (relative to the theater repo, e.g. ".env") into the
    /// worktree if they exist (missing ones are skipped and returned), then runs `setup`
    /// (program + args) in the worktree when given; a failing setup is an `Io` error carrying
    /// its output tail. A listed path that is tracked in the worktree is refused.
    pub fn bootstrap(
        &self,
        wt: &Worktree,
        copy: &[String],
        setup: Option<&[String]>,
    ) -> Result<Vec<String>> {
        validate_id(&wt.order_id)?;
        let listed = self.registered(&wt.order_id)?.ok_or_else(|| {
            VaultError::NotFound(format!("no worktree for order {}", wt.order_id))
        })?;
        if !same_path(&wt.path, &listed.path) {
            return Err(VaultError::InvalidId(format!(
                "{} is not the worktree of order {}",
                wt.path.display(),
                wt.order_id
            )));
        }
        let co = checkout(&listed.path)?;
        for path in copy {
            validate_relative_path(path)?;
        }

        // A bare repository's directory is git metadata, not files to copy.
        let bare = self.is_bare()?;
        let mut missing = Vec::new();
        let mut sources = Vec::new();
        for path in copy {
            let src = self.repo.join(path);
            let meta = match fs::metadata(&src) {
                _ if bare => None,
                Ok(meta) => Some(meta),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_at("reading", &src)(e)),
            };
            let Some(meta) = meta else {
                missing.push(path.clone());
                continue;
            };
            if !meta.is_file() {
                let e = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
                return Err(io_at("copying", &src)(e));
            }
            if is_tracked(&co.top, path)? {
                return Err(VaultError::InvalidId(format!(
                    "{path:?} is tracked on branch {}; only untracked files are copied",
                    wt.branch
                )));
            }
            sources.push((path.clone(), src));
        }

        // Listed before copying, so a crash cannot leave an unlisted secret behind.
        let mut listed_copies = copied_files(&co.git_dir)?;
        for (path, _) in &sources {
            if !listed_copies.contains(path) {
                listed_copies.push(path.clone());
            }
        }
        let mut text = listed_copies.join("\n");
        text.push('\n');
        write_atomic(&co.git_dir.join(COPIES_FILE), text.as_bytes())?;

        for (path, src) in &sources {
            let dest = co.top.join(path);
            make_parents(&co.top, Path::new(path))?;
            copy_atomic(src, &dest)?;
        }

        if let Some(command) = setup {
            run_setup(&co.top, command)?;
        }
        Ok(missing)
    }
}

/// The files `bootstrap` copied into the checkout whose git directory is `git_dir`.
pub(crate) fn copied_files(git_dir: &Path) -> Result<Vec<String>> {
    let list = git_dir.join(COPIES_FILE);
    match fs::read_to_string(&list) {
        Ok(text) => Ok(text
            .lines()
            .filter(|line| validate_relative_path(line).is_ok())
            .map(str::to_owned)
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_at("reading", &list)(e)),
    }
}

/// Deletes the copies `bootstrap` made (the originals stay in the theater repository).
pub(crate) fn delete_copies(worktree: &Path) -> Result<()> {
    let co = checkout(worktree)?;
    for path in copied_files(&co.git_dir)? {
        let file = co.top.join(&path);
        match fs::remove_file(&file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_at("removing", &file)(e));
            }
            _ => {}
        }
    }
    Ok(())
}

fn is_tracked(top: &Path, path: &str) -> Result<bool> {
    let out = Git::new(top)
        .args(["ls-files", "-z", "--"])
        .arg(format!(":(literal){path}"))
        .run()?;
    Ok(!out.is_empty())
}

/// Creates the directories leading to `rel` inside `top`, refusing to pass through a symlink:
/// a committed link could otherwise send a copied secret outside the worktree.
fn make_parents(top: &Path, rel: &Path) -> Result<()> {
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    let mut dir = top.to_path_buf();
    for component in parent.components() {
        dir.push(component);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                let e = io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "is a symlink or file, not a directory",
                );
                return Err(io_at("copying into", &dir)(e));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&dir).map_err(io_at("creating", &dir))?;
            }
            Err(e) => return Err(io_at("reading", &dir)(e)),
        }
    }
    Ok(())
}

fn run_setup(dir: &Path, command: &[String]) -> Result<()> {
    let Some((program, args)) = command.split_first() else {
        return Ok(());
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for key in LOCATION_ENV {
        cmd.env_remove(key);
    }
    let shown = command.join(" ");
    let out = cmd
        .output()
        .map_err(io_at(&format!("running setup `{shown}` in"), dir))?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Err(VaultError::Io(io::Error::other(format!(
        "setup `{shown}` failed in {} ({}): {}",
        dir.display(),
        out.status,
        tail(&text)
    ))))
}
