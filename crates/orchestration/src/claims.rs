//! The worker service, server side: claims (compare-and-append), the job a
//! worker receives, heartbeats, and the report that ends an attempt.

use std::time::Duration;

use garrison_agent::{UnitError, UnitOutcome, UnitProfile};
use garrison_contracts::ironclaw::api::{JobMessage, JobType};
use garrison_contracts::ironclaw::artifacts::ArtifactRef;
use garrison_contracts::ironclaw::{Aar, Constraints, EventType, OrderFile, Profile, ToolPolicy};
use garrison_ledger::{Grant, LeaseOp, LedgerError, NewEvent, OrderSnapshot, Query, Record};
use garrison_vault::{PrepareFiles, Theater, Worktree};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::book::Pending;
use super::co::{ev_for_ids, ev_for_order, now};
use super::error::{OrchestrationError, Result};
use super::queue::{Active, Ready, Synced};
use super::{Orchestrator, prompt};

/// What a worker receives for one attempt at an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The contract's queue message (ironclaw §4).
    pub message: JobMessage,
    /// Presented with every heartbeat and the report.
    pub lease_token: String,
    pub lease_ms: u64,
    /// How the unit runs (the server's profile, so workers need no config).
    pub unit: UnitProfile,
    /// `order.json` as written into the worktree.
    pub order: OrderFile,
    /// The operator-workflow assignment packet (also `assignment.json`).
    pub assignment: Value,
    /// The prompt the unit gets.
    pub prompt: String,
    pub budget_secs: u64,
    /// Mainline commit the worktree started from (None without a theater).
    pub base_sha: Option<String>,
}

/// What a worker reports when an attempt ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub order_id: String,
    pub lease_token: String,
    pub outcome: UnitOutcome,
    pub summary: String,
    #[serde(default)]
    pub artifacts: Vec<ArtifactRef>,
    /// `aar.json` as written (None without a worktree).
    #[serde(default)]
    pub aar: Option<Value>,
    /// The `subagent_result_v1` (also `result.json`).
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub commit_sha: Option<String>,
}

/// What a report did to the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reported {
    pub order_id: String,
    pub status: String,
    pub reissued: bool,
    /// For `after_report`, which needs no read to know them.
    #[serde(skip)]
    run_id: Option<String>,
    #[serde(skip)]
    has_theater: bool,
}

/// `base` filed under a queue entry's order, run and theater.
fn ev_for_ready(base: NewEvent, r: &Ready) -> NewEvent {
    ev_for_ids(
        base,
        &r.order_id,
        r.run_id.as_deref(),
        r.theater_id.as_deref(),
    )
}

/// Events read from the start of an order's history to find its ORDER_CREATED.
const SPEC_HEAD: i64 = 4;

/// Failure codes that mean the work itself is malformed: never retried.
/// Failures a retry cannot mend: the documents are wrong, or the unit cannot
/// start at all (a missing program, a broken profile, a host without the
/// sandbox the config requires).
const STRUCTURAL: &[&str] = &[
    "SCHEMA_INVALID",
    "SCOPE_VIOLATION",
    "NON_COMPLIANT",
    "SPAWN_FAILED",
    "PROFILE_INVALID",
    "SANDBOX_UNAVAILABLE",
];

impl Orchestrator {
    /// Claims the oldest eligible order (or exactly `only`) for `unit_id`:
    /// ORDER_CLAIMED by compare-and-append on the order's stream, then its
    /// worktree is created and prepared and ORDER_STARTED recorded. `None`
    /// when nothing is eligible.
    pub async fn claim(&self, unit_id: &str, only: Option<&str>) -> Result<Option<Job>> {
        let started = std::time::Instant::now();
        loop {
            let Some(active) = self.queue.take(unit_id, only) else {
                return Ok(None);
            };
            match self.start_attempt(&active).await {
                Ok(Some(job)) => {
                    garrison_metrics::METRICS.claims.add(1);
                    garrison_metrics::METRICS
                        .claim_seconds
                        .observe(started.elapsed());
                    return Ok(Some(job));
                }
                // Given back (a lease elsewhere holds a conflicting lock):
                // wait for the queue to change rather than retry at once.
                Ok(None) if self.queue.is_ready(&active.order_id) => return Ok(None),
                // Lost the race (another claimer, a cancel): try the next one.
                Ok(None) => continue,
                // Whatever state the order is in, the duty officer puts it
                // right once this lease lapses.
                Err(e) => {
                    self.lapse(&active.order_id, &active.lease_token()).await;
                    return Err(e);
                }
            }
        }
    }

    /// Lets a lease lapse now so the duty officer reissues its order.
    async fn lapse(&self, order_id: &str, token: &str) {
        if let Err(e) = self.ledger.lapse_lease(order_id, token).await {
            tracing::warn!(order_id, error = %e, "could not end a lease early; it lapses on its own");
        }
    }

    /// The lease a claim of `active` asks for.
    pub(crate) fn grant(&self, active: &Active) -> Grant {
        Grant {
            order_id: active.order_id.clone(),
            token: active.lease_token(),
            unit_id: active.unit_id.clone(),
            attempt: active.attempt,
            theater_id: active.theater_id.clone(),
            lock_scope: active.lock_scope.clone(),
            ttl: self.settings.lease,
        }
    }

    /// The holder's own append: the lease must still be `active`'s.
    fn hold(active: &Active) -> LeaseOp {
        LeaseOp::Hold {
            order_id: active.order_id.clone(),
            token: active.lease_token(),
        }
    }

    async fn start_attempt(&self, active: &Active) -> Result<Option<Job>> {
        let order_id = &active.order_id;
        let (order, spec) = match self.prepared.take(order_id) {
            Some(known) => known,
            None => {
                // Two independent reads: side by side, as a claim waits on both.
                let (order, spec) = tokio::join!(
                    self.ledger.order_snapshot(order_id),
                    self.order_spec(order_id)
                );
                let Some(order) = order? else {
                    self.queue.drop_taken(active);
                    return Ok(None);
                };
                (order, spec?)
            }
        };
        let has_theater = order.theater_id.as_deref().is_some_and(|t| !t.is_empty());
        let claimed = ev_for_order(self.event(EventType::OrderClaimed), &order)
            .unit(&active.unit_id)
            .payload(json!({"attempt": active.attempt, "lease_ms": self.settings.lease.as_millis() as u64}))
            .expect_version(active.version);
        let mut batch = vec![claimed];
        if !has_theater {
            batch.push(
                ev_for_order(self.event(EventType::OrderStarted), &order)
                    .unit(&active.unit_id)
                    .payload(json!({"attempt": active.attempt})),
            );
        }
        // The claim and its lease commit together (or neither does).
        let grant = LeaseOp::Grant(self.grant(active));
        let mut version = match self.ledger.append_leased(batch, grant).await {
            Ok(recs) => last_version(&recs.iter().map(|a| a.record.clone()).collect::<Vec<_>>()),
            Err(
                LedgerError::ConcurrencyConflict { .. }
                | LedgerError::InvalidTransition(_)
                | LedgerError::LeaseConflict(_),
            ) => {
                self.queue.drop_taken(active);
                return Ok(None);
            }
            // A lease of another node holds a conflicting lock: the order
            // waits until that lease ends (the follower brings the news).
            Err(LedgerError::LockConflict(_)) => {
                self.queue.give_back(active);
                return Ok(None);
            }
            Err(e) => {
                self.queue.give_back(active);
                return Err(e.into());
            }
        };
        self.queue.set_version(order_id, version);

        let profile_name = spec
            .pointer("/profile/name")
            .and_then(Value::as_str)
            .unwrap_or(&self.settings.default_profile)
            .to_string();
        let unit = match self.profile(&profile_name) {
            Ok(p) => p.clone(),
            Err(e) => {
                self.fail_attempt(active, "NON_COMPLIANT", &e.to_string())
                    .await?;
                return Ok(None);
            }
        };
        let order_file = order_file(&order, &spec, &profile_name);
        let budget = order_file
            .constraints
            .budget_seconds
            .unwrap_or(self.settings.order_budget.as_secs());
        let assignment = prompt::assignment(self, &order, &spec, budget);
        let prompt_text = prompt::unit_prompt(&order_file, &spec);

        let mut worktree: Option<Worktree> = None;
        if has_theater {
            let theater_id = order.theater_id.clone().unwrap_or_default();
            match self
                .prepare_worktree(&theater_id, active, &order_file, &assignment, &prompt_text)
                .await
            {
                Ok(wt) => worktree = Some(wt),
                Err(e) => {
                    self.fail_attempt(active, "WORKTREE_FAILED", &e.to_string())
                        .await?;
                    return Ok(None);
                }
            }
            let wt = worktree.as_ref().map(|w| {
                json!({
                    "worktree_path": w.path.display().to_string(),
                    "branch": w.branch,
                    "base_sha": w.base_sha,
                    "attempt": active.attempt,
                })
            });
            let wt = wt.unwrap_or_default();
            let batch = vec![
                ev_for_order(self.event(EventType::WorktreeCreated), &order)
                    .payload(wt.clone())
                    .expect_version(version),
                ev_for_order(self.event(EventType::WorktreeReady), &order).payload(wt),
                ev_for_order(self.event(EventType::OrderStarted), &order)
                    .unit(&active.unit_id)
                    .payload(json!({"attempt": active.attempt})),
            ];
            match self.ledger.append_leased(batch, Self::hold(active)).await {
                Ok(recs) => {
                    version =
                        last_version(&recs.iter().map(|a| a.record.clone()).collect::<Vec<_>>())
                }
                Err(
                    LedgerError::ConcurrencyConflict { .. }
                    | LedgerError::InvalidTransition(_)
                    | LedgerError::LeaseConflict(_),
                ) => {
                    // Claimed but moved by someone else meanwhile: let the
                    // lease lapse so the duty officer sorts it out.
                    self.lapse(order_id, &active.lease_token()).await;
                    return Ok(None);
                }
                Err(e) => {
                    self.lapse(order_id, &active.lease_token()).await;
                    return Err(e.into());
                }
            }
            self.queue.set_version(order_id, version);
        }

        let message = JobMessage {
            job_type: JobType::ExecuteOrder,
            order_id: order_id.clone(),
            run_id: order.run_id.clone().unwrap_or_default(),
            theater_id: order.theater_id.clone().unwrap_or_default(),
            unit_id: active.unit_id.clone(),
            worktree_path: worktree
                .as_ref()
                .map(|w| w.path.display().to_string())
                .unwrap_or_default(),
            attempt: active.attempt,
            profile: order_file.profile.clone(),
            constraints: Constraints {
                tool_policy: None,
                ..order_file.constraints.clone()
            },
            tool_policy: order_file
                .constraints
                .tool_policy
                .clone()
                .unwrap_or_default(),
        };
        Ok(Some(Job {
            message,
            lease_token: active.lease_token(),
            lease_ms: self.settings.lease.as_millis() as u64,
            unit,
            order: order_file,
            assignment,
            prompt: prompt_text,
            budget_secs: budget,
            base_sha: worktree.map(|w| w.base_sha),
        }))
    }

    async fn prepare_worktree(
        &self,
        theater_id: &str,
        active: &Active,
        order_file: &OrderFile,
        assignment: &Value,
        prompt_text: &str,
    ) -> Result<Worktree> {
        let theater: Theater = self.theaters.open(theater_id, None).await?;
        let order_id = active.order_id.clone();
        let attempt = active.attempt;
        let files = PrepareFiles {
            order_json: serde_json::to_value(order_file)
                .map_err(|e| OrchestrationError::Internal(e.to_string()))?,
            task_md: prompt::task_md(order_file, prompt_text),
            state_json: json!({
                "order_id": order_id,
                "run_id": order_file.run_id,
                "attempt": attempt,
                "status": "RUNNING",
                "unit_id": active.unit_id,
                "claimed_at": now(),
                "lease_ms": self.settings.lease.as_millis() as u64,
            }),
            assignment: Some(assignment.clone()),
        };
        let bootstrap = self.settings.bootstrap.clone();
        let wt = tokio::task::spawn_blocking(move || -> Result<Worktree> {
            let branch = Theater::branch_for(&order_id);
            // A reissued order starts over from the mainline: never from a
            // dead attempt's half-done work.
            let wt = if attempt > 1 {
                theater.recreate_worktree(&order_id, &branch)?
            } else {
                theater.create_worktree(&order_id, &branch)?
            };
            if !bootstrap.copy.is_empty() || bootstrap.setup.is_some() {
                theater.bootstrap(&wt, &bootstrap.copy, bootstrap.setup.as_deref())?;
            }
            garrison_vault::prepare(&wt.path, &files)?;
            Ok(wt)
        })
        .await
        .map_err(|e| OrchestrationError::Internal(format!("worktree task: {e}")))??;
        Ok(wt)
    }

    /// The ORDER_CREATED payload: everything the plan said about the order.
    pub async fn order_spec(&self, order_id: &str) -> Result<Value> {
        // ORDER_CREATED opens an order's history, so the first few events of
        // the order (found through the per-order index) hold it. Filtering by
        // type as well lets SQLite's planner pick the per-type index instead
        // and walk every ORDER_CREATED in the ledger.
        let head = self
            .ledger
            .read(&Query {
                order_id: Some(order_id.to_string()),
                limit: Some(SPEC_HEAD),
                ..Query::default()
            })
            .await?;
        if let Some(created) = head
            .iter()
            .find(|r| r.event_type == EventType::OrderCreated)
        {
            return Ok(created.payload.clone());
        }
        if head.len() < SPEC_HEAD as usize {
            return Ok(json!({}));
        }
        // Events about the order id before its creation (rare): look it up.
        Ok(self
            .order_event_payload(order_id, EventType::OrderCreated, false)
            .await?
            .unwrap_or_else(|| json!({})))
    }

    /// Extends a lease (granted by any node sharing the ledger); false when
    /// the token no longer holds it.
    pub async fn heartbeat(&self, order_id: &str, lease_token: &str) -> Result<bool> {
        Ok(self
            .ledger
            .renew_lease(order_id, lease_token, self.settings.lease)
            .await?)
    }

    /// Ends an attempt with the worker's report: the events batch of the
    /// worker contract (ARTIFACT_WRITTEN, AAR_WRITTEN, ORDER_COMPLETED or
    /// ORDER_FAILED) by compare-and-append, so a report from an attempt whose
    /// lease was lost (reissued) changes nothing. A completed order with a
    /// theater goes on to integration; the run advances either way.
    pub async fn report(&self, report: Report) -> Result<Reported> {
        // The lease may have been granted by another node: the store has it.
        let Some(lease) = self
            .ledger
            .lease(&report.order_id)
            .await?
            .filter(|l| l.token == report.lease_token)
        else {
            return Err(OrchestrationError::Conflict(format!(
                "lease `{}` no longer holds order `{}` (expired or reissued)",
                report.lease_token, report.order_id
            )));
        };
        // A claim made here left the order's ids in the queue; only a lease
        // granted elsewhere (another node, before a restart) needs the read.
        // Skipping it lets the report reach the writer beside the claim that
        // follows it, so both share one commit.
        let no_order = || OrchestrationError::NotFound(format!("no order `{}`", report.order_id));
        let order = match self
            .queue
            .active(&report.order_id)
            .filter(|a| a.lease_token() == report.lease_token)
        {
            Some(a) => a.ready(),
            None => match self.ledger.order_snapshot(&report.order_id).await? {
                Some(o) => Ready::of(&o, lease.attempt, lease.version),
                None => return Err(no_order()),
            },
        };
        let has_theater = order.theater_id.as_deref().is_some_and(|t| !t.is_empty());
        if let UnitOutcome::Killed { signal } = report.outcome {
            // The attempt is lost, not failed: let the duty officer reissue it.
            tracing::warn!(order_id = %order.order_id, signal, "unit killed; lease released for reissue");
            self.lapse(&order.order_id, &report.lease_token).await;
            let Some(snapshot) = self.ledger.order_snapshot(&order.order_id).await? else {
                return Err(no_order());
            };
            return Ok(Reported {
                status: snapshot.status.as_str().to_string(),
                reissued: false,
                has_theater,
                run_id: order.run_id,
                order_id: order.order_id,
            });
        }
        let mut verdict = match &report.outcome {
            UnitOutcome::Succeeded => None,
            UnitOutcome::Failed { reason } => Some(("UNIT_FAILED", reason.clone())),
            UnitOutcome::TimedOut => {
                Some(("TASK_TIMEOUT", "the unit ran out of its budget".to_string()))
            }
            UnitOutcome::Killed { .. } => None,
            UnitOutcome::NotStarted { code, reason } => Some((
                UnitError::CODES
                    .iter()
                    .find(|c| **c == code.as_str())
                    .copied()
                    .unwrap_or("UNIT_FAILED"),
                reason.clone(),
            )),
        };
        if verdict.is_none() && has_theater {
            verdict = check_documents(&report).err();
        }
        let mut batch = Vec::new();
        if !report.artifacts.is_empty() {
            batch.push(
                ev_for_ready(self.event(EventType::ArtifactWritten), &order)
                    .unit(&lease.unit_id)
                    .payload(
                        json!({"artifacts": report.artifacts, "commit_sha": report.commit_sha}),
                    ),
            );
        }
        if let Some(aar) = &report.aar {
            batch.push(
                ev_for_ready(self.event(EventType::AarWritten), &order)
                    .unit(&lease.unit_id)
                    .payload(json!({
                        "path": "aar.json",
                        "status": aar.get("status").cloned().unwrap_or(Value::Null),
                        "summary": aar.get("summary").cloned().unwrap_or(Value::Null),
                        "commit_sha": report.commit_sha,
                    })),
            );
        }
        // Only a retryable failure needs the order's retry cap.
        let max_retries = match &verdict {
            Some((code, _)) if !STRUCTURAL.contains(code) => {
                self.max_retries(&order.order_id).await?
            }
            _ => 0,
        };
        let (status, reissued) = match &verdict {
            None => {
                batch.push(
                    ev_for_ready(self.event(EventType::OrderCompleted), &order)
                        .unit(&lease.unit_id)
                        .payload(json!({
                            "attempt": lease.attempt,
                            "commit_sha": report.commit_sha,
                            "summary": report.summary,
                        })),
                );
                ("COMPLETED", false)
            }
            Some((code, reason)) if !STRUCTURAL.contains(code) && lease.attempt <= max_retries => {
                batch.push(
                    ev_for_ready(self.event(EventType::OrderBlocked), &order)
                        .unit(&lease.unit_id)
                        .payload(json!({"code": code, "reason": reason, "attempt": lease.attempt})),
                );
                batch.push(
                    ev_for_ready(self.event(EventType::OrderReissued), &order).payload(
                        json!({"attempt": lease.attempt + 1, "reason": reason, "code": code}),
                    ),
                );
                ("QUEUED", true)
            }
            Some((code, reason)) => {
                batch.push(
                    ev_for_ready(self.event(EventType::OrderFailed), &order)
                        .unit(&lease.unit_id)
                        .payload(json!({"code": code, "reason": format!("{code}: {reason}"), "attempt": lease.attempt})),
                );
                ("FAILED", false)
            }
        };
        if let Some(first) = batch.first_mut() {
            first.expected_version = Some(lease.version);
        }
        let end = LeaseOp::End {
            order_id: order.order_id.clone(),
            token: lease.token.clone(),
        };
        let appended = match self.ledger.append_leased(batch, end).await {
            Ok(a) => a,
            Err(
                LedgerError::ConcurrencyConflict { .. }
                | LedgerError::InvalidTransition(_)
                | LedgerError::LeaseConflict(_),
            ) => {
                return Err(OrchestrationError::Conflict(format!(
                    "order `{}` moved on while this attempt ran; its report is discarded",
                    order.order_id
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let version = last_version(
            &appended
                .iter()
                .map(|a| a.record.clone())
                .collect::<Vec<_>>(),
        );
        if reissued {
            self.queue.sync(
                &order.order_id,
                version,
                Synced::Ready(Ready {
                    attempt: lease.attempt + 1,
                    version,
                    ..order.clone()
                }),
            );
        } else {
            self.queue.sync(&order.order_id, version, Synced::Gone);
        }
        Ok(Reported {
            status: status.to_string(),
            reissued,
            has_theater,
            run_id: order.run_id,
            order_id: order.order_id,
        })
    }

    /// After a report: integrate a completed order, then advance its run.
    pub async fn after_report(&self, reported: &Reported) -> Result<()> {
        if reported.status == "COMPLETED" && reported.has_theater {
            let Some(order) = self.ledger.order_snapshot(&reported.order_id).await? else {
                return Ok(());
            };
            self.mark_ready(&order).await?;
            // Without the integration service here, a node that runs it
            // finds the INTEGRATION_READY mark in the ledger.
            if self.settings.roles.integration {
                self.integrate_pending(&order.order_id, Pending::Ready)
                    .await?;
            }
        }
        if let Some(run_id) = &reported.run_id {
            // Reading every order of the run per report adds up; another
            // report of the run still to come can advance it instead.
            if !reported.has_theater && self.advance_can_wait(run_id, &reported.order_id) {
                return Ok(());
            }
            self.advance(run_id).await?;
        }
        Ok(())
    }

    /// Retries allowed for an order: its constraints, else the default.
    pub(crate) async fn max_retries(&self, order_id: &str) -> Result<u32> {
        let spec = self.order_spec(order_id).await?;
        Ok(spec
            .pointer("/constraints/max_retries")
            .and_then(Value::as_u64)
            .map_or(self.settings.max_retries, |n| {
                n.min(u64::from(u32::MAX)) as u32
            }))
    }

    /// Fails an attempt that could not start (unknown profile, vault error).
    async fn fail_attempt(&self, active: &Active, code: &str, reason: &str) -> Result<()> {
        if let Some(order) = self.ledger.order_snapshot(&active.order_id).await? {
            let version = self
                .ledger
                .lease(&active.order_id)
                .await?
                .filter(|l| l.token == active.lease_token())
                .map_or(active.version, |l| l.version);
            let ev = ev_for_order(self.event(EventType::OrderFailed), &order)
                .unit(&active.unit_id)
                .payload(json!({"code": code, "reason": format!("{code}: {reason}"), "attempt": active.attempt}))
                .expect_version(version);
            let end = LeaseOp::End {
                order_id: active.order_id.clone(),
                token: active.lease_token(),
            };
            match self.ledger.append_leased(vec![ev], end).await {
                Ok(_)
                | Err(LedgerError::ConcurrencyConflict { .. } | LedgerError::LeaseConflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
            self.queue.release(&active.order_id);
            if let Some(run_id) = &order.run_id {
                self.advance(run_id).await?;
            }
        }
        Ok(())
    }
}

fn last_version(recs: &[Record]) -> i64 {
    recs.iter().map(|r| r.stream_version).max().unwrap_or(0)
}

/// The AAR and subagent result a completed attempt must carry, checked
/// against their contracts. A malformed one is a structural failure.
fn check_documents(report: &Report) -> std::result::Result<(), (&'static str, String)> {
    let Some(aar) = &report.aar else {
        return Err(("SCHEMA_INVALID", "the worker sent no aar.json".into()));
    };
    let parsed: Aar = serde_json::from_value(aar.clone())
        .map_err(|e| ("SCHEMA_INVALID", format!("aar.json: {e}")))?;
    parsed
        .validate()
        .map_err(|e| ("SCHEMA_INVALID", e.to_string()))?;
    if parsed.order_id != report.order_id {
        return Err((
            "SCHEMA_INVALID",
            format!("aar.json is for order `{}`", parsed.order_id),
        ));
    }
    if let Some(result) = &report.result {
        let v = garrison_contracts::validate(garrison_contracts::Kind::Result, result, false);
        if !v.allow {
            let code = match v.code.as_str() {
                "SCOPE_VIOLATION" => "SCOPE_VIOLATION",
                "NON_COMPLIANT" => "NON_COMPLIANT",
                _ => "SCHEMA_INVALID",
            };
            return Err((code, format!("result.json: {}", v.reason)));
        }
    }
    Ok(())
}

/// `order.json` for an order, from its snapshot and plan spec.
fn order_file(order: &OrderSnapshot, spec: &Value, profile_name: &str) -> OrderFile {
    let constraints: Constraints = spec
        .get("constraints")
        .cloned()
        .and_then(|c| serde_json::from_value(c).ok())
        .unwrap_or_default();
    let constraints = Constraints {
        tool_policy: Some(constraints.tool_policy.clone().unwrap_or(ToolPolicy {
            network: false,
            fs_allowlist: Some(vec!["./".into()]),
        })),
        ..constraints
    };
    OrderFile {
        order_id: order.order_id.clone(),
        run_id: order.run_id.clone().unwrap_or_default(),
        theater_id: order.theater_id.clone().unwrap_or_default(),
        order_type: spec
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("task")
            .to_string(),
        objective: order.objective.clone().unwrap_or_default(),
        inputs: spec
            .get("inputs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        constraints,
        profile: Profile {
            name: profile_name.to_string(),
            model: spec
                .pointer("/profile/model")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
    }
}

/// Budget of a job as a duration.
pub(crate) fn budget(job: &Job) -> Duration {
    Duration::from_secs(job.budget_secs.max(1))
}
