//! The worker runtime: runs one order's unit inside its worktree.
//!
//! Owns unit profiles and [`run_unit`] (command, llm, scripted and noop
//! units), the tool runtime with its workspace path policy, the
//! OpenAI-compatible chat-completions client, the scripted model used by
//! tests and the offline demo, and the tool-calling loop that ties a model to
//! the tools. Knows nothing of the ledger: callers turn a [`UnitReport`] into
//! events and `aar.json`.

pub mod artifacts;
mod capture;
pub mod command_unit;
mod completion;
pub mod context;
pub mod failure_loop;
pub mod model;
pub mod openai;
mod process_group;
pub mod scripted;
pub mod tool_loop;
pub mod tools;
pub mod unit;

pub use artifacts::{collect_artifacts, mime_for};
pub use completion::complete_text;
pub use model::{Model, ModelError};
pub use openai::{ChatMessage, ChatRequest, OpenAiClient, ToolCall};
pub use scripted::ScriptedModel;
pub use tool_loop::{LoopSettings, run_tool_loop};
pub use tools::ToolRuntime;
pub use unit::{
    DEFAULT_MAX_TURNS, PromptMode, UnitError, UnitJob, UnitOutcome, UnitProfile, UnitReport,
    run_unit,
};
