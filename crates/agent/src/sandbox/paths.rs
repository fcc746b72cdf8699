//! Splitting a directory tree around a set of holes: what Landlock grants
//! (a system tree minus hidden paths) and what mounts cover (the data dir
//! minus the paths a program needs) are both computed this way.

use std::path::{Path, PathBuf};

/// How deep a tree is opened up around its holes.
const MAX_DEPTH: usize = 16;

/// The largest subtrees of `root` that hold none of `holes`: `root` itself
/// when no hole lies beneath it, nothing when it is a hole, else its
/// entries split the same way. Holes elsewhere (above `root` included) do
/// not count. Missing paths yield nothing.
pub(super) fn around(root: &Path, holes: &[PathBuf]) -> Vec<PathBuf> {
    split(root, holes).whole
}

/// A tree split around its holes.
#[derive(Debug, Default)]
pub(super) struct Split {
    /// The subtrees that hold no hole.
    pub whole: Vec<PathBuf>,
    /// The directories opened up to get them (their listing decided the
    /// split, so a change to one of them may change it).
    pub opened: Vec<PathBuf>,
}

/// [`around`], also telling which directories were opened up.
pub(super) fn split(root: &Path, holes: &[PathBuf]) -> Split {
    let beneath: Vec<PathBuf> = holes
        .iter()
        .filter(|h| h.starts_with(root))
        .cloned()
        .collect();
    let mut out = Split::default();
    split_at(root, &beneath, &mut out, 0);
    out
}

fn split_at(root: &Path, holes: &[PathBuf], out: &mut Split, depth: usize) {
    if root.symlink_metadata().is_err() || holes.iter().any(|h| h == root) {
        return;
    }
    if !holes.iter().any(|h| h.starts_with(root)) {
        out.whole.push(root.to_path_buf());
        return;
    }
    if depth >= MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    out.opened.push(root.to_path_buf());
    for entry in entries.flatten() {
        split_at(&entry.path(), holes, out, depth + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_split_around_their_holes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["a/data/secret", "a/tools", "b"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("a/file"), "x").unwrap();
        let holes = vec![root.join("a/data")];
        let mut paths = around(root, &holes);
        paths.sort();
        assert_eq!(
            paths,
            vec![root.join("a/file"), root.join("a/tools"), root.join("b")]
        );
        assert_eq!(around(&root.join("b"), &holes), vec![root.join("b")]);
        assert!(around(&root.join("a/data"), &holes).is_empty());
        // A root inside a hole is whole: the hole is above it.
        assert_eq!(
            around(&root.join("a/data/secret"), &holes),
            vec![root.join("a/data/secret")]
        );
        assert!(around(&root.join("missing"), &holes).is_empty());
        assert_eq!(
            split(root, &holes).opened,
            vec![root.to_path_buf(), root.join("a")]
        );
    }
}
