//! `garrison validate KIND FILE [--strict]`: one entry point per document kind.

use std::fmt;
use std::str::FromStr;

use serde_json::{Value, json};

use crate::check::{Checked, Obj};
use crate::verdict::Verdict;
use crate::workflow::ledger::check_reconcile;
use crate::workflow::worklog::check_worklog;
use crate::workflow::{
    AssignmentPacket, HandoffBundle, Ids, OrchestratorOutput, Payload, SubagentResult, lock_list,
    no_lock_conflicts,
};

/// What kind of document to validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Assignment,
    Result,
    OrchestratorOutput,
    Worklog,
    Handoff,
    /// `{"locks":[{task_id, resource, active}…]}`
    Locks,
    /// `{"ledger":[…],"active_locks":[…],"events":[…]}` (+ optional `now`)
    Reconcile,
}

impl Kind {
    /// Every kind, in CLI order.
    pub const ALL: [Kind; 7] = [
        Kind::Assignment,
        Kind::Result,
        Kind::OrchestratorOutput,
        Kind::Worklog,
        Kind::Handoff,
        Kind::Locks,
        Kind::Reconcile,
    ];

    /// The CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Assignment => "assignment",
            Kind::Result => "result",
            Kind::OrchestratorOutput => "orchestrator-output",
            Kind::Worklog => "worklog",
            Kind::Handoff => "handoff",
            Kind::Locks => "locks",
            Kind::Reconcile => "reconcile",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind name that `garrison validate` does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown kind `{0}` (expected assignment|result|orchestrator-output|worklog|handoff|locks|reconcile)"
)]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// Validates `doc` as `kind`. `strict` rejects unknown non-`x_` fields at
/// every object level. Never panics; every failure carries a contract code.
pub fn validate(kind: Kind, doc: &Value, strict: bool) -> Verdict {
    let checked = match kind {
        Kind::Assignment => AssignmentPacket::check(doc, strict).map(|()| {
            let task = str_at(doc, "/task/task_id");
            Verdict::ok(format!("Assignment packet for task {task} is valid."))
                .with_details(json!({ "task_id": task }))
        }),
        Kind::Result => SubagentResult::check(doc, strict).map(|()| {
            let task = str_at(doc, "/task_id");
            let status = str_at(doc, "/status");
            Verdict::ok(format!(
                "Subagent result for task {task} ({status}) is valid."
            ))
            .with_details(json!({ "task_id": task, "status": status }))
        }),
        Kind::OrchestratorOutput => OrchestratorOutput::check(doc, strict).map(|()| {
            let n = len_at(doc, "/ledger_delta");
            let a = len_at(doc, "/assignments");
            Verdict::ok(format!(
                "Orchestrator output is valid ({n} ledger delta(s), {a} assignment(s))."
            ))
            .with_details(json!({ "ledger_delta": n, "assignments": a }))
        }),
        Kind::Worklog => check_worklog(doc, strict).map(|n| {
            Verdict::ok(format!(
                "Worklog is valid ({n} entr{}).",
                if n == 1 { "y" } else { "ies" }
            ))
            .with_details(json!({ "entries": n }))
        }),
        Kind::Handoff => HandoffBundle::check(doc, strict).map(|()| {
            let n = len_at(doc, "/ledger");
            Verdict::ok(format!("Handoff bundle is valid ({n} ledger row(s))."))
                .with_details(json!({ "tasks": n }))
        }),
        Kind::Locks => check_locks(doc, strict).map(|n| {
            Verdict::ok(format!("No conflicts among {n} active lock(s)."))
                .with_details(json!({ "active_locks": n }))
        }),
        Kind::Reconcile => check_reconcile(doc, strict).map(|s| {
            Verdict::ok(format!(
                "Ledger reconciles: {} task(s), {} event(s) applied, {} duplicate(s) ignored.",
                s.tasks, s.events_applied, s.duplicates_ignored
            ))
            .with_details(json!({
                "tasks": s.tasks, "events_applied": s.events_applied,
                "duplicates_ignored": s.duplicates_ignored, "active_locks": s.active_locks,
            }))
        }),
    };
    checked.unwrap_or_else(Verdict::from)
}

/// `{"locks":[…]}`; a bare array of locks is accepted too.
fn check_locks(doc: &Value, strict: bool) -> Checked<usize> {
    let wrapped;
    let doc = if doc.is_array() {
        wrapped = json!({ "locks": doc });
        &wrapped
    } else {
        doc
    };
    let o = Obj::new(doc, "")?;
    o.schema_version(false)?;
    o.shape(
        &["locks"],
        &["schema_version", "run_id", "generated_at"],
        strict,
    )?;
    let locks = lock_list(&o, "locks", strict, Ids::Loose)?;
    no_lock_conflicts(&locks, "locks")?;
    Ok(locks.iter().filter(|l| l.active).count())
}

fn str_at<'a>(doc: &'a Value, ptr: &str) -> &'a str {
    doc.pointer(ptr).and_then(Value::as_str).unwrap_or("?")
}

fn len_at(doc: &Value, ptr: &str) -> usize {
    doc.pointer(ptr)
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Code;
    use std::path::{Path, PathBuf};

    #[test]
    fn kinds_parse() {
        for k in Kind::ALL {
            assert_eq!(k.as_str().parse::<Kind>(), Ok(k));
            assert_eq!(k.to_string(), k.as_str());
        }
        assert!("orchestrator_output".parse::<Kind>().is_err());
    }

    #[test]
    fn locks_kind() {
        let ok = json!({"locks": [
            {"task_id": "T-1", "resource": "src", "active": true},
            {"task_id": "T-2", "resource": "src2", "active": true},
            {"task_id": "T-3", "resource": "src/api.py", "active": false}
        ]});
        let v = validate(Kind::Locks, &ok, true);
        assert!(v.allow, "{v:?}");
        assert_eq!(v.details, json!({"active_locks": 2}));

        let clash = json!({"locks": [
            {"task_id": "B", "resource": "src\\api.py", "active": true},
            {"task_id": "A", "resource": "./src/", "active": true}
        ]});
        let v = validate(Kind::Locks, &clash, false);
        assert_eq!(v.code, Code::LockConflict);
        assert_eq!(
            v.details["conflicts"],
            json!([[{"task_id": "A", "resource": "src"}, {"task_id": "B", "resource": "src/api.py"}]])
        );
        assert_eq!(
            validate(Kind::Locks, &clash["locks"], false).code,
            Code::LockConflict
        );

        let empty = json!({"locks": [{"task_id": "T-1", "resource": " ./ ", "active": true}]});
        let v = validate(Kind::Locks, &empty, false);
        assert_eq!(v.code, Code::SchemaInvalid);
        assert_eq!(v.details["field"], json!("locks[0].resource"));
        assert_eq!(
            validate(Kind::Locks, &json!({}), false).code,
            Code::MissingRequiredInput
        );
        assert_eq!(
            validate(Kind::Locks, &json!("x"), false).code,
            Code::SchemaInvalid
        );
        let extra = json!({"locks": [], "owner": "me"});
        assert!(validate(Kind::Locks, &extra, false).allow);
        assert_eq!(
            validate(Kind::Locks, &extra, true).code,
            Code::SchemaInvalid
        );
    }

    #[test]
    fn every_kind_rejects_non_objects_without_panicking() {
        for k in Kind::ALL {
            for doc in [json!(null), json!(1), json!("s"), json!([[]]), json!({})] {
                let v = validate(k, &doc, true);
                assert!(!v.allow, "{k} {doc}");
                assert!(v.details.is_object());
            }
        }
    }

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
    }

    /// A fixture file: `.json`, or `.jsonl` turned into an array like the CLI does.
    fn load(path: &Path) -> Value {
        let text = std::fs::read_to_string(path).unwrap();
        if path.extension().is_some_and(|e| e == "jsonl") {
            Value::Array(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect(),
            )
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }

    /// `<kind>/valid-*.json` pass in both modes; `<kind>/invalid-<CODE>[-…].json`
    /// fail with CODE (in strict mode when the name contains `-strict`).
    #[test]
    fn fixtures_match_their_names() {
        let mut seen = 0;
        for kind in Kind::ALL {
            let dir = fixtures().join(kind.as_str());
            let mut entries: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            entries.sort();
            let mut valid = 0;
            for path in entries {
                let name = path.file_stem().unwrap().to_str().unwrap().to_string();
                let doc = load(&path);
                if name.starts_with("valid") {
                    for strict in [false, true] {
                        let v = validate(kind, &doc, strict);
                        assert!(v.allow, "{}: {v:?}", path.display());
                    }
                    valid += 1;
                } else {
                    let rest = name.strip_prefix("invalid-").unwrap();
                    let want = Code::ALL
                        .iter()
                        .filter(|c| {
                            rest == c.as_str() || rest.starts_with(&format!("{}-", c.as_str()))
                        })
                        .max_by_key(|c| c.as_str().len())
                        .unwrap_or_else(|| panic!("no code in {name}"));
                    let strict = name.contains("-strict");
                    let v = validate(kind, &doc, strict);
                    assert_eq!(v.code, *want, "{}: {v:?}", path.display());
                    assert!(!v.allow);
                    if !strict && *want != Code::SchemaInvalid {
                        assert_eq!(
                            validate(kind, &doc, true).code,
                            *want,
                            "{} strict",
                            path.display()
                        );
                    }
                }
                seen += 1;
            }
            assert!(valid > 0, "{kind} needs a valid fixture");
        }
        assert!(seen > 40, "only {seen} fixtures");
    }
}
