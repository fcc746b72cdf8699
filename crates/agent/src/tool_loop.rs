//! The tool-calling loop of `llm` and `scripted` units: [`run_loop`] over
//! the unit's worktree, its outcome mapped to a [`UnitReport`], the
//! transcript and final text written under `outputs/`.

use garrison_contracts::ironclaw::artifacts::AarModel;
use tokio::time::Instant;

use crate::artifacts::{collect_artifacts, ensure_outputs_dir};
use crate::lifecycle::{Lifecycle, NoEvents};
use crate::model::Model;
use crate::openai::ChatMessage;
use crate::runner::{LoopOutcome, LoopResult, LoopSpec, run_loop};
use crate::tools::ToolRuntime;
use crate::unit::{UnitJob, UnitOutcome, UnitReport};

/// The transcript (every message, pretty JSON), relative to the workspace.
pub const TRANSCRIPT_FILE: &str = "outputs/transcript.json";
/// The model's final text, relative to the workspace.
pub const MODEL_OUTPUT_FILE: &str = "outputs/model_output.txt";

/// The system message every unit loop starts with.
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

/// Runs the loop for `job` within `job.budget`, without lifecycle events
/// or audit (see [`run_unit_loop`]).
pub async fn run_tool_loop<M: Model>(
    model: &mut M,
    tools: &ToolRuntime,
    job: &UnitJob,
    settings: &LoopSettings,
) -> UnitReport {
    let mut life = Lifecycle::new(&job.run_id, &job.agent_id, &NoEvents, None);
    run_unit_loop(model, tools, job, settings, &mut life)
        .await
        .0
}

/// Runs the loop for `job`, its events to `life`.
///
/// The unit fails after `max_turns` turns without a final answer, on a model
/// error, when the failure loop escalates (the request for guidance becomes
/// the summary: a unit has nobody to ask), or when the budget runs out.
/// Whatever the outcome, the transcript and the final text are written under
/// `outputs/`.
pub async fn run_unit_loop<M: Model>(
    model: &mut M,
    tools: &ToolRuntime,
    job: &UnitJob,
    settings: &LoopSettings,
    life: &mut Lifecycle<'_>,
) -> (UnitReport, LoopResult) {
    let spec = LoopSpec {
        run_id: job.run_id.clone(),
        agent_id: job.agent_id.clone(),
        messages: vec![
            ChatMessage::system(SYSTEM_PROMPT),
            ChatMessage::user(job.prompt.clone()),
        ],
        max_turns: settings.max_turns,
        temperature: settings.temperature,
        deadline: Instant::now() + job.budget,
        cancel: None,
    };
    let result = run_loop(model, tools, spec, life).await;
    let mut notes = result.notes.clone();
    let failed_calls = result.failed_calls();
    if failed_calls > 0 {
        notes.push(format!(
            "{failed_calls} of {} tool calls failed",
            result.executions.len()
        ));
    }
    notes.extend(
        write_outputs(job, &result.messages, &result.final_text)
            .await
            .err(),
    );
    let (outcome, summary) = match &result.outcome {
        LoopOutcome::Completed if result.final_text.is_empty() => (
            UnitOutcome::Succeeded,
            "finished without a final message".to_string(),
        ),
        LoopOutcome::Completed => (UnitOutcome::Succeeded, result.final_text.clone()),
        LoopOutcome::NeedsGuidance => (
            UnitOutcome::Failed {
                reason: "tool calls kept failing through error recovery; guidance needed".into(),
            },
            result.final_text.clone(),
        ),
        LoopOutcome::Failed { reason } => (
            UnitOutcome::Failed {
                reason: reason.clone(),
            },
            reason.clone(),
        ),
        LoopOutcome::TimedOut => (
            UnitOutcome::TimedOut,
            format!("timed out after {:.1}s", job.budget.as_secs_f64()),
        ),
        LoopOutcome::Cancelled => (
            UnitOutcome::Failed {
                reason: "cancelled".into(),
            },
            "cancelled".into(),
        ),
    };
    let artifacts = collect_artifacts(&job.workspace).unwrap_or_else(|e| {
        notes.push(format!("could not list outputs/: {e}"));
        Vec::new()
    });
    let report = UnitReport {
        outcome,
        summary,
        artifacts,
        model: settings.model.clone(),
        notes,
        tool_calls: u32::try_from(result.executions.len()).unwrap_or(u32::MAX),
    };
    (report, result)
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
