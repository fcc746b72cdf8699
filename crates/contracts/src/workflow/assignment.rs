//! Packet: Assignment (orchestrator → subagent).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    ActiveLock, COMMON_OPTIONAL, Ids, Payload, header, lock_list, no_lock_conflicts, resources,
};
use crate::check::{Checked, Obj, invalid, join};
use crate::locks::{Lock, conflicts_normalized};
use crate::verdict::{Code, Violation};

/// `packet_type`: always `assignment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PacketType {
    #[default]
    Assignment,
}

/// `required_output_schema`: always `subagent_result_v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OutputSchema {
    #[default]
    #[serde(rename = "subagent_result_v1")]
    SubagentResultV1,
}

/// `task.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskType {
    Parallelizable,
    Serial,
}

/// `task.priority` (default `normal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Critical,
}

pub(crate) const PRIORITIES: &[&str] = &["low", "normal", "high", "critical"];

/// The assignment packet a subagent receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignmentPacket {
    pub schema_version: String,
    pub run_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<String>,
    pub packet_type: PacketType,
    pub global_objective: String,
    pub task: Task,
    pub active_locks: Vec<ActiveLock>,
    pub context_package: Vec<ContextItem>,
    pub required_output_schema: OutputSchema,
}

/// `task` of an assignment packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub task_id: String,
    pub title: String,
    #[serde(rename = "type")]
    pub task_type: TaskType,
    pub dependencies: Vec<String>,
    pub lock_scope: Vec<String>,
    pub forbidden_scope: Vec<String>,
    pub acceptance_criteria: Vec<String>,
    pub worklog_path: String,
    pub timeout_seconds: u64,
    pub heartbeat_interval_seconds: u64,
    #[serde(default)]
    pub priority: Priority,
}

/// `context_package[].kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextKind {
    File,
    Note,
    Command,
    Constraint,
}

/// `context_package[]` item. `value` is untrusted data, never instructions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextItem {
    pub kind: ContextKind,
    pub value: String,
}

impl Payload for AssignmentPacket {
    fn check(doc: &Value, strict: bool) -> Result<(), Violation> {
        check_assignment(doc, "", strict).map(|_| ())
    }
}

const REQUIRED: &[&str] = &[
    "schema_version",
    "run_id",
    "packet_type",
    "global_objective",
    "task",
    "active_locks",
    "context_package",
    "required_output_schema",
];

const TASK_REQUIRED: &[&str] = &[
    "task_id",
    "title",
    "type",
    "dependencies",
    "lock_scope",
    "forbidden_scope",
    "acceptance_criteria",
    "worklog_path",
    "timeout_seconds",
    "heartbeat_interval_seconds",
];

/// What other validators need from a checked assignment.
pub(crate) struct Assigned {
    pub task_id: String,
    pub lock_scope: Vec<String>,
}

/// Checks an assignment packet found at `path` (`""` at the top level).
pub(crate) fn check_assignment(doc: &Value, path: &str, strict: bool) -> Checked<Assigned> {
    let o = Obj::new(doc, path)?;
    header(&o, REQUIRED, COMMON_OPTIONAL, strict)?;
    o.one_of("packet_type", &["assignment"])?;
    o.str_len("global_objective", 1, 5000)?;

    let t = o.obj("task")?;
    t.shape(TASK_REQUIRED, &["priority"], strict)?;
    let task_id = t.task_id("task_id")?.to_string();
    t.str_len("title", 1, 500)?;
    t.one_of("type", &["parallelizable", "serial"])?;
    t.task_ids("dependencies")?;
    let lock_scope = resources(&t, "lock_scope", 1)?;
    let forbidden = resources(&t, "forbidden_scope", 0)?;
    t.array_min("acceptance_criteria", 1)?;
    t.str_array("acceptance_criteria")?;
    t.str_len("worklog_path", 1, 1000)?;
    let timeout = t.int_min("timeout_seconds", 30)?;
    let heartbeat = t.int_min("heartbeat_interval_seconds", 5)?;
    if heartbeat >= timeout {
        return Err(invalid(
            &t.at("heartbeat_interval_seconds"),
            format!("must be less than timeout_seconds ({heartbeat} >= {timeout})"),
        ));
    }
    if t.get("priority").is_some() {
        t.one_of("priority", PRIORITIES)?;
    }

    let locks = lock_list(&o, "active_locks", strict, Ids::Contract)?;
    for item in o.objects("context_package")? {
        item.shape(&["kind", "value"], &[], strict)?;
        item.one_of("kind", &["file", "note", "command", "constraint"])?;
        item.str("value")?;
    }
    o.one_of("required_output_schema", &["subagent_result_v1"])?;

    let field = |k: &str| join(&t.path, k);
    for r in &lock_scope {
        if let Some(f) = forbidden.iter().find(|f| conflicts_normalized(r, f)) {
            return Err(Violation::new(
                Code::LockConflict,
                format!(
                    "Task {task_id} locks `{r}`, which overlaps its own forbidden scope `{f}`."
                ),
                json!({ "field": field("lock_scope"), "task_id": task_id, "resource": r, "forbidden": f }),
            ));
        }
    }
    held_elsewhere(&task_id, &lock_scope, &locks, &o.at("active_locks"))?;
    no_lock_conflicts(&locks, &o.at("active_locks"))?;
    Ok(Assigned {
        task_id,
        lock_scope,
    })
}

/// `LOCK_CONFLICT` when `scope` of `task_id` overlaps an active lock of another task.
pub(crate) fn held_elsewhere(
    task_id: &str,
    scope: &[String],
    locks: &[Lock],
    field: &str,
) -> Checked<()> {
    for r in scope {
        let held = locks
            .iter()
            .find(|l| l.active && l.task_id != task_id && conflicts_normalized(r, &l.resource));
        if let Some(l) = held {
            return Err(Violation::new(
                Code::LockConflict,
                format!(
                    "Task {task_id} needs `{r}`, but task {} holds an active lock on `{}`.",
                    l.task_id, l.resource
                ),
                json!({ "field": field, "task_id": task_id, "resource": r, "held_by": l.task_id, "held_resource": l.resource }),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::tests::{Case, assignment, expect};

    #[test]
    fn minimal_example_is_valid_and_round_trips() {
        let doc = assignment();
        AssignmentPacket::check(&doc, true).unwrap();
        let p = AssignmentPacket::parse(&doc, true).unwrap();
        assert_eq!(p.task.priority, Priority::High);
        assert_eq!(p.active_locks[0], Lock::new("T-9", "src/api.py", true));
        p.validate().unwrap();
        assert_eq!(serde_json::to_value(&p).unwrap(), doc);
    }

    #[test]
    fn priority_defaults_to_normal() {
        let mut doc = assignment();
        doc["task"].as_object_mut().unwrap().remove("priority");
        let p = AssignmentPacket::parse(&doc, true).unwrap();
        assert_eq!(p.task.priority, Priority::Normal);
    }

    #[test]
    fn each_rule_has_its_code() {
        use Code::*;
        let cases: Vec<Case> = vec![
            (
                "no version",
                Box::new(|d| {
                    d.as_object_mut().unwrap().remove("schema_version");
                }),
                MissingRequiredInput,
            ),
            (
                "v2",
                Box::new(|d| d["schema_version"] = json!("2.0.0")),
                UnknownSchemaVersion,
            ),
            (
                "not semver",
                Box::new(|d| d["schema_version"] = json!("1.0")),
                UnknownSchemaVersion,
            ),
            (
                "version type",
                Box::new(|d| d["schema_version"] = json!(1)),
                SchemaInvalid,
            ),
            (
                "no task",
                Box::new(|d| {
                    d.as_object_mut().unwrap().remove("task");
                }),
                MissingRequiredInput,
            ),
            (
                "null field",
                Box::new(|d| d["context_package"] = Value::Null),
                MissingRequiredInput,
            ),
            (
                "no lock_scope",
                Box::new(|d| {
                    d["task"].as_object_mut().unwrap().remove("lock_scope");
                }),
                MissingRequiredInput,
            ),
            (
                "run_id",
                Box::new(|d| d["run_id"] = json!("run-1")),
                SchemaInvalid,
            ),
            (
                "task_id",
                Box::new(|d| d["task"]["task_id"] = json!("task12")),
                SchemaInvalid,
            ),
            (
                "packet_type",
                Box::new(|d| d["packet_type"] = json!("result")),
                SchemaInvalid,
            ),
            (
                "objective empty",
                Box::new(|d| d["global_objective"] = json!("")),
                SchemaInvalid,
            ),
            (
                "objective long",
                Box::new(|d| d["global_objective"] = json!("x".repeat(5001))),
                SchemaInvalid,
            ),
            (
                "title long",
                Box::new(|d| d["task"]["title"] = json!("é".repeat(501))),
                SchemaInvalid,
            ),
            (
                "type enum",
                Box::new(|d| d["task"]["type"] = json!("parallel")),
                SchemaInvalid,
            ),
            (
                "dependency id",
                Box::new(|d| d["task"]["dependencies"] = json!(["nope"])),
                SchemaInvalid,
            ),
            (
                "empty lock_scope",
                Box::new(|d| d["task"]["lock_scope"] = json!([])),
                SchemaInvalid,
            ),
            (
                "blank resource",
                Box::new(|d| d["task"]["lock_scope"] = json!(["./"])),
                SchemaInvalid,
            ),
            (
                "no criteria",
                Box::new(|d| d["task"]["acceptance_criteria"] = json!([])),
                SchemaInvalid,
            ),
            (
                "timeout low",
                Box::new(|d| d["task"]["timeout_seconds"] = json!(29)),
                SchemaInvalid,
            ),
            (
                "timeout float",
                Box::new(|d| d["task"]["timeout_seconds"] = json!(1200.5)),
                SchemaInvalid,
            ),
            (
                "heartbeat low",
                Box::new(|d| d["task"]["heartbeat_interval_seconds"] = json!(4)),
                SchemaInvalid,
            ),
            (
                "heartbeat >= timeout",
                Box::new(|d| d["task"]["heartbeat_interval_seconds"] = json!(1200)),
                SchemaInvalid,
            ),
            (
                "priority",
                Box::new(|d| d["task"]["priority"] = json!("urgent")),
                SchemaInvalid,
            ),
            (
                "worklog_path",
                Box::new(|d| d["task"]["worklog_path"] = json!("")),
                SchemaInvalid,
            ),
            (
                "lock active type",
                Box::new(|d| d["active_locks"][0]["active"] = json!("yes")),
                SchemaInvalid,
            ),
            (
                "context kind",
                Box::new(|d| d["context_package"][0]["kind"] = json!("url")),
                SchemaInvalid,
            ),
            (
                "output schema",
                Box::new(|d| d["required_output_schema"] = json!("subagent_result_v2")),
                SchemaInvalid,
            ),
            (
                "generated_at",
                Box::new(|d| d["generated_at"] = json!("noon")),
                SchemaInvalid,
            ),
            (
                "forbidden overlap",
                Box::new(|d| d["task"]["forbidden_scope"] = json!(["tests"])),
                LockConflict,
            ),
            (
                "held by other",
                Box::new(|d| d["active_locks"][0]["resource"] = json!("tests/")),
                LockConflict,
            ),
            (
                "locks clash",
                Box::new(|d| {
                    d["active_locks"] = json!([
                {"task_id": "T-1", "resource": "docs", "active": true},
                {"task_id": "T-2", "resource": "docs/a.md", "active": true}])
                }),
                LockConflict,
            ),
        ];
        for (name, mutate, code) in cases {
            let mut doc = assignment();
            mutate(&mut doc);
            expect(AssignmentPacket::check(&doc, false), code, name);
        }
    }

    #[test]
    fn own_and_inactive_locks_do_not_conflict() {
        let mut doc = assignment();
        doc["active_locks"] = json!([
            {"task_id": "T-12", "resource": "tests/test_api.py", "active": true},
            {"task_id": "T-9", "resource": "tests", "active": false}
        ]);
        AssignmentPacket::check(&doc, true).unwrap();
    }

    #[test]
    fn strict_mode_rejects_unknown_fields_at_every_level() {
        for (ptr, key) in [
            ("", "extra"),
            ("/task", "owner"),
            ("/active_locks/0", "since"),
            ("/context_package/1", "why"),
        ] {
            let mut doc = assignment();
            doc.pointer_mut(ptr)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .insert(key.into(), json!(1));
            AssignmentPacket::check(&doc, false).unwrap();
            let err = AssignmentPacket::check(&doc, true).unwrap_err();
            assert_eq!(err.code, Code::SchemaInvalid);
            assert!(
                err.details["field"].as_str().unwrap().ends_with(key),
                "{err:?}"
            );
            // `x_` extensions are always fine.
            let mut doc = assignment();
            doc.pointer_mut(ptr)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .insert(format!("x_{key}"), json!(1));
            AssignmentPacket::check(&doc, true).unwrap();
        }
        let mut doc = assignment();
        doc["task"]["owner"] = json!("me");
        let err = AssignmentPacket::check(&doc, true).unwrap_err();
        assert_eq!(err.details["field"], json!("task.owner"));
    }

    #[test]
    fn not_an_object() {
        expect(
            AssignmentPacket::check(&json!([1]), false),
            Code::SchemaInvalid,
            "array",
        );
    }
}
