//! The agent loop shared by units and `/v1` runs: ask the model, run the
//! tools it calls (concurrently, results in call order), feed the result
//! envelopes back, until it answers in text — with the lifecycle events and
//! the failure-loop contract of §2.

use garrison_contracts::openclawssy::{
    RunEventType, ToolError, ToolErrorCode, ToolExecutionResult, ToolRequest, ToolResponse,
};
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::context::cap_chars;
use crate::failure_loop::{Attempt, FailureLoop, Verdict};
use crate::lifecycle::Lifecycle;
use crate::model::Model;
use crate::openai::{ChatMessage, ChatRequest, Role, ToolDefinition, tool_name_from_wire};
use crate::tools::ToolRuntime;
use crate::tools::envelope::{model_text, new_request, respond};

/// Longest display summary of a tool execution.
pub const SUMMARY_CHARS: usize = 220;

/// What one loop is asked to do.
#[derive(Debug, Clone)]
pub struct LoopSpec {
    pub run_id: String,
    pub agent_id: String,
    /// The conversation so far: system prompt, prior context, the new message.
    pub messages: Vec<ChatMessage>,
    /// Model turns before the run fails without a final answer.
    pub max_turns: u32,
    pub temperature: Option<f64>,
    /// When the run stops with [`LoopOutcome::TimedOut`].
    pub deadline: Instant,
    /// Set to `true` to cancel the run.
    pub cancel: Option<watch::Receiver<bool>>,
}

/// How a loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopOutcome {
    /// The model answered without calling a tool.
    Completed,
    /// Failing tool calls exhausted error recovery; the final text asks the
    /// user for guidance (§2).
    NeedsGuidance,
    Failed {
        reason: String,
    },
    TimedOut,
    Cancelled,
}

/// One tool call of the run, as executed.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolExecution {
    pub tool_call_id: String,
    pub request: ToolRequest,
    pub response: ToolResponse,
    /// Short display summary (at most [`SUMMARY_CHARS`]).
    pub summary: String,
}

impl ToolExecution {
    /// The `trace.tool_execution_results[]` entry.
    pub fn trace(&self) -> ToolExecutionResult {
        ToolExecutionResult {
            tool: self.response.tool.clone(),
            tool_call_id: self.tool_call_id.clone(),
            summary: self.summary.clone(),
            output: self
                .response
                .output
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_default(),
            error: self
                .response
                .error
                .as_ref()
                .map(|e| format!("{}: {}", e.code, e.message))
                .unwrap_or_default(),
        }
    }
}

/// What a loop did.
#[derive(Debug, Clone)]
pub struct LoopResult {
    pub outcome: LoopOutcome,
    /// The final answer; for a failed run the model's last text, if any.
    pub final_text: String,
    /// The whole conversation, as the model saw it.
    pub messages: Vec<ChatMessage>,
    pub executions: Vec<ToolExecution>,
    pub turns: u32,
    /// `(provider, model)` that answered last.
    pub provider: (String, String),
    /// Things worth a line in a report (audit trouble, …).
    pub notes: Vec<String>,
}

impl LoopResult {
    pub fn failed_calls(&self) -> usize {
        self.executions.iter().filter(|e| !e.response.ok).count()
    }
}

/// Why the loop stopped early.
enum Stop {
    Outcome(LoopOutcome),
    Audit(String),
}

/// Runs the loop, emitting `run.created` (unless the caller already did),
/// `run.started`, `model.requested`, `tool.call`, `tool.result` and one
/// terminal event to `life`. Never fails: every problem is an outcome.
pub async fn run_loop<M: Model>(
    model: &mut M,
    tools: &ToolRuntime,
    spec: LoopSpec,
    life: &mut Lifecycle<'_>,
) -> LoopResult {
    let (provider, model_name) = model.describe();
    let mut result = LoopResult {
        outcome: LoopOutcome::Completed,
        final_text: String::new(),
        messages: spec.messages.clone(),
        executions: Vec::new(),
        turns: 0,
        provider: (provider.clone(), model_name.clone()),
        notes: Vec::new(),
    };
    let started = life
        .created(Map::new())
        .and_then(|()| {
            life.emit(
                RunEventType::RunStarted,
                obj(
                    json!({"provider": provider, "model": model_name, "max_turns": spec.max_turns}),
                ),
            )
        })
        .map_err(|e| Stop::Audit(e.to_string()));
    let stop = match started {
        Ok(()) => turns(model, tools, &spec, life, &mut result).await,
        Err(stop) => stop,
    };
    result.outcome = match stop {
        Stop::Outcome(o) => o,
        Stop::Audit(e) => LoopOutcome::Failed {
            reason: format!("audit log unwritable: {e}"),
        },
    };
    result.provider = model.describe();
    let (kind, payload) = match &result.outcome {
        LoopOutcome::Completed | LoopOutcome::NeedsGuidance => (
            RunEventType::RunCompleted,
            json!({
                "output": result.final_text,
                "needs_guidance": result.outcome == LoopOutcome::NeedsGuidance,
            }),
        ),
        LoopOutcome::Failed { reason } => (RunEventType::RunFailed, json!({"error": reason})),
        LoopOutcome::TimedOut => (RunEventType::RunFailed, json!({"error": "timed out"})),
        LoopOutcome::Cancelled => (RunEventType::RunCancelled, json!({})),
    };
    let mut payload = obj(payload);
    payload.insert("turns".into(), json!(result.turns));
    payload.insert("tool_calls".into(), json!(result.executions.len()));
    if let Err(e) = life.emit(kind, payload) {
        result.notes.push(format!("audit log unwritable: {e}"));
    }
    result
}

async fn turns<M: Model>(
    model: &mut M,
    tools: &ToolRuntime,
    spec: &LoopSpec,
    life: &mut Lifecycle<'_>,
    result: &mut LoopResult,
) -> Stop {
    let definitions: Vec<ToolDefinition> = tools
        .specs()
        .iter()
        .map(ToolDefinition::from_spec)
        .collect();
    let mut failures = FailureLoop::new();
    let mut cancel = spec.cancel.clone();
    loop {
        if result.turns == spec.max_turns {
            return Stop::Outcome(LoopOutcome::Failed {
                reason: format!("no final answer after {} model turns", result.turns),
            });
        }
        result.turns += 1;
        let turn = result.turns;
        let recovering = failures.begin_turn();
        let mut req = ChatRequest {
            messages: result.messages.clone(),
            tools: definitions.clone(),
            temperature: spec.temperature,
        };
        if recovering {
            // Only this request carries the note; the transcript keeps the
            // conversation itself.
            req.messages
                .push(ChatMessage::system(failures.recovery_note()));
        }
        let (provider, model_name) = model.describe();
        if let Err(e) = life.emit(
            RunEventType::ModelRequested,
            obj(
                json!({"turn": turn, "provider": provider, "model": model_name,
                "messages": req.messages.len(), "recovery_mode": recovering}),
            ),
        ) {
            return Stop::Audit(e.to_string());
        }
        let reply = match bounded(spec.deadline, &mut cancel, model.complete(&req)).await {
            Err(stop) => return Stop::Outcome(stop),
            Ok(Err(e)) => {
                return Stop::Outcome(LoopOutcome::Failed {
                    reason: format!("model error: {e}"),
                });
            }
            Ok(Ok(reply)) => reply,
        };
        let mut reply = reply;
        reply.role = Role::Assistant;
        for (i, call) in reply.tool_calls.iter_mut().enumerate() {
            if call.id.is_empty() {
                call.id = format!("call_{turn}_{i}");
            }
        }
        let text = reply.content.as_deref().map(str::trim).unwrap_or_default();
        if !text.is_empty() || reply.tool_calls.is_empty() {
            // Kept so that a failed run still shows what the model last said.
            result.final_text = text.to_string();
        }
        let calls = reply.tool_calls.clone();
        result.messages.push(reply);
        if calls.is_empty() {
            return Stop::Outcome(LoopOutcome::Completed);
        }

        // Envelopes first, every call announced in order, then all run at once.
        let prepared: Vec<(String, String, Prepared)> = calls
            .iter()
            .map(|c| {
                let raw = c.function.arguments.clone();
                (
                    c.id.clone(),
                    raw.clone(),
                    prepare(tools, spec, &c.function.name, &raw),
                )
            })
            .collect();
        for (id, _, p) in &prepared {
            let req = p.request();
            if let Err(e) = life.emit(
                RunEventType::ToolCall,
                obj(
                    json!({"tool_call_id": id, "request_id": req.request_id, "tool": req.tool,
                    "input": req.input, "timeout_ms": req.timeout_ms}),
                ),
            ) {
                return Stop::Audit(e.to_string());
            }
        }
        let running = futures_util::future::join_all(prepared.iter().map(|(_, _, p)| async move {
            match p {
                Prepared::Call(req) => tools.call(req).await,
                Prepared::Rejected(resp, _) => (**resp).clone(),
            }
        }));
        let responses = match bounded(spec.deadline, &mut cancel, running).await {
            Ok(r) => r,
            Err(stop) => return Stop::Outcome(stop),
        };

        let mut escalate = false;
        for ((id, raw, p), mut resp) in prepared.into_iter().zip(responses) {
            // Secret values never go back to the model, nor into anything
            // built from the response below (summary, trace, session).
            scrub_response(life.redactor(), &mut resp);
            let summary = summarize(p.request(), &resp);
            tracing::debug!(run_id = %spec.run_id, tool = %resp.tool, ok = resp.ok, "tool call");
            if let Err(e) = life.emit(
                RunEventType::ToolResult,
                obj(
                    json!({"tool_call_id": id, "request_id": resp.request_id, "tool": resp.tool,
                    "ok": resp.ok, "output": resp.output, "error": resp.error,
                    "duration_ms": resp.duration_ms, "summary": summary}),
                ),
            ) {
                return Stop::Audit(e.to_string());
            }
            result
                .messages
                .push(ChatMessage::tool(id.clone(), model_text(&resp)));
            if failures.record(Attempt::from_response(&id, &raw, &resp)) == Verdict::Escalate {
                escalate = true;
            }
            result.executions.push(ToolExecution {
                tool_call_id: id,
                request: p.into_request(),
                response: resp,
                summary,
            });
        }
        if escalate {
            result.final_text = failures.escalation();
            result
                .messages
                .push(ChatMessage::assistant(result.final_text.clone()));
            return Stop::Outcome(LoopOutcome::NeedsGuidance);
        }
    }
}

/// `resp` with every form of every secret value of `redactor` replaced.
fn scrub_response(redactor: &crate::audit::Redactor, resp: &mut ToolResponse) {
    if redactor.is_empty() {
        return;
    }
    if let Some(output) = resp.output.as_mut() {
        redactor.secrets_in_json(output);
    }
    if let Some(error) = resp.error.as_mut() {
        if let std::borrow::Cow::Owned(m) = redactor.secrets_only(&error.message) {
            error.message = m;
        }
        error
            .details
            .values_mut()
            .for_each(|v| redactor.secrets_in_json(v));
    }
}

/// A call ready to run, or already answered because its arguments were bad.
enum Prepared {
    Call(ToolRequest),
    Rejected(Box<ToolResponse>, ToolRequest),
}

impl Prepared {
    fn request(&self) -> &ToolRequest {
        match self {
            Prepared::Call(r) | Prepared::Rejected(_, r) => r,
        }
    }

    fn into_request(self) -> ToolRequest {
        match self {
            Prepared::Call(r) | Prepared::Rejected(_, r) => r,
        }
    }
}

/// Bad arguments become a `tool.input_invalid` result for the model to
/// correct, never an error of the loop.
fn prepare(tools: &ToolRuntime, spec: &LoopSpec, wire_name: &str, raw: &str) -> Prepared {
    let mut req = new_request(
        &spec.run_id,
        &spec.agent_id,
        &tool_name_from_wire(wire_name),
        Value::Object(Map::new()),
    );
    let raw = raw.trim();
    let parsed = if raw.is_empty() {
        Ok(Value::Object(Map::new()))
    } else {
        serde_json::from_str::<Value>(raw)
    };
    let error = match parsed {
        Ok(input @ Value::Object(_)) => {
            req.input = input;
            return Prepared::Call(req);
        }
        Ok(_) => ToolError::new(
            ToolErrorCode::ToolInputInvalid,
            "arguments must be a JSON object",
        ),
        Err(e) => ToolError::new(
            ToolErrorCode::ToolInputInvalid,
            format!("arguments are not valid JSON: {e}"),
        ),
    };
    let resp = respond(&req, Err(error), 0, &tools.limits);
    Prepared::Rejected(Box::new(resp), req)
}

/// Awaits `work` until the deadline or a cancellation.
async fn bounded<F: Future>(
    deadline: Instant,
    cancel: &mut Option<watch::Receiver<bool>>,
    work: F,
) -> Result<F::Output, LoopOutcome> {
    let cancelled = async {
        match cancel {
            Some(rx) => {
                // A dropped sender never cancels.
                if rx.wait_for(|c| *c).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        out = tokio::time::timeout_at(deadline, work) => out.map_err(|_| LoopOutcome::TimedOut),
        () = cancelled => Err(LoopOutcome::Cancelled),
    }
}

/// A short, display-friendly line for one tool execution.
pub fn summarize(req: &ToolRequest, resp: &ToolResponse) -> String {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let line = match (&resp.error, &resp.output) {
        (Some(e), _) => format!("{} failed: {}: {}", resp.tool, e.code, e.message),
        (None, Some(out)) => match resp.tool.as_str() {
            "fs.read" => format!(
                "read {} byte(s) from {}",
                out.get("bytes").and_then(Value::as_u64).unwrap_or(0),
                s(out, "path")
            ),
            "fs.write" => {
                let lines = req
                    .input
                    .get("content")
                    .and_then(Value::as_str)
                    .map_or(0, |c| c.lines().count());
                format!("wrote {lines} line(s) to {}", s(out, "path"))
            }
            "fs.list" => format!(
                "listed {} entr{} in {}",
                out["entries"].as_array().map_or(0, Vec::len),
                if out["entries"].as_array().map_or(0, Vec::len) == 1 {
                    "y"
                } else {
                    "ies"
                },
                s(out, "path")
            ),
            "fs.edit" => format!("edited {}", s(out, "path")),
            "shell.exec" => {
                let cmd = s(&req.input, "command");
                match (
                    out.get("exit_code").and_then(Value::as_i64),
                    out.get("signal"),
                ) {
                    (Some(code), _) => format!("`{cmd}` exited with code {code}"),
                    (None, Some(sig)) => format!("`{cmd}` was killed by signal {sig}"),
                    (None, None) => format!("`{cmd}` finished"),
                }
            }
            other => format!("{other} succeeded"),
        },
        (None, None) => format!("{} succeeded", resp.tool),
    };
    let flat: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cap_chars(&flat, SUMMARY_CHARS)
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditLog;
    use crate::lifecycle::EventLog;
    use crate::model::ModelError;
    use crate::openai::{FunctionCall, ToolCall};
    use crate::tools::envelope::new_request;

    /// Breaks the audit directory while "thinking", then asks for a write.
    struct Saboteur(std::path::PathBuf);

    impl Model for Saboteur {
        async fn complete(&mut self, _req: &ChatRequest) -> Result<ChatMessage, ModelError> {
            std::fs::remove_dir_all(&self.0).unwrap();
            std::fs::write(&self.0, "").unwrap();
            Ok(ChatMessage {
                content: None,
                tool_calls: vec![ToolCall {
                    id: "c1".into(),
                    kind: "function".into(),
                    function: FunctionCall {
                        name: "fs_write".into(),
                        arguments: r#"{"path":"a.txt","content":"x"}"#.into(),
                    },
                }],
                ..ChatMessage::assistant("")
            })
        }
    }

    #[tokio::test]
    async fn an_unwritable_audit_stops_the_run_before_the_tool() {
        let ws = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let audit = AuditLog::at(data.path().join("audit"));
        let events = EventLog::new();
        let mut life = Lifecycle::new("run_1", "a", &events, Some(&audit));
        let spec = LoopSpec {
            run_id: "run_1".into(),
            agent_id: "a".into(),
            messages: vec![ChatMessage::user("go")],
            max_turns: 3,
            temperature: None,
            deadline: Instant::now() + std::time::Duration::from_secs(30),
            cancel: None,
        };
        let mut model = Saboteur(data.path().join("audit"));
        let r = run_loop(&mut model, &ToolRuntime::new(ws.path()), spec, &mut life).await;
        let LoopOutcome::Failed { reason } = &r.outcome else {
            panic!("{:?}", r.outcome);
        };
        assert!(reason.starts_with("audit log unwritable"), "{reason}");
        assert!(!ws.path().join("a.txt").exists(), "the tool must not run");
        assert!(r.executions.is_empty());
        let kinds: Vec<_> = events.events().iter().map(|e| e.event_type).collect();
        assert_eq!(kinds.last(), Some(&RunEventType::RunFailed));
    }

    #[test]
    fn summaries() {
        let req = new_request(
            "r",
            "a",
            "fs.write",
            json!({"path": "D", "content": "a\nb\n"}),
        );
        let ok = respond(
            &req,
            Ok(json!({"path": "D", "bytes": 4})),
            1,
            &Default::default(),
        );
        assert_eq!(summarize(&req, &ok), "wrote 2 line(s) to D");
        let err = respond(
            &req,
            Err(ToolError::new(ToolErrorCode::PolicyDenied, "no\nway")),
            1,
            &Default::default(),
        );
        assert_eq!(
            summarize(&req, &err),
            "fs.write failed: policy.denied: no way"
        );
        let sh = new_request("r", "a", "shell.exec", json!({"command": "ls"}));
        let out = respond(&sh, Ok(json!({"exit_code": 2})), 1, &Default::default());
        assert_eq!(summarize(&sh, &out), "`ls` exited with code 2");
        let long = respond(
            &req,
            Err(ToolError::new(
                ToolErrorCode::InternalError,
                "x".repeat(500),
            )),
            1,
            &Default::default(),
        );
        assert_eq!(summarize(&req, &long).chars().count(), SUMMARY_CHARS);
    }
}
