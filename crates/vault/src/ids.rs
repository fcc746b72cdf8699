//! Checks on ids, branch names and relative paths before they reach a path or a git argument.

use std::path::{Component, Path};

use crate::error::{Result, VaultError};

const ID_RULE: &str = "[A-Za-z0-9][A-Za-z0-9._-]{0,127}";

/// Checks an order or theater id: `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`, and additionally no `..`
/// and no trailing `.` or `.lock`, since ids become part of git ref names
/// (`order_<id>`, `archive/order_<id>`) where those are not allowed.
pub fn validate_id(id: &str) -> Result<()> {
    if segment_ok(id) {
        Ok(())
    } else {
        Err(VaultError::InvalidId(format!(
            "{id:?} must match {ID_RULE} (and contain no `..`, nor end with `.` or `.lock`)"
        )))
    }
}

fn segment_ok(s: &str) -> bool {
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    first_ok
        && s.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !s.contains("..")
        && !s.ends_with('.')
        && !s.ends_with(".lock")
}

/// A branch name: `/`-separated segments, each following the id rule.
pub(crate) fn validate_branch(branch: &str) -> Result<()> {
    if branch.len() <= 200 && branch.split('/').all(segment_ok) {
        Ok(())
    } else {
        Err(VaultError::InvalidId(format!(
            "branch {branch:?} must be `/`-separated segments matching {ID_RULE}"
        )))
    }
}

/// A path relative to a repository root that stays inside it and does not touch git metadata.
pub(crate) fn validate_relative_path(path: &str) -> Result<()> {
    let bad = |why: &str| Err(VaultError::InvalidId(format!("path {path:?} {why}")));
    if path.is_empty() || path.chars().any(char::is_control) {
        return bad("must be non-empty and free of control characters");
    }
    for component in Path::new(path).components() {
        match component {
            Component::Normal(name) if name.eq_ignore_ascii_case(".git") => {
                return bad("must not touch .git");
            }
            Component::Normal(_) => {}
            _ => return bad("must be relative, without `.` or `..` components"),
        }
    }
    Ok(())
}

/// A revision a caller names (a sha or a ref): never an option, never a range.
pub(crate) fn validate_rev(rev: &str) -> Result<()> {
    let ok = !rev.is_empty()
        && rev.len() <= 256
        && !rev.starts_with('-')
        && !rev.contains("..")
        && !rev.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(VaultError::InvalidId(format!(
            "revision {rev:?} must be a commit sha or ref name"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "01JABC", "order-1.x_y", &"a".repeat(128)] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            ".a",
            "_a",
            "a/b",
            "a b",
            "a..b",
            "a.",
            "a.lock",
            "ü",
            "../x",
            &"a".repeat(129),
        ] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn branches_and_paths() {
        assert!(validate_branch("order_1").is_ok());
        assert!(validate_branch("garrison/order_1").is_ok());
        for bad in ["", "/a", "a/", "a//b", "-a", "a..b", "a b"] {
            assert!(validate_branch(bad).is_err(), "{bad}");
        }
        assert!(validate_relative_path(".env").is_ok());
        assert!(validate_relative_path("config/local.toml").is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "./a",
            ".git/config",
            "a/.GIT/x",
        ] {
            assert!(validate_relative_path(bad).is_err(), "{bad}");
        }
        assert!(validate_rev("HEAD").is_ok());
        for bad in ["", "--all", "a..b", "a b"] {
            assert!(validate_rev(bad).is_err(), "{bad}");
        }
    }
}
