//! Appleseed ingest over HTTP (appleseed-event-contract.md): the same
//! validation and storage as `garrison appleseed ingest|openclaw-import`,
//! against `<data-dir>/appleseed`, behind the bearer token.
//!
//! Replies use the server's envelope: 200 `{ok:true,data:{stored,skipped,…}}`;
//! a rejected payload (not JSON, or breaking the contract) is 400
//! `{ok:false,data:null,error:{code:"BAD_REQUEST",message}}` and stores nothing.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use garrison_appleseed::{Appleseed, Error};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, Failure, Success, ok};
use crate::route_table::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .post("/api/appleseed/events", events)
        .post("/api/appleseed/openclaw-import", import)
}

fn api_error(e: Error) -> ApiError {
    if e.is_rejection() {
        ApiError::bad_request(e.to_string())
    } else {
        tracing::error!(error = %e, "appleseed state dir failure");
        ApiError::internal(e.to_string())
    }
}

/// Parses the body and runs `f` on the state dir off the async threads
/// (appends fsync).
async fn with_app(
    state: &AppState,
    body: &[u8],
    f: impl FnOnce(&Appleseed, &Value) -> Result<Value, Error> + Send + 'static,
) -> Result<Value, ApiError> {
    let dir = state
        .data_dir
        .as_ref()
        .ok_or_else(|| ApiError::internal("no data dir is configured for appleseed"))?
        .join("appleseed");
    let payload: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("rejected: body is not valid JSON: {e}")))?;
    tokio::task::spawn_blocking(move || f(&Appleseed::open(dir), &payload))
        .await
        .map_err(|e| ApiError::internal(format!("appleseed task failed: {e}")))?
        .map_err(api_error)
}

/// Validates the whole payload before storing any of it.
#[utoipa::path(
    post,
    path = "/api/appleseed/events",
    operation_id = "appleseed_events",
    tags = ["appleseed", "garrison"],
    summary = "Ingest Appleseed runtime event envelopes",
    request_body(content = Object, content_type = "application/json", description = "One envelope, a list of envelopes, or a batch (appleseed-event-contract.md)."),
    responses(
        (status = 200, description = "Stored: `{stored, skipped, …}`.", body = Success<serde_json::Value>),
        (status = 400, description = "Not JSON or breaking the contract; nothing stored (`BAD_REQUEST`).", body = Failure),
        (status = 413, description = "Body over the limit.", body = Failure),
        (status = 500, description = "No data dir, or the state dir failed.", body = Failure),
    ),
    security(("bearer" = [])),
)]
async fn events(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let data = with_app(&state, &body, |app, payload| {
        app.ingest(payload).map(|o| o.summary())
    })
    .await?;
    Ok(ok(StatusCode::OK, data))
}

/// Same checks as `garrison appleseed openclaw-import`.
#[utoipa::path(
    post,
    path = "/api/appleseed/openclaw-import",
    operation_id = "appleseed_openclaw_import",
    tags = ["appleseed", "garrison"],
    summary = "Import an OpenClaw session or handoff",
    request_body(content = Object, content_type = "application/json", description = "An OpenClaw session export or handoff bundle."),
    responses(
        (status = 200, description = "Stored: the ingest summary plus `input_kind`, `session_id`, `reports` and `handoff`.", body = Success<serde_json::Value>),
        (status = 400, description = "Not JSON or not importable; nothing stored (`BAD_REQUEST`).", body = Failure),
        (status = 413, description = "Body over the limit.", body = Failure),
        (status = 500, description = "No data dir, or the state dir failed.", body = Failure),
    ),
    security(("bearer" = [])),
)]
async fn import(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let data = with_app(&state, &body, |app, input| {
        let o = app.openclaw_import(input)?;
        let mut v = o.ingest.summary();
        if let Some(m) = v.as_object_mut() {
            m.insert("input_kind".into(), json!(o.kind.as_str()));
            m.insert("session_id".into(), json!(o.session_id));
            m.insert(
                "reports".into(),
                json!(
                    o.reports
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                ),
            );
            m.insert("handoff".into(), o.handoff);
        }
        Ok(v)
    })
    .await?;
    Ok(ok(StatusCode::OK, data))
}
