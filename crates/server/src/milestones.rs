//! The milestone surface (milestone-ingest.md): signed, idempotent ingest,
//! the feed, and the dead letter, over `garrison_milestones::Ingest`. These
//! handlers only translate HTTP: headers and body in, the contract's
//! `{ok,status,…}` shapes and statuses out.

use axum::body::Body;
use axum::extract::{Query as UrlQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use garrison_contracts::milestone::{MilestoneEnvelope, MilestoneEvent};
use garrison_contracts::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use garrison_milestones::{Accepted, Ingest, Refusal, Signed, TooLarge};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::route_table::Routes;

/// The ingest route. It carries no bearer token: the HMAC signature is its
/// authentication, and it applies its own body limit.
pub fn ingest_routes() -> Routes {
    Routes::new().post("/internal/milestones/ingest", ingest)
}

/// The read routes (behind the bearer token).
pub fn read_routes() -> Routes {
    Routes::new()
        .get("/api/milestones/latest", latest)
        .get("/api/milestones/dead-letter", dead_letter)
        .get("/api/milestones/deliveries", deliveries)
}

/// The ingest's answer to an accepted or repeated milestone.
#[derive(Serialize, ToSchema)]
struct Ack {
    /// Always `true`.
    ok: bool,
    status: AckStatus,
    #[serde(rename = "milestoneId")]
    milestone_id: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum AckStatus {
    /// Stored now.
    Accepted,
    /// The idempotency key was seen before: nothing new stored.
    Duplicate,
}

/// A refused ingest (also recorded in the dead letter).
#[derive(Serialize, ToSchema)]
struct Refused {
    /// Always `false`.
    ok: bool,
    /// Always `rejected`.
    #[schema(example = "rejected")]
    status: &'static str,
    reason: String,
}

/// A failed feed read.
#[derive(Serialize, ToSchema)]
struct FeedError {
    /// Always `false`.
    ok: bool,
    reason: String,
}

/// `GET /api/milestones/latest`.
#[derive(Serialize, ToSchema)]
struct Feed {
    ok: bool,
    /// Newest first.
    #[schema(value_type = Vec<MilestoneEvent>)]
    items: Vec<Value>,
}

/// `GET /api/milestones/dead-letter`.
#[derive(Serialize, ToSchema)]
struct DeadLetter {
    ok: bool,
    count: usize,
    /// Newest first: `{timestampUtc, reason, idempotencyKey?}`.
    #[schema(value_type = Vec<Object>)]
    items: Vec<Value>,
}

/// `GET /api/milestones/deliveries`.
#[derive(Serialize, ToSchema)]
struct Deliveries {
    ok: bool,
    /// One per delivery, its latest state, newest first.
    #[schema(value_type = Vec<Object>)]
    items: Vec<garrison_milestones::DeliverySummary>,
}

/// Public: the HMAC signature over the canonical body authenticates it.
#[utoipa::path(
    post,
    path = "/internal/milestones/ingest",
    tag = "milestones",
    summary = "Ingest a signed milestone (public, HMAC-signed)",
    params(
        ("x-openclaw-signature" = String, Header, description = "Lowercase hex HMAC-SHA256 of the canonical JSON body with the milestone secret."),
        ("x-openclaw-timestamp" = String, Header, description = "ISO-8601 UTC time of signing; refused beyond the tolerance (default 300 s)."),
    ),
    request_body = MilestoneEnvelope,
    responses(
        (status = 200, description = "`accepted`, or `duplicate` for a key seen before.", body = Ack),
        (status = 400, description = "Body not JSON, `idempotencyKey` missing or blank, or an invalid event.", body = Refused),
        (status = 401, description = "Signature headers missing, stale timestamp, or signature mismatch.", body = Refused),
        (status = 413, description = "Body over the ingest limit.", body = Refused),
        (status = 500, description = "No milestone secret is configured.", body = Refused),
        (status = 503, description = "The ledger could not store it.", body = Refused),
    ),
)]
async fn ingest(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let ingest = ingest_service(&state);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let bytes = axum::body::to_bytes(body, ingest.settings().max_body).await;
    let outcome = ingest
        .receive(Signed {
            signature: header(SIGNATURE_HEADER),
            timestamp: header(TIMESTAMP_HEADER),
            body: bytes.as_deref().map_err(|_| TooLarge),
        })
        .await;
    let metrics = &garrison_metrics::METRICS;
    match outcome {
        Ok(Accepted::New(id)) => {
            metrics.ingest_accepted.add(1);
            ack(AckStatus::Accepted, id)
        }
        Ok(Accepted::Duplicate(id)) => {
            metrics.ingest_duplicate.add(1);
            ack(AckStatus::Duplicate, id)
        }
        Err(rejection) => {
            metrics.ingest_rejected.add(1);
            let status = match rejection.refusal {
                Refusal::NotConfigured | Refusal::Internal => StatusCode::INTERNAL_SERVER_ERROR,
                Refusal::Unauthenticated => StatusCode::UNAUTHORIZED,
                Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                Refusal::Invalid => StatusCode::BAD_REQUEST,
                Refusal::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            };
            reply(
                status,
                Refused {
                    ok: false,
                    status: "rejected",
                    reason: rejection.reason,
                },
            )
        }
    }
}

fn ingest_service(state: &AppState) -> Ingest {
    Ingest::new(state.ledger.clone(), state.milestones.clone())
}

fn ack(status: AckStatus, milestone_id: String) -> Response {
    reply(
        StatusCode::OK,
        Ack {
            ok: true,
            status,
            milestone_id,
        },
    )
}

fn reply(status: StatusCode, body: impl Serialize) -> Response {
    (status, axum::Json(body)).into_response()
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LatestParams {
    /// How many (default 20, at most the feed bound, default 50).
    #[param(value_type = Option<u32>, minimum = 1)]
    limit: Option<String>,
}

/// `GET /api/milestones/latest?limit=`: newest first, at most the feed bound.
#[utoipa::path(
    get,
    path = "/api/milestones/latest",
    tag = "milestones",
    summary = "The milestone feed",
    params(LatestParams),
    responses(
        (status = 200, description = "Accepted milestones, newest first.", body = Feed),
        (status = 400, description = "`limit` is not a whole number ≥ 1.", body = FeedError),
        (status = 503, description = "The ledger is unavailable.", body = FeedError),
    ),
    security(("bearer" = [])),
)]
async fn latest(State(state): State<AppState>, UrlQuery(p): UrlQuery<LatestParams>) -> Response {
    let ingest = ingest_service(&state);
    let page = match ingest.feed_page(p.limit.as_deref()) {
        Ok(page) => page,
        Err(e) => {
            return reply(
                StatusCode::BAD_REQUEST,
                FeedError {
                    ok: false,
                    reason: e.to_string(),
                },
            );
        }
    };
    match ingest.latest(page).await {
        Ok(items) => reply(StatusCode::OK, Feed { ok: true, items }),
        Err(e) => unavailable(e),
    }
}

/// `GET /api/milestones/dead-letter`: every held rejection, newest first.
#[utoipa::path(
    get,
    path = "/api/milestones/dead-letter",
    tag = "milestones",
    summary = "Rejected ingests",
    responses(
        (status = 200, description = "Every held rejection, newest first.", body = DeadLetter),
        (status = 503, description = "The ledger is unavailable.", body = FeedError),
    ),
    security(("bearer" = [])),
)]
async fn dead_letter(State(state): State<AppState>) -> Response {
    match ingest_service(&state).dead_letters().await {
        Ok(items) => reply(
            StatusCode::OK,
            DeadLetter {
                ok: true,
                count: items.len(),
                items,
            },
        ),
        Err(e) => unavailable(e),
    }
}

/// `GET /api/milestones/deliveries`: the outbox's deliveries, latest state
/// each, newest first.
#[utoipa::path(
    get,
    path = "/api/milestones/deliveries",
    tags = ["milestones", "garrison"],
    summary = "Outbound milestone deliveries (Garrison's own)",
    responses(
        (status = 200, description = "The outbox's deliveries, latest state each, newest first.", body = Deliveries),
        (status = 503, description = "The ledger is unavailable.", body = FeedError),
    ),
    security(("bearer" = [])),
)]
async fn deliveries(State(state): State<AppState>) -> Response {
    match garrison_milestones::deliveries(state.ledger.as_ref()).await {
        Ok(items) => reply(StatusCode::OK, Deliveries { ok: true, items }),
        Err(e) => unavailable(e),
    }
}

fn unavailable(e: garrison_ledger::LedgerError) -> Response {
    reply(
        StatusCode::SERVICE_UNAVAILABLE,
        FeedError {
            ok: false,
            reason: format!("ledger unavailable: {e}"),
        },
    )
}
