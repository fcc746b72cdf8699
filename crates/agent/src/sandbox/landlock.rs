//! The Landlock side of the sandbox: which paths a sandboxed process may
//! read, write or execute. Everything not granted here is refused, reads
//! included, so the data dir (secrets, token, ledger, other workspaces) is
//! out of reach unless a grant covers it, and grants never do: a granted
//! directory that holds a hidden path is opened up entry by entry, around it.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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

/// How deep a granted tree is opened up around hidden paths.
const MAX_DEPTH: usize = 16;

/// Adds `rights` beneath `root`, except beneath any `hidden` path: a root
/// that holds one is replaced by grants on each of its entries (recursively),
/// leaving the hidden one out. The root itself is then not listable.
pub(super) fn grant_around(out: &mut Vec<Grant>, root: &Path, rights: u64, hidden: &[PathBuf]) {
    grant_around_at(out, root, rights, hidden, 0);
}

fn grant_around_at(
    out: &mut Vec<Grant>,
    root: &Path,
    rights: u64,
    hidden: &[PathBuf],
    depth: usize,
) {
    if hidden.iter().any(|h| h == root) {
        return;
    }
    if !hidden.iter().any(|h| h.starts_with(root)) {
        out.push(Grant {
            path: root.to_path_buf(),
            rights,
        });
        return;
    }
    if depth >= MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        grant_around_at(out, &entry.path(), rights, hidden, depth + 1);
    }
}

/// A ruleset built from `grants` (missing paths are skipped: a toolchain
/// that is not installed needs no rule). `network` leaves TCP unhandled;
/// without it every TCP bind and connect is refused.
pub(super) fn ruleset(abi: u32, grants: &[Grant], network: bool) -> std::io::Result<OwnedFd> {
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
    for grant in grants {
        let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
            .open(&grant.path)
        else {
            continue;
        };
        let is_dir = file.metadata().map(|m| m.is_dir()).unwrap_or(false);
        let mut rights = grant.rights & handled;
        if !is_dir {
            rights &= FILE_RIGHTS;
        }
        if rights == 0 {
            continue;
        }
        sys::add_path_rule(&ruleset, file.as_fd(), rights)
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
    fn grants_go_around_hidden_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["a/data/secret", "a/tools", "b"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("a/file"), "x").unwrap();
        let hidden = vec![root.join("a/data")];
        let mut grants = Vec::new();
        grant_around(&mut grants, root, READ, &hidden);
        let mut paths: Vec<_> = grants.iter().map(|g| g.path.clone()).collect();
        paths.sort();
        assert_eq!(
            paths,
            vec![root.join("a/file"), root.join("a/tools"), root.join("b")]
        );
        let mut unrelated = Vec::new();
        grant_around(&mut unrelated, &root.join("b"), READ, &hidden);
        assert_eq!(unrelated.len(), 1);
    }
}
