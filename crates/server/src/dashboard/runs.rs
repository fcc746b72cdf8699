//! The runs list, a run's page (its orders' dependency graph and table), and
//! the stream that keeps that page's order states live.

use std::collections::HashMap;
use std::convert::Infallible;

use askama::Template;
use axum::extract::{Path, Query as UrlQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use garrison_contracts::ironclaw::EventType;
use garrison_ledger::{OrderSnapshot, Query, Record, RunSnapshot, tail};
use serde::Deserialize;
use serde_json::json;

use super::graph::{self, NODE_H};
use super::{Nav, Tab, clip, render, short, when};
use crate::AppState;
use crate::error::ErrorPage;

/// How many runs the list shows (newest first).
const RUNS_SHOWN: i64 = 50;

pub struct RunRow {
    pub run_id: String,
    pub short: String,
    pub objective: String,
    pub status: String,
    pub theater: String,
    pub created: String,
    pub orders: usize,
    /// Non-zero order counts, e.g. `3 COMPLETED`.
    pub counts: Vec<(String, u64)>,
}

#[derive(Template)]
#[template(path = "dashboard/runs.html")]
pub struct RunsPage {
    pub nav: Nav,
    pub runs: Vec<RunRow>,
}

/// `GET /` (and `/dashboard`): the newest runs.
#[utoipa::path(
    get,
    path = "/",
    operation_id = "dashboard_runs",
    tag = "dashboard",
    summary = "Runs (or the sign-in form)",
    responses(
        (status = 200, description = "The newest runs; without credentials, the sign-in form.", content_type = "text/html", body = String),
        ErrorPage,
    ),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn list(State(state): State<AppState>) -> Response {
    let created = match state
        .ledger
        .read(&Query {
            event_type: Some(EventType::RunCreated),
            newest_first: true,
            limit: Some(RUNS_SHOWN),
            ..Query::default()
        })
        .await
    {
        Ok(r) => r,
        Err(e) => return super::ledger_error(Tab::Runs, e),
    };
    let mut runs = Vec::with_capacity(created.len());
    for rec in created {
        let Some(run_id) = rec.run_id else { continue };
        let run = match state.ledger.run_snapshot(&run_id).await {
            Ok(Some(run)) => run,
            Ok(None) => continue,
            Err(e) => return super::ledger_error(Tab::Runs, e),
        };
        let orders = match state.ledger.run_orders(&run_id).await {
            Ok(o) => o,
            Err(e) => return super::ledger_error(Tab::Runs, e),
        };
        let counts = garrison_ledger::order_counts(&orders)
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
        runs.push(RunRow {
            short: short(&run.run_id),
            objective: clip(run.objective.as_deref().unwrap_or(""), 120),
            status: run.status.as_str().into(),
            theater: run.theater_id.clone().unwrap_or_default(),
            created: when(&run.created_at),
            orders: orders.len(),
            counts,
            run_id: run.run_id,
        });
    }
    render(
        StatusCode::OK,
        &RunsPage {
            nav: Nav::new(Tab::Runs),
            runs,
        },
    )
}

pub struct OrderRow {
    pub order_id: String,
    pub label: String,
    pub objective: String,
    pub status: String,
    pub attempt: u32,
    /// (order_id, label) of each dependency.
    pub depends_on: Vec<(String, String)>,
    pub lock_scope: String,
    pub integration: String,
    pub updated: String,
}

pub struct GraphNode {
    pub order_id: String,
    pub label: String,
    pub status: String,
    pub x: i64,
    pub y: i64,
    pub w: i64,
    pub h: i64,
    pub text_x: i64,
    pub label_y: i64,
    pub status_y: i64,
}

pub struct Graph {
    pub width: i64,
    pub height: i64,
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<String>,
}

#[derive(Template)]
#[template(path = "dashboard/run.html")]
pub struct RunPage {
    pub nav: Nav,
    pub run_id: String,
    pub objective: String,
    pub status: String,
    pub theater: String,
    pub user: String,
    pub created: String,
    pub updated: String,
    pub summary: String,
    /// The ledger head when the page was read: the live stream starts after it.
    pub head: i64,
    pub orders: Vec<OrderRow>,
    pub graph: Graph,
}

/// The plan ids (`survey`, `report`, …) of a run's orders, from their
/// ORDER_CREATED events: friendlier labels than UUIDs.
pub(super) async fn plan_ids(
    state: &AppState,
    run_id: &str,
) -> garrison_ledger::Result<HashMap<String, String>> {
    let created = state.ledger.read(&Query::orders_created_in(run_id)).await?;
    Ok(created
        .into_iter()
        .filter_map(|r| {
            let plan = r.payload.get("plan_id")?.as_str()?.to_string();
            Some((r.order_id?, plan))
        })
        .collect())
}

/// `GET /dashboard`: the same page as `/`.
#[utoipa::path(
    get,
    path = "/dashboard",
    operation_id = "dashboard_home",
    tag = "dashboard",
    summary = "Runs",
    responses(
        (status = 200, description = "The newest runs; without credentials, the sign-in form.", content_type = "text/html", body = String),
        ErrorPage,
    ),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn dashboard_home(state: State<AppState>) -> Response {
    list(state).await
}

/// `GET /dashboard/runs/{id}`.
#[utoipa::path(
    get,
    path = "/dashboard/runs/{id}",
    operation_id = "dashboard_run",
    tag = "dashboard",
    summary = "A run",
    params(("id" = String, Path, description = "Run id.")),
    responses(
        (status = 200, description = "The run's orders as a dependency graph and a table, followed live.", content_type = "text/html", body = String),
        (status = 404, description = "No such run: an error page.", content_type = "text/html", body = String),
        ErrorPage,
    ),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn detail(State(state): State<AppState>, Path(run_id): Path<String>) -> Response {
    // Read the head first: anything committed after it reaches the page
    // through the stream, so no change falls between the two.
    let head = match state.ledger.head().await {
        Ok(h) => h,
        Err(e) => return super::ledger_error(Tab::Runs, e),
    };
    let run = match state.ledger.run_snapshot(&run_id).await {
        Ok(Some(run)) => run,
        Ok(None) => {
            return super::error_page(
                StatusCode::NOT_FOUND,
                Tab::Runs,
                format!("No run with id {run_id}."),
            );
        }
        Err(e) => return super::ledger_error(Tab::Runs, e),
    };
    let (orders, plans) = match (
        state.ledger.run_orders(&run_id).await,
        plan_ids(&state, &run_id).await,
    ) {
        (Ok(o), Ok(p)) => (o, p),
        (Err(e), _) | (_, Err(e)) => return super::ledger_error(Tab::Runs, e),
    };
    render(StatusCode::OK, &run_page(run, &orders, &plans, head))
}

fn run_page(
    run: RunSnapshot,
    orders: &[OrderSnapshot],
    plans: &HashMap<String, String>,
    head: i64,
) -> RunPage {
    let label = |id: &str| plans.get(id).cloned().unwrap_or_else(|| short(id));
    let items: Vec<(&str, &[String])> = orders
        .iter()
        .map(|o| (o.order_id.as_str(), o.depends_on.as_slice()))
        .collect();
    let layout = graph::layout(&items);
    let nodes = layout
        .nodes
        .iter()
        .zip(orders)
        .map(|(n, o)| GraphNode {
            order_id: o.order_id.clone(),
            label: clip(&label(&o.order_id), 22),
            status: o.status.as_str().into(),
            x: n.x,
            y: n.y,
            w: graph::NODE_W,
            h: NODE_H,
            text_x: n.x + 12,
            label_y: n.y + 23,
            status_y: n.y + 44,
        })
        .collect();
    let rows = orders
        .iter()
        .map(|o| OrderRow {
            order_id: o.order_id.clone(),
            label: label(&o.order_id),
            objective: clip(o.objective.as_deref().unwrap_or(""), 140),
            status: o.status.as_str().into(),
            attempt: o.attempt,
            depends_on: o.depends_on.iter().map(|d| (d.clone(), label(d))).collect(),
            lock_scope: o.lock_scope.join(", "),
            integration: o
                .integration
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            updated: when(&o.updated_at),
        })
        .collect();
    RunPage {
        nav: Nav::new(Tab::Runs),
        objective: run.objective.clone().unwrap_or_default(),
        status: run.status.as_str().into(),
        theater: run.theater_id.clone().unwrap_or_default(),
        user: run.user_id.clone().unwrap_or_default(),
        created: when(&run.created_at),
        updated: when(&run.updated_at),
        summary: run.summary.clone().unwrap_or_default(),
        run_id: run.run_id,
        head,
        orders: rows,
        graph: Graph {
            width: layout.width,
            height: layout.height,
            nodes,
            edges: layout.edges.into_iter().map(|e| e.path).collect(),
        },
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Only changes after this `seq` (default 0).
    after: Option<i64>,
}

/// `GET /dashboard/runs/{id}/events?after=SEQ`: server-sent events, one per
/// change of the run or one of its orders after `after` (or the
/// `Last-Event-ID` of a reconnect), each the changed snapshot's state:
/// `{"kind":"order","order_id","status","attempt","integration"}` or
/// `{"kind":"run","status","summary"}`, with `id: <seq>`.
#[utoipa::path(
    get,
    path = "/dashboard/runs/{id}/events",
    operation_id = "dashboard_run_events",
    tag = "dashboard",
    summary = "A run's live changes (server-sent events)",
    params(
        ("id" = String, Path, description = "Run id."),
        StreamParams,
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this `seq` (wins over `after`)."),
    ),
    responses(
        (status = 200, description = "One SSE event per change: `{kind:\"order\",order_id,status,attempt,integration}` or `{kind:\"run\",status,summary}`, `id: <seq>`.", content_type = "text/event-stream", body = String),
    ),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn events(
    State(state): State<AppState>,
    Path(run_id): Path<String>,
    headers: HeaderMap,
    UrlQuery(p): UrlQuery<StreamParams>,
) -> Response {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let after = resume.or(p.after).unwrap_or(0).max(0);
    let ledger = state.ledger.clone();
    let wanted = run_id.clone();
    let changes = tail::follow(state.ledger.clone(), after)
        .filter(move |r| {
            let keep = match r {
                Ok(rec) => rec.run_id.as_deref() == Some(wanted.as_str()),
                Err(_) => true,
            };
            std::future::ready(keep)
        })
        .then(move |r| {
            let ledger = ledger.clone();
            async move {
                match r {
                    Ok(rec) => change(ledger.as_ref(), &rec).await,
                    Err(e) => Err(e),
                }
            }
        })
        .scan(false, |failed, r| {
            if *failed {
                return std::future::ready(None);
            }
            let ev = match r {
                Ok(Some((seq, data))) => {
                    Some(Event::default().id(seq.to_string()).data(data.to_string()))
                }
                Ok(None) => None,
                Err(e) => {
                    *failed = true;
                    tracing::warn!(error = %e, "dashboard stream stopped");
                    Some(Event::default().event("error").data(e.to_string()))
                }
            };
            std::future::ready(Some(ev))
        })
        .filter_map(|ev| std::future::ready(ev.map(Ok::<_, Infallible>)))
        .take_until(state.shutdown_signal());
    Sse::new(changes)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// What one record changed, as the page's script wants it (`None`: nothing
/// the page shows).
async fn change(
    ledger: &dyn garrison_ledger::Ledger,
    rec: &Record,
) -> garrison_ledger::Result<Option<(i64, serde_json::Value)>> {
    if let Some(order_id) = &rec.order_id {
        return Ok(ledger.order_snapshot(order_id).await?.map(|o| {
            (
                rec.seq,
                json!({
                    "kind": "order",
                    "order_id": o.order_id,
                    "status": o.status.as_str(),
                    "attempt": o.attempt,
                    "integration": o.integration.map(|t| t.as_str()),
                    "event": rec.event_type.as_str(),
                }),
            )
        }));
    }
    let Some(run_id) = &rec.run_id else {
        return Ok(None);
    };
    Ok(ledger.run_snapshot(run_id).await?.map(|r| {
        (
            rec.seq,
            json!({
                "kind": "run",
                "status": r.status.as_str(),
                "summary": r.summary,
                "event": rec.event_type.as_str(),
            }),
        )
    }))
}
