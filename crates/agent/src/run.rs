//! One agent run as `/v1/runs` and `/v1/chat/messages` need it: a message
//! (plus persisted session context) for an agent, answered by the tool loop
//! in the agent's workspace, returned as the contract's run record.

use std::path::{Path, PathBuf};
use std::time::Duration;

use garrison_contracts::openclawssy::{RunRecord, RunTrace, V1RunStatus};
use serde_json::{Map, json};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::audit::{AuditError, AuditLog, agent_dir};
use crate::context::{SessionMessage, build_context, to_chat_messages};
use crate::failover::Failover;
use crate::lifecycle::{EventSink, Lifecycle};
use crate::model::Model;
use crate::openai::ChatMessage;
use crate::provider::ProviderProfile;
use crate::runner::{LoopOutcome, LoopSpec, ToolExecution, run_loop};
use crate::sandbox::SandboxPolicy;
use crate::tools::{ToolLimits, ToolRuntime};

/// The system message of a `/v1` run unless the request brings its own.
pub const AGENT_SYSTEM_PROMPT: &str = "You are a helpful agent with a private workspace. \
Use the tools to read, write and edit files there and to run programs; every path is relative \
to the workspace root and paths outside it are refused. When you are done, reply without \
calling a tool.";

/// `<data-dir>/agents/<agent_id>/…`: the fixed per-agent layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentPaths {
    pub root: PathBuf,
    /// `workspace/`: where `/v1` runs' tools work.
    pub workspace: PathBuf,
    /// `audit/`: `YYYY-MM-DD.jsonl`.
    pub audit: PathBuf,
    /// `runs/`: one bundle directory per run.
    pub runs: PathBuf,
}

impl AgentPaths {
    /// The layout of `agent_id` (checked to be one safe path component).
    pub fn new(data_dir: &Path, agent_id: &str) -> Result<AgentPaths, AuditError> {
        let root = agent_dir(data_dir, agent_id)?;
        Ok(AgentPaths {
            workspace: root.join("workspace"),
            audit: root.join("audit"),
            runs: root.join("runs"),
            root,
        })
    }
}

/// Bounds of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    pub max_turns: u32,
    /// Wall-clock budget of the whole run.
    pub budget: Duration,
    pub tools: ToolLimits,
}

impl Default for RunLimits {
    fn default() -> RunLimits {
        RunLimits {
            max_turns: crate::unit::DEFAULT_MAX_TURNS,
            budget: Duration::from_secs(600),
            tools: ToolLimits::default(),
        }
    }
}

/// One run request.
#[derive(Debug, Clone)]
pub struct AgentRun {
    pub run_id: String,
    pub agent_id: String,
    pub message: String,
    /// `http`, `chat`, `scheduler`, … (the record's `source`).
    pub source: String,
    /// Must exist; see [`AgentPaths::workspace`].
    pub workspace: PathBuf,
    /// Tried in order: the first, then the next when one fails after its
    /// retries.
    pub providers: Vec<ProviderProfile>,
    pub temperature: Option<f64>,
    /// Persisted session messages before this one, oldest first; the
    /// session context policy (§6) decides what the model sees.
    pub history: Vec<SessionMessage>,
    pub limits: RunLimits,
    /// Where every lifecycle event is audited, if anywhere.
    pub audit: Option<AuditLog>,
    /// Values to redact from events besides the providers' keys.
    pub secrets: Vec<String>,
    /// Replaces [`AGENT_SYSTEM_PROMPT`].
    pub system_prompt: Option<String>,
    /// Set to `true` to cancel the run (`run.cancelled`).
    pub cancel: Option<watch::Receiver<bool>>,
    /// Confinement of `shell.exec`.
    pub sandbox: SandboxPolicy,
    /// Workspace-relative prefixes no tool may touch, besides the defaults
    /// (`.git`).
    pub deny: Vec<String>,
}

impl AgentRun {
    /// A run with the defaults: source `http`, no history, no audit.
    pub fn new(
        run_id: impl Into<String>,
        agent_id: impl Into<String>,
        message: impl Into<String>,
        workspace: impl Into<PathBuf>,
        providers: Vec<ProviderProfile>,
    ) -> AgentRun {
        AgentRun {
            run_id: run_id.into(),
            agent_id: agent_id.into(),
            message: message.into(),
            source: "http".into(),
            workspace: workspace.into(),
            providers,
            temperature: None,
            history: Vec::new(),
            limits: RunLimits::default(),
            audit: None,
            secrets: Vec::new(),
            system_prompt: None,
            cancel: None,
            sandbox: SandboxPolicy::default(),
            deny: Vec::new(),
        }
    }
}

/// Why a run could not start (a run that started always ends in a record).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Invalid(String),
    #[error("model provider unavailable: {0}")]
    Provider(String),
    #[error("audit log unwritable: {0}")]
    Audit(#[from] AuditError),
}

impl RunError {
    /// The Openclawssy error code for the HTTP error body.
    pub fn code(&self) -> &'static str {
        match self {
            RunError::Invalid(_) => "invalid.request",
            RunError::Provider(_) | RunError::Audit(_) => "internal.error",
        }
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct AgentRunResult {
    /// `GET /v1/runs/{id}`'s body, with `trace.tool_execution_results`.
    pub record: RunRecord,
    pub outcome: LoopOutcome,
    /// The conversation as the model saw it.
    pub messages: Vec<ChatMessage>,
    pub executions: Vec<ToolExecution>,
    pub notes: Vec<String>,
}

impl AgentRunResult {
    /// This run's tool executions as session messages (`role="tool"`, with
    /// summary, error and output), followed by the final answer, for the
    /// caller to persist.
    pub fn session_messages(&self) -> Vec<SessionMessage> {
        use crate::context::SessionRole;
        let mut out: Vec<SessionMessage> = self
            .executions
            .iter()
            .map(|e| {
                let t = e.trace();
                SessionMessage {
                    role: SessionRole::Tool,
                    tool_name: Some(t.tool),
                    tool_call_id: Some(t.tool_call_id),
                    run_id: Some(self.record.id.clone()),
                    summary: t.summary,
                    error: t.error,
                    output: t.output,
                    ..SessionMessage::default()
                }
            })
            .collect();
        if let Some(text) = self.record.output.as_ref().filter(|t| !t.is_empty()) {
            out.push(SessionMessage {
                role: SessionRole::Assistant,
                content: text.clone(),
                run_id: Some(self.record.id.clone()),
                ..SessionMessage::default()
            });
        }
        out
    }
}

/// Runs `run` against its providers, events to `sink`.
pub async fn run_agent(run: &AgentRun, sink: &dyn EventSink) -> Result<AgentRunResult, RunError> {
    check(run)?;
    if run.providers.is_empty() {
        return Err(RunError::Provider("no model provider configured".into()));
    }
    let mut clients = Vec::new();
    let mut keys = Vec::new();
    for p in &run.providers {
        let (client, key) = p.client().map_err(|e| RunError::Provider(e.to_string()))?;
        clients.push(client);
        keys.extend(key);
    }
    let mut chain = Failover::new(clients);
    let mut result = run_agent_with_keys(&mut chain, run, sink, keys).await?;
    result.notes.extend(chain.switches().iter().cloned());
    Ok(result)
}

/// [`run_agent`] with a given model (scripted runs, tests).
pub async fn run_agent_with<M: Model>(
    model: &mut M,
    run: &AgentRun,
    sink: &dyn EventSink,
) -> Result<AgentRunResult, RunError> {
    check(run)?;
    run_agent_with_keys(model, run, sink, Vec::new()).await
}

fn check(run: &AgentRun) -> Result<(), RunError> {
    let req = garrison_contracts::openclawssy::CreateRunRequest {
        agent_id: run.agent_id.clone(),
        message: run.message.clone(),
    };
    req.validate()
        .map_err(|e| RunError::Invalid(e.reason.clone()))?;
    if run.run_id.trim().is_empty() {
        return Err(RunError::Invalid("run_id is required".into()));
    }
    if !crate::audit::valid_agent_id(&run.agent_id) {
        return Err(RunError::Invalid(format!(
            "agent_id `{}` may hold only letters, digits, `.`, `_` and `-`",
            run.agent_id
        )));
    }
    if run.limits.max_turns == 0 {
        return Err(RunError::Invalid("max_turns must be at least 1".into()));
    }
    if !run.workspace.is_dir() {
        return Err(RunError::Invalid(format!(
            "workspace {} is not a directory",
            run.workspace.display()
        )));
    }
    Ok(())
}

async fn run_agent_with_keys<M: Model>(
    model: &mut M,
    run: &AgentRun,
    sink: &dyn EventSink,
    keys: Vec<String>,
) -> Result<AgentRunResult, RunError> {
    let started = std::time::Instant::now();
    let mut life = Lifecycle::new(&run.run_id, &run.agent_id, sink, run.audit.as_ref())
        .with_secrets(keys.into_iter().chain(run.secrets.iter().cloned()));
    let mut created = Map::new();
    created.insert("source".into(), json!(run.source));
    created.insert("message".into(), json!(run.message));
    // A run whose audit cannot even record its creation does not start.
    life.created(created)?;

    let mut messages = vec![ChatMessage::system(
        run.system_prompt.as_deref().unwrap_or(AGENT_SYSTEM_PROMPT),
    )];
    let mut session = run.history.clone();
    session.push(SessionMessage {
        content: run.message.clone(),
        ..SessionMessage::default()
    });
    messages.extend(to_chat_messages(&build_context(&session)));
    let mut tools = ToolRuntime::new(&run.workspace);
    tools.limits = run.limits.tools;
    tools.sandbox = run.sandbox.clone();
    for entry in &run.deny {
        if !tools.deny.contains(entry) {
            tools.deny.push(entry.clone());
        }
    }
    let spec = LoopSpec {
        run_id: run.run_id.clone(),
        agent_id: run.agent_id.clone(),
        messages,
        max_turns: run.limits.max_turns,
        temperature: run.temperature,
        deadline: Instant::now() + run.limits.budget,
        cancel: run.cancel.clone(),
    };
    let result = run_loop(model, &tools, spec, &mut life).await;

    let (status, error) = match &result.outcome {
        LoopOutcome::Completed | LoopOutcome::NeedsGuidance => (V1RunStatus::Completed, None),
        LoopOutcome::Failed { reason } => (V1RunStatus::Failed, Some(reason.clone())),
        LoopOutcome::TimedOut => (V1RunStatus::Failed, Some("timed out".to_string())),
        LoopOutcome::Cancelled => (V1RunStatus::Cancelled, None),
    };
    let record = RunRecord {
        id: run.run_id.clone(),
        agent_id: run.agent_id.clone(),
        source: run.source.clone(),
        status,
        output: Some(result.final_text.clone()),
        artifact_path: None,
        duration_ms: Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)),
        tool_calls: result.executions.len() as u64,
        provider: Some(result.provider.0.clone()),
        model: Some(result.provider.1.clone()),
        error,
        trace: Some(RunTrace {
            tool_execution_results: result.executions.iter().map(ToolExecution::trace).collect(),
        }),
    };
    Ok(AgentRunResult {
        record,
        outcome: result.outcome,
        messages: result.messages,
        executions: result.executions,
        notes: result.notes,
    })
}
