//! Operator-workflow payloads (operator-workflow-contracts.md): serde types plus
//! validators that return the contract's codes.
//!
//! Every payload type implements [`Payload`]: `check` validates raw JSON,
//! `parse` validates then deserialises, `validate` re-checks a value built in
//! code (strict) before it is emitted.

pub mod assignment;
pub mod handoff;
pub mod ledger;
pub mod output;
pub mod result;
pub mod worklog;

pub use assignment::{AssignmentPacket, ContextItem, ContextKind, Priority, Task, TaskType};
pub use handoff::{HandoffBundle, HandoffLedgerRow};
pub use output::{Blocker, LedgerDelta, OrchestratorOutput};
pub use result::{AcceptanceCheck, Change, CheckStatus, ResultStatus, SubagentResult};
pub use worklog::WorklogEntry;

/// An `active_locks[]` entry.
pub type ActiveLock = crate::locks::Lock;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::check::{Checked, Obj, index, invalid};
use crate::locks::{self, Lock, normalize_resource};
use crate::verdict::{Code, Violation};

/// The contract version Garrison writes.
pub const SCHEMA_VERSION: &str = "1.0.0";

/// Fields every payload may carry (operator-workflow "Common Fields").
pub(crate) const COMMON_OPTIONAL: &[&str] = &["generated_at"];

/// A workflow payload with a contract validator.
pub trait Payload: Serialize + DeserializeOwned {
    /// Checks raw JSON against the contract; `strict` rejects unknown non-`x_` fields.
    fn check(doc: &Value, strict: bool) -> Result<(), Violation>;

    /// Checks `doc`, then deserialises it.
    fn parse(doc: &Value, strict: bool) -> Result<Self, Violation> {
        Self::check(doc, strict)?;
        serde_json::from_value(doc.clone()).map_err(|e| {
            Violation::new(
                Code::SchemaInvalid,
                format!("Document does not match the contract: {e}."),
                json!({}),
            )
        })
    }

    /// Checks a value built in code, strictly, before it is emitted.
    fn validate(&self) -> Result<(), Violation> {
        let doc = serde_json::to_value(self).map_err(|e| {
            Violation::new(
                Code::SchemaInvalid,
                format!("Value does not serialise: {e}."),
                json!({}),
            )
        })?;
        Self::check(&doc, true)
    }
}

/// How task ids are checked: the contract's regex for contract payloads, any
/// non-empty string for Garrison's own `locks` / `reconcile` documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ids {
    Contract,
    Loose,
}

pub(crate) fn task_id<'a>(o: &Obj<'a>, key: &str, ids: Ids) -> Checked<&'a str> {
    match ids {
        Ids::Contract => o.task_id(key),
        Ids::Loose => o.non_empty(key),
    }
}

/// The common header: `schema_version` (checked first, fail closed), the
/// required field set, then `run_id` and `generated_at`.
pub(crate) fn header(
    o: &Obj<'_>,
    required: &[&str],
    optional: &[&str],
    strict: bool,
) -> Checked<()> {
    o.schema_version(true)?;
    o.shape(required, optional, strict)?;
    if required.contains(&"run_id") {
        o.run_id("run_id")?;
    }
    o.opt_timestamp("generated_at")?;
    Ok(())
}

/// A list of resource paths, each normalised (`SCHEMA_INVALID` when empty).
pub(crate) fn resources(o: &Obj<'_>, key: &str, min: usize) -> Checked<Vec<String>> {
    o.array_min(key, min)?;
    let path = o.at(key);
    o.str_array(key)?
        .iter()
        .enumerate()
        .map(|(i, r)| normalize_resource(r).map_err(|e| invalid(&index(&path, i), e.to_string())))
        .collect()
}

/// `active_locks[]`, shape-checked, with normalised resources.
pub(crate) fn lock_list(o: &Obj<'_>, key: &str, strict: bool, ids: Ids) -> Checked<Vec<Lock>> {
    let mut out = Vec::new();
    for l in o.objects(key)? {
        l.shape(&["task_id", "resource", "active"], &[], strict)?;
        let task = task_id(&l, "task_id", ids)?;
        let raw = l.str("resource")?;
        let resource =
            normalize_resource(raw).map_err(|e| invalid(&l.at("resource"), e.to_string()))?;
        out.push(Lock::new(task, resource, l.bool("active")?));
    }
    Ok(out)
}

/// `LOCK_CONFLICT` when active locks of different tasks overlap.
pub(crate) fn no_lock_conflicts(locks: &[Lock], field: &str) -> Checked<()> {
    let pairs = locks::find_conflicts(locks);
    let Some((a, b)) = pairs.first() else {
        return Ok(());
    };
    Err(Violation::new(
        Code::LockConflict,
        format!(
            "Active lock `{}` of task {} conflicts with `{}` of task {}{}.",
            a.resource,
            a.task_id,
            b.resource,
            b.task_id,
            if pairs.len() > 1 {
                format!(" ({} conflicting pairs in all)", pairs.len())
            } else {
                String::new()
            }
        ),
        json!({ "field": field, "conflicts": conflict_details(&pairs) }),
    ))
}

pub(crate) fn conflict_details(pairs: &[(Lock, Lock)]) -> Value {
    pairs
        .iter()
        .map(|(a, b)| json!([{"task_id": a.task_id, "resource": a.resource}, {"task_id": b.task_id, "resource": b.resource}]))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A table-driven case: name, mutation of a valid document, expected code.
    pub type Case = (&'static str, Box<dyn Fn(&mut Value)>, Code);

    /// The contract's minimal assignment example, verbatim.
    pub fn assignment() -> Value {
        serde_json::from_str(include_str!(
            "../../tests/fixtures/assignment/valid-minimal.json"
        ))
        .unwrap()
    }

    /// The contract's minimal result example, verbatim.
    pub fn result() -> Value {
        serde_json::from_str(include_str!(
            "../../tests/fixtures/result/valid-minimal.json"
        ))
        .unwrap()
    }

    /// Asserts `got` failed with `code`, and that details is an object.
    pub fn expect(got: Result<(), Violation>, code: Code, case: &str) {
        match got {
            Err(v) => {
                assert_eq!(v.code, code, "case {case:?}: {v:?}");
                assert!(v.details.is_object(), "case {case:?}");
                assert!(
                    v.reason.ends_with('.'),
                    "case {case:?}: reason {:?}",
                    v.reason
                );
            }
            Ok(()) => panic!("case {case:?}: expected {code}, got OK"),
        }
    }
}
