//! Inline projections: run and order snapshots derived from events.
//!
//! `apply` is a pure function shared by every backend and by `rebuild`, so a
//! snapshot written at append time and one recomputed from the log are the
//! same by construction.

use std::collections::{BTreeMap, HashMap};

use garrison_contracts::ironclaw::{EventType, OrderStatus, RunStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{LedgerError, Result};
use crate::event::Record;

/// The derived state of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunSnapshot {
    pub run_id: String,
    pub garrison_id: String,
    pub theater_id: Option<String>,
    pub status: RunStatus,
    pub objective: Option<String>,
    pub user_id: Option<String>,
    /// Latest `payload.summary` / `payload.reply` seen on a run event.
    pub summary: Option<String>,
    /// Latest routing-policy version recorded on the run, if any.
    pub metadata: Value,
    pub created_at: String,
    pub updated_at: String,
    pub last_seq: i64,
}

/// The derived state of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderSnapshot {
    pub order_id: String,
    pub run_id: Option<String>,
    pub garrison_id: String,
    pub theater_id: Option<String>,
    pub status: OrderStatus,
    pub objective: Option<String>,
    pub unit_id: Option<String>,
    /// 1 for the first execution; incremented by each reissue.
    pub attempt: u32,
    pub depends_on: Vec<String>,
    pub lock_scope: Vec<String>,
    pub worktree_path: Option<String>,
    pub branch: Option<String>,
    /// Artifact pointers from ARTIFACT_WRITTEN, in order.
    pub artifacts: Vec<Value>,
    /// The AAR pointer (or document) from AAR_WRITTEN.
    pub aar: Option<Value>,
    /// Merge commit from INTEGRATED.
    pub commit_sha: Option<String>,
    /// The latest integration event (`INTEGRATION_READY` … `INTEGRATED`), if any.
    #[serde(default)]
    pub integration: Option<EventType>,
    /// Reason attached to the latest BLOCKED/FAILED/CANCELLED event.
    pub reason: Option<String>,
    pub last_event_type: EventType,
    /// `seq` of the ORDER_CREATED event: a run's orders sort by it.
    pub created_seq: i64,
    pub created_at: String,
    pub updated_at: String,
    pub last_seq: i64,
}

/// The snapshots an event touched, to be written back in the same transaction.
#[derive(Debug, Default)]
pub struct Changes {
    pub run: Option<RunSnapshot>,
    pub order: Option<OrderSnapshot>,
}

fn str_field(payload: &Value, key: &str) -> Option<String> {
    payload.get(key).and_then(Value::as_str).map(str::to_string)
}

fn str_list(payload: &Value, key: &str) -> Option<Vec<String>> {
    payload.get(key).and_then(Value::as_array).map(|items| {
        items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    })
}

/// Whether an event changes its run's snapshot. Only run-level events do:
/// per-status order counts are derived from the order snapshots when read
/// ([`order_counts`]), so an order event never rewrites its run.
pub fn touches_run(rec: &Record) -> bool {
    type_touches_run(rec.event_type, rec.run_id.as_deref())
}

/// [`touches_run`] before the event is a record: by its type and run id.
pub fn type_touches_run(event_type: EventType, run_id: Option<&str>) -> bool {
    (event_type.run_status().is_some() || event_type == EventType::RunUpdated)
        && run_id.is_some_and(|r| !r.is_empty())
}

/// Applies one event to the current snapshots of its run and order.
///
/// `run` is the snapshot for `rec.run_id` (only consulted when
/// [`touches_run`]), `order` the one for `rec.order_id`, as they stand before
/// the event. Illegal state changes are rejected with
/// [`LedgerError::InvalidTransition`]; nothing is returned for them.
pub fn apply(
    run: Option<RunSnapshot>,
    order: Option<OrderSnapshot>,
    rec: &Record,
) -> Result<Changes> {
    let mut changes = Changes::default();
    if touches_run(rec) {
        changes.run = Some(apply_run(run, rec)?);
    }
    if let Some(order_id) = rec.order_id.as_deref().filter(|o| !o.is_empty()) {
        changes.order = apply_order(order, order_id, rec)?;
    }
    Ok(changes)
}

fn apply_run(run: Option<RunSnapshot>, rec: &Record) -> Result<RunSnapshot> {
    let run_id = rec.run_id.clone().unwrap_or_default();
    let mut r = match (run, rec.event_type) {
        (None, EventType::RunCreated) => RunSnapshot {
            run_id,
            garrison_id: rec.garrison_id.clone(),
            theater_id: rec.theater_id.clone(),
            status: RunStatus::Open,
            objective: str_field(&rec.payload, "objective"),
            user_id: str_field(&rec.payload, "user_id"),
            summary: None,
            metadata: Value::Object(Default::default()),
            created_at: rec.ts.clone(),
            updated_at: rec.ts.clone(),
            last_seq: rec.seq,
        },
        (None, t) => {
            return Err(LedgerError::InvalidTransition(format!(
                "{t} for run `{run_id}`, which has no RUN_CREATED"
            )));
        }
        (Some(r), EventType::RunCreated) => {
            return Err(LedgerError::InvalidTransition(format!(
                "run `{}` already exists (status {})",
                r.run_id,
                r.status.as_str()
            )));
        }
        (Some(r), _) => r,
    };
    if let Some(target) = rec.event_type.run_status() {
        if r.status.is_terminal() && r.status != target {
            return Err(LedgerError::InvalidTransition(format!(
                "run `{}` is {}; it cannot become {}",
                r.run_id,
                r.status.as_str(),
                target.as_str()
            )));
        }
        r.status = target;
    }
    if rec.event_type == EventType::RunUpdated {
        if let Some(obj) = str_field(&rec.payload, "objective") {
            r.objective = Some(obj);
        }
        if let Some(Value::Object(meta)) = rec.payload.get("metadata")
            && let Value::Object(current) = &mut r.metadata
        {
            for (k, v) in meta {
                current.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(s) = str_field(&rec.payload, "summary").or(str_field(&rec.payload, "reply")) {
        r.summary = Some(s);
    }
    r.updated_at = rec.ts.clone();
    r.last_seq = rec.seq;
    Ok(r)
}

/// Number of orders in each status (every status present, zero or not).
pub fn order_counts(orders: &[OrderSnapshot]) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> = OrderStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    for o in orders {
        *counts.entry(o.status.as_str().to_string()).or_default() += 1;
    }
    counts
}

fn apply_order(
    order: Option<OrderSnapshot>,
    order_id: &str,
    rec: &Record,
) -> Result<Option<OrderSnapshot>> {
    let target = rec.event_type.order_status();
    let mut o = match (order, target) {
        (None, _) if rec.event_type == EventType::OrderCreated => OrderSnapshot {
            order_id: order_id.to_string(),
            run_id: rec.run_id.clone(),
            garrison_id: rec.garrison_id.clone(),
            theater_id: rec.theater_id.clone(),
            status: OrderStatus::Queued,
            objective: str_field(&rec.payload, "objective"),
            unit_id: rec.unit_id.clone(),
            attempt: 1,
            depends_on: str_list(&rec.payload, "depends_on").unwrap_or_default(),
            lock_scope: str_list(&rec.payload, "lock_scope").unwrap_or_default(),
            worktree_path: None,
            branch: None,
            artifacts: Vec::new(),
            aar: None,
            commit_sha: None,
            integration: None,
            reason: None,
            last_event_type: rec.event_type,
            created_seq: rec.seq,
            created_at: rec.ts.clone(),
            updated_at: rec.ts.clone(),
            last_seq: rec.seq,
        },
        (None, Some(_)) => {
            return Err(LedgerError::InvalidTransition(format!(
                "{} for order `{order_id}`, which has no ORDER_CREATED",
                rec.event_type
            )));
        }
        // Events about an order the ledger never saw created keep no snapshot.
        (None, None) => return Ok(None),
        (Some(o), _) if rec.event_type == EventType::OrderCreated => {
            return Err(LedgerError::InvalidTransition(format!(
                "order `{}` already exists (status {})",
                o.order_id,
                o.status.as_str()
            )));
        }
        (Some(o), _) => o,
    };

    if let Some(to) = target {
        if rec.event_type != EventType::OrderCreated && !o.status.can_move_to(to) {
            return Err(LedgerError::InvalidTransition(format!(
                "order `{}` cannot go from {} to {} ({} → {} is not in the task transition table)",
                o.order_id,
                o.status.as_str(),
                to.as_str(),
                o.status.task_status().as_str(),
                to.task_status().as_str()
            )));
        }
        o.status = to;
        match rec.event_type {
            EventType::OrderReissued => o.attempt = o.attempt.saturating_add(1),
            EventType::OrderBlocked | EventType::OrderFailed | EventType::OrderCancelled => {
                o.reason = str_field(&rec.payload, "reason")
                    .or(str_field(&rec.payload, "code"))
                    .or(o.reason.take());
            }
            _ => {}
        }
    }

    match rec.event_type {
        EventType::OrderClaimed | EventType::OrderStarted if rec.unit_id.is_some() => {
            o.unit_id = rec.unit_id.clone();
        }
        EventType::WorktreeCreated | EventType::WorktreeReady => {
            if let Some(p) = str_field(&rec.payload, "worktree_path") {
                o.worktree_path = Some(p);
            }
            if let Some(b) = str_field(&rec.payload, "branch") {
                o.branch = Some(b);
            }
        }
        EventType::ArtifactWritten => {
            let pointer = match rec.payload.get("artifacts") {
                Some(Value::Array(items)) => items.clone(),
                _ => vec![rec.payload.clone()],
            };
            o.artifacts.extend(pointer);
        }
        EventType::AarWritten => o.aar = Some(rec.payload.clone()),
        EventType::Integrated => {
            if let Some(sha) = str_field(&rec.payload, "commit_sha") {
                o.commit_sha = Some(sha);
            }
            o.integration = Some(rec.event_type);
            o.reason = None;
        }
        // A completed order that did not merge says why (gate, scope, a
        // busy mainline) the way a failed one does.
        EventType::IntegrationFailed => {
            o.integration = Some(rec.event_type);
            let code = str_field(&rec.payload, "code");
            o.reason = match (code, str_field(&rec.payload, "reason")) {
                (Some(code), Some(reason)) => Some(format!("{code}: {reason}")),
                (code, reason) => reason.or(code).or(o.reason.take()),
            };
        }
        EventType::IntegrationReady
        | EventType::IntegrationStarted
        | EventType::IntegrationPassed => o.integration = Some(rec.event_type),
        _ => {}
    }
    o.last_event_type = rec.event_type;
    o.updated_at = rec.ts.clone();
    o.last_seq = rec.seq;
    Ok(Some(o))
}

/// Applies one stored event to in-memory snapshots (every backend's rebuild).
/// A stored event that no longer applies means the log and the state machine
/// disagree: that is reported as `LEDGER_INCONSISTENT`, never skipped.
pub fn replay(
    runs: &mut HashMap<String, RunSnapshot>,
    orders: &mut HashMap<String, OrderSnapshot>,
    rec: &Record,
) -> Result<()> {
    let run = match rec.run_id.as_deref() {
        Some(id) if touches_run(rec) => runs.remove(id),
        _ => None,
    };
    let order = rec.order_id.as_deref().and_then(|id| orders.remove(id));
    // `apply` hands back every snapshot it was given (updated), so nothing is lost here.
    let ch = apply(run, order, rec).map_err(|e| {
        LedgerError::Inconsistent(format!(
            "stored event {} ({}) does not replay: {e}",
            rec.seq, rec.event_type
        ))
    })?;
    if let Some(r) = ch.run {
        runs.insert(r.run_id.clone(), r);
    }
    if let Some(o) = ch.order {
        orders.insert(o.order_id.clone(), o);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(
        seq: i64,
        t: EventType,
        run: Option<&str>,
        order: Option<&str>,
        payload: Value,
    ) -> Record {
        Record {
            seq,
            event_id: format!("e{seq}"),
            ts: format!("2026-01-14T16:21:{:02}.000Z", seq % 60),
            event_type: t,
            garrison_id: "local".into(),
            theater_id: Some("demo".into()),
            run_id: run.map(Into::into),
            order_id: order.map(Into::into),
            unit_id: None,
            payload,
            stream: "s".into(),
            stream_version: seq,
        }
    }

    #[test]
    fn order_lifecycle_is_counted_from_orders() {
        let c = apply(
            None,
            None,
            &rec(
                1,
                EventType::RunCreated,
                Some("r"),
                None,
                json!({"objective":"x"}),
            ),
        )
        .unwrap();
        let run = c.run.unwrap();
        assert_eq!(run.objective.as_deref(), Some("x"));
        let c = apply(
            Some(run.clone()),
            None,
            &rec(
                2,
                EventType::OrderCreated,
                Some("r"),
                Some("o"),
                json!({"depends_on":["p"]}),
            ),
        )
        .unwrap();
        assert!(c.run.is_none(), "order events leave the run snapshot alone");
        let order = c.order.unwrap();
        assert_eq!(order.depends_on, vec!["p".to_string()]);
        let c = apply(
            None,
            Some(order),
            &rec(3, EventType::OrderClaimed, Some("r"), Some("o"), json!({})),
        )
        .unwrap();
        let order = c.order.unwrap();
        assert_eq!(order.status, OrderStatus::Claimed);
        let counts = order_counts(&[order]);
        assert_eq!((counts["QUEUED"], counts["CLAIMED"]), (0, 1));
    }

    #[test]
    fn illegal_order_transition_is_rejected() {
        let c = apply(
            None,
            None,
            &rec(1, EventType::OrderCreated, None, Some("o"), json!({})),
        )
        .unwrap();
        let err = apply(
            None,
            c.order,
            &rec(2, EventType::OrderCompleted, None, Some("o"), json!({})),
        )
        .unwrap_err();
        assert_eq!(err.code(), "INVALID_TRANSITION");
    }

    #[test]
    fn status_event_for_unknown_order_is_rejected() {
        let err = apply(
            None,
            None,
            &rec(1, EventType::OrderStarted, None, Some("o"), json!({})),
        )
        .unwrap_err();
        assert_eq!(err.code(), "INVALID_TRANSITION");
    }

    #[test]
    fn terminal_run_only_reasserts() {
        let c = apply(
            None,
            None,
            &rec(1, EventType::RunCreated, Some("r"), None, json!({})),
        )
        .unwrap();
        let c = apply(
            c.run,
            None,
            &rec(
                2,
                EventType::RunCompleted,
                Some("r"),
                None,
                json!({"summary":"done"}),
            ),
        )
        .unwrap();
        let run = c.run.unwrap();
        assert_eq!(run.summary.as_deref(), Some("done"));
        assert!(
            apply(
                Some(run.clone()),
                None,
                &rec(3, EventType::RunCompleted, Some("r"), None, json!({}))
            )
            .is_ok()
        );
        assert!(
            apply(
                Some(run),
                None,
                &rec(3, EventType::RunFailed, Some("r"), None, json!({}))
            )
            .is_err()
        );
    }
}
