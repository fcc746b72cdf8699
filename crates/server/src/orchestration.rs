//! The orchestration surfaces (IronClaw §3.1–3.9): gateway `POST /chat`, CO
//! `POST /runs` and `/runs/{id}/plan|dispatch|synthesize`, vault
//! `/theaters` and `/worktrees…`, worker `POST /jobs`, observer
//! `POST /theaters/{id}/patrol`, integration `POST /integrate`, duty officer
//! `POST /patrol`, sentinel `POST /audit`; and Garrison's remote-worker
//! routes under `/api/workers/` (long-poll claim, heartbeat, report).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, post};
use garrison_contracts::ironclaw::api::{
    ChatRequest, CreateRunRequest, IntegrateRequest, JobRequest, PrepareRequest, TheaterRequest,
    WorktreeRequest,
};
use garrison_contracts::ironclaw::{ChatMode, EventType, NewEvent};
use garrison_services::orchestration::{OrchestrationError, Orchestrator, PlanSource, Report};
use garrison_vault::PrepareFiles;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::ironclaw::{ApiError, ApiJson, ApiQuery, ok};

/// Longest long-poll a remote worker may ask for.
const MAX_CLAIM_WAIT: Duration = Duration::from_secs(30);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/chat", post(chat))
        .route("/runs", post(create_run))
        .route("/runs/{id}/plan", post(plan))
        .route("/runs/{id}/dispatch", post(dispatch))
        .route("/runs/{id}/synthesize", post(synthesize))
        .route("/theaters", post(theater))
        .route("/theaters/{id}/patrol", post(observer_patrol))
        .route("/worktrees", post(create_worktree))
        .route("/worktrees/{order_id}/prepare", post(prepare))
        .route("/worktrees/{order_id}/archive", post(archive))
        .route("/worktrees/{order_id}", delete(remove_worktree))
        .route("/jobs", post(job))
        .route("/integrate", post(integrate))
        .route("/patrol", post(duty_patrol))
        .route("/audit", post(audit))
        .route("/api/workers/claim", post(worker_claim))
        .route("/api/workers/heartbeat", post(worker_heartbeat))
        .route("/api/workers/report", post(worker_report))
}

impl From<OrchestrationError> for ApiError {
    fn from(e: OrchestrationError) -> Self {
        if let OrchestrationError::Ledger(le) = e {
            return le.into();
        }
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %e, "orchestration failure");
        }
        ApiError::new(status, e.code(), e.to_string())
    }
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
            json!({"run_id": out.run_id, "reply": out.reply.unwrap_or_default(), "artifacts": out.artifacts, "status": out.status}),
        ),
        ChatMode::Async => ok(
            StatusCode::ACCEPTED,
            json!({"run_id": out.run_id, "status": out.status}),
        ),
    })
}

async fn create_run(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateRunRequest>,
) -> Result<Response, ApiError> {
    req.validate()
        .map_err(|e| ApiError::schema_invalid(e.to_string()))?;
    let run = orch(&state, "co")?
        .create_run(&garrison_services::orchestration::CreateRun {
            user_id: Some(req.user_id),
            theater_hint: req.theater_hint,
            objective: req.objective,
        })
        .await?;
    Ok(ok(
        StatusCode::CREATED,
        json!({"run_id": run.run_id, "status": run.status, "theater_id": run.theater_id, "run": run}),
    ))
}

/// Body of `POST /runs/{id}/plan`: a plan, a planner profile, or nothing
/// (one order for the objective, under `profile` or the default).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanBody {
    #[serde(default)]
    plan: Option<Value>,
    #[serde(default)]
    planner: Option<String>,
    #[serde(default)]
    profile: Option<String>,
}

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
    let order_ids: Vec<&str> = planned.iter().map(|p| p.order_id.as_str()).collect();
    let dependencies: serde_json::Map<String, Value> = planned
        .iter()
        .map(|p| (p.order_id.clone(), json!(p.depends_on)))
        .collect();
    Ok(ok(
        StatusCode::CREATED,
        json!({"run_id": id, "order_ids": order_ids, "dependencies": dependencies, "orders": planned}),
    ))
}

async fn dispatch(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let adv = orch(&state, "co")?.dispatch(&id).await?;
    Ok(ok(StatusCode::OK, json!({"run_id": id, "dispatch": adv})))
}

async fn synthesize(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (reply, status) = orch(&state, "co")?.synthesize(&id).await?;
    Ok(ok(
        StatusCode::OK,
        json!({"run_id": id, "reply": reply, "status": status}),
    ))
}

async fn theater(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TheaterRequest>,
) -> Result<Response, ApiError> {
    let o = orch(&state, "vault")?;
    let repo = req.repo_path.as_deref().map(std::path::Path::new);
    let t = o.theaters.open(&req.theater_id, repo).await?;
    Ok(ok(StatusCode::OK, t))
}

async fn observer_patrol(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let report = orch(&state, "observer")?.patrol_theater(&id).await?;
    Ok(ok(StatusCode::OK, report))
}

/// The theater of an order: the ledger's, else the request's, else the default.
async fn theater_of(
    o: &Orchestrator,
    order_id: &str,
    given: Option<String>,
) -> Result<garrison_vault::Theater, ApiError> {
    let known = o
        .ledger
        .order_snapshot(order_id)
        .await?
        .and_then(|s| s.theater_id);
    let id = known
        .or(given)
        .unwrap_or_else(|| o.settings.default_theater.clone());
    Ok(o.theaters.open(&id, None).await?)
}

/// Appends vault events for an order, carrying its run when the ledger knows it.
async fn record_vault_events(
    o: &Orchestrator,
    theater_id: &str,
    order_id: &str,
    events: Vec<(EventType, Value)>,
) -> Result<(), ApiError> {
    let run_id = o
        .ledger
        .order_snapshot(order_id)
        .await?
        .and_then(|s| s.run_id);
    let batch = events
        .into_iter()
        .map(|(t, payload)| {
            let mut e = NewEvent::new(t)
                .theater(theater_id)
                .order(order_id)
                .payload(payload);
            e.garrison_id = o.settings.garrison_id.clone();
            e.run_id = run_id.clone();
            e
        })
        .collect();
    o.ledger.append_batch(batch).await?;
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, garrison_vault::VaultError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("vault task: {e}")))?
        .map_err(|e| OrchestrationError::from(e).into())
}

async fn create_worktree(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<WorktreeRequest>,
) -> Result<Response, ApiError> {
    let o = orch(&state, "vault")?;
    let theater = o.theaters.open(&req.theater_id, None).await?;
    let branch = req.branch_name();
    let order_id = req.order_id.clone();
    let t = theater.clone();
    let wt = blocking(move || t.create_worktree(&order_id, &branch)).await?;
    let payload = json!({"worktree_path": wt.path.display().to_string(), "branch": wt.branch, "base_sha": wt.base_sha});
    record_vault_events(
        &o,
        &req.theater_id,
        &req.order_id,
        vec![
            (EventType::WorktreeCreated, payload.clone()),
            (EventType::WorktreeReady, payload),
        ],
    )
    .await?;
    Ok(ok(
        StatusCode::CREATED,
        json!({"worktree_path": wt.path.display().to_string(), "branch": wt.branch}),
    ))
}

async fn prepare(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    ApiJson(req): ApiJson<PrepareRequest>,
) -> Result<Response, ApiError> {
    req.order
        .validate()
        .map_err(|e| ApiError::schema_invalid(e.to_string()))?;
    if req.order.order_id != order_id {
        return Err(ApiError::schema_invalid(format!(
            "order.order_id `{}` does not match the path's `{order_id}`",
            req.order.order_id
        )));
    }
    let o = orch(&state, "vault")?;
    let theater = theater_of(&o, &order_id, Some(req.order.theater_id.clone())).await?;
    let id = order_id.clone();
    let wt = blocking(move || theater.worktree(&id)).await?;
    let order_json =
        serde_json::to_value(&req.order).map_err(|e| ApiError::internal(e.to_string()))?;
    let task_md = format!(
        "# Order {}\n\nObjective: {}\n",
        req.order.order_id, req.order.objective
    );
    let files = PrepareFiles {
        order_json,
        task_md,
        state_json: json!({"order_id": order_id, "run_id": req.order.run_id, "status": "PREPARED"}),
        assignment: None,
    };
    let path = wt.path.clone();
    blocking(move || garrison_vault::prepare(&path, &files)).await?;
    Ok(ok(
        StatusCode::OK,
        json!({"worktree_path": wt.path.display().to_string(), "files": ["order.json", "task.md", "state.json"]}),
    ))
}

#[derive(Debug, Default, Deserialize)]
struct TheaterParam {
    #[serde(default)]
    theater_id: Option<String>,
    #[serde(default)]
    force: Option<bool>,
}

/// Runs a vault operation on an order's worktree (in its theater) and
/// records the event it produced.
async fn worktree_op<T: Send + 'static>(
    state: &AppState,
    order_id: &str,
    theater_id: Option<String>,
    op: impl FnOnce(&garrison_vault::Theater, &str) -> Result<T, garrison_vault::VaultError>
    + Send
    + 'static,
    event: impl FnOnce(&T) -> (EventType, Value),
) -> Result<T, ApiError> {
    let o = orch(state, "vault")?;
    let theater = theater_of(&o, order_id, theater_id).await?;
    let tid = theater.theater_id.clone();
    let id = order_id.to_string();
    let done = blocking(move || op(&theater, &id)).await?;
    record_vault_events(&o, &tid, order_id, vec![event(&done)]).await?;
    Ok(done)
}

async fn archive(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    ApiQuery(q): ApiQuery<TheaterParam>,
) -> Result<Response, ApiError> {
    let archived = worktree_op(
        &state,
        &order_id,
        q.theater_id,
        |t, id| t.archive(id),
        |a| {
            (
                EventType::WorktreeArchived,
                json!({"tag": a.tag, "commit_sha": a.commit_sha}),
            )
        },
    )
    .await?;
    Ok(ok(StatusCode::OK, archived))
}

/// Safe removal: a worktree with uncommitted changes is refused (409)
/// unless `?force=true`.
async fn remove_worktree(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    ApiQuery(q): ApiQuery<TheaterParam>,
) -> Result<Response, ApiError> {
    let force = q.force.unwrap_or(false);
    worktree_op(
        &state,
        &order_id,
        q.theater_id,
        move |t, id| t.remove_worktree(id, force),
        |()| (EventType::WorktreeRemoved, json!({"force": force})),
    )
    .await?;
    Ok(ok(
        StatusCode::OK,
        json!({"order_id": order_id, "removed": true}),
    ))
}

/// `POST /jobs`: run this (enqueued, eligible) order now on this node as
/// `unit_id`. Answers 202 once claimed; the attempt's outcome lands in the ledger.
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
    tokio::spawn(async move { garrison_services::orchestration::run_job(&runner, job).await });
    Ok(ok(
        StatusCode::ACCEPTED,
        json!({"order_id": req.order_id, "status": "RUNNING", "unit_id": req.unit_id, "worktree_path": worktree_path, "attempt": attempt}),
    ))
}

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

async fn duty_patrol(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(ok(
        StatusCode::OK,
        orch(&state, "duty")?.duty_patrol().await?,
    ))
}

async fn audit(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, orch(&state, "sentinel")?.audit().await?))
}

#[derive(Debug, Deserialize)]
struct ClaimBody {
    unit_id: String,
    /// Long-poll: wait up to this long for an order (capped at 30 s).
    #[serde(default)]
    wait_ms: u64,
}

/// 200 with the job, or 200 with `data: null` when nothing became eligible in time.
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

#[derive(Debug, Deserialize)]
struct HeartbeatBody {
    order_id: String,
    lease_token: String,
}

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
            json!({"order_id": b.order_id, "extended": true}),
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
