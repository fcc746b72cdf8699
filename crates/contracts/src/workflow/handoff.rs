//! Artifact: Fresh-Context Handoff Bundle.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ledger::{Ledger, check_row, dep_ids};
use super::output::{Blocker, check_blockers};
use super::{ActiveLock, COMMON_OPTIONAL, Ids, Payload, Priority, header, lock_list};
use crate::check::{Checked, Obj, invalid, type_name};
use crate::task::TaskStatus;
use crate::verdict::Violation;

/// Everything a fresh orchestrator needs to resume a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffBundle {
    pub schema_version: String,
    pub run_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<String>,
    pub objective: String,
    /// An array (usually of strings) or an object; the contract leaves it open.
    pub constraints: Value,
    pub ledger: Vec<HandoffLedgerRow>,
    pub active_locks: Vec<ActiveLock>,
    /// `{"T-2": ["T-1"]}` or `[{"task_id": "T-2", "depends_on": ["T-1"]}]`.
    pub dependencies: Value,
    pub open_blockers: Vec<Blocker>,
    /// Items are strings or objects.
    pub acceptance_targets: Vec<Value>,
}

/// `ledger[]` row of a handoff bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffLedgerRow {
    pub task_id: String,
    pub title: String,
    pub status: TaskStatus,
    pub owner: String,
    pub lock_scope: Vec<String>,
    pub timeout_seconds: u64,
    pub heartbeat_interval_seconds: u64,
    pub priority: Priority,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_at: Option<String>,
    /// Garrison addition (allowed in strict mode): this task's dependencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<Vec<String>>,
}

impl Payload for HandoffBundle {
    fn check(doc: &Value, strict: bool) -> Result<(), Violation> {
        check_handoff(doc, strict)
    }
}

const REQUIRED: &[&str] = &[
    "schema_version",
    "run_id",
    "objective",
    "constraints",
    "ledger",
    "active_locks",
    "dependencies",
    "open_blockers",
    "acceptance_targets",
];

fn check_handoff(doc: &Value, strict: bool) -> Checked<()> {
    let o = Obj::new(doc, "")?;
    header(&o, REQUIRED, COMMON_OPTIONAL, strict)?;
    o.str_len("objective", 1, 5000)?;
    match o.get("constraints") {
        Some(Value::Array(_) | Value::Object(_)) | None => {}
        Some(v) => {
            return Err(invalid(
                &o.at("constraints"),
                format!("expected an array or object, got {}", type_name(v)),
            ));
        }
    }
    let rows = o
        .objects("ledger")?
        .iter()
        .map(|r| check_row(r, true, strict, Ids::Contract))
        .collect::<Checked<Vec<_>>>()?;
    let locks = lock_list(&o, "active_locks", strict, Ids::Contract)?;
    let deps = dependency_map(&o, strict)?;
    check_blockers(&o, "open_blockers", strict)?;
    for (i, t) in o.array("acceptance_targets")?.iter().enumerate() {
        if !matches!(t, Value::String(_) | Value::Object(_)) {
            let path = crate::check::index(&o.at("acceptance_targets"), i);
            return Err(invalid(
                &path,
                format!("expected a string or object, got {}", type_name(t)),
            ));
        }
    }

    let ledger = Ledger::new(rows)?;
    ledger.all_dependencies_met(&deps)?;
    ledger.locks_consistent(&locks, &o.at("active_locks"))?;
    Ok(())
}

/// The top-level `dependencies`, in either accepted shape.
fn dependency_map(o: &Obj<'_>, strict: bool) -> Checked<HashMap<String, Vec<String>>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    match o.get("dependencies") {
        Some(Value::Object(_)) => {
            let d = o.obj("dependencies")?;
            for key in d.map.keys() {
                if !crate::check::is_task_id(key) {
                    return Err(invalid(&d.at(key), format!("`{key}` is not a task id")));
                }
                map.insert(key.clone(), dep_ids(&d, key, Ids::Contract)?);
            }
        }
        Some(Value::Array(_)) => {
            for item in o.objects("dependencies")? {
                item.shape(&["task_id"], &["depends_on", "dependencies"], strict)?;
                let id = item.task_id("task_id")?.to_string();
                let mut list = Vec::new();
                for key in ["depends_on", "dependencies"] {
                    if item.get(key).is_some() {
                        list.extend(dep_ids(&item, key, Ids::Contract)?);
                    }
                }
                map.entry(id).or_default().extend(list);
            }
        }
        Some(v) => {
            return Err(invalid(
                &o.at("dependencies"),
                format!("expected an object or array, got {}", type_name(v)),
            ));
        }
        None => {}
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Code;
    use crate::workflow::tests::{Case, expect};
    use serde_json::json;

    fn bundle() -> Value {
        json!({
            "schema_version": "1.0.0",
            "run_id": "3f56dc4d-35cf-4f97-925c-0b04a6fe8bf4",
            "generated_at": "2026-01-14T16:30:00Z",
            "objective": "Implement endpoint tests",
            "constraints": ["Do not edit src/api.py"],
            "ledger": [
                {"task_id": "T-9", "title": "API handler", "status": "done", "owner": "agent-a",
                 "lock_scope": ["src/api.py"], "timeout_seconds": 1200, "heartbeat_interval_seconds": 120, "priority": "normal"},
                {"task_id": "T-12", "title": "Add endpoint tests", "status": "in_progress", "owner": "agent-b",
                 "lock_scope": ["tests/test_api.py"], "timeout_seconds": 1200, "heartbeat_interval_seconds": 120,
                 "priority": "high", "last_heartbeat_at": "2026-01-14T16:29:00Z"}
            ],
            "active_locks": [{"task_id": "T-12", "resource": "tests/test_api.py", "active": true}],
            "dependencies": {"T-12": ["T-9"]},
            "open_blockers": [],
            "acceptance_targets": ["All endpoint tests pass"]
        })
    }

    #[test]
    fn valid_bundle_round_trips() {
        let doc = bundle();
        let b = HandoffBundle::parse(&doc, true).unwrap();
        b.validate().unwrap();
        assert_eq!(serde_json::to_value(&b).unwrap(), doc);
        let mut list = bundle();
        list["dependencies"] = json!([{"task_id": "T-12", "depends_on": ["T-9"]}]);
        HandoffBundle::check(&list, true).unwrap();
    }

    #[test]
    fn each_rule_has_its_code() {
        use Code::*;
        let cases: Vec<Case> = vec![
            (
                "no targets",
                Box::new(|d| {
                    d.as_object_mut().unwrap().remove("acceptance_targets");
                }),
                MissingRequiredInput,
            ),
            (
                "row no owner",
                Box::new(|d| {
                    d["ledger"][0].as_object_mut().unwrap().remove("owner");
                }),
                MissingRequiredInput,
            ),
            (
                "version",
                Box::new(|d| d["schema_version"] = json!("banana")),
                UnknownSchemaVersion,
            ),
            (
                "constraints",
                Box::new(|d| d["constraints"] = json!("none")),
                SchemaInvalid,
            ),
            (
                "deps shape",
                Box::new(|d| d["dependencies"] = json!("T-9")),
                SchemaInvalid,
            ),
            (
                "deps key",
                Box::new(|d| d["dependencies"] = json!({"twelve": []})),
                SchemaInvalid,
            ),
            (
                "row priority",
                Box::new(|d| d["ledger"][0]["priority"] = json!("p1")),
                SchemaInvalid,
            ),
            (
                "row heartbeat",
                Box::new(|d| d["ledger"][1]["last_heartbeat_at"] = json!("now")),
                SchemaInvalid,
            ),
            (
                "blocker code",
                Box::new(|d| {
                    d["open_blockers"] = json!([{"task_id": "T-12", "code": "BAD", "reason": "r"}])
                }),
                SchemaInvalid,
            ),
            (
                "targets",
                Box::new(|d| d["acceptance_targets"] = json!([1])),
                SchemaInvalid,
            ),
            (
                "dep not done",
                Box::new(|d| d["ledger"][0]["status"] = json!("in_progress")),
                DependencyNotMet,
            ),
            (
                "dep missing",
                Box::new(|d| d["dependencies"] = json!({"T-12": ["T-1"]})),
                DependencyNotMet,
            ),
            (
                "row dep",
                Box::new(|d| {
                    d["dependencies"] = json!({});
                    d["ledger"][1]["dependencies"] = json!(["T-3"]);
                }),
                DependencyNotMet,
            ),
            (
                "lock clash",
                Box::new(|d| {
                    d["dependencies"] = json!({});
                    d["ledger"][0]["status"] = json!("in_progress");
                    d["ledger"][0]["lock_scope"] = json!(["tests"]);
                    d["active_locks"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"task_id": "T-9", "resource": "tests", "active": true}));
                }),
                LockConflict,
            ),
            (
                "lock of done",
                Box::new(|d| d["active_locks"][0]["task_id"] = json!("T-9")),
                LedgerInconsistent,
            ),
            (
                "duplicate row",
                Box::new(|d| d["ledger"][0]["task_id"] = json!("T-12")),
                LedgerInconsistent,
            ),
            (
                "out of scope",
                Box::new(|d| d["active_locks"][0]["resource"] = json!("tests")),
                ScopeViolation,
            ),
        ];
        for (name, mutate, code) in cases {
            let mut doc = bundle();
            mutate(&mut doc);
            expect(HandoffBundle::check(&doc, false), code, name);
        }
    }
}
