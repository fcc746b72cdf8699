//! The ledger service surface (IronClaw contract §3.3) plus the gateway's
//! read routes that share its paths: `POST /events`, `POST /events/batch`,
//! `GET /runs/{id}`, `GET /orders/{id}`, `GET /health`, and Openclawssy's
//! `GET /healthz`.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use garrison_contracts::ironclaw::{OrderStatus, RunStatus};
use garrison_ledger::{NewEvent, OrderSnapshot, Record, RunSnapshot, projection};
use serde::Serialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::ironclaw::{ApiError, ApiJson, ok};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/events", post(append))
        .route("/events/batch", post(append_batch))
        .route("/runs/{id}", get(run))
        .route("/orders/{id}", get(order))
        .route("/health", get(health))
        .route("/healthz", get(healthz))
}

#[derive(Serialize)]
struct BatchAppended {
    records: Vec<Record>,
    duplicates: usize,
}

#[derive(Serialize)]
struct RunView {
    run_id: String,
    status: RunStatus,
    summary: Option<String>,
    /// Number of the run's orders in each status.
    order_counts: BTreeMap<String, u64>,
    run: RunSnapshot,
    orders: Vec<OrderSnapshot>,
}

#[derive(Serialize)]
struct OrderView {
    order_id: String,
    status: OrderStatus,
    aar: Option<Value>,
    artifacts: Vec<Value>,
    order: OrderSnapshot,
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    backend: &'static str,
    head_seq: i64,
}

/// 201 for a new event; a replayed `event_id` answers 200 with the original.
async fn append(
    State(state): State<AppState>,
    ApiJson(event): ApiJson<NewEvent>,
) -> Result<Response, ApiError> {
    let appended = state.ledger.append(event).await?;
    let status = if appended.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(ok(status, appended))
}

/// Body: `{"events":[…]}` or a bare array. Atomic: all stored or none.
async fn append_batch(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let events = parse_batch(body)?;
    let appended = state.ledger.append_batch(events).await?;
    let duplicates = appended.iter().filter(|a| a.duplicate).count();
    // A full replay stored nothing new: answer like a replayed single event.
    let status = if duplicates == appended.len() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let records = appended.into_iter().map(|a| a.record).collect();
    Ok(ok(
        status,
        BatchAppended {
            records,
            duplicates,
        },
    ))
}

/// Decodes each event on its own so an error names the offending index.
fn parse_batch(body: Value) -> Result<Vec<NewEvent>, ApiError> {
    let items = match body {
        Value::Array(items) => items,
        Value::Object(mut obj) => match obj.remove("events") {
            Some(Value::Array(items)) => items,
            Some(_) => return Err(ApiError::schema_invalid("`events` must be an array")),
            None => {
                return Err(ApiError::schema_invalid(
                    "body must be {\"events\": [...]} or an array of events",
                ));
            }
        },
        _ => {
            return Err(ApiError::schema_invalid(
                "body must be {\"events\": [...]} or an array of events",
            ));
        }
    };
    if items.is_empty() {
        return Err(ApiError::schema_invalid("a batch needs at least one event"));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value(v)
                .map_err(|e| ApiError::schema_invalid(format!("events[{i}]: {e}")))
        })
        .collect()
}

/// The ledger's run snapshot and its orders, plus the gateway's `status` and
/// `summary` at the top level (the two contracts share this path).
async fn run(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let Some(run) = state.ledger.run_snapshot(&id).await? else {
        return Err(ApiError::not_found(format!("no run `{id}`")));
    };
    let orders = state.ledger.run_orders(&id).await?;
    Ok(ok(
        StatusCode::OK,
        RunView {
            run_id: run.run_id.clone(),
            status: run.status,
            summary: run.summary.clone(),
            order_counts: projection::order_counts(&orders),
            run,
            orders,
        },
    ))
}

/// The order snapshot plus pointers to its AAR and artifacts.
async fn order(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let Some(order) = state.ledger.order_snapshot(&id).await? else {
        return Err(ApiError::not_found(format!("no order `{id}`")));
    };
    Ok(ok(
        StatusCode::OK,
        OrderView {
            order_id: order.order_id.clone(),
            status: order.status,
            aar: order.aar.clone(),
            artifacts: order.artifacts.clone(),
            order,
        },
    ))
}

/// Readiness: 200 once the ledger answers, 503 once shutdown has begun (so a
/// load balancer stops sending work while in-flight requests drain).
async fn health(State(state): State<AppState>) -> Result<Response, ApiError> {
    if state.shutting_down() {
        return Err(ApiError::unavailable("shutting down"));
    }
    let head_seq = state.ledger.head().await?;
    Ok(ok(
        StatusCode::OK,
        Health {
            status: "ok",
            backend: state.ledger.backend(),
            head_seq,
        },
    ))
}

/// Openclawssy's liveness probe: exactly `{"ok":true}`.
async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"ok": true}))
}
