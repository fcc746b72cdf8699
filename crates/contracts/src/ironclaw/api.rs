//! IronClaw HTTP bodies (ironclaw-service-contracts.md §3–4). The
//! `{ok, data, error}` envelope they travel in is the server's.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::artifacts::{Constraints, OrderFile, Profile, ToolPolicy};

/// A request body that breaks the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {reason}")]
pub struct RequestError {
    pub field: String,
    pub reason: String,
}

fn require(field: &str, value: &str) -> Result<(), RequestError> {
    if value.trim().is_empty() {
        Err(RequestError {
            field: field.to_string(),
            reason: "is required".to_string(),
        })
    } else {
        Ok(())
    }
}

/// `mode` of `POST /chat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ChatMode {
    #[default]
    Sync,
    Async,
}

/// `POST /chat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatRequest {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theater_hint: Option<String>,
    pub message: String,
    #[serde(default)]
    pub mode: ChatMode,
}

impl ChatRequest {
    /// `user_id` and `message` are required.
    pub fn validate(&self) -> Result<(), RequestError> {
        require("user_id", &self.user_id)?;
        require("message", &self.message)
    }
}

/// `data` of a sync `POST /chat` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatReply {
    pub run_id: String,
    pub reply: String,
    #[serde(default)]
    pub artifacts: Vec<Value>,
}

/// `data` of an async `POST /chat` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatAccepted {
    pub run_id: String,
    pub status: super::RunStatus,
}

/// `POST /runs` (CO).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateRunRequest {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theater_hint: Option<String>,
    pub objective: String,
}

impl CreateRunRequest {
    /// `user_id` and `objective` are required.
    pub fn validate(&self) -> Result<(), RequestError> {
        require("user_id", &self.user_id)?;
        require("objective", &self.objective)
    }
}

/// `POST /theaters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TheaterRequest {
    pub theater_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_path: Option<String>,
}

/// `POST /worktrees`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorktreeRequest {
    pub theater_id: String,
    pub order_id: String,
    /// Default `order_<order_id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

impl WorktreeRequest {
    /// The branch to create: the given one or `order_<order_id>`.
    pub fn branch_name(&self) -> String {
        self.branch
            .clone()
            .unwrap_or_else(|| format!("order_{}", self.order_id))
    }
}

/// `data` of `POST /worktrees`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorktreeCreated {
    pub worktree_path: String,
    pub branch: String,
}

/// `POST /worktrees/{order_id}/prepare`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrepareRequest {
    pub order: OrderFile,
}

/// `POST /jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobRequest {
    pub order_id: String,
    pub theater_id: String,
    pub run_id: String,
    pub unit_id: String,
    pub worktree_path: String,
    pub profile: Profile,
    #[serde(default)]
    pub tool_policy: ToolPolicy,
}

/// `job_type` of a queue message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobType {
    #[default]
    ExecuteOrder,
}

/// A worker queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobMessage {
    pub job_type: JobType,
    pub order_id: String,
    pub run_id: String,
    pub theater_id: String,
    pub unit_id: String,
    pub worktree_path: String,
    pub attempt: u32,
    pub profile: Profile,
    #[serde(default)]
    pub constraints: Constraints,
    #[serde(default)]
    pub tool_policy: ToolPolicy,
}

/// `POST /integrate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntegrateRequest {
    pub theater_id: String,
    pub order_id: String,
    pub worktree_path: String,
    #[serde(default = "default_gate_profile")]
    pub gate_profile: String,
}

fn default_gate_profile() -> String {
    "default".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chat_and_runs() {
        let c: ChatRequest = serde_json::from_value(json!({
            "user_id": "u_123", "theater_hint": "demo", "message": "Build me a summary", "mode": "sync"
        }))
        .unwrap();
        c.validate().unwrap();
        let d: ChatRequest =
            serde_json::from_value(json!({"user_id": "u", "message": "m"})).unwrap();
        assert_eq!(d.mode, ChatMode::Sync);
        assert!(
            serde_json::from_value::<ChatRequest>(
                json!({"user_id": "u", "message": "m", "mode": "later"})
            )
            .is_err()
        );
        let blank = ChatRequest {
            message: " ".into(),
            ..d
        };
        assert_eq!(blank.validate().unwrap_err().field, "message");
        let r: CreateRunRequest = serde_json::from_value(
            json!({"user_id": "u_123", "theater_hint": "demo", "objective": "..."}),
        )
        .unwrap();
        r.validate().unwrap();
        let reply: ChatReply =
            serde_json::from_value(json!({"run_id": "01J", "reply": "text", "artifacts": []}))
                .unwrap();
        assert_eq!(reply.reply, "text");
    }

    #[test]
    fn vault_worker_integration_bodies() {
        let w: WorktreeRequest =
            serde_json::from_value(json!({"theater_id": "demo", "order_id": "01J"})).unwrap();
        assert_eq!(w.branch_name(), "order_01J");
        let t: TheaterRequest =
            serde_json::from_value(json!({"theater_id": "demo", "repo_path": "/x"})).unwrap();
        assert_eq!(t.repo_path.as_deref(), Some("/x"));
        let job: JobRequest = serde_json::from_value(json!({
            "order_id": "01J", "theater_id": "demo", "run_id": "01J", "unit_id": "assault_abc123",
            "worktree_path": "/w", "profile": {"name": "executor_default", "model": "meta-llama/..."},
            "tool_policy": {"network": false}
        }))
        .unwrap();
        assert!(!job.tool_policy.network);
        let msg: JobMessage = serde_json::from_value(json!({
            "job_type": "EXECUTE_ORDER", "order_id": "01J", "run_id": "01J", "theater_id": "demo",
            "unit_id": "assault_abc123", "worktree_path": "/w", "attempt": 1,
            "profile": {"name": "executor_default", "model": "meta-llama/..."},
            "constraints": {"budget_seconds": 60, "max_retries": 1},
            "tool_policy": {"network": false, "fs_allowlist": ["./*"]}
        }))
        .unwrap();
        assert_eq!(msg.constraints.max_retries, Some(1));
        assert_eq!(
            serde_json::to_value(&msg).unwrap()["job_type"],
            json!("EXECUTE_ORDER")
        );
        let i: IntegrateRequest = serde_json::from_value(
            json!({"theater_id": "demo", "order_id": "o", "worktree_path": "/w"}),
        )
        .unwrap();
        assert_eq!(i.gate_profile, "default");
        let p: PrepareRequest = serde_json::from_value(json!({"order": {
            "order_id": "o", "run_id": "r", "theater_id": "demo", "type": "draft", "objective": "x",
            "profile": {"name": "executor_default"}
        }}))
        .unwrap();
        p.order.validate().unwrap();
    }
}
