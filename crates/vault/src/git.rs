//! Runs the `git` CLI so that Garrison's commands behave the same on every machine: a fixed
//! identity, no signing, no hooks, no prompts, C locale, and none of the caller's `GIT_*`
//! location variables.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use crate::error::{Result, VaultError, io_at, tail};

/// Overrides on every call. Hooks of the user's repository must not run on Garrison's own
/// commits and merges, and output must parse regardless of colour or signature settings.
const CONFIG: &[&str] = &[
    "user.name=Garrison",
    "user.email=garrison@localhost",
    "user.useConfigOnly=false",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "merge.verifySignatures=false",
    "core.hooksPath=/dev/null",
    "color.ui=false",
    "log.showSignature=false",
    "core.quotePath=false",
];

/// Variables that would point git at another repository, index or object store, or pin
/// commit dates (they are set when Garrison itself runs under a git hook).
pub(crate) const LOCATION_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CEILING_DIRECTORIES",
    "GIT_QUARANTINE_PATH",
    "GIT_SHALLOW_FILE",
];

/// Identity as environment too: `author.*`/`committer.*` config would otherwise win over `user.*`.
const IDENTITY_ENV: &[(&str, &str)] = &[
    ("GIT_AUTHOR_NAME", "Garrison"),
    ("GIT_AUTHOR_EMAIL", "garrison@localhost"),
    ("GIT_COMMITTER_NAME", "Garrison"),
    ("GIT_COMMITTER_EMAIL", "garrison@localhost"),
];

/// One git invocation, built like `std::process::Command`.
pub(crate) struct Git {
    dir: PathBuf,
    args: Vec<OsString>,
    env: Vec<(&'static str, OsString)>,
    input: Option<Vec<u8>>,
}

pub(crate) struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim_end().to_owned()
    }
}

impl Git {
    /// A git command run with `dir` as its working directory.
    pub fn new(dir: &Path) -> Self {
        Git {
            dir: dir.to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            input: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    pub fn env(mut self, key: &'static str, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key, value.as_ref().to_os_string()));
        self
    }

    pub fn input(mut self, data: Vec<u8>) -> Self {
        self.input = Some(data);
        self
    }

    /// Runs the command; only a failure to start it is an error.
    pub fn output(&self) -> Result<Output> {
        let mut cmd = Command::new("git");
        cmd.current_dir(&self.dir);
        for kv in CONFIG {
            cmd.args(["-c", kv]);
        }
        cmd.args(&self.args);
        for key in LOCATION_ENV {
            cmd.env_remove(key);
        }
        cmd.env_remove("GIT_AUTHOR_DATE")
            .env_remove("GIT_COMMITTER_DATE")
            .envs(IDENTITY_ENV.iter().copied())
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_EDITOR", ":")
            .env("LC_ALL", "C");
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd.stdin(if self.input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

        let context = "running git in";
        let mut child = cmd.spawn().map_err(io_at(context, &self.dir))?;
        let stdin = child.stdin.take();
        // Feed stdin from another thread so a child that writes while reading cannot deadlock.
        let out = std::thread::scope(|scope| {
            if let (Some(mut pipe), Some(data)) = (stdin, self.input.as_deref()) {
                // A short write surfaces as the child's own error.
                scope.spawn(move || pipe.write_all(data));
            }
            child.wait_with_output()
        })
        .map_err(io_at(context, &self.dir))?;
        Ok(Output {
            status: out.status,
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs the command and fails on a non-zero exit.
    pub fn run(&self) -> Result<Vec<u8>> {
        let out = self.output()?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(self.failure(&out))
        }
    }

    /// Like `run`, returning stdout as text without the trailing newline.
    pub fn text(&self) -> Result<String> {
        let out = self.run()?;
        Ok(String::from_utf8_lossy(&out).trim_end().to_owned())
    }

    pub fn failure(&self, out: &Output) -> VaultError {
        let detail = if out.stderr.trim().is_empty() {
            String::from_utf8_lossy(&out.stdout).into_owned()
        } else {
            out.stderr.clone()
        };
        VaultError::Git {
            args: self.describe(),
            status: out.status.to_string(),
            stderr: tail(&detail),
        }
    }

    fn describe(&self) -> String {
        let mut s = String::from("git");
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }
}

/// Resolves a revision to a commit sha; `None` when it does not name a commit.
pub(crate) fn resolve_commit(dir: &Path, rev: &str) -> Result<Option<String>> {
    let git = Git::new(dir).args(["rev-parse", "-q", "--verify", "--end-of-options"]);
    let git = git.arg(format!("{rev}^{{commit}}"));
    let out = git.output()?;
    match out.code() {
        Some(0) => Ok(Some(out.stdout_text())),
        Some(1) => Ok(None),
        _ => Err(git.failure(&out)),
    }
}

/// The best common ancestor of two commits, `None` for unrelated histories.
pub(crate) fn merge_base(dir: &Path, a: &str, b: &str) -> Result<Option<String>> {
    let git = Git::new(dir).args(["merge-base", "--end-of-options", a, b]);
    let out = git.output()?;
    match out.code() {
        Some(0) => Ok(Some(out.stdout_text())),
        Some(1) => Ok(None),
        _ => Err(git.failure(&out)),
    }
}

/// The all-zero object id of the repository's hash length (40 for SHA-1, 64 for SHA-256).
pub(crate) fn zero_oid(like: &str) -> String {
    "0".repeat(like.len())
}

/// One entry of `git worktree list --porcelain -z`.
#[derive(Debug, Clone)]
pub(crate) struct ListedWorktree {
    pub path: PathBuf,
    pub head: Option<String>,
    /// Full ref name, e.g. `refs/heads/order_1`; `None` when detached or bare.
    pub branch: Option<String>,
    /// Registered but its directory is gone.
    pub prunable: bool,
}

pub(crate) fn list_worktrees(repo: &Path) -> Result<Vec<ListedWorktree>> {
    let out = Git::new(repo)
        .args(["worktree", "list", "--porcelain", "-z"])
        .run()?;
    let text = String::from_utf8_lossy(&out);
    let mut list = Vec::new();
    let mut current: Option<ListedWorktree> = None;
    for field in text.split('\0') {
        if field.is_empty() {
            list.extend(current.take());
            continue;
        }
        let (key, value) = field.split_once(' ').unwrap_or((field, ""));
        match (key, current.as_mut()) {
            ("worktree", _) => {
                list.extend(current.take());
                current = Some(ListedWorktree {
                    path: PathBuf::from(value),
                    head: None,
                    branch: None,
                    prunable: false,
                });
            }
            ("HEAD", Some(wt)) => wt.head = Some(value.to_owned()),
            ("branch", Some(wt)) => wt.branch = Some(value.to_owned()),
            ("prunable", Some(wt)) => wt.prunable = true,
            _ => {}
        }
    }
    list.extend(current);
    Ok(list)
}

/// Whether two paths name the same directory, resolving symlinks where they exist.
pub(crate) fn same_path(a: &Path, b: &Path) -> bool {
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    a == b || real(a) == real(b)
}
