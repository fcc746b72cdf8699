//! Scheduler jobs with their next run and how their last fire went, so a
//! job that does not fire stands out.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use garrison_scheduler::{JobView, SchedulerError};

use super::{Nav, Tab, clip, error_page, render, when};
use crate::AppState;

/// One scheduled job as the page shows it.
pub struct JobRow {
    pub job_id: String,
    pub agent_id: String,
    pub schedule: String,
    pub next_run: String,
    pub last_run: String,
    pub last_status: String,
    pub enabled: bool,
}

impl JobRow {
    fn of(j: &JobView) -> JobRow {
        JobRow {
            job_id: j.job.job_id.clone(),
            agent_id: j.job.agent_id.clone(),
            schedule: j.job.schedule.clone(),
            next_run: j
                .next_run_at
                .as_deref()
                .map(when)
                .unwrap_or_else(|| "—".into()),
            last_run: j
                .last_fired_at
                .as_deref()
                .map(when)
                .unwrap_or_else(|| "never".into()),
            last_status: match &j.last_outcome {
                Some(o) => clip(o, 160),
                None => String::new(),
            },
            enabled: j.job.enabled,
        }
    }
}

/// What the node can say about scheduled jobs.
pub enum Jobs {
    /// No scheduler on this node.
    Unavailable,
    Listed(Vec<JobRow>),
}

/// The jobs to show.
pub async fn jobs(state: &AppState) -> Result<Jobs, SchedulerError> {
    match &state.scheduler {
        None => Ok(Jobs::Unavailable),
        Some(s) => Ok(Jobs::Listed(
            s.list().await?.iter().map(JobRow::of).collect(),
        )),
    }
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
    match jobs(&state).await {
        Ok(jobs) => render(
            StatusCode::OK,
            &SchedulerPage {
                nav: Nav::new(Tab::Scheduler),
                jobs,
            },
        ),
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: scheduler jobs could not be read");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Tab::Scheduler,
                format!("The scheduler jobs could not be read: {e}"),
            )
        }
    }
}
