//! Unit profiles and running one unit for one order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use garrison_contracts::ironclaw::artifacts::{AarModel, ArtifactRef};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditLog, Redactor};
use crate::command_unit;
use crate::failover::Failover;
use crate::lifecycle::{EventSink, Lifecycle, NoEvents};
use crate::model::ModelError;
use crate::provider::ProviderProfile;
use crate::sandbox::SandboxPolicy;
use crate::scripted::{ScriptError, ScriptedModel};
use crate::tool_loop::{LoopSettings, run_unit_loop};
use crate::tools::ToolRuntime;

/// Model turns an `llm` unit gets when its profile says nothing.
pub const DEFAULT_MAX_TURNS: u32 = 24;
/// Where an `llm` profile's API key comes from unless it names another variable.
pub const DEFAULT_API_KEY_ENV: &str = "GARRISON_LLM_API_KEY";
/// Endpoint of the default `llm` profile (OpenAI-style, including `/v1`).
pub const BASE_URL_ENV: &str = "GARRISON_LLM_BASE_URL";
/// Model of the default `llm` profile.
pub const MODEL_ENV: &str = "GARRISON_LLM_MODEL";

fn default_max_turns() -> u32 {
    DEFAULT_MAX_TURNS
}

/// A unit profile (config `[profiles.NAME]`), tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UnitProfile {
    /// OpenAI-compatible chat-completions tool loop. The API key is never in
    /// config files: it is read from `api_key_env` (default
    /// `GARRISON_LLM_API_KEY`).
    Llm {
        base_url: String,
        model: String,
        #[serde(default)]
        api_key_env: Option<String>,
        #[serde(default)]
        temperature: Option<f64>,
        #[serde(default = "default_max_turns")]
        max_turns: u32,
        /// Tried when this endpoint fails after its retries.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fallback: Option<ProviderProfile>,
    },
    /// External program run in the worktree, the prompt on stdin or in argv.
    Command {
        program: String,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default)]
        prompt: PromptMode,
        #[serde(default)]
        env: BTreeMap<String, String>,
        /// How the program is confined (`[profiles.NAME.sandbox]`).
        #[serde(default, skip_serializing_if = "CommandSandbox::is_default")]
        sandbox: CommandSandbox,
    },
    /// Replays recorded assistant turns from a JSON file through the same
    /// tool loop as `llm` (tests, offline demo).
    Scripted { script: PathBuf },
    /// Does nothing and succeeds (queue benchmarks, smoke tests); writes no files.
    Noop,
}

fn yes() -> bool {
    true
}

/// A `command` profile's sandbox settings. The program always runs in the
/// sandbox (see [`crate::sandbox`]) unless `enabled = false`; its worktree
/// and git metadata are writable, the repository's shared objects readable.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSandbox {
    /// `false` runs the program unconfined: the operator's explicit choice.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Network access; on by default, since agent CLIs call model APIs.
    #[serde(default = "yes")]
    pub network: bool,
    /// Extra read-only paths (`~/` is the worker's home), e.g. the agent's
    /// own config directory.
    #[serde(default)]
    pub read: Vec<PathBuf>,
    /// Extra writable paths, e.g. the agent's cache directory.
    #[serde(default)]
    pub write: Vec<PathBuf>,
}

impl Default for CommandSandbox {
    fn default() -> Self {
        CommandSandbox {
            enabled: true,
            network: true,
            read: Vec::new(),
            write: Vec::new(),
        }
    }
}

impl CommandSandbox {
    fn is_default(&self) -> bool {
        *self == CommandSandbox::default()
    }

    /// The policy for this profile's program: `base` (the worker's) with
    /// this profile's network choice and extra paths.
    pub fn policy(&self, base: &SandboxPolicy) -> SandboxPolicy {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let expand = |p: &PathBuf| match (p.strip_prefix("~"), &home) {
            (Ok(rest), Some(home)) => home.join(rest),
            _ => p.clone(),
        };
        let mut policy = base.clone();
        if !self.enabled {
            policy.mode = crate::sandbox::SandboxMode::Off;
        }
        policy.allow_network = self.network;
        policy.read.extend(self.read.iter().map(expand));
        policy.write.extend(self.write.iter().map(expand));
        policy
    }
}

/// How a command unit receives its prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptMode {
    /// Written to stdin, which is then closed.
    #[default]
    Stdin,
    /// Every `{prompt}` in `args` is replaced by the prompt.
    Argv,
}

impl UnitProfile {
    /// The default `llm` profile from `GARRISON_LLM_BASE_URL` and
    /// `GARRISON_LLM_MODEL`; `None` when either is unset or empty.
    pub fn llm_from_env() -> Option<UnitProfile> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Some(UnitProfile::Llm {
            base_url: var(BASE_URL_ENV)?,
            model: var(MODEL_ENV)?,
            api_key_env: None,
            temperature: None,
            max_turns: DEFAULT_MAX_TURNS,
            fallback: None,
        })
    }

    /// `model` for `aar.json`.
    pub fn aar_model(&self) -> AarModel {
        let (provider, name, temperature) = match self {
            UnitProfile::Llm {
                base_url,
                model,
                temperature,
                ..
            } => {
                let host = reqwest::Url::parse(base_url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_else(|| base_url.clone());
                (host, model.clone(), *temperature)
            }
            UnitProfile::Command { program, .. } => ("command".into(), program.clone(), None),
            UnitProfile::Scripted { script } => {
                let name = script
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| script.display().to_string());
                ("scripted".into(), name, None)
            }
            UnitProfile::Noop => ("noop".into(), "noop".into(), None),
        };
        AarModel {
            provider,
            name,
            temperature,
        }
    }

    /// The provider chain of an `llm` profile: its own endpoint, then the
    /// fallback. Empty for other kinds.
    pub fn providers(&self) -> Vec<ProviderProfile> {
        match self {
            UnitProfile::Llm {
                base_url,
                model,
                api_key_env,
                fallback,
                ..
            } => {
                let mut chain = vec![ProviderProfile {
                    base_url: base_url.clone(),
                    model: model.clone(),
                    api_key_env: api_key_env.clone(),
                }];
                chain.extend(fallback.iter().cloned());
                chain
            }
            _ => Vec::new(),
        }
    }

    /// Checks what can be checked without running anything.
    pub fn validate(&self) -> Result<(), UnitError> {
        let invalid = |msg: String| Err(UnitError::ProfileInvalid(msg));
        match self {
            UnitProfile::Llm {
                temperature,
                max_turns,
                fallback,
                ..
            } => {
                self.providers()
                    .iter()
                    .try_for_each(ProviderProfile::validate)?;
                if let Some(f) = fallback {
                    f.validate()
                        .map_err(|e| UnitError::ProfileInvalid(format!("fallback: {e}")))?;
                }
                if temperature.is_some_and(|t| !(t.is_finite() && t >= 0.0)) {
                    return invalid("temperature must be a non-negative number".into());
                }
                if *max_turns == 0 {
                    return invalid("max_turns must be at least 1".into());
                }
            }
            UnitProfile::Command { program, .. } => {
                if program.trim().is_empty() {
                    return invalid("program is empty".into());
                }
            }
            UnitProfile::Scripted { script } => {
                if script.as_os_str().is_empty() {
                    return invalid("script is empty".into());
                }
            }
            UnitProfile::Noop => {}
        }
        Ok(())
    }
}

/// One order's work for a unit.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitJob {
    /// The order's worktree; everything the unit does happens inside it.
    pub workspace: PathBuf,
    /// Objective plus context, as the worker composed it.
    pub prompt: String,
    /// Wall-clock budget for the whole unit.
    pub budget: Duration,
    /// Extra environment for command units (`GARRISON_ORDER_ID`, `GARRISON_ATTEMPT`, …).
    pub env: Vec<(String, String)>,
    /// Copied into every tool request envelope.
    pub run_id: String,
    pub agent_id: String,
}

/// How a unit ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum UnitOutcome {
    Succeeded,
    Failed {
        reason: String,
    },
    TimedOut,
    /// The unit process died from a signal (e.g. SIGKILL): the attempt is
    /// lost, not failed.
    Killed {
        signal: i32,
    },
    /// The unit could not start; `code` is one of [`UnitError::CODES`].
    NotStarted {
        code: String,
        reason: String,
    },
}

/// What a unit did, for the worker's events and `aar.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitReport {
    pub outcome: UnitOutcome,
    /// The model's final text, or for command units one line: exit status
    /// plus what the program wrote to `GARRISON_SUMMARY_FILE`, else the last
    /// paragraph of its output.
    pub summary: String,
    /// Every file under `<workspace>/outputs/` after the unit, sorted,
    /// worktree-relative (`outputs/x.txt`).
    pub artifacts: Vec<ArtifactRef>,
    pub model: AarModel,
    pub notes: Vec<String>,
    pub tool_calls: u32,
}

/// A unit that could not start. A unit that ran and failed is
/// `Ok(UnitReport { outcome: Failed, .. })`, not this; only
/// [`complete_text`](crate::complete_text) reports a failed model call as
/// [`UnitError::Model`].
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    #[error("invalid unit profile: {0}")]
    ProfileInvalid(String),
    #[error(transparent)]
    Script(#[from] ScriptError),
    #[error("workspace {}: {reason}", path.display())]
    Workspace { path: PathBuf, reason: String },
    #[error("cannot start `{program}`: {source}")]
    SpawnFailed {
        program: String,
        source: std::io::Error,
    },
    #[error("model provider unavailable: {0}")]
    ModelUnavailable(String),
    #[error("sandbox: {0}")]
    Sandbox(String),
    #[error("model call failed: {0}")]
    Model(#[from] ModelError),
}

impl UnitError {
    /// Every code [`UnitError::code`] gives.
    pub const CODES: &[&'static str] = &[
        "PROFILE_INVALID",
        "WORKSPACE_INVALID",
        "SPAWN_FAILED",
        "SANDBOX_UNAVAILABLE",
        "MODEL_UNAVAILABLE",
    ];

    /// A stable code for events and error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            // The script is the scripted profile's content.
            UnitError::ProfileInvalid(_) | UnitError::Script(_) => "PROFILE_INVALID",
            UnitError::Workspace { .. } => "WORKSPACE_INVALID",
            UnitError::SpawnFailed { .. } => "SPAWN_FAILED",
            UnitError::Sandbox(_) => "SANDBOX_UNAVAILABLE",
            UnitError::ModelUnavailable(_) | UnitError::Model(_) => "MODEL_UNAVAILABLE",
        }
    }
}

/// What a caller may attach to a unit run besides the job: where its
/// lifecycle events go and the audit log its tool calls are written to.
#[derive(Clone, Copy)]
pub struct UnitHooks<'a> {
    pub events: &'a dyn EventSink,
    /// When set, every lifecycle event of an `llm` or `scripted` unit
    /// (each tool call and result among them) is appended here, redacted.
    pub audit: Option<&'a AuditLog>,
    /// Confinement of `shell.exec` and of command units' programs.
    pub sandbox: &'a SandboxPolicy,
    /// Secret values (the stored secrets) scrubbed, in every form, from tool
    /// output before the model sees it, from lifecycle events and audit
    /// lines, from the report (summary, notes, failure reason) and from the
    /// files a unit leaves under `outputs/` (a command unit's
    /// `stdout.txt`/`stderr.txt` among them) before anything is committed.
    pub secrets: Option<&'a Redactor>,
}

static DEFAULT_SANDBOX: SandboxPolicy = SandboxPolicy::DEFAULT;

impl Default for UnitHooks<'_> {
    fn default() -> Self {
        UnitHooks {
            events: &NoEvents,
            audit: None,
            sandbox: &DEFAULT_SANDBOX,
            secrets: None,
        }
    }
}

/// Runs `job` with `profile` and reports what happened.
pub async fn run_unit(profile: &UnitProfile, job: &UnitJob) -> Result<UnitReport, UnitError> {
    run_unit_with(profile, job, UnitHooks::default()).await
}

/// [`run_unit`] with lifecycle events, audit and secret scrubbing.
pub async fn run_unit_with(
    profile: &UnitProfile,
    job: &UnitJob,
    hooks: UnitHooks<'_>,
) -> Result<UnitReport, UnitError> {
    let mut report = run_unit_inner(profile, job, hooks).await?;
    if let Some(secrets) = hooks.secrets.filter(|r| !r.is_empty()) {
        scrub_report(secrets, &mut report);
        if !matches!(profile, UnitProfile::Noop) {
            scrub_outputs(secrets, &job.workspace, &mut report.notes);
        }
    }
    Ok(report)
}

/// Every text of `report` with the secrets' values replaced.
fn scrub_report(secrets: &Redactor, report: &mut UnitReport) {
    let scrub = |t: &mut String| {
        if let std::borrow::Cow::Owned(s) = secrets.secrets_only(t) {
            *t = s;
        }
    };
    scrub(&mut report.summary);
    report.notes.iter_mut().for_each(scrub);
    if let UnitOutcome::Failed { reason } = &mut report.outcome {
        scrub(reason);
    }
}

/// Rewrites every regular file under `<workspace>/outputs/` that holds a
/// secret's value, with the value replaced; a file that cannot be rewritten
/// is removed, so no copy of the value stays to be committed. The file
/// names stay, so the report's artifact list stays true.
fn scrub_outputs(secrets: &Redactor, workspace: &Path, notes: &mut Vec<String>) {
    let root = workspace.join(crate::artifacts::OUTPUTS_DIR);
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let Some(clean) = secrets.secrets_only_bytes(&bytes) else {
                continue;
            };
            let shown = path
                .strip_prefix(workspace)
                .unwrap_or(&path)
                .display()
                .to_string();
            if std::fs::write(&path, &clean).is_ok() {
                notes.push(format!("{shown}: secret values redacted"));
            } else {
                let _ = std::fs::remove_file(&path);
                notes.push(format!(
                    "{shown}: held a secret value and could not be rewritten; removed"
                ));
            }
        }
    }
}

async fn run_unit_inner(
    profile: &UnitProfile,
    job: &UnitJob,
    hooks: UnitHooks<'_>,
) -> Result<UnitReport, UnitError> {
    profile.validate()?;
    check_workspace(&job.workspace)?;
    match profile {
        UnitProfile::Noop => Ok(UnitReport {
            outcome: UnitOutcome::Succeeded,
            summary: "noop".into(),
            artifacts: Vec::new(),
            model: profile.aar_model(),
            notes: Vec::new(),
            tool_calls: 0,
        }),
        UnitProfile::Command {
            program,
            args,
            prompt,
            env,
            sandbox,
        } => {
            let policy = sandbox.policy(hooks.sandbox);
            command_unit::run(program, args, *prompt, env, job, &policy).await
        }
        UnitProfile::Scripted { script } => {
            let mut model = ScriptedModel::load(script)?;
            let settings = LoopSettings {
                // Every recorded turn gets played, however long the script.
                max_turns: DEFAULT_MAX_TURNS
                    .max(u32::try_from(model.recorded_turns()).unwrap_or(u32::MAX)),
                temperature: None,
                model: profile.aar_model(),
            };
            let mut tools = ToolRuntime::new(&job.workspace);
            tools.sandbox = hooks.sandbox.clone();
            let mut life = Lifecycle::new(&job.run_id, &job.agent_id, hooks.events, hooks.audit)
                .with_redactor(hooks.secrets.unwrap_or(&Redactor::default()));
            Ok(run_unit_loop(&mut model, &tools, job, &settings, &mut life)
                .await
                .0)
        }
        UnitProfile::Llm {
            temperature,
            max_turns,
            ..
        } => {
            let mut clients = Vec::new();
            let mut keys = Vec::new();
            for p in profile.providers() {
                let (client, key) = p.client()?;
                clients.push(client);
                keys.extend(key);
            }
            let mut chain = Failover::new(clients);
            let settings = LoopSettings {
                max_turns: *max_turns,
                temperature: *temperature,
                model: profile.aar_model(),
            };
            let mut tools = ToolRuntime::new(&job.workspace);
            tools.sandbox = hooks.sandbox.clone();
            let mut life = Lifecycle::new(&job.run_id, &job.agent_id, hooks.events, hooks.audit)
                .with_secrets(keys)
                .with_redactor(hooks.secrets.unwrap_or(&Redactor::default()));
            let (mut report, result) =
                run_unit_loop(&mut chain, &tools, job, &settings, &mut life).await;
            if chain.active() > 0 {
                report.model.provider = result.provider.0;
                report.model.name = result.provider.1;
            }
            report.notes.extend(chain.switches().iter().cloned());
            Ok(report)
        }
    }
}

fn check_workspace(path: &Path) -> Result<(), UnitError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(UnitError::Workspace {
            path: path.to_path_buf(),
            reason: "not a directory".into(),
        }),
        Err(e) => Err(UnitError::Workspace {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn profiles_from_config_shapes() {
        let p: UnitProfile = serde_json::from_value(json!({
            "kind": "llm", "base_url": "https://api.example.com/v1", "model": "gpt-x"
        }))
        .unwrap();
        assert_eq!(
            p,
            UnitProfile::Llm {
                base_url: "https://api.example.com/v1".into(),
                model: "gpt-x".into(),
                api_key_env: None,
                temperature: None,
                max_turns: 24,
                fallback: None,
            }
        );
        assert_eq!(
            p.aar_model(),
            AarModel {
                provider: "api.example.com".into(),
                name: "gpt-x".into(),
                temperature: None
            }
        );
        let c: UnitProfile = serde_json::from_value(json!({
            "kind": "command", "program": "codex", "prompt": "argv", "args": ["exec", "{prompt}"]
        }))
        .unwrap();
        assert!(matches!(
            &c,
            UnitProfile::Command { prompt: PromptMode::Argv, env, .. } if env.is_empty()
        ));
        assert_eq!(c.aar_model().provider, "command");
        let s: UnitProfile =
            serde_json::from_value(json!({"kind": "scripted", "script": "/x/demo.json"})).unwrap();
        assert_eq!(s.aar_model().name, "demo.json");
        let n: UnitProfile = serde_json::from_value(json!({"kind": "noop"})).unwrap();
        assert_eq!(n.aar_model().provider, "noop");
        assert!(serde_json::from_value::<UnitProfile>(json!({"kind": "magic"})).is_err());
        assert!(
            serde_json::from_value::<UnitProfile>(
                json!({"kind": "command", "program": "x", "prompt": "file"})
            )
            .is_err()
        );
    }

    #[test]
    fn validation() {
        let llm = |base: &str, model: &str, turns: u32| UnitProfile::Llm {
            base_url: base.into(),
            model: model.into(),
            api_key_env: None,
            temperature: Some(0.2),
            max_turns: turns,
            fallback: None,
        };
        llm("http://127.0.0.1:8080/v1", "m", 1).validate().unwrap();
        for bad in [
            llm("ftp://x/v1", "m", 1),
            llm("not a url", "m", 1),
            llm("http://x/v1", " ", 1),
            llm("http://x/v1", "m", 0),
        ] {
            assert_eq!(
                bad.validate().unwrap_err().code(),
                "PROFILE_INVALID",
                "{bad:?}"
            );
        }
        let cmd = UnitProfile::Command {
            program: "".into(),
            args: vec![],
            prompt: PromptMode::Stdin,
            env: BTreeMap::new(),
            sandbox: CommandSandbox::default(),
        };
        assert!(cmd.validate().is_err());
    }

    #[test]
    fn outcome_wire_shape() {
        assert_eq!(
            serde_json::to_value(UnitOutcome::Killed { signal: 9 }).unwrap(),
            json!({"outcome": "killed", "signal": 9})
        );
        assert_eq!(
            serde_json::to_value(UnitOutcome::TimedOut).unwrap(),
            json!({"outcome": "timed_out"})
        );
    }

    #[test]
    fn named_key_variable_must_be_set() {
        let key = |var: &str| {
            ProviderProfile {
                base_url: "http://127.0.0.1:1/v1".into(),
                model: "m".into(),
                api_key_env: Some(var.into()),
            }
            .api_key()
        };
        let e = key("GARRISON_TEST_SURELY_UNSET_KEY_VAR").unwrap_err();
        assert_eq!(e.code(), "MODEL_UNAVAILABLE");
        assert!(key("PATH").unwrap().is_some());
    }
}
