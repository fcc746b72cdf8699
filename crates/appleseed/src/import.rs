//! `openclaw-import`: adapt an operator-session artifact (or replay an
//! exported handoff bundle) into the envelope chain, ingest it, and write the
//! operator reports.
//!
//! The adaptation is deterministic: ids are derived from the session id and
//! the envelope's role, timestamps come from the artifact. Only when the
//! artifact has no time at all is "now" used, and the first stored copy wins.

use std::path::PathBuf;

use garrison_contracts::appleseed::{
    CONTRACT_NAME, CONTRACT_VERSION, EVENT_SCHEMA_VERSION, OperatorSessionArtifact,
    RuntimeEventEnvelope, is_supported_version,
};
use serde_json::{Map, Value, json};

use super::ids::derived_id;
use super::ingest::IngestOutcome;
use super::projection::{ProjectedFeedbackRecord, feedback_id};
use super::{Appleseed, Error, reports};
use garrison_contracts::values::{push_unique, strings};

/// `report_kind` of the exported handoff bundle.
pub const BUNDLE_KIND: &str = "openclaw_operator_handoff_bundle";
/// `schema_version` Garrison writes on bundles (any 1.x is replayed).
pub const BUNDLE_SCHEMA_VERSION: &str = "1.0";

/// What `openclaw-import` was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    OperatorSession,
    HandoffBundle,
}

impl InputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::OperatorSession => "openclaw_operator_session",
            InputKind::HandoffBundle => BUNDLE_KIND,
        }
    }
}

/// What one import did.
#[derive(Debug)]
pub struct ImportOutcome {
    pub kind: InputKind,
    pub session_id: String,
    pub ingest: IngestOutcome,
    /// Report files written, in write order.
    pub reports: Vec<PathBuf>,
    pub handoff: Value,
    pub session_report: Value,
}

/// A validated import input, ready to store.
pub(crate) struct Prepared {
    pub kind: InputKind,
    pub artifact_raw: Value,
    pub artifact: OperatorSessionArtifact,
    pub envelopes: Vec<Value>,
    pub preset: Vec<ProjectedFeedbackRecord>,
}

fn insert_some(m: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v.filter(|v| !v.is_null()) {
        m.insert(key.to_string(), v);
    }
}

/// The deterministic id of the adapted envelope (or its event) for `role`.
pub fn adapted_id(session_id: &str, role: &str, what: &str) -> String {
    derived_id(&["openclaw-import", session_id, role, what])
}

/// Adapts a validated artifact into its envelopes. `fallback_now` fills
/// `recorded_at` / `occurred_at` only when the artifact has no time to offer;
/// `None` leaves them out (report previews).
pub(crate) fn adapt(
    raw: &Value,
    a: &OperatorSessionArtifact,
    fallback_now: Option<&str>,
) -> Vec<Value> {
    let sid = a.session.session_id.as_str();
    let timeline: Vec<Value> = raw
        .get("timeline")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let last = timeline.last().cloned();
    let steps: Vec<String> = a.timeline.iter().map(|c| c.step.clone()).collect();
    let mut skills = Vec::new();
    push_unique(&mut skills, strings(raw, "/session/selected_skill_ids"));
    let mut missing = strings(raw, "/session/missing_capabilities");
    for i in 0..timeline.len() {
        push_unique(
            &mut skills,
            strings(raw, &format!("/timeline/{i}/selected_skill_ids")),
        );
        push_unique(
            &mut missing,
            strings(raw, &format!("/timeline/{i}/missing_capabilities")),
        );
    }
    push_unique(&mut skills, strings(raw, "/outcome/selected_skill_ids"));
    push_unique(&mut missing, strings(raw, "/outcome/missing_capabilities"));

    let first_time = a.timeline.iter().find_map(|c| c.occurred_at.clone());
    let last_time = a.timeline.iter().rev().find_map(|c| c.occurred_at.clone());
    let recorded_at = a
        .recorded_at
        .clone()
        .or_else(|| a.outcome.as_ref().and_then(|o| o.occurred_at.clone()))
        .or_else(|| last_time.clone())
        .or_else(|| a.session.started_at.clone())
        .or_else(|| fallback_now.map(str::to_string));
    let started_at = a
        .session
        .started_at
        .clone()
        .or(first_time)
        .or_else(|| recorded_at.clone());
    let outcome_at = a
        .outcome
        .as_ref()
        .and_then(|o| o.occurred_at.clone())
        .or(last_time)
        .or_else(|| recorded_at.clone());

    let handoff = raw.get("handoff").cloned().filter(|h| !h.is_null());
    let mut adapter = Map::new();
    adapter.insert("artifact_kind".into(), json!(a.artifact_kind));
    insert_some(
        &mut adapter,
        "artifact_schema_version",
        a.schema_version.clone().map(Value::from),
    );
    insert_some(
        &mut adapter,
        "artifact_recorded_at",
        a.recorded_at.clone().map(Value::from),
    );
    insert_some(
        &mut adapter,
        "operator",
        a.session.operator.clone().map(Value::from),
    );
    adapter.insert("checkpoint_count".into(), json!(timeline.len()));
    insert_some(
        &mut adapter,
        "last_checkpoint_id",
        a.timeline
            .last()
            .and_then(|c| c.checkpoint_id.clone())
            .map(Value::from),
    );
    let notes = a.handoff.as_ref();
    insert_some(
        &mut adapter,
        "handoff_summary",
        notes.and_then(|h| h.summary.clone()).map(Value::from),
    );
    insert_some(
        &mut adapter,
        "handoff_next_action",
        notes.and_then(|h| h.next_action.clone()).map(Value::from),
    );
    let mut env_meta = Map::new();
    env_meta.insert("openclaw_import".into(), Value::Object(adapter));

    let mut event_meta = Map::new();
    insert_some(
        &mut event_meta,
        "operator",
        a.session.operator.clone().map(Value::from),
    );
    insert_some(
        &mut event_meta,
        "artifact_recorded_at",
        a.recorded_at.clone().map(Value::from),
    );
    event_meta.insert("checkpoint_timeline".into(), Value::Array(timeline));
    insert_some(&mut event_meta, "last_checkpoint", last);
    insert_some(&mut event_meta, "handoff", handoff);

    let envelope = |role: &str, event: Map<String, Value>| {
        let mut m = Map::new();
        m.insert("contract_name".into(), json!(CONTRACT_NAME));
        m.insert("contract_version".into(), json!(CONTRACT_VERSION));
        m.insert(
            "envelope_id".into(),
            json!(adapted_id(sid, role, "envelope")),
        );
        insert_some(&mut m, "recorded_at", recorded_at.clone().map(Value::from));
        insert_some(&mut m, "source", a.source.clone().map(Value::from));
        m.insert("metadata".into(), Value::Object(env_meta.clone()));
        m.insert("event".into(), Value::Object(event));
        Value::Object(m)
    };
    let event_head = |role: &str, at: &Option<String>| {
        let mut e = Map::new();
        e.insert("schema_version".into(), json!(EVENT_SCHEMA_VERSION));
        e.insert("event_id".into(), json!(adapted_id(sid, role, "event")));
        e.insert("event_kind".into(), json!(role));
        insert_some(&mut e, "occurred_at", at.clone().map(Value::from));
        e.insert("session_id".into(), json!(sid));
        e.insert("task".into(), json!(a.session.task));
        e
    };

    let mut started = event_head("session_started", &started_at);
    started.insert("steps".into(), json!(steps));
    started.insert("selected_skill_ids".into(), json!(skills));
    started.insert("missing_capabilities".into(), json!(missing));
    started.insert("metadata".into(), Value::Object(event_meta.clone()));
    let mut out = vec![envelope("session_started", started)];

    if let Some(o) = &a.outcome {
        let mut fb = event_head("session_feedback", &outcome_at);
        fb.insert("status".into(), json!(o.status));
        // The raw number, so the stored score is the artifact's exactly.
        fb.insert(
            "score".into(),
            raw.pointer("/outcome/score")
                .cloned()
                .unwrap_or(json!(o.score)),
        );
        insert_some(&mut fb, "comment", o.comment.clone().map(Value::from));
        fb.insert("steps".into(), json!(steps));
        fb.insert("selected_skill_ids".into(), json!(skills));
        fb.insert("missing_capabilities".into(), json!(missing));
        fb.insert("metadata".into(), Value::Object(event_meta));
        out.push(envelope("session_feedback", fb));
    }
    out
}

fn bad(reason: impl Into<String>) -> Error {
    Error::Invalid(reason.into())
}

/// Checks an exported handoff bundle and returns what replaying it stores.
pub(crate) fn parse_bundle(v: &Value) -> Result<Prepared, Error> {
    let m = v
        .as_object()
        .ok_or_else(|| bad("a handoff bundle must be a JSON object"))?;
    if let Some(ver) = m.get("schema_version").filter(|s| !s.is_null()) {
        let ok = ver.as_str().is_some_and(is_supported_version);
        if !ok {
            return Err(bad(format!(
                "unsupported handoff bundle schema_version {ver} (supported: 1.x)"
            )));
        }
    }
    let artifact_raw = m
        .get("source_artifact")
        .cloned()
        .ok_or_else(|| bad("handoff bundle: `source_artifact` is required"))?;
    let artifact = OperatorSessionArtifact::from_value(&artifact_raw)?;
    let sid = artifact.session.session_id.clone();
    let Some(Value::Array(envs)) = m.get("adapted_envelopes") else {
        return Err(bad("handoff bundle: `adapted_envelopes` must be a list"));
    };
    if envs.is_empty() {
        return Err(bad("handoff bundle: `adapted_envelopes` is empty"));
    }
    let mut feedback_sources = Vec::new();
    for (i, e) in envs.iter().enumerate() {
        let path = format!("adapted_envelopes[{i}]");
        let env = RuntimeEventEnvelope::from_value(e, &path)?;
        let (Some(eid), Some(evid)) = (&env.envelope_id, &env.event.event_id) else {
            return Err(bad(format!(
                "{path}: a bundled envelope must carry its envelope_id and event.event_id"
            )));
        };
        if env.event.session_id != sid {
            return Err(bad(format!(
                "{path}: session_id `{}` is not the bundle's session `{sid}`",
                env.event.session_id
            )));
        }
        feedback_sources.push(feedback_id(eid, evid));
    }
    let preset = match m.get("projected_feedback") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let path = format!("projected_feedback[{i}]");
                let r: ProjectedFeedbackRecord =
                    serde_json::from_value(r.clone()).map_err(|e| bad(format!("{path}: {e}")))?;
                if r.feedback_id != feedback_id(&r.source_envelope_id, &r.source_event_id)
                    || !feedback_sources.contains(&r.feedback_id)
                {
                    return Err(bad(format!(
                        "{path}: feedback_id `{}` does not derive from a bundled envelope",
                        r.feedback_id
                    )));
                }
                if r.session_id != sid {
                    return Err(bad(format!(
                        "{path}: session_id is not the bundle's session"
                    )));
                }
                Ok(r)
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(bad("handoff bundle: `projected_feedback` must be a list")),
    };
    Ok(Prepared {
        kind: InputKind::HandoffBundle,
        artifact_raw,
        artifact,
        envelopes: envs.clone(),
        preset,
    })
}

impl Appleseed {
    /// Validates an artifact or bundle and adapts it; writes nothing.
    pub(crate) fn prepare_import(&self, input: &Value) -> Result<Prepared, Error> {
        let kind = input.get("report_kind").and_then(Value::as_str);
        if input.get("artifact_kind").is_none() && kind.is_some() {
            if kind != Some(BUNDLE_KIND) {
                return Err(bad(format!(
                    "unknown report_kind `{}` (openclaw-import replays {BUNDLE_KIND})",
                    kind.unwrap_or_default()
                )));
            }
            return parse_bundle(input);
        }
        if !input.is_object() || input.get("artifact_kind").is_none() {
            return Err(bad(
                "openclaw-import expects an openclaw_operator_session artifact or an \
                 openclaw_operator_handoff_bundle (runtime envelopes go through `ingest`)",
            ));
        }
        let artifact = OperatorSessionArtifact::from_value(input)?;
        let now = self.clock.now_string();
        let envelopes = adapt(input, &artifact, Some(&now));
        Ok(Prepared {
            kind: InputKind::OperatorSession,
            artifact_raw: input.clone(),
            artifact,
            envelopes,
            preset: Vec::new(),
        })
    }

    /// `garrison appleseed openclaw-import`: store the adapted chain, then
    /// write the session's reports and the `latest_*` aliases.
    pub fn openclaw_import(&self, input: &Value) -> Result<ImportOutcome, Error> {
        let p = self.prepare_import(input)?;
        let ingest = self.ingest_prepared(p.envelopes.clone(), &p.preset)?;
        reports::write_import_reports(self, p, ingest)
    }
}
