//! The Landlock side of the sandbox: which paths a sandboxed process may
//! read, write or execute. Everything not granted here is refused, reads
//! included, so the data dir (secrets, token, ledger, other workspaces) is
//! out of reach unless a grant covers it, and grants never do: a granted
//! directory that holds a hidden path is opened up entry by entry, around it.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use super::sys;

// Filesystem rights (UAPI `LANDLOCK_ACCESS_FS_*`), with the ABI that added them.
pub(super) const EXECUTE: u64 = 1 << 0;
pub(super) const WRITE_FILE: u64 = 1 << 1;
pub(super) const READ_FILE: u64 = 1 << 2;
pub(super) const READ_DIR: u64 = 1 << 3;
const REMOVE_DIR: u64 = 1 << 4;
const REMOVE_FILE: u64 = 1 << 5;
pub(super) const MAKE_CHAR: u64 = 1 << 6;
const MAKE_DIR: u64 = 1 << 7;
const MAKE_REG: u64 = 1 << 8;
const MAKE_SOCK: u64 = 1 << 9;
const MAKE_FIFO: u64 = 1 << 10;
pub(super) const MAKE_BLOCK: u64 = 1 << 11;
const MAKE_SYM: u64 = 1 << 12;
const REFER: u64 = 1 << 13; // ABI 2
const TRUNCATE: u64 = 1 << 14; // ABI 3
const IOCTL_DEV: u64 = 1 << 15; // ABI 5
// Network rights (ABI 4) and scopes (ABI 6).
const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

/// Rights that apply to a file (not only to a directory).
const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;

/// Every filesystem right `abi` knows: all are handled, so all are refused
/// unless a rule grants them.
pub(super) fn handled_fs(abi: u32) -> u64 {
    let mut rights = EXECUTE
        | WRITE_FILE
        | READ_FILE
        | READ_DIR
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
    if abi >= 5 {
        rights |= IOCTL_DEV;
    }
    rights
}

/// Reading, listing and running programs.
pub(super) const READ: u64 = EXECUTE | READ_FILE | READ_DIR;

/// Everything but device nodes, which nothing may create.
pub(super) fn read_write(abi: u32) -> u64 {
    handled_fs(abi) & !(MAKE_CHAR | MAKE_BLOCK)
}

/// Character devices every program may use: reading and writing, nothing else.
pub(super) const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// One grant: `rights` beneath `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Grant {
    pub path: PathBuf,
    pub rights: u64,
}

/// Adds `rights` beneath `root` except beneath any `hidden` path: a root
/// that holds one is granted entry by entry around it (and is then not
/// listable itself). A root asked for inside a hidden path (a worktree's git
/// metadata in the data dir) is granted: only what lies beneath it counts.
pub(super) fn grant_around(out: &mut Vec<Grant>, root: &Path, rights: u64, hidden: &[PathBuf]) {
    out.extend(
        super::paths::around(root, hidden)
            .into_iter()
            .map(|path| Grant { path, rights }),
    );
}

/// A grant whose path is open already (`O_PATH`), its rights fitted to
/// what it is (a file takes file rights only).
#[derive(Debug)]
pub(super) struct OpenGrant {
    fd: OwnedFd,
    path: PathBuf,
    rights: u64,
}

impl OpenGrant {
    /// `None` for a missing path: a toolchain that is not installed needs
    /// no rule.
    fn open(grant: &Grant) -> Option<OpenGrant> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
            .open(&grant.path)
            .ok()?;
        let is_dir = file.metadata().map(|m| m.is_dir()).unwrap_or(false);
        let rights = if is_dir {
            grant.rights
        } else {
            grant.rights & FILE_RIGHTS
        };
        Some(OpenGrant {
            fd: file.into(),
            path: grant.path.clone(),
            rights,
        })
    }
}

/// The read grants of the system trees (`roots` around `hidden`), opened
/// once and shared by every program while nothing they came from changed:
/// the same roots and hidden paths, and the same modification times of the
/// roots and of every directory opened up around a hidden path (a file
/// replaced by rename in `/etc` changes `/etc`'s). Walking and opening them
/// per program was most of a `shell.exec`'s set-up.
pub(super) fn system_grants(roots: &[PathBuf], hidden: &[PathBuf]) -> Arc<Vec<OpenGrant>> {
    struct Cached {
        roots: Vec<PathBuf>,
        hidden: Vec<PathBuf>,
        stamps: Vec<Option<SystemTime>>,
        watched: Vec<PathBuf>,
        grants: Arc<Vec<OpenGrant>>,
    }
    static CACHE: Mutex<Option<Cached>> = Mutex::new(None);
    let stamp = |p: &PathBuf| p.symlink_metadata().and_then(|m| m.modified()).ok();
    // Only hidden paths inside a root shape the grants.
    let hidden: Vec<PathBuf> = hidden
        .iter()
        .filter(|h| roots.iter().any(|r| h.starts_with(r)))
        .cloned()
        .collect();
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(c) = cache.as_ref()
        && c.roots == roots
        && c.hidden == hidden
        && c.watched.iter().map(stamp).eq(c.stamps.iter().copied())
    {
        return Arc::clone(&c.grants);
    }
    let mut watched = roots.to_vec();
    let mut grants = Vec::new();
    for root in roots {
        let split = super::paths::split(root, &hidden);
        watched.extend(split.opened);
        grants.extend(
            split
                .whole
                .into_iter()
                .filter_map(|path| OpenGrant::open(&Grant { path, rights: READ })),
        );
    }
    let grants = Arc::new(grants);
    *cache = Some(Cached {
        roots: roots.to_vec(),
        hidden,
        stamps: watched.iter().map(stamp).collect(),
        watched,
        grants: Arc::clone(&grants),
    });
    grants
}

/// A ruleset from `opened` (shared) and `grants` (this program's own).
/// `network` leaves TCP unhandled; without it every TCP bind and connect is
/// refused.
pub(super) fn ruleset(
    abi: u32,
    opened: &[OpenGrant],
    grants: &[Grant],
    network: bool,
) -> std::io::Result<OwnedFd> {
    let handled = handled_fs(abi);
    let net = if abi >= 4 && !network {
        NET_BIND_TCP | NET_CONNECT_TCP
    } else {
        0
    };
    let scoped = if abi >= 6 {
        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    } else {
        0
    };
    let ruleset = sys::create_ruleset(abi, handled, net, scoped)?;
    let own: Vec<OpenGrant> = grants.iter().filter_map(OpenGrant::open).collect();
    for grant in opened.iter().chain(&own) {
        let rights = grant.rights & handled;
        if rights == 0 {
            continue;
        }
        sys::add_path_rule(&ruleset, grant.fd.as_fd(), rights)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", grant.path.display())))?;
    }
    Ok(ruleset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_grow_with_the_abi_and_never_include_devices() {
        assert_eq!(handled_fs(1) & (REFER | TRUNCATE | IOCTL_DEV), 0);
        assert_eq!(handled_fs(2) & REFER, REFER);
        assert_eq!(handled_fs(3) & TRUNCATE, TRUNCATE);
        assert_eq!(handled_fs(5) & IOCTL_DEV, IOCTL_DEV);
        for abi in 1..=7 {
            assert_eq!(read_write(abi) & (MAKE_CHAR | MAKE_BLOCK), 0);
            assert_eq!(handled_fs(abi) & READ, READ, "reads are handled too");
        }
    }

    #[test]
    fn system_grants_are_reused_until_a_source_changes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("etc");
        std::fs::create_dir_all(root.join("ssh")).unwrap();
        std::fs::write(root.join("hosts"), "x").unwrap();
        let roots = vec![root.clone()];
        let hidden = vec![root.join("ssh")];
        let first = system_grants(&roots, &hidden);
        let paths = |g: &[OpenGrant]| g.iter().map(|g| g.path.clone()).collect::<Vec<_>>();
        assert_eq!(paths(&first), vec![root.join("hosts")]);
        assert!(Arc::ptr_eq(&first, &system_grants(&roots, &hidden)));
        // A file added beside the hidden one changes the opened directory.
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(root.join("passwd"), "y").unwrap();
        let second = system_grants(&roots, &hidden);
        assert!(!Arc::ptr_eq(&first, &second));
        let mut got = paths(&second);
        got.sort();
        assert_eq!(got, vec![root.join("hosts"), root.join("passwd")]);
    }
}
