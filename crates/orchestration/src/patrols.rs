//! The duty officer (`POST /patrol`) and the sentinel (`POST /audit`).
//!
//! The duty officer turns expired leases (of every node: they live in the
//! ledger's lease store) into reissues within the retry
//! cap (ORDER_BLOCKED with TASK_TIMEOUT, then ORDER_REISSUED — the task state
//! machine has no in_progress → todo edge) or, once the cap is spent, into
//! ORDER_FAILED plus ESCALATION_RAISED, and records a PATROL_TICK. The
//! sentinel checks that those ticks keep coming and that the backlog is not
//! growing without claims.

use std::sync::PoisonError;

use garrison_contracts::ironclaw::{EventType, Severity};
use garrison_ledger::{LeaseOp, LedgerError, Query};
use serde::Serialize;
use serde_json::{Value, json};

use super::Orchestrator;
use super::co::ev_for_order;
use super::error::Result;
use super::queue::{Ready, Synced};

/// What one duty-officer patrol did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PatrolReport {
    pub expired: Vec<String>,
    pub reissued: Vec<String>,
    pub failed: Vec<String>,
    pub queue_depth: usize,
    pub active: usize,
}

/// What one sentinel audit found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditReport {
    /// Seconds since the duty officer's newest PATROL_TICK (None: never ticked).
    pub last_tick_age_secs: Option<i64>,
    pub queue_depth: usize,
    /// The queue grew at each of the last audits while no order was claimed.
    pub backlog_stalled: bool,
    pub escalations: Vec<Value>,
}

/// Audits in a row with a growing queue and no claims before the sentinel alarms.
const STALL_AUDITS: usize = 3;

impl Orchestrator {
    /// `POST /patrol`: one duty-officer tick.
    pub async fn duty_patrol(&self) -> Result<PatrolReport> {
        let mut report = PatrolReport::default();
        // Every node's leases: whichever node runs the patrols reaps them.
        for lapsed in self.ledger.leases(true).await? {
            garrison_metrics::METRICS.lease_expiries.add(1);
            report.expired.push(lapsed.order_id.clone());
            let Some(order) = self.ledger.order_snapshot(&lapsed.order_id).await? else {
                self.ledger
                    .drop_lease(&lapsed.order_id, &lapsed.token)
                    .await?;
                continue;
            };
            let current = order.attempt == lapsed.attempt
                && order.unit_id.as_deref() == Some(lapsed.unit_id.as_str());
            if order.status.task_status() != garrison_contracts::task::TaskStatus::InProgress
                || !current
            {
                // The order moved on without this lease (its report landed
                // just now, or the lease outlived its attempt): nothing to recover.
                self.ledger
                    .drop_lease(&lapsed.order_id, &lapsed.token)
                    .await?;
                if order.status == garrison_contracts::ironclaw::OrderStatus::Queued
                    && matches!(
                        order.last_event_type,
                        EventType::OrderEnqueued | EventType::OrderReissued
                    )
                {
                    let stream = garrison_ledger::stream_for(
                        &order.garrison_id,
                        order.run_id.as_deref(),
                        Some(&order.order_id),
                    );
                    let version = self.ledger.stream_version(&stream).await?;
                    self.queue.sync(
                        &order.order_id,
                        version,
                        Synced::Ready(Ready::of(&order, order.attempt, version)),
                    );
                }
                continue;
            }
            // The stream's current version, not the lease's: an event that
            // is no status change (an observer finding) may have moved it.
            // The reap below still holds only if this token's lease lapsed,
            // and the compare-and-append if nothing moved since this read.
            let stream = garrison_ledger::stream_for(
                &order.garrison_id,
                order.run_id.as_deref(),
                Some(&order.order_id),
            );
            let version = self.ledger.stream_version(&stream).await?;
            let max = self.max_retries(&order.order_id).await?;
            let reason = format!(
                "lease of unit `{}` expired (attempt {})",
                lapsed.unit_id, lapsed.attempt
            );
            let blocked = ev_for_order(self.event(EventType::OrderBlocked), &order)
                .unit(&lapsed.unit_id)
                .payload(
                    json!({"code": "TASK_TIMEOUT", "reason": reason, "attempt": lapsed.attempt}),
                )
                .expect_version(version);
            let retry = lapsed.attempt <= max;
            let mut batch = vec![blocked];
            if retry {
                batch.push(
                    ev_for_order(self.event(EventType::RecoveryStarted), &order)
                        .payload(json!({"action": "reissue", "attempt": lapsed.attempt + 1})),
                );
                batch.push(
                    ev_for_order(self.event(EventType::OrderReissued), &order)
                        .payload(json!({"attempt": lapsed.attempt + 1, "code": "TASK_TIMEOUT", "reason": reason})),
                );
                batch.push(
                    ev_for_order(self.event(EventType::RecoveryCompleted), &order)
                        .payload(json!({"action": "reissue", "attempt": lapsed.attempt + 1})),
                );
            } else {
                batch.push(
                    ev_for_order(self.event(EventType::OrderFailed), &order)
                        .payload(json!({"code": "TASK_TIMEOUT", "reason": format!("TASK_TIMEOUT: {reason}; retries exhausted ({max})"), "attempt": lapsed.attempt})),
                );
                batch.push(
                    ev_for_order(self.event(EventType::EscalationRaised), &order).payload(json!({
                        "severity": Severity::High,
                        "route": "operator",
                        "reason": format!("order failed after {} attempts: {reason}", lapsed.attempt),
                    })),
                );
            }
            let reap = LeaseOp::Reap {
                order_id: lapsed.order_id.clone(),
                token: lapsed.token.clone(),
            };
            let appended = match self.ledger.append_leased(batch, reap).await {
                Ok(a) => a,
                // Another patrol got there first, or a heartbeat revived it.
                Err(
                    LedgerError::ConcurrencyConflict { .. }
                    | LedgerError::InvalidTransition(_)
                    | LedgerError::LeaseConflict(_),
                ) => {
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let version = appended
                .iter()
                .filter(|a| a.record.order_id.as_deref() == Some(order.order_id.as_str()))
                .map(|a| a.record.stream_version)
                .max()
                .unwrap_or(0);
            if retry {
                report.reissued.push(order.order_id.clone());
                self.queue.sync(
                    &order.order_id,
                    version,
                    Synced::Ready(Ready::of(&order, lapsed.attempt + 1, version)),
                );
            } else {
                report.failed.push(order.order_id.clone());
                self.queue.sync(&order.order_id, version, Synced::Gone);
                if let Some(run_id) = &order.run_id {
                    self.advance(run_id).await?;
                }
            }
        }
        // Runs whose advance a report deferred (see `advance_can_wait`).
        for run_id in self.take_deferred() {
            if let Err(e) = self.advance(&run_id).await {
                tracing::warn!(run_id = %run_id, error = %e, "advancing a deferred run; retried next patrol");
                self.defer(&run_id);
            }
        }
        report.queue_depth = self.queue.depth();
        report.active = self.queue.active_count();
        self.ledger
            .append(self.event(EventType::PatrolTick).payload(json!({
                "service": "duty_officer",
                "expired": report.expired.len(),
                "reissued": report.reissued.len(),
                "failed": report.failed.len(),
                "queue_depth": report.queue_depth,
                "active": report.active,
            })))
            .await?;
        Ok(report)
    }

    /// `POST /audit`: one sentinel check.
    pub async fn audit(&self) -> Result<AuditReport> {
        let ticks = self
            .ledger
            .read(&Query {
                event_type: Some(EventType::PatrolTick),
                newest_first: true,
                limit: Some(50),
                ..Query::default()
            })
            .await?;
        let now = jiff::Timestamp::now();
        let last_tick_age_secs = ticks
            .iter()
            .find(|t| t.payload.get("service").and_then(Value::as_str) == Some("duty_officer"))
            .and_then(|t| t.ts.parse::<jiff::Timestamp>().ok())
            .map(|ts| now.duration_since(ts).as_secs());
        let depth = self.queue.depth();
        let claims = self.queue.claims();
        let backlog_stalled = {
            let mut samples = self.backlog.lock().unwrap_or_else(PoisonError::into_inner);
            samples.push_back((depth, claims));
            while samples.len() > STALL_AUDITS + 1 {
                samples.pop_front();
            }
            samples.len() > STALL_AUDITS
                && samples
                    .iter()
                    .zip(samples.iter().skip(1))
                    .all(|(a, b)| b.0 > a.0 && b.1 == a.1)
        };
        let limit = self.settings.max_tick_age().as_secs() as i64;
        let mut escalations = Vec::new();
        let silent = last_tick_age_secs.is_none_or(|age| age > limit);
        if silent {
            escalations.push(json!({
                "severity": Severity::Critical,
                "route": "operator",
                "reason": match last_tick_age_secs {
                    Some(age) => format!("duty officer silent: last PATROL_TICK {age} s ago (limit {limit} s)"),
                    None => "duty officer has never ticked".to_string(),
                },
            }));
        }
        if backlog_stalled {
            escalations.push(json!({
                "severity": Severity::Critical,
                "route": "operator",
                "reason": format!("backlog grew for {STALL_AUDITS} audits to {depth} orders with no claims"),
            }));
        }
        for e in &escalations {
            self.ledger
                .append(
                    self.event(EventType::EscalationRaised)
                        .payload(json!({"service": "sentinel", "severity": e["severity"], "route": e["route"], "reason": e["reason"]})),
                )
                .await?;
        }
        Ok(AuditReport {
            last_tick_age_secs,
            queue_depth: depth,
            backlog_stalled,
            escalations,
        })
    }
}
