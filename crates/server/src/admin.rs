//! Openclawssy's dashboard admin API (openclawssy-contracts.md, "Dashboard
//! Admin APIs"): status, the agent config, one-way secrets, chat sessions.
//!
//! No answer here carries a secret value: secrets are listed by name, the
//! config shows its sensitive fields blank, and a rejected secret body is
//! described without quoting what was sent.

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use garrison_services::openclawssy::{
    AgentConfig, SessionFilter, SessionInfo, Status, StoredMessage,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::route_table::Routes;
use crate::v1::{V1Error, V1Json, V1Query, json_object, service};

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
pub async fn status(State(state): State<AppState>) -> Result<axum::Json<Status>, V1Error> {
    Ok(axum::Json(service(&state)?.status()))
}

/// `GET /api/admin/config`: the config in force, sensitive fields blank.
pub async fn get_config(State(state): State<AppState>) -> Result<axum::Json<Value>, V1Error> {
    Ok(axum::Json(service(&state)?.config().public_view()))
}

/// `POST /api/admin/config`: validates the whole document, then stores it
/// (the replaced file becomes the last-known-good copy). 200 with the
/// stored config as `GET` shows it.
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
pub struct SecretBody {
    pub name: String,
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

/// `POST /api/admin/secrets`: stores a value one-way; answers with its name.
pub async fn put_secret(
    State(state): State<AppState>,
    body: SecretBody,
) -> Result<axum::Json<Value>, V1Error> {
    let svc = service(&state)?.clone();
    let name = body.name.clone();
    tokio::task::spawn_blocking(move || svc.put_secret(&body.name, &body.value))
        .await
        .map_err(|e| V1Error::from_status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(axum::Json(json!({"name": name, "stored": true})))
}

/// `GET /api/admin/secrets`: the stored names, never a value.
pub async fn list_secrets(State(state): State<AppState>) -> Result<axum::Json<Value>, V1Error> {
    Ok(axum::Json(
        json!({"names": service(&state)?.secret_names()}),
    ))
}

#[derive(Serialize)]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
}

/// `GET /api/admin/chat/sessions?agent_id=&user_id=&room_id=&channel=`.
pub async fn list_sessions(
    State(state): State<AppState>,
    V1Query(filter): V1Query<SessionFilter>,
) -> Result<axum::Json<SessionList>, V1Error> {
    Ok(axum::Json(SessionList {
        sessions: service(&state)?.sessions(&filter)?,
    }))
}

#[derive(Serialize)]
pub struct SessionMessages {
    pub session_id: String,
    pub messages: Vec<StoredMessage>,
}

/// `GET /api/admin/chat/sessions/{session_id}/messages`: in order, with
/// tool metadata (`tool_name`, `tool_call_id`, `run_id`).
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
