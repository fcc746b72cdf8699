//! The seam between a fire and the run it starts. The scheduler only knows
//! that a run was queued (its id) and, later, how it ended; whoever owns runs
//! (the `/v1` run service) implements [`RunLauncher`].

use futures_util::future::BoxFuture;
use garrison_contracts::openclawssy::JobMode;
use serde::{Deserialize, Serialize};

/// What one fire asks for: a run of the job's agent with the job's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaunchRequest {
    pub job_id: String,
    pub agent_id: String,
    pub message: String,
    pub mode: JobMode,
    /// The fire's number within the job (1 for its first).
    pub fire: u64,
}

/// How a launched run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutcome {
    pub status: RunEnd,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunOutcome {
    pub fn completed() -> RunOutcome {
        RunOutcome {
            status: RunEnd::Completed,
            error: None,
        }
    }

    pub fn failed(reason: impl Into<String>) -> RunOutcome {
        RunOutcome {
            status: RunEnd::Failed,
            error: Some(reason.into()),
        }
    }
}

/// A run's terminal status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunEnd {
    Completed,
    Failed,
}

/// A run that was queued: its id, and a future that resolves when it ends.
pub struct LaunchedRun {
    pub run_id: String,
    pub finished: BoxFuture<'static, RunOutcome>,
}

impl std::fmt::Debug for LaunchedRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchedRun")
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

/// Starts runs for fires.
pub trait RunLauncher: Send + Sync + 'static {
    /// Starts a run; resolves once the run is queued, with its id and a
    /// future of its end. `Err` is why no run was started.
    fn launch(&self, request: LaunchRequest) -> BoxFuture<'static, Result<LaunchedRun, String>>;
}
