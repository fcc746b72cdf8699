//! Evolution proposals derived from projected feedback, deterministically.
//!
//! Two kinds: a prompt-metadata revision for a skill whose mean score on a
//! task type is low, and a routing proposal for a capability reported missing
//! in several sessions. Groups are keyed in `BTreeMap`s so the proposal order
//! never depends on hashing; evidence keeps stored (file) order.

use std::collections::{BTreeMap, BTreeSet};

use garrison_contracts::appleseed::FeedbackStatus;
use serde::Serialize;
use serde_json::{Value, json};

use super::gate::GatePolicy;
use super::ids::derived_id;
use super::projection::ProjectedFeedbackRecord;

pub const PROMPT_REVISION: &str = "prompt_metadata_revision";
pub const ROUTING: &str = "capability_routing";

/// What one proposal's evidence says, rounded to 3 decimals so the report
/// bytes do not depend on float summation noise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub supporting_records: usize,
    pub distinct_sessions: usize,
    pub mean_score: f64,
    pub min_score: f64,
    pub max_score: f64,
    /// Share of `failure` and `partial` outcomes.
    pub failure_rate: f64,
    /// `target_score - mean_score`: how far the evidence is from healthy.
    pub score_delta: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposal {
    /// Derived from kind and target only, so a proposal keeps its id while
    /// evidence accumulates; `evidence_fingerprint` changes with the evidence.
    pub proposal_id: String,
    pub proposal_kind: &'static str,
    pub title: String,
    pub target_id: String,
    pub task_type: Option<String>,
    pub summary: String,
    pub supporting_feedback_ids: Vec<String>,
    pub session_ids: Vec<String>,
    pub evidence_fingerprint: String,
    pub metrics: Metrics,
    pub changes: Value,
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The task type of a record: `metadata.task_type` when the runtime sent one,
/// else the first word of `task` (lowercased), else `general`.
pub fn task_type(r: &ProjectedFeedbackRecord) -> String {
    if let Some(t) = r
        .metadata
        .get("task_type")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return t.to_lowercase();
    }
    r.task
        .split_whitespace()
        .next()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "general".into())
}

fn status_name(s: FeedbackStatus) -> &'static str {
    match s {
        FeedbackStatus::Success => "success",
        FeedbackStatus::Failure => "failure",
        FeedbackStatus::Partial => "partial",
        FeedbackStatus::Cancelled => "cancelled",
        FeedbackStatus::Unknown => "unknown",
    }
}

/// Whether a record counts as evidence under `policy`.
pub fn is_evidence(r: &ProjectedFeedbackRecord, policy: &GatePolicy) -> bool {
    !policy.excluded_statuses.contains(&status_name(r.status))
}

fn metrics(records: &[&ProjectedFeedbackRecord], policy: &GatePolicy) -> Metrics {
    let n = records.len().max(1) as f64;
    let scores: Vec<f64> = records.iter().map(|r| r.score).collect();
    let mean = scores.iter().sum::<f64>() / n;
    let failures = records
        .iter()
        .filter(|r| matches!(r.status, FeedbackStatus::Failure | FeedbackStatus::Partial))
        .count();
    let sessions: BTreeSet<&str> = records.iter().map(|r| r.session_id.as_str()).collect();
    Metrics {
        supporting_records: records.len(),
        distinct_sessions: sessions.len(),
        mean_score: round3(mean),
        min_score: round3(scores.iter().copied().fold(f64::INFINITY, f64::min)),
        max_score: round3(scores.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
        failure_rate: round3(failures as f64 / n),
        score_delta: round3(policy.target_score - mean),
    }
}

fn first_seen<'a>(items: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.iter().any(|o| o == i) {
            out.push(i.to_string());
        }
    }
    out
}

fn build(
    kind: &'static str,
    target: &str,
    task: Option<&str>,
    records: &[&ProjectedFeedbackRecord],
    policy: &GatePolicy,
) -> Proposal {
    let metrics = metrics(records, policy);
    let ids: Vec<String> = records.iter().map(|r| r.feedback_id.clone()).collect();
    let sessions = first_seen(records.iter().map(|r| r.session_id.as_str()));
    let mut sorted: Vec<&str> = ids.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let mut fp_parts = vec!["appleseed-evidence"];
    fp_parts.extend(sorted);
    let evidence_fingerprint = derived_id(&fp_parts);
    let types: Vec<String> = records.iter().map(|r| task_type(r)).collect();
    let (title, summary, changes) = match task {
        Some(task) => {
            // Guidance comes from what failing sessions said, first-seen order.
            let guidance = first_seen(
                records
                    .iter()
                    .filter(|r| r.status != FeedbackStatus::Success)
                    .filter_map(|r| r.comment.as_deref())
                    .map(str::trim)
                    .filter(|c| !c.is_empty()),
            );
            let caps = first_seen(
                records
                    .iter()
                    .flat_map(|r| r.missing_capabilities.iter().map(String::as_str)),
            );
            (
                format!("Revise prompt metadata of skill `{target}` for `{task}` tasks"),
                format!(
                    "Skill `{target}` scored {} on average over {} `{task}` feedback record(s).",
                    metrics.mean_score, metrics.supporting_records
                ),
                json!({
                    "skill_id": target,
                    "task_type": task,
                    "add_tags": [format!("task:{task}")],
                    "add_guidance": guidance,
                    "note_missing_capabilities": caps,
                }),
            )
        }
        None => (
            format!("Route tasks needing `{target}` to a capable skill"),
            format!(
                "Capability `{target}` was reported missing in {} session(s).",
                metrics.distinct_sessions
            ),
            json!({
                "capability": target,
                "skills_selected_when_missing": first_seen(
                    records
                        .iter()
                        .flat_map(|r| r.selected_skill_ids.iter().map(String::as_str)),
                ),
                "task_types": first_seen(types.iter().map(String::as_str)),
            }),
        ),
    };
    Proposal {
        proposal_id: derived_id(&["appleseed-proposal", kind, target, task.unwrap_or("")]),
        proposal_kind: kind,
        title,
        target_id: target.to_string(),
        task_type: task.map(str::to_string),
        summary,
        supporting_feedback_ids: ids,
        session_ids: sessions,
        evidence_fingerprint,
        metrics,
        changes,
    }
}

/// Every proposal the evidence supports: revisions first (by skill, task
/// type), then routing (by capability).
pub fn derive(records: &[ProjectedFeedbackRecord], policy: &GatePolicy) -> Vec<Proposal> {
    let evidence: Vec<&ProjectedFeedbackRecord> =
        records.iter().filter(|r| is_evidence(r, policy)).collect();
    let mut by_skill: BTreeMap<(String, String), Vec<&ProjectedFeedbackRecord>> = BTreeMap::new();
    let mut by_cap: BTreeMap<String, Vec<&ProjectedFeedbackRecord>> = BTreeMap::new();
    for r in &evidence {
        let t = task_type(r);
        for skill in first_seen(r.selected_skill_ids.iter().map(String::as_str)) {
            by_skill.entry((skill, t.clone())).or_default().push(r);
        }
        for cap in first_seen(r.missing_capabilities.iter().map(String::as_str)) {
            by_cap.entry(cap).or_default().push(r);
        }
    }
    let mut out = Vec::new();
    for ((skill, task), recs) in &by_skill {
        let p = build(PROMPT_REVISION, skill, Some(task), recs, policy);
        if p.metrics.mean_score < policy.proposal_max_mean_score {
            out.push(p);
        }
    }
    for (cap, recs) in &by_cap {
        let p = build(ROUTING, cap, None, recs, policy);
        if p.metrics.distinct_sessions >= policy.routing_min_sessions {
            out.push(p);
        }
    }
    out
}
