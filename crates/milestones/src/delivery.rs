//! The delivery state machine, pure: what a `MILESTONE_DELIVERY` step says,
//! what an answer means, and what to do next. The outbox does the I/O.
//!
//! A delivery is the stream `delivery:<source event_id>:<target url>`:
//! `sending` (before every attempt), then `delivered` | `duplicate` |
//! `retry` | `rejected` | `dead-letter`.

use std::collections::HashMap;
use std::time::Duration;

use garrison_contracts::ironclaw::EventType;
use garrison_ledger::Record;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The ledger type of every delivery step.
pub const DELIVERY_TYPE: EventType = EventType::MilestoneDelivery;

/// The stream holding the delivery of one source event to one target.
pub fn stream_name(source_event_id: &str, target: &str) -> String {
    format!("delivery:{source_event_id}:{target}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryState {
    Sending,
    Delivered,
    Duplicate,
    Retry,
    Rejected,
    DeadLetter,
}

impl DeliveryState {
    /// Nothing more will be sent.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryState::Delivered
                | DeliveryState::Duplicate
                | DeliveryState::Rejected
                | DeliveryState::DeadLetter
        )
    }
}

/// The payload of a `MILESTONE_DELIVERY` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStep {
    pub source_event_id: String,
    pub target: String,
    pub attempt: u32,
    pub state: DeliveryState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub idempotency_key: String,
    pub milestone_id: String,
}

impl DeliveryStep {
    pub fn from_record(rec: &Record) -> Option<DeliveryStep> {
        if rec.event_type != DELIVERY_TYPE {
            return None;
        }
        serde_json::from_value(rec.payload.clone()).ok()
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub state: DeliveryState,
    pub http_status: Option<u16>,
    pub reason: Option<String>,
}

/// Reads the receiver's answer (`Err`: no answer, with why). 2xx `duplicate`
/// is a duplicate, other 2xx delivered unless it says `ok:false`;
/// 5xx/408/429 and no answer are worth retrying; any other status is final.
pub fn classify(answer: Result<(u16, &[u8]), String>) -> Outcome {
    let (status, body) = match answer {
        Ok(a) => a,
        Err(reason) => {
            return Outcome {
                state: DeliveryState::Retry,
                http_status: None,
                reason: Some(reason),
            };
        }
    };
    let doc: Option<Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| doc.as_ref().and_then(|d| d.get(k)).cloned();
    let said = field("reason")
        .and_then(|r| r.as_str().map(str::to_string))
        .or_else(|| {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            Some(text).filter(|t| !t.trim().is_empty())
        });
    let state = match status {
        200..=299 if field("status").as_ref().and_then(Value::as_str) == Some("duplicate") => {
            DeliveryState::Duplicate
        }
        200..=299 if field("ok") == Some(Value::Bool(false)) => DeliveryState::Rejected,
        200..=299 => DeliveryState::Delivered,
        408 | 429 | 500..=599 => DeliveryState::Retry,
        _ => DeliveryState::Rejected,
    };
    let reason = match state {
        DeliveryState::Delivered | DeliveryState::Duplicate => None,
        _ => said.or_else(|| Some(format!("HTTP {status}"))),
    };
    Outcome {
        state,
        http_status: Some(status),
        reason,
    }
}

/// A retryable outcome of the last allowed attempt becomes `dead-letter`.
pub fn finish(outcome: Outcome, attempt: u32, max_attempts: u32) -> Outcome {
    if outcome.state == DeliveryState::Retry && attempt >= max_attempts {
        let why = outcome.reason.as_deref().unwrap_or("no answer");
        return Outcome {
            state: DeliveryState::DeadLetter,
            reason: Some(format!("gave up after {attempt} attempts: {why}")),
            ..outcome
        };
    }
    outcome
}

/// `base × 2^(attempt-1) × (1 + jitter)`, `jitter` in [-0.5, 0.5].
pub fn backoff(base: Duration, attempt: u32, jitter: f64) -> Duration {
    let factor = 2f64.powi(i32::try_from(attempt.saturating_sub(1).min(20)).unwrap_or(20));
    base.mul_f64(factor * (1.0 + jitter.clamp(-0.5, 0.5)))
}

/// The last step of a delivery as the ledger has it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Stream version after the last step (0: nothing yet).
    pub version: i64,
    pub last: Option<DeliveryStep>,
    pub updated_at: Option<jiff::Timestamp>,
}

/// What a delivery needs next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Send attempt `attempt`, not before `not_before` (`None`: now).
    Send {
        attempt: u32,
        not_before: Option<jiff::Timestamp>,
    },
    /// A retry is left after the last allowed attempt: record `dead-letter`.
    GiveUp {
        attempt: u32,
    },
    Done,
}

/// Timing rules `next` applies.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_attempts: u32,
    pub backoff: Duration,
    /// How long a `sending` step may stay last before it counts as a crash
    /// mid-send (longer than any send can take, so a live sender is never
    /// raced).
    pub lease: Duration,
}

/// The next move for a delivery, `jitter` in [-0.5, 0.5].
pub fn next(p: &Progress, policy: &Policy, jitter: f64) -> Next {
    let Some(last) = &p.last else {
        return Next::Send {
            attempt: 1,
            not_before: None,
        };
    };
    let after = |d: Duration| {
        p.updated_at
            .and_then(|t| jiff::SignedDuration::try_from(d).ok().map(|d| (t, d)))
            .and_then(|(t, d)| t.checked_add(d).ok())
    };
    match last.state {
        s if s.is_final() => Next::Done,
        // Sent or not, nobody recorded an answer: send again (at least once).
        DeliveryState::Sending => Next::Send {
            attempt: last.attempt + 1,
            not_before: after(policy.lease),
        },
        _ if last.attempt >= policy.max_attempts => Next::GiveUp {
            attempt: last.attempt,
        },
        _ => Next::Send {
            attempt: last.attempt + 1,
            not_before: after(backoff(policy.backoff, last.attempt, jitter)),
        },
    }
}

/// One delivery as `GET /api/milestones/deliveries` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliverySummary {
    pub source_event_id: String,
    pub target: String,
    pub state: DeliveryState,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reason: Option<String>,
    pub updated_at: String,
    #[serde(skip)]
    seq: i64,
}

/// The latest state of every delivery in `records`, newest first.
pub fn summarize(records: &[Record]) -> Vec<DeliverySummary> {
    let mut by_stream: HashMap<&str, DeliverySummary> = HashMap::new();
    for rec in records {
        let Some(step) = DeliveryStep::from_record(rec) else {
            continue;
        };
        let s = by_stream
            .entry(rec.stream.as_str())
            .or_insert_with(|| DeliverySummary {
                source_event_id: step.source_event_id.clone(),
                target: step.target.clone(),
                state: step.state,
                attempts: 0,
                last_http_status: None,
                last_reason: None,
                updated_at: rec.ts.clone(),
                seq: rec.seq,
            });
        if rec.seq >= s.seq {
            s.state = step.state;
            s.updated_at = rec.ts.clone();
            s.seq = rec.seq;
        }
        s.attempts = s.attempts.max(step.attempt);
        if step.http_status.is_some() {
            s.last_http_status = step.http_status;
        }
        if step.reason.is_some() {
            s.last_reason = step.reason;
        }
    }
    let mut out: Vec<DeliverySummary> = by_stream.into_values().collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.seq));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step(attempt: u32, state: DeliveryState) -> DeliveryStep {
        DeliveryStep {
            source_event_id: "src".into(),
            target: "http://t/ingest".into(),
            attempt,
            state,
            http_status: None,
            reason: None,
            idempotency_key: "garrison:src".into(),
            milestone_id: "src".into(),
        }
    }

    fn progress(attempt: u32, state: DeliveryState) -> Progress {
        Progress {
            version: 1,
            last: Some(step(attempt, state)),
            updated_at: Some("2026-01-01T00:00:00Z".parse().unwrap()),
        }
    }

    const POLICY: Policy = Policy {
        max_attempts: 3,
        backoff: Duration::from_millis(500),
        lease: Duration::from_secs(20),
    };

    #[test]
    fn answers_are_classified() {
        let c = |s: u16, b: &str| classify(Ok((s, b.as_bytes()))).state;
        assert_eq!(
            c(200, r#"{"ok":true,"status":"accepted"}"#),
            DeliveryState::Delivered
        );
        assert_eq!(
            c(200, r#"{"ok":true,"status":"duplicate"}"#),
            DeliveryState::Duplicate
        );
        assert_eq!(
            c(200, r#"{"ok":false,"status":"rejected"}"#),
            DeliveryState::Rejected
        );
        assert_eq!(c(503, ""), DeliveryState::Retry);
        assert_eq!(c(500, "boom"), DeliveryState::Retry);
        assert_eq!(c(408, ""), DeliveryState::Retry);
        assert_eq!(c(429, ""), DeliveryState::Retry);
        assert_eq!(c(400, ""), DeliveryState::Rejected);
        assert_eq!(c(401, ""), DeliveryState::Rejected);
        assert_eq!(c(302, ""), DeliveryState::Rejected);
        let o = classify(Ok((400, br#"{"ok":false,"reason":"bad event"}"#)));
        assert_eq!(
            (o.http_status, o.reason.as_deref()),
            (Some(400), Some("bad event"))
        );
        let o = classify(Err("connection refused".into()));
        assert_eq!(o.state, DeliveryState::Retry);
        assert_eq!(o.http_status, None);
    }

    #[test]
    fn the_last_retry_is_a_dead_letter() {
        let retry = classify(Ok((503, b"")));
        assert_eq!(finish(retry.clone(), 2, 3).state, DeliveryState::Retry);
        let dead = finish(retry, 3, 3);
        assert_eq!(dead.state, DeliveryState::DeadLetter);
        assert!(dead.reason.unwrap().contains("after 3 attempts"));
        let rejected = classify(Ok((400, b"")));
        assert_eq!(finish(rejected, 3, 3).state, DeliveryState::Rejected);
    }

    #[test]
    fn backoff_doubles_within_its_jitter() {
        let base = Duration::from_millis(500);
        assert_eq!(backoff(base, 1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(base, 2, 0.0), Duration::from_millis(1000));
        assert_eq!(backoff(base, 3, 0.0), Duration::from_millis(2000));
        assert_eq!(backoff(base, 2, -0.5), Duration::from_millis(500));
        assert_eq!(backoff(base, 2, 0.5), Duration::from_millis(1500));
        assert_eq!(backoff(base, 2, 9.0), Duration::from_millis(1500));
        assert!(backoff(base, u32::MAX, 0.0) > Duration::ZERO);
    }

    #[test]
    fn next_moves() {
        assert_eq!(
            next(&Progress::default(), &POLICY, 0.0),
            Next::Send {
                attempt: 1,
                not_before: None
            }
        );
        let t0: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let at = |ms: i64| {
            Some(
                t0.checked_add(jiff::SignedDuration::from_millis(ms))
                    .unwrap(),
            )
        };
        assert_eq!(
            next(&progress(1, DeliveryState::Retry), &POLICY, 0.0),
            Next::Send {
                attempt: 2,
                not_before: at(500)
            }
        );
        assert_eq!(
            next(&progress(2, DeliveryState::Retry), &POLICY, 0.0),
            Next::Send {
                attempt: 3,
                not_before: at(1000)
            }
        );
        assert_eq!(
            next(&progress(3, DeliveryState::Retry), &POLICY, 0.0),
            Next::GiveUp { attempt: 3 }
        );
        // A crash mid-send: resend once the lease is over, even past the limit.
        assert_eq!(
            next(&progress(3, DeliveryState::Sending), &POLICY, 0.0),
            Next::Send {
                attempt: 4,
                not_before: at(20_000)
            }
        );
        for s in [
            DeliveryState::Delivered,
            DeliveryState::Duplicate,
            DeliveryState::Rejected,
            DeliveryState::DeadLetter,
        ] {
            assert_eq!(next(&progress(1, s), &POLICY, 0.0), Next::Done);
        }
    }

    #[test]
    fn summaries_keep_the_latest_state_newest_first() {
        let rec = |seq: i64, stream: &str, s: DeliveryStep| Record {
            seq,
            event_id: format!("e{seq}"),
            ts: format!("2026-01-01T00:00:0{seq}.000Z"),
            event_type: DELIVERY_TYPE,
            garrison_id: "local".into(),
            theater_id: None,
            run_id: None,
            order_id: None,
            unit_id: None,
            payload: serde_json::to_value(s).unwrap(),
            stream: stream.into(),
            stream_version: seq,
        };
        let mut failed = step(1, DeliveryState::Retry);
        failed.http_status = Some(503);
        failed.reason = Some("busy".into());
        let mut other = step(1, DeliveryState::Sending);
        other.source_event_id = "src2".into();
        let records = vec![
            rec(1, "a", step(1, DeliveryState::Sending)),
            rec(2, "a", failed),
            rec(3, "b", other),
            rec(4, "a", step(2, DeliveryState::Sending)),
            rec(5, "a", step(2, DeliveryState::Delivered)),
        ];
        let out = summarize(&records);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].source_event_id, "src");
        assert_eq!(out[0].state, DeliveryState::Delivered);
        assert_eq!(out[0].attempts, 2);
        assert_eq!(out[0].last_http_status, Some(503));
        assert_eq!(out[0].updated_at, "2026-01-01T00:00:05.000Z");
        assert_eq!(out[1].state, DeliveryState::Sending);
        let v = serde_json::to_value(&out[1]).unwrap();
        assert_eq!(
            v,
            json!({"source_event_id": "src2", "target": "http://t/ingest", "state": "sending",
                   "attempts": 1, "updated_at": "2026-01-01T00:00:03.000Z"})
        );
    }
}
