//! The observer: one patrol of a theater's orders. It flags orders RUNNING
//! too long or without recent commits, completed orders missing their AAR or
//! artifacts, and dirty worktrees (RECOVERY_REQUIRED / ESCALATION_RAISED),
//! and marks completed orders whose AAR and artifacts check out
//! INTEGRATION_READY. Findings carry deterministic event ids, so a condition
//! is reported once per order attempt however often the patrol runs.

use std::path::{Path, PathBuf};

use garrison_contracts::ironclaw::{Aar, EventType, OrderStatus};
use garrison_ledger::OrderSnapshot;
use serde::Serialize;
use serde_json::{Value, json};

use super::Orchestrator;
use super::co::ev_for_order;
use super::error::Result;

/// What one observer patrol found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ObserverReport {
    pub theater_id: String,
    pub orders_checked: usize,
    pub findings: Vec<Value>,
    /// Completed orders now marked INTEGRATION_READY.
    pub ready: Vec<String>,
}

impl Orchestrator {
    /// `POST /theaters/{id}/patrol`.
    pub async fn patrol_theater(&self, theater_id: &str) -> Result<ObserverReport> {
        let mut report = ObserverReport {
            theater_id: theater_id.to_string(),
            ..ObserverReport::default()
        };
        let now = jiff::Timestamp::now();
        let stuck = self.settings.stuck_after.as_secs() as i64;
        for run_id in self.open_runs() {
            for o in self.ledger.run_orders(&run_id).await? {
                if o.theater_id.as_deref() != Some(theater_id) {
                    continue;
                }
                report.orders_checked += 1;
                let wt = o.worktree_path.as_ref().map(PathBuf::from);
                let age = o
                    .updated_at
                    .parse::<jiff::Timestamp>()
                    .map(|t| now.duration_since(t).as_secs())
                    .unwrap_or(0);
                match o.status {
                    OrderStatus::Running => {
                        if age > stuck {
                            self.finding(
                                &mut report,
                                &o,
                                EventType::RecoveryRequired,
                                "stuck",
                                format!("RUNNING for {age} s (limit {stuck} s)"),
                                json!({"running_secs": age}),
                            )
                            .await?;
                        }
                        if let Some(wt) = &wt
                            && let Ok(last) = last_commit(wt).await
                            && now.as_second() - last > stuck
                        {
                            self.finding(
                                &mut report,
                                &o,
                                EventType::RecoveryRequired,
                                "no-commits",
                                format!(
                                    "no commit in the worktree for {} s",
                                    now.as_second() - last
                                ),
                                json!({"last_commit_unix": last}),
                            )
                            .await?;
                        }
                    }
                    OrderStatus::Completed if o.integration.is_none() => {
                        match wt.as_deref().map(check_completed) {
                            Some(Ok(())) => {
                                self.mark_ready(&o).await?;
                                report.ready.push(o.order_id.clone());
                            }
                            Some(Err(why)) => {
                                self.finding(
                                    &mut report,
                                    &o,
                                    EventType::EscalationRaised,
                                    "missing-aar",
                                    why.clone(),
                                    json!({"severity": "HIGH", "route": "operator"}),
                                )
                                .await?;
                                self.finding(
                                    &mut report,
                                    &o,
                                    EventType::RecoveryRequired,
                                    "missing-aar",
                                    why,
                                    json!({}),
                                )
                                .await?;
                            }
                            None => {}
                        }
                    }
                    _ => {}
                }
                if matches!(o.status, OrderStatus::Completed)
                    && o.integration != Some(EventType::Integrated)
                    && let Some(wt) = &wt
                    && let Ok(dirty) = dirty(wt).await
                    && !dirty.is_empty()
                {
                    self.finding(
                        &mut report,
                        &o,
                        EventType::RecoveryRequired,
                        "dirty",
                        format!("uncommitted changes in the worktree: {}", dirty.join(", ")),
                        json!({"files": dirty}),
                    )
                    .await?;
                }
            }
        }
        self.ledger
            .append(
                self.event(EventType::PatrolTick)
                    .theater(theater_id)
                    .payload(json!({
                        "service": "observer",
                        "orders_checked": report.orders_checked,
                        "findings": report.findings.len(),
                        "ready": report.ready.len(),
                    })),
            )
            .await?;
        Ok(report)
    }

    async fn finding(
        &self,
        report: &mut ObserverReport,
        o: &OrderSnapshot,
        t: EventType,
        kind: &str,
        reason: String,
        extra: Value,
    ) -> Result<()> {
        let mut payload = json!({"reason": reason, "check": kind, "attempt": o.attempt});
        if let (Value::Object(p), Value::Object(x)) = (&mut payload, extra) {
            p.extend(x);
        }
        let ev = ev_for_order(self.event(t), o)
            .event_id(format!(
                "observer-{kind}-{}-{}-{}",
                t.as_str().to_lowercase(),
                o.order_id,
                o.attempt
            ))
            .payload(payload.clone());
        let appended = self.ledger.append(ev).await?;
        if !appended.duplicate {
            report
                .findings
                .push(json!({"order_id": o.order_id, "type": t, "payload": payload}));
        }
        Ok(())
    }
}

/// AAR present and valid, and every artifact it lists exists.
fn check_completed(wt: &Path) -> std::result::Result<(), String> {
    let bytes = std::fs::read(wt.join("aar.json")).map_err(|e| format!("aar.json missing: {e}"))?;
    let aar: Aar = serde_json::from_slice(&bytes).map_err(|e| format!("aar.json invalid: {e}"))?;
    aar.validate()
        .map_err(|e| format!("aar.json invalid: {e}"))?;
    let missing: Vec<&str> = aar
        .artifacts
        .iter()
        .map(|a| a.path.as_str())
        .filter(|p| !wt.join(p).exists())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("artifacts missing: {}", missing.join(", ")))
    }
}

async fn last_commit(wt: &Path) -> std::result::Result<i64, String> {
    let wt = wt.to_path_buf();
    tokio::task::spawn_blocking(move || garrison_vault::last_commit_unix(&wt))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

async fn dirty(wt: &Path) -> std::result::Result<Vec<String>, String> {
    let wt = wt.to_path_buf();
    if !wt.exists() {
        return Ok(Vec::new());
    }
    tokio::task::spawn_blocking(move || garrison_vault::dirty_files(&wt))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}
