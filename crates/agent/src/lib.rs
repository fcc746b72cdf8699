//! The worker runtime: runs one order's unit inside its worktree, and one
//! agent run for the `/v1` surface.
//!
//! Owns unit profiles and [`run_unit`] (command, llm, scripted and noop
//! units), [`run_agent`] for `/v1` runs, the agent loop ([`runner`]) with its
//! lifecycle events and failure-loop handling, the tool runtime (registry,
//! envelopes, workspace path policy, the sandbox for `shell.exec`), the audit
//! log, the session context policy, the OpenAI-compatible chat-completions
//! client with provider failover, and the scripted model used by tests and
//! the offline demo. Knows nothing of the ledger: callers turn a
//! [`UnitReport`] into events and `aar.json`, and a run's events and record
//! into whatever they persist.

pub mod artifacts;
pub mod audit;
mod capture;
pub mod command_unit;
mod completion;
pub mod context;
pub mod encoding;
pub mod failover;
pub mod failure_loop;
pub mod lifecycle;
pub mod model;
pub mod openai;
mod process_group;
pub mod provider;
pub mod run;
pub mod runner;
pub mod sandbox;
pub mod scripted;
pub mod tool_loop;
pub mod tools;
pub mod unit;

pub use artifacts::{collect_artifacts, mime_for};
pub use audit::{AuditError, AuditLog, MIN_SECRET_BYTES, Redactor, SecretSet};
pub use completion::complete_text;
pub use context::{SessionMessage, SessionRole, build_context};
pub use failover::Failover;
pub use lifecycle::{EventLog, EventSink, Lifecycle, NoEvents};
pub use model::{Model, ModelError};
pub use openai::{ChatMessage, ChatRequest, OpenAiClient, ToolCall};
pub use provider::ProviderProfile;
pub use run::{
    AgentPaths, AgentRun, AgentRunResult, RunError, RunLimits, run_agent, run_agent_with,
};
pub use runner::{LoopOutcome, LoopResult, LoopSpec, ToolExecution, run_loop};
pub use sandbox::{SandboxMode, SandboxPolicy};
pub use scripted::ScriptedModel;
pub use tool_loop::{LoopSettings, run_tool_loop, run_unit_loop};
pub use tools::ToolRuntime;
pub use unit::{
    CommandSandbox, DEFAULT_MAX_TURNS, PromptMode, UnitError, UnitHooks, UnitJob, UnitOutcome,
    UnitProfile, UnitReport, run_unit, run_unit_with,
};
