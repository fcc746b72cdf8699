//! The milestone surface (milestone-ingest.md, DESIGN.md "Milestone
//! signatures"): signed, idempotent ingest, the feed, and the dead letter.
//!
//! Accepted milestones are `MILESTONE_RECEIVED` ledger events whose `event_id`
//! is derived from the idempotency key, so "exactly one acceptance per key" is
//! the ledger's idempotent append — under concurrency and across restarts.
//! Rejections come from unauthenticated callers and go to a bounded
//! dead-letter mailbox beside the log, never into it.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query as UrlQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use garrison_contracts::ironclaw::EventType;
use garrison_contracts::milestone::{MilestoneEnvelope, MilestoneEvent, idempotency_key};
use garrison_contracts::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use garrison_ledger::{NewEvent, Query, format_ts};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::route_table::Routes;

/// The dead-letter mailbox of this surface.
const MAILBOX: &str = "milestones";
/// The stream accepted milestones are appended to.
const STREAM: &str = "milestones";
const DEFAULT_FEED_PAGE: usize = 20;

/// How the ingest checks and bounds what it receives.
#[derive(Clone)]
pub struct MilestoneSettings {
    /// The HMAC secret; ingest answers 500 while it is unset.
    pub secret: Option<Vec<u8>>,
    /// Largest accepted distance between `x-openclaw-timestamp` and now.
    pub tolerance: Duration,
    /// Largest accepted body.
    pub max_body: usize,
    /// Most items the feed returns.
    pub feed_limit: usize,
    /// Rejections kept in the dead letter.
    pub dead_letter_limit: usize,
}

impl Default for MilestoneSettings {
    fn default() -> Self {
        MilestoneSettings {
            secret: None,
            tolerance: Duration::from_secs(300),
            max_body: 64 * 1024,
            feed_limit: 50,
            dead_letter_limit: 100,
        }
    }
}

impl std::fmt::Debug for MilestoneSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MilestoneSettings")
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .field("tolerance", &self.tolerance)
            .field("max_body", &self.max_body)
            .field("feed_limit", &self.feed_limit)
            .field("dead_letter_limit", &self.dead_letter_limit)
            .finish()
    }
}

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

/// Why an ingest was refused.
struct Rejection {
    status: StatusCode,
    reason: String,
    key: Option<String>,
}

impl Rejection {
    fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Rejection {
            status,
            reason: reason.into(),
            key: None,
        }
    }

    fn with_key(mut self, key: &str) -> Self {
        self.key = Some(key.to_string());
        self
    }
}

enum Accepted {
    New(String),
    Duplicate(String),
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
    let metrics = &garrison_metrics::METRICS;
    let outcome = check_and_store(&state, &headers, body).await;
    match &outcome {
        Ok(Accepted::New(_)) => metrics.ingest_accepted.add(1),
        Ok(Accepted::Duplicate(_)) => metrics.ingest_duplicate.add(1),
        Err(_) => metrics.ingest_rejected.add(1),
    }
    match outcome {
        Ok(Accepted::New(id)) => reply(
            StatusCode::OK,
            Ack {
                ok: true,
                status: AckStatus::Accepted,
                milestone_id: id,
            },
        ),
        Ok(Accepted::Duplicate(id)) => reply(
            StatusCode::OK,
            Ack {
                ok: true,
                status: AckStatus::Duplicate,
                milestone_id: id,
            },
        ),
        Err(rejection) => {
            let mut entry = json!({
                "timestampUtc": format_ts(jiff::Timestamp::now()),
                "reason": rejection.reason,
            });
            if let (Some(key), Some(obj)) = (&rejection.key, entry.as_object_mut()) {
                obj.insert("idempotencyKey".into(), json!(key));
            }
            let keep = state.milestones.dead_letter_limit;
            if let Err(e) = state.ledger.push_dead_letter(MAILBOX, entry, keep).await {
                tracing::warn!(error = %e, "could not record a rejected milestone");
            }
            reply(
                rejection.status,
                Refused {
                    ok: false,
                    status: "rejected",
                    reason: rejection.reason,
                },
            )
        }
    }
}

fn reply(status: StatusCode, body: impl Serialize) -> Response {
    (status, axum::Json(body)).into_response()
}

/// DESIGN.md's check order: configuration, headers, size, JSON, key,
/// freshness and signature, event; then the idempotent append.
async fn check_and_store(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Accepted, Rejection> {
    let settings = &state.milestones;
    let Some(secret) = settings.secret.as_deref() else {
        return Err(Rejection::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "milestone ingest is not configured: GARRISON_MILESTONE_SECRET is not set",
        ));
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let (Some(signature), Some(stamp)) = (header(SIGNATURE_HEADER), header(TIMESTAMP_HEADER))
    else {
        return Err(Rejection::new(
            StatusCode::UNAUTHORIZED,
            format!("missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header"),
        ));
    };
    let bytes = axum::body::to_bytes(body, settings.max_body)
        .await
        .map_err(|_| {
            Rejection::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body exceeds {} bytes", settings.max_body),
            )
        })?;
    // Read as JavaScript reads it: a JS sender's unpaired surrogates are JSON.
    let doc: Value = garrison_contracts::js_json::parse_value(&bytes)
        .map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, format!("body is not JSON: {e}")))?;
    let Some(key) = idempotency_key(&doc).map(str::to_string) else {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "idempotencyKey is missing or blank",
        ));
    };
    let unauthorized =
        |reason: String| Rejection::new(StatusCode::UNAUTHORIZED, reason).with_key(&key);
    let sent: jiff::Timestamp = stamp.parse().map_err(|_| {
        unauthorized(format!(
            "{TIMESTAMP_HEADER} `{stamp}` is not an ISO-8601 UTC time"
        ))
    })?;
    let skew = jiff::Timestamp::now().duration_since(sent).unsigned_abs();
    if skew > settings.tolerance {
        return Err(unauthorized(format!(
            "{TIMESTAMP_HEADER} is {}s away from now (tolerance {}s)",
            skew.as_secs(),
            settings.tolerance.as_secs()
        )));
    }
    match garrison_contracts::verify(secret, &bytes, signature) {
        Ok(true) => {}
        Ok(false) => return Err(unauthorized("signature does not match the body".into())),
        Err(e) => {
            return Err(
                Rejection::new(StatusCode::BAD_REQUEST, format!("body is not JSON: {e}"))
                    .with_key(&key),
            );
        }
    }
    let envelope = MilestoneEnvelope::from_value(&doc).map_err(|e| {
        Rejection::new(StatusCode::BAD_REQUEST, format!("invalid milestone: {e}")).with_key(&key)
    })?;

    let event = serde_json::to_value(&envelope.event).map_err(|e| {
        Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).with_key(&key)
    })?;
    let appended = state
        .ledger
        .append(
            NewEvent::new(EventType::MilestoneReceived)
                .event_id(format!("milestone:{key}"))
                .in_stream(STREAM)
                .payload(json!({
                    "idempotencyKey": key,
                    "sentAtUtc": envelope.sent_at_utc,
                    "signedAt": stamp,
                    "event": event,
                })),
        )
        .await
        .map_err(|e| {
            Rejection::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the ledger could not store the milestone: {e}"),
            )
            .with_key(&key)
        })?;
    let id = appended.record.payload["event"]["milestoneId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Ok(if appended.duplicate {
        Accepted::Duplicate(id)
    } else {
        Accepted::New(id)
    })
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
    let limit = match p.limit.as_deref().map(str::parse::<usize>) {
        None => DEFAULT_FEED_PAGE,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => {
            return reply(
                StatusCode::BAD_REQUEST,
                FeedError {
                    ok: false,
                    reason: "limit must be a whole number ≥ 1".into(),
                },
            );
        }
    }
    .min(state.milestones.feed_limit);
    let query = Query {
        event_type: Some(EventType::MilestoneReceived),
        newest_first: true,
        limit: i64::try_from(limit).ok(),
        ..Query::default()
    };
    match state.ledger.read(&query).await {
        Ok(records) => {
            let items: Vec<Value> = records
                .into_iter()
                .map(|mut r| r.payload["event"].take())
                .collect();
            reply(StatusCode::OK, Feed { ok: true, items })
        }
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
    match state
        .ledger
        .dead_letters(MAILBOX, state.milestones.dead_letter_limit)
        .await
    {
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
    let query = Query {
        event_type: Some(EventType::MilestoneDelivery),
        ..Query::default()
    };
    match state.ledger.read(&query).await {
        Ok(records) => reply(
            StatusCode::OK,
            Deliveries {
                ok: true,
                items: garrison_milestones::summarize(&records),
            },
        ),
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
