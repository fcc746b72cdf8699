//! Artifact: Worklog Entry (append-only JSONL).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Payload;
use crate::check::{Checked, Obj, index, invalid, missing};
use crate::secrets::looks_secret;
use crate::verdict::{Code, Violation};

/// One worklog line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorklogEntry {
    /// Not in the entry's required list; checked when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<String>,
    pub timestamp: String,
    pub run_id: String,
    pub task_id: String,
    pub actor: String,
    pub action: String,
    pub files_touched: Vec<String>,
    pub decision: String,
    pub result: String,
    pub next_step: String,
    /// Required on a blocked/failed outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Code>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

impl WorklogEntry {
    /// Whether this entry records a blocked or failed outcome: `result` or
    /// `action` starts with the word `blocked` or `failed`.
    pub fn is_blocked_or_failed(&self) -> bool {
        outcome_is_blocked_or_failed(&self.result) || outcome_is_blocked_or_failed(&self.action)
    }
}

impl Payload for WorklogEntry {
    fn check(doc: &Value, strict: bool) -> Result<(), Violation> {
        check_entry(doc, "", strict)
    }
}

const REQUIRED: &[&str] = &[
    "timestamp",
    "run_id",
    "task_id",
    "actor",
    "action",
    "files_touched",
    "decision",
    "result",
    "next_step",
];
const OPTIONAL: &[&str] = &["schema_version", "generated_at", "code", "evidence"];

/// Fields whose text must never carry secrets.
const FREE_TEXT: &[&str] = &["action", "decision", "result", "next_step", "evidence"];

pub(crate) fn outcome_is_blocked_or_failed(text: &str) -> bool {
    let word: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase();
    word == "blocked" || word == "failed"
}

/// A worklog document: one entry, or an array of entries (JSONL turned into
/// an array). An empty array is `MISSING_REQUIRED_INPUT`: nothing to vouch for.
pub fn check_worklog(doc: &Value, strict: bool) -> Result<usize, Violation> {
    match doc {
        Value::Array(entries) => {
            if entries.is_empty() {
                return Err(Violation::new(
                    Code::MissingRequiredInput,
                    "The worklog has no entries.",
                    json!({ "field": "[]" }),
                ));
            }
            for (i, e) in entries.iter().enumerate() {
                check_entry(e, &index("", i), strict)?;
            }
            Ok(entries.len())
        }
        other => check_entry(other, "", strict).map(|()| 1),
    }
}

fn check_entry(doc: &Value, path: &str, strict: bool) -> Checked<()> {
    let o = Obj::new(doc, path)?;
    o.schema_version(false)?;
    o.shape(REQUIRED, OPTIONAL, strict)?;
    o.opt_timestamp("generated_at")?;
    o.timestamp("timestamp")?;
    o.run_id("run_id")?;
    let task_id = o.task_id("task_id")?;
    for f in ["actor", "action", "decision", "result", "next_step"] {
        o.str(f)?;
    }
    o.str_array("files_touched")?;
    let code = match o.opt_str("code")? {
        Some(c) => Some(
            c.parse::<Code>()
                .map_err(|e| invalid(&o.at("code"), e.to_string()))?,
        ),
        None => None,
    };
    o.opt_str("evidence")?;

    for f in FREE_TEXT {
        if let Some(text) = o.opt_str(f)?
            && looks_secret(text)
        {
            return Err(Violation::new(
                Code::UntrustedContextBlock,
                format!(
                    "Worklog field `{}` contains secret-like text; secrets must never be written to a worklog.",
                    o.at(f)
                ),
                json!({ "field": o.at(f), "task_id": task_id }),
            ));
        }
    }

    let failed = [o.str("result")?, o.str("action")?]
        .into_iter()
        .any(outcome_is_blocked_or_failed);
    if failed {
        if code.is_none() {
            let mut v = missing(&o.at("code"));
            v.reason = format!(
                "Worklog entry `{}` records a blocked/failed outcome for task {task_id} but carries no `code`.",
                if path.is_empty() { "entry" } else { path }
            );
            v.details["task_id"] = json!(task_id);
            return Err(v);
        }
        if o.str("next_step")?.trim().is_empty() {
            let mut v = missing(&o.at("next_step"));
            v.reason = format!(
                "Blocked/failed worklog entry for task {task_id} has an empty `next_step`."
            );
            v.details["task_id"] = json!(task_id);
            return Err(v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::tests::{Case, expect};

    fn entry() -> Value {
        json!({
            "timestamp": "2026-01-14T16:21:00Z",
            "run_id": "3f56dc4d-35cf-4f97-925c-0b04a6fe8bf4",
            "task_id": "T-12",
            "actor": "subagent-1",
            "action": "edit",
            "files_touched": ["tests/test_api.py"],
            "decision": "Add assertions for 404",
            "result": "Tests pass",
            "next_step": "Report result",
            "evidence": "pytest -q"
        })
    }

    #[test]
    fn single_entry_and_array_are_valid() {
        assert_eq!(check_worklog(&entry(), true), Ok(1));
        let mut blocked = entry();
        blocked["result"] = json!("blocked: waiting for T-9");
        blocked["code"] = json!("DEPENDENCY_NOT_MET");
        assert_eq!(
            check_worklog(&json!([entry(), blocked.clone()]), true),
            Ok(2)
        );
        let parsed = WorklogEntry::parse(&blocked, true).unwrap();
        assert!(parsed.is_blocked_or_failed());
        assert_eq!(parsed.code, Some(Code::DependencyNotMet));
        parsed.validate().unwrap();
    }

    #[test]
    fn outcome_words() {
        assert!(outcome_is_blocked_or_failed("Failed: timeout"));
        assert!(outcome_is_blocked_or_failed("  blocked"));
        assert!(!outcome_is_blocked_or_failed("failedover cleanly"));
        assert!(!outcome_is_blocked_or_failed("not blocked"));
    }

    #[test]
    fn each_rule_has_its_code() {
        use Code::*;
        let cases: Vec<Case> = vec![
            (
                "no actor",
                Box::new(|d| {
                    d.as_object_mut().unwrap().remove("actor");
                }),
                MissingRequiredInput,
            ),
            (
                "failed no code",
                Box::new(|d| d["result"] = json!("failed to compile")),
                MissingRequiredInput,
            ),
            (
                "blocked action no code",
                Box::new(|d| d["action"] = json!("blocked")),
                MissingRequiredInput,
            ),
            (
                "blocked empty next",
                Box::new(|d| {
                    d["result"] = json!("blocked");
                    d["code"] = json!("LOCK_CONFLICT");
                    d["next_step"] = json!("");
                }),
                MissingRequiredInput,
            ),
            (
                "version",
                Box::new(|d| d["schema_version"] = json!("2.0.0")),
                UnknownSchemaVersion,
            ),
            (
                "timestamp",
                Box::new(|d| d["timestamp"] = json!("yesterday")),
                SchemaInvalid,
            ),
            (
                "files type",
                Box::new(|d| d["files_touched"] = json!("a.py")),
                SchemaInvalid,
            ),
            (
                "code unknown",
                Box::new(|d| d["code"] = json!("E_FAIL")),
                SchemaInvalid,
            ),
            (
                "run id",
                Box::new(|d| d["run_id"] = json!("r1")),
                SchemaInvalid,
            ),
            (
                "secret",
                Box::new(|d| d["decision"] = json!("used password=hunter2 to log in")),
                UntrustedContextBlock,
            ),
        ];
        for (name, mutate, code) in cases {
            let mut doc = entry();
            mutate(&mut doc);
            expect(check_worklog(&doc, false).map(|_| ()), code, name);
        }
        expect(
            check_worklog(&json!([]), false).map(|_| ()),
            MissingRequiredInput,
            "empty",
        );
        expect(
            check_worklog(&json!([entry(), 3]), false).map(|_| ()),
            SchemaInvalid,
            "non-object",
        );
        let err = check_worklog(&json!([entry(), {"x_note": 1}]), false).unwrap_err();
        assert_eq!(err.details["field"], json!("[1].timestamp"));
    }
}
