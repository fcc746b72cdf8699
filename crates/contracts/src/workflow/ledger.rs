//! Ledger rows and reconciliation: replaying events over rows, then checking
//! dependencies, lock ownership/scope/conflicts and heartbeat timeouts.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use serde_json::{Value, json};

use super::assignment::PRIORITIES;
use super::output::{STATUSES, status_of};
use super::{Ids, lock_list, no_lock_conflicts, resources, task_id};
use crate::check::{Checked, Obj, index, invalid, missing};
use crate::locks::{Lock, is_within};
use crate::task::TaskStatus;
use crate::verdict::{Code, Violation};

/// Fields of a handoff `ledger[]` row (all required there).
pub(crate) const ROW_REQUIRED: &[&str] = &[
    "task_id",
    "title",
    "status",
    "owner",
    "lock_scope",
    "timeout_seconds",
    "heartbeat_interval_seconds",
    "priority",
];
/// `dependencies` is Garrison's addition: reconcile rows need somewhere to say it.
pub(crate) const ROW_OPTIONAL: &[&str] = &["last_heartbeat_at", "dependencies"];

/// A checked ledger row, as much as the consistency checks need.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub task_id: String,
    pub status: TaskStatus,
    pub lock_scope: Option<Vec<String>>,
    pub dependencies: Vec<String>,
    pub timeout_seconds: Option<i64>,
    pub last_heartbeat_at: Option<Timestamp>,
    pub path: String,
}

/// Checks a row. `full` rows (handoff) need every contract field; reconcile
/// rows need only `task_id` and `status`, the rest is checked when present.
pub(crate) fn check_row(o: &Obj<'_>, full: bool, strict: bool, ids: Ids) -> Checked<Row> {
    if full {
        o.shape(ROW_REQUIRED, ROW_OPTIONAL, strict)?;
    } else {
        let optional: Vec<&str> = ROW_REQUIRED[2..]
            .iter()
            .chain(ROW_OPTIONAL)
            .copied()
            .collect();
        o.shape(&["task_id", "status"], &optional, strict)?;
    }
    let id = task_id(o, "task_id", ids)?.to_string();
    let status = status_of(o, "status")?;
    let has = |k: &str| o.get(k).is_some();
    if has("title") {
        o.str_len("title", 1, 500)?;
    }
    if has("owner") {
        o.str("owner")?;
    }
    let lock_scope = if has("lock_scope") {
        Some(resources(o, "lock_scope", 0)?)
    } else {
        None
    };
    let timeout = if has("timeout_seconds") {
        Some(o.int_min("timeout_seconds", 30)?)
    } else {
        None
    };
    if has("heartbeat_interval_seconds") {
        let hb = o.int_min("heartbeat_interval_seconds", 5)?;
        if let Some(t) = timeout.filter(|t| hb >= *t) {
            return Err(invalid(
                &o.at("heartbeat_interval_seconds"),
                format!("must be less than timeout_seconds ({hb} >= {t})"),
            ));
        }
    }
    if has("priority") {
        o.one_of("priority", PRIORITIES)?;
    }
    let dependencies = if has("dependencies") {
        dep_ids(o, "dependencies", ids)?
    } else {
        Vec::new()
    };
    Ok(Row {
        task_id: id,
        status,
        lock_scope,
        dependencies,
        timeout_seconds: timeout,
        last_heartbeat_at: o.opt_timestamp("last_heartbeat_at")?,
        path: o.path.clone(),
    })
}

pub(crate) fn dep_ids(o: &Obj<'_>, key: &str, ids: Ids) -> Checked<Vec<String>> {
    let list = match ids {
        Ids::Contract => o.task_ids(key)?,
        Ids::Loose => o.str_array(key)?,
    };
    Ok(list.into_iter().map(str::to_string).collect())
}

/// The rows of a ledger, keyed by task id; duplicates are `LEDGER_INCONSISTENT`.
pub(crate) struct Ledger {
    pub rows: Vec<Row>,
    by_id: HashMap<String, usize>,
}

impl Ledger {
    pub fn new(rows: Vec<Row>) -> Checked<Ledger> {
        let mut by_id = HashMap::new();
        for (i, r) in rows.iter().enumerate() {
            if by_id.insert(r.task_id.clone(), i).is_some() {
                return Err(Violation::new(
                    Code::LedgerInconsistent,
                    format!("Task {} appears more than once in the ledger.", r.task_id),
                    json!({ "field": r.path, "task_id": r.task_id }),
                ));
            }
        }
        Ok(Ledger { rows, by_id })
    }

    pub fn get(&self, id: &str) -> Option<&Row> {
        self.by_id.get(id).map(|&i| &self.rows[i])
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Row> {
        self.by_id.get(id).map(|&i| &mut self.rows[i])
    }

    fn insert(&mut self, row: Row) {
        self.by_id.insert(row.task_id.clone(), self.rows.len());
        self.rows.push(row);
    }

    /// `DEPENDENCY_NOT_MET` when `row` is in_progress/done while one of its
    /// dependencies (its own plus `extra`) is not done.
    pub fn dependencies_met(&self, row: &Row, status: TaskStatus, extra: &[String]) -> Checked<()> {
        if !matches!(status, TaskStatus::InProgress | TaskStatus::Done) {
            return Ok(());
        }
        for dep in row.dependencies.iter().chain(extra) {
            let dep_status = self.get(dep).map(|d| d.status);
            if dep_status != Some(TaskStatus::Done) {
                let shown = dep_status.map_or("absent from the ledger", TaskStatus::as_str);
                return Err(Violation::new(
                    Code::DependencyNotMet,
                    format!(
                        "Task {} is {} but its dependency {dep} is {shown}.",
                        row.task_id,
                        status.as_str()
                    ),
                    json!({
                        "field": row.path, "task_id": row.task_id, "status": status.as_str(),
                        "dependency": dep, "dependency_status": dep_status.map(TaskStatus::as_str),
                    }),
                ));
            }
        }
        Ok(())
    }

    pub fn all_dependencies_met(&self, extra: &HashMap<String, Vec<String>>) -> Checked<()> {
        for row in &self.rows {
            let more = extra.get(&row.task_id).map_or(&[][..], Vec::as_slice);
            self.dependencies_met(row, row.status, more)?;
        }
        Ok(())
    }

    /// Active locks belong to in_progress tasks, lie within their lock_scope
    /// (when the row gives one) and do not conflict across tasks.
    pub fn locks_consistent(&self, locks: &[Lock], field: &str) -> Checked<()> {
        for (i, l) in locks.iter().enumerate().filter(|(_, l)| l.active) {
            let at = index(field, i);
            let Some(row) = self.get(&l.task_id) else {
                return Err(Violation::new(
                    Code::LedgerInconsistent,
                    format!(
                        "Active lock on `{}` is held by task {}, which is not in the ledger.",
                        l.resource, l.task_id
                    ),
                    json!({ "field": at, "task_id": l.task_id, "resource": l.resource }),
                ));
            };
            if row.status != TaskStatus::InProgress {
                return Err(Violation::new(
                    Code::LedgerInconsistent,
                    format!(
                        "Task {} is {} but still holds an active lock on `{}`; only in_progress tasks hold locks.",
                        l.task_id,
                        row.status.as_str(),
                        l.resource
                    ),
                    json!({ "field": at, "task_id": l.task_id, "status": row.status.as_str(), "resource": l.resource }),
                ));
            }
            if let Some(scope) = &row.lock_scope
                && !scope.iter().any(|s| is_within(&l.resource, s))
            {
                return Err(Violation::new(
                    Code::ScopeViolation,
                    format!(
                        "Task {} holds a lock on `{}`, outside its lock_scope.",
                        l.task_id, l.resource
                    ),
                    json!({ "field": at, "task_id": l.task_id, "resource": l.resource, "lock_scope": scope }),
                ));
            }
        }
        no_lock_conflicts(locks, field)
    }

    /// `TASK_TIMEOUT` when an in_progress task's heartbeat is older than its
    /// `timeout_seconds` at `now`.
    pub fn heartbeats_fresh(&self, now: Timestamp) -> Checked<()> {
        for row in self
            .rows
            .iter()
            .filter(|r| r.status == TaskStatus::InProgress)
        {
            let (Some(timeout), Some(hb)) = (row.timeout_seconds, row.last_heartbeat_at) else {
                continue;
            };
            let age = now.duration_since(hb).as_secs();
            if age > timeout {
                return Err(Violation::new(
                    Code::TaskTimeout,
                    format!(
                        "Task {} has not sent a heartbeat for {age}s (timeout {timeout}s); it must move to blocked and release its locks.",
                        row.task_id
                    ),
                    json!({
                        "field": row.path, "task_id": row.task_id, "last_heartbeat_at": hb.to_string(),
                        "now": now.to_string(), "timeout_seconds": timeout, "age_seconds": age,
                    }),
                ));
            }
        }
        Ok(())
    }
}

const EVENT_OPTIONAL: &[&str] = &[
    "status",
    "to",
    "from",
    "delta_id",
    "heartbeat_at",
    "last_heartbeat_at",
    "owner",
    "reason",
    "timed_out",
    "retry_after_ms",
    "ts",
    "timestamp",
];

/// A replayable event: a status change and/or a heartbeat.
struct Event<'a> {
    task_id: &'a str,
    to: Option<TaskStatus>,
    from: Option<TaskStatus>,
    delta_id: Option<&'a str>,
    heartbeat: Option<Timestamp>,
    path: String,
}

fn check_event<'a>(e: &Obj<'a>, strict: bool) -> Checked<Event<'a>> {
    e.shape(&["task_id"], EVENT_OPTIONAL, strict)?;
    let task_id = e.non_empty("task_id")?;
    let status = e
        .get("status")
        .map(|_| status_of(e, "status"))
        .transpose()?;
    let to = e.get("to").map(|_| status_of(e, "to")).transpose()?;
    if let (Some(s), Some(t)) = (status, to)
        && s != t
    {
        return Err(invalid(
            &e.at("to"),
            format!("disagrees with status ({} vs {})", t.as_str(), s.as_str()),
        ));
    }
    let heartbeat = match e.opt_timestamp("heartbeat_at")? {
        Some(t) => Some(t),
        None => e.opt_timestamp("last_heartbeat_at")?,
    };
    let to = status.or(to);
    if to.is_none() && heartbeat.is_none() {
        let mut v = missing(&e.at("status"));
        v.reason = format!(
            "Event `{}` has neither `status`/`to` nor a heartbeat (allowed: {}).",
            e.path,
            STATUSES.join("|")
        );
        return Err(v);
    }
    let delta_id = e.opt_str("delta_id")?;
    if e.get("ts").is_some() {
        e.timestamp("ts")?;
    }
    Ok(Event {
        task_id,
        to,
        from: e.get("from").map(|_| status_of(e, "from")).transpose()?,
        delta_id,
        heartbeat,
        path: e.path.clone(),
    })
}

fn transition_error(ev: &Event<'_>, from: TaskStatus, to: TaskStatus) -> Violation {
    Violation::new(
        Code::InvalidTransition,
        format!(
            "Event `{}` moves task {} from {} to {}, which the task state machine forbids.",
            ev.path,
            ev.task_id,
            from.as_str(),
            to.as_str()
        ),
        json!({ "field": ev.path, "task_id": ev.task_id, "from": from.as_str(), "to": to.as_str(), "delta_id": ev.delta_id }),
    )
}

impl Ledger {
    /// Applies one event (D1–D4): `from`, when given, must be a legal source
    /// and the current status (else `CONCURRENCY_CONFLICT`: the event was
    /// computed against a stale row); unknown tasks may only be created as `todo`.
    fn apply(&mut self, ev: &Event<'_>) -> Checked<()> {
        let Some(row) = self.get(ev.task_id).cloned() else {
            if ev.to == Some(TaskStatus::Todo) && ev.from.is_none() {
                self.insert(Row {
                    task_id: ev.task_id.to_string(),
                    status: TaskStatus::Todo,
                    lock_scope: None,
                    dependencies: Vec::new(),
                    timeout_seconds: None,
                    last_heartbeat_at: ev.heartbeat,
                    path: ev.path.clone(),
                });
                return Ok(());
            }
            return Err(Violation::new(
                Code::LedgerInconsistent,
                format!(
                    "Event `{}` changes task {}, which has no ledger row (only a `todo` event may create one).",
                    ev.path, ev.task_id
                ),
                json!({ "field": ev.path, "task_id": ev.task_id }),
            ));
        };
        if let Some(to) = ev.to {
            if let Some(from) = ev.from {
                if !from.can_move_to(to) {
                    return Err(transition_error(ev, from, to));
                }
                if from != row.status {
                    return Err(Violation::new(
                        Code::ConcurrencyConflict,
                        format!(
                            "Event `{}` expects task {} to be {}, but the ledger has it {}; re-read the canonical ledger.",
                            ev.path,
                            ev.task_id,
                            from.as_str(),
                            row.status.as_str()
                        ),
                        json!({ "field": ev.path, "task_id": ev.task_id, "expected": from.as_str(), "actual": row.status.as_str() }),
                    ));
                }
            }
            if !row.status.can_move_to(to) {
                return Err(transition_error(ev, row.status, to));
            }
            if to != row.status {
                let mut moved = row.clone();
                moved.path = ev.path.clone();
                self.dependencies_met(&moved, to, &[])?;
            }
        }
        if let Some(r) = self.get_mut(ev.task_id) {
            if let Some(to) = ev.to {
                r.status = to;
            }
            if ev.heartbeat.is_some() {
                r.last_heartbeat_at = ev.heartbeat;
            }
        }
        Ok(())
    }
}

/// What a successful reconciliation looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileSummary {
    pub tasks: usize,
    pub events_applied: usize,
    pub duplicates_ignored: usize,
    pub active_locks: usize,
}

/// Reconciles `{"ledger":[rows],"active_locks":[…],"events":[…]}` (plus
/// optional `now` / `generated_at`): events replay legally over the rows,
/// dependencies hold, active locks belong to in_progress tasks within their
/// scope without conflicts, and no in_progress heartbeat is stale at `now`.
pub fn check_reconcile(doc: &Value, strict: bool) -> Result<ReconcileSummary, Violation> {
    let o = Obj::new(doc, "")?;
    o.schema_version(false)?;
    o.shape(
        &["ledger"],
        &[
            "active_locks",
            "events",
            "now",
            "generated_at",
            "schema_version",
            "run_id",
        ],
        strict,
    )?;
    o.opt_str("run_id")?;
    let now = match o.opt_timestamp("now")? {
        Some(t) => Some(t),
        None => o.opt_timestamp("generated_at")?,
    };
    let rows = o
        .objects("ledger")?
        .iter()
        .map(|r| check_row(r, false, strict, Ids::Loose))
        .collect::<Checked<Vec<_>>>()?;
    let locks = if o.get("active_locks").is_some() {
        lock_list(&o, "active_locks", strict, Ids::Loose)?
    } else {
        Vec::new()
    };
    let event_objs = if o.get("events").is_some() {
        o.objects("events")?
    } else {
        Vec::new()
    };
    let events = event_objs
        .iter()
        .map(|e| check_event(e, strict))
        .collect::<Checked<Vec<_>>>()?;

    let mut ledger = Ledger::new(rows)?;
    ledger.all_dependencies_met(&HashMap::new())?;
    let mut seen = HashSet::new();
    let mut applied = 0;
    for ev in &events {
        if let Some(id) = ev.delta_id
            && !seen.insert(id)
        {
            continue; // D2: a replayed delta is a no-op.
        }
        ledger.apply(ev)?;
        applied += 1;
    }
    ledger.locks_consistent(&locks, &o.at("active_locks"))?;
    if let Some(now) = now {
        ledger.heartbeats_fresh(now)?;
    }
    Ok(ReconcileSummary {
        tasks: ledger.rows.len(),
        events_applied: applied,
        duplicates_ignored: events.len() - applied,
        active_locks: locks.iter().filter(|l| l.active).count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::tests::{Case, expect};

    fn doc() -> Value {
        json!({
            "now": "2026-01-14T16:30:00Z",
            "ledger": [
                {"task_id": "T-1", "status": "done", "lock_scope": ["src/"]},
                {"task_id": "T-2", "status": "todo", "dependencies": ["T-1"], "lock_scope": ["tests/"],
                 "timeout_seconds": 600, "heartbeat_interval_seconds": 60},
                {"task_id": "T-3", "status": "blocked", "dependencies": ["T-2"]}
            ],
            "active_locks": [{"task_id": "T-2", "resource": "tests/test_api.py", "active": true}],
            "events": [
                {"task_id": "T-2", "from": "todo", "to": "in_progress", "delta_id": "d-1", "heartbeat_at": "2026-01-14T16:25:00Z"},
                {"task_id": "T-2", "from": "todo", "to": "in_progress", "delta_id": "d-1"},
                {"task_id": "T-4", "status": "todo", "delta_id": "d-2"},
                {"task_id": "T-2", "last_heartbeat_at": "2026-01-14T16:28:00Z"}
            ]
        })
    }

    #[test]
    fn valid_reconcile() {
        let s = check_reconcile(&doc(), true).unwrap();
        assert_eq!(
            s,
            ReconcileSummary {
                tasks: 4,
                events_applied: 3,
                duplicates_ignored: 1,
                active_locks: 1
            }
        );
    }

    #[test]
    fn each_rule_has_its_code() {
        use Code::*;
        let cases: Vec<Case> = vec![
            (
                "no ledger",
                Box::new(|d| {
                    d.as_object_mut().unwrap().remove("ledger");
                }),
                MissingRequiredInput,
            ),
            (
                "row no status",
                Box::new(|d| {
                    d["ledger"][0].as_object_mut().unwrap().remove("status");
                }),
                MissingRequiredInput,
            ),
            (
                "event no status",
                Box::new(|d| d["events"][3] = json!({"task_id": "T-2"})),
                MissingRequiredInput,
            ),
            (
                "version",
                Box::new(|d| d["schema_version"] = json!("2.0.0")),
                UnknownSchemaVersion,
            ),
            (
                "row status",
                Box::new(|d| d["ledger"][0]["status"] = json!("complete")),
                SchemaInvalid,
            ),
            (
                "empty lock",
                Box::new(|d| d["active_locks"][0]["resource"] = json!("./")),
                SchemaInvalid,
            ),
            (
                "now",
                Box::new(|d| d["now"] = json!("later")),
                SchemaInvalid,
            ),
            (
                "status vs to",
                Box::new(|d| d["events"][0]["status"] = json!("blocked")),
                SchemaInvalid,
            ),
            (
                "duplicate row",
                Box::new(|d| {
                    let r = d["ledger"][0].clone();
                    d["ledger"].as_array_mut().unwrap().push(r);
                }),
                LedgerInconsistent,
            ),
            (
                "unknown task",
                Box::new(|d| d["events"][2]["status"] = json!("in_progress")),
                LedgerInconsistent,
            ),
            (
                "lock of todo",
                Box::new(|d| d["active_locks"][0]["task_id"] = json!("T-4")),
                LedgerInconsistent,
            ),
            (
                "lock of stranger",
                Box::new(|d| d["active_locks"][0]["task_id"] = json!("T-9")),
                LedgerInconsistent,
            ),
            (
                "illegal",
                Box::new(|d| d["events"][0]["to"] = json!("done")),
                InvalidTransition,
            ),
            (
                "illegal from->to",
                Box::new(|d| {
                    d["events"][0]["from"] = json!("done");
                    d["events"][0]["to"] = json!("todo");
                }),
                InvalidTransition,
            ),
            (
                "stale from",
                Box::new(|d| d["events"][0]["from"] = json!("blocked")),
                ConcurrencyConflict,
            ),
            (
                "dep not done",
                Box::new(|d| d["ledger"][0]["status"] = json!("in_progress")),
                DependencyNotMet,
            ),
            (
                "initial dep",
                Box::new(|d| d["ledger"][2]["status"] = json!("done")),
                DependencyNotMet,
            ),
            (
                "out of scope",
                Box::new(|d| d["active_locks"][0]["resource"] = json!("docs/x.md")),
                ScopeViolation,
            ),
            (
                "conflict",
                Box::new(|d| {
                    d["ledger"][0]["status"] = json!("in_progress");
                    d["ledger"][0]["lock_scope"] = json!(["tests"]);
                    d["ledger"][1]["dependencies"] = json!([]);
                    d["active_locks"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"task_id": "T-1", "resource": "tests", "active": true}));
                }),
                LockConflict,
            ),
            (
                "timeout",
                Box::new(|d| d["now"] = json!("2026-01-14T16:40:01Z")),
                TaskTimeout,
            ),
            (
                "timeout via generated_at",
                Box::new(|d| {
                    d.as_object_mut().unwrap().remove("now");
                    d["generated_at"] = json!("2026-01-15T00:00:00Z");
                }),
                TaskTimeout,
            ),
        ];
        for (name, mutate, code) in cases {
            let mut d = doc();
            mutate(&mut d);
            expect(check_reconcile(&d, false).map(|_| ()), code, name);
        }
    }

    #[test]
    fn timeout_boundary_and_no_clock() {
        let mut d = doc();
        d["now"] = json!("2026-01-14T16:38:00Z"); // exactly 600 s after the last heartbeat
        check_reconcile(&d, true).unwrap();
        d.as_object_mut().unwrap().remove("now");
        check_reconcile(&d, true).unwrap();
    }

    #[test]
    fn strict_rejects_unknown_row_and_event_fields() {
        let mut d = doc();
        d["events"][0]["note"] = json!("x");
        check_reconcile(&d, false).unwrap();
        let err = check_reconcile(&d, true).unwrap_err();
        assert_eq!(err.details["field"], json!("events[0].note"));
    }
}
