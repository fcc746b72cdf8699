//! The learning service over HTTP (ironclaw-service-contracts.md §3.10):
//! `POST /learn/tick` recomputes the routing policy from the ledger, writes
//! `<data-dir>/learning/policy-v<N>.json` and appends POLICY_UPDATED.
//!
//! 200 `{ok:true,data:<policy document>}`; no data dir → 500.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use garrison_appleseed::learning::{LearningError, tick as policy_tick};

use crate::AppState;
use crate::error::LedgerUnavailable;
use crate::error::{ApiError, Failure, Success, ok};
use crate::route_table::Routes;

pub fn routes() -> Routes {
    Routes::new().post("/learn/tick", tick)
}

fn api_error(e: LearningError) -> ApiError {
    match e {
        LearningError::Ledger(e) => e.into(),
        e => {
            tracing::error!(error = %e, "learning tick failed");
            ApiError::internal(e.to_string())
        }
    }
}

#[utoipa::path(
    post,
    path = "/learn/tick",
    tag = "learning",
    summary = "Recompute the routing policy",
    responses(
        (status = 200, description = "The new policy document (also written to `learning/policy-v<N>.json`; POLICY_UPDATED appended).", body = Success<serde_json::Value>),
        (status = 500, description = "No data dir, or the policy could not be written.", body = Failure),
        LedgerUnavailable,
    ),
    security(("bearer" = [])),
)]
async fn tick(State(state): State<AppState>) -> Result<Response, ApiError> {
    let dir = state
        .data_dir
        .as_ref()
        .ok_or_else(|| ApiError::internal("no data dir is configured for the learning service"))?;
    let doc = policy_tick(state.ledger.as_ref(), dir)
        .await
        .map_err(api_error)?;
    Ok(ok(StatusCode::OK, doc))
}
