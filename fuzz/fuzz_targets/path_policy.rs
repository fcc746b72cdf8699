//! Any requested path: the policy never panics, and whatever it allows lies
//! inside the workspace and outside the deny list.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use garrison_agent::tools::path_policy::resolve;
use libfuzzer_sys::fuzz_target;

/// A workspace with a file, a directory, a denied `.git` and a symlink that
/// points out of it, created once per process.
fn workspace() -> &'static (PathBuf, PathBuf) {
    static WS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    WS.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("garrison-fuzz-{}", std::process::id()));
        let ws = root.join("ws");
        let _ = std::fs::create_dir_all(ws.join("src/.git"));
        let _ = std::fs::create_dir_all(ws.join(".git"));
        let _ = std::fs::write(ws.join("src/a.txt"), "a");
        let _ = std::os::unix::fs::symlink(&root, ws.join("out"));
        let canonical = ws.canonicalize().unwrap_or_else(|_| ws.clone());
        (ws, canonical)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(requested) = std::str::from_utf8(data) else {
        return;
    };
    let (ws, canonical) = workspace();
    let deny = vec![".git".to_string()];
    if let Ok(path) = resolve(ws, requested, &deny) {
        assert!(path.starts_with(canonical), "{requested:?} -> {}", path.display());
        assert!(!path.starts_with(canonical.join(".git")), "{requested:?} -> {}", path.display());
    }
});
