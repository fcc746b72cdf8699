//! `session_feedback` → ProjectedFeedbackRecord, with lineage to its source.

use garrison_contracts::appleseed::{EventKind, FeedbackStatus, RuntimeEventEnvelope};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ids::derived_id;

/// A projected evolution-feedback record. `feedback_id` is derived from the
/// source ids, so projecting the same envelope again gives the same id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectedFeedbackRecord {
    pub feedback_id: String,
    pub contract_name: String,
    pub contract_version: String,
    pub source_envelope_id: String,
    pub source_event_id: String,
    pub source_event_kind: EventKind,
    pub projected_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    pub session_id: String,
    pub task: String,
    pub status: FeedbackStatus,
    pub score: f64,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub steps: Vec<String>,
    #[serde(default)]
    pub selected_skill_ids: Vec<String>,
    #[serde(default)]
    pub missing_capabilities: Vec<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

/// The projected id of the feedback event `event_id` in envelope `envelope_id`.
pub fn feedback_id(envelope_id: &str, event_id: &str) -> String {
    derived_id(&["projected_feedback", envelope_id, event_id])
}

/// The projection of a stored envelope (ids present), or `None` for
/// `session_started`, which stays raw evidence only.
pub fn project(env: &RuntimeEventEnvelope, projected_at: &str) -> Option<ProjectedFeedbackRecord> {
    let e = &env.event;
    if e.event_kind != EventKind::SessionFeedback {
        return None;
    }
    let envelope_id = env.envelope_id.clone()?;
    let event_id = e.event_id.clone()?;
    Some(ProjectedFeedbackRecord {
        feedback_id: feedback_id(&envelope_id, &event_id),
        contract_name: env.contract_name.clone(),
        contract_version: env.contract_version.clone(),
        source_envelope_id: envelope_id,
        source_event_id: event_id,
        source_event_kind: e.event_kind,
        projected_at: projected_at.to_string(),
        source: env.source.clone(),
        occurred_at: e.occurred_at.clone(),
        session_id: e.session_id.clone(),
        task: e.task.clone(),
        // The contract validator made both present for session_feedback.
        status: e.status?,
        score: e.score?,
        comment: e.comment.clone(),
        steps: e.steps.clone().unwrap_or_default(),
        selected_skill_ids: e.selected_skill_ids.clone().unwrap_or_default(),
        missing_capabilities: e.missing_capabilities.clone().unwrap_or_default(),
        metadata: e.metadata.clone().unwrap_or_default(),
    })
}

impl ProjectedFeedbackRecord {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}
