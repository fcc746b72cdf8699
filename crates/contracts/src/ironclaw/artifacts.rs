//! Worktree artifacts (ironclaw-service-contracts.md §2): `order.json`, `aar.json`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::check::parse_timestamp;
use crate::locks::normalize_resource;

/// Where each artifact lives inside an order's worktree.
pub const ORDER_FILE: &str = "order.json";
/// Path of the after-action report inside the worktree.
pub const AAR_FILE: &str = "aar.json";

/// A broken artifact field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: `{field}` {reason}")]
pub struct ArtifactError {
    pub file: &'static str,
    pub field: String,
    pub reason: String,
}

fn err(file: &'static str, field: impl Into<String>, reason: impl Into<String>) -> ArtifactError {
    ArtifactError {
        file,
        field: field.into(),
        reason: reason.into(),
    }
}

fn non_empty(file: &'static str, field: &str, value: &str) -> Result<(), ArtifactError> {
    if value.trim().is_empty() {
        Err(err(file, field, "must not be empty"))
    } else {
        Ok(())
    }
}

/// `order.json`: what a worker is asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderFile {
    pub order_id: String,
    pub run_id: String,
    pub theater_id: String,
    /// Order type (`draft`, `code`, `research`, …); routes to a profile.
    #[serde(rename = "type")]
    pub order_type: String,
    pub objective: String,
    #[serde(default)]
    pub inputs: Map<String, Value>,
    #[serde(default)]
    pub constraints: Constraints,
    pub profile: Profile,
}

/// `constraints` of an order (and of a job message, without `tool_policy`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Constraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_policy: Option<ToolPolicy>,
}

/// What tools may touch.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolPolicy {
    #[serde(default)]
    pub network: bool,
    /// Worktree-relative paths or globs (`./`, `./*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_allowlist: Option<Vec<String>>,
}

/// A model profile: name plus model id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Profile {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl OrderFile {
    /// Ids, type, objective and profile name non-empty; budget positive.
    pub fn validate(&self) -> Result<(), ArtifactError> {
        let f = ORDER_FILE;
        non_empty(f, "order_id", &self.order_id)?;
        non_empty(f, "run_id", &self.run_id)?;
        non_empty(f, "theater_id", &self.theater_id)?;
        non_empty(f, "type", &self.order_type)?;
        non_empty(f, "objective", &self.objective)?;
        non_empty(f, "profile.name", &self.profile.name)?;
        if self.constraints.budget_seconds == Some(0) {
            return Err(err(f, "constraints.budget_seconds", "must be positive"));
        }
        if let Some(list) = self
            .constraints
            .tool_policy
            .as_ref()
            .and_then(|p| p.fs_allowlist.as_ref())
        {
            for (i, p) in list.iter().enumerate() {
                non_empty(f, &format!("constraints.tool_policy.fs_allowlist[{i}]"), p)?;
            }
        }
        Ok(())
    }
}

/// `aar.json` `status`: how the order ended (lower-case order statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AarStatus {
    Completed,
    Failed,
    Blocked,
    Cancelled,
}

impl AarStatus {
    /// The order status this report ends the order in.
    pub fn order_status(self) -> super::OrderStatus {
        match self {
            AarStatus::Completed => super::OrderStatus::Completed,
            AarStatus::Failed => super::OrderStatus::Failed,
            AarStatus::Blocked => super::OrderStatus::Blocked,
            AarStatus::Cancelled => super::OrderStatus::Cancelled,
        }
    }
}

/// `aar.json`: the after-action report a worker writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aar {
    pub order_id: String,
    pub status: AarStatus,
    pub completed_at: String,
    pub summary: String,
    #[serde(default)]
    pub artifacts: Vec<ArtifactRef>,
    pub model: AarModel,
    #[serde(default)]
    pub notes: Vec<String>,
    #[serde(default)]
    pub next_recommendations: Vec<String>,
}

/// An artifact the order produced, relative to the worktree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    pub path: String,
    /// MIME type, e.g. `text/plain`.
    #[serde(rename = "type")]
    pub mime_type: String,
}

/// Which model produced the work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AarModel {
    pub provider: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
}

impl Aar {
    /// Schema checks the integration gate runs before looking at files:
    /// artifact paths must stay inside the worktree.
    pub fn validate(&self) -> Result<(), ArtifactError> {
        let f = AAR_FILE;
        non_empty(f, "order_id", &self.order_id)?;
        if parse_timestamp(&self.completed_at).is_none() {
            return Err(err(f, "completed_at", "must be an ISO-8601 UTC timestamp"));
        }
        non_empty(f, "summary", &self.summary)?;
        non_empty(f, "model.provider", &self.model.provider)?;
        non_empty(f, "model.name", &self.model.name)?;
        if let Some(t) = self.model.temperature
            && !(t.is_finite() && t >= 0.0)
        {
            return Err(err(f, "model.temperature", "must be a non-negative number"));
        }
        if self.status == AarStatus::Completed && self.artifacts.is_empty() {
            return Err(err(
                f,
                "artifacts",
                "a completed order lists at least one artifact",
            ));
        }
        for (i, a) in self.artifacts.iter().enumerate() {
            let field = format!("artifacts[{i}].path");
            let path =
                normalize_resource(&a.path).map_err(|e| err(f, field.clone(), e.to_string()))?;
            if path.starts_with('/') || path == ".." || path.starts_with("../") {
                return Err(err(f, field, "must be a path inside the worktree"));
            }
            non_empty(f, &format!("artifacts[{i}].type"), &a.mime_type)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order() -> Value {
        json!({
          "order_id": "order_001",
          "run_id": "run_123",
          "theater_id": "demo",
          "type": "draft",
          "objective": "Summarize the input into 5 bullets",
          "inputs": { "text": "..." },
          "constraints": {
            "budget_seconds": 60,
            "max_retries": 1,
            "tool_policy": { "network": false, "fs_allowlist": ["./"] }
          },
          "profile": { "name": "executor_default", "model": "meta-llama/..." }
        })
    }

    fn aar() -> Value {
        json!({
            "order_id": "order_001",
            "status": "completed",
            "completed_at": "2026-01-14T16:21:00Z",
            "summary": "What was done and results",
            "artifacts": [{ "path": "outputs/model_output.txt", "type": "text/plain" }],
            "model": {
                "provider": "io.intelligence",
                "name": "meta-llama/Llama-3.3-70B-Instruct",
                "temperature": 0.2
            },
            "notes": [],
            "next_recommendations": []
        })
    }

    #[test]
    fn contract_examples_round_trip() {
        let o: OrderFile = serde_json::from_value(order()).unwrap();
        o.validate().unwrap();
        assert_eq!(serde_json::to_value(&o).unwrap(), order());
        let a: Aar = serde_json::from_value(aar()).unwrap();
        a.validate().unwrap();
        assert_eq!(
            a.status.order_status(),
            super::super::OrderStatus::Completed
        );
        assert_eq!(serde_json::to_value(&a).unwrap(), aar());
    }

    #[test]
    fn order_rules() {
        let base: OrderFile = serde_json::from_value(order()).unwrap();
        let mut o = base.clone();
        o.objective = " ".into();
        assert_eq!(o.validate().unwrap_err().field, "objective");
        let mut o = base.clone();
        o.constraints.budget_seconds = Some(0);
        assert!(o.validate().is_err());
        let mut o = base;
        o.constraints.tool_policy = Some(ToolPolicy {
            network: false,
            fs_allowlist: Some(vec![String::new()]),
        });
        assert!(o.validate().is_err());
        assert!(serde_json::from_value::<OrderFile>(json!({"order_id": "x"})).is_err());
    }

    #[test]
    fn aar_rules() {
        let base: Aar = serde_json::from_value(aar()).unwrap();
        let check = |f: &dyn Fn(&mut Aar)| {
            let mut a = base.clone();
            f(&mut a);
            a.validate().map_err(|e| e.field)
        };
        assert_eq!(
            check(&|a| a.completed_at = "later".into()),
            Err("completed_at".into())
        );
        assert_eq!(check(&|a| a.summary.clear()), Err("summary".into()));
        assert_eq!(check(&|a| a.artifacts.clear()), Err("artifacts".into()));
        assert_eq!(
            check(&|a| a.artifacts[0].path = "../x".into()),
            Err("artifacts[0].path".into())
        );
        assert_eq!(
            check(&|a| a.artifacts[0].path = "/etc/passwd".into()),
            Err("artifacts[0].path".into())
        );
        assert_eq!(
            check(&|a| a.artifacts[0].path = "./".into()),
            Err("artifacts[0].path".into())
        );
        assert_eq!(
            check(&|a| a.model.temperature = Some(-1.0)),
            Err("model.temperature".into())
        );
        assert_eq!(
            check(&|a| {
                a.status = AarStatus::Failed;
                a.artifacts.clear();
            }),
            Ok(())
        );
        assert!(serde_json::from_value::<Aar>(json!({"status": "done"})).is_err());
    }
}
