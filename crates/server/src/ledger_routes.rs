//! The ledger service surface (IronClaw contract §3.3) plus the gateway's
//! read routes that share its paths: `POST /events`, `POST /events/batch`,
//! `GET /runs/{id}`, `GET /orders/{id}`, `GET /health`, and Openclawssy's
//! `GET /healthz`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use garrison_contracts::ironclaw::{OrderStatus, RunStatus};
use garrison_ledger::{Appended, NewEvent, OrderSnapshot, Record, RunSnapshot, projection};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::LedgerUnavailable;
use crate::error::{ApiError, ApiJson, Failure, Success, ok};
use crate::route_table::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .post("/events", append)
        .post("/events/batch", append_batch)
        .get("/runs/{id}", run)
        .get("/orders/{id}", order)
        .get("/health", health)
        .get("/healthz", healthz)
}

/// The body of `POST /events/batch`, as `parse_batch` reads it: `{"events":[…]}` or a bare array.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Documentation only: the handler decodes each event itself.
enum EventBatch {
    Wrapped { events: Vec<NewEvent> },
    Bare(Vec<NewEvent>),
}

#[derive(Serialize, ToSchema)]
struct BatchAppended {
    records: Vec<Record>,
    duplicates: usize,
}

#[derive(Serialize, ToSchema)]
struct RunView {
    run_id: String,
    status: RunStatus,
    summary: Option<String>,
    /// Number of the run's orders in each status.
    order_counts: BTreeMap<String, u64>,
    run: RunSnapshot,
    orders: Vec<OrderSnapshot>,
}

#[derive(Serialize, ToSchema)]
struct OrderView {
    order_id: String,
    status: OrderStatus,
    aar: Option<Value>,
    artifacts: Vec<Value>,
    order: OrderSnapshot,
}

#[derive(Serialize, ToSchema)]
struct Health {
    status: &'static str,
    backend: &'static str,
    head_seq: i64,
}

/// 201 for a new event; a replayed `event_id` answers 200 with the original.
#[utoipa::path(
    post,
    path = "/events",
    tag = "ironclaw",
    summary = "Append one event",
    request_body = NewEvent,
    responses(
        (status = 201, description = "Stored.", body = Success<Appended>),
        (status = 200, description = "The `event_id` existed: the original record, `duplicate: true`.", body = Success<Appended>),
        (status = 400, description = "Malformed JSON (`BAD_REQUEST`).", body = Failure),
        (status = 409, description = "Stale `expected_version` (`CONCURRENCY_CONFLICT`) or an illegal state change (`INVALID_TRANSITION`); nothing is appended.", body = Failure),
        (status = 413, description = "Body over the limit.", body = Failure),
        (status = 415, description = "Not `application/json`.", body = Failure),
        (status = 422, description = "Well-formed JSON of the wrong shape (`SCHEMA_INVALID`).", body = Failure),
        LedgerUnavailable,
    ),
    security(("bearer" = [])),
)]
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
#[utoipa::path(
    post,
    path = "/events/batch",
    tag = "ironclaw",
    summary = "Append events atomically",
    request_body = EventBatch,
    responses(
        (status = 201, description = "Stored (some may be replays, counted in `duplicates`).", body = Success<BatchAppended>),
        (status = 200, description = "Every event was a replay: nothing new stored.", body = Success<BatchAppended>),
        (status = 400, description = "Malformed JSON.", body = Failure),
        (status = 409, description = "`CONCURRENCY_CONFLICT` or `INVALID_TRANSITION`: nothing stored.", body = Failure),
        (status = 413, description = "Body over the limit.", body = Failure),
        (status = 415, description = "Not `application/json`.", body = Failure),
        (status = 422, description = "An empty batch or an invalid event (the message names its index).", body = Failure),
        LedgerUnavailable,
    ),
    security(("bearer" = [])),
)]
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
#[utoipa::path(
    get,
    path = "/runs/{id}",
    tag = "ironclaw",
    summary = "A run (gateway and ledger)",
    params(("id" = String, Path, description = "Run id.")),
    responses(
        (status = 200, description = "The run.", body = Success<RunView>),
        (status = 404, description = "No such run.", body = Failure),
        LedgerUnavailable,
    ),
    security(("bearer" = [])),
)]
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
#[utoipa::path(
    get,
    path = "/orders/{id}",
    tag = "ironclaw",
    summary = "An order",
    params(("id" = String, Path, description = "Order id.")),
    responses(
        (status = 200, description = "The order.", body = Success<OrderView>),
        (status = 404, description = "No such order.", body = Failure),
        LedgerUnavailable,
    ),
    security(("bearer" = [])),
)]
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
#[utoipa::path(
    get,
    path = "/health",
    tag = "ironclaw",
    summary = "Readiness (public)",
    responses(
        (status = 200, description = "The ledger answers.", body = Success<Health>),
        (status = 503, description = "The ledger does not answer, or shutdown has begun.", body = Failure),
    ),
)]
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

/// `GET /healthz`: always `{"ok":true}`.
#[derive(Serialize, ToSchema)]
struct Liveness {
    ok: bool,
}

/// Openclawssy's liveness probe: exactly `{"ok":true}`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "openclawssy",
    summary = "Liveness (public)",
    responses((status = 200, description = "The process serves.", body = Liveness)),
)]
async fn healthz() -> impl IntoResponse {
    axum::Json(Liveness { ok: true })
}
