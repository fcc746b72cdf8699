//! `governance`: proposals joined with the gate's verdicts, rendered as the
//! evolution report, the governance report (JSON + markdown), the operator
//! review queue and a dry-run promotion artifact; plus the workflow
//! checkpoint and its append-only history.
//!
//! Every report is a pure function of `projected_feedback.jsonl` and the
//! policy except `generated_at`, so the same evidence gives the same bytes.
//! Paths inside reports are relative to the state dir for the same reason.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::evolution::{Proposal, derive, is_evidence};
use super::gate::{BLOCKED, Evaluation, GatePolicy, READY, REVIEW, evaluate};
use super::projection::ProjectedFeedbackRecord;
use super::{Appleseed, Error};

pub const EVOLUTION_REPORT: &str = "latest_evolution_report.json";
pub const GOVERNANCE_REPORT: &str = "latest_governance_report";
pub const OPERATOR_REVIEW: &str = "latest_operator_review.json";
pub const PROMOTION_ARTIFACT: &str = "latest_promotion_artifact.json";
pub const WORKFLOW_STATE: &str = "latest_workflow_state.json";
pub const WORKFLOW_HISTORY: &str = "workflow_history.jsonl";

/// One governance run's reports (nothing written yet).
#[derive(Debug)]
pub struct Governance {
    pub evolution: Value,
    pub governance: Value,
    pub review: Value,
    pub promotion: Value,
    pub warnings: Vec<String>,
}

fn ids_where(items: &[(Proposal, Evaluation)], f: impl Fn(&Evaluation) -> bool) -> Vec<String> {
    items
        .iter()
        .filter(|(_, e)| f(e))
        .map(|(p, _)| p.proposal_id.clone())
        .collect()
}

fn decision(p: &Proposal, e: &Evaluation) -> Value {
    json!({
        "proposal_id": p.proposal_id,
        "proposal_kind": p.proposal_kind,
        "title": p.title,
        "target_id": p.target_id,
        "task_type": p.task_type,
        "readiness": e.readiness,
        "risk_level": e.risk_level,
        "promotion_mode": e.promotion_mode,
        "summary": p.summary,
        "metrics": p.metrics,
        "gate_checks": e.checks,
        "reasons": e.reasons,
        "operator_actions": e.operator_actions,
        "review_labels": e.review_labels,
        "rollback_context": e.rollback_context,
        "supporting_feedback_ids": p.supporting_feedback_ids,
    })
}

/// Builds every report from `records` (stored order) at time `now`.
pub fn build(records: &[ProjectedFeedbackRecord], policy: &GatePolicy, now: &str) -> Governance {
    let proposals = derive(records, policy);
    let items: Vec<(Proposal, Evaluation)> = proposals
        .into_iter()
        .map(|p| {
            let e = evaluate(&p, policy);
            (p, e)
        })
        .collect();
    let evidence = records.iter().filter(|r| is_evidence(r, policy)).count();
    let count = |r: &str| items.iter().filter(|(_, e)| e.readiness == r).count();
    let ready = ids_where(&items, |e| e.readiness == READY);
    let review = ids_where(&items, |e| e.readiness == REVIEW);
    let blocked = ids_where(&items, |e| e.readiness == BLOCKED);
    let risky = ids_where(&items, |e| e.review_labels.contains(&"risky"));
    let sensitive = ids_where(&items, |e| e.review_labels.contains(&"rollback_sensitive"));
    let summary = json!({
        "gate_id": policy.gate_id,
        "proposal_count": items.len(),
        "readiness_counts": {READY: count(READY), REVIEW: count(REVIEW), BLOCKED: count(BLOCKED)},
        "ready_for_promotion": ready,
        "operator_review_queue": review,
        "blocked": blocked,
        "risky_ready": risky,
        "rollback_sensitive": sensitive,
    });
    let inputs = json!({
        "projected_feedback_records": records.len(),
        "evidence_records": evidence,
        "excluded_records": records.len() - evidence,
    });

    let evolution = json!({
        "report_kind": "appleseed_evolution_report",
        "generated_at": now,
        "inputs": inputs,
        "gate_policy": policy,
        "proposals": items.iter().map(|(p, e)| json!({"proposal": p, "evaluation": e})).collect::<Vec<_>>(),
    });
    let governance = json!({
        "report_kind": "appleseed_governance_report",
        "generated_at": now,
        "inputs": inputs,
        "gate_policy": policy,
        "summary": summary,
        "proposals": items.iter().map(|(p, e)| decision(p, e)).collect::<Vec<_>>(),
    });
    let review_items: Vec<Value> = items
        .iter()
        .filter(|(_, e)| e.readiness != BLOCKED)
        .map(|(p, e)| {
            json!({
                "proposal_id": p.proposal_id,
                "title": p.title,
                "readiness": e.readiness,
                "risk_level": e.risk_level,
                "review_labels": e.review_labels,
                "promotion_blockers": if e.readiness == READY { Vec::new() } else { e.reasons.clone() },
                "operator_actions": e.operator_actions,
                "changes": p.changes,
                "rollback_context": e.rollback_context,
            })
        })
        .collect();
    let review = json!({
        "report_kind": "appleseed_operator_review",
        "generated_at": now,
        "gate_id": policy.gate_id,
        "review_queue": {
            "ready": summary["ready_for_promotion"],
            "risky": summary["risky_ready"],
            "rollback_sensitive": summary["rollback_sensitive"],
            "operator_review_required": summary["operator_review_queue"],
            "blocked": summary["blocked"],
        },
        "items": review_items,
    });
    let selected: Vec<Value> = items
        .iter()
        .filter(|(_, e)| e.readiness == READY)
        .map(|(p, e)| {
            json!({
                "proposal_id": p.proposal_id,
                "target_id": p.target_id,
                "task_type": p.task_type,
                "risk_level": e.risk_level,
                "applied": false,
                "changes": p.changes,
                "rollback_context": e.rollback_context,
            })
        })
        .collect();
    let skipped: Vec<Value> = items
        .iter()
        .filter(|(_, e)| e.readiness != READY)
        .map(|(p, e)| {
            json!({
                "proposal_id": p.proposal_id,
                "readiness": e.readiness,
                "skip_reason": e.reasons.join("; "),
            })
        })
        .collect();
    let promotion = json!({
        "report_kind": "appleseed_promotion_artifact",
        "generated_at": now,
        "dry_run": true,
        "gate_id": policy.gate_id,
        "summary": {
            "selected_proposals": selected.len(),
            "applied_proposals": 0,
            "skipped_proposals": skipped.len(),
        },
        "selected_proposals": selected,
        "skipped_proposals": skipped,
        "notes": ["Dry run: Garrison records what would be promoted and never edits a skill itself."],
    });
    Governance {
        evolution,
        governance,
        review,
        promotion,
        warnings: Vec::new(),
    }
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => "n/a".into(),
        Some(other) => other.to_string(),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().map(|x| text(Some(x))).collect())
        .unwrap_or_default()
}

pub fn render_governance_markdown(r: &Value) -> String {
    let s = r.get("summary").cloned().unwrap_or(Value::Null);
    let n = |k: &str| s.get(k).and_then(Value::as_array).map_or(0, Vec::len);
    let mut lines = vec![
        "# Appleseed governance report".to_string(),
        String::new(),
        format!("- Gate: {}", text(s.get("gate_id"))),
        format!("- Generated at: {}", text(r.get("generated_at"))),
        format!(
            "- Evidence records: {} of {} projected",
            text(r.pointer("/inputs/evidence_records")),
            text(r.pointer("/inputs/projected_feedback_records"))
        ),
        format!("- Proposals: {}", text(s.get("proposal_count"))),
        format!("- Ready for promotion: {}", n("ready_for_promotion")),
        format!("- Risky ready: {}", n("risky_ready")),
        format!("- Rollback-sensitive: {}", n("rollback_sensitive")),
        format!("- Operator review required: {}", n("operator_review_queue")),
        format!("- Blocked: {}", n("blocked")),
        String::new(),
        "## Proposal decisions".into(),
    ];
    let proposals = r
        .get("proposals")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if proposals.is_empty() {
        lines.push("- none".into());
    }
    for p in &proposals {
        lines.push(String::new());
        lines.push(format!("### {}", text(p.get("title"))));
        lines.push(format!("- Id: {}", text(p.get("proposal_id"))));
        lines.push(format!(
            "- Readiness: {} (risk {}, {})",
            text(p.get("readiness")),
            text(p.get("risk_level")),
            text(p.get("promotion_mode"))
        ));
        lines.push(format!("- Summary: {}", text(p.get("summary"))));
        let m = p.get("metrics").cloned().unwrap_or(Value::Null);
        lines.push(format!(
            "- Evidence: {} record(s), {} session(s), mean score {}, failure rate {}",
            text(m.get("supporting_records")),
            text(m.get("distinct_sessions")),
            text(m.get("mean_score")),
            text(m.get("failure_rate"))
        ));
        for c in p
            .get("gate_checks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            lines.push(format!(
                "- Check {}: {} (actual {}, threshold {})",
                text(c.get("check")),
                if c.get("passed") == Some(&Value::Bool(true)) {
                    "passed"
                } else {
                    "failed"
                },
                text(c.get("actual")),
                text(c.get("threshold"))
            ));
        }
        lines.push(format!(
            "- Rollback: {}",
            text(p.pointer("/rollback_context/strategy"))
        ));
        for a in strings(p.get("operator_actions")) {
            lines.push(format!("- Action: {a}"));
        }
    }
    lines.join("\n") + "\n"
}

impl Appleseed {
    /// Reads the projected feedback and builds every report; writes nothing.
    pub fn governance(&self) -> Result<Governance, Error> {
        let lines = self.store.read_lines(&self.store.projected_path())?;
        let mut warnings = lines.warnings;
        let mut records: Vec<ProjectedFeedbackRecord> = Vec::new();
        for (i, v) in lines.records.into_iter().enumerate() {
            match serde_json::from_value::<ProjectedFeedbackRecord>(v) {
                Ok(r) if records.iter().any(|o| o.feedback_id == r.feedback_id) => {}
                Ok(r) => records.push(r),
                Err(e) => warnings.push(format!(
                    "{}: record {} is not a projected feedback record ({e}); ignored",
                    super::PROJECTED_FILE,
                    i + 1
                )),
            }
        }
        let mut g = build(&records, &GatePolicy::default(), &self.clock.now_string());
        g.warnings = warnings;
        Ok(g)
    }

    /// Writes the reports, the workflow checkpoint, and one history line.
    pub fn write_governance(&self, g: &Governance) -> Result<Vec<PathBuf>, Error> {
        // The lock keeps concurrent runs from interleaving history numbering.
        let _lock = self.store.lock()?;
        let dir = self.store.reports_dir();
        let paths = [
            dir.join(EVOLUTION_REPORT),
            dir.join(format!("{GOVERNANCE_REPORT}.json")),
            dir.join(format!("{GOVERNANCE_REPORT}.md")),
            dir.join(OPERATOR_REVIEW),
            dir.join(PROMOTION_ARTIFACT),
        ];
        let [evo, gov_json, gov_md, review, promotion] = &paths;
        self.store.write_json(evo, &g.evolution)?;
        self.store.write_json(gov_json, &g.governance)?;
        self.store
            .write_text(gov_md, &render_governance_markdown(&g.governance))?;
        self.store.write_json(review, &g.review)?;
        self.store.write_json(promotion, &g.promotion)?;

        let history_path = self.store.dir().join(WORKFLOW_HISTORY);
        let previous = self.store.read_lines(&history_path)?.records.len();
        let rel = |p: &PathBuf| {
            p.strip_prefix(self.store.dir())
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned()
        };
        let state = json!({
            "workflow": "appleseed_governance",
            "run_number": previous + 1,
            "stage": "governance_reported",
            "completed_at": g.governance.get("generated_at"),
            "gate_id": g.governance.pointer("/summary/gate_id"),
            "inputs": g.governance.get("inputs"),
            "readiness_counts": g.governance.pointer("/summary/readiness_counts"),
            "ready_for_promotion": g.governance.pointer("/summary/ready_for_promotion"),
            "operator_review_queue": g.governance.pointer("/summary/operator_review_queue"),
            "reports": paths.iter().map(rel).collect::<Vec<_>>(),
            "resume_command": "garrison appleseed governance --format markdown --write-report",
        });
        let state_path = self.store.dir().join(WORKFLOW_STATE);
        self.store.write_json(&state_path, &state)?;
        self.store.append(&history_path, &[state])?;
        let mut out = paths.to_vec();
        out.extend([state_path, history_path]);
        Ok(out)
    }
}
