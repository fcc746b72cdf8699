//! The ledger's record model (docs/interface.md "Core model").

use std::sync::{Mutex, PoisonError};

use garrison_contracts::ironclaw::EventType;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{LedgerError, Result};

pub use garrison_contracts::ironclaw::{NewEvent, stream_for};

/// Checks what the ledger needs before it accepts the event and fills in the
/// generated fields (`event_id`, `ts`).
/// `now` is the current time already formatted: a group formats it once for
/// all its events.
pub(crate) fn resolve(ev: NewEvent, now: &str) -> Result<Resolved> {
    ev.validate().map_err(LedgerError::Invalid)?;
    let stream = ev.stream_name();
    let fresh_id = ev.event_id.is_none();
    let event_id = ev.event_id.unwrap_or_else(new_event_id);
    let ts = match ev.ts {
        Some(ts) => format_ts(
            ts.parse::<jiff::Timestamp>()
                .map_err(|e| LedgerError::Invalid(format!("ts `{ts}` is not ISO-8601: {e}")))?,
        ),
        None => now.to_string(),
    };
    Ok(Resolved {
        record: Record {
            seq: 0,
            event_id,
            ts,
            event_type: ev.event_type,
            garrison_id: ev.garrison_id,
            theater_id: ev.theater_id,
            run_id: ev.run_id,
            order_id: ev.order_id,
            unit_id: ev.unit_id,
            payload: ev.payload,
            stream,
            stream_version: 0,
        },
        expected_version: ev.expected_version,
        fresh_id,
    })
}

/// A fresh event id. One monotonic generator makes them all, so ids made in
/// the same millisecond still sort in the order they were made: the
/// `event_id` index then grows at its right edge rather than splitting pages
/// at random points.
fn new_event_id() -> String {
    static GENERATOR: Mutex<ulid::Generator> = Mutex::new(ulid::Generator::new());
    let next = GENERATOR
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .generate();
    // Overflow of the random bits within one millisecond: a plain id.
    next.unwrap_or_else(|_| ulid::Ulid::new()).to_string()
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// At most this many events. Unbounded when `None`.
    pub limit: Option<i64>,
    /// Newest first instead of oldest first (with `limit`: the latest events).
    #[serde(default)]
    pub newest_first: bool,
}

impl Query {
    /// The ORDER_CREATED events of a run: its orders' specs, in plan order.
    pub fn orders_created_in(run_id: &str) -> Query {
        Query {
            run_id: Some(run_id.to_string()),
            event_type: Some(EventType::OrderCreated),
            ..Query::default()
        }
    }
}
