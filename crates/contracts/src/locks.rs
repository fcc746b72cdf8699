//! Lock resources: normalisation and path-prefix conflicts (docs/interface.md "Validators").

use serde::{Deserialize, Serialize};

use crate::verdict::Code;

/// A resource that is not a usable lock path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    #[error("lock resource {0:?} is empty after normalisation")]
    Empty(String),
}

impl LockError {
    /// The validator code for this error (`SCHEMA_INVALID`).
    pub fn code(&self) -> Code {
        Code::SchemaInvalid
    }
}

/// One entry of `active_locks[]` (`task_id`, `resource`, `active`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Lock {
    pub task_id: String,
    pub resource: String,
    pub active: bool,
}

impl Lock {
    /// A lock as given (not yet normalised).
    pub fn new(task_id: impl Into<String>, resource: impl Into<String>, active: bool) -> Lock {
        Lock {
            task_id: task_id.into(),
            resource: resource.into(),
            active,
        }
    }

    /// The same lock with its resource normalised.
    pub fn normalized(&self) -> Result<Lock, LockError> {
        Ok(Lock {
            resource: normalize_resource(&self.resource)?,
            ..self.clone()
        })
    }
}

/// Normalises a lock resource: trim, `\` → `/`, POSIX-normalise (`.`, `..`,
/// repeated `/`), drop a trailing `/` except for the root `/`.
///
/// A relative path that resolves to nothing (`""`, `.`, `a/..`) is an error:
/// locking "the current directory" by accident must not silently lock everything.
/// Leading `..` of a relative path is kept, as POSIX `normpath` does.
pub fn normalize_resource(raw: &str) -> Result<String, LockError> {
    // One pass can expose new whitespace at the ends (`./ x` → ` x`), so iterate
    // to a fixpoint; every pass only shortens the string or removes backslashes.
    let mut cur = raw.to_string();
    loop {
        let next = normalize_once(&cur);
        if next == cur {
            break;
        }
        cur = next;
    }
    if cur.is_empty() {
        Err(LockError::Empty(raw.to_string()))
    } else {
        Ok(cur)
    }
}

fn normalize_once(raw: &str) -> String {
    let s = raw.trim().replace('\\', "/");
    let absolute = s.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in s.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                // `/..` is `/`; a relative path keeps climbing.
                _ if absolute => {}
                _ => parts.push(".."),
            },
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

/// Whether two resources conflict: equal, or one is a path-prefix of the other
/// at a `/` boundary. The root `/` conflicts with every absolute path. Inputs
/// are normalised first; one that normalises to nothing conflicts with nothing
/// (validators reject it before asking).
pub fn conflicts(a: &str, b: &str) -> bool {
    match (normalize_resource(a), normalize_resource(b)) {
        (Ok(a), Ok(b)) => conflicts_normalized(&a, &b),
        _ => false,
    }
}

/// [`conflicts`] for already-normalised resources.
pub fn conflicts_normalized(a: &str, b: &str) -> bool {
    is_within(a, b) || is_within(b, a)
}

/// Whether normalised `inner` equals `outer` or lies beneath it.
pub fn is_within(inner: &str, outer: &str) -> bool {
    if inner == outer {
        return true;
    }
    if outer == "/" {
        return inner.starts_with('/');
    }
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// All conflicting pairs among active locks held by different tasks.
///
/// Resources in the result are normalised; each pair is ordered (smaller
/// first) and the list is sorted and de-duplicated, so the result does not
/// depend on input order. Locks whose resource does not normalise are skipped.
pub fn find_conflicts(locks: &[Lock]) -> Vec<(Lock, Lock)> {
    let mut active: Vec<Lock> = locks
        .iter()
        .filter(|l| l.active)
        .filter_map(|l| l.normalized().ok())
        .collect();
    active.sort();
    active.dedup();
    let mut pairs = Vec::new();
    for (i, a) in active.iter().enumerate() {
        for b in &active[i + 1..] {
            if a.task_id != b.task_id && conflicts_normalized(&a.resource, &b.resource) {
                pairs.push((a.clone(), b.clone()));
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(s: &str) -> String {
        normalize_resource(s).unwrap()
    }

    #[test]
    fn normalisation_examples() {
        assert_eq!(n("  src/api.py "), "src/api.py");
        assert_eq!(n("src\\api.py"), "src/api.py");
        assert_eq!(n("./src/./api.py"), "src/api.py");
        assert_eq!(n("a/../b"), "b");
        assert_eq!(n("src//lib///x"), "src/lib/x");
        assert_eq!(n("src/"), "src");
        assert_eq!(n("/"), "/");
        assert_eq!(n("//"), "/");
        assert_eq!(n("/.."), "/");
        assert_eq!(n("/a/../.."), "/");
        assert_eq!(n("../x"), "../x");
        assert_eq!(n("a/../../x"), "../x");
        assert_eq!(n("./ x"), "x");
        for empty in ["", "   ", ".", "./", "a/..", " ./ "] {
            let err = normalize_resource(empty).unwrap_err();
            assert_eq!(err.code(), Code::SchemaInvalid, "{empty:?}");
        }
    }

    #[test]
    fn conflict_examples() {
        assert!(conflicts("src", "src/api.py"));
        assert!(conflicts("src/api.py", "src/"));
        assert!(conflicts("src", "./src"));
        assert!(!conflicts("src", "src2"));
        assert!(!conflicts("src/api.py", "src/api.pyc"));
        assert!(conflicts("/", "/etc/passwd"));
        assert!(conflicts("/", "/"));
        assert!(!conflicts("/", "src"));
        assert!(!conflicts("/src", "src"));
        assert!(!conflicts("", "src"));
        assert!(!conflicts("tests/test_api.py", "src/"));
    }

    #[test]
    fn find_conflicts_ignores_inactive_and_same_task() {
        let locks = vec![
            Lock::new("T-1", "src/", true),
            Lock::new("T-1", "src/api.py", true),
            Lock::new("T-2", "src/api.py", false),
            Lock::new("T-3", "docs", true),
            Lock::new("T-4", "src\\api.py", true),
            Lock::new("T-5", "", true),
        ];
        let pairs = find_conflicts(&locks);
        assert_eq!(
            pairs,
            vec![
                (
                    Lock::new("T-1", "src", true),
                    Lock::new("T-4", "src/api.py", true)
                ),
                (
                    Lock::new("T-1", "src/api.py", true),
                    Lock::new("T-4", "src/api.py", true)
                ),
            ]
        );
    }

    fn segment() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "a", "b", "src", "src2", ".", "..", "", " ", "x y", "\\",
        ])
        .prop_map(str::to_string)
    }

    fn path() -> impl Strategy<Value = String> {
        (
            any::<bool>(),
            prop::collection::vec(segment(), 0..6),
            any::<bool>(),
        )
            .prop_map(|(abs, segs, trailing)| {
                let mut s = if abs { "/".to_string() } else { String::new() };
                s.push_str(&segs.join("/"));
                if trailing {
                    s.push('/');
                }
                s
            })
    }

    fn lock() -> impl Strategy<Value = Lock> {
        (
            prop::sample::select(vec!["T-1", "T-2", "T-3"]),
            path(),
            any::<bool>(),
        )
            .prop_map(|(t, p, a)| Lock::new(t, p, a))
    }

    proptest! {
        #[test]
        fn conflict_is_symmetric(a in path(), b in path()) {
            prop_assert_eq!(conflicts(&a, &b), conflicts(&b, &a));
        }

        #[test]
        fn normalisation_is_idempotent(p in path(), noise in ".{0,12}") {
            for raw in [p, noise] {
                if let Ok(once) = normalize_resource(&raw) {
                    prop_assert_eq!(normalize_resource(&once), Ok(once.clone()));
                }
            }
        }

        #[test]
        fn conflict_pairs_ignore_input_order(
            (locks, shuffled) in prop::collection::vec(lock(), 0..8)
                .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
        ) {
            prop_assert_eq!(find_conflicts(&locks), find_conflicts(&shuffled));
        }

        #[test]
        fn a_path_conflicts_with_its_children(p in path(), child in "[a-z]{1,4}") {
            if let Ok(base) = normalize_resource(&p) {
                let sub = if base == "/" { format!("/{child}") } else { format!("{base}/{child}") };
                prop_assert!(conflicts(&base, &sub));
                let sibling = format!("{base}{child}");
                prop_assert!(!conflicts(&sibling, &base) || base == "/");
            }
        }
    }
}
