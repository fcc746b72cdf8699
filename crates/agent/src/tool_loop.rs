//! The tool-calling loop shared by `llm` and `scripted` units: ask the model,
//! run the tools it calls, feed the results back, until it answers in text.

use garrison_contracts::ironclaw::artifacts::AarModel;
use garrison_contracts::openclawssy::{ToolError, ToolErrorCode, ToolResponse};
use serde_json::Value;
use tokio::time::Instant;

use crate::artifacts::{collect_artifacts, ensure_outputs_dir};
use crate::model::Model;
use crate::openai::{
    ChatMessage, ChatRequest, Role, ToolCall, ToolDefinition, tool_name_from_wire,
};
use crate::tools::ToolRuntime;
use crate::tools::envelope::{model_text, new_request};
use crate::unit::{UnitJob, UnitOutcome, UnitReport};

/// Failing tool results in a row after which the unit gives up.
pub const MAX_CONSECUTIVE_TOOL_FAILURES: u32 = 5;
/// The transcript (every message, pretty JSON), relative to the workspace.
pub const TRANSCRIPT_FILE: &str = "outputs/transcript.json";
/// The model's final text, relative to the workspace.
pub const MODEL_OUTPUT_FILE: &str = "outputs/model_output.txt";

/// The system message every loop starts with.
pub const SYSTEM_PROMPT: &str = "You are a unit of a multi-agent team, working alone \
in a git worktree that holds the files for your order. Use the tools to read, write and edit \
files and to run programs. Every path is relative to the worktree root; paths outside it are \
refused. Put deliverables under outputs/. Do not commit: the control plane does that. When the \
work is done, reply without calling a tool, with a short summary of what you did.";

/// How one loop runs.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopSettings {
    /// Model turns before the unit fails without a final answer.
    pub max_turns: u32,
    pub temperature: Option<f64>,
    /// Reported as the report's `model`.
    pub model: AarModel,
}

/// Runs the loop for `job` within `job.budget`.
///
/// Tool calls of one turn run one after another, in the order given: they may
/// touch the same files, and a sequential order keeps the transcript
/// reproducible. The loop fails after `max_turns` turns without a final
/// answer, on a model error, or after [`MAX_CONSECUTIVE_TOOL_FAILURES`]
/// failing tool results in a row. Whatever the outcome, the transcript and
/// the final text are written under `outputs/`.
pub async fn run_tool_loop<M: Model>(
    model: &mut M,
    tools: &ToolRuntime,
    job: &UnitJob,
    settings: &LoopSettings,
) -> UnitReport {
    let deadline = Instant::now() + job.budget;
    let mut req = ChatRequest {
        messages: vec![
            ChatMessage::system(SYSTEM_PROMPT),
            ChatMessage::user(job.prompt.clone()),
        ],
        tools: tools
            .specs()
            .iter()
            .map(ToolDefinition::from_spec)
            .collect(),
        temperature: settings.temperature,
    };
    let mut notes = Vec::new();
    let mut tool_calls = 0u32;
    let mut failed_calls = 0u32;
    let mut failing_in_a_row = 0u32;
    let mut final_text = String::new();
    let mut turns = 0u32;

    let outcome = 'run: loop {
        if turns == settings.max_turns {
            break UnitOutcome::Failed {
                reason: format!("no final answer after {turns} model turns"),
            };
        }
        turns += 1;
        let mut reply = match tokio::time::timeout_at(deadline, model.complete(&req)).await {
            Err(_) => break UnitOutcome::TimedOut,
            Ok(Err(e)) => {
                break UnitOutcome::Failed {
                    reason: format!("model error: {e}"),
                };
            }
            Ok(Ok(reply)) => reply,
        };
        reply.role = Role::Assistant;
        for (i, call) in reply.tool_calls.iter_mut().enumerate() {
            if call.id.is_empty() {
                call.id = format!("call_{turns}_{i}");
            }
        }
        let text = reply.content.as_deref().map(str::trim).unwrap_or_default();
        let calls = reply.tool_calls.clone();
        if calls.is_empty() {
            final_text = text.to_string();
            req.messages.push(reply);
            break UnitOutcome::Succeeded;
        }
        // Kept so that a failed unit still shows what the model last said.
        if !text.is_empty() {
            final_text = text.to_string();
        }
        req.messages.push(reply);
        for call in &calls {
            tool_calls += 1;
            let run = run_call(tools, job, call);
            let Ok(resp) = tokio::time::timeout_at(deadline, run).await else {
                break 'run UnitOutcome::TimedOut;
            };
            tracing::debug!(run_id = %job.run_id, tool = %resp.tool, ok = resp.ok, "tool call");
            if resp.ok {
                failing_in_a_row = 0;
            } else {
                failed_calls += 1;
                failing_in_a_row += 1;
            }
            req.messages
                .push(ChatMessage::tool(call.id.clone(), model_text(&resp)));
        }
        if failing_in_a_row >= MAX_CONSECUTIVE_TOOL_FAILURES {
            break UnitOutcome::Failed {
                reason: format!(
                    "unit stopped after {MAX_CONSECUTIVE_TOOL_FAILURES} consecutive failing tool calls"
                ),
            };
        }
    };

    if failed_calls > 0 {
        notes.push(format!("{failed_calls} of {tool_calls} tool calls failed"));
    }
    notes.extend(write_outputs(job, &req.messages, &final_text).await.err());
    let summary = match (&outcome, final_text.is_empty()) {
        (UnitOutcome::Succeeded, false) => final_text,
        (UnitOutcome::Succeeded, true) => "finished without a final message".to_string(),
        (UnitOutcome::Failed { reason }, _) => reason.clone(),
        (UnitOutcome::TimedOut, _) => {
            format!("timed out after {:.1}s", job.budget.as_secs_f64())
        }
        (UnitOutcome::Killed { signal }, _) => format!("killed by signal {signal}"),
    };
    let artifacts = collect_artifacts(&job.workspace).unwrap_or_else(|e| {
        notes.push(format!("could not list outputs/: {e}"));
        Vec::new()
    });
    UnitReport {
        outcome,
        summary,
        artifacts,
        model: settings.model.clone(),
        notes,
        tool_calls,
    }
}

/// Runs one call from the model. Bad arguments become a `tool.input_invalid`
/// result for the model to correct, never an error of the loop.
async fn run_call(tools: &ToolRuntime, job: &UnitJob, call: &ToolCall) -> ToolResponse {
    let mut req = new_request(
        &job.run_id,
        &job.agent_id,
        &tool_name_from_wire(&call.function.name),
        Value::Null,
    );
    let raw = call.function.arguments.trim();
    let parsed = if raw.is_empty() {
        Ok(Value::Object(Default::default()))
    } else {
        serde_json::from_str::<Value>(raw)
    };
    match parsed {
        Ok(input @ Value::Object(_)) => {
            req.input = input;
            tools.call(&req).await
        }
        Ok(_) => ToolResponse::failure(
            &req,
            ToolError::new(
                ToolErrorCode::ToolInputInvalid,
                "arguments must be a JSON object",
            ),
        ),
        Err(e) => ToolResponse::failure(
            &req,
            ToolError::new(
                ToolErrorCode::ToolInputInvalid,
                format!("arguments are not valid JSON: {e}"),
            ),
        ),
    }
}

/// Writes the transcript and final text; returns a note when that fails.
async fn write_outputs(
    job: &UnitJob,
    messages: &[ChatMessage],
    final_text: &str,
) -> Result<(), String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("could not write {what}: {e}");
    ensure_outputs_dir(&job.workspace).map_err(|e| fail("outputs/", &e))?;
    let transcript =
        serde_json::to_string_pretty(messages).map_err(|e| fail(TRANSCRIPT_FILE, &e))?;
    tokio::fs::write(job.workspace.join(TRANSCRIPT_FILE), transcript)
        .await
        .map_err(|e| fail(TRANSCRIPT_FILE, &e))?;
    tokio::fs::write(job.workspace.join(MODEL_OUTPUT_FILE), final_text)
        .await
        .map_err(|e| fail(MODEL_OUTPUT_FILE, &e))?;
    Ok(())
}
