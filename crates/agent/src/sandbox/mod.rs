//! The sandbox every program a run starts lives in (`shell.exec` and
//! `command` units alike), built from what the kernel offers:
//!
//! - namespaces (mount, PID, IPC; network when it is off and Landlock cannot
//!   scope abstract sockets): the program
//!   sees only its own processes, denied paths are covered by empty
//!   read-only mounts, and its init's death takes every straggler with it.
//!   Root makes them directly; another user through a user namespace;
//! - no capabilities and no new privileges (setuid binaries gain nothing);
//! - Landlock: reads only of the workspace, a private temp dir and an
//!   allowlist of system paths (never the data dir); writes only to the
//!   workspace and the temp dir; no device nodes; signals and abstract
//!   unix sockets scoped to the sandbox (ABI 6+); no TCP without network;
//! - seccomp: no ptrace, mounts, keyrings, kernel loading, BPF, `io_uring`,
//!   new namespaces or device nodes; no sockets but `AF_UNIX` without network;
//! - limits per program: processes (a pids cgroup for root), CPU seconds,
//!   address space, file size; output is capped by the caller.
//!
//! Never silently weaker: a policy asking for more than the host gives is
//! `sandbox.unavailable`; a tool that needs the sandbox on a runtime
//! configured without one is `sandbox.required`. [`support`] tells what the
//! host gives (`garrison doctor` prints it).

mod cgroup;
mod landlock;
mod paths;
mod seccomp;
mod sys;

use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use garrison_contracts::openclawssy::{ToolError, ToolErrorCode};

use landlock::Grant;

/// How tools that run programs are confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SandboxMode {
    /// Confine every program; refuse to run one when the kernel cannot.
    #[default]
    Enforce,
    /// No sandbox: tools that need one answer `sandbox.required`.
    Off,
}

/// Protections a policy can insist on. Landlock and seccomp always are;
/// the others are used wherever the host has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    Landlock,
    Seccomp,
    /// Mount, PID and IPC namespaces (and network when off, before ABI 6).
    Namespaces,
    /// A process count limit that binds this user (a pids cgroup for root).
    ProcessLimit,
}

/// Resource limits per sandboxed program (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildLimits {
    /// Processes and threads at once, the program's descendants included.
    pub processes: Option<u64>,
    pub cpu_seconds: Option<u64>,
    pub address_space_bytes: Option<u64>,
    /// Largest file the program may write.
    pub file_size_bytes: Option<u64>,
}

impl ChildLimits {
    /// 512 processes and 1 GiB per file; CPU and memory are left to the
    /// caller's timeout (runtimes such as V8 or Go reserve vast address
    /// space, so a default there would break ordinary programs).
    pub const DEFAULT: ChildLimits = ChildLimits {
        processes: Some(512),
        cpu_seconds: None,
        address_space_bytes: None,
        file_size_bytes: Some(1 << 30),
    };
}

impl Default for ChildLimits {
    fn default() -> Self {
        ChildLimits::DEFAULT
    }
}

/// A runtime's sandbox settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPolicy {
    pub mode: SandboxMode,
    /// Network sockets allowed (otherwise only `AF_UNIX`, in an empty
    /// network namespace where Landlock cannot scope abstract sockets).
    pub allow_network: bool,
    pub limits: ChildLimits,
    /// Paths no sandboxed program may see even where an allowed directory
    /// holds them (the data dir: secrets, token, ledger, other workspaces).
    pub hidden: Vec<PathBuf>,
    /// Extra read-only paths (a profile's `~/.config/<agent>`, a toolchain).
    pub read: Vec<PathBuf>,
    /// Extra writable paths.
    pub write: Vec<PathBuf>,
    /// Protections beyond Landlock and seccomp that must be present.
    pub require: Vec<Protection>,
}

impl SandboxPolicy {
    /// Enforced, no network, default limits, nothing extra.
    pub const DEFAULT: SandboxPolicy = SandboxPolicy {
        mode: SandboxMode::Enforce,
        allow_network: false,
        limits: ChildLimits::DEFAULT,
        hidden: Vec::new(),
        read: Vec::new(),
        write: Vec::new(),
        require: Vec::new(),
    };
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        SandboxPolicy::DEFAULT
    }
}

/// How namespaces are made on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NamespaceMode {
    /// The server runs as root and makes them directly.
    AsRoot,
    /// Through an unprivileged user namespace.
    UserNamespace,
}

/// How the process limit binds on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessLimitMode {
    /// A pids cgroup per program.
    Cgroup,
    /// `RLIMIT_NPROC` inside the program's own user namespace.
    Rlimit,
}

/// What this host offers, probed once per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Support {
    /// Landlock ABI version, `None` without Landlock.
    pub landlock_abi: Option<u32>,
    /// Seccomp filters with errno returns can be installed on this
    /// architecture.
    pub seccomp_filter: bool,
    pub namespaces: Option<NamespaceMode>,
    pub process_limit: Option<ProcessLimitMode>,
    /// The effective uid and gid programs start from (their capabilities
    /// are dropped).
    pub uid: u32,
    pub gid: u32,
}

impl Support {
    /// Whether the signal and abstract-socket scoping of Landlock ABI 6 is there.
    pub fn scoped_signals(&self) -> bool {
        self.landlock_abi.is_some_and(|abi| abi >= 6)
    }

    /// Whether `p` is present.
    pub fn has(&self, p: Protection) -> bool {
        match p {
            Protection::Landlock => self.landlock_abi.is_some(),
            Protection::Seccomp => self.seccomp_filter,
            Protection::Namespaces => self.namespaces.is_some(),
            Protection::ProcessLimit => self.process_limit.is_some(),
        }
    }
}

const NS_FLAGS: libc::c_int =
    libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWNET;

/// Probes the host (once; later calls return the same answer).
pub fn support() -> Support {
    static SUPPORT: OnceLock<Support> = OnceLock::new();
    *SUPPORT.get_or_init(|| {
        let (uid, gid) = sys::effective_ids();
        let namespaces = if uid == 0 && sys::can_clone(NS_FLAGS) {
            Some(NamespaceMode::AsRoot)
        } else if uid != 0 && sys::can_clone(NS_FLAGS | libc::CLONE_NEWUSER) {
            Some(NamespaceMode::UserNamespace)
        } else {
            None
        };
        let process_limit = if uid == 0 {
            cgroup::available().then_some(ProcessLimitMode::Cgroup)
        } else {
            (namespaces == Some(NamespaceMode::UserNamespace)).then_some(ProcessLimitMode::Rlimit)
        };
        Support {
            landlock_abi: sys::landlock_abi(),
            seccomp_filter: seccomp::AUDIT_ARCH.is_some() && sys::seccomp_filter_available(),
            namespaces,
            process_limit,
            uid,
            gid,
        }
    })
}

/// System trees every program may read and execute.
const SYSTEM_READ: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt",
];

/// What stays private inside the readable trees.
const PRIVATE_SYSTEM: &[&str] = &[
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssh",
    "/etc/ssl/private",
    "/etc/security/opasswd",
];

/// Credentials under a home directory that a toolchain grant could cover.
const PRIVATE_HOME: &[&str] = &[
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".git-credentials",
    ".netrc",
    ".ssh",
    ".aws",
    ".docker/config.json",
    ".npmrc",
    ".pypirc",
];

/// Toolchain roots from `PATH`: `~/.cargo` for `~/.cargo/bin`, `~/.pyenv`
/// for `~/.pyenv/shims`; never `/` or the home directory itself.
fn toolchain_roots() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let Some(path) = std::env::var_os("PATH") else {
        return Vec::new();
    };
    std::env::split_paths(&path)
        .filter(|p| p.is_absolute())
        .map(|p| {
            let parent = p.parent().map(Path::to_path_buf);
            let named_bin = p
                .file_name()
                .is_some_and(|n| n == "bin" || n == "sbin" || n == "shims");
            match parent {
                Some(parent)
                    if named_bin && parent.parent().is_some() && Some(&parent) != home.as_ref() =>
                {
                    parent
                }
                _ => p,
            }
        })
        .collect()
}

/// A private directory per program, outside the workspace: `tmp/` (its
/// `TMPDIR`) and the empty sources that cover denied paths.
#[derive(Debug)]
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn create() -> std::io::Result<Scratch> {
        let root = std::env::temp_dir().join(format!("garrison-sandbox-{}", ulid::Ulid::new()));
        std::fs::DirBuilder::new().mode(0o700).create(&root)?;
        let scratch = Scratch { root };
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(scratch.tmp())?;
        std::fs::DirBuilder::new()
            .mode(0o500)
            .create(scratch.empty_dir())?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(scratch.empty_file())?;
        Ok(scratch)
    }

    fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn empty_dir(&self) -> PathBuf {
        self.root.join("empty")
    }

    fn empty_file(&self) -> PathBuf {
        self.root.join("empty-file")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Confinement built for one program, before it is spawned. Keep it until
/// the program has finished: it owns the program's temp dir and cgroup.
pub struct Confinement {
    plan: Option<sys::ChildPlan>,
    /// Both taken on drop (cleaned up off the caller's path).
    scratch: Option<Scratch>,
    cgroup: Option<cgroup::PidsCgroup>,
}

impl Confinement {
    /// Confinement for a program working in `workspace` under `policy`;
    /// `deny` (absolute paths) become unreadable and unwritable.
    pub fn prepare(
        policy: &SandboxPolicy,
        workspace: &Path,
        deny: &[PathBuf],
    ) -> Result<Confinement, ToolError> {
        if policy.mode == SandboxMode::Off {
            return Err(ToolError::new(
                ToolErrorCode::SandboxRequired,
                "this tool runs programs only inside the sandbox, and the runtime is configured without one",
            ));
        }
        let s = support();
        let unavailable = |what: String| {
            ToolError::new(ToolErrorCode::SandboxUnavailable, what)
                .with_detail("landlock_abi", s.landlock_abi)
                .with_detail("seccomp_filter", s.seccomp_filter)
                .with_detail("namespaces", s.namespaces.is_some())
                .with_detail("process_limit", s.process_limit.is_some())
        };
        let Some(abi) = s.landlock_abi else {
            return Err(unavailable(
                "the kernel offers no Landlock, so files outside the workspace cannot be kept out of reach"
                    .into(),
            ));
        };
        if !s.seccomp_filter {
            return Err(unavailable(
                "the kernel offers no seccomp filters, so dangerous system calls cannot be refused"
                    .into(),
            ));
        }
        if let Some(missing) = policy.require.iter().find(|p| !s.has(**p)) {
            return Err(unavailable(format!(
                "the policy requires {missing:?} and this host does not offer it (see `garrison doctor`)"
            )));
        }
        let existing_deny: Vec<&PathBuf> = deny
            .iter()
            .filter(|d| d.symlink_metadata().is_ok())
            .collect();
        if !existing_deny.is_empty() && s.namespaces.is_none() {
            return Err(unavailable(
                "the deny list cannot be enforced for programs without mount namespaces on this host"
                    .into(),
            ));
        }

        // Grants and covers compare paths: compare them resolved.
        let resolved = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let workspace = &resolved(workspace);
        let scratch = Scratch::create()
            .map_err(|e| unavailable(format!("cannot create the program's temp dir: {e}")))?;
        let data_hidden: Vec<PathBuf> = policy.hidden.iter().map(|p| resolved(p)).collect();
        let mut private: Vec<PathBuf> = PRIVATE_SYSTEM.iter().map(PathBuf::from).collect();
        if let Some(home) = std::env::var_os("HOME") {
            let home = PathBuf::from(home);
            private.extend(PRIVATE_HOME.iter().map(|p| home.join(p)));
        }
        let hidden: Vec<PathBuf> = data_hidden.iter().chain(&private).cloned().collect();
        let rw = landlock::read_write(abi);
        let mut grants = vec![
            Grant {
                path: workspace.to_path_buf(),
                rights: rw,
            },
            Grant {
                path: scratch.tmp(),
                rights: rw,
            },
        ];
        for p in &policy.write {
            if s.namespaces.is_some() {
                // Whole, so new files can be made in it; hidden paths inside
                // are covered by mounts below.
                grants.push(Grant {
                    path: resolved(p),
                    rights: rw,
                });
            } else {
                landlock::grant_around(&mut grants, p, rw, &hidden);
            }
        }
        let system_roots: Vec<PathBuf> = SYSTEM_READ
            .iter()
            .map(PathBuf::from)
            .chain(toolchain_roots())
            .collect();
        let system = landlock::system_grants(&system_roots, &hidden);
        for root in &policy.read {
            landlock::grant_around(&mut grants, root, landlock::READ, &hidden);
        }
        for dev in landlock::DEVICES {
            grants.push(Grant {
                path: PathBuf::from(dev),
                rights: landlock::handled_fs(abi) & !landlock::READ_DIR & !landlock::EXECUTE,
            });
        }
        grants.push(Grant {
            path: PathBuf::from("/proc"),
            rights: landlock::READ_FILE | landlock::READ_DIR,
        });
        grants.push(Grant {
            path: PathBuf::from("/sys/devices/system/cpu"),
            rights: landlock::READ_FILE | landlock::READ_DIR,
        });
        let ruleset = landlock::ruleset(abi, &system, &grants, policy.allow_network)
            .map_err(|e| unavailable(format!("cannot build the Landlock ruleset: {e}")))?;
        let filter = seccomp::program(policy.allow_network)
            .ok_or_else(|| unavailable("no seccomp program for this architecture".into()))?;

        let mut plan = sys::ChildPlan {
            cpu_seconds: policy.limits.cpu_seconds,
            address_space_bytes: policy.limits.address_space_bytes,
            file_size_bytes: policy.limits.file_size_bytes,
            ruleset: Some(ruleset),
            proc_rights: landlock::READ_FILE | landlock::READ_DIR,
            filter: Some(filter),
            ..sys::ChildPlan::default()
        };
        let mut cgroup = None;
        if let Some(max) = policy.limits.processes {
            match s.process_limit {
                Some(ProcessLimitMode::Cgroup) => {
                    let made = cgroup::PidsCgroup::create(max)
                        .and_then(|c| c.procs().map(|f| (c, f)))
                        .map_err(|e| unavailable(format!("cannot make a pids cgroup: {e}")))?;
                    plan.cgroup_procs = Some(made.1.into());
                    cgroup = Some(made.0);
                }
                Some(ProcessLimitMode::Rlimit) => plan.processes = Some(max),
                None => {}
            }
        }
        if let Some(mode) = s.namespaces {
            plan.unshare = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC;
            // Without network the seccomp program already refuses every
            // socket but AF_UNIX; an empty network namespace then only adds
            // keeping the host's abstract unix sockets out of reach, which
            // Landlock ABI 6 scopes by itself (and a new namespace costs
            // about half a millisecond per program).
            if !policy.allow_network && !s.scoped_signals() {
                plan.unshare |= libc::CLONE_NEWNET;
            }
            if mode == NamespaceMode::UserNamespace {
                plan.user_ns = Some((
                    format!("{0} {0} 1\n", s.uid).into_bytes(),
                    format!("{0} {0} 1\n", s.gid).into_bytes(),
                ));
            }
            let mut keep = vec![workspace.to_path_buf(), scratch.root.clone()];
            keep.extend(policy.read.iter().chain(&policy.write).map(|p| resolved(p)));
            let mut covered: Vec<PathBuf> = existing_deny.into_iter().cloned().collect();
            // Hidden paths are covered except what the program needs inside
            // them (its workspace in the data dir); a broader grant (a write
            // extra holding the data dir) does not uncover them. The data dir
            // always (Landlock cannot stop a connect to a unix socket in it,
            // nor hide names); private system and home files only where a
            // whole write grant holds them, as Landlock keeps them out
            // elsewhere and every mount adds to the program's start and end.
            let write_extras: Vec<PathBuf> = policy.write.iter().map(|p| resolved(p)).collect();
            let to_cover = data_hidden.iter().chain(
                private
                    .iter()
                    .filter(|p| write_extras.iter().any(|w| p.starts_with(w))),
            );
            for h in to_cover {
                // A bind mount follows a symlink: never cover through one.
                covered.extend(paths::around(h, &keep).into_iter().filter(|p| {
                    p.symlink_metadata()
                        .is_ok_and(|m| !m.file_type().is_symlink())
                }));
            }
            for target in covered {
                let is_dir = target.symlink_metadata().is_ok_and(|m| m.is_dir());
                let source = if is_dir {
                    scratch.empty_dir()
                } else {
                    scratch.empty_file()
                };
                plan.overlays.push((c_path(&source)?, c_path(&target)?));
            }
        }
        Ok(Confinement {
            plan: Some(plan),
            scratch: Some(scratch),
            cgroup,
        })
    }

    /// The program's private temp dir (set it as `TMPDIR`).
    pub fn tmp_dir(&self) -> PathBuf {
        self.scratch.as_ref().map(Scratch::tmp).unwrap_or_default()
    }

    /// Makes `cmd`'s child confine itself before it executes the program.
    pub fn apply(&mut self, cmd: &mut tokio::process::Command) {
        if let Some(plan) = self.plan.take() {
            plan.install(cmd);
        }
    }
}

/// SIGKILLs every process in the group `pgid` (above 1: never our own
/// group or init). A group already gone is fine.
pub(crate) fn kill_process_group(pgid: u32) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid)
        && pgid > 1
    {
        let _ = sys::kill_group(pgid);
    }
}

/// Opens `rel` beneath the directory `root` with `flags` (`O_*`; new files
/// get `mode`), refusing `..` above `root` and any symlink on the way, so a
/// path checked earlier cannot be redirected out by a symlink swapped in
/// since (by a program the same run started, say). `ELOOP` or `EXDEV` when
/// something was in the way. On kernels without `openat2` (before 5.6) the
/// path is opened plainly with `O_NOFOLLOW`.
pub fn open_beneath(
    root: &Path,
    rel: &Path,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> std::io::Result<std::fs::File> {
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(root)?;
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let c = CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    match sys::openat2_beneath(dir.as_fd(), &c, flags, mode) {
        Ok(fd) => Ok(std::fs::File::from(fd)),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            let mut options = std::fs::OpenOptions::new();
            let access = flags & libc::O_ACCMODE;
            options
                .read(access != libc::O_WRONLY)
                .write(access != libc::O_RDONLY)
                .custom_flags((flags & !libc::O_ACCMODE) | libc::O_NOFOLLOW)
                .mode(mode);
            options.open(root.join(rel))
        }
        Err(e) => Err(e),
    }
}

impl Drop for Confinement {
    /// The temp dir and the cgroup go on a background thread: removing
    /// them (and waiting for the killed group to leave the cgroup) would
    /// otherwise add to every call.
    fn drop(&mut self) {
        let scratch = self.scratch.take();
        let cgroup = self.cgroup.take();
        later(Box::new(move || drop((scratch, cgroup))));
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs `job` on the sandbox's cleanup thread (inline if it cannot start).
fn later(job: Job) {
    static QUEUE: OnceLock<Option<std::sync::Mutex<std::sync::mpsc::Sender<Job>>>> =
        OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sandbox-cleanup".into())
            .spawn(move || rx.into_iter().for_each(|job| job()))
            .ok()
            .map(|_| std::sync::Mutex::new(tx))
    });
    let job = match queue {
        Some(tx) => match tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(job)
        {
            Ok(()) => return,
            Err(std::sync::mpsc::SendError(job)) => job,
        },
        None => job,
    };
    job();
}

impl std::fmt::Debug for Confinement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confinement")
            .field("scratch", &self.scratch.as_ref().map(|s| &s.root))
            .field("applied", &self.plan.is_none())
            .finish()
    }
}

fn c_path(p: &Path) -> Result<CString, ToolError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| {
        ToolError::new(
            ToolErrorCode::ToolInputInvalid,
            "a path holds a NUL byte".to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_is_sandbox_required() {
        let policy = SandboxPolicy {
            mode: SandboxMode::Off,
            ..SandboxPolicy::DEFAULT
        };
        let err = Confinement::prepare(&policy, Path::new("."), &[])
            .err()
            .map(|e| e.code);
        assert_eq!(err, Some(ToolErrorCode::SandboxRequired));
    }

    #[test]
    fn toolchain_roots_never_open_up_home_or_root() {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        for root in toolchain_roots() {
            assert_ne!(root, Path::new("/"));
            assert_ne!(Some(&root), home.as_ref());
        }
    }

    #[test]
    fn open_beneath_refuses_symlinks_and_climbing() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::fs::write(ws.join("sub/ok.txt"), "ok").unwrap();
        std::os::unix::fs::symlink(dir.path(), ws.join("out")).unwrap();
        std::os::unix::fs::symlink("ok.txt", ws.join("sub/link")).unwrap();
        let open = |rel: &str| open_beneath(&ws, Path::new(rel), libc::O_RDONLY, 0);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut open("sub/ok.txt").unwrap(), &mut text).unwrap();
        assert_eq!(text, "ok");
        for rel in ["out/secret", "../secret", "sub/link"] {
            let err = open(rel).unwrap_err();
            assert!(
                matches!(err.raw_os_error(), Some(libc::ELOOP | libc::EXDEV)),
                "{rel}: {err}"
            );
        }
    }
}
