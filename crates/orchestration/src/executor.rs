//! The worker service, worker side: one attempt at an order, the six steps
//! of the worker contract. Runs the unit in the worktree (while
//! heartbeating the lease), writes `aar.json`, the `subagent_result_v1`
//! (`result.json`) and a worklog entry, commits, and returns the report
//! whose events batch the server appends. Used by the in-process pool and by
//! `garrison worker`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use garrison_agent::{
    AuditLog, Redactor, SandboxPolicy, UnitHooks, UnitJob, UnitOutcome, UnitReport, run_unit_with,
};
use garrison_contracts::ironclaw::{Aar, AarStatus};
use garrison_contracts::secrets::redact;
use garrison_contracts::workflow::{
    AcceptanceCheck, Change, CheckStatus, ResultStatus, SubagentResult,
};
use serde_json::{Value, json};

use super::claims::{Job, Report, budget};
use super::co::now;
use garrison_files::{SHARED, write_atomic, write_json};
use garrison_vault::PathChange;

/// What a unit runs with besides its job.
#[derive(Debug, Clone, Copy)]
pub struct UnitEnv<'a> {
    /// Where `llm` and `scripted` units are audited, and what the sandbox
    /// hides from every unit.
    pub data_dir: Option<&'a Path>,
    /// The values scrubbed from everything the unit leaves.
    pub secrets: &'a Redactor,
    /// The sandbox's settings (`[sandbox]`): limits and required protections.
    pub sandbox: &'a SandboxPolicy,
}

/// Runs one attempt. `heartbeat` is called every third of the lease while
/// the unit runs; it answers false once the lease is lost. With a
/// `data_dir`, the lifecycle events of `llm` and `scripted` units (every
/// tool call and result among them) are audited, redacted, to
/// `<data-dir>/agents/<profile>/audit/YYYY-MM-DD.jsonl`.
///
/// Every form of every value in `secrets` is scrubbed from what the unit's
/// model sees, its audit lines, its report (and so `aar.json`, the worklog
/// and the commit message) and the files it leaves under `outputs/`.
pub async fn execute<F, Fut>(job: &Job, env: UnitEnv<'_>, heartbeat: F) -> Report
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let UnitEnv {
        data_dir,
        secrets,
        sandbox,
    } = env;
    let has_worktree = !job.message.worktree_path.is_empty();
    // An order without a theater has no worktree: its unit works in a
    // scratch directory of its own, removed when the attempt ends.
    let scratch = if has_worktree {
        None
    } else {
        let safe: String = job
            .message
            .order_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .take(64)
            .collect();
        match tempfile::Builder::new()
            .prefix(&format!("garrison-unit-{safe}-"))
            .tempdir()
        {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(order_id = %job.message.order_id, error = %e, "no scratch directory for the unit");
                None
            }
        }
    };
    let workspace = match &scratch {
        Some(d) => d.path().to_path_buf(),
        None => PathBuf::from(&job.message.worktree_path),
    };
    let unit_job = UnitJob {
        workspace: workspace.clone(),
        prompt: job.prompt.clone(),
        budget: budget(job),
        env: vec![
            ("GARRISON_ORDER_ID".into(), job.message.order_id.clone()),
            ("GARRISON_RUN_ID".into(), job.message.run_id.clone()),
            ("GARRISON_THEATER_ID".into(), job.message.theater_id.clone()),
            ("GARRISON_ATTEMPT".into(), job.message.attempt.to_string()),
        ],
        run_id: job.message.run_id.clone(),
        agent_id: job.message.unit_id.clone(),
    };
    let every = Duration::from_millis((job.lease_ms / 3).max(50));
    let audit = data_dir.and_then(|d| audit_log(d, &job.message.profile.name));
    // The data dir (ledger, secrets, other orders' worktrees) stays out of
    // the unit's sight; its own worktree and git metadata are let through.
    let mut sandbox = sandbox.clone();
    sandbox.hidden.extend(data_dir.map(Path::to_path_buf));
    let hooks = UnitHooks {
        audit: audit.as_ref(),
        sandbox: &sandbox,
        secrets: Some(secrets),
        ..UnitHooks::default()
    };
    let unit = run_unit_with(&job.unit, &unit_job, hooks);
    tokio::pin!(unit);
    let result = loop {
        tokio::select! {
            r = &mut unit => break r,
            () = tokio::time::sleep(every) => {
                if !heartbeat().await {
                    tracing::warn!(order_id = %job.message.order_id, "lease lost while the unit runs; its report will be refused");
                }
            }
        }
    };
    let unit_report = match result {
        Ok(r) => r,
        Err(e) => UnitReport {
            outcome: UnitOutcome::NotStarted {
                code: e.code().to_string(),
                reason: e.to_string(),
            },
            summary: format!("the unit could not start: {e}"),
            artifacts: Vec::new(),
            model: job.unit.aar_model(),
            notes: Vec::new(),
            tool_calls: 0,
        },
    };
    if !has_worktree || matches!(unit_report.outcome, UnitOutcome::Killed { .. }) {
        let mut report = bare_report(job, unit_report);
        if scratch.is_some() {
            // The scratch directory goes with the attempt: point at nothing in it.
            report.artifacts.clear();
        }
        return report;
    }
    match write_records(job, &workspace, &unit_report) {
        Ok(report) => report,
        Err(e) => {
            let mut r = bare_report(job, unit_report);
            r.outcome = UnitOutcome::Failed {
                reason: format!("recording the attempt failed: {e}"),
            };
            r
        }
    }
}

/// The audit log of units of profile `profile`; `None` (with a warning)
/// when the name cannot be a directory name.
fn audit_log(data_dir: &Path, profile: &str) -> Option<AuditLog> {
    match AuditLog::for_agent(data_dir, profile) {
        Ok(log) => Some(log),
        Err(e) => {
            tracing::warn!(profile, error = %e, "this profile's units are not audited");
            None
        }
    }
}

fn bare_report(job: &Job, unit: UnitReport) -> Report {
    Report {
        order_id: job.message.order_id.clone(),
        lease_token: job.lease_token.clone(),
        outcome: unit.outcome,
        summary: unit.summary,
        artifacts: unit.artifacts,
        aar: None,
        result: None,
        commit_sha: None,
    }
}

/// Steps 3–5: artifacts are already under outputs/; write aar.json,
/// result.json and the worklog, then commit.
fn write_records(job: &Job, ws: &Path, unit: &UnitReport) -> Result<Report, String> {
    let status = match unit.outcome {
        UnitOutcome::Succeeded => AarStatus::Completed,
        _ => AarStatus::Failed,
    };
    let summary = if unit.summary.trim().is_empty() {
        "(the unit gave no summary)".to_string()
    } else {
        unit.summary.clone()
    };
    let mut notes = unit.notes.clone();
    if let UnitOutcome::Failed { reason } | UnitOutcome::NotStarted { reason, .. } = &unit.outcome {
        notes.push(reason.clone());
    }
    if unit.outcome == UnitOutcome::TimedOut {
        notes.push(format!("budget of {} s exhausted", job.budget_secs));
    }
    let aar = Aar {
        order_id: job.message.order_id.clone(),
        status,
        completed_at: now(),
        summary: summary.clone(),
        artifacts: unit.artifacts.clone(),
        model: unit.model.clone(),
        notes: notes.clone(),
        next_recommendations: Vec::new(),
    };
    let aar_value = serde_json::to_value(&aar).map_err(|e| e.to_string())?;
    write_json(&ws.join("aar.json"), &aar_value, SHARED).map_err(|e| e.to_string())?;

    let base = job.base_sha.clone().unwrap_or_default();
    let changed = if base.is_empty() {
        Vec::new()
    } else {
        garrison_vault::changes(ws, &base).map_err(|e| e.to_string())?
    };
    let evidence = format!(
        "{} tool calls; artifacts: {}",
        unit.tool_calls,
        unit.artifacts.len()
    );
    let result = SubagentResult {
        schema_version: "1.0.0".into(),
        run_id: job.message.run_id.clone(),
        generated_at: Some(now()),
        task_id: job.message.order_id.clone(),
        status: match unit.outcome {
            UnitOutcome::Succeeded => ResultStatus::Done,
            _ => ResultStatus::Failed,
        },
        changes: changed
            .iter()
            .filter(|c| !is_record(c.path()))
            .map(|c| Change {
                resource: c.path().to_owned(),
                action: c.action().into(),
                evidence: match c {
                    PathChange::Renamed { from, .. } => Some(format!("renamed from {from}")),
                    _ => None,
                },
            })
            .collect(),
        acceptance_check: job
            .assignment
            .pointer("/task/acceptance_criteria")
            .and_then(Value::as_array)
            .map(|c| {
                c.iter()
                    .filter_map(Value::as_str)
                    .map(|criterion| AcceptanceCheck {
                        criterion: criterion.to_string(),
                        status: if unit.outcome == UnitOutcome::Succeeded {
                            CheckStatus::Pass
                        } else {
                            CheckStatus::Fail
                        },
                        evidence: evidence.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        worklog_path: "worklog.md".into(),
        notes_for_orchestrator: notes
            .iter()
            .take(5)
            .map(|n| redact(n))
            .filter(|n| !n.trim().is_empty())
            .collect(),
    };
    let result_value = serde_json::to_value(&result).map_err(|e| e.to_string())?;
    write_json(&ws.join("result.json"), &result_value, SHARED).map_err(|e| e.to_string())?;
    let mut worklog = std::fs::read_to_string(ws.join("worklog.md")).unwrap_or_default();
    worklog.push_str(&format!(
        "- {} attempt {} by {}: {} — {}\n",
        now(),
        job.message.attempt,
        job.message.unit_id,
        json!(unit.outcome)["outcome"].as_str().unwrap_or("?"),
        summary.lines().next().unwrap_or("")
    ));
    write_atomic(&ws.join("worklog.md"), worklog.as_bytes(), SHARED).map_err(|e| e.to_string())?;
    let message = format!(
        "order {}: {}\n\nattempt {} by {}",
        job.message.order_id,
        summary.lines().next().unwrap_or("work"),
        job.message.attempt,
        job.message.unit_id
    );
    let sha = garrison_vault::commit_all(ws, &message).map_err(|e| e.to_string())?;
    let sha = match sha {
        Some(s) => Some(s),
        None => garrison_vault::head_sha(ws).ok(),
    };
    Ok(Report {
        order_id: job.message.order_id.clone(),
        lease_token: job.lease_token.clone(),
        outcome: unit.outcome.clone(),
        summary,
        artifacts: unit.artifacts.clone(),
        aar: Some(aar_value),
        result: Some(result_value),
        commit_sha: sha,
    })
}

fn is_record(path: &str) -> bool {
    garrison_vault::RECORD_FILES
        .iter()
        .any(|r| path == *r || path.starts_with(&format!("{r}/")))
}
