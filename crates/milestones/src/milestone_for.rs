//! The milestone a ledger event becomes. Deterministic: the same source event
//! always maps to the same milestone and idempotency key, so a resend is a
//! `duplicate` at the receiver, never a second milestone.

use garrison_contracts::ironclaw::{EventType, Severity};
use garrison_contracts::milestone::{
    Evidence, EvidenceType, MilestoneEvent, MilestoneSource, RiskStatus,
};
use garrison_ledger::Record;
use serde_json::{Value, json};

/// The event types that become milestones.
pub const SOURCE_TYPES: &[EventType] = &[
    EventType::RunCompleted,
    EventType::RunFailed,
    EventType::Integrated,
    EventType::EscalationRaised,
];

/// Whether `rec` becomes a milestone.
pub fn is_source(rec: &Record) -> bool {
    SOURCE_TYPES.contains(&rec.event_type)
}

/// `garrison:<source event_id>`.
pub fn idempotency_key(source_event_id: &str) -> String {
    format!("garrison:{source_event_id}")
}

/// The milestone for a source event; `None` for any other event type.
pub fn milestone_for(rec: &Record) -> Option<MilestoneEvent> {
    let run = rec.run_id.as_deref().unwrap_or("?");
    let detail = text(&rec.payload, &["summary", "reason", "message", "error"]);
    let with_detail = |base: String| match &detail {
        Some(d) => format!("{base}: {d}"),
        None => base,
    };
    let (claim, next_action, risk) = match rec.event_type {
        EventType::RunCompleted => (
            with_detail(format!("Run {run} completed")),
            "Review the run's results and integrate its changes.".to_string(),
            RiskStatus::Completed,
        ),
        EventType::RunFailed => (
            with_detail(format!("Run {run} failed")),
            "Investigate the failure, then reissue the failed orders or re-plan the run."
                .to_string(),
            RiskStatus::AtRisk,
        ),
        EventType::Integrated => (
            with_detail(format!(
                "Run {run} was integrated into the theater's mainline"
            )),
            "Verify the mainline and close out the run.".to_string(),
            RiskStatus::Completed,
        ),
        EventType::EscalationRaised => {
            let critical = rec.payload.get("severity").and_then(Value::as_str)
                == Some(severity_name(Severity::Critical));
            (
                with_detail(format!("Escalation raised on run {run}")),
                "An operator must acknowledge the escalation and decide how to proceed."
                    .to_string(),
                if critical {
                    RiskStatus::Blocked
                } else {
                    RiskStatus::AtRisk
                },
            )
        }
        _ => return None,
    };
    let mut evidence = vec![Evidence {
        kind: EvidenceType::Log,
        path: format!("ledger/events/{}", rec.seq),
        summary: format!("{} event {} at {}", rec.event_type, rec.event_id, rec.ts),
        reference: None,
    }];
    if rec.event_type == EventType::Integrated
        && let Some(sha) = text(&rec.payload, &["commit_sha"])
    {
        evidence.push(Evidence {
            kind: EvidenceType::Commit,
            path: sha.clone(),
            summary: format!("mainline commit of run {run}"),
            reference: Some(sha),
        });
    }
    Some(MilestoneEvent {
        milestone_id: rec.event_id.clone(),
        timestamp_utc: rec.ts.clone(),
        scope: scope(rec),
        claim,
        evidence,
        risk_status: risk,
        next_action,
        source: MilestoneSource::Orchestrator,
    })
}

/// The ingest body for `event`, stamped with `sent_at`.
pub fn ingest_body(source_event_id: &str, event: &MilestoneEvent, sent_at: &str) -> Value {
    json!({
        "idempotencyKey": idempotency_key(source_event_id),
        "sentAtUtc": sent_at,
        "event": event,
    })
}

/// `theater:<id>/run:<id>`, whichever ids the event has; the garrison otherwise.
fn scope(rec: &Record) -> String {
    let parts: Vec<String> = [("theater", &rec.theater_id), ("run", &rec.run_id)]
        .into_iter()
        .filter_map(|(k, v)| {
            v.as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(|s| format!("{k}:{s}"))
        })
        .collect();
    if parts.is_empty() {
        format!("garrison:{}", rec.garrison_id)
    } else {
        parts.join("/")
    }
}

/// The first non-blank string among `keys` of the payload.
fn text(payload: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .filter_map(|k| payload.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .find(|s| !s.is_empty())
        .map(str::to_string)
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Low => "LOW",
        Severity::Medium => "MEDIUM",
        Severity::High => "HIGH",
        Severity::Critical => "CRITICAL",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use garrison_contracts::milestone::MilestoneEnvelope;

    fn record(event_type: EventType, payload: Value) -> Record {
        Record {
            seq: 42,
            event_id: "01JSRC".into(),
            ts: "2026-02-28T12:34:56.000Z".into(),
            event_type,
            garrison_id: "local".into(),
            theater_id: Some("th-1".into()),
            run_id: Some("run-1".into()),
            order_id: None,
            unit_id: None,
            payload,
            stream: "run:run-1".into(),
            stream_version: 3,
        }
    }

    fn envelope(rec: &Record) -> MilestoneEnvelope {
        let event = milestone_for(rec).unwrap();
        let body = ingest_body(&rec.event_id, &event, "2026-02-28T12:35:00.000Z");
        MilestoneEnvelope::from_value(&body).unwrap()
    }

    #[test]
    fn every_source_type_maps_to_a_valid_deterministic_milestone() {
        for t in SOURCE_TYPES {
            let rec = record(*t, json!({}));
            let env = envelope(&rec);
            assert_eq!(env.idempotency_key, "garrison:01JSRC");
            assert_eq!(env.event.milestone_id, "01JSRC");
            assert_eq!(env.event.timestamp_utc, rec.ts);
            assert_eq!(env.event.scope, "theater:th-1/run:run-1");
            assert_eq!(env.event.source, MilestoneSource::Orchestrator);
            assert_eq!(env.event.evidence[0].path, "ledger/events/42");
            assert_eq!(env.event.evidence[0].kind, EvidenceType::Log);
            assert_eq!(milestone_for(&rec), milestone_for(&rec));
        }
    }

    #[test]
    fn risk_status_per_type() {
        let risk = |t, p| milestone_for(&record(t, p)).unwrap().risk_status;
        assert_eq!(
            risk(EventType::RunCompleted, json!({})),
            RiskStatus::Completed
        );
        assert_eq!(risk(EventType::RunFailed, json!({})), RiskStatus::AtRisk);
        assert_eq!(
            risk(EventType::Integrated, json!({})),
            RiskStatus::Completed
        );
        assert_eq!(
            risk(EventType::EscalationRaised, json!({"severity": "HIGH"})),
            RiskStatus::AtRisk
        );
        assert_eq!(
            risk(EventType::EscalationRaised, json!({"severity": "CRITICAL"})),
            RiskStatus::Blocked
        );
    }

    #[test]
    fn integrated_cites_its_commit_and_details_reach_the_claim() {
        let rec = record(
            EventType::Integrated,
            json!({"commit_sha": "abc123", "summary": "merged 3 orders"}),
        );
        let env = envelope(&rec);
        assert_eq!(env.event.evidence.len(), 2);
        assert_eq!(env.event.evidence[1].kind, EvidenceType::Commit);
        assert_eq!(env.event.evidence[1].reference.as_deref(), Some("abc123"));
        assert!(
            env.event.claim.ends_with("merged 3 orders"),
            "{}",
            env.event.claim
        );
    }

    #[test]
    fn other_events_and_missing_ids() {
        assert!(milestone_for(&record(EventType::RunCreated, json!({}))).is_none());
        let mut rec = record(EventType::RunFailed, json!({}));
        rec.theater_id = None;
        rec.run_id = None;
        assert_eq!(envelope(&rec).event.scope, "garrison:local");
    }
}
