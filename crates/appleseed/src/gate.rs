//! The offline evaluation gate: explicit thresholds, and per proposal a
//! readiness, a risk level, operator hints and rollback context.
//!
//! Deterministic arithmetic over the proposal's metrics — no model. Evidence
//! checks decide `blocked`; quality checks decide between promotion and review.

use serde::Serialize;
use serde_json::{Value, json};

use super::evolution::{PROMPT_REVISION, Proposal};

pub const GATE_ID: &str = "garrison_appleseed_offline_gate_v1";
pub const READY: &str = "ready_for_promotion";
pub const REVIEW: &str = "operator_review_required";
pub const BLOCKED: &str = "blocked";

/// Every threshold the derivation and the gate use, written into each report
/// so an operator sees exactly what a readiness was decided against.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatePolicy {
    pub gate_id: &'static str,
    /// The score a healthy skill is expected to reach.
    pub target_score: f64,
    /// A (skill, task type) with a mean score below this gets a revision proposal.
    pub proposal_max_mean_score: f64,
    /// A capability missing in at least this many sessions gets a routing proposal.
    pub routing_min_sessions: usize,
    /// Evidence checks (fail → `blocked`).
    pub min_supporting_records: usize,
    pub min_distinct_sessions: usize,
    /// Quality checks for prompt revisions (fail → `operator_review_required`).
    pub min_score_delta: f64,
    pub min_failure_rate: f64,
    /// Feedback with these statuses says little about a skill; it is not evidence.
    pub excluded_statuses: Vec<&'static str>,
    /// Which kinds may be promoted once the gate passes.
    pub promotion_modes: Value,
}

impl Default for GatePolicy {
    fn default() -> Self {
        GatePolicy {
            gate_id: GATE_ID,
            target_score: 0.8,
            proposal_max_mean_score: 0.6,
            routing_min_sessions: 2,
            min_supporting_records: 3,
            min_distinct_sessions: 2,
            min_score_delta: 0.3,
            min_failure_rate: 0.5,
            excluded_statuses: vec!["cancelled", "unknown"],
            promotion_modes: json!({
                "prompt_metadata_revision": "promote_after_gate",
                "capability_routing": "manual_review_only",
            }),
        }
    }
}

/// One threshold compared with one metric.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub threshold: Value,
    pub actual: Value,
    pub passed: bool,
}

/// The gate's verdict on one proposal.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub readiness: &'static str,
    pub risk_level: &'static str,
    pub promotion_mode: &'static str,
    pub checks: Vec<Check>,
    pub reasons: Vec<String>,
    pub operator_actions: Vec<String>,
    pub review_labels: Vec<&'static str>,
    pub rollback_context: Value,
}

fn check(name: &'static str, threshold: Value, actual: Value, passed: bool) -> Check {
    Check {
        check: name,
        threshold,
        actual,
        passed,
    }
}

pub fn evaluate(p: &Proposal, policy: &GatePolicy) -> Evaluation {
    let m = &p.metrics;
    let prompt = p.proposal_kind == PROMPT_REVISION;
    let evidence = vec![
        check(
            "min_supporting_records",
            json!(policy.min_supporting_records),
            json!(m.supporting_records),
            m.supporting_records >= policy.min_supporting_records,
        ),
        check(
            "min_distinct_sessions",
            json!(policy.min_distinct_sessions),
            json!(m.distinct_sessions),
            m.distinct_sessions >= policy.min_distinct_sessions,
        ),
    ];
    // Quality only matters for what could be promoted automatically.
    let quality = if prompt {
        vec![
            check(
                "min_score_delta",
                json!(policy.min_score_delta),
                json!(m.score_delta),
                m.score_delta >= policy.min_score_delta,
            ),
            check(
                "min_failure_rate",
                json!(policy.min_failure_rate),
                json!(m.failure_rate),
                m.failure_rate >= policy.min_failure_rate,
            ),
        ]
    } else {
        Vec::new()
    };
    let evidence_ok = evidence.iter().all(|c| c.passed);
    let quality_ok = quality.iter().all(|c| c.passed);
    let promotion_mode = if prompt {
        "promote_after_gate"
    } else {
        "manual_review_only"
    };
    let readiness = match (evidence_ok, prompt && quality_ok) {
        (false, _) => BLOCKED,
        (true, true) => READY,
        (true, false) => REVIEW,
    };
    let checks: Vec<Check> = evidence.into_iter().chain(quality).collect();
    let mut reasons: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{} not met: {} < {}", c.check, c.actual, c.threshold))
        .collect();
    if !prompt && evidence_ok {
        reasons.push("routing changes are never promoted automatically".into());
    }

    let risk_level = if m.supporting_records < policy.min_supporting_records {
        // Thin evidence: acting on it is the riskiest choice.
        "high"
    } else if !prompt {
        // A new route changes which skill every matching task gets.
        "medium"
    } else if m.supporting_records >= 2 * policy.min_supporting_records
        && m.failure_rate >= policy.min_failure_rate
    {
        "low"
    } else {
        "medium"
    };

    let target = &p.target_id;
    let task = p.task_type.as_deref().unwrap_or("any");
    let mut actions = Vec::new();
    match readiness {
        READY => {
            actions.push(format!(
                "Review the prompt-metadata change for skill `{target}` (task type `{task}`) in latest_promotion_artifact.json, then apply it."
            ));
            actions.push(
                "Keep the rollback context; re-run governance after new feedback to confirm the mean score recovers."
                    .into(),
            );
        }
        REVIEW if prompt => actions.push(format!(
            "Evidence suffices but the signal is weak: decide by hand whether skill `{target}` needs a revision for task type `{task}`."
        )),
        REVIEW => actions.push(format!(
            "Decide whether a skill or route should cover capability `{target}`; Garrison never changes routing on its own."
        )),
        _ => {
            let more_records = policy
                .min_supporting_records
                .saturating_sub(m.supporting_records);
            let more_sessions = policy
                .min_distinct_sessions
                .saturating_sub(m.distinct_sessions);
            actions.push(format!(
                "Collect more feedback before review: {more_records} more supporting record(s), {more_sessions} more session(s)."
            ));
        }
    }
    if risk_level != "low" && readiness == READY {
        actions.push(format!(
            "Risk is {risk_level}: apply to one task type first and watch its scores."
        ));
    }

    let rollback_context = if prompt {
        json!({
            "strategy": "restore_prompt_metadata",
            "required": readiness == READY,
            "target_type": "skill",
            "target_id": target,
            "task_type": p.task_type,
            "change_to_revert": p.changes,
            "steps": [
                format!("Remove the added guidance and tags from skill `{target}`'s prompt metadata (they are listed in change_to_revert)."),
                "Or restore the skill definition from version control as of before the promotion.",
                "Re-run `garrison appleseed governance --write-report` so the review queue reflects the rollback.",
            ],
        })
    } else {
        json!({
            "strategy": "no_automatic_change",
            "required": false,
            "target_type": "capability",
            "target_id": target,
            "task_type": Value::Null,
            "change_to_revert": Value::Null,
            "steps": [
                "Nothing is applied automatically; record revert steps with any manual routing change.",
            ],
        })
    };

    let mut labels = Vec::new();
    match readiness {
        READY => {
            labels.push("ready");
            if risk_level != "low" {
                labels.push("risky");
            }
            labels.push("rollback_sensitive");
        }
        REVIEW => labels.push(REVIEW),
        _ => labels.push(BLOCKED),
    }

    Evaluation {
        readiness,
        risk_level,
        promotion_mode,
        checks,
        reasons,
        operator_actions: actions,
        review_labels: labels,
        rollback_context,
    }
}
