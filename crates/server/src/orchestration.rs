//! The orchestration surfaces (IronClaw §3.1–3.9): gateway `POST /chat`, CO
//! `POST /runs` and `/runs/{id}/plan|dispatch|synthesize`, vault
//! `/theaters` and `/worktrees…`, worker `POST /jobs`, observer
//! `POST /theaters/{id}/patrol`, integration `POST /integrate`, duty officer
//! `POST /patrol`, sentinel `POST /audit`; and Garrison's remote-worker
//! routes under `/api/workers/` (long-poll claim, heartbeat, report).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use garrison_contracts::ironclaw::api::{
    ChatRequest, CreateRunRequest, IntegrateRequest, JobRequest, PrepareRequest, TheaterRequest,
    WorktreeCreated, WorktreeRequest,
};
use garrison_contracts::ironclaw::{ChatMode, RunStatus};
use garrison_ledger::RunSnapshot;
use garrison_orchestration::{Orchestrator, PREPARED_FILES, PlanSource, Report};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::OrchestrationUnavailable;
use crate::error::{ApiError, ApiJson, ApiQuery, Failure, Success, ok};
use crate::route_table::Routes;

/// Longest long-poll a remote worker may ask for.
const MAX_CLAIM_WAIT: Duration = Duration::from_secs(30);

pub fn routes() -> Routes {
    Routes::new()
        .post("/chat", chat)
        .post("/runs", create_run)
        .post("/runs/{id}/plan", plan)
        .post("/runs/{id}/dispatch", dispatch)
        .post("/runs/{id}/synthesize", synthesize)
        .post("/theaters", theater)
        .post("/theaters/{id}/patrol", observer_patrol)
        .post("/worktrees", create_worktree)
        .post("/worktrees/{order_id}/prepare", prepare)
        .post("/worktrees/{order_id}/archive", archive)
        .delete("/worktrees/{order_id}", remove_worktree)
        .post("/jobs", job)
        .post("/integrate", integrate)
        .post("/patrol", duty_patrol)
        .post("/audit", audit)
        .post("/api/workers/claim", worker_claim)
        .post("/api/workers/heartbeat", worker_heartbeat)
        .post("/api/workers/report", worker_report)
}

/// `data` of a sync `POST /chat`: the run ended (or the wait ran out).
#[derive(Serialize, ToSchema)]
struct ChatDone {
    run_id: String,
    /// Empty when the run had not ended within the wait.
    reply: String,
    #[schema(value_type = Vec<Object>)]
    artifacts: Vec<Value>,
    /// The run status (`OPEN`, `COMPLETE`, `FAILED`, `CANCELLED`).
    status: String,
}

/// `data` of an async `POST /chat`.
#[derive(Serialize, ToSchema)]
struct ChatQueued {
    run_id: String,
    status: String,
}

/// `data` of `POST /runs`.
#[derive(Serialize, ToSchema)]
struct RunCreated {
    run_id: String,
    status: RunStatus,
    theater_id: Option<String>,
    run: RunSnapshot,
}

/// `data` of `POST /runs/{id}/plan`.
#[derive(Serialize, ToSchema)]
struct Planned {
    run_id: String,
    order_ids: Vec<String>,
    /// Order id → the order ids it depends on.
    #[schema(value_type = Object)]
    dependencies: serde_json::Map<String, Value>,
    #[schema(value_type = Vec<Object>)]
    orders: Vec<garrison_orchestration::PlannedOrder>,
}

/// `data` of `POST /runs/{id}/dispatch`.
#[derive(Serialize, ToSchema)]
struct Dispatched {
    run_id: String,
    /// What the dispatch enqueued, blocked or finished.
    #[schema(value_type = Object)]
    dispatch: Value,
}

/// `data` of `POST /runs/{id}/synthesize`.
#[derive(Serialize, ToSchema)]
struct Synthesized {
    run_id: String,
    reply: String,
    status: RunStatus,
}

/// `data` of `POST /worktrees/{order_id}/prepare`.
#[derive(Serialize, ToSchema)]
struct Prepared {
    worktree_path: String,
    files: Vec<&'static str>,
}

/// `data` of `DELETE /worktrees/{order_id}`.
#[derive(Serialize, ToSchema)]
struct Removed {
    order_id: String,
    removed: bool,
}

/// `data` of `POST /jobs`: claimed, now running on this node.
#[derive(Serialize, ToSchema)]
struct JobStarted {
    order_id: String,
    /// Always `RUNNING`.
    status: &'static str,
    unit_id: String,
    worktree_path: String,
    attempt: u32,
}

/// `data` of `POST /api/workers/heartbeat`.
#[derive(Serialize, ToSchema)]
struct Extended {
    order_id: String,
    extended: bool,
}

/// The orchestrator, when this node runs the service `role` (503 otherwise).
fn orch(state: &AppState, role: &str) -> Result<Arc<Orchestrator>, ApiError> {
    let o = state.orchestrator.clone().ok_or_else(|| {
        ApiError::unavailable("orchestration is not running on this node (see --services)")
    })?;
    if !o.settings.roles.runs(role) {
        return Err(ApiError::unavailable(format!(
            "the `{role}` service does not run on this node (it runs: {}; see --services)",
            o.settings.roles.names().join(", ")
        )));
    }
    Ok(o)
}

/// The gateway: a run for the message; `sync` waits for its reply
/// (`chat_wait_secs`), `async` answers at once.
#[utoipa::path(
    post,
    path = "/chat",
    tag = "ironclaw",
    summary = "Gateway: chat",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "`mode: sync`: the run's reply.", body = Success<ChatDone>),
        (status = 202, description = "`mode: async`: the run was created.", body = Success<ChatQueued>),
        (status = 400, description = "Malformed JSON.", body = Failure),
        (status = 422, description = "Missing `user_id` or `message` (`SCHEMA_INVALID`).", body = Failure),
        OrchestrationUnavailable,
    ),
    security(("bearer" = [])),
)]
async fn chat(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    req.validate()
        .map_err(|e| ApiError::schema_invalid(e.to_string()))?;
    let out = orch(&state, "gateway")?.chat(&req).await?;
    Ok(match req.mode {
        ChatMode::Sync => ok(
            StatusCode::OK,
            ChatDone {
                run_id: out.run_id,
                reply: out.reply.unwrap_or_default(),
                artifacts: out.artifacts,
                status: out.status,
            },
        ),
        ChatMode::Async => ok(
            StatusCode::ACCEPTED,
            ChatQueued {
                run_id: out.run_id,
                status: out.status,
            },
        ),
    })
}

#[utoipa::path(
    post,
    path = "/runs",
    tag = "ironclaw",
    summary = "CO: create a run",
    request_body = CreateRunRequest,
    responses(
        (status = 201, description = "The run, `OPEN`.", body = Success<RunCreated>),
        (status = 400, description = "Malformed JSON.", body = Failure),
        (status = 422, description = "Missing `user_id` or `objective`.", body = Failure),
        OrchestrationUnavailable,
    ),
    security(("bearer" = [])),
)]
async fn create_run(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateRunRequest>,
) -> Result<Response, ApiError> {
    req.validate()
        .map_err(|e| ApiError::schema_invalid(e.to_string()))?;
    let run = orch(&state, "co")?
        .create_run(&garrison_orchestration::CreateRun {
            user_id: Some(req.user_id),
            theater_hint: req.theater_hint,
            objective: req.objective,
        })
        .await?;
    Ok(ok(
        StatusCode::CREATED,
        RunCreated {
            run_id: run.run_id.clone(),
            status: run.status,
            theater_id: run.theater_id.clone(),
            run,
        },
    ))
}

/// Body of `POST /runs/{id}/plan`: a plan, a planner profile, or nothing
/// (one order for the objective, under `profile` or the default).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PlanBody {
    /// A plan document: `{"orders":[{"id","objective","depends_on","lock_scope",…}]}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    plan: Option<Value>,
    /// A planner profile that writes the plan (not with `plan`).
    #[serde(default)]
    planner: Option<String>,
    /// The profile of the single order made when neither is given.
    #[serde(default)]
    profile: Option<String>,
}

#[utoipa::path(
    post,
    path = "/runs/{id}/plan",
    tag = "ironclaw",
    summary = "CO: plan a run into orders",
    params(("id" = String, Path, description = "Run id.")),
    request_body(content = Option<PlanBody>, description = "Optional: an empty body makes one order for the run's objective."),
    responses(
        (status = 201, description = "The orders created, with their dependencies.", body = Success<Planned>),
        (status = 400, description = "Malformed JSON.", body = Failure),
        (status = 404, description = "No such run.", body = Failure),
        (status = 409, description = "The run is not open or already planned.", body = Failure),
        (status = 422, description = "An invalid plan, or both `plan` and `planner`.", body = Failure),
        OrchestrationUnavailable,
    ),
    security(("bearer" = [])),
)]
async fn plan(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    // The body is optional: empty means "one order for the objective".
    let body: PlanBody = if body.iter().all(u8::is_ascii_whitespace) {
        PlanBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ApiError::schema_invalid(e.to_string()),
            _ => ApiError::bad_request(e.to_string()),
        })?
    };
    let source = match (body.plan, body.planner) {
        (Some(_), Some(_)) => {
            return Err(ApiError::schema_invalid(
                "give either `plan` or `planner`, not both",
            ));
        }
        (Some(p), None) => PlanSource::Plan(p),
        (None, Some(profile)) => PlanSource::Planner(profile),
        (None, None) => PlanSource::Single {
            profile: body.profile,
        },
    };
    let planned = orch(&state, "co")?.plan(&id, source).await?;
    let order_ids: Vec<String> = planned.iter().map(|p| p.order_id.clone()).collect();
    let dependencies: serde_json::Map<String, Value> = planned
        .iter()
        .map(|p| (p.order_id.clone(), json!(p.depends_on)))
        .collect();
    Ok(ok(
        StatusCode::CREATED,
        Planned {
            run_id: id,
            order_ids,
            dependencies,
            orders: planned,
        },
    ))
}

#[utoipa::path(
    post,
    path = "/runs/{id}/dispatch",
    tag = "ironclaw",
    summary = "CO: enqueue the run's eligible orders",
    params(("id" = String, Path, description = "Run id.")),
    responses(
        (status = 200, description = "What was enqueued or blocked.", body = Success<Dispatched>),
        (status = 404, description = "No such run.", body = Failure),
        (status = 409, description = "The run has no plan yet.", body = Failure),
        OrchestrationUnavailable,
    ),
    security(("bearer" = [])),
)]
async fn dispatch(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let adv = orch(&state, "co")?.dispatch(&id).await?;
    let dispatch = serde_json::to_value(adv).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ok(
        StatusCode::OK,
        Dispatched {
            run_id: id,
            dispatch,
        },
    ))
}

#[utoipa::path(
    post,
    path = "/runs/{id}/synthesize",
    tag = "ironclaw",
    summary = "CO: the run's reply from its orders",
    params(("id" = String, Path, description = "Run id.")),
    responses(
        (status = 200, description = "The reply and the run's status.", body = Success<Synthesized>),
        (status = 404, description = "No such run.", body = Failure),
        OrchestrationUnavailable,
    ),
    security(("bearer" = [])),
)]
async fn synthesize(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (reply, status) = orch(&state, "co")?.synthesize(&id).await?;
    Ok(ok(
        StatusCode::OK,
        Synthesized {
            run_id: id,
            reply,
            status,
        },
    ))
}

#[utoipa::path(
    post,
    path = "/theaters",
    tag = "ironclaw",
    summary = "Vault: open (create or adopt) a theater",
    request_body = TheaterRequest,
    responses(
        (status = 200, description = "The theater: id, repository path, mainline.", body = Success<serde_json::Value>),
        (status = 400, description = "Malformed JSON.", body = Failure),
        (status = 422, description = "A bad theater id or repository.", body = Failure),
        (status = 503, description = "Orchestration is not running on this node.", body = Failure),
    ),
    security(("bearer" = [])),
)]
async fn theater(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TheaterRequest>,
) -> Result<Response, ApiError> {
    let o = orch(&state, "vault")?;
    let repo = req.repo_path.as_deref().map(std::path::Path::new);
    let t = o.theaters.open(&req.theater_id, repo).await?;
    Ok(ok(StatusCode::OK, t))
}

#[utoipa::path(
    post,
    path = "/theaters/{id}/patrol",
    tag = "ironclaw",
    summary = "Observer: patrol a theater",
    params(("id" = String, Path, description = "Theater id.")),
    responses(
        (status = 200, description = "The observer's findings.", body = Success<serde_json::Value>),
        (status = 404, description = "No such theater.", body = Failure),
        OrchestrationUnavailable,
    ),
    security(("bearer" = [])),
)]
async fn observer_patrol(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let report = orch(&state, "observer")?.patrol_theater(&id).await?;
    Ok(ok(StatusCode::OK, report))
}

#[utoipa::path(
    post,
    path = "/worktrees",
    tag = "ironclaw",
    summary = "Vault: a worktree for an order",
    request_body = WorktreeRequest,
    responses(
        (status = 201, description = "Created (WORKTREE_CREATED and WORKTREE_READY appended).", body = Success<WorktreeCreated>),
        (status = 400, description = "Malformed JSON.", body = Failure),
        (status = 409, description = "The worktree or branch exists.", body = Failure),
        (status = 422, description = "A bad id or branch name.", body = Failure),
        OrchestrationUnavailable,
    ),
    security(("bearer" = [])),
)]
async fn create_worktree(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<WorktreeRequest>,
) -> Result<Response, ApiError> {
    let wt = orch(&state, "vault")?
        .create_worktree(&req.theater_id, &req.order_id, &req.branch_name())
        .await?;
    Ok(ok(
        StatusCode::CREATED,
        WorktreeCreated {
            worktree_path: wt.path.display().to_string(),
            branch: wt.branch,
        },
    ))
}

#[utoipa::path(
    post,
    path = "/worktrees/{order_id}/prepare",
    tag = "ironclaw",
    summary = "Vault: write order.json, task.md and state.json",
    params(("order_id" = String, Path, description = "Order id; must equal `order.order_id`.")),
    request_body = PrepareRequest,
    responses(
        (status = 200, description = "The files written.", body = Success<Prepared>),
        (status = 400, description = "Malformed JSON.", body = Failure),
        (status = 404, description = "No worktree for the order.", body = Failure),
        (status = 422, description = "An invalid `order.json`, or a different order id than the path's.", body = Failure),
        OrchestrationUnavailable,
    ),
    security(("bearer" = [])),
)]
async fn prepare(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    ApiJson(req): ApiJson<PrepareRequest>,
) -> Result<Response, ApiError> {
    if req.order.order_id != order_id {
        return Err(ApiError::schema_invalid(format!(
            "order.order_id `{}` does not match the path's `{order_id}`",
            req.order.order_id
        )));
    }
    let wt = orch(&state, "vault")?
        .prepare_worktree_files(&req.order)
        .await?;
    Ok(ok(
        StatusCode::OK,
        Prepared {
            worktree_path: wt.path.display().to_string(),
            files: PREPARED_FILES.to_vec(),
        },
    ))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TheaterParam {
    /// The order's theater when the ledger does not know it (else the default).
    #[serde(default)]
    theater_id: Option<String>,
    /// Remove even with uncommitted changes (`DELETE` only).
    #[serde(default)]
    force: Option<bool>,
}

#[utoipa::path(
    post,
    path = "/worktrees/{order_id}/archive",
    tag = "ironclaw",
    summary = "Vault: tag the order's worktree head",
    params(
        ("order_id" = String, Path, description = "Order id."),
        TheaterParam,
    ),
    responses(
        (status = 200, description = "The archive tag and commit (WORKTREE_ARCHIVED appended).", body = Success<serde_json::Value>),
        (status = 404, description = "No worktree for the order.", body = Failure),
        OrchestrationUnavailable,
    ),
    security(("bearer" = [])),
)]
async fn archive(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    ApiQuery(q): ApiQuery<TheaterParam>,
) -> Result<Response, ApiError> {
    let archived = orch(&state, "vault")?
        .archive_worktree(&order_id, q.theater_id)
        .await?;
    Ok(ok(StatusCode::OK, archived))
}

/// Safe removal: a worktree with uncommitted changes is refused (409)
/// unless `?force=true`.
#[utoipa::path(
    delete,
    path = "/worktrees/{order_id}",
    tag = "ironclaw",
    summary = "Vault: remove the order's worktree",
    params(
        ("order_id" = String, Path, description = "Order id."),
        TheaterParam,
    ),
    responses(
        (status = 200, description = "Removed (WORKTREE_REMOVED appended).", body = Success<Removed>),
        (status = 404, description = "No worktree for the order.", body = Failure),
        (status = 409, description = "Uncommitted changes and no `force=true`.", body = Failure),
        OrchestrationUnavailable,
    ),
    security(("bearer" = [])),
)]
async fn remove_worktree(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    ApiQuery(q): ApiQuery<TheaterParam>,
) -> Result<Response, ApiError> {
    let force = q.force.unwrap_or(false);
    orch(&state, "vault")?
        .remove_order_worktree(&order_id, q.theater_id, force)
        .await?;
    Ok(ok(
        StatusCode::OK,
        Removed {
            order_id,
            removed: true,
        },
    ))
}

/// `POST /jobs`: run this (enqueued, eligible) order now on this node as
/// `unit_id`. Answers 202 once claimed; the attempt's outcome lands in the ledger.
#[utoipa::path(
    post,
    path = "/jobs",
    tag = "ironclaw",
    summary = "Worker: run an enqueued order now",
    request_body = JobRequest,
    responses(
        (status = 202, description = "Claimed and running; the outcome lands in the ledger.", body = Success<JobStarted>),
        (status = 400, description = "Malformed JSON.", body = Failure),
        (status = 409, description = "The order is not enqueued and eligible (`CONCURRENCY_CONFLICT`).", body = Failure),
        (status = 422, description = "A body of the wrong shape.", body = Failure),
        OrchestrationUnavailable,
    ),
    security(("bearer" = [])),
)]
async fn job(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<JobRequest>,
) -> Result<Response, ApiError> {
    let o = orch(&state, "worker")?;
    let Some(job) = o.claim(&req.unit_id, Some(&req.order_id)).await? else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "CONCURRENCY_CONFLICT",
            format!(
                "order `{}` is not enqueued and eligible (dependencies, locks, or already claimed)",
                req.order_id
            ),
        ));
    };
    let worktree_path = job.message.worktree_path.clone();
    let attempt = job.message.attempt;
    let runner = o.clone();
    tokio::spawn(async move { garrison_orchestration::run_job(&runner, job).await });
    Ok(ok(
        StatusCode::ACCEPTED,
        JobStarted {
            order_id: req.order_id,
            status: "RUNNING",
            unit_id: req.unit_id,
            worktree_path,
            attempt,
        },
    ))
}

#[utoipa::path(
    post,
    path = "/integrate",
    tag = "ironclaw",
    summary = "Integration: gate and promote an order",
    request_body = IntegrateRequest,
    responses(
        (status = 200, description = "The integration outcome (passed and merged, or failed with the gate's reason).", body = Success<serde_json::Value>),
        (status = 400, description = "Malformed JSON.", body = Failure),
        (status = 404, description = "No such order.", body = Failure),
        (status = 409, description = "The order is not ready to integrate.", body = Failure),
        OrchestrationUnavailable,
    ),
    security(("bearer" = [])),
)]
async fn integrate(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<IntegrateRequest>,
) -> Result<Response, ApiError> {
    let o = orch(&state, "integration")?;
    let outcome = o.integrate(&req.order_id, Some(&req.gate_profile)).await?;
    if let Ok(order) = o.ledger.order_snapshot(&req.order_id).await
        && let Some(run_id) = order.and_then(|s| s.run_id)
    {
        o.advance(&run_id).await?;
    }
    Ok(ok(StatusCode::OK, outcome))
}

#[utoipa::path(
    post,
    path = "/patrol",
    tag = "ironclaw",
    summary = "Duty officer: one patrol",
    responses(
        (status = 200, description = "Expired leases, reissues, failures and escalations.", body = Success<serde_json::Value>),
        OrchestrationUnavailable,
    ),
    security(("bearer" = [])),
)]
async fn duty_patrol(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        orch(&state, "duty")?.duty_patrol().await?,
    ))
}

#[utoipa::path(
    post,
    path = "/audit",
    tag = "ironclaw",
    summary = "Sentinel: one audit",
    responses(
        (status = 200, description = "The sentinel's findings.", body = Success<serde_json::Value>),
        OrchestrationUnavailable,
    ),
    security(("bearer" = [])),
)]
async fn audit(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, orch(&state, "sentinel")?.audit().await?))
}

#[derive(Debug, Deserialize, ToSchema)]
struct ClaimBody {
    unit_id: String,
    /// Long-poll: wait up to this long for an order (capped at 30 s).
    #[serde(default)]
    wait_ms: u64,
}

/// 200 with the job, or 200 with `data: null` when nothing became eligible in time.
#[utoipa::path(
    post,
    path = "/api/workers/claim",
    tag = "garrison",
    summary = "Remote worker: claim an order (long-poll)",
    request_body = ClaimBody,
    responses(
        (status = 200, description = "The job (queue message, lease token, unit profile, order, assignment, prompt), or `data: null` when nothing became eligible in time.", body = Success<serde_json::Value>),
        (status = 400, description = "Malformed JSON.", body = Failure),
        (status = 422, description = "An empty `unit_id`.", body = Failure),
        OrchestrationUnavailable,
    ),
    security(("bearer" = [])),
)]
async fn worker_claim(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ClaimBody>,
) -> Result<Response, ApiError> {
    if body.unit_id.trim().is_empty() {
        return Err(ApiError::schema_invalid("unit_id must not be empty"));
    }
    let o = orch(&state, "worker")?;
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(body.wait_ms).min(MAX_CLAIM_WAIT);
    let shutdown = state.shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let changed = o.queue.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if let Some(job) = o.claim(&body.unit_id, None).await? {
            return Ok(ok(StatusCode::OK, job));
        }
        tokio::select! {
            () = &mut changed => {}
            () = tokio::time::sleep_until(deadline) => return Ok(ok(StatusCode::OK, Value::Null)),
            () = &mut shutdown => return Ok(ok(StatusCode::OK, Value::Null)),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
struct HeartbeatBody {
    order_id: String,
    lease_token: String,
}

#[utoipa::path(
    post,
    path = "/api/workers/heartbeat",
    tag = "garrison",
    summary = "Remote worker: extend a lease",
    request_body = HeartbeatBody,
    responses(
        (status = 200, description = "Extended (nothing is appended).", body = Success<Extended>),
        (status = 400, description = "Malformed JSON.", body = Failure),
        (status = 409, description = "The lease no longer holds the order (`CONCURRENCY_CONFLICT`).", body = Failure),
        (status = 503, description = "Orchestration is not running on this node.", body = Failure),
    ),
    security(("bearer" = [])),
)]
async fn worker_heartbeat(
    State(state): State<AppState>,
    ApiJson(b): ApiJson<HeartbeatBody>,
) -> Result<Response, ApiError> {
    if orch(&state, "worker")?
        .heartbeat(&b.order_id, &b.lease_token)
        .await?
    {
        Ok(ok(
            StatusCode::OK,
            Extended {
                order_id: b.order_id,
                extended: true,
            },
        ))
    } else {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "CONCURRENCY_CONFLICT",
            format!(
                "lease `{}` no longer holds order `{}`",
                b.lease_token, b.order_id
            ),
        ))
    }
}

#[utoipa::path(
    post,
    path = "/api/workers/report",
    tag = "garrison",
    summary = "Remote worker: report an attempt's outcome",
    request_body(content = Object, content_type = "application/json", description = "`{order_id, lease_token, outcome, summary, artifacts?, aar?, result?, commit_sha?}`."),
    responses(
        (status = 200, description = "What the report did: `{order_id, status, reissued}`.", body = Success<serde_json::Value>),
        (status = 400, description = "Malformed JSON.", body = Failure),
        (status = 409, description = "The lease no longer holds the order.", body = Failure),
        (status = 422, description = "A body of the wrong shape.", body = Failure),
        OrchestrationUnavailable,
    ),
    security(("bearer" = [])),
)]
async fn worker_report(
    State(state): State<AppState>,
    ApiJson(report): ApiJson<Report>,
) -> Result<Response, ApiError> {
    let o = orch(&state, "worker")?;
    let done = o.report(report).await?;
    let after = o.clone();
    let d = done.clone();
    // Integration can take a while (gates); the worker need not wait for it.
    tokio::spawn(async move {
        if let Err(e) = after.after_report(&d).await {
            tracing::error!(order_id = %d.order_id, error = %e, "after a remote report");
        }
    });
    Ok(ok(StatusCode::OK, done))
}
