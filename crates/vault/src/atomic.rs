//! Whole-file writes that readers never see half done: a temporary file beside the target,
//! flushed, then renamed over it. Renaming also replaces a symlink at the target instead of
//! writing through it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Result, io_at};

pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    replace_with(path, |file| file.write_all(data))
}

/// Copies `src` over `dest` atomically, keeping `src`'s permission bits (a 0600 `.env` stays 0600).
pub(crate) fn copy_atomic(src: &Path, dest: &Path) -> Result<()> {
    let mut from = File::open(src).map_err(io_at("opening", src))?;
    let perms = from
        .metadata()
        .map_err(io_at("reading", src))?
        .permissions();
    replace_with(dest, |file| {
        file.set_permissions(perms)?;
        io::copy(&mut from, file).map(|_| ())
    })
}

fn replace_with(path: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> Result<()> {
    let tmp = temp_path(path);
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        fill(&mut file)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_at("writing", path)(e));
    }
    // Make the rename itself durable.
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_at("syncing", dir))?;
    }
    Ok(())
}

fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}
