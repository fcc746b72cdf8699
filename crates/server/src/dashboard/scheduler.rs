//! Scheduler jobs with their next run. This build has no scheduler, so the
//! page says so; a jobs store plugs in by returning [`Jobs::Listed`] from
//! [`jobs`].

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::{Nav, Tab, render};
use crate::AppState;

/// One scheduled job as the page shows it.
pub struct JobRow {
    pub job_id: String,
    pub schedule: String,
    pub next_run: String,
    pub last_run: String,
    pub last_status: String,
    pub enabled: bool,
}

/// What the node can say about scheduled jobs.
pub enum Jobs {
    /// No scheduler on this build or node.
    Unavailable,
    Listed(Vec<JobRow>),
}

/// The jobs to show. No scheduler exists yet, so there is nothing to ask.
pub fn jobs(_state: &AppState) -> Jobs {
    Jobs::Unavailable
}

#[derive(Template)]
#[template(path = "dashboard/scheduler.html")]
pub struct SchedulerPage {
    pub nav: Nav,
    pub jobs: Jobs,
}

/// `GET /dashboard/scheduler`.
#[utoipa::path(
    get,
    path = "/dashboard/scheduler",
    operation_id = "dashboard_scheduler",
    tag = "dashboard",
    summary = "Scheduler",
    responses(
        (status = 200, description = "Scheduled jobs.", content_type = "text/html", body = String),
    ),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn page(State(state): State<AppState>) -> Response {
    render(
        StatusCode::OK,
        &SchedulerPage {
            nav: Nav::new(Tab::Scheduler),
            jobs: jobs(&state),
        },
    )
}
