//! Envelope: Orchestrator Output, with ledger-delta semantics D1–D3.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::assignment::{AssignmentPacket, check_assignment, held_elsewhere};
use super::{ActiveLock, COMMON_OPTIONAL, Ids, Payload, header, lock_list, no_lock_conflicts};
use crate::check::{Checked, Obj, index, invalid};
use crate::locks::Lock;
use crate::task::TaskStatus;
use crate::verdict::{Code, Violation};

/// One orchestrator turn: ledger changes, new assignments, locks, blockers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrchestratorOutput {
    pub schema_version: String,
    pub run_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<String>,
    pub ledger_delta: Vec<LedgerDelta>,
    pub assignments: Vec<AssignmentPacket>,
    pub active_locks: Vec<ActiveLock>,
    pub blockers: Vec<Blocker>,
    pub next_actions: Vec<String>,
}

/// `ledger_delta[]`: one row mutation; `delta_id` is its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerDelta {
    pub task_id: String,
    pub status: TaskStatus,
    pub owner: String,
    pub reason: String,
    pub delta_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// `blockers[]` / `open_blockers[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blocker {
    pub task_id: String,
    pub code: Code,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Map<String, Value>>,
}

impl Payload for OrchestratorOutput {
    fn check(doc: &Value, strict: bool) -> Result<(), Violation> {
        check_output(doc, strict)
    }
}

const REQUIRED: &[&str] = &[
    "schema_version",
    "run_id",
    "ledger_delta",
    "assignments",
    "active_locks",
    "blockers",
    "next_actions",
];

pub(crate) const STATUSES: &[&str] = &[
    "todo",
    "in_progress",
    "blocked",
    "done",
    "failed",
    "canceled",
];

/// A status string already checked against [`STATUSES`].
pub(crate) fn status_of(o: &Obj<'_>, key: &str) -> Checked<TaskStatus> {
    let s = o.one_of(key, STATUSES)?;
    TaskStatus::parse(s).ok_or_else(|| invalid(&o.at(key), format!("unknown status `{s}`")))
}

fn check_output(doc: &Value, strict: bool) -> Checked<()> {
    let o = Obj::new(doc, "")?;
    header(&o, REQUIRED, COMMON_OPTIONAL, strict)?;

    // D1–D3: apply in order, skip repeated delta_ids, check each status
    // against the previous one for the same task.
    let mut seen: HashSet<&str> = HashSet::new();
    let mut last: HashMap<&str, TaskStatus> = HashMap::new();
    for d in o.objects("ledger_delta")? {
        d.shape(
            &["task_id", "status", "owner", "reason", "delta_id"],
            &["last_heartbeat_at", "timed_out", "retry_after_ms"],
            strict,
        )?;
        let task = d.task_id("task_id")?;
        let status = status_of(&d, "status")?;
        d.str("owner")?;
        d.str("reason")?;
        let delta_id = d.non_empty("delta_id")?;
        d.opt_timestamp("last_heartbeat_at")?;
        d.opt_bool("timed_out")?;
        if d.get("retry_after_ms").is_some() {
            d.int_min("retry_after_ms", 0)?;
        }
        if !seen.insert(delta_id) {
            continue;
        }
        if let Some(prev) = last.insert(task, status)
            && !prev.can_move_to(status)
        {
            return Err(Violation::new(
                Code::InvalidTransition,
                format!(
                    "Delta {delta_id} moves task {task} from {} to {}, which the task state machine forbids.",
                    prev.as_str(),
                    status.as_str()
                ),
                json!({ "field": d.at("status"), "task_id": task, "delta_id": delta_id, "from": prev.as_str(), "to": status.as_str() }),
            ));
        }
    }

    let mut assigned = Vec::new();
    let path = o.at("assignments");
    for (i, a) in o.array("assignments")?.iter().enumerate() {
        assigned.push(check_assignment(a, &index(&path, i), strict)?);
    }
    let locks = lock_list(&o, "active_locks", strict, Ids::Contract)?;
    check_blockers(&o, "blockers", strict)?;
    o.str_array("next_actions")?;

    no_lock_conflicts(&locks, &o.at("active_locks"))?;
    for a in &assigned {
        held_elsewhere(&a.task_id, &a.lock_scope, &locks, &o.at("active_locks"))?;
    }
    // Two new assignments of different tasks must not claim overlapping scopes.
    let claimed: Vec<Lock> = assigned
        .iter()
        .flat_map(|a| {
            a.lock_scope
                .iter()
                .map(|r| Lock::new(a.task_id.clone(), r.clone(), true))
        })
        .collect();
    no_lock_conflicts(&claimed, &o.at("assignments"))?;
    Ok(())
}

/// `blockers[]`: `code` must be one of the contract's error codes.
pub(crate) fn check_blockers(o: &Obj<'_>, key: &str, strict: bool) -> Checked<()> {
    for b in o.objects(key)? {
        b.shape(&["task_id", "code", "reason"], &["details"], strict)?;
        b.task_id("task_id")?;
        let code = b.str("code")?;
        match code.parse::<Code>() {
            Ok(c) if c != Code::Ok => {}
            _ => {
                return Err(invalid(
                    &b.at("code"),
                    format!("`{code}` is not an error code"),
                ));
            }
        }
        b.str("reason")?;
        b.opt_obj("details")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::tests::{Case, assignment, expect};

    fn output() -> Value {
        json!({
            "schema_version": "1.0.0",
            "run_id": "3f56dc4d-35cf-4f97-925c-0b04a6fe8bf4",
            "ledger_delta": [
                {"task_id": "T-12", "status": "todo", "owner": "orchestrator", "reason": "planned", "delta_id": "d-1"},
                {"task_id": "T-12", "status": "in_progress", "owner": "agent-a", "reason": "assigned", "delta_id": "d-2",
                 "last_heartbeat_at": "2026-01-14T16:21:00Z", "timed_out": false, "retry_after_ms": 0}
            ],
            "assignments": [assignment()],
            "active_locks": [
                {"task_id": "T-9", "resource": "src/api.py", "active": true},
                {"task_id": "T-12", "resource": "tests/test_api.py", "active": true}
            ],
            "blockers": [{"task_id": "T-9", "code": "DEPENDENCY_NOT_MET", "reason": "waits on T-3", "details": {"dep": "T-3"}}],
            "next_actions": ["dispatch T-12"]
        })
    }

    #[test]
    fn valid_output_round_trips() {
        let doc = output();
        let out = OrchestratorOutput::parse(&doc, true).unwrap();
        out.validate().unwrap();
        assert_eq!(serde_json::to_value(&out).unwrap(), doc);
    }

    #[test]
    fn duplicate_delta_ids_are_ignored() {
        let mut doc = output();
        // A replayed d-1 (todo) after in_progress would be illegal if applied.
        let replay = doc["ledger_delta"][0].clone();
        doc["ledger_delta"].as_array_mut().unwrap().push(replay);
        OrchestratorOutput::check(&doc, true).unwrap();
    }

    #[test]
    fn each_rule_has_its_code() {
        use Code::*;
        let cases: Vec<Case> = vec![
            (
                "no blockers",
                Box::new(|d| {
                    d.as_object_mut().unwrap().remove("blockers");
                }),
                MissingRequiredInput,
            ),
            (
                "delta no id",
                Box::new(|d| {
                    d["ledger_delta"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("delta_id");
                }),
                MissingRequiredInput,
            ),
            (
                "assignment missing task",
                Box::new(|d| {
                    d["assignments"][0].as_object_mut().unwrap().remove("task");
                }),
                MissingRequiredInput,
            ),
            (
                "version",
                Box::new(|d| d["schema_version"] = json!("3.1.0")),
                UnknownSchemaVersion,
            ),
            (
                "assignment version",
                Box::new(|d| d["assignments"][0]["schema_version"] = json!("2.0.0")),
                UnknownSchemaVersion,
            ),
            (
                "delta status",
                Box::new(|d| d["ledger_delta"][0]["status"] = json!("cancelled")),
                SchemaInvalid,
            ),
            (
                "delta heartbeat",
                Box::new(|d| d["ledger_delta"][1]["last_heartbeat_at"] = json!("soon")),
                SchemaInvalid,
            ),
            (
                "delta retry",
                Box::new(|d| d["ledger_delta"][1]["retry_after_ms"] = json!(-1)),
                SchemaInvalid,
            ),
            (
                "blocker code",
                Box::new(|d| d["blockers"][0]["code"] = json!("OOPS")),
                SchemaInvalid,
            ),
            (
                "blocker OK",
                Box::new(|d| d["blockers"][0]["code"] = json!("OK")),
                SchemaInvalid,
            ),
            (
                "blocker details",
                Box::new(|d| d["blockers"][0]["details"] = json!("x")),
                SchemaInvalid,
            ),
            (
                "next_actions",
                Box::new(|d| d["next_actions"] = json!([1])),
                SchemaInvalid,
            ),
            (
                "illegal transition",
                Box::new(|d| d["ledger_delta"][1]["status"] = json!("done")),
                InvalidTransition,
            ),
            (
                "terminal",
                Box::new(|d| {
                    d["ledger_delta"].as_array_mut().unwrap().push(json!(
                {"task_id": "T-12", "status": "canceled", "owner": "o", "reason": "r", "delta_id": "d-3"}))
                }),
                Ok,
            ),
            (
                "after terminal",
                Box::new(|d| {
                    let l = d["ledger_delta"].as_array_mut().unwrap();
                    l.push(json!({"task_id": "T-12", "status": "canceled", "owner": "o", "reason": "r", "delta_id": "d-3"}));
                    l.push(json!({"task_id": "T-12", "status": "todo", "owner": "o", "reason": "r", "delta_id": "d-4"}));
                }),
                InvalidTransition,
            ),
            (
                "locks clash",
                Box::new(|d| d["active_locks"][1]["resource"] = json!("src")),
                LockConflict,
            ),
            (
                "assignment vs lock",
                Box::new(|d| d["active_locks"][0]["resource"] = json!("tests")),
                LockConflict,
            ),
            (
                "assignments clash",
                Box::new(|d| {
                    let mut other = assignment();
                    other["task"]["task_id"] = json!("T-13");
                    other["task"]["lock_scope"] = json!(["tests/"]);
                    other["active_locks"] = json!([]);
                    d["assignments"].as_array_mut().unwrap().push(other);
                }),
                LockConflict,
            ),
        ];
        for (name, mutate, code) in cases {
            let mut doc = output();
            mutate(&mut doc);
            let got = OrchestratorOutput::check(&doc, false);
            if code == Ok {
                got.unwrap();
            } else {
                expect(got, code, name);
            }
        }
    }
}
