//! Garrison's own event-reading routes (no contract uses `/api/events`):
//! a paged query and a server-sent-events stream of the log.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use garrison_contracts::ironclaw::EventType;
use garrison_ledger::{Query, Record, tail};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::LedgerUnavailable;
use crate::error::{ApiError, ApiQuery, Failure, Success, ok};
use crate::route_table::Routes;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

pub fn routes() -> Routes {
    Routes::new()
        .get("/api/events", list)
        .get("/api/events/stream", stream)
}

/// Query string shared by both routes (`limit` only applies to the list).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct Filter {
    /// Only events with `seq` above this (default 0).
    after: Option<i64>,
    run_id: Option<String>,
    order_id: Option<String>,
    /// An event type name (`ORDER_CREATED`, …).
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// Page size for the list (default 100, at most 1000); refused by the stream.
    limit: Option<i64>,
}

impl Filter {
    fn event_type(&self) -> Result<Option<EventType>, ApiError> {
        self.event_type
            .as_deref()
            .map(|t| {
                t.parse()
                    .map_err(|e| ApiError::bad_request(format!("type: {e}")))
            })
            .transpose()
    }

    fn after(&self) -> Result<i64, ApiError> {
        match self.after {
            Some(a) if a < 0 => Err(ApiError::bad_request("after must be ≥ 0")),
            a => Ok(a.unwrap_or(0)),
        }
    }
}

#[derive(Serialize, ToSchema)]
struct Page {
    events: Vec<Record>,
    /// Pass as `after` to get the next page (equals the request's when empty).
    next_after: i64,
}

/// `GET /api/events?after=&run_id=&order_id=&type=&limit=`: oldest first.
#[utoipa::path(
    get,
    path = "/api/events",
    operation_id = "list_events",
    tag = "garrison",
    summary = "Read the event log, oldest first",
    params(Filter),
    responses(
        (status = 200, description = "A page of records.", body = Success<Page>),
        (status = 400, description = "A bad parameter (`BAD_REQUEST`).", body = Failure),
        LedgerUnavailable,
    ),
    security(("bearer" = [])),
)]
async fn list(
    State(state): State<AppState>,
    ApiQuery(f): ApiQuery<Filter>,
) -> Result<Response, ApiError> {
    let limit = match f.limit {
        None => DEFAULT_LIMIT,
        Some(n) if n < 1 => return Err(ApiError::bad_request("limit must be ≥ 1")),
        Some(n) => n.min(MAX_LIMIT),
    };
    let after = f.after()?;
    let q = Query {
        run_id: f.run_id.clone(),
        order_id: f.order_id.clone(),
        event_type: f.event_type()?,
        after_seq: Some(after),
        limit: Some(limit),
        newest_first: false,
    };
    let events = state.ledger.read(&q).await?;
    let next_after = events.last().map_or(after, |r| r.seq);
    Ok(ok(StatusCode::OK, Page { events, next_after }))
}

/// `GET /api/events/stream?after=SEQ`: every event after `after` (or after
/// the `Last-Event-ID` a reconnecting client sends), then live ones, as SSE
/// with `id: <seq>` and the record as `data:`. Ends when the server shuts down.
#[utoipa::path(
    get,
    path = "/api/events/stream",
    operation_id = "stream_events",
    tag = "garrison",
    summary = "Follow the event log (server-sent events)",
    params(
        Filter,
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this `seq` when `after` is not given."),
    ),
    responses(
        (status = 200, description = "One SSE event per record (`id: <seq>`, the record as JSON `data:`); a ledger failure is a final `error` event.", content_type = "text/event-stream", body = String),
        (status = 400, description = "A bad parameter, or `limit` (`BAD_REQUEST`).", body = Failure),
    ),
    security(("bearer" = [])),
)]
async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(f): ApiQuery<Filter>,
) -> Result<Response, ApiError> {
    if f.limit.is_some() {
        return Err(ApiError::bad_request("limit does not apply to the stream"));
    }
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let after = match f.after {
        Some(_) => f.after()?,
        None => resume.unwrap_or(0).max(0),
    };
    let event_type = f.event_type()?;
    let records = tail::follow(state.ledger.clone(), after).filter(move |r| {
        let keep = match r {
            Ok(rec) => {
                f.run_id
                    .as_ref()
                    .is_none_or(|id| rec.run_id.as_ref() == Some(id))
                    && f.order_id
                        .as_ref()
                        .is_none_or(|id| rec.order_id.as_ref() == Some(id))
                    && event_type.is_none_or(|t| rec.event_type == t)
            }
            Err(_) => true,
        };
        std::future::ready(keep)
    });
    let events = sse_events(records).take_until(state.shutdown_signal());
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// One SSE event per record. A ledger error is sent as a final `error` event
/// and ends the stream (the client resumes with `Last-Event-ID`).
fn sse_events(
    records: impl Stream<Item = garrison_ledger::Result<Record>> + Send,
) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    records.scan(false, |failed, r| {
        if *failed {
            return std::future::ready(None);
        }
        let ev = match r {
            Ok(rec) => match Event::default().id(rec.seq.to_string()).json_data(&rec) {
                Ok(ev) => ev,
                Err(e) => Event::default().event("error").data(e.to_string()),
            },
            Err(e) => {
                *failed = true;
                tracing::warn!(error = %e, "event stream stopped");
                Event::default().event("error").data(e.to_string())
            }
        };
        std::future::ready(Some(Ok(ev)))
    })
}
