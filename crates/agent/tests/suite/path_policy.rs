//! The workspace path policy on a real filesystem.

use std::path::Path;

use garrison_agent::tools::resolve;
use garrison_contracts::openclawssy::ToolErrorCode;

fn deny() -> Vec<String> {
    vec![".git".to_string()]
}

fn assert_denied(ws: &Path, requested: &str, reason: &str) {
    let err = resolve(ws, requested, &deny()).unwrap_err();
    assert_eq!(err.code, ToolErrorCode::PolicyDenied, "{requested}");
    assert_eq!(err.details["path"], requested);
    assert_eq!(err.details["reason"], reason, "{requested}");
}

#[test]
fn escapes_are_denied() {
    let ws = tempfile::tempdir().unwrap();
    assert_denied(ws.path(), "../x", "path escapes the workspace");
    assert_denied(ws.path(), "docs/../../x", "path escapes the workspace");
    assert_denied(ws.path(), "/etc/passwd", "absolute paths are not allowed");
}

#[test]
fn symlinks_leaving_the_workspace_are_denied() {
    let ws = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "s").unwrap();
    std::os::unix::fs::symlink(outside.path(), ws.path().join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        ws.path().join("secret.txt"),
    )
    .unwrap();
    assert_denied(
        ws.path(),
        "elsewhere/secret.txt",
        "path resolves outside the workspace",
    );
    assert_denied(
        ws.path(),
        "elsewhere/new/file.txt",
        "path resolves outside the workspace",
    );
    assert_denied(
        ws.path(),
        "secret.txt",
        "path resolves outside the workspace",
    );
}

#[test]
fn deny_list_is_enforced() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir(ws.path().join(".git")).unwrap();
    std::fs::write(ws.path().join(".git/config"), "").unwrap();
    assert_denied(ws.path(), ".git/config", "`.git` is on the deny list");
    assert_denied(ws.path(), "src/../.git", "`.git` is on the deny list");
    // Reaching it through a symlink is the same path.
    std::os::unix::fs::symlink(ws.path().join(".git"), ws.path().join("meta")).unwrap();
    assert_denied(ws.path(), "meta/config", "`.git` is on the deny list");
}

#[test]
fn paths_inside_resolve() {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path().canonicalize().unwrap();
    assert_eq!(
        resolve(ws.path(), "a/../b.txt", &deny()).unwrap(),
        root.join("b.txt")
    );
    assert_eq!(
        resolve(ws.path(), "docs/guide/new/page.md", &deny()).unwrap(),
        root.join("docs/guide/new/page.md")
    );
    std::fs::create_dir(ws.path().join("docs")).unwrap();
    std::os::unix::fs::symlink(ws.path().join("docs"), ws.path().join("d")).unwrap();
    assert_eq!(
        resolve(ws.path(), "d/x.md", &deny()).unwrap(),
        root.join("docs/x.md")
    );
    assert_eq!(
        resolve(ws.path(), ".gitignore", &deny()).unwrap(),
        root.join(".gitignore")
    );
}
