//! Where a tool may touch the filesystem: inside the workspace, outside the deny list.

use std::path::{Component, Path, PathBuf};

use garrison_contracts::openclawssy::{ToolError, ToolErrorCode};

/// Deny-list entries every runtime starts with: git internals are the
/// vault's, not the unit's.
pub const DEFAULT_DENY: &[&str] = &[".git"];

/// Longest path a tool takes, in bytes (Linux's `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest path component, in bytes (Linux's `NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;
/// Longest path a message or detail repeats; longer ones are cut in the middle.
const SHOWN_CHARS: usize = 120;

/// `path` as errors show it: whole when short, else its start and end
/// around an ellipsis, so a hostile path cannot flood a message.
pub fn shown(path: &str) -> String {
    let count = path.chars().count();
    if count <= SHOWN_CHARS {
        return path.to_string();
    }
    let head: String = path.chars().take(SHOWN_CHARS * 2 / 3).collect();
    let tail: String = path.chars().skip(count - SHOWN_CHARS / 3).collect();
    format!("{head}…{tail}")
}

/// Resolves a tool's `requested` path to an absolute path inside `workspace`.
///
/// Denied (`policy.denied`, details `{path, reason}`): absolute paths, `..`
/// that climbs above the workspace, paths whose existing part resolves
/// (through symlinks) outside the workspace, dangling symlinks, and paths
/// under a `deny` prefix (workspace-relative, matched per component, checked
/// both as written and after symlinks). The path need not exist yet: the
/// longest existing ancestor is canonicalised and the rest appended.
///
/// This is a check, not a sandbox: the fs tools then open files with
/// `sandbox::open_beneath`, which refuses a symlink swapped in since; a
/// directory listed or created is not re-checked that way.
pub fn resolve(workspace: &Path, requested: &str, deny: &[String]) -> Result<PathBuf, ToolError> {
    if requested.trim().is_empty() {
        return Err(ToolError::new(
            ToolErrorCode::ToolInputInvalid,
            "path is empty",
        ));
    }
    if requested.contains('\0') {
        return Err(ToolError::new(
            ToolErrorCode::ToolInputInvalid,
            "path contains a NUL byte",
        ));
    }
    let show = shown(requested);
    let too_long = |what: String| {
        ToolError::new(ToolErrorCode::ToolInputInvalid, format!("`{show}`: {what}"))
            .with_detail("path", show.as_str())
    };
    if requested.len() > MAX_PATH_BYTES {
        return Err(too_long(format!(
            "the path is {} bytes long (at most {MAX_PATH_BYTES})",
            requested.len()
        )));
    }
    if let Some(long) = requested.split('/').find(|c| c.len() > MAX_NAME_BYTES) {
        return Err(too_long(format!(
            "a name is {} bytes long (at most {MAX_NAME_BYTES})",
            long.len()
        )));
    }
    let denied = |reason: &str| {
        ToolError::new(
            ToolErrorCode::PolicyDenied,
            format!("`{show}` is not allowed: {reason}"),
        )
        .with_detail("path", show.as_str())
        .with_detail("reason", reason)
    };

    let mut rel = PathBuf::new();
    for component in Path::new(requested).components() {
        match component {
            Component::Normal(part) => rel.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !rel.pop() {
                    return Err(denied("path escapes the workspace"));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(denied("absolute paths are not allowed"));
            }
        }
    }
    if let Some(prefix) = denied_prefix(&rel, deny) {
        return Err(denied(&format!("`{prefix}` is on the deny list")));
    }

    let root = workspace.canonicalize().map_err(|e| {
        ToolError::new(
            ToolErrorCode::InternalError,
            format!("workspace {} is unusable: {e}", workspace.display()),
        )
    })?;
    // Canonicalise the longest existing ancestor (following every symlink in
    // it) and append the part that does not exist yet.
    let parts: Vec<_> = rel.components().collect();
    let mut resolved = root.join(&rel);
    for existing in (1..=parts.len()).rev() {
        let candidate = root.join(parts[..existing].iter().collect::<PathBuf>());
        if std::fs::symlink_metadata(&candidate).is_err() {
            continue;
        }
        resolved = candidate.canonicalize().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => denied("dangling symlink"),
            _ => denied("path cannot be resolved"),
        })?;
        resolved.extend(&parts[existing..]);
        break;
    }
    let Ok(inside) = resolved.strip_prefix(&root) else {
        return Err(denied("path resolves outside the workspace"));
    };
    if let Some(prefix) = denied_prefix(inside, deny) {
        return Err(denied(&format!("`{prefix}` is on the deny list")));
    }
    Ok(resolved)
}

/// A deny entry as a workspace-relative path (`./notes/` → `notes`); empty
/// for an entry that names nothing.
pub fn deny_entry(entry: &str) -> &str {
    entry.trim_matches('/').trim_start_matches("./")
}

/// Whether `path` (workspace-relative) is a deny entry or under one. Returns
/// the matching entry.
pub fn denied_prefix<'a>(path: &Path, deny: &'a [String]) -> Option<&'a str> {
    deny.iter()
        .map(|d| deny_entry(d))
        .zip(deny)
        .find(|(prefix, _)| !prefix.is_empty() && path.starts_with(prefix))
        .map(|(_, original)| original.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny() -> Vec<String> {
        DEFAULT_DENY.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lexical_rules() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let ok = |p: &str| resolve(dir.path(), p, &deny()).unwrap();
        let code = |p: &str| resolve(dir.path(), p, &deny()).unwrap_err().code;
        assert_eq!(ok("."), root);
        assert_eq!(ok("a/./b/../c.txt"), root.join("a/c.txt"));
        assert_eq!(code("../x"), ToolErrorCode::PolicyDenied);
        assert_eq!(code("a/../../x"), ToolErrorCode::PolicyDenied);
        assert_eq!(code("/etc/passwd"), ToolErrorCode::PolicyDenied);
        assert_eq!(code(".git"), ToolErrorCode::PolicyDenied);
        assert_eq!(code("./.git/HEAD"), ToolErrorCode::PolicyDenied);
        assert_eq!(ok(".github/x.yml"), root.join(".github/x.yml"));
        assert_eq!(code(""), ToolErrorCode::ToolInputInvalid);
    }

    #[test]
    fn overlong_paths_and_names_are_invalid_input_shown_shortened() {
        let dir = tempfile::tempdir().unwrap();
        for path in ["a/".repeat(2500), format!("d/{}.txt", "n".repeat(300))] {
            let e = resolve(dir.path(), &path, &deny()).unwrap_err();
            assert_eq!(e.code, ToolErrorCode::ToolInputInvalid, "{}", e.message);
            assert!(e.message.chars().count() < 250, "{}", e.message);
            assert!(e.message.contains('…'), "{}", e.message);
        }
        let longest_name = "n".repeat(MAX_NAME_BYTES);
        assert!(resolve(dir.path(), &longest_name, &deny()).is_ok());
        let denied = resolve(dir.path(), &format!("../{}", "x/".repeat(200)), &deny()).unwrap_err();
        assert_eq!(denied.code, ToolErrorCode::PolicyDenied);
        assert!(denied.message.chars().count() < 250, "{}", denied.message);
    }

    #[test]
    fn shown_keeps_short_paths_and_cuts_long_ones_on_char_boundaries() {
        assert_eq!(shown("src/a.rs"), "src/a.rs");
        let long = "é".repeat(500);
        let s = shown(&long);
        assert_eq!(s.chars().count(), 80 + 1 + 40);
        assert!(s.starts_with('é') && s.ends_with('é'));
    }

    #[test]
    fn deny_prefixes_match_whole_components() {
        let d = vec!["secrets/".to_string(), "./.git".to_string()];
        assert_eq!(denied_prefix(Path::new("secrets/k"), &d), Some("secrets/"));
        assert_eq!(denied_prefix(Path::new(".git"), &d), Some("./.git"));
        assert_eq!(denied_prefix(Path::new("secrets2/k"), &d), None);
        assert_eq!(denied_prefix(Path::new("src/.git"), &d), None);
    }

    #[test]
    fn symlinks_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("alias")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).unwrap();
        std::os::unix::fs::symlink(dir.path().join(".git"), dir.path().join("g")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/x", dir.path().join("dangling")).unwrap();
        let r = |p: &str| resolve(dir.path(), p, &deny());
        assert_eq!(r("alias/new/f.txt").unwrap(), root.join("real/new/f.txt"));
        let e = r("out/f.txt").unwrap_err();
        assert_eq!(e.code, ToolErrorCode::PolicyDenied);
        assert_eq!(e.details["reason"], "path resolves outside the workspace");
        assert_eq!(r("g/config").unwrap_err().code, ToolErrorCode::PolicyDenied);
        assert_eq!(r("dangling").unwrap_err().code, ToolErrorCode::PolicyDenied);
    }
}
