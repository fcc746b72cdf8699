//! Milestone ingest (milestone-ingest.md) with docs/interface.md's event validity rules.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::check::parse_timestamp;

/// The ingest request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MilestoneEnvelope {
    /// Idempotency key: a repeated key is a `duplicate`, never a second milestone.
    pub idempotency_key: String,
    /// When the sender sent it (informational; the signed header carries the checked time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at_utc: Option<String>,
    pub event: MilestoneEvent,
}

/// A milestone; also the feed item shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MilestoneEvent {
    pub milestone_id: String,
    pub timestamp_utc: String,
    pub scope: String,
    pub claim: String,
    pub evidence: Vec<Evidence>,
    pub risk_status: RiskStatus,
    pub next_action: String,
    #[serde(default)]
    pub source: MilestoneSource,
}

/// One `evidence[]` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evidence {
    #[serde(rename = "type")]
    pub kind: EvidenceType,
    pub path: String,
    pub summary: String,
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// `evidence[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum EvidenceType {
    Doc,
    Commit,
    Issue,
    Pr,
    Runbook,
    Metric,
    Log,
}

/// `riskStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum RiskStatus {
    OnTrack,
    AtRisk,
    Blocked,
    Completed,
}

/// `source` (default `orchestrator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum MilestoneSource {
    #[default]
    Orchestrator,
    Agent,
    Operator,
}

const EVIDENCE_TYPES: &[&str] = &["doc", "commit", "issue", "pr", "runbook", "metric", "log"];
const RISK_STATUSES: &[&str] = &["on-track", "at-risk", "blocked", "completed"];
const SOURCES: &[&str] = &["orchestrator", "agent", "operator"];

/// Why an ingest body was rejected (each is a 400 at the ingest endpoint).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MilestoneError {
    #[error("idempotencyKey is missing or blank")]
    MissingIdempotencyKey,
    #[error("invalid milestone event: {0}")]
    InvalidEvent(String),
}

/// The body's idempotency key, if present and not blank. Checked before the
/// signature, so it works on the raw body.
pub fn idempotency_key(body: &Value) -> Option<&str> {
    body.get("idempotencyKey")
        .and_then(Value::as_str)
        .filter(|k| !k.trim().is_empty())
}

impl MilestoneEnvelope {
    /// Parses and validates an ingest body.
    pub fn from_value(body: &Value) -> Result<MilestoneEnvelope, MilestoneError> {
        let key = idempotency_key(body).ok_or(MilestoneError::MissingIdempotencyKey)?;
        if let Some(v) = body.get("sentAtUtc").filter(|v| !v.is_null())
            && !v.is_string()
        {
            return Err(MilestoneError::InvalidEvent(
                "sentAtUtc must be a string".into(),
            ));
        }
        let event = body
            .get("event")
            .ok_or_else(|| MilestoneError::InvalidEvent("event is missing".into()))?;
        let event = MilestoneEvent::from_value(event).map_err(MilestoneError::InvalidEvent)?;
        Ok(MilestoneEnvelope {
            idempotency_key: key.to_string(),
            sent_at_utc: body
                .get("sentAtUtc")
                .and_then(Value::as_str)
                .map(str::to_string),
            event,
        })
    }

    /// Key non-blank and the event valid.
    pub fn validate(&self) -> Result<(), MilestoneError> {
        if self.idempotency_key.trim().is_empty() {
            return Err(MilestoneError::MissingIdempotencyKey);
        }
        self.event.validate().map_err(MilestoneError::InvalidEvent)
    }
}

impl MilestoneEvent {
    /// Checks raw JSON with a precise reason, then deserialises. Unknown extra
    /// fields are ignored.
    pub fn from_value(v: &Value) -> Result<MilestoneEvent, String> {
        let Some(obj) = v.as_object() else {
            return Err("event must be a JSON object".into());
        };
        let text = |k: &str| -> Result<(), String> {
            match obj.get(k) {
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(()),
                Some(Value::String(_)) => Err(format!("{k} must not be empty")),
                None | Some(Value::Null) => Err(format!("{k} is required")),
                Some(_) => Err(format!("{k} must be a string")),
            }
        };
        let one_of = |k: &str, allowed: &[&str], required: bool| -> Result<(), String> {
            match obj.get(k) {
                Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
                None | Some(Value::Null) if !required => Ok(()),
                None | Some(Value::Null) => Err(format!("{k} is required")),
                Some(other) => Err(format!(
                    "{k} must be one of {}, got {other}",
                    allowed.join("|")
                )),
            }
        };
        for k in ["milestoneId", "timestampUtc", "scope", "claim"] {
            text(k)?;
        }
        let Some(items) = obj.get("evidence").and_then(Value::as_array) else {
            return Err("evidence must be an array".into());
        };
        for (i, item) in items.iter().enumerate() {
            let Some(e) = item.as_object() else {
                return Err(format!("evidence[{i}] must be an object"));
            };
            match e.get("type").and_then(Value::as_str) {
                Some(t) if EVIDENCE_TYPES.contains(&t) => {}
                _ => {
                    return Err(format!(
                        "evidence[{i}].type must be one of {}",
                        EVIDENCE_TYPES.join("|")
                    ));
                }
            }
            for k in ["path", "summary"] {
                let blank = e
                    .get(k)
                    .and_then(Value::as_str)
                    .is_none_or(|s| s.trim().is_empty());
                if blank {
                    return Err(format!("evidence[{i}].{k} must be a non-empty string"));
                }
            }
            if e.get("ref").is_some_and(|r| !r.is_null() && !r.is_string()) {
                return Err(format!("evidence[{i}].ref must be a string"));
            }
        }
        one_of("riskStatus", RISK_STATUSES, true)?;
        text("nextAction")?;
        one_of("source", SOURCES, false)?;
        let event: MilestoneEvent = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
        event.validate()?;
        Ok(event)
    }

    /// docs/interface.md "Milestone signatures", as a human reason on failure.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("milestoneId", &self.milestone_id),
            ("scope", &self.scope),
            ("claim", &self.claim),
            ("nextAction", &self.next_action),
        ] {
            if value.trim().is_empty() {
                return Err(format!("{name} must not be empty"));
            }
        }
        if parse_timestamp(&self.timestamp_utc).is_none() {
            return Err(format!(
                "timestampUtc `{}` is not an ISO-8601 UTC timestamp",
                self.timestamp_utc
            ));
        }
        if self.evidence.is_empty() {
            return Err("evidence must have at least one item".into());
        }
        for (i, e) in self.evidence.iter().enumerate() {
            if e.path.trim().is_empty() {
                return Err(format!("evidence[{i}].path must not be empty"));
            }
            if e.summary.trim().is_empty() {
                return Err(format!("evidence[{i}].summary must not be empty"));
            }
        }
        Ok(())
    }
}

/// `{"ok":true,"status":"accepted"|"duplicate","milestoneId":…}` or
/// `{"ok":false,"status":"rejected","reason":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestResponse {
    pub ok: bool,
    pub status: IngestStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub milestone_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `status` of an ingest response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IngestStatus {
    Accepted,
    Duplicate,
    Rejected,
}

impl IngestResponse {
    /// `200 accepted`.
    pub fn accepted(milestone_id: impl Into<String>) -> Self {
        Self {
            ok: true,
            status: IngestStatus::Accepted,
            milestone_id: Some(milestone_id.into()),
            reason: None,
        }
    }

    /// `200 duplicate`: the key was seen before.
    pub fn duplicate(milestone_id: impl Into<String>) -> Self {
        Self {
            ok: true,
            status: IngestStatus::Duplicate,
            milestone_id: Some(milestone_id.into()),
            reason: None,
        }
    }

    /// A rejection with its reason.
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self {
            ok: false,
            status: IngestStatus::Rejected,
            milestone_id: None,
            reason: Some(reason.into()),
        }
    }
}

/// `GET /api/milestones/latest`: `{"ok":true,"items":[…]}`, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedResponse {
    pub ok: bool,
    pub items: Vec<MilestoneEvent>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::put;
    use serde_json::json;

    fn body() -> Value {
        json!({
            "idempotencyKey": "string",
            "sentAtUtc": "2026-02-28T12:34:56.000Z",
            "event": {
                "milestoneId": "string",
                "timestampUtc": "2026-02-28T12:34:56.000Z",
                "scope": "string",
                "claim": "string",
                "evidence": [{"type": "log", "path": "workspace/orchestrator_state.json", "summary": "runtime evidence"}],
                "riskStatus": "on-track",
                "nextAction": "string",
                "source": "orchestrator"
            }
        })
    }

    #[test]
    fn contract_example_round_trips() {
        let env = MilestoneEnvelope::from_value(&body()).unwrap();
        env.validate().unwrap();
        assert_eq!(env.event.risk_status, RiskStatus::OnTrack);
        assert_eq!(serde_json::to_value(&env).unwrap(), body());
    }

    #[test]
    fn source_defaults_and_ref_is_optional() {
        let mut b = body();
        b["event"].as_object_mut().unwrap().remove("source");
        b["event"]["evidence"][0]["ref"] = json!("abc123");
        let env = MilestoneEnvelope::from_value(&b).unwrap();
        assert_eq!(env.event.source, MilestoneSource::Orchestrator);
        assert_eq!(env.event.evidence[0].reference.as_deref(), Some("abc123"));
    }

    #[test]
    fn rejections_have_reasons() {
        assert_eq!(idempotency_key(&json!({"idempotencyKey": "  "})), None);
        let mut b = body();
        b["idempotencyKey"] = json!("");
        assert_eq!(
            MilestoneEnvelope::from_value(&b),
            Err(MilestoneError::MissingIdempotencyKey)
        );
        let cases: Vec<(&str, Value, &str)> = vec![
            ("/event/milestoneId", json!(""), "milestoneId"),
            ("/event/scope", json!(" "), "scope"),
            ("/event/claim", json!(3), "claim"),
            ("/event/nextAction", Value::Null, "nextAction"),
            ("/event/timestampUtc", json!("28/02/2026"), "timestampUtc"),
            ("/event/evidence", json!([]), "evidence"),
            ("/event/evidence", json!("x"), "evidence"),
            ("/event/evidence/0/type", json!("video"), "evidence[0].type"),
            ("/event/evidence/0/path", json!(""), "evidence[0].path"),
            (
                "/event/evidence/0/summary",
                json!(null),
                "evidence[0].summary",
            ),
            ("/event/evidence/0/ref", json!(1), "evidence[0].ref"),
            ("/event/riskStatus", json!("ON_TRACK"), "riskStatus"),
            ("/event/source", json!("bot"), "source"),
            ("/sentAtUtc", json!(5), "sentAtUtc"),
        ];
        for (ptr, value, needle) in cases {
            let mut b = body();
            put(&mut b, ptr, value);
            match MilestoneEnvelope::from_value(&b) {
                Err(MilestoneError::InvalidEvent(reason)) => {
                    assert!(reason.contains(needle), "{ptr}: {reason}")
                }
                other => panic!("{ptr}: {other:?}"),
            }
        }
        let mut b = body();
        b.as_object_mut().unwrap().remove("event");
        assert!(matches!(
            MilestoneEnvelope::from_value(&b),
            Err(MilestoneError::InvalidEvent(_))
        ));
    }

    #[test]
    fn typed_validation() {
        let mut env = MilestoneEnvelope::from_value(&body()).unwrap();
        env.event.evidence.clear();
        assert!(env.validate().is_err());
        env.idempotency_key = " ".into();
        assert_eq!(env.validate(), Err(MilestoneError::MissingIdempotencyKey));
    }

    #[test]
    fn responses() {
        assert_eq!(
            serde_json::to_value(IngestResponse::accepted("m1")).unwrap(),
            json!({"ok": true, "status": "accepted", "milestoneId": "m1"})
        );
        assert_eq!(
            serde_json::to_value(IngestResponse::duplicate("m1")).unwrap(),
            json!({"ok": true, "status": "duplicate", "milestoneId": "m1"})
        );
        assert_eq!(
            serde_json::to_value(IngestResponse::rejected("bad")).unwrap(),
            json!({"ok": false, "status": "rejected", "reason": "bad"})
        );
    }
}
