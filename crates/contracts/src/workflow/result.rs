//! Envelope: Subagent Result (`subagent_result_v1`).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{COMMON_OPTIONAL, Payload, header};
use crate::check::{Checked, Obj, index, invalid};
use crate::locks::normalize_resource;
use crate::secrets::looks_secret;
use crate::verdict::{Code, Violation};

/// `status` of a subagent result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    Done,
    Blocked,
    Failed,
}

/// `acceptance_check[].status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Fail,
}

/// What a subagent returns for one assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubagentResult {
    pub schema_version: String,
    pub run_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<String>,
    pub task_id: String,
    pub status: ResultStatus,
    pub changes: Vec<Change>,
    pub acceptance_check: Vec<AcceptanceCheck>,
    pub worklog_path: String,
    /// At most 5 non-empty strings, scrubbed of secrets.
    pub notes_for_orchestrator: Vec<String>,
}

/// `changes[]` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub resource: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// `acceptance_check[]` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptanceCheck {
    pub criterion: String,
    pub status: CheckStatus,
    pub evidence: String,
}

impl Payload for SubagentResult {
    fn check(doc: &Value, strict: bool) -> Result<(), Violation> {
        check_result(doc, strict)
    }
}

const REQUIRED: &[&str] = &[
    "schema_version",
    "run_id",
    "task_id",
    "status",
    "changes",
    "acceptance_check",
    "worklog_path",
    "notes_for_orchestrator",
];

/// Notes the orchestrator may receive at most.
pub const MAX_NOTES: usize = 5;

fn check_result(doc: &Value, strict: bool) -> Checked<()> {
    let o = Obj::new(doc, "")?;
    header(&o, REQUIRED, COMMON_OPTIONAL, strict)?;
    let task_id = o.task_id("task_id")?;
    let status = o.one_of("status", &["done", "blocked", "failed"])?;
    for c in o.objects("changes")? {
        c.shape(&["resource", "action"], &["evidence"], strict)?;
        let r = c.str("resource")?;
        normalize_resource(r).map_err(|e| invalid(&c.at("resource"), e.to_string()))?;
        c.non_empty("action")?;
        c.opt_str("evidence")?;
    }
    let checks = o.objects("acceptance_check")?;
    for c in &checks {
        c.shape(&["criterion", "status", "evidence"], &[], strict)?;
        c.str("criterion")?;
        c.one_of("status", &["pass", "fail"])?;
        c.str("evidence")?;
    }
    o.str_len("worklog_path", 1, 1000)?;
    let notes = o.str_array("notes_for_orchestrator")?;
    let notes_path = o.at("notes_for_orchestrator");
    if notes.len() > MAX_NOTES {
        return Err(invalid(
            &notes_path,
            format!("at most {MAX_NOTES} notes allowed, got {}", notes.len()),
        ));
    }
    if let Some(i) = notes.iter().position(|n| n.trim().is_empty()) {
        return Err(invalid(
            &index(&notes_path, i),
            "notes must be non-empty strings",
        ));
    }

    // Semantic rules, after the shape is known good.
    if let Some(i) = notes.iter().position(|n| looks_secret(n)) {
        return Err(Violation::new(
            Code::UntrustedContextBlock,
            format!(
                "Note {i} for the orchestrator contains secret-like text; scrub it before emitting."
            ),
            json!({ "field": index(&notes_path, i), "task_id": task_id }),
        ));
    }
    if status == "done" {
        if checks.is_empty() {
            return Err(Violation::new(
                Code::AcceptanceFailed,
                format!("Task {task_id} reports done without any acceptance checks."),
                json!({ "field": "acceptance_check", "task_id": task_id }),
            ));
        }
        for c in &checks {
            let passed = c.get("status").and_then(Value::as_str) == Some("pass");
            let evidence = c.get("evidence").and_then(Value::as_str).unwrap_or("");
            if !passed || evidence.trim().is_empty() {
                let criterion = c.get("criterion").and_then(Value::as_str).unwrap_or("");
                let why = if passed {
                    "has no evidence"
                } else {
                    "did not pass"
                };
                return Err(Violation::new(
                    Code::AcceptanceFailed,
                    format!("Task {task_id} reports done, but criterion \"{criterion}\" {why}."),
                    json!({ "field": c.path, "task_id": task_id, "criterion": criterion }),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::tests::{Case, expect, result};

    #[test]
    fn minimal_example_is_valid_and_round_trips() {
        let doc = result();
        let r = SubagentResult::parse(&doc, true).unwrap();
        assert_eq!(r.status, ResultStatus::Done);
        r.validate().unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), doc);
    }

    #[test]
    fn each_rule_has_its_code() {
        use Code::*;
        let cases: Vec<Case> = vec![
            (
                "no notes",
                Box::new(|d| {
                    d.as_object_mut().unwrap().remove("notes_for_orchestrator");
                }),
                MissingRequiredInput,
            ),
            (
                "no evidence field",
                Box::new(|d| {
                    d["acceptance_check"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("evidence");
                }),
                MissingRequiredInput,
            ),
            (
                "version",
                Box::new(|d| d["schema_version"] = json!("0.9.0")),
                UnknownSchemaVersion,
            ),
            (
                "status",
                Box::new(|d| d["status"] = json!("in_progress")),
                SchemaInvalid,
            ),
            (
                "check status",
                Box::new(|d| d["acceptance_check"][0]["status"] = json!("ok")),
                SchemaInvalid,
            ),
            (
                "changes type",
                Box::new(|d| d["changes"] = json!({})),
                SchemaInvalid,
            ),
            (
                "empty resource",
                Box::new(|d| d["changes"][0]["resource"] = json!(" ")),
                SchemaInvalid,
            ),
            (
                "six notes",
                Box::new(|d| d["notes_for_orchestrator"] = json!(["a", "b", "c", "d", "e", "f"])),
                SchemaInvalid,
            ),
            (
                "empty note",
                Box::new(|d| d["notes_for_orchestrator"] = json!(["a", " "])),
                SchemaInvalid,
            ),
            (
                "note type",
                Box::new(|d| d["notes_for_orchestrator"] = json!([1])),
                SchemaInvalid,
            ),
            (
                "secret note",
                Box::new(|d| d["notes_for_orchestrator"] = json!(["ok", "use api_key=abc123"])),
                UntrustedContextBlock,
            ),
            (
                "bearer note",
                Box::new(|d| {
                    d["notes_for_orchestrator"] = json!(["Authorization: Bearer abc.def.ghi123"])
                }),
                UntrustedContextBlock,
            ),
            (
                "done no checks",
                Box::new(|d| d["acceptance_check"] = json!([])),
                AcceptanceFailed,
            ),
            (
                "done failing",
                Box::new(|d| d["acceptance_check"][0]["status"] = json!("fail")),
                AcceptanceFailed,
            ),
            (
                "done no evidence",
                Box::new(|d| d["acceptance_check"][0]["evidence"] = json!("  ")),
                AcceptanceFailed,
            ),
        ];
        for (name, mutate, code) in cases {
            let mut doc = result();
            mutate(&mut doc);
            expect(SubagentResult::check(&doc, false), code, name);
        }
    }

    #[test]
    fn blocked_results_need_no_passing_checks() {
        let mut doc = result();
        doc["status"] = json!("blocked");
        doc["acceptance_check"] = json!([]);
        SubagentResult::check(&doc, true).unwrap();
    }
}
