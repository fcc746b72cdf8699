//! An order's page: its snapshot, event timeline, AAR and artifacts.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use garrison_contracts::ironclaw::EventType;
use garrison_ledger::{OrderSnapshot, Query, Record};
use serde_json::Value;

use super::{Nav, Tab, clip, render, short, text, when};
use crate::AppState;
use crate::error::ErrorPage;

/// The newest events of an order the timeline shows.
const TIMELINE: i64 = 500;

pub struct TimelineRow {
    pub seq: i64,
    pub when: String,
    pub event_type: String,
    pub detail: String,
}

pub struct Artifact {
    pub path: String,
    pub kind: String,
    pub extra: String,
}

/// The AAR the worker reported: its headline fields, then any others.
pub struct Aar {
    pub status: String,
    pub summary: String,
    pub path: String,
    pub commit: String,
    pub other: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "dashboard/order.html")]
pub struct OrderPage {
    pub nav: Nav,
    pub order_id: String,
    pub label: String,
    pub run_id: String,
    pub status: String,
    pub attempt: u32,
    pub objective: String,
    pub fields: Vec<(&'static str, String)>,
    /// (order_id, label) of each dependency.
    pub depends_on: Vec<(String, String)>,
    pub aar: Option<Aar>,
    pub artifacts: Vec<Artifact>,
    pub timeline: Vec<TimelineRow>,
    pub truncated: bool,
}

/// `GET /dashboard/orders/{id}`.
#[utoipa::path(
    get,
    path = "/dashboard/orders/{id}",
    operation_id = "dashboard_order",
    tag = "dashboard",
    summary = "An order",
    params(("id" = String, Path, description = "Order id.")),
    responses(
        (status = 200, description = "The order's fields, AAR, artifacts and event timeline.", content_type = "text/html", body = String),
        (status = 404, description = "No such order: an error page.", content_type = "text/html", body = String),
        ErrorPage,
    ),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn detail(State(state): State<AppState>, Path(order_id): Path<String>) -> Response {
    let order = match state.ledger.order_snapshot(&order_id).await {
        Ok(Some(o)) => o,
        Ok(None) => {
            return super::error_page(
                StatusCode::NOT_FOUND,
                Tab::Runs,
                format!("No order with id {order_id}."),
            );
        }
        Err(e) => return super::ledger_error(Tab::Runs, e),
    };
    let mut events = match state
        .ledger
        .read(&Query {
            order_id: Some(order_id.clone()),
            newest_first: true,
            limit: Some(TIMELINE),
            ..Query::default()
        })
        .await
    {
        Ok(r) => r,
        Err(e) => return super::ledger_error(Tab::Runs, e),
    };
    events.reverse();
    let plans = match &order.run_id {
        Some(run_id) => match super::runs::plan_ids(&state, run_id).await {
            Ok(p) => p,
            Err(e) => return super::ledger_error(Tab::Runs, e),
        },
        None => HashMap::new(),
    };
    render(StatusCode::OK, &order_page(order, &events, &plans))
}

fn order_page(o: OrderSnapshot, events: &[Record], plans: &HashMap<String, String>) -> OrderPage {
    let created = events
        .iter()
        .find(|r| r.event_type == EventType::OrderCreated)
        .map(|r| &r.payload);
    let plan_id = created
        .and_then(|p| p.get("plan_id"))
        .and_then(Value::as_str);
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let fields = vec![
        ("Plan id", plan_id.unwrap_or("").to_string()),
        ("Type", text(created.and_then(|p| p.get("type")), 60)),
        (
            "Profile",
            text(created.and_then(|p| p.pointer("/profile/name")), 60),
        ),
        ("Theater", opt(&o.theater_id)),
        ("Unit", opt(&o.unit_id)),
        ("Lock scope", o.lock_scope.join(", ")),
        ("Branch", opt(&o.branch)),
        ("Worktree", opt(&o.worktree_path)),
        ("Commit", opt(&o.commit_sha)),
        (
            "Integration",
            o.integration
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
        ),
        ("Reason", opt(&o.reason)),
        ("Created", when(&o.created_at)),
        ("Updated", when(&o.updated_at)),
    ];
    let aar = o.aar.as_ref().map(|a| Aar {
        status: text(a.get("status"), 60),
        summary: text(a.get("summary"), 2000),
        path: text(a.get("path"), 200),
        commit: text(a.get("commit_sha"), 64),
        other: a
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| {
                        !["status", "summary", "path", "commit_sha"].contains(&k.as_str())
                    })
                    .map(|(k, v)| (k.clone(), text(Some(v), 400)))
                    .collect()
            })
            .unwrap_or_default(),
    });
    let artifacts = o
        .artifacts
        .iter()
        .map(|a| Artifact {
            path: text(a.get("path"), 300),
            kind: text(a.get("type").or_else(|| a.get("kind")), 80),
            extra: a
                .as_object()
                .map(|m| {
                    let rest: serde_json::Map<String, Value> = m
                        .iter()
                        .filter(|(k, _)| !["path", "type", "kind"].contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    if rest.is_empty() {
                        String::new()
                    } else {
                        clip(&Value::Object(rest).to_string(), 200)
                    }
                })
                .unwrap_or_else(|| clip(&a.to_string(), 200)),
        })
        .collect();
    let timeline = events
        .iter()
        .map(|r| TimelineRow {
            seq: r.seq,
            when: when(&r.ts),
            event_type: r.event_type.as_str().into(),
            detail: match &r.payload {
                Value::Object(m) if m.is_empty() => String::new(),
                Value::Null => String::new(),
                p => clip(&p.to_string(), 300),
            },
        })
        .collect();
    let label = plan_id.map_or_else(|| short(&o.order_id), str::to_string);
    OrderPage {
        nav: Nav::new(Tab::Runs),
        label,
        run_id: o.run_id.clone().unwrap_or_default(),
        status: o.status.as_str().into(),
        attempt: o.attempt,
        objective: o.objective.clone().unwrap_or_default(),
        fields,
        depends_on: o
            .depends_on
            .iter()
            .map(|d| (d.clone(), plans.get(d).cloned().unwrap_or_else(|| short(d))))
            .collect(),
        aar,
        artifacts,
        truncated: i64::try_from(events.len()).unwrap_or(i64::MAX) >= TIMELINE,
        timeline,
        order_id: o.order_id,
    }
}
