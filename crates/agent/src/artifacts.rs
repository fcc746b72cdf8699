//! The files a unit leaves under `<workspace>/outputs/`, as `aar.json` artifacts.

use std::path::{Path, PathBuf};

use garrison_contracts::ironclaw::artifacts::ArtifactRef;

/// Where units put their deliverables, relative to the workspace.
pub const OUTPUTS_DIR: &str = "outputs";

/// MIME type by file extension (case-insensitive).
pub fn mime_for(path: &str) -> &'static str {
    let ext = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("txt") => "text/plain",
        Some("md") => "text/markdown",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// Creates `<workspace>/outputs/` and returns it. Refuses an `outputs` that
/// is a symlink: unit output written through it could land outside the
/// worktree.
pub fn ensure_outputs_dir(workspace: &Path) -> std::io::Result<PathBuf> {
    let dir = workspace.join(OUTPUTS_DIR);
    if let Ok(m) = std::fs::symlink_metadata(&dir)
        && m.file_type().is_symlink()
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is a symlink", dir.display()),
        ));
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Every regular file under `<workspace>/outputs/`, sorted, with
/// worktree-relative `/`-separated paths. Symlinks are skipped: an artifact
/// must be content the unit wrote, not a pointer that may leave the worktree.
/// A missing `outputs/` is no artifacts.
pub fn collect_artifacts(workspace: &Path) -> std::io::Result<Vec<ArtifactRef>> {
    let mut found = Vec::new();
    let root = workspace.join(OUTPUTS_DIR);
    match std::fs::symlink_metadata(&root) {
        Ok(m) if m.is_dir() => walk(&root, OUTPUTS_DIR, &mut found)?,
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    found.sort();
    Ok(found
        .into_iter()
        .map(|path| ArtifactRef {
            mime_type: mime_for(&path).to_string(),
            path,
        })
        .collect())
}

fn walk(dir: &Path, rel: &str, found: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        // Paths go into JSON; a name that is not UTF-8 cannot be named there.
        let Some(name) = name.to_str() else { continue };
        let rel = format!("{rel}/{name}");
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), &rel, found)?;
        } else if kind.is_file() {
            found.push(rel);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_by_extension() {
        assert_eq!(mime_for("outputs/a.txt"), "text/plain");
        assert_eq!(mime_for("outputs/A.MD"), "text/markdown");
        assert_eq!(mime_for("outputs/x.json"), "application/json");
        assert_eq!(mime_for("outputs/bin"), "application/octet-stream");
        assert_eq!(mime_for("outputs/y.png"), "application/octet-stream");
    }

    #[test]
    fn lists_nested_sorted_and_skips_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        assert!(collect_artifacts(dir.path()).unwrap().is_empty());
        let out = dir.path().join("outputs");
        std::fs::create_dir_all(out.join("sub")).unwrap();
        std::fs::write(out.join("z.md"), "z").unwrap();
        std::fs::write(out.join("sub/b.json"), "{}").unwrap();
        std::fs::write(out.join("a.txt"), "a").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", out.join("link.txt")).unwrap();
        let got = collect_artifacts(dir.path()).unwrap();
        let paths: Vec<_> = got.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(
            paths,
            ["outputs/a.txt", "outputs/sub/b.json", "outputs/z.md"]
        );
        assert_eq!(got[1].mime_type, "application/json");
    }

    #[test]
    fn outputs_dir_must_not_be_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ensure_outputs_dir(dir.path()).unwrap().is_dir());
        let other = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(other.path(), other.path().join("outputs")).unwrap();
        assert!(ensure_outputs_dir(other.path()).is_err());
    }
}
