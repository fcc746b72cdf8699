//! Prometheus `GET /metrics` (bearer auth like every route) and the
//! middleware that times each HTTP request by its route template.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use garrison_metrics::METRICS;

use crate::AppState;
use crate::route_table::Routes;

pub fn routes() -> Routes {
    Routes::new().get("/metrics", scrape)
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "garrison",
    summary = "Prometheus metrics",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4: ledger appends, ingests, claims, leases, patrols, HTTP timings by route template, queue and head gauges.", content_type = "text/plain", body = String),
    ),
    security(("bearer" = [])),
)]
async fn scrape(State(state): State<AppState>) -> Response {
    let mut gauges = Vec::new();
    if let Some(orch) = &state.orchestrator {
        gauges.push((
            "garrison_queue_depth",
            "Orders ready to be claimed on this node.",
            orch.queue.depth() as f64,
        ));
        gauges.push((
            "garrison_active_leases",
            "Orders claimed and holding a lease on this node.",
            orch.queue.active_count() as f64,
        ));
    }
    if let Ok(head) = state.ledger.head().await {
        gauges.push((
            "garrison_ledger_head_seq",
            "Highest sequence number in the ledger.",
            head as f64,
        ));
    }
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        METRICS.render(&gauges),
    )
        .into_response()
}

/// Times a request from arrival to response head, labelled with the matched
/// route (`/runs/{id}`, never the raw path) so ids do not multiply series.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let response = next.run(req).await;
    METRICS.observe_http(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
