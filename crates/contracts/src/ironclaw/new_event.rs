//! The body of `POST /events` (one item of `POST /events/batch`): an event as
//! a caller submits it, before the ledger numbers and stores it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::EventType;
use crate::check::parse_timestamp;

/// An event as a caller submits it. Everything the ledger can fill in is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewEvent {
    /// Idempotency key; a ULID is generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Event time (RFC 3339); the append time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    #[serde(rename = "type")]
    pub event_type: EventType,
    #[serde(default = "default_garrison")]
    pub garrison_id: String,
    #[serde(default)]
    pub theater_id: Option<String>,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub unit_id: Option<String>,
    #[serde(default = "empty_object")]
    pub payload: Value,
    /// The stream this event belongs to; derived from the ids when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Compare-and-append: the stream version the caller last saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<i64>,
}

fn default_garrison() -> String {
    "local".to_string()
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

impl NewEvent {
    /// A bare event of `event_type` in garrison `local`.
    pub fn new(event_type: EventType) -> Self {
        NewEvent {
            event_id: None,
            ts: None,
            event_type,
            garrison_id: default_garrison(),
            theater_id: None,
            run_id: None,
            order_id: None,
            unit_id: None,
            payload: empty_object(),
            stream: None,
            expected_version: None,
        }
    }

    pub fn event_id(mut self, id: impl Into<String>) -> Self {
        self.event_id = Some(id.into());
        self
    }
    pub fn theater(mut self, id: impl Into<String>) -> Self {
        self.theater_id = Some(id.into());
        self
    }
    pub fn run(mut self, id: impl Into<String>) -> Self {
        self.run_id = Some(id.into());
        self
    }
    pub fn order(mut self, id: impl Into<String>) -> Self {
        self.order_id = Some(id.into());
        self
    }
    pub fn unit(mut self, id: impl Into<String>) -> Self {
        self.unit_id = Some(id.into());
        self
    }
    pub fn payload(mut self, payload: Value) -> Self {
        self.payload = payload;
        self
    }
    pub fn expect_version(mut self, version: i64) -> Self {
        self.expected_version = Some(version);
        self
    }
    pub fn in_stream(mut self, stream: impl Into<String>) -> Self {
        self.stream = Some(stream.into());
        self
    }

    /// The stream the event belongs to: the order's, else the run's, else the garrison's.
    pub fn stream_name(&self) -> String {
        if let Some(s) = &self.stream {
            return s.clone();
        }
        stream_for(
            &self.garrison_id,
            self.run_id.as_deref(),
            self.order_id.as_deref(),
        )
    }

    /// What the ledger checks before it accepts the event: well-formed
    /// `event_id`/`ts`, an object payload, and the ids a lifecycle event needs
    /// (an order event names its order, a run event its run).
    pub fn validate(&self) -> Result<(), String> {
        if self
            .event_id
            .as_deref()
            .is_some_and(|id| id.trim().is_empty())
        {
            return Err("event_id must not be blank".into());
        }
        if let Some(ts) = &self.ts
            && parse_timestamp(ts).is_none()
        {
            return Err(format!("ts `{ts}` is not an ISO-8601 UTC timestamp"));
        }
        if self.garrison_id.trim().is_empty() {
            return Err("garrison_id must not be blank".into());
        }
        if !self.payload.is_object() {
            return Err("payload must be a JSON object".into());
        }
        let blank = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
        if self.event_type.order_status().is_some() && blank(&self.order_id) {
            return Err(format!("{} needs a non-empty order_id", self.event_type));
        }
        if self.event_type.run_status().is_some() && blank(&self.run_id) {
            return Err(format!("{} needs a non-empty run_id", self.event_type));
        }
        if self.expected_version.is_some_and(|v| v < 0) {
            return Err("expected_version must be ≥ 0".into());
        }
        Ok(())
    }
}

/// The default stream name for a set of ids.
pub fn stream_for(garrison_id: &str, run_id: Option<&str>, order_id: Option<&str>) -> String {
    match (order_id, run_id) {
        (Some(o), _) if !o.is_empty() => format!("order:{o}"),
        (_, Some(r)) if !r.is_empty() => format!("run:{r}"),
        _ => format!("garrison:{garrison_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_form_and_rules() {
        let e: NewEvent = serde_json::from_value(json!({
            "type": "ORDER_STARTED", "garrison_id": "local", "theater_id": "demo",
            "run_id": "01J", "order_id": "01K", "unit_id": "assault_abc123", "payload": {"attempt": 1}
        }))
        .unwrap();
        e.validate().unwrap();
        assert_eq!(e.stream_name(), "order:01K");
        let typo: NewEvent = serde_json::from_value(json!({
            "type": "ORDER CLAIMED", "order_id": "o", "expected_version": 3
        }))
        .unwrap();
        assert_eq!(typo.event_type, EventType::OrderClaimed);
        assert_eq!(typo.garrison_id, "local");
        assert_eq!(
            serde_json::to_value(&typo).unwrap()["type"],
            json!("ORDER_CLAIMED")
        );
        let mut no_order = e.clone();
        no_order.order_id = None;
        assert!(no_order.validate().unwrap_err().contains("order_id"));
        let mut bad_ts = e.clone();
        bad_ts.ts = Some("now".into());
        assert!(bad_ts.validate().unwrap_err().contains("ts"));
        let mut bad_payload = e.clone();
        bad_payload.payload = json!([1]);
        assert!(bad_payload.validate().is_err());
        assert!(
            NewEvent::new(EventType::RunCompleted)
                .validate()
                .unwrap_err()
                .contains("run_id")
        );
        assert!(serde_json::from_value::<NewEvent>(json!({"type": "ORDER_EXPLODED"})).is_err());
        assert_eq!(
            NewEvent::new(EventType::PatrolTick).stream_name(),
            "garrison:local"
        );
        assert_eq!(
            NewEvent::new(EventType::RunUpdated).run("r").stream_name(),
            "run:r"
        );
    }
}
