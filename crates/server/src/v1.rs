//! Openclawssy's `/v1` surface (openclawssy-contracts.md §5): queue a run,
//! read its record, chat in persisted sessions. Also the error shape every
//! Openclawssy route answers in, `{"error":{"code","message"}}`, and the
//! extractors whose rejections use it.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use garrison_contracts::openclawssy::{
    ChatMessageRequest, ChatMessageResponse, CreateRunRequest, CreateRunResponse, ErrorBody,
    V1RunStatus,
};
use garrison_runtime::{ChatReply, Openclawssy, OpenclawssyError, StartRun, StoredRun};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::route_table::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .post("/v1/runs", create_run)
        .get("/v1/runs/{run_id}", get_run)
        .post("/v1/chat/messages", chat_message)
}

/// Whether `path` belongs to the Openclawssy surface (`/v1/…`,
/// `/api/admin/…`), whose errors use its own shape.
pub fn is_openclawssy_path(path: &str) -> bool {
    ["/v1", "/api/admin"]
        .iter()
        .any(|p| path == *p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

/// An error as the Openclawssy surface reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct V1Error {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl V1Error {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> V1Error {
        V1Error {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> V1Error {
        V1Error::new(StatusCode::BAD_REQUEST, "invalid.request", message)
    }

    pub fn not_found(message: impl Into<String>) -> V1Error {
        V1Error::new(StatusCode::NOT_FOUND, "not.found", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> V1Error {
        V1Error::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// The shape's code for a bare HTTP status (errors axum or tower made).
    pub fn from_status(status: StatusCode, message: impl Into<String>) -> V1Error {
        let code = match status.as_u16() {
            401 => "unauthorized",
            404 => "not.found",
            503 => "unavailable",
            s if s >= 500 => "internal.error",
            _ => "invalid.request",
        };
        V1Error::new(status, code, message)
    }
}

impl IntoResponse for V1Error {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            axum::Json(ErrorBody::new(self.code, self.message)),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<OpenclawssyError> for V1Error {
    fn from(e: OpenclawssyError) -> V1Error {
        let status = match &e {
            OpenclawssyError::Invalid(_) => StatusCode::BAD_REQUEST,
            OpenclawssyError::NotFound(_) => StatusCode::NOT_FOUND,
            OpenclawssyError::Internal(_) => {
                tracing::error!(error = %e, "openclawssy service failure");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            OpenclawssyError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        V1Error::new(status, e.code(), e.to_string())
    }
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

/// A JSON body whose rejections use the Openclawssy shape: not JSON, not an
/// object, or of the wrong shape → 400 `invalid.request`; too large → 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct V1Json<T>(pub T);

impl<T, S> FromRequest<S> for V1Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = V1Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_object(req, state).await?;
        serde_json::from_value(bytes)
            .map(V1Json)
            .map_err(|e| V1Error::invalid(field_message(&e.to_string())))
    }
}

/// The body as a JSON object.
pub(crate) async fn json_object<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<serde_json::Value, V1Error> {
    let bytes = Bytes::from_request(req, state)
        .await
        .map_err(|r| V1Error::from_status(r.status(), r.body_text()))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| V1Error::invalid(format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(V1Error::invalid("the body must be a JSON object"));
    }
    Ok(value)
}

/// serde's `missing field `x`` as the contract words it: `x is required`.
fn field_message(serde_msg: &str) -> String {
    serde_msg
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| format!("{field} is required"))
        .unwrap_or_else(|| serde_msg.to_string())
}

/// Query parameters whose rejections use the Openclawssy shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct V1Query<T>(pub T);

impl<T, S> FromRequestParts<S> for V1Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = V1Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| V1Query(q.0))
            .map_err(|r| V1Error::invalid(r.body_text()))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surface_paths() {
        for p in ["/v1", "/v1/runs", "/api/admin/status", "/api/admin"] {
            assert!(is_openclawssy_path(p), "{p}");
        }
        for p in ["/v10", "/runs", "/api/adminx", "/api/appleseed/events"] {
            assert!(!is_openclawssy_path(p), "{p}");
        }
        assert_eq!(
            field_message("missing field `agent_id` at line 1"),
            "agent_id is required"
        );
        assert_eq!(field_message("invalid type"), "invalid type");
    }
}
