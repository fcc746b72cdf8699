//! Openclawssy contracts (openclawssy-contracts.md): tool envelopes and error
//! codes, run lifecycle events, audit records, scheduler jobs, `/v1` HTTP bodies.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::check::parse_timestamp;

/// `timeout_ms` when a tool request gives none.
pub const DEFAULT_TOOL_TIMEOUT_MS: u64 = 30_000;

// --- tools -------------------------------------------------------------------

/// A normalised tool invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolRequest {
    pub request_id: String,
    pub run_id: String,
    pub agent_id: String,
    /// A registered tool name, e.g. `fs.read`.
    pub tool: String,
    pub input: Value,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

fn default_timeout() -> u64 {
    DEFAULT_TOOL_TIMEOUT_MS
}

impl ToolRequest {
    /// Required fields non-empty, `input` an object.
    pub fn validate(&self) -> Result<(), ContractError> {
        for (field, value) in [
            ("request_id", &self.request_id),
            ("run_id", &self.run_id),
            ("agent_id", &self.agent_id),
            ("tool", &self.tool),
        ] {
            non_empty(field, value)?;
        }
        if !self.input.is_object() {
            return Err(ContractError::new("input", "must be an object"));
        }
        opt_time("created_at", self.created_at.as_deref())
    }

    /// `timeout_ms` clamped to the configured maximum.
    pub fn effective_timeout_ms(&self, max_ms: u64) -> u64 {
        self.timeout_ms.min(max_ms)
    }
}

/// A tool result envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResponse {
    pub request_id: String,
    pub run_id: String,
    pub tool: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Serialised as `null` when absent, as the contract shows.
    #[serde(default)]
    pub error: Option<ToolError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

impl ToolResponse {
    /// A success carrying `output`.
    pub fn success(req: &ToolRequest, output: Value) -> ToolResponse {
        ToolResponse {
            request_id: req.request_id.clone(),
            run_id: req.run_id.clone(),
            tool: req.tool.clone(),
            ok: true,
            output: Some(output),
            error: None,
            duration_ms: None,
            finished_at: None,
        }
    }

    /// A failure carrying `error` and no output.
    pub fn failure(req: &ToolRequest, error: ToolError) -> ToolResponse {
        ToolResponse {
            ok: false,
            output: None,
            error: Some(error),
            ..ToolResponse::success(req, Value::Null)
        }
    }

    /// `ok=true` ⇔ `error=null`; `ok=false` needs `error.code`/`error.message`
    /// and an omitted or empty `output`.
    pub fn validate(&self) -> Result<(), ContractError> {
        match (self.ok, &self.error) {
            (true, Some(_)) => Err(ContractError::new("error", "must be null when ok=true")),
            (false, None) => Err(ContractError::new("error", "is required when ok=false")),
            (false, Some(e)) => {
                non_empty("error.message", &e.message)?;
                if !is_empty_output(self.output.as_ref()) {
                    return Err(ContractError::new(
                        "output",
                        "must be omitted or empty when ok=false",
                    ));
                }
                Ok(())
            }
            (true, None) => Ok(()),
        }?;
        opt_time("finished_at", self.finished_at.as_deref())
    }
}

fn is_empty_output(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

/// The standard tool error shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolError {
    pub code: ToolErrorCode,
    pub message: String,
    #[serde(default)]
    pub retryable: bool,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Value>,
}

impl ToolError {
    /// An error with the code's default `retryable` and no details.
    pub fn new(code: ToolErrorCode, message: impl Into<String>) -> ToolError {
        ToolError {
            code,
            message: message.into(),
            retryable: code.default_retryable(),
            details: Map::new(),
        }
    }

    /// Adds one `details` entry.
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> ToolError {
        self.details.insert(key.into(), value.into());
        self
    }
}

macro_rules! tool_codes {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// The canonical tool error codes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ToolErrorCode { $(#[serde(rename = $name)] $variant),+ }

        impl ToolErrorCode {
            /// Every canonical code.
            pub const ALL: &'static [ToolErrorCode] = &[$(ToolErrorCode::$variant),+];

            /// The wire name (`policy.denied`, …).
            pub fn as_str(self) -> &'static str {
                match self { $(ToolErrorCode::$variant => $name),+ }
            }
        }

        impl FromStr for ToolErrorCode {
            type Err = ContractError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(ToolErrorCode::$variant),)+
                    other => Err(ContractError::new("code", format!("unknown tool error code `{other}`"))),
                }
            }
        }
    };
}

tool_codes! {
    InvalidRequest => "invalid.request",
    ToolNotFound => "tool.not_found",
    ToolInputInvalid => "tool.input_invalid",
    PolicyDenied => "policy.denied",
    SandboxRequired => "sandbox.required",
    SandboxUnavailable => "sandbox.unavailable",
    Timeout => "timeout",
    InternalError => "internal.error",
}

impl ToolErrorCode {
    /// Only transient conditions are worth retrying by default.
    pub fn default_retryable(self) -> bool {
        matches!(
            self,
            ToolErrorCode::Timeout | ToolErrorCode::SandboxUnavailable
        )
    }
}

impl fmt::Display for ToolErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// --- run events and audit ----------------------------------------------------

macro_rules! run_event_types {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// Run lifecycle event types.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum RunEventType { $(#[serde(rename = $name)] $variant),+ }

        impl RunEventType {
            /// Every event type, in lifecycle order.
            pub const ALL: &'static [RunEventType] = &[$(RunEventType::$variant),+];

            /// The wire name (`run.created`, …).
            pub fn as_str(self) -> &'static str {
                match self { $(RunEventType::$variant => $name),+ }
            }
        }

        impl FromStr for RunEventType {
            type Err = ContractError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(RunEventType::$variant),)+
                    other => Err(ContractError::new("event_type", format!("unknown run event type `{other}`"))),
                }
            }
        }
    };
}

run_event_types! {
    RunCreated => "run.created",
    RunStarted => "run.started",
    ModelRequested => "model.requested",
    ToolCall => "tool.call",
    ToolResult => "tool.result",
    RunCompleted => "run.completed",
    RunFailed => "run.failed",
    RunCancelled => "run.cancelled",
}

impl RunEventType {
    /// `run.completed`, `run.failed` or `run.cancelled`.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunEventType::RunCompleted | RunEventType::RunFailed | RunEventType::RunCancelled
        )
    }
}

impl fmt::Display for RunEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run lifecycle event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEvent {
    pub event_id: String,
    pub event_type: RunEventType,
    pub ts: String,
    pub run_id: String,
    pub agent_id: String,
    /// Strictly increasing per run.
    pub seq: u64,
    #[serde(default)]
    pub payload: Map<String, Value>,
}

/// Checks one run's events: `run.created`, `run.started`, then any of
/// `model.requested` / `tool.call` / `tool.result` (a tool loop interleaves
/// them), then exactly one terminal event, last; one `run_id`; `seq` strictly
/// increasing. A run still in flight (no terminal yet) passes with
/// `complete = false`.
pub fn check_run_events(events: &[RunEvent], complete: bool) -> Result<(), ContractError> {
    use RunEventType::*;
    let Some(first) = events.first() else {
        return if complete {
            Err(ContractError::new(
                "events",
                "a run has at least run.created",
            ))
        } else {
            Ok(())
        };
    };
    for (i, e) in events.iter().enumerate() {
        let field = format!("events[{i}]");
        if e.run_id != first.run_id {
            return Err(ContractError::new(
                field,
                format!("belongs to run {}, not {}", e.run_id, first.run_id),
            ));
        }
        if i > 0 && e.seq <= events[i - 1].seq {
            return Err(ContractError::new(
                field,
                format!("seq {} is not greater than {}", e.seq, events[i - 1].seq),
            ));
        }
        let expected_ok = match i {
            0 => e.event_type == RunCreated,
            1 => e.event_type == RunStarted,
            _ => {
                matches!(e.event_type, ModelRequested | ToolCall | ToolResult)
                    || e.event_type.is_terminal()
            }
        };
        if !expected_ok {
            return Err(ContractError::new(
                field,
                format!("{} is out of order", e.event_type),
            ));
        }
        if e.event_type.is_terminal() && i + 1 != events.len() {
            return Err(ContractError::new(
                field,
                "a terminal event must be the last one",
            ));
        }
    }
    let terminal = events.last().is_some_and(|e| e.event_type.is_terminal());
    if complete && !terminal {
        return Err(ContractError::new(
            "events",
            "a finished run ends with run.completed|run.failed|run.cancelled",
        ));
    }
    Ok(())
}

/// One audit JSONL line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub event_id: String,
    /// A run event type or another audited action; kept open.
    pub event_type: String,
    pub ts: String,
    pub run_id: String,
    pub agent_id: String,
    /// Who acted: `system`, `user`, `agent`, …
    pub actor: String,
    pub seq: u64,
    #[serde(default)]
    pub payload: Map<String, Value>,
    /// JSON paths (e.g. `payload.input.token`) whose values were redacted.
    #[serde(default)]
    pub redactions: Vec<String>,
}

impl AuditRecord {
    /// The audit line for a run event.
    pub fn from_run_event(e: &RunEvent, actor: impl Into<String>) -> AuditRecord {
        AuditRecord {
            event_id: e.event_id.clone(),
            event_type: e.event_type.as_str().to_string(),
            ts: e.ts.clone(),
            run_id: e.run_id.clone(),
            agent_id: e.agent_id.clone(),
            actor: actor.into(),
            seq: e.seq,
            payload: e.payload.clone(),
            redactions: Vec::new(),
        }
    }
}

// --- scheduler ---------------------------------------------------------------

/// `mode` of a scheduler job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum JobMode {
    Isolated,
    MainLike,
}

/// Where a job's result is announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobNotify {
    pub channel: String,
    #[serde(default)]
    pub target: String,
}

/// A persisted scheduler job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchedulerJob {
    pub job_id: String,
    pub agent_id: String,
    /// `@every <go duration>` or a one-shot RFC 3339 timestamp.
    pub schedule: String,
    pub message: String,
    pub mode: JobMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<JobNotify>,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl SchedulerJob {
    /// §4's rules: required strings non-empty, ids safe for a URL path and a
    /// stream name, timestamps RFC 3339, `timezone` absent or `UTC`, and a
    /// supported schedule (cron is rejected). Returns the parsed schedule.
    pub fn validate(&self) -> Result<Schedule, ContractError> {
        check_id("job_id", &self.job_id)?;
        check_id("agent_id", &self.agent_id)?;
        non_empty("message", &self.message)?;
        check_timezone(self.timezone.as_deref())?;
        opt_time("created_at", self.created_at.as_deref())?;
        opt_time("updated_at", self.updated_at.as_deref())?;
        self.schedule.parse()
    }
}

/// Longest `job_id` / `agent_id`.
pub const MAX_ID_LEN: usize = 128;

/// An id that is safe in a URL path segment, a stream name and a file name:
/// ASCII letters, digits, `.`, `_`, `-`, starting with a letter or digit.
fn check_id(field: &str, id: &str) -> Result<(), ContractError> {
    non_empty(field, id)?;
    let ok_start = id.starts_with(|c: char| c.is_ascii_alphanumeric());
    let ok_chars = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok_start || !ok_chars || id.len() > MAX_ID_LEN {
        return Err(ContractError::new(
            field,
            format!(
                "{field} `{id}` must be 1-{MAX_ID_LEN} ASCII letters, digits, `.`, `_` or `-`, \
                 starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// Schedules are absolute (an interval, or a time with its own offset), so
/// the only zone that means something is UTC.
fn check_timezone(tz: Option<&str>) -> Result<(), ContractError> {
    match tz {
        None | Some("UTC") => Ok(()),
        Some(other) => Err(ContractError::new(
            "timezone",
            format!(
                "timezone `{other}` is not supported; use `UTC` or leave it out \
                 (`@every` intervals and RFC3339 times do not depend on a zone)"
            ),
        )),
    }
}

/// A parsed `schedule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// `@every <duration>`: a positive interval of at least [`MIN_EVERY`].
    Every(std::time::Duration),
    /// A one-shot RFC 3339 time.
    At(jiff::Timestamp),
}

/// Shortest `@every` interval: each fire starts an agent run and is one
/// ledger claim, so sub-second intervals are refused rather than rounded.
pub const MIN_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// What the scheduler says about a cron expression.
pub const CRON_UNSUPPORTED: &str = "cron expressions are not supported; \
     use `@every <duration>` (e.g. `@every 30m`) or an RFC3339 time (e.g. `2026-02-18T09:00:00Z`)";

impl FromStr for Schedule {
    type Err = ContractError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ContractError::new("schedule", reason);
        let s = s.trim();
        if s.is_empty() {
            return Err(err("schedule is required".into()));
        }
        if let Some(rest) = s.strip_prefix("@every") {
            if rest.is_empty() || rest.starts_with(char::is_whitespace) {
                return parse_every(rest.trim_start())
                    .map(Schedule::Every)
                    .map_err(err);
            }
            return Err(err(format!(
                "`{s}`: write `@every <duration>` with a space, e.g. `@every {rest}`"
            )));
        }
        if let Some(t) = parse_timestamp(s) {
            return Ok(Schedule::At(t));
        }
        if looks_like_cron(s) {
            return Err(err(format!("`{s}`: {CRON_UNSUPPORTED}")));
        }
        Err(err(format!(
            "`{s}` is neither `@every <duration>` (e.g. `@every 1h30m`) nor an RFC3339 time \
             (e.g. `2026-02-18T09:00:00Z`)"
        )))
    }
}

/// The duration after `@every `, as Go's `time.ParseDuration` reads it.
fn parse_every(d: &str) -> Result<std::time::Duration, String> {
    if d.is_empty() {
        return Err("`@every` needs a duration, e.g. `@every 30m`".into());
    }
    let nanos = crate::go_duration::parse(d).map_err(|e| format!("`@every {d}`: {e}"))?;
    if nanos <= 0 {
        return Err(format!(
            "`@every {d}`: the interval must be positive, e.g. `@every 30m`"
        ));
    }
    let every = std::time::Duration::from_nanos(nanos.unsigned_abs());
    if every < MIN_EVERY {
        return Err(format!(
            "`@every {d}`: the shortest interval is 1s (each fire starts a run)"
        ));
    }
    Ok(every)
}

/// Cron descriptors (`@daily`, `@reboot`, …), `TZ=` prefixes, and five to
/// seven whitespace-separated fields.
fn looks_like_cron(s: &str) -> bool {
    if s.starts_with('@') || s.starts_with("TZ=") || s.starts_with("CRON_TZ=") {
        return true;
    }
    let fields = s.split_whitespace().count();
    (5..=7).contains(&fields)
        && s.split_whitespace().all(|f| {
            f.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '*' | '/' | ',' | '-' | '?' | '#')
            })
        })
}

/// A non-negative Go duration (`1h30m`, `1.5s`, `300ms`), parsed exactly as
/// Go's `time.ParseDuration` does (see [`crate::go_duration`]).
pub fn parse_go_duration(s: &str) -> Option<std::time::Duration> {
    let nanos = crate::go_duration::parse(s).ok()?;
    u64::try_from(nanos)
        .ok()
        .map(std::time::Duration::from_nanos)
}

// --- /v1 HTTP bodies -----------------------------------------------------------

/// `POST /v1/runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Schema names are global: IronClaw's `POST /runs` body is `CreateRunRequest`.
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(as = V1CreateRunRequest)
)]
pub struct CreateRunRequest {
    pub agent_id: String,
    pub message: String,
}

impl CreateRunRequest {
    /// `agent_id` and `message` are required.
    pub fn validate(&self) -> Result<(), ContractError> {
        non_empty("agent_id", &self.agent_id)?;
        non_empty("message", &self.message)
    }
}

/// `202` body of `POST /v1/runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(as = V1CreateRunResponse)
)]
pub struct CreateRunResponse {
    pub id: String,
    pub status: V1RunStatus,
}

/// Status of a `/v1` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum V1RunStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

/// `GET /v1/runs/{run_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunRecord {
    pub id: String,
    pub agent_id: String,
    /// Where the run came from: `http`, `chat`, `scheduler`, …
    pub source: String,
    pub status: V1RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub tool_calls: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<RunTrace>,
}

/// `trace` of a run record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunTrace {
    #[serde(default)]
    pub tool_execution_results: Vec<ToolExecutionResult>,
}

/// One tool execution in a run trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolExecutionResult {
    pub tool: String,
    pub tool_call_id: String,
    /// Short display summary, when available.
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub output: String,
    #[serde(default)]
    pub error: String,
}

/// `POST /v1/chat/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatMessageRequest {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// Where the conversation happens (`web`, `slack`, …); part of the
    /// session key with the user and room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub agent_id: String,
    pub message: String,
}

impl ChatMessageRequest {
    /// `user_id`, `agent_id` and `message` are required.
    pub fn validate(&self) -> Result<(), ContractError> {
        non_empty("user_id", &self.user_id)?;
        non_empty("agent_id", &self.agent_id)?;
        non_empty("message", &self.message)
    }
}

/// `202` queued run, or `200` immediate `response` for command-style messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatMessageResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<V1RunStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
}

/// The HTTP error shape: `{"error":{"code","message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(
        as = OpenclawssyError,
        example = json!({"error": {"code": "invalid.request", "message": "agent_id is required"}})
    )
)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// `error` of an HTTP error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(as = OpenclawssyErrorDetail)
)]
pub struct ErrorDetail {
    /// `invalid.request`, `unauthorized`, `not.found`, `conflict`,
    /// `unavailable`, `internal.error`, …
    pub code: String,
    pub message: String,
}

impl ErrorBody {
    /// `{"error":{"code","message"}}`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

// --- errors --------------------------------------------------------------------

/// A contract rule a value breaks: the field and a reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ContractError {
    pub field: String,
    pub reason: String,
}

impl ContractError {
    /// A broken `field` and why.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> ContractError {
        ContractError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

fn non_empty(field: &str, value: &str) -> Result<(), ContractError> {
    if value.trim().is_empty() {
        Err(ContractError::new(field, format!("{field} is required")))
    } else {
        Ok(())
    }
}

fn opt_time(field: &str, value: Option<&str>) -> Result<(), ContractError> {
    match value {
        Some(t) if parse_timestamp(t).is_none() => Err(ContractError::new(
            field,
            format!("`{t}` is not an RFC 3339 timestamp"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request() -> ToolRequest {
        serde_json::from_value(json!({
            "request_id": "req_123", "run_id": "run_123", "agent_id": "agent_default",
            "tool": "fs.read", "input": {}, "timeout_ms": 30000, "created_at": "2026-02-15T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn tool_envelopes() {
        let req = request();
        req.validate().unwrap();
        assert_eq!(req.effective_timeout_ms(10_000), 10_000);
        let defaulted: ToolRequest = serde_json::from_value(json!({
            "request_id": "r", "run_id": "x", "agent_id": "a", "tool": "fs.read", "input": {"path": "a"}
        }))
        .unwrap();
        assert_eq!(defaulted.timeout_ms, 30_000);
        let mut bad = req.clone();
        bad.input = json!([]);
        assert_eq!(bad.validate().unwrap_err().field, "input");
        bad = req.clone();
        bad.tool = " ".into();
        assert!(bad.validate().is_err());

        let resp: ToolResponse = serde_json::from_value(json!({
            "request_id": "req_123", "run_id": "run_123", "tool": "fs.read", "ok": true,
            "output": {}, "error": null, "duration_ms": 14, "finished_at": "2026-02-15T00:00:00Z"
        }))
        .unwrap();
        resp.validate().unwrap();
        let ok = ToolResponse::success(&req, json!({"content": "x"}));
        ok.validate().unwrap();
        assert_eq!(serde_json::to_value(&ok).unwrap()["error"], Value::Null);

        let err = ToolError::new(ToolErrorCode::PolicyDenied, "write outside workspace")
            .with_detail("path", "../etc/passwd");
        let failed = ToolResponse::failure(&req, err.clone());
        failed.validate().unwrap();
        let v = serde_json::to_value(&failed).unwrap();
        assert!(v.get("output").is_none());
        assert_eq!(
            v["error"],
            json!({"code": "policy.denied", "message": "write outside workspace", "retryable": false, "details": {"path": "../etc/passwd"}})
        );

        let mut broken = failed.clone();
        broken.output = Some(json!({"content": "x"}));
        assert_eq!(broken.validate().unwrap_err().field, "output");
        broken.output = Some(json!({}));
        broken.validate().unwrap();
        broken.error = None;
        assert!(broken.validate().is_err());
        let mut both = ok.clone();
        both.error = Some(err);
        assert!(both.validate().is_err());
        let mut no_msg = failed;
        if let Some(e) = no_msg.error.as_mut() {
            e.message.clear();
        }
        assert!(no_msg.validate().is_err());
    }

    #[test]
    fn error_codes() {
        assert_eq!(ToolErrorCode::ALL.len(), 8);
        for c in ToolErrorCode::ALL {
            assert_eq!(c.as_str().parse::<ToolErrorCode>(), Ok(*c));
            assert_eq!(serde_json::to_value(c).unwrap(), json!(c.as_str()));
        }
        assert!(ToolErrorCode::Timeout.default_retryable());
        assert!(!ToolErrorCode::PolicyDenied.default_retryable());
        assert!("policy.allowed".parse::<ToolErrorCode>().is_err());
        assert!(
            serde_json::from_value::<ToolError>(json!({"code": "nope", "message": "m"})).is_err()
        );
    }

    fn event(t: RunEventType, seq: u64) -> RunEvent {
        RunEvent {
            event_id: format!("evt_{seq}"),
            event_type: t,
            ts: "2026-02-15T00:00:00Z".into(),
            run_id: "run_1".into(),
            agent_id: "agent_default".into(),
            seq,
            payload: Map::new(),
        }
    }

    #[test]
    fn run_event_order() {
        use RunEventType::*;
        assert_eq!(RunEventType::ALL.len(), 8);
        for t in RunEventType::ALL {
            assert_eq!(t.as_str().parse::<RunEventType>(), Ok(*t));
        }
        let good: Vec<RunEvent> = [
            RunCreated,
            RunStarted,
            ModelRequested,
            ToolCall,
            ToolResult,
            ModelRequested,
            RunCompleted,
        ]
        .into_iter()
        .zip(1..)
        .map(|(t, s)| event(t, s))
        .collect();
        check_run_events(&good, true).unwrap();
        check_run_events(&good[..4], false).unwrap();
        assert!(check_run_events(&good[..4], true).is_err());
        assert!(check_run_events(&[], true).is_err());
        check_run_events(&[], false).unwrap();

        let mut bad = good.clone();
        bad[3].seq = 3;
        assert!(check_run_events(&bad, true).is_err());
        let mut bad = good.clone();
        bad.swap(0, 1);
        bad[0].seq = 1;
        bad[1].seq = 2;
        assert!(check_run_events(&bad, true).is_err());
        let mut bad = good.clone();
        bad[4].event_type = RunFailed;
        assert!(check_run_events(&bad, true).is_err());
        let mut bad = good.clone();
        bad[2].run_id = "run_2".into();
        assert!(check_run_events(&bad, true).is_err());

        let v = serde_json::to_value(&good[3]).unwrap();
        assert_eq!(v["event_type"], json!("tool.call"));
        let audit = AuditRecord::from_run_event(&good[3], "system");
        assert_eq!(audit.event_type, "tool.call");
        let a: AuditRecord = serde_json::from_value(json!({
            "event_id": "evt_123", "event_type": "tool.call", "ts": "2026-02-15T00:00:00Z",
            "run_id": "run_123", "agent_id": "agent_default", "actor": "system", "seq": 7,
            "payload": {}, "redactions": ["payload.input.token"]
        }))
        .unwrap();
        assert_eq!(a.redactions, vec!["payload.input.token"]);
    }

    fn job_with(schedule: &str) -> SchedulerJob {
        serde_json::from_value(json!({
            "job_id": "j", "agent_id": "a", "schedule": schedule,
            "message": "m", "mode": "main_like", "enabled": false
        }))
        .unwrap()
    }

    #[test]
    fn scheduler_jobs() {
        let job: SchedulerJob = serde_json::from_value(json!({
            "job_id": "job_daily_report", "agent_id": "agent_default", "schedule": "@every 1h",
            "message": "Generate status report", "mode": "isolated",
            "notify": {"channel": "none", "target": ""}, "enabled": true, "timezone": "UTC",
            "created_at": "2026-02-15T00:00:00Z", "updated_at": "2026-02-15T00:00:00Z"
        }))
        .unwrap();
        assert_eq!(
            job.validate(),
            Ok(Schedule::Every(std::time::Duration::from_secs(3600)))
        );
        let minimal = job_with("2026-02-18T09:00:00Z");
        assert!(matches!(minimal.validate(), Ok(Schedule::At(_))));
        assert!(serde_json::from_value::<SchedulerJob>(json!({
            "job_id": "j", "agent_id": "a", "schedule": "@every 1h", "message": "m", "mode": "forked", "enabled": true
        }))
        .is_err());
        assert!(serde_json::from_value::<SchedulerJob>(json!({
            "job_id": "j", "agent_id": "a", "schedule": "@every 1h", "message": "m", "mode": "isolated"
        }))
        .is_err());
        let mut j = minimal.clone();
        j.message = String::new();
        assert_eq!(j.validate().unwrap_err().reason, "message is required");
        let mut j = minimal.clone();
        j.agent_id = " ".into();
        assert_eq!(j.validate().unwrap_err().reason, "agent_id is required");
        for bad_id in ["../x", "a b", "-x", "x/y", &"x".repeat(129)] {
            let mut j = minimal.clone();
            j.job_id = bad_id.to_string();
            assert_eq!(j.validate().unwrap_err().field, "job_id", "{bad_id}");
        }
        let mut j = minimal.clone();
        j.job_id = "job_daily-report.v2".into();
        assert!(j.validate().is_ok());
        let mut j = minimal.clone();
        j.timezone = Some("Europe/Berlin".into());
        let e = j.validate().unwrap_err();
        assert_eq!(e.field, "timezone");
        assert!(e.reason.contains("`Europe/Berlin` is not supported"), "{e}");
        j.timezone = Some("UTC".into());
        assert!(j.validate().is_ok());
        let mut j = minimal;
        j.created_at = Some("yesterday".into());
        assert_eq!(j.validate().unwrap_err().field, "created_at");
    }

    #[test]
    fn every_form_go_accepts() {
        let secs = |s: f64| std::time::Duration::from_secs_f64(s);
        for (schedule, want) in [
            ("@every 1h", secs(3600.0)),
            ("@every 30m", secs(1800.0)),
            ("@every 1h30m", secs(5400.0)),
            ("@every 1.5h", secs(5400.0)),
            ("@every 90s", secs(90.0)),
            ("@every 1h0m0s", secs(3600.0)),
            ("@every +5m", secs(300.0)),
            ("@every 2h45m30.5s", secs(9930.5)),
            ("@every .5m", secs(30.0)),
            ("@every 1.m", secs(60.0)),
            ("@every 1500ms", secs(1.5)),
            ("@every 1000000us", secs(1.0)),
            ("@every 1000000\u{b5}s", secs(1.0)),
            ("@every 1000000\u{3bc}s", secs(1.0)),
            ("@every 1000000000ns", secs(1.0)),
            ("@every 1s500ms", secs(1.5)),
            ("@every 1m1m", secs(120.0)),
            ("  @every   10m  ", secs(600.0)),
        ] {
            assert_eq!(
                schedule.parse::<Schedule>(),
                Ok(Schedule::Every(want)),
                "{schedule}"
            );
        }
        let t = "2026-02-18T09:00:00Z".parse::<jiff::Timestamp>().unwrap();
        assert_eq!("2026-02-18T09:00:00Z".parse(), Ok(Schedule::At(t)));
        assert_eq!("2026-02-18T10:00:00+01:00".parse(), Ok(Schedule::At(t)));
    }

    #[test]
    fn cron_and_garbage_are_refused_with_a_reason() {
        let reason = |s: &str| {
            let e = s.parse::<Schedule>().unwrap_err();
            assert_eq!(e.field, "schedule", "{s}");
            e.reason
        };
        for cron in [
            "0 * * * *",
            "*/5 * * * *",
            "0 9 * * MON-FRI",
            "0 0 12 * * ?",
            "@daily",
            "@hourly",
            "@reboot",
            "TZ=UTC 0 * * * *",
        ] {
            let r = reason(cron);
            assert!(
                r.contains(
                    "cron expressions are not supported; use `@every <duration>` (e.g. `@every 30m`) or an RFC3339 time"
                ),
                "{cron}: {r}"
            );
        }
        for (bad, says) in [
            ("@every 0s", "must be positive"),
            ("@every 0", "must be positive"),
            ("@every -1m", "must be positive"),
            ("@every 500ms", "shortest interval is 1s"),
            ("@every", "needs a duration"),
            (
                "@every 5 minutes",
                "time: unknown unit \" minutes\" in duration \"5 minutes\"",
            ),
            ("@every 1d", "unknown unit \"d\""),
            ("@every 5", "missing unit"),
            ("@every 9999999999h", "invalid duration"),
            ("@every5m", "with a space"),
            ("tomorrow", "neither `@every <duration>`"),
            ("2026-02-18", "neither"),
            ("", "schedule is required"),
        ] {
            let r = reason(bad);
            assert!(r.contains(says), "{bad}: {r}");
        }
    }

    #[test]
    fn go_durations() {
        let d = |s| parse_go_duration(s).map(|d| d.as_millis());
        assert_eq!(d("30m"), Some(1_800_000));
        assert_eq!(d("1h30m"), Some(5_400_000));
        assert_eq!(d("1.5s"), Some(1500));
        assert_eq!(d("300ms"), Some(300));
        assert_eq!(d("2µs"), Some(0));
        assert_eq!(d("0"), Some(0));
        for bad in ["", "5", "m", "1x", "1h 30m", ".s", "1..2s"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn http_bodies() {
        let r: CreateRunRequest = serde_json::from_value(
            json!({"agent_id": "agent_default", "message": "Summarize repository status"}),
        )
        .unwrap();
        r.validate().unwrap();
        assert!(
            CreateRunRequest {
                agent_id: String::new(),
                message: "m".into()
            }
            .validate()
            .is_err()
        );
        assert_eq!(
            serde_json::to_value(CreateRunResponse {
                id: "run_123".into(),
                status: V1RunStatus::Queued
            })
            .unwrap(),
            json!({"id": "run_123", "status": "queued"})
        );
        let record = json!({
            "id": "run_123", "agent_id": "agent_default", "source": "http", "status": "completed",
            "output": "...", "artifact_path": ".openclawssy/agents/agent_default/runs/run_123",
            "duration_ms": 42, "tool_calls": 1, "provider": "openrouter", "model": "openai/gpt-4o-mini",
            "trace": {"tool_execution_results": [{"tool": "fs.write", "tool_call_id": "tool-json-1",
                "summary": "wrote 24 line(s) to Dockerfile", "output": "{...}", "error": ""}]}
        });
        let rec: RunRecord = serde_json::from_value(record.clone()).unwrap();
        assert_eq!(serde_json::to_value(&rec).unwrap(), record);
        let chat: ChatMessageRequest = serde_json::from_value(json!({
            "user_id": "123456", "room_id": "dev-room", "agent_id": "agent_default", "message": "Summarize today updates"
        }))
        .unwrap();
        chat.validate().unwrap();
        let resp: ChatMessageResponse = serde_json::from_value(
            json!({"id": "run_456", "status": "queued", "session_id": "session_abc"}),
        )
        .unwrap();
        assert_eq!(resp.session_id.as_deref(), Some("session_abc"));
        assert_eq!(
            serde_json::to_value(ErrorBody::new("invalid.request", "agent_id is required"))
                .unwrap(),
            json!({"error": {"code": "invalid.request", "message": "agent_id is required"}})
        );
    }
}
