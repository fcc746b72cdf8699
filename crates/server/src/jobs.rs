//! Scheduler jobs admin (Garrison's own, beside the Openclawssy admin API):
//! create, list, show, replace, change, delete, and a job's recent fires.
//! Errors use the Openclawssy shape `{"error":{"code","message"}}`.
//!
//! `GET /api/admin/jobs` → `{"jobs":[…]}`; `POST /api/admin/jobs` → 201 with
//! the job (409 `conflict` when the id exists); `GET|PUT|PATCH|DELETE
//! /api/admin/jobs/{job_id}`; `GET /api/admin/jobs/{job_id}/fires?limit=N`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use garrison_contracts::openclawssy::ErrorBody;
use garrison_scheduler::{FireView, JobInput, JobView, Scheduler};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::SchedulerUnavailable;
use crate::error::{V1Error, V1Json};
use crate::route_table::Routes;

/// Fires `GET …/fires` returns without `?limit=`.
const DEFAULT_FIRES: usize = 20;
/// Most fires one request returns (what the scheduler keeps per job).
const MAX_FIRES: usize = garrison_scheduler::KEEP_FIRES;
// The OpenAPI document states this bound (`FiresQuery`'s `maximum`).
const _: () = assert!(MAX_FIRES == 50);

pub fn routes() -> Routes {
    Routes::new()
        .get("/api/admin/jobs", list_jobs)
        .post("/api/admin/jobs", create_job)
        .get("/api/admin/jobs/{job_id}", get_job)
        .put("/api/admin/jobs/{job_id}", replace_job)
        .patch("/api/admin/jobs/{job_id}", patch_job)
        .delete("/api/admin/jobs/{job_id}", delete_job)
        .get("/api/admin/jobs/{job_id}/fires", list_fires)
}

fn scheduler(state: &AppState) -> Result<&Arc<Scheduler>, V1Error> {
    state.scheduler.as_ref().ok_or_else(|| {
        V1Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "internal.error",
            "the scheduler is not available on this node",
        )
    })
}

/// `GET /api/admin/jobs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobView>,
}

/// `GET /api/admin/jobs/{job_id}/fires`, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct FireList {
    pub job_id: String,
    pub fires: Vec<FireView>,
}

/// `?limit=` of the fires list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FiresQuery {
    /// How many of the latest fires to return: 1 to 50 (what the scheduler
    /// keeps per job); 20 when absent.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 50)]
    pub limit: Option<String>,
}

/// `DELETE /api/admin/jobs/{job_id}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = JobDeleted)]
pub struct Deleted {
    pub job_id: String,
    pub deleted: bool,
}

/// Every job with its scheduling state.
#[utoipa::path(
    get,
    path = "/api/admin/jobs",
    operation_id = "jobs_list",
    tag = "garrison",
    summary = "List scheduler jobs",
    responses(
        (status = 200, description = "`{jobs}`: each §4 record with `next_run_at`, `last_fired_at`, `last_run_id`, `last_outcome`, `fires` and `state`.", body = JobList),
        SchedulerUnavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn list_jobs(State(state): State<AppState>) -> Result<Json<JobList>, V1Error> {
    let jobs = scheduler(&state)?.list().await?;
    Ok(Json(JobList { jobs }))
}

/// A new job; its id must be free.
#[utoipa::path(
    post,
    path = "/api/admin/jobs",
    operation_id = "jobs_create",
    tag = "garrison",
    summary = "Create a scheduler job",
    description = "Needs `job_id`, `agent_id`, `schedule` (`@every <duration>` or an RFC 3339 time), `message`, `mode` and `enabled`; `notify` and `timezone` are optional.",
    request_body(content = JobInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Created: the job with its scheduling state.", body = JobView),
        (status = 400, description = "Not JSON, an unknown field, a missing required field, or a value §4 does not allow (a cron or unparsable schedule, a bad id, a timezone other than `UTC`) (`invalid.request`); nothing stored.", body = ErrorBody),
        (status = 413, description = "Body over the limit.", body = ErrorBody),
        (status = 415, description = "No `Content-Type: application/json` (`invalid.request`).", body = ErrorBody),
        (status = 409, description = "A job with this `job_id` exists (`conflict`).", body = ErrorBody),
        SchedulerUnavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn create_job(
    State(state): State<AppState>,
    V1Json(input): V1Json<JobInput>,
) -> Result<(StatusCode, Json<JobView>), V1Error> {
    let job = scheduler(&state)?.create(input).await?;
    Ok((StatusCode::CREATED, Json(job)))
}

/// One job with its scheduling state.
#[utoipa::path(
    get,
    path = "/api/admin/jobs/{job_id}",
    operation_id = "jobs_get",
    tag = "garrison",
    summary = "Show a scheduler job",
    params(("job_id" = String, Path, description = "The job's `job_id`.")),
    responses(
        (status = 200, description = "The job with its scheduling state.", body = JobView),
        (status = 404, description = "No such job (`not.found`).", body = ErrorBody),
        SchedulerUnavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn get_job(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Json<JobView>, V1Error> {
    Ok(Json(scheduler(&state)?.get(&job_id).await?))
}

/// The whole job replaced; the path names it.
#[utoipa::path(
    put,
    path = "/api/admin/jobs/{job_id}",
    operation_id = "jobs_replace",
    tag = "garrison",
    summary = "Replace a scheduler job",
    description = "Needs the same fields as a new job; `job_id` may be left out and must match the path when given. A fetched job can be sent back as it is: its read-only fields are ignored.",
    params(("job_id" = String, Path, description = "The job's `job_id`.")),
    request_body(content = JobInput, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced: the job with its scheduling state.", body = JobView),
        (status = 400, description = "Not JSON, an unknown field, a missing required field, or a value §4 does not allow (a cron or unparsable schedule, a bad id, a timezone other than `UTC`) (`invalid.request`); nothing stored.", body = ErrorBody),
        (status = 413, description = "Body over the limit.", body = ErrorBody),
        (status = 415, description = "No `Content-Type: application/json` (`invalid.request`).", body = ErrorBody),
        (status = 404, description = "No such job (`not.found`).", body = ErrorBody),
        (status = 409, description = "The job changed meanwhile (`conflict`); read it and try again.", body = ErrorBody),
        SchedulerUnavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn replace_job(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    V1Json(input): V1Json<JobInput>,
) -> Result<Json<JobView>, V1Error> {
    Ok(Json(scheduler(&state)?.replace(&job_id, input).await?))
}

/// Only the fields sent change.
#[utoipa::path(
    patch,
    path = "/api/admin/jobs/{job_id}",
    operation_id = "jobs_patch",
    tag = "garrison",
    summary = "Change fields of a scheduler job",
    description = "Every field is optional; `{\"enabled\": false}` pauses a job. `job_id`, when given, must match the path.",
    params(("job_id" = String, Path, description = "The job's `job_id`.")),
    request_body(content = JobInput, content_type = "application/json"),
    responses(
        (status = 200, description = "Changed: the job with its scheduling state.", body = JobView),
        (status = 400, description = "Not JSON, an unknown field, a missing required field, or a value §4 does not allow (a cron or unparsable schedule, a bad id, a timezone other than `UTC`) (`invalid.request`); nothing stored.", body = ErrorBody),
        (status = 413, description = "Body over the limit.", body = ErrorBody),
        (status = 415, description = "No `Content-Type: application/json` (`invalid.request`).", body = ErrorBody),
        (status = 404, description = "No such job (`not.found`).", body = ErrorBody),
        (status = 409, description = "The job changed meanwhile (`conflict`); read it and try again.", body = ErrorBody),
        SchedulerUnavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn patch_job(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    V1Json(input): V1Json<JobInput>,
) -> Result<Json<JobView>, V1Error> {
    Ok(Json(scheduler(&state)?.patch(&job_id, input).await?))
}

/// The job stops firing and leaves the list.
#[utoipa::path(
    delete,
    path = "/api/admin/jobs/{job_id}",
    operation_id = "jobs_delete",
    tag = "garrison",
    summary = "Delete a scheduler job",
    params(("job_id" = String, Path, description = "The job's `job_id`.")),
    responses(
        (status = 200, description = "Deleted: `{job_id, deleted: true}`.", body = Deleted),
        (status = 404, description = "No such job (`not.found`).", body = ErrorBody),
        (status = 409, description = "The job changed meanwhile (`conflict`); try again.", body = ErrorBody),
        SchedulerUnavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn delete_job(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Json<Deleted>, V1Error> {
    scheduler(&state)?.delete(&job_id).await?;
    Ok(Json(Deleted {
        job_id,
        deleted: true,
    }))
}

/// A job's latest fires, newest first.
#[utoipa::path(
    get,
    path = "/api/admin/jobs/{job_id}/fires",
    operation_id = "jobs_fires",
    tag = "garrison",
    summary = "A scheduler job's recent fires",
    params(
        ("job_id" = String, Path, description = "The job's `job_id`."),
        FiresQuery,
    ),
    responses(
        (status = 200, description = "`{job_id, fires}`, newest first: when each fire was due and happened, the run it started and how that ended.", body = FireList),
        (status = 400, description = "`limit` is not a whole number from 1 to 50 (`invalid.request`).", body = ErrorBody),
        (status = 404, description = "No such job (`not.found`).", body = ErrorBody),
        SchedulerUnavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn list_fires(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    Query(q): Query<FiresQuery>,
) -> Result<Json<FireList>, V1Error> {
    let limit = match q.limit.as_deref() {
        None => DEFAULT_FIRES,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_FIRES).contains(&n) => n,
            _ => {
                return Err(V1Error::invalid(format!(
                    "limit must be a whole number from 1 to {MAX_FIRES}, not `{s}`"
                )));
            }
        },
    };
    let fires = scheduler(&state)?.fires(&job_id, limit).await?;
    Ok(Json(FireList { job_id, fires }))
}
