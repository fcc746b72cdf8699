//! Durable file writes, the one way Garrison writes a file it must not lose
//! or show half-written.
//!
//! - [`AtomicFile`]: a temp file beside the target (unique name, created
//!   exclusively with the final mode before any byte is written), fsynced,
//!   renamed over the target, then the directory fsynced. Readers see the
//!   old file or the new one; a crash leaves at most a stray temp file. A
//!   rename replaces a symlink at the target rather than writing through it.
//! - [`write_atomic`], [`write_json`], [`create_once`]: the common shapes.
//! - [`append_line`] / [`read_lines`]: JSON lines appended with one `write`
//!   on an `O_APPEND` file and fsynced; a torn last line is skipped on read.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Mode of files whose content is private to the data dir's owner.
pub const PRIVATE: u32 = 0o600;
/// Mode of ordinary files (the umask still applies).
pub const SHARED: u32 = 0o644;

/// A file being written in place of `target`; nothing is visible at
/// `target` until [`AtomicFile::commit`]. Dropped uncommitted, it removes
/// its temp file.
#[derive(Debug)]
pub struct AtomicFile {
    file: File,
    tmp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Creates the temp file (and the target's directory) with `mode`.
    pub fn create(target: &Path, mode: u32) -> io::Result<Self> {
        let dir = parent(target);
        fs::create_dir_all(dir)?;
        // Names are unique within this process; pids are unique among live
        // processes, so only a stale temp of a dead process can collide and
        // `create_new` then moves on to the next name.
        let mut last = None;
        for _ in 0..16 {
            let tmp = temp_path(target);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&tmp)
            {
                Ok(file) => {
                    return Ok(Self {
                        file,
                        tmp,
                        target: target.to_path_buf(),
                        committed: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free temp name")))
    }

    /// The temp file, to write into.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Fsyncs the content, renames it over the target and fsyncs the
    /// directory so the rename survives a crash.
    pub fn commit(mut self) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(&self.tmp, &self.target)?;
        self.committed = true;
        sync_dir(parent(&self.target))
    }

    /// Fsyncs the content and links it at the target only if nothing is
    /// there yet: `Ok(false)` when the target already existed (left as it
    /// was). Two processes racing to create the same file agree on one.
    pub fn commit_new(mut self) -> io::Result<bool> {
        self.file.sync_all()?;
        let created = match fs::hard_link(&self.tmp, &self.target) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            // A filesystem without hard links: an atomic rename still never
            // shows a partial file.
            Err(_) => {
                fs::rename(&self.tmp, &self.target)?;
                self.committed = true;
                true
            }
        };
        if created {
            sync_dir(parent(&self.target))?;
        }
        Ok(created)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // After a rename the temp name is gone; after `commit_new` (linked or
        // not) and after any failure it must not stay behind.
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Replaces `path` with `bytes` atomically and durably, creating it with `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut f = AtomicFile::create(path, mode)?;
    f.file().write_all(bytes)?;
    f.commit()
}

/// [`write_atomic`] of `value` as pretty JSON with a trailing newline.
pub fn write_json(path: &Path, value: &impl Serialize, mode: u32) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes, mode)
}

/// Writes `bytes` at `path` only if nothing is there: `Ok(false)` when a file
/// already existed. The file appears whole or not at all.
pub fn create_once(path: &Path, bytes: &[u8], mode: u32) -> io::Result<bool> {
    let mut f = AtomicFile::create(path, mode)?;
    f.file().write_all(bytes)?;
    f.commit_new()
}

/// Appends `value` as one JSON line with a single `write` on an `O_APPEND`
/// file (created 0600), then fsyncs it. A new file also gets its directory
/// entry synced.
pub fn append_line(path: &Path, value: &impl Serialize) -> io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(io::Error::other)?;
    line.push(b'\n');
    let dir = parent(path);
    fs::create_dir_all(dir)?;
    let existed = path.exists();
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(PRIVATE)
        .open(path)?;
    f.write_all(&line)?;
    f.sync_data()?;
    if !existed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Every line of a JSON-lines file that parses as `T`, in order. A missing
/// file is empty. A line that does not parse (a write cut short by a crash)
/// is skipped with a warning rather than hiding the lines after it.
pub fn read_lines<T: DeserializeOwned>(path: &Path) -> io::Result<Vec<T>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(v) => out.push(v),
            Err(e) => {
                tracing::warn!(file = %path.display(), line = i + 1, error = %e, "skipping an unreadable line");
            }
        }
    }
    Ok(out)
}

/// Makes a new or renamed entry of `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The directory `path` lives in (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

static SEQ: AtomicU64 = AtomicU64::new(0);

fn temp_path(target: &Path) -> PathBuf {
    temp_name(target, SEQ.fetch_add(1, Ordering::Relaxed))
}

fn temp_name(target: &Path, n: u64) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent(target).join(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn write_atomic_sets_mode_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b.json");
        write_atomic(&path, b"one", PRIVATE).unwrap();
        write_atomic(&path, b"two", PRIVATE).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(entries(&dir.path().join("a")), ["b.json"]);
    }

    #[test]
    fn an_uncommitted_file_leaves_the_target_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        write_atomic(&path, b"old", SHARED).unwrap();
        let mut f = AtomicFile::create(&path, SHARED).unwrap();
        f.file().write_all(b"half").unwrap();
        drop(f);
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(entries(dir.path()), ["t"]);
    }

    #[test]
    fn a_stale_temp_of_the_same_name_is_stepped_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        // The next names this process would pick, left behind as if by a
        // dead process that had the same pid (other tests may take a few).
        let next = SEQ.load(Ordering::Relaxed);
        for n in next..next + 8 {
            fs::write(temp_name(&path, n), b"stale").unwrap();
        }
        write_atomic(&path, b"new", SHARED).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn create_once_keeps_the_first_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        assert!(create_once(&path, b"first", PRIVATE).unwrap());
        assert!(!create_once(&path, b"second", PRIVATE).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(entries(dir.path()), ["token"]);
    }

    #[test]
    fn a_symlink_at_the_target_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, b"keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        write_atomic(&link, b"new", SHARED).unwrap();
        assert_eq!(fs::read(&outside).unwrap(), b"keep");
        assert!(!fs::symlink_metadata(&link).unwrap().is_symlink());
    }

    #[test]
    fn torn_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.jsonl");
        append_line(&path, &serde_json::json!({"n": 1})).unwrap();
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"n\": 2\n")
            .unwrap();
        append_line(&path, &serde_json::json!({"n": 3})).unwrap();
        let lines: Vec<serde_json::Value> = read_lines(&path).unwrap();
        assert_eq!(
            lines,
            [serde_json::json!({"n": 1}), serde_json::json!({"n": 3})]
        );
        assert!(
            read_lines::<serde_json::Value>(&dir.path().join("none"))
                .unwrap()
                .is_empty()
        );
    }
}
