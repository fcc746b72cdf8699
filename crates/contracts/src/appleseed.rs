//! OpenClaw/Appleseed runtime event contract (appleseed-event-contract.md):
//! envelopes, batches, and the operator-session artifact of `openclaw-import`.
//!
//! Parsing goes through `from_value` so every rejection has a typed reason;
//! the learning service stores the raw JSON, these types are for reading it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::check::parse_timestamp;

/// The only `contract_name` Appleseed accepts.
pub const CONTRACT_NAME: &str = "openclaw_appleseed.runtime_event";
/// The `contract_version` Garrison writes (any 1.x is accepted).
pub const CONTRACT_VERSION: &str = "1.0";
/// The event `schema_version` Garrison writes (any 1.x is accepted).
pub const EVENT_SCHEMA_VERSION: &str = "1.1";
/// The operator-session artifact's `artifact_kind`.
pub const ARTIFACT_KIND: &str = "openclaw_operator_session";

/// Why an Appleseed payload was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppleseedError {
    #[error("`{0}` must be a JSON object")]
    NotAnObject(String),
    #[error("`{0}` is required")]
    Missing(String),
    #[error("`{field}` is invalid: {reason}")]
    Invalid { field: String, reason: String },
    #[error("unknown contract_name `{0}` (expected {CONTRACT_NAME})")]
    UnknownContract(String),
    #[error("unsupported {field} `{version}` (supported: 1.x)")]
    UnsupportedVersion { field: String, version: String },
    #[error("unknown event_kind `{0}` (expected session_started|session_feedback)")]
    UnknownEventKind(String),
    #[error("unknown artifact_kind `{0}` (expected {ARTIFACT_KIND})")]
    UnknownArtifactKind(String),
}

type Res<T> = Result<T, AppleseedError>;

/// `event_kind`: the two supported event bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    SessionStarted,
    SessionFeedback,
}

/// `status` of `session_feedback` (and of an artifact's outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackStatus {
    Success,
    Failure,
    Partial,
    Cancelled,
    Unknown,
}

const EVENT_KINDS: &[&str] = &["session_started", "session_feedback"];
const FEEDBACK_STATUSES: &[&str] = &["success", "failure", "partial", "cancelled", "unknown"];

/// One per-event envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeEventEnvelope {
    pub contract_name: String,
    pub contract_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    pub event: RuntimeEvent,
}

/// A `session_started` or `session_feedback` event body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub event_kind: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    pub session_id: String,
    pub task: String,
    /// `session_feedback` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<FeedbackStatus>,
    /// `session_feedback` only, in `[0, 1]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_skill_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_capabilities: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// The batch form: shared header, many events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeEventBatch {
    pub contract_name: String,
    pub contract_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    pub events: Vec<RuntimeEvent>,
}

/// Anything Appleseed ingests: one envelope, a list of them, or a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum RuntimePayload {
    Single(Box<RuntimeEventEnvelope>),
    List(Vec<RuntimeEventEnvelope>),
    Batch(RuntimeEventBatch),
}

// --- raw-JSON checks -------------------------------------------------------

fn object<'a>(v: &'a Value, path: &str) -> Res<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| AppleseedError::NotAnObject(path.to_string()))
}

fn at(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn invalid(field: String, reason: &str) -> AppleseedError {
    AppleseedError::Invalid {
        field,
        reason: reason.to_string(),
    }
}

fn present<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

fn req_str<'a>(m: &'a Map<String, Value>, path: &str, key: &str) -> Res<&'a str> {
    let v = present(m, key).ok_or_else(|| AppleseedError::Missing(at(path, key)))?;
    let s = v
        .as_str()
        .ok_or_else(|| invalid(at(path, key), "must be a string"))?;
    if s.trim().is_empty() {
        return Err(invalid(at(path, key), "must not be empty"));
    }
    Ok(s)
}

fn opt_str<'a>(m: &'a Map<String, Value>, path: &str, key: &str) -> Res<Option<&'a str>> {
    present(m, key)
        .map(|v| {
            v.as_str()
                .ok_or_else(|| invalid(at(path, key), "must be a string"))
        })
        .transpose()
}

/// ISO 8601: with an offset, or a naive local date-time (Appleseed accepts both).
pub fn is_iso8601(s: &str) -> bool {
    parse_timestamp(s).is_some() || s.parse::<jiff::civil::DateTime>().is_ok()
}

fn opt_time(m: &Map<String, Value>, path: &str, key: &str) -> Res<()> {
    match opt_str(m, path, key)? {
        Some(s) if !is_iso8601(s) => Err(invalid(at(path, key), "must be an ISO 8601 timestamp")),
        _ => Ok(()),
    }
}

fn opt_str_list(m: &Map<String, Value>, path: &str, key: &str) -> Res<()> {
    match present(m, key) {
        None => Ok(()),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(()),
        Some(_) => Err(invalid(at(path, key), "must be a list of strings")),
    }
}

fn opt_object(m: &Map<String, Value>, path: &str, key: &str) -> Res<()> {
    match present(m, key) {
        None | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(invalid(at(path, key), "must be an object")),
    }
}

/// Whether a dotted version string has major version 1 (`1`, `1.0`, `1.1.2`).
pub fn is_supported_version(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
        && parts.first().and_then(|p| p.parse::<u64>().ok()) == Some(1)
}

fn version(m: &Map<String, Value>, path: &str, key: &str, required: bool) -> Res<()> {
    let v = match opt_str(m, path, key)? {
        Some(v) => v,
        None if required => return Err(AppleseedError::Missing(at(path, key))),
        None => return Ok(()),
    };
    if is_supported_version(v) {
        Ok(())
    } else {
        Err(AppleseedError::UnsupportedVersion {
            field: at(path, key),
            version: v.to_string(),
        })
    }
}

fn contract_header(m: &Map<String, Value>, path: &str) -> Res<()> {
    let name = req_str(m, path, "contract_name")?;
    if name != CONTRACT_NAME {
        return Err(AppleseedError::UnknownContract(name.to_string()));
    }
    version(m, path, "contract_version", true)?;
    opt_str(m, path, "source")?;
    opt_object(m, path, "metadata")
}

fn feedback(m: &Map<String, Value>, path: &str, required: bool) -> Res<()> {
    match present(m, "status") {
        None if required => return Err(AppleseedError::Missing(at(path, "status"))),
        None => {}
        Some(v) if !v.as_str().is_some_and(|s| FEEDBACK_STATUSES.contains(&s)) => {
            return Err(invalid(
                at(path, "status"),
                "must be one of success|failure|partial|cancelled|unknown",
            ));
        }
        Some(_) => {}
    }
    match present(m, "score") {
        None if required => return Err(AppleseedError::Missing(at(path, "score"))),
        None => {}
        Some(v) => match v.as_f64() {
            Some(s) if (0.0..=1.0).contains(&s) => {}
            Some(_) => return Err(invalid(at(path, "score"), "must be within [0.0, 1.0]")),
            None => return Err(invalid(at(path, "score"), "must be a number")),
        },
    }
    opt_str(m, path, "comment").map(|_| ())
}

fn decode<T: serde::de::DeserializeOwned>(v: &Value, path: &str) -> Res<T> {
    serde_json::from_value(v.clone()).map_err(|e| AppleseedError::Invalid {
        field: if path.is_empty() {
            "payload".into()
        } else {
            path.to_string()
        },
        reason: e.to_string(),
    })
}

impl RuntimeEvent {
    /// Checks an event body at `path`; `session_feedback` needs `status` and `score`.
    pub fn from_value(v: &Value, path: &str) -> Res<RuntimeEvent> {
        let m = object(v, path)?;
        let kind = req_str(m, path, "event_kind")?;
        if !EVENT_KINDS.contains(&kind) {
            return Err(AppleseedError::UnknownEventKind(kind.to_string()));
        }
        version(m, path, "schema_version", false)?;
        opt_str(m, path, "event_id")?;
        opt_time(m, path, "occurred_at")?;
        req_str(m, path, "session_id")?;
        req_str(m, path, "task")?;
        for key in ["steps", "selected_skill_ids", "missing_capabilities"] {
            opt_str_list(m, path, key)?;
        }
        opt_object(m, path, "metadata")?;
        feedback(m, path, kind == "session_feedback")?;
        decode(v, path)
    }
}

impl RuntimeEventEnvelope {
    /// Checks an envelope at `path` (contract name, 1.x versions, event).
    pub fn from_value(v: &Value, path: &str) -> Res<RuntimeEventEnvelope> {
        let m = object(v, path)?;
        contract_header(m, path)?;
        opt_str(m, path, "envelope_id")?;
        opt_time(m, path, "recorded_at")?;
        let event =
            present(m, "event").ok_or_else(|| AppleseedError::Missing(at(path, "event")))?;
        RuntimeEvent::from_value(event, &at(path, "event"))?;
        decode(v, path)
    }
}

impl RuntimeEventBatch {
    /// Checks a batch: contract header plus at least one valid event.
    pub fn from_value(v: &Value) -> Res<RuntimeEventBatch> {
        let m = object(v, "")?;
        contract_header(m, "")?;
        let Some(Value::Array(events)) = present(m, "events") else {
            return Err(AppleseedError::Missing("events".into()));
        };
        if events.is_empty() {
            return Err(invalid("events".into(), "must contain at least one event"));
        }
        for (i, e) in events.iter().enumerate() {
            RuntimeEvent::from_value(e, &format!("events[{i}]"))?;
        }
        decode(v, "")
    }

    /// One envelope per event, carrying the batch header. `envelope_id` stays
    /// unset: the ingest assigns it.
    pub fn into_envelopes(self) -> Vec<RuntimeEventEnvelope> {
        let RuntimeEventBatch {
            contract_name,
            contract_version,
            source,
            metadata,
            events,
        } = self;
        events
            .into_iter()
            .map(|event| RuntimeEventEnvelope {
                contract_name: contract_name.clone(),
                contract_version: contract_version.clone(),
                envelope_id: None,
                recorded_at: None,
                source: source.clone(),
                metadata: metadata.clone(),
                event,
            })
            .collect()
    }
}

impl RuntimePayload {
    /// A single envelope, a JSON list of envelopes, or a batch object.
    pub fn from_value(v: &Value) -> Res<RuntimePayload> {
        match v {
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(invalid("payload".into(), "the list of envelopes is empty"));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, e)| RuntimeEventEnvelope::from_value(e, &format!("[{i}]")))
                    .collect::<Res<Vec<_>>>()
                    .map(RuntimePayload::List)
            }
            Value::Object(m) if m.contains_key("events") => {
                RuntimeEventBatch::from_value(v).map(RuntimePayload::Batch)
            }
            Value::Object(m) if m.contains_key("artifact_kind") => Err(invalid(
                "artifact_kind".into(),
                "an operator-session artifact goes through openclaw-import, not event ingest",
            )),
            Value::Object(_) => {
                RuntimeEventEnvelope::from_value(v, "").map(|e| RuntimePayload::Single(Box::new(e)))
            }
            _ => Err(AppleseedError::NotAnObject("payload".into())),
        }
    }

    /// Every event as its own envelope, in input order.
    pub fn into_envelopes(self) -> Vec<RuntimeEventEnvelope> {
        match self {
            RuntimePayload::Single(e) => vec![*e],
            RuntimePayload::List(list) => list,
            RuntimePayload::Batch(b) => b.into_envelopes(),
        }
    }
}

// --- operator-session artifact ---------------------------------------------

/// The artifact `openclaw-import` adapts into envelopes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorSessionArtifact {
    pub artifact_kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
    pub session: OperatorSession,
    #[serde(default)]
    pub timeline: Vec<Checkpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<SessionHandoff>,
}

/// `session` of the artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorSession {
    pub session_id: String,
    pub task: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_skill_ids: Option<Vec<String>>,
}

/// A timeline checkpoint. Its `status` is free-form (e.g. `blocked`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_capabilities: Option<Vec<String>>,
}

/// The terminal outcome; present means a `session_feedback` is derived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    pub status: FeedbackStatus,
    pub score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Notes for the next operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionHandoff {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action: Option<String>,
}

impl OperatorSessionArtifact {
    /// Checks the artifact (kind, 1.x version, session, timeline, outcome).
    pub fn from_value(v: &Value) -> Res<OperatorSessionArtifact> {
        let m = object(v, "")?;
        let kind = req_str(m, "", "artifact_kind")?;
        if kind != ARTIFACT_KIND {
            return Err(AppleseedError::UnknownArtifactKind(kind.to_string()));
        }
        version(m, "", "schema_version", false)?;
        opt_str(m, "", "source")?;
        opt_time(m, "", "recorded_at")?;
        let s = object(
            present(m, "session").ok_or_else(|| AppleseedError::Missing("session".into()))?,
            "session",
        )?;
        req_str(s, "session", "session_id")?;
        req_str(s, "session", "task")?;
        opt_time(s, "session", "started_at")?;
        opt_str(s, "session", "operator")?;
        opt_str_list(s, "session", "selected_skill_ids")?;
        match present(m, "timeline") {
            None => {}
            Some(Value::Array(items)) => {
                for (i, c) in items.iter().enumerate() {
                    let path = format!("timeline[{i}]");
                    let c = object(c, &path)?;
                    opt_str(c, &path, "checkpoint_id")?;
                    opt_time(c, &path, "occurred_at")?;
                    req_str(c, &path, "step")?;
                    opt_str(c, &path, "status")?;
                    opt_str_list(c, &path, "missing_capabilities")?;
                }
            }
            Some(_) => return Err(invalid("timeline".into(), "must be a list of checkpoints")),
        }
        if let Some(o) = present(m, "outcome") {
            let o = object(o, "outcome")?;
            opt_time(o, "outcome", "occurred_at")?;
            feedback(o, "outcome", true)?;
        }
        if let Some(h) = present(m, "handoff") {
            let h = object(h, "handoff")?;
            opt_str(h, "handoff", "summary")?;
            opt_str(h, "handoff", "next_action")?;
        }
        decode(v, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::put;
    use serde_json::json;

    fn envelope() -> Value {
        serde_json::from_str(include_str!("../tests/fixtures/appleseed/envelope.json")).unwrap()
    }

    fn batch() -> Value {
        serde_json::from_str(include_str!("../tests/fixtures/appleseed/batch.json")).unwrap()
    }

    fn artifact() -> Value {
        serde_json::from_str(include_str!(
            "../tests/fixtures/appleseed/operator-session.json"
        ))
        .unwrap()
    }

    #[test]
    fn contract_examples_parse() {
        let p = RuntimePayload::from_value(&envelope()).unwrap();
        let envs = p.into_envelopes();
        assert_eq!(envs.len(), 1);
        assert_eq!(envs[0].event.status, Some(FeedbackStatus::Failure));
        assert_eq!(serde_json::to_value(&envs[0]).unwrap(), envelope());

        let envs = RuntimePayload::from_value(&batch())
            .unwrap()
            .into_envelopes();
        assert_eq!(envs.len(), 2);
        assert_eq!(envs[0].event.event_kind, EventKind::SessionStarted);
        assert_eq!(envs[1].source.as_deref(), Some("openclaw-local"));

        let list = json!([envelope(), envelope()]);
        assert_eq!(
            RuntimePayload::from_value(&list)
                .unwrap()
                .into_envelopes()
                .len(),
            2
        );

        let a = OperatorSessionArtifact::from_value(&artifact()).unwrap();
        assert_eq!(a.timeline[0].status.as_deref(), Some("blocked"));
        assert_eq!(
            a.outcome.as_ref().map(|o| o.status),
            Some(FeedbackStatus::Failure)
        );
        assert_eq!(serde_json::to_value(&a).unwrap(), artifact());
    }

    #[test]
    fn versions() {
        for ok in ["1", "1.0", "1.1", "1.2.3"] {
            assert!(is_supported_version(ok), "{ok}");
        }
        for bad in ["2.0", "0.9", "1.x", "", "v1", "1..0"] {
            assert!(!is_supported_version(bad), "{bad}");
        }
        assert!(is_iso8601("2026-03-13T18:22:41+00:00"));
        assert!(is_iso8601("2026-03-13T18:22:41"));
        assert!(!is_iso8601("13/03/2026"));
    }

    #[test]
    fn rejections_are_typed() {
        use AppleseedError::*;
        let set = |ptr: &str, v: Value| {
            let mut d = envelope();
            put(&mut d, ptr, v);
            RuntimePayload::from_value(&d).unwrap_err()
        };
        let drop = |key: &str| {
            let mut d = envelope();
            d["event"].as_object_mut().unwrap().remove(key);
            RuntimePayload::from_value(&d).unwrap_err()
        };
        assert_eq!(
            set("/contract_name", json!("other")),
            UnknownContract("other".into())
        );
        assert!(matches!(
            set("/contract_version", json!("2.0")),
            UnsupportedVersion { .. }
        ));
        assert!(matches!(
            set("/event/schema_version", json!("2.1")),
            UnsupportedVersion { .. }
        ));
        assert_eq!(
            set("/event/event_kind", json!("session_ended")),
            UnknownEventKind("session_ended".into())
        );
        assert_eq!(drop("session_id"), Missing("event.session_id".into()));
        assert_eq!(drop("task"), Missing("event.task".into()));
        assert_eq!(drop("score"), Missing("event.score".into()));
        assert_eq!(drop("status"), Missing("event.status".into()));
        assert!(matches!(set("/event/score", json!(1.5)), Invalid { .. }));
        assert!(matches!(set("/event/score", json!(-0.1)), Invalid { .. }));
        assert!(matches!(set("/event/score", json!("0.5")), Invalid { .. }));
        assert!(matches!(set("/event/status", json!("ok")), Invalid { .. }));
        assert!(matches!(
            set("/event/session_id", json!("")),
            Invalid { .. }
        ));
        assert!(matches!(
            set("/event/occurred_at", json!("later")),
            Invalid { .. }
        ));
        assert!(matches!(set("/event/steps", json!([1])), Invalid { .. }));
        assert!(matches!(set("/metadata", json!([])), Invalid { .. }));
        assert!(matches!(set("/event", json!("x")), NotAnObject(_)));
        let err = set("/event/score", json!(2));
        assert!(err.to_string().contains("event.score"), "{err}");

        let mut b = batch();
        b["events"][0]["event_kind"] = json!("bogus");
        assert!(matches!(
            RuntimePayload::from_value(&b),
            Err(UnknownEventKind(_))
        ));
        b["events"] = json!([]);
        assert!(RuntimePayload::from_value(&b).is_err());
        assert!(RuntimePayload::from_value(&json!([])).is_err());
        assert!(RuntimePayload::from_value(&json!(3)).is_err());
        assert!(RuntimePayload::from_value(&artifact()).is_err());
        // session_started needs no status/score.
        let mut d = envelope();
        d["event"] = batch()["events"][0].clone();
        RuntimePayload::from_value(&d).unwrap();
    }

    #[test]
    fn artifact_rejections() {
        let mutate = |f: &dyn Fn(&mut Value)| {
            let mut a = artifact();
            f(&mut a);
            OperatorSessionArtifact::from_value(&a)
        };
        assert!(matches!(
            mutate(&|a| a["artifact_kind"] = json!("x")),
            Err(AppleseedError::UnknownArtifactKind(_))
        ));
        assert!(matches!(
            mutate(&|a| a["schema_version"] = json!("3.0")),
            Err(AppleseedError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            mutate(&|a| { a["session"].as_object_mut().unwrap().remove("task"); }),
            Err(AppleseedError::Missing(f)) if f == "session.task"
        ));
        assert!(mutate(&|a| a["outcome"]["score"] = json!(3)).is_err());
        assert!(mutate(&|a| a["outcome"]["status"] = json!("done")).is_err());
        assert!(
            mutate(&|a| {
                a["timeline"][0].as_object_mut().unwrap().remove("step");
            })
            .is_err()
        );
        assert!(mutate(&|a| a["timeline"] = json!({})).is_err());
        assert!(mutate(&|a| a["handoff"] = json!("x")).is_err());
        let minimal = mutate(&|a| {
            let o = a.as_object_mut().unwrap();
            for k in ["timeline", "outcome", "handoff", "schema_version"] {
                o.remove(k);
            }
        })
        .unwrap();
        assert!(minimal.timeline.is_empty() && minimal.outcome.is_none());
    }
}
