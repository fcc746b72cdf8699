//! The feeds: patrols and escalations (duty officer, sentinel and observer
//! events), and milestones (the ingest's feed, its dead letter, and the
//! outbox's deliveries).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use garrison_contracts::ironclaw::EventType;
use garrison_ledger::{Query, Record};
use serde_json::Value;

use super::{Nav, Tab, clip, render, text, when};
use crate::AppState;
use crate::error::ErrorPage;

/// Newest events of each kind a feed reads.
const PER_KIND: i64 = 50;
/// Patrol ticks are frequent: only the newest few.
const TICKS: i64 = 15;
/// Newest delivery steps summarised into the deliveries table.
const DELIVERY_STEPS: i64 = 500;

/// One ledger event in a feed.
pub struct FeedRow {
    pub seq: i64,
    pub when: String,
    pub event_type: String,
    pub run_id: String,
    pub order_id: String,
    pub detail: String,
}

impl FeedRow {
    fn of(r: &Record) -> FeedRow {
        FeedRow {
            seq: r.seq,
            when: when(&r.ts),
            event_type: r.event_type.as_str().into(),
            run_id: r.run_id.clone().unwrap_or_default(),
            order_id: r.order_id.clone().unwrap_or_default(),
            detail: match &r.payload {
                Value::Object(m) if m.is_empty() => String::new(),
                p => text(Some(p), 300),
            },
        }
    }
}

/// The newest `limit` events of each type, merged newest first.
async fn newest(
    state: &AppState,
    types: &[EventType],
    limit: i64,
) -> garrison_ledger::Result<Vec<FeedRow>> {
    let mut all = Vec::new();
    for t in types {
        all.extend(
            state
                .ledger
                .read(&Query {
                    event_type: Some(*t),
                    newest_first: true,
                    limit: Some(limit),
                    ..Query::default()
                })
                .await?,
        );
    }
    all.sort_by_key(|r| std::cmp::Reverse(r.seq));
    all.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(all.iter().map(FeedRow::of).collect())
}

/// One table of the patrols page.
pub struct Section {
    pub id: &'static str,
    pub title: &'static str,
    pub empty: &'static str,
    pub rows: Vec<FeedRow>,
}

#[derive(Template)]
#[template(path = "dashboard/patrols.html")]
pub struct PatrolsPage {
    pub nav: Nav,
    pub sections: Vec<Section>,
}

/// `GET /dashboard/patrols`.
#[utoipa::path(
    get,
    path = "/dashboard/patrols",
    operation_id = "dashboard_patrols",
    tag = "dashboard",
    summary = "Patrols and escalations",
    responses(
        (status = 200, description = "Escalations, observer and recovery findings, the latest patrol ticks.", content_type = "text/html", body = String),
        ErrorPage,
    ),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn patrols(State(state): State<AppState>) -> Response {
    let escalations = newest(
        &state,
        &[EventType::EscalationRaised, EventType::EscalationAcked],
        PER_KIND,
    )
    .await;
    let findings = newest(
        &state,
        &[
            EventType::RecoveryRequired,
            EventType::RecoveryStarted,
            EventType::RecoveryCompleted,
            EventType::ServiceDegraded,
            EventType::ServiceRecovered,
        ],
        PER_KIND,
    )
    .await;
    let ticks = newest(&state, &[EventType::PatrolTick], TICKS).await;
    let (escalations, findings, ticks) = match (escalations, findings, ticks) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return super::ledger_error(Tab::Patrols, e);
        }
    };
    let sections = vec![
        Section {
            id: "escalations",
            title: "Escalations",
            empty: "No escalations: nothing has needed an operator.",
            rows: escalations,
        },
        Section {
            id: "findings",
            title: "Observer and recovery findings",
            empty: "No findings: no stuck order, missing AAR or degraded service was reported.",
            rows: findings,
        },
        Section {
            id: "ticks",
            title: "Latest patrol ticks",
            empty: "No patrol has run yet (the duty officer and observers tick every patrol interval).",
            rows: ticks,
        },
    ];
    render(
        StatusCode::OK,
        &PatrolsPage {
            nav: Nav::new(Tab::Patrols),
            sections,
        },
    )
}

pub struct Milestone {
    pub id: String,
    pub when: String,
    pub scope: String,
    pub claim: String,
    pub risk: String,
    pub source: String,
    pub next_action: String,
    pub evidence: usize,
}

pub struct DeadLetter {
    pub when: String,
    pub reason: String,
    pub key: String,
}

pub struct Delivery {
    pub source_event_id: String,
    pub target: String,
    pub state: String,
    pub attempts: String,
    pub last_http_status: String,
    pub last_reason: String,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "dashboard/milestones.html")]
pub struct MilestonesPage {
    pub nav: Nav,
    pub feed: Vec<Milestone>,
    pub dead_letter: Vec<DeadLetter>,
    pub deliveries: Vec<Delivery>,
    pub ingest_configured: bool,
}

/// `GET /dashboard/milestones`.
#[utoipa::path(
    get,
    path = "/dashboard/milestones",
    operation_id = "dashboard_milestones",
    tag = "dashboard",
    summary = "Milestones",
    responses(
        (status = 200, description = "The milestone feed, the dead letter and the outbox's deliveries.", content_type = "text/html", body = String),
        ErrorPage,
    ),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn milestones(State(state): State<AppState>) -> Response {
    let limit = i64::try_from(state.milestones.feed_limit).unwrap_or(PER_KIND);
    let received = state
        .ledger
        .read(&Query {
            event_type: Some(EventType::MilestoneReceived),
            newest_first: true,
            limit: Some(limit),
            ..Query::default()
        })
        .await;
    let dead = state
        .ledger
        .dead_letters("milestones", state.milestones.dead_letter_limit)
        .await;
    let steps = state
        .ledger
        .read(&Query {
            event_type: Some(EventType::MilestoneDelivery),
            newest_first: true,
            limit: Some(DELIVERY_STEPS),
            ..Query::default()
        })
        .await;
    let (received, dead, mut steps) = match (received, dead, steps) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return super::ledger_error(Tab::Milestones, e);
        }
    };
    steps.reverse();
    let feed = received
        .iter()
        .map(|r| {
            let ev = r.payload.get("event");
            let field = |k: &str| text(ev.and_then(|e| e.get(k)), 300);
            Milestone {
                id: field("milestoneId"),
                when: when(&field("timestampUtc")),
                scope: field("scope"),
                claim: field("claim"),
                risk: field("riskStatus"),
                source: field("source"),
                next_action: field("nextAction"),
                evidence: ev
                    .and_then(|e| e.get("evidence"))
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len),
            }
        })
        .collect();
    let dead_letter = dead
        .iter()
        .map(|d| DeadLetter {
            when: when(&text(d.get("timestampUtc"), 40)),
            reason: text(d.get("reason"), 300),
            key: text(d.get("idempotencyKey"), 120),
        })
        .collect();
    let deliveries = garrison_milestones::summarize(&steps)
        .iter()
        .filter_map(|s| serde_json::to_value(s).ok())
        .map(|d| Delivery {
            source_event_id: text(d.get("source_event_id"), 40),
            target: text(d.get("target"), 120),
            state: text(d.get("state"), 30),
            attempts: text(d.get("attempts"), 10),
            last_http_status: text(d.get("last_http_status"), 10),
            last_reason: clip(&text(d.get("last_reason"), 200), 200),
            updated: when(&text(d.get("updated_at"), 40)),
        })
        .collect();
    render(
        StatusCode::OK,
        &MilestonesPage {
            nav: Nav::new(Tab::Milestones),
            feed,
            dead_letter,
            deliveries,
            ingest_configured: state.milestones.secret.is_some(),
        },
    )
}
