//! The raw system calls behind the sandbox: the only `unsafe` in the crate.
//!
//! Everything that allocates (the Landlock ruleset, the BPF program, mount
//! paths, id maps) is built in the parent. Between `fork` and `exec` the
//! child only makes system calls on memory prepared before the fork.
//!
//! With a PID namespace the spawned child (the process the caller sees) stays
//! outside it as a relay: it forks the namespace's init, which confines
//! itself, mounts a fresh `/proc` and forks the program. The init reaps
//! everything in the namespace and hands the program's wait status to the
//! relay, which ends the same way (same code, or the same signal), so the
//! caller sees the program's own outcome. Killing the relay kills the init
//! (parent-death signal), and the init's death kills every process left in
//! the namespace, daemons included.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::seccomp;

const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;
const SECCOMP_GET_ACTION_AVAIL: libc::c_uint = 2;
const SECCOMP_MODE_FILTER: libc::c_ulong = 2;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
/// Highest capability number any kernel may define (the bounding set is 64 bits).
const CAP_MAX: libc::c_ulong = 63;

/// `struct landlock_ruleset_attr` as of ABI 6; older kernels are passed a
/// prefix of it (8 bytes before ABI 4, 16 before ABI 6).
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

/// `struct landlock_path_beneath_attr` (packed in the kernel's UAPI).
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
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

/// This process's effective uid and gid.
pub(super) fn effective_ids() -> (u32, u32) {
    // SAFETY: neither call takes arguments or can fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// `struct open_how` of `openat2(2)`.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;

/// `openat2(dir, rel, flags, mode)` refusing `..` above `dir`, absolute
/// paths, and every symlink on the way (`ELOOP`/`EXDEV`); `ENOSYS` before
/// Linux 5.6.
pub(super) fn openat2_beneath(
    dir: BorrowedFd<'_>,
    rel: &std::ffi::CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: u64::try_from(flags | libc::O_CLOEXEC).unwrap_or(0),
        // The kernel refuses a mode without O_CREAT.
        mode: if flags & libc::O_CREAT != 0 {
            u64::from(mode)
        } else {
            0
        },
        resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: a valid directory fd, a NUL-terminated path and a struct of
    // the size passed, all alive for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            rel.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    check_long(fd)?;
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::other("fd out of range"))?;
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// SIGKILL to every process in group `pgid`.
pub(super) fn kill_group(pgid: libc::pid_t) -> io::Result<()> {
    // SAFETY: kill takes integers; a negative pid addresses the group.
    check(unsafe { libc::kill(-pgid, libc::SIGKILL) })
}

/// Whether seccomp filters that return an errno can be installed.
pub(super) fn seccomp_filter_available() -> bool {
    let action: u32 = seccomp::RET_ERRNO;
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

/// Whether a child can be started in new namespaces `flags`: tried for real
/// with a child that exits at once.
pub(super) fn can_clone(flags: libc::c_int) -> bool {
    let flags = libc::c_long::from(flags) | libc::c_long::from(libc::SIGCHLD);
    // SAFETY: a raw fork-like clone (no new stack, no shared memory); the
    // child only calls `_exit`, which is async-signal-safe.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid == 0 {
        // SAFETY: leaves the child without running any parent code.
        unsafe { libc::_exit(0) };
    }
    if pid < 0 {
        return false;
    }
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    let mut status = 0;
    // SAFETY: waits for our own child into a local.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

/// A new ruleset handling `fs` and `net` accesses, scoped by `scoped`.
pub(super) fn create_ruleset(abi: u32, fs: u64, net: u64, scoped: u64) -> io::Result<OwnedFd> {
    let attr = RulesetAttr {
        handled_access_fs: fs,
        handled_access_net: net,
        scoped,
    };
    let size = match abi {
        ..=3 => 8,
        4 | 5 => 16,
        _ => std::mem::size_of::<RulesetAttr>(),
    };
    // SAFETY: `attr` is a valid, initialised struct at least `size` long.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            size,
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

/// Everything the child does before `exec`, prepared by the parent.
#[derive(Default)]
pub(super) struct ChildPlan {
    /// `cgroup.procs` of the program's pids cgroup.
    pub cgroup_procs: Option<OwnedFd>,
    pub cpu_seconds: Option<u64>,
    pub address_space_bytes: Option<u64>,
    pub file_size_bytes: Option<u64>,
    /// Applied inside the user namespace, where it counts only its processes.
    pub processes: Option<u64>,
    /// `(uid_map, gid_map)` contents: enter a user namespace first
    /// (unprivileged servers; root needs none).
    pub user_ns: Option<(Vec<u8>, Vec<u8>)>,
    /// `CLONE_NEW*` flags to unshare.
    pub unshare: libc::c_int,
    /// `(source, target)` bind mounts made read-only over denied paths.
    pub overlays: Vec<(CString, CString)>,
    pub ruleset: Option<OwnedFd>,
    /// Landlock rights on the namespace's own `/proc`, granted once it is
    /// mounted (a rule binds an inode, and the fresh mount has new ones).
    pub proc_rights: u64,
    pub filter: Option<Vec<libc::sock_filter>>,
}

type Step = io::Result<()>;

fn check(r: libc::c_int) -> Step {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn check_long(r: libc::c_long) -> Step {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl ChildPlan {
    /// Makes `cmd`'s child carry out the plan before it executes the program.
    pub fn install(self, cmd: &mut tokio::process::Command) {
        // SAFETY: `run` only makes system calls on memory the plan owns (see
        // the module docs); nothing allocates, locks or touches state shared
        // with other threads of the parent.
        unsafe {
            cmd.pre_exec(move || self.run());
        }
    }

    /// Runs in the forked child. Returns only in the process that goes on
    /// to `exec` the program.
    fn run(&self) -> Step {
        if let Some(fd) = &self.cgroup_procs {
            // SAFETY: writes two bytes from a static buffer to an open fd.
            let n = unsafe { libc::write(fd.as_raw_fd(), b"0\n".as_ptr().cast(), 2) };
            check_long(n as libc::c_long)?;
        }
        set_limit(libc::RLIMIT_CORE, Some(0))?;
        set_limit(libc::RLIMIT_CPU, self.cpu_seconds)?;
        set_limit(libc::RLIMIT_AS, self.address_space_bytes)?;
        set_limit(libc::RLIMIT_FSIZE, self.file_size_bytes)?;
        if let Some((uid_map, gid_map)) = &self.user_ns {
            // SAFETY: unshare takes integer flags.
            check(unsafe { libc::unshare(libc::CLONE_NEWUSER) })?;
            write_file(c"/proc/self/setgroups", b"deny")?;
            write_file(c"/proc/self/uid_map", uid_map)?;
            write_file(c"/proc/self/gid_map", gid_map)?;
            set_limit(libc::RLIMIT_NPROC, self.processes)?;
        }
        if self.unshare != 0 {
            // SAFETY: unshare takes integer flags.
            check(unsafe { libc::unshare(self.unshare) })?;
        }
        if self.unshare & libc::CLONE_NEWNS != 0 {
            // Nothing mounted here propagates back to the host.
            mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE)?;
            for (source, target) in &self.overlays {
                mount(Some(source), target, None, libc::MS_BIND)?;
                mount(
                    None,
                    target,
                    None,
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                )?;
            }
        }
        if self.unshare & libc::CLONE_NEWPID == 0 {
            return self.confine();
        }

        let (status_read, status_write) = pipe()?;
        let init = fork()?;
        if init > 0 {
            relay(init, status_read);
        }
        // The namespace's init (pid 1).
        // SAFETY: integer arguments only.
        check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) })?;
        // SAFETY: closing our copy of the relay's end.
        unsafe { libc::close(status_read) };
        if self.unshare & libc::CLONE_NEWNS != 0 {
            // A /proc that shows only this namespace's processes. Where the
            // kernel refuses, the host's stays; Landlock still keeps other
            // processes' files out of reach.
            let mounted = mount(
                Some(c"proc"),
                c"/proc",
                Some(c"proc"),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            );
            if let (Ok(()), Some(ruleset)) = (mounted, &self.ruleset) {
                // SAFETY: opens a static path; the fd is closed right after use.
                let fd = unsafe {
                    libc::open(
                        c"/proc".as_ptr(),
                        libc::O_PATH | libc::O_CLOEXEC | libc::O_DIRECTORY,
                    )
                };
                check(fd)?;
                // SAFETY: `fd` was just opened and is closed only below.
                let proc_dir = unsafe { BorrowedFd::borrow_raw(fd) };
                let granted = add_path_rule(ruleset, proc_dir, self.proc_rights);
                // SAFETY: our own descriptor.
                unsafe { libc::close(fd) };
                granted?;
            }
        }
        self.confine()?;
        let program = fork()?;
        if program > 0 {
            reap_all(program, status_write);
        }
        // SAFETY: the program does not need the status pipe.
        unsafe { libc::close(status_write) };
        Ok(())
    }

    /// No new privileges, no capabilities, then Landlock, then seccomp.
    fn confine(&self) -> Step {
        // SAFETY: prctl and capset with integer arguments or pointers to
        // locals only.
        unsafe {
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
            for cap in 0..=CAP_MAX {
                // Numbers past the kernel's last capability fail: fine.
                libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
            }
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            );
            let header = CapHeader {
                version: LINUX_CAPABILITY_VERSION_3,
                pid: 0,
            };
            let data = [CapData {
                effective: 0,
                permitted: 0,
                inheritable: 0,
            }; 2];
            check_long(libc::syscall(
                libc::SYS_capset,
                &header as *const CapHeader,
                data.as_ptr(),
            ))?;
        }
        if let Some(fd) = &self.ruleset {
            // SAFETY: `fd` is a Landlock ruleset the plan keeps open.
            check_long(unsafe {
                libc::syscall(libc::SYS_landlock_restrict_self, fd.as_raw_fd(), 0u32)
            })?;
        }
        if let Some(program) = &self.filter {
            let prog = libc::sock_fprog {
                len: u16::try_from(program.len()).unwrap_or(u16::MAX),
                filter: program.as_ptr().cast_mut(),
            };
            // SAFETY: `prog` points at `program`, alive and unchanged for
            // the call; the kernel copies it.
            check(unsafe {
                libc::prctl(
                    libc::PR_SET_SECCOMP,
                    SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                    0,
                    0,
                )
            })?;
        }
        Ok(())
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

fn set_limit(resource: Resource, value: Option<u64>) -> Step {
    let Some(value) = value else { return Ok(()) };
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: reads a local struct.
    check(unsafe { libc::setrlimit(resource, &limit) })
}

fn write_file(path: &std::ffi::CStr, data: &[u8]) -> Step {
    // SAFETY: a NUL-terminated path and a buffer of the length passed.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        check(fd)?;
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        libc::close(fd);
        check_long(n as libc::c_long)
    }
}

fn mount(
    source: Option<&std::ffi::CStr>,
    target: &std::ffi::CStr,
    fstype: Option<&std::ffi::CStr>,
    flags: libc::c_ulong,
) -> Step {
    let ptr = |s: Option<&std::ffi::CStr>| s.map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: NUL-terminated strings or nulls; no data argument.
    check(unsafe {
        libc::mount(
            ptr(source),
            target.as_ptr(),
            ptr(fstype),
            flags,
            std::ptr::null(),
        )
    })
}

fn pipe() -> io::Result<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    // SAFETY: writes two fds into a local array.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok((fds[0], fds[1]))
}

/// A raw fork: the C library's `fork` runs atfork handlers that may take
/// locks another thread of the parent held at the first fork.
fn fork() -> io::Result<libc::pid_t> {
    // SAFETY: clone without a new stack or shared memory behaves as fork.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::c_long::from(libc::SIGCHLD),
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    check_long(pid)?;
    libc::pid_t::try_from(pid).map_err(|_| io::Error::other("pid out of range"))
}

/// Closes every descriptor but `keep`, so the relay and init hold no pipe
/// the caller waits on (output, or the spawn's own error report).
fn close_all_but(keep: RawFd) {
    let keep = libc::c_uint::try_from(keep).unwrap_or(0);
    // SAFETY: close_range takes integers.
    unsafe {
        if keep > 0 {
            libc::syscall(libc::SYS_close_range, 0u32, keep - 1, 0u32);
        }
        libc::syscall(libc::SYS_close_range, keep + 1, libc::c_uint::MAX, 0u32);
    }
}

fn wait(pid: libc::pid_t) -> (libc::pid_t, libc::c_int) {
    let mut status = 0;
    loop {
        // SAFETY: writes the status into a local.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return (r, status);
        }
    }
}

/// The relay: waits for the init, then ends as the program ended.
fn relay(init: libc::pid_t, status_read: RawFd) -> ! {
    close_all_but(status_read);
    let (_, init_status) = wait(init);
    let mut buf = [0u8; 4];
    // SAFETY: reads at most 4 bytes into a local buffer.
    let n = unsafe { libc::read(status_read, buf.as_mut_ptr().cast(), buf.len()) };
    let status = if n == 4 {
        libc::c_int::from_ne_bytes(buf)
    } else {
        // The init died before reporting (killed with the group).
        init_status
    };
    end_as(status)
}

/// The namespace's init: reaps every process until the program exits, then
/// reports its status. Its own exit then kills whatever is left.
fn reap_all(program: libc::pid_t, status_write: RawFd) -> ! {
    close_all_but(status_write);
    loop {
        let (pid, status) = wait(-1);
        if pid == program || pid < 0 {
            let buf = status.to_ne_bytes();
            // SAFETY: writes a local buffer, then leaves.
            unsafe {
                libc::write(status_write, buf.as_ptr().cast(), buf.len());
                libc::_exit(0);
            }
        }
    }
}

/// Ends this process with `status`: the same exit code, or the same signal.
fn end_as(status: libc::c_int) -> ! {
    // SAFETY: signal disposition, mask and kill on our own process; `_exit`
    // never returns.
    unsafe {
        if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            libc::signal(sig, libc::SIG_DFL);
            let mut set = std::mem::zeroed::<libc::sigset_t>();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), sig);
            libc::_exit(128 + sig);
        }
        libc::_exit(if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            127
        })
    }
}
