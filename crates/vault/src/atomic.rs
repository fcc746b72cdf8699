//! Whole-file writes that readers never see half done, through
//! `garrison_files` (a renamed temp file also replaces a symlink at the
//! target instead of writing through it).

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use garrison_files::{AtomicFile, SHARED};

use crate::error::{Result, io_at};

pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    garrison_files::write_atomic(path, data, SHARED).map_err(io_at("writing", path))
}

/// Copies `src` over `dest` atomically, keeping `src`'s permission bits (a 0600 `.env` stays 0600).
pub(crate) fn copy_atomic(src: &Path, dest: &Path) -> Result<()> {
    let mut from = File::open(src).map_err(io_at("opening", src))?;
    let mode = from
        .metadata()
        .map_err(io_at("reading", src))?
        .permissions()
        .mode();
    let copied = (|| {
        let mut to = AtomicFile::create(dest, mode & 0o7777)?;
        // The umask narrowed the mode the temp file was created with.
        to.file()
            .set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))?;
        io::copy(&mut from, to.file())?;
        to.file().flush()?;
        to.commit()
    })();
    copied.map_err(io_at("writing", dest))
}
