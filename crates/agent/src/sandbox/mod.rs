//! The sandbox `shell.exec` programs run in: no new privileges, Landlock
//! (writes only beneath the workspace, reads and execution anywhere) and a
//! seccomp filter refusing network sockets (anything but `AF_UNIX`, and
//! `io_uring`, which could open them out of the filter's sight).
//!
//! Never silently weaker: a policy that asks for confinement the kernel
//! cannot give is `sandbox.unavailable`; a tool that needs the sandbox on a
//! runtime configured without one is `sandbox.required`.

mod sys;

use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;

use garrison_contracts::openclawssy::{ToolError, ToolErrorCode};

/// How tools that run programs are confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SandboxMode {
    /// Confine every program; refuse to run one when the kernel cannot.
    #[default]
    Enforce,
    /// No sandbox: tools that need one answer `sandbox.required`.
    Off,
}

/// A runtime's sandbox settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SandboxPolicy {
    pub mode: SandboxMode,
    /// Leaves out the socket filter (Landlock and no-new-privs still apply).
    pub allow_network: bool,
}

/// What this kernel offers, probed once per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Support {
    /// Landlock ABI version, `None` without Landlock.
    pub landlock_abi: Option<u32>,
    /// Seccomp filters with errno returns can be installed on this
    /// architecture.
    pub seccomp_filter: bool,
}

/// Probes the kernel (once; later calls return the same answer).
pub fn support() -> Support {
    static SUPPORT: OnceLock<Support> = OnceLock::new();
    *SUPPORT.get_or_init(|| Support {
        landlock_abi: sys::landlock_abi(),
        seccomp_filter: arch::AUDIT_ARCH.is_some() && sys::seccomp_filter_available(),
    })
}

// Landlock filesystem access rights (UAPI `LANDLOCK_ACCESS_FS_*`).
const WRITE_FILE: u64 = 1 << 1;
const REMOVE_DIR: u64 = 1 << 4;
const REMOVE_FILE: u64 = 1 << 5;
const MAKE_CHAR: u64 = 1 << 6;
const MAKE_DIR: u64 = 1 << 7;
const MAKE_REG: u64 = 1 << 8;
const MAKE_SOCK: u64 = 1 << 9;
const MAKE_FIFO: u64 = 1 << 10;
const MAKE_BLOCK: u64 = 1 << 11;
const MAKE_SYM: u64 = 1 << 12;
/// ABI 2: linking or renaming across directories.
const REFER: u64 = 1 << 13;
/// ABI 3: truncating.
const TRUNCATE: u64 = 1 << 14;

/// Every right that changes the filesystem, as far as `abi` knows them.
/// Reading, listing and executing are not handled, so stay allowed.
fn write_rights(abi: u32) -> u64 {
    let mut rights = WRITE_FILE
        | REMOVE_DIR
        | REMOVE_FILE
        | MAKE_CHAR
        | MAKE_DIR
        | MAKE_REG
        | MAKE_SOCK
        | MAKE_FIFO
        | MAKE_BLOCK
        | MAKE_SYM;
    if abi >= 2 {
        rights |= REFER;
    }
    if abi >= 3 {
        rights |= TRUNCATE;
    }
    rights
}

/// Confinement built for one program, before it is spawned.
pub struct Confinement {
    ruleset: Option<std::os::fd::OwnedFd>,
    filter: Option<Vec<libc::sock_filter>>,
}

impl Confinement {
    /// Confinement for a program working in `workspace` under `policy`.
    pub fn prepare(policy: &SandboxPolicy, workspace: &Path) -> Result<Confinement, ToolError> {
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
        };
        let Some(abi) = s.landlock_abi else {
            return Err(unavailable(
                "the kernel offers no Landlock, so writes cannot be confined to the workspace"
                    .into(),
            ));
        };
        let filter = if policy.allow_network {
            None
        } else if s.seccomp_filter {
            Some(
                socket_filter().ok_or_else(|| {
                    unavailable("no seccomp program for this architecture".into())
                })?,
            )
        } else {
            return Err(unavailable(
                "the kernel offers no seccomp filters, so network sockets cannot be refused".into(),
            ));
        };
        let handled = write_rights(abi);
        let ruleset = sys::create_ruleset(handled)
            .map_err(|e| unavailable(format!("cannot create a Landlock ruleset: {e}")))?;
        let open = |p: &Path| {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
                .open(p)
        };
        let ws = open(workspace).map_err(|e| {
            unavailable(format!(
                "cannot open workspace {}: {e}",
                workspace.display()
            ))
        })?;
        sys::add_path_rule(&ruleset, ws.as_fd(), handled)
            .map_err(|e| unavailable(format!("cannot allow the workspace: {e}")))?;
        // Programs routinely discard output into /dev/null.
        if let Ok(null) = open(Path::new("/dev/null")) {
            sys::add_path_rule(&ruleset, null.as_fd(), handled & (WRITE_FILE | TRUNCATE))
                .map_err(|e| unavailable(format!("cannot allow /dev/null: {e}")))?;
        }
        Ok(Confinement {
            ruleset: Some(ruleset),
            filter,
        })
    }

    /// Makes `cmd`'s child confine itself before it executes the program.
    pub fn apply(self, cmd: &mut tokio::process::Command) {
        sys::confine_child(cmd, self.ruleset, self.filter);
    }
}

mod arch {
    #[cfg(target_arch = "x86_64")]
    pub const AUDIT_ARCH: Option<u32> = Some(0xC000_003E);
    #[cfg(target_arch = "aarch64")]
    pub const AUDIT_ARCH: Option<u32> = Some(0xC000_00B7);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub const AUDIT_ARCH: Option<u32> = None;
}

/// The seccomp program: on the native architecture (others are killed, so
/// a 32-bit or x32 entry cannot slip past), `socket(2)` with any family but
/// `AF_UNIX` and `io_uring_setup(2)` fail with `EACCES`; all else is allowed.
fn socket_filter() -> Option<Vec<libc::sock_filter>> {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const ALLOW: u32 = 0x7fff_0000;
    const KILL_PROCESS: u32 = 0x8000_0000;
    const X32_BIT: u32 = 0x4000_0000;
    // struct seccomp_data: nr at 0, arch at 4, args[0] at 16 (low half on
    // little-endian targets, which both supported ones are).
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let arch = arch::AUDIT_ARCH?;
    let socket = u32::try_from(libc::SYS_socket).ok()?;
    let uring = u32::try_from(libc::SYS_io_uring_setup).ok()?;
    let deny = sys::SECCOMP_RET_ERRNO | libc::EACCES as u32;
    Some(vec![
        op(LD_W_ABS, 0, 0, 4),                 // 0: A = arch
        op(JEQ_K, 0, 8, arch),                 // 1: foreign arch -> 10
        op(LD_W_ABS, 0, 0, 0),                 // 2: A = nr
        op(JGE_K, 6, 0, X32_BIT),              // 3: x32 -> 10
        op(JEQ_K, 0, 2, socket),               // 4: not socket -> 7
        op(LD_W_ABS, 0, 0, 16),                // 5: A = domain
        op(JEQ_K, 1, 2, libc::AF_UNIX as u32), // 6: unix -> 8, else -> 9
        op(JEQ_K, 1, 0, uring),                // 7: io_uring -> 9, else -> 8
        op(RET_K, 0, 0, ALLOW),                // 8
        op(RET_K, 0, 0, deny),                 // 9
        op(RET_K, 0, 0, KILL_PROCESS),         // 10
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_grow_with_the_abi() {
        assert_eq!(write_rights(1) & (REFER | TRUNCATE), 0);
        assert_eq!(write_rights(2) & REFER, REFER);
        assert_eq!(write_rights(3) & TRUNCATE, TRUNCATE);
        // Reading and executing are never handled.
        for abi in 1..=7 {
            assert_eq!(write_rights(abi) & 0b1101, 0);
        }
    }

    #[test]
    fn filter_jumps_stay_inside_the_program() {
        let Some(prog) = socket_filter() else {
            return;
        };
        for (i, ins) in prog.iter().enumerate() {
            if ins.code & 0x07 == 0x05 {
                assert!(i + 1 + (ins.jt as usize) < prog.len(), "jt of {i}");
                assert!(i + 1 + (ins.jf as usize) < prog.len(), "jf of {i}");
            }
        }
        assert_eq!(prog.last().map(|i| i.code), Some(0x06));
    }

    #[test]
    fn off_is_sandbox_required() {
        let policy = SandboxPolicy {
            mode: SandboxMode::Off,
            allow_network: false,
        };
        let err = Confinement::prepare(&policy, Path::new("."))
            .err()
            .map(|e| e.code);
        assert_eq!(err, Some(ToolErrorCode::SandboxRequired));
    }
}
