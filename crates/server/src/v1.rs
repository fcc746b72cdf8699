//! Openclawssy's `/v1` surface (openclawssy-contracts.md §5): queue a run,
//! read its record, chat in persisted sessions. Also the error shape every
//! Openclawssy route answers in, `{"error":{"code","message"}}`, and the
//! extractors whose rejections use it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use garrison_contracts::openclawssy::{
    ChatMessageRequest, ChatMessageResponse, CreateRunRequest, CreateRunResponse, ErrorBody,
    V1RunStatus,
};
use garrison_runtime::{ChatReply, Openclawssy, StartRun, StoredRun};

use crate::AppState;
use crate::error::{V1Error, V1Json};
use crate::route_table::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .post("/v1/runs", create_run)
        .get("/v1/runs/{run_id}", get_run)
        .post("/v1/chat/messages", chat_message)
}

/// The run service, or 503 on a node that does not run it.
pub fn service(state: &AppState) -> Result<&Openclawssy, V1Error> {
    state.openclawssy.as_ref().ok_or_else(|| {
        V1Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the /v1 and admin services are not running on this node",
        )
    })
}

/// `POST /v1/runs`: 202 `{id, status:"queued"}`.
#[utoipa::path(
    post,
    path = "/v1/runs",
    operation_id = "v1_create_run",
    tag = "openclawssy",
    summary = "Queue an agent run",
    description = "Records the run `queued` and starts it in the background; poll \
        `GET /v1/runs/{run_id}` for its record.",
    request_body(content = CreateRunRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued.", body = CreateRunResponse),
        (status = 400, description = "Not a JSON object, a missing or empty field, or an unusable `agent_id` (`invalid.request`).", body = ErrorBody),
        (status = 413, description = "Body over the limit.", body = ErrorBody),
        (status = 500, description = "The run could not be recorded (`internal.error`).", body = ErrorBody),
        (status = 503, description = "The run service is not running on this node, or is shutting down (`unavailable`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn create_run(
    State(state): State<AppState>,
    V1Json(req): V1Json<CreateRunRequest>,
) -> Result<(StatusCode, axum::Json<CreateRunResponse>), V1Error> {
    let started = service(&state)?
        .start_run(StartRun {
            agent_id: req.agent_id,
            message: req.message,
            source: "http".into(),
            session_id: None,
        })
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(CreateRunResponse {
            id: started.run_id,
            status: V1RunStatus::Queued,
        }),
    ))
}

/// `GET /v1/runs/{run_id}`: the run record (with its session and times).
#[utoipa::path(
    get,
    path = "/v1/runs/{run_id}",
    operation_id = "v1_get_run",
    tag = "openclawssy",
    summary = "Read a run's record",
    params(("run_id" = String, Path, description = "The `id` `POST /v1/runs` or a chat message answered with.")),
    responses(
        (status = 200, description = "The record: status, output or error, tool trace, session and times.", body = StoredRun),
        (status = 404, description = "No such run (`not.found`).", body = ErrorBody),
        (status = 500, description = "The stored record could not be read (`internal.error`).", body = ErrorBody),
        (status = 503, description = "The run service is not running on this node (`unavailable`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn get_run(
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> Result<axum::Json<StoredRun>, V1Error> {
    Ok(axum::Json(service(&state)?.run(&run_id)?))
}

/// `POST /v1/chat/messages`: 202 with the queued run, or 200 with the
/// answer to `/new` / `/resume [id]`.
#[utoipa::path(
    post,
    path = "/v1/chat/messages",
    operation_id = "v1_chat_message",
    tag = "openclawssy",
    summary = "Send a chat message",
    description = "A message continues the current session of (`user_id`, `room_id`, `channel`, \
        `agent_id`) as a queued run. `/new` opens a fresh session and `/resume [session_id]` \
        switches back to one; both answer at once.",
    request_body(content = ChatMessageRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued as a run: `{id, status:\"queued\", session_id}`.", body = ChatMessageResponse),
        (status = 200, description = "`/new` or `/resume`: `{response, session_id}`.", body = ChatMessageResponse),
        (status = 400, description = "Not a JSON object, a missing or empty field, or a command used wrongly (`invalid.request`).", body = ErrorBody),
        (status = 404, description = "`/resume` names no session of this user, room and channel (`not.found`).", body = ErrorBody),
        (status = 413, description = "Body over the limit.", body = ErrorBody),
        (status = 500, description = "The session or run could not be recorded (`internal.error`).", body = ErrorBody),
        (status = 503, description = "The run service is not running on this node, or is shutting down (`unavailable`).", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn chat_message(
    State(state): State<AppState>,
    V1Json(req): V1Json<ChatMessageRequest>,
) -> Result<(StatusCode, axum::Json<ChatMessageResponse>), V1Error> {
    let reply = service(&state)?.chat(req).await?;
    Ok(match reply {
        ChatReply::Queued { run_id, session_id } => (
            StatusCode::ACCEPTED,
            axum::Json(ChatMessageResponse {
                id: Some(run_id),
                status: Some(V1RunStatus::Queued),
                session_id: Some(session_id),
                response: None,
            }),
        ),
        ChatReply::Immediate {
            response,
            session_id,
        } => (
            StatusCode::OK,
            axum::Json(ChatMessageResponse {
                id: None,
                status: None,
                session_id,
                response: Some(response),
            }),
        ),
    })
}
