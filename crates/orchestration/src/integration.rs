//! The integration service: validate a completed order's AAR and artifacts,
//! run the configured gates in its worktree (always: a unit's own report
//! never replaces them), then promote its work into the theater mainline.
//! Nothing is half-merged: a gate failure or a conflict leaves the mainline
//! exactly as it was.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use garrison_contracts::ironclaw::{Aar, AarStatus, EventType, OrderStatus};
use garrison_contracts::locks::is_within;
use garrison_ledger::OrderSnapshot;
use garrison_vault::{Promotion, Theater};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use super::Orchestrator;
use super::book::Pending;
use super::co::ev_for_order;
use super::error::{OrchestrationError, Result};
use super::settings::GateCommand;

/// How an integration ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum IntegrationOutcome {
    Integrated {
        commit_sha: String,
        files: Vec<String>,
    },
    Failed {
        code: String,
        reason: String,
        details: Value,
    },
}

/// Output kept from a gate for the ledger.
const GATE_TAIL: usize = 2000;

impl Orchestrator {
    /// Records INTEGRATION_READY for a completed order whose AAR and
    /// artifacts check out (idempotent per order and attempt).
    pub(crate) async fn mark_ready(&self, order: &OrderSnapshot) -> Result<()> {
        let ev = ev_for_order(self.event(EventType::IntegrationReady), order)
            .event_id(format!(
                "integration-ready-{}-{}",
                order.order_id, order.attempt
            ))
            .payload(json!({"attempt": order.attempt, "worktree_path": order.worktree_path}));
        self.ledger.append(ev).await?;
        Ok(())
    }

    /// The automatic way into integration (after a report, or a pending one
    /// a patrol takes): `None` when a ready order's integration already
    /// started elsewhere (only an operator's `POST /integrate` retries a
    /// failed one); an interrupted one is integrated again.
    pub(crate) async fn integrate_pending(
        &self,
        order_id: &str,
        how: Pending,
    ) -> Result<Option<IntegrationOutcome>> {
        let _one = self.integrate_lock.lock().await;
        let order = self.order(order_id).await?;
        if how == Pending::Ready
            && !matches!(order.integration, None | Some(EventType::IntegrationReady))
        {
            return Ok(None);
        }
        self.integrate_locked(order, None).await.map(Some)
    }

    /// `POST /integrate`: gates then promotion for one completed order.
    /// Already integrated → the earlier result.
    pub async fn integrate(
        &self,
        order_id: &str,
        gate_profile: Option<&str>,
    ) -> Result<IntegrationOutcome> {
        let _one = self.integrate_lock.lock().await;
        let order = self.order(order_id).await?;
        self.integrate_locked(order, gate_profile).await
    }

    pub(crate) async fn order(&self, order_id: &str) -> Result<OrderSnapshot> {
        self.ledger
            .order_snapshot(order_id)
            .await?
            .ok_or_else(|| OrchestrationError::NotFound(format!("no order `{order_id}`")))
    }

    async fn integrate_locked(
        &self,
        order: OrderSnapshot,
        gate_profile: Option<&str>,
    ) -> Result<IntegrationOutcome> {
        let order_id = order.order_id.as_str();
        if order.integration == Some(EventType::Integrated) {
            return Ok(IntegrationOutcome::Integrated {
                commit_sha: order.commit_sha.clone().unwrap_or_default(),
                files: Vec::new(),
            });
        }
        if order.status != OrderStatus::Completed {
            return Err(OrchestrationError::Conflict(format!(
                "order `{order_id}` is {}; only COMPLETED orders integrate",
                order.status.as_str()
            )));
        }
        let theater_id = order.theater_id.clone().unwrap_or_default();
        let Some(path) = order.worktree_path.clone() else {
            return Err(OrchestrationError::Conflict(format!(
                "order `{order_id}` has no worktree"
            )));
        };
        let profile = gate_profile.unwrap_or("default").to_string();
        let gates = self.settings.gates.get(&profile).cloned().ok_or_else(|| {
            OrchestrationError::invalid(
                "SCHEMA_INVALID",
                format!("gate profile `{profile}` is not configured"),
            )
        })?;
        self.ledger
            .append(
                ev_for_order(self.event(EventType::IntegrationStarted), &order)
                    .payload(json!({"gate_profile": profile, "attempt": order.attempt})),
            )
            .await?;
        let theater = self.theaters.open(&theater_id, None).await?;
        let outcome = match self
            .check_and_gate(&order, Path::new(&path), &gates, &theater.mainline)
            .await
        {
            Err(failed) => failed,
            Ok(gate_results) => {
                self.ledger
                    .append(
                        ev_for_order(self.event(EventType::IntegrationPassed), &order)
                            .payload(json!({"gate_profile": profile, "gates": gate_results})),
                    )
                    .await?;
                self.promote(&theater, &order).await?
            }
        };
        let ev = match &outcome {
            IntegrationOutcome::Integrated { commit_sha, files } => {
                ev_for_order(self.event(EventType::Integrated), &order).payload(json!({
                    "commit_sha": commit_sha,
                    "mainline": theater.mainline,
                    "files": files,
                }))
            }
            IntegrationOutcome::Failed {
                code,
                reason,
                details,
            } => ev_for_order(self.event(EventType::IntegrationFailed), &order).payload(json!({
                "code": code,
                "reason": reason,
                "details": details,
            })),
        };
        self.ledger.append(ev).await?;
        if matches!(outcome, IntegrationOutcome::Integrated { .. }) {
            self.retain(&theater, &order.order_id).await;
        }
        Ok(outcome)
    }

    /// AAR schema, artifacts on disk, lock scope, then every gate.
    async fn check_and_gate(
        &self,
        order: &OrderSnapshot,
        wt: &Path,
        gates: &[GateCommand],
        mainline: &str,
    ) -> std::result::Result<Vec<Value>, IntegrationOutcome> {
        let fail = |code: &str, reason: String, details: Value| IntegrationOutcome::Failed {
            code: code.to_string(),
            reason,
            details,
        };
        let aar: Aar = std::fs::read(wt.join("aar.json"))
            .map_err(|e| {
                fail(
                    "SCHEMA_INVALID",
                    format!("aar.json unreadable: {e}"),
                    json!({}),
                )
            })
            .and_then(|b| {
                serde_json::from_slice(&b)
                    .map_err(|e| fail("SCHEMA_INVALID", format!("aar.json: {e}"), json!({})))
            })?;
        aar.validate()
            .map_err(|e| fail("SCHEMA_INVALID", e.to_string(), json!({})))?;
        if aar.order_id != order.order_id || aar.status != AarStatus::Completed {
            return Err(fail(
                "SCHEMA_INVALID",
                format!(
                    "aar.json reports order `{}` as {:?}",
                    aar.order_id, aar.status
                ),
                json!({}),
            ));
        }
        let missing: Vec<String> = aar
            .artifacts
            .iter()
            .filter(|a| !inside_and_exists(wt, &a.path))
            .map(|a| a.path.clone())
            .collect();
        if !missing.is_empty() {
            return Err(fail(
                "ACCEPTANCE_FAILED",
                format!(
                    "artifacts missing from the worktree: {}",
                    missing.join(", ")
                ),
                json!({"missing": missing}),
            ));
        }
        if !order.lock_scope.is_empty() {
            // A worktree made outside the order pipeline (POST /worktrees)
            // has no recorded base: compare with the mainline instead.
            let base = match self.worktree_base(&order.order_id).await {
                Ok(b) if !b.is_empty() => b,
                _ => mainline.to_string(),
            };
            let wt_owned = wt.to_path_buf();
            let changed = tokio::task::spawn_blocking(move || {
                garrison_vault::changed_files(&wt_owned, &base)
            })
            .await
            .map_err(|e| fail("INTERNAL", e.to_string(), json!({})))?
            .map_err(|e| fail(e.code(), e.to_string(), json!({})))?;
            let outside: Vec<String> = changed
                .into_iter()
                .filter(|p| !is_record(p))
                .filter(|p| !order.lock_scope.iter().any(|l| is_within(p, l)))
                .collect();
            if !outside.is_empty() {
                return Err(fail(
                    "SCOPE_VIOLATION",
                    format!(
                        "changes outside the order's lock scope ({}): {}",
                        order.lock_scope.join(", "),
                        outside.join(", ")
                    ),
                    json!({"paths": outside, "lock_scope": order.lock_scope}),
                ));
            }
        }
        let mut results = Vec::new();
        for gate in gates {
            let r = run_gate(wt, gate).await;
            let passed = r.get("passed").and_then(Value::as_bool).unwrap_or(false);
            results.push(r.clone());
            if !passed {
                return Err(fail(
                    "ACCEPTANCE_FAILED",
                    format!("gate `{}` failed", gate.name),
                    json!({"gate": r}),
                ));
            }
        }
        Ok(results)
    }

    async fn promote(
        &self,
        theater: &Theater,
        order: &OrderSnapshot,
    ) -> Result<IntegrationOutcome> {
        let theater = theater.clone();
        let order_id = order.order_id.clone();
        let message = format!(
            "Integrate order {}: {}",
            order.order_id,
            order.objective.as_deref().unwrap_or("")
        );
        let promoted = tokio::task::spawn_blocking(move || theater.promote(&order_id, &message))
            .await
            .map_err(|e| OrchestrationError::Internal(format!("promotion task: {e}")))?;
        Ok(match promoted {
            Ok(Promotion::Merged { commit_sha, files }) => {
                IntegrationOutcome::Integrated { commit_sha, files }
            }
            Ok(Promotion::Conflict { paths }) => IntegrationOutcome::Failed {
                code: "MERGE_CONFLICT".into(),
                reason: format!("merge conflict in {}", paths.join(", ")),
                details: json!({"paths": paths}),
            },
            Err(garrison_vault::VaultError::MainlineBusy(m)) => IntegrationOutcome::Failed {
                code: "MAINLINE_BUSY".into(),
                reason: m,
                details: json!({}),
            },
            Err(e) => return Err(e.into()),
        })
    }

    /// `base_sha` the order's current worktree started from.
    async fn worktree_base(&self, order_id: &str) -> Result<String> {
        Ok(self
            .order_event_payload(order_id, EventType::WorktreeReady, true)
            .await?
            .and_then(|p| {
                p.get("base_sha")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default())
    }

    /// Retention: drop the oldest integrated worktrees beyond the configured
    /// count or age (failed orders never enter this list).
    async fn retain(&self, theater: &Theater, order_id: &str) {
        let now = jiff::Timestamp::now();
        let doomed: Vec<String> = {
            let mut book = self.integrations();
            let list = book
                .integrated
                .entry(theater.theater_id.clone())
                .or_default();
            list.push_back((order_id.to_string(), now));
            let keep = self.settings.retention.keep_integrated;
            let max_age = self.settings.retention.max_age_secs;
            let mut doomed = Vec::new();
            while let Some((id, at)) = list.front().cloned() {
                let too_many = list.len() > keep;
                let too_old = max_age.is_some_and(|m| now.duration_since(at).as_secs() > m as i64);
                if !(too_many || too_old) {
                    break;
                }
                list.pop_front();
                doomed.push(id);
            }
            doomed
        };
        for id in doomed {
            let t = theater.clone();
            let id2 = id.clone();
            let removed = tokio::task::spawn_blocking(move || t.remove_worktree(&id2, false)).await;
            match removed {
                Ok(Ok(())) => {
                    if let Ok(Some(o)) = self.ledger.order_snapshot(&id).await {
                        let _ = self
                            .ledger
                            .append(
                                ev_for_order(self.event(EventType::WorktreeRemoved), &o)
                                    .payload(json!({"reason": "retention"})),
                            )
                            .await;
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(order_id = %id, error = %e, "retention kept a worktree")
                }
                Err(e) => tracing::warn!(order_id = %id, error = %e, "retention task failed"),
            }
        }
    }
}

fn inside_and_exists(wt: &Path, rel: &str) -> bool {
    let p = Path::new(rel);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return false;
    }
    wt.join(p).exists()
}

fn is_record(path: &str) -> bool {
    garrison_vault::RECORD_FILES
        .iter()
        .any(|r| path == *r || path.starts_with(&format!("{r}/")))
}

/// Runs one gate in the worktree; `{name, passed, exit_code, output}`.
async fn run_gate(wt: &Path, gate: &GateCommand) -> Value {
    let Some((program, args)) = gate.command.split_first() else {
        return json!({"name": gate.name, "passed": false, "output": "empty gate command"});
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(wt)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return json!({"name": gate.name, "passed": false, "output": format!("cannot start `{program}`: {e}")});
        }
    };
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    // Both pipes drain at once so a chatty stderr cannot stall the gate.
    let collect = async {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        tokio::join!(
            async {
                if let Some(o) = out.as_mut() {
                    let _ = o.read_to_end(&mut a).await;
                }
            },
            async {
                if let Some(e) = err.as_mut() {
                    let _ = e.read_to_end(&mut b).await;
                }
            }
        );
        a.extend_from_slice(&b);
        a
    };
    let limit = Duration::from_secs(gate.timeout_secs.max(1));
    let run = async {
        let (buf, status) = tokio::join!(collect, child.wait());
        (buf, status)
    };
    match tokio::time::timeout(limit, run).await {
        Ok((buf, Ok(status))) => json!({
            "name": gate.name,
            "passed": status.success(),
            "exit_code": status.code(),
            "output": tail(&buf),
        }),
        Ok((buf, Err(e))) => {
            json!({"name": gate.name, "passed": false, "output": format!("{e}: {}", tail(&buf))})
        }
        Err(_) => {
            json!({"name": gate.name, "passed": false, "output": format!("timed out after {} s", limit.as_secs())})
        }
    }
}

fn tail(buf: &[u8]) -> String {
    let s = String::from_utf8_lossy(buf);
    let start = s.len().saturating_sub(GATE_TAIL);
    let mut i = start;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    s[i..].to_string()
}
