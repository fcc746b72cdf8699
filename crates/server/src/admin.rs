//! Openclawssy's dashboard admin API (openclawssy-contracts.md, "Dashboard
//! Admin APIs"): status, the agent config, one-way secrets, chat sessions.
//!
//! No answer here carries a secret value: secrets are listed by name, the
//! config shows its sensitive fields blank, and a rejected secret body is
//! described without quoting what was sent.

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use garrison_contracts::openclawssy::ErrorBody;
use garrison_runtime::{AgentConfig, SessionFilter, SessionInfo, Status, StoredMessage};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::AdminUnavailable;
use crate::error::{V1Error, V1Json, V1Query, json_object};
use crate::route_table::Routes;
use crate::v1::service;

pub fn routes() -> Routes {
    Routes::new()
        .get("/api/admin/status", status)
        .get("/api/admin/config", get_config)
        .post("/api/admin/config", set_config)
        .get("/api/admin/secrets", list_secrets)
        .post("/api/admin/secrets", put_secret)
        .get("/api/admin/chat/sessions", list_sessions)
        .get(
            "/api/admin/chat/sessions/{session_id}/messages",
            session_messages,
        )
}

/// `GET /api/admin/status`: recent runs and the selected provider.
#[utoipa::path(
    get,
    path = "/api/admin/status",
    operation_id = "admin_status",
    tag = "openclawssy",
    summary = "Recent runs and the selected provider",
    responses(
        (status = 200, description = "The newest runs, the provider a run would use now (never its key), where the config came from, and how many secrets are stored.", body = Status),
        AdminUnavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn status(State(state): State<AppState>) -> Result<axum::Json<Status>, V1Error> {
    Ok(axum::Json(service(&state)?.status()))
}

/// `GET /api/admin/config`: the config in force, sensitive fields blank.
#[utoipa::path(
    get,
    path = "/api/admin/config",
    operation_id = "admin_get_config",
    tag = "openclawssy",
    summary = "The agent config in force",
    responses(
        (status = 200, description = "The config; sensitive value fields are blank (`provider.api_key` is always `\"\"`), so the body can be edited and posted back.", body = AgentConfig),
        AdminUnavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn get_config(State(state): State<AppState>) -> Result<axum::Json<Value>, V1Error> {
    Ok(axum::Json(service(&state)?.config().public_view()))
}

/// `POST /api/admin/config`: validates the whole document, then stores it
/// (the replaced file becomes the last-known-good copy). 200 with the
/// stored config as `GET` shows it.
#[utoipa::path(
    post,
    path = "/api/admin/config",
    operation_id = "admin_set_config",
    tag = "openclawssy",
    summary = "Validate and store the agent config",
    description = "The whole document is validated before it replaces the stored one; the \
        replaced file is kept as the last-known-good copy. Unknown fields are refused. A key is \
        never part of the config: name a stored secret in `provider.api_key_secret`.",
    request_body(content = AgentConfig, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored; the config as `GET` shows it.", body = AgentConfig),
        (status = 400, description = "Not a JSON object, an unknown field, or a value the config does not allow (`invalid.request`); nothing stored.", body = ErrorBody),
        (status = 413, description = "Body over the limit.", body = ErrorBody),
        (status = 500, description = "The config file could not be written (`internal.error`).", body = ErrorBody),
        AdminUnavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn set_config(
    State(state): State<AppState>,
    V1Json(config): V1Json<AgentConfig>,
) -> Result<axum::Json<Value>, V1Error> {
    let svc = service(&state)?.clone();
    config
        .validate()
        .map_err(|e| V1Error::invalid(format!("invalid config: {e}")))?;
    let stored = config.clone();
    tokio::task::spawn_blocking(move || svc.set_config(stored))
        .await
        .map_err(|e| V1Error::from_status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(axum::Json(config.public_view()))
}

/// `{name, value}` of `POST /api/admin/secrets`. Deliberately not `Debug`.
#[derive(ToSchema)]
#[schema(as = SecretInput)]
pub struct SecretBody {
    /// The name the config's `provider.api_key_secret` refers to.
    pub name: String,
    /// Write-only and sensitive: stored one-way, never returned, logged or
    /// quoted in an error.
    #[schema(write_only, format = Password)]
    pub value: String,
}

impl<S: Send + Sync> FromRequest<S> for SecretBody {
    type Rejection = V1Error;

    /// Checked by hand so that no rejection quotes the value.
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = json_object(req, state).await.map_err(|e| {
            V1Error::new(
                e.status,
                e.code,
                "the body must be a JSON object {\"name\", \"value\"}",
            )
        })?;
        let Value::Object(map) = body else {
            return Err(V1Error::invalid("the body must be a JSON object"));
        };
        if let Some(extra) = map.keys().find(|k| *k != "name" && *k != "value") {
            return Err(V1Error::invalid(format!(
                "unknown field `{extra}`; a secret is {{\"name\", \"value\"}}"
            )));
        }
        let field = |k: &str| match map.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(V1Error::invalid(format!("{k} must be a string"))),
            None => Err(V1Error::invalid(format!("{k} is required"))),
        };
        Ok(SecretBody {
            name: field("name")?,
            value: field("value")?,
        })
    }
}

/// `{name, stored}` of `POST /api/admin/secrets`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretStored {
    pub name: String,
    /// Always `true`.
    pub stored: bool,
}

/// `POST /api/admin/secrets`: stores a value one-way; answers with its name.
#[utoipa::path(
    post,
    path = "/api/admin/secrets",
    operation_id = "admin_put_secret",
    tag = "openclawssy",
    summary = "Store a secret (one-way)",
    description = "Stores `value` under `name`, replacing any earlier value. The value cannot be \
        read back through any route; a rejection never quotes it.",
    request_body(content = SecretBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored: `{name, stored: true}`.", body = SecretStored),
        (status = 400, description = "Not a JSON object `{name, value}`, a missing or non-string field, an unknown field, or an unusable name (`invalid.request`).", body = ErrorBody),
        (status = 413, description = "Body over the limit.", body = ErrorBody),
        (status = 500, description = "The secrets file could not be written (`internal.error`).", body = ErrorBody),
        AdminUnavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn put_secret(
    State(state): State<AppState>,
    body: SecretBody,
) -> Result<axum::Json<SecretStored>, V1Error> {
    let svc = service(&state)?.clone();
    let name = body.name.clone();
    tokio::task::spawn_blocking(move || svc.put_secret(&body.name, &body.value))
        .await
        .map_err(|e| V1Error::from_status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(axum::Json(SecretStored { name, stored: true }))
}

/// `{names}` of `GET /api/admin/secrets`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretNames {
    pub names: Vec<String>,
}

/// `GET /api/admin/secrets`: the stored names, never a value.
#[utoipa::path(
    get,
    path = "/api/admin/secrets",
    operation_id = "admin_list_secrets",
    tag = "openclawssy",
    summary = "The names of the stored secrets",
    responses(
        (status = 200, description = "`{names}`; values are never returned.", body = SecretNames),
        AdminUnavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn list_secrets(
    State(state): State<AppState>,
) -> Result<axum::Json<SecretNames>, V1Error> {
    Ok(axum::Json(SecretNames {
        names: service(&state)?.secret_names(),
    }))
}

/// `{sessions}` of `GET /api/admin/chat/sessions`, newest first.
#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
}

/// `GET /api/admin/chat/sessions?agent_id=&user_id=&room_id=&channel=`.
#[utoipa::path(
    get,
    path = "/api/admin/chat/sessions",
    operation_id = "admin_list_sessions",
    tag = "openclawssy",
    summary = "List chat sessions",
    params(SessionFilter),
    responses(
        (status = 200, description = "The sessions matching every given filter, most recently updated first.", body = SessionList),
        (status = 400, description = "An unknown query parameter (`invalid.request`).", body = ErrorBody),
        AdminUnavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn list_sessions(
    State(state): State<AppState>,
    V1Query(filter): V1Query<SessionFilter>,
) -> Result<axum::Json<SessionList>, V1Error> {
    Ok(axum::Json(SessionList {
        sessions: service(&state)?.sessions(&filter)?,
    }))
}

/// `GET /api/admin/chat/sessions/{session_id}/messages`.
#[derive(Serialize, ToSchema)]
pub struct SessionMessages {
    pub session_id: String,
    pub messages: Vec<StoredMessage>,
}

/// `GET /api/admin/chat/sessions/{session_id}/messages`: in order, with
/// tool metadata (`tool_name`, `tool_call_id`, `run_id`).
#[utoipa::path(
    get,
    path = "/api/admin/chat/sessions/{session_id}/messages",
    operation_id = "admin_session_messages",
    tag = "openclawssy",
    summary = "A chat session's messages",
    params(("session_id" = String, Path, description = "A `session_id` from the session list or a chat reply.")),
    responses(
        (status = 200, description = "The messages in order (`seq` from 1), with tool metadata (`tool_name`, `tool_call_id`, `run_id`).", body = SessionMessages),
        (status = 404, description = "No such session (`not.found`).", body = ErrorBody),
        (status = 500, description = "The session file could not be read (`internal.error`).", body = ErrorBody),
        AdminUnavailable,
    ),
    security(("bearer" = [])),
)]
pub async fn session_messages(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> Result<axum::Json<SessionMessages>, V1Error> {
    let messages = service(&state)?.session_messages(&session_id)?;
    Ok(axum::Json(SessionMessages {
        session_id,
        messages,
    }))
}
