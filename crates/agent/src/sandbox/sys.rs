//! The raw system calls behind the sandbox: the only `unsafe` in the crate.
//!
//! Everything that allocates (the Landlock ruleset, the BPF program) is
//! built in the parent; the child, between `fork` and `exec`, only makes
//! three system calls on memory prepared before the fork.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;
const SECCOMP_GET_ACTION_AVAIL: libc::c_uint = 2;
const SECCOMP_MODE_FILTER: libc::c_ulong = 2;
pub(super) const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;

/// `struct landlock_ruleset_attr` up to `handled_access_fs` (the ABI 1
/// size: every kernel with Landlock accepts it).
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
}

/// `struct landlock_path_beneath_attr` (packed in the kernel's UAPI).
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The Landlock ABI version the kernel offers, `None` without Landlock
/// (not built in, disabled at boot, or the call filtered by a container).
pub(super) fn landlock_abi() -> Option<u32> {
    // SAFETY: with a null attribute, size 0 and the VERSION flag the call
    // reads no memory and only returns a number.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(v).ok().filter(|v| *v >= 1)
}

/// Whether seccomp filters that return an errno can be installed.
pub(super) fn seccomp_filter_available() -> bool {
    let action: u32 = SECCOMP_RET_ERRNO;
    // SAFETY: the kernel reads one u32 from a valid pointer to a local.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_ACTION_AVAIL,
            0u32,
            &action as *const u32,
        )
    };
    r == 0
}

/// A new ruleset handling `handled` filesystem accesses.
pub(super) fn create_ruleset(handled: u64) -> io::Result<OwnedFd> {
    let attr = RulesetAttr {
        handled_access_fs: handled,
    };
    // SAFETY: `attr` is a valid, initialised struct of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("ruleset fd out of range"))?;
    // SAFETY: the kernel just returned this descriptor (close-on-exec) and
    // nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Allows `access` beneath the file or directory open at `parent`.
pub(super) fn add_path_rule(
    ruleset: &OwnedFd,
    parent: BorrowedFd<'_>,
    access: u64,
) -> io::Result<()> {
    let attr = PathBeneathAttr {
        allowed_access: access,
        parent_fd: parent.as_raw_fd(),
    };
    // SAFETY: both descriptors are open for the duration of the call and
    // `attr` is a valid struct of the kernel's layout.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            LANDLOCK_RULE_PATH_BENEATH,
            &attr as *const PathBeneathAttr,
            0u32,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Confines the child `cmd` will start: no new privileges, then the
/// Landlock ruleset, then the seccomp program.
pub(super) fn confine_child(
    cmd: &mut tokio::process::Command,
    ruleset: Option<OwnedFd>,
    filter: Option<Vec<libc::sock_filter>>,
) {
    let child = move || -> io::Result<()> {
        // Only system calls on data owned by this closure: async-signal-safe.
        // SAFETY: prctl with integer arguments touches no memory.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if let Some(fd) = &ruleset {
            // SAFETY: `fd` is a Landlock ruleset kept open by this closure.
            let r =
                unsafe { libc::syscall(libc::SYS_landlock_restrict_self, fd.as_raw_fd(), 0u32) };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(program) = &filter {
            let prog = libc::sock_fprog {
                len: u16::try_from(program.len()).unwrap_or(u16::MAX),
                filter: program.as_ptr().cast_mut(),
            };
            // SAFETY: `prog` points at `program`, alive and unchanged for
            // the call; the kernel copies it.
            let r = unsafe {
                libc::prctl(
                    libc::PR_SET_SECCOMP,
                    SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                    0,
                    0,
                )
            };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the closure only makes system calls on memory it owns (see
    // above); nothing allocates, locks or touches state shared with other
    // threads of the parent.
    unsafe {
        cmd.pre_exec(child);
    }
}
