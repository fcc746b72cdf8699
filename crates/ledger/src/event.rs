//! The ledger's record model (DESIGN.md "Core model").

use garrison_contracts::ironclaw::EventType;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{LedgerError, Result};

/// An event as a caller submits it. Everything the ledger can fill in is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

    /// Checks what the ledger needs before it accepts the event and fills in
    /// generated fields (`event_id`, `ts`). Returns the resolved event.
    pub(crate) fn resolve(mut self, now: jiff::Timestamp) -> Result<Resolved> {
        let fresh_id = self.event_id.is_none();
        let event_id = match self.event_id.take() {
            Some(id) if id.trim().is_empty() => {
                return Err(LedgerError::Invalid("event_id must not be blank".into()));
            }
            Some(id) => id,
            None => ulid::Ulid::new().to_string(),
        };
        let ts = match self.ts.take() {
            Some(ts) => ts
                .parse::<jiff::Timestamp>()
                .map_err(|e| LedgerError::Invalid(format!("ts `{ts}` is not ISO-8601: {e}")))?,
            None => now,
        };
        if self.garrison_id.trim().is_empty() {
            return Err(LedgerError::Invalid("garrison_id must not be blank".into()));
        }
        if !self.payload.is_object() {
            return Err(LedgerError::Invalid("payload must be a JSON object".into()));
        }
        let needs = |what: &str, v: &Option<String>| match v {
            Some(s) if !s.trim().is_empty() => Ok(()),
            _ => Err(LedgerError::Invalid(format!(
                "{} needs a non-empty {what}",
                self.event_type
            ))),
        };
        if self.event_type.order_status().is_some() {
            needs("order_id", &self.order_id)?;
        }
        if self.event_type.run_status().is_some() {
            needs("run_id", &self.run_id)?;
        }
        if let Some(v) = self.expected_version
            && v < 0
        {
            return Err(LedgerError::Invalid("expected_version must be ≥ 0".into()));
        }
        let stream = self.stream_name();
        Ok(Resolved {
            record: Record {
                seq: 0,
                event_id,
                ts: format_ts(ts),
                event_type: self.event_type,
                garrison_id: self.garrison_id,
                theater_id: self.theater_id,
                run_id: self.run_id,
                order_id: self.order_id,
                unit_id: self.unit_id,
                payload: self.payload,
                stream,
                stream_version: 0,
            },
            expected_version: self.expected_version,
            fresh_id,
        })
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

/// RFC 3339 UTC with millisecond precision, the one format the ledger writes.
pub fn format_ts(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A validated event waiting for its sequence number and stream version.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub record: Record,
    pub expected_version: Option<i64>,
    /// The ledger generated `event_id` (a fresh ULID), so it cannot be a replay.
    pub fresh_id: bool,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Global sequence number, gap-free in commit order on each backend.
    pub seq: i64,
    pub event_id: String,
    pub ts: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub garrison_id: String,
    pub theater_id: Option<String>,
    pub run_id: Option<String>,
    pub order_id: Option<String>,
    pub unit_id: Option<String>,
    pub payload: Value,
    pub stream: String,
    /// Version of `stream` after this event (1 for a stream's first event).
    pub stream_version: i64,
}

/// The outcome of one append.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Appended {
    pub record: Record,
    /// True when the `event_id` already existed: `record` is the original.
    pub duplicate: bool,
}

/// A filter over the event log. All set fields must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Query {
    pub run_id: Option<String>,
    pub order_id: Option<String>,
    pub event_type: Option<EventType>,
    /// Only events with `seq > after_seq`.
    pub after_seq: Option<i64>,
    /// At most this many events (oldest first). Unbounded when `None`.
    pub limit: Option<i64>,
}
