//! A pids cgroup per sandboxed program: the only process limit that binds
//! root, whom `RLIMIT_NPROC` ignores. Made beside the server's own cgroup in
//! the pids hierarchy (v1, or v2 where the controller is delegated), joined
//! by the child before anything runs, removed when the program is done.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A pids cgroup that exists until dropped.
#[derive(Debug)]
pub(super) struct PidsCgroup {
    dir: PathBuf,
}

impl PidsCgroup {
    /// A new cgroup holding at most `max` processes.
    pub fn create(max: u64) -> io::Result<PidsCgroup> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let parent = own_pids_dir()?;
        let name = format!(
            "garrison-sandbox-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = parent.join(name);
        std::fs::create_dir(&dir)?;
        let cgroup = PidsCgroup { dir };
        std::fs::write(cgroup.dir.join("pids.max"), max.to_string())?;
        Ok(cgroup)
    }

    /// `cgroup.procs`, open for the child to write its own pid (`0`) into.
    pub fn procs(&self) -> io::Result<File> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(self.dir.join("cgroup.procs"))
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // Killed processes take a moment to leave; until then rmdir is EBUSY.
        for _ in 0..50 {
            match std::fs::remove_dir(&self.dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => return,
            }
        }
        tracing::warn!(cgroup = %self.dir.display(), "sandbox cgroup still busy; left behind");
    }
}

/// The directory of this process's own cgroup in the pids hierarchy.
fn own_pids_dir() -> io::Result<PathBuf> {
    let unavailable = || io::Error::new(io::ErrorKind::NotFound, "no pids cgroup controller");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    let own = std::fs::read_to_string("/proc/self/cgroup")?;
    // v1: a hierarchy with the pids controller.
    if let Some(mount) = mount_point(&mounts, |fstype, opts| {
        fstype == "cgroup" && opts.split(',').any(|o| o == "pids")
    }) && let Some(path) = own
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(1).zip(l.splitn(3, ':').nth(2)))
        .find(|(controllers, _)| controllers.split(',').any(|c| c == "pids"))
        .map(|(_, path)| path)
    {
        return Ok(join(&mount, path));
    }
    // v2: the unified hierarchy, if pids is enabled for our children.
    let mount = mount_point(&mounts, |fstype, _| fstype == "cgroup2").ok_or_else(unavailable)?;
    let path = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(unavailable)?;
    let dir = join(&mount, path);
    let enabled = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    if enabled.split_whitespace().any(|c| c == "pids") {
        Ok(dir)
    } else {
        Err(unavailable())
    }
}

fn join(mount: &Path, path: &str) -> PathBuf {
    mount.join(path.trim_start_matches('/'))
}

/// The mount point of the first mount `matches(fstype, super_options)`.
fn mount_point(mountinfo: &str, matches: impl Fn(&str, &str) -> bool) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        // `id parent maj:min root mountpoint opts [optional...] - fstype source superopts`
        let (head, tail) = line.split_once(" - ")?;
        let mountpoint = head.split(' ').nth(4)?;
        let mut tail = tail.split(' ');
        let fstype = tail.next()?;
        let superopts = tail.nth(1).unwrap_or("");
        matches(fstype, superopts).then(|| PathBuf::from(mountpoint))
    })
}

/// Whether a pids cgroup can be made here.
pub(super) fn available() -> bool {
    PidsCgroup::create(1).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_read_from_mountinfo() {
        let info = "30 25 0:26 / /sys/fs/cgroup/pids rw,relatime shared:9 - cgroup cgroup rw,pids\n\
                    31 25 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let v1 = mount_point(info, |t, o| {
            t == "cgroup" && o.split(',').any(|o| o == "pids")
        });
        assert_eq!(v1, Some(PathBuf::from("/sys/fs/cgroup/pids")));
        let v2 = mount_point(info, |t, _| t == "cgroup2");
        assert_eq!(v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(mount_point(info, |t, _| t == "tmpfs"), None);
    }
}
