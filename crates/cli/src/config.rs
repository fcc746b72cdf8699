//! Where settings come from: command-line flags, then `GARRISON_*` environment
//! variables, then `garrison.toml` (in the data dir, or `--config FILE`), then
//! defaults. Secrets (the API token) come from the environment only.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

use std::collections::BTreeMap;
use std::time::Duration;

use garrison_agent::UnitProfile;
use garrison_orchestration::{Bootstrap, GateCommand, Retention};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
pub const CONFIG_FILE: &str = "garrison.toml";
/// The milestone signing secret's variable, for ingest and outbox alike.
const SECRET_ENV: &str = "GARRISON_MILESTONE_SECRET";

/// Options every command accepts.
#[derive(Debug, Clone, Default, Args)]
pub struct Global {
    /// Data directory [default: $GARRISON_HOME, else ./.garrison]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// PostgreSQL ledger URL (postgres://…) instead of the embedded SQLite
    /// ledger [env: GARRISON_DATABASE_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// Configuration file [default: <data-dir>/garrison.toml when present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log lines on stderr as text or as one JSON object per line
    #[arg(
        long,
        global = true,
        value_enum,
        env = "GARRISON_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Keys `garrison.toml` and `GARRISON_*` may set. Unknown keys are left for
/// other parts of the program (profiles, services) to read.
#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    listen: Option<String>,
    database_url: Option<String>,
    body_limit: Option<usize>,
    services: Option<String>,
    #[serde(default)]
    milestones: MilestonesConfig,
    #[serde(default)]
    orchestration: OrchestrationConfig,
    /// `[profiles.NAME]`: unit profiles (merged over the built-in `llm`
    /// from GARRISON_LLM_* and `noop`).
    #[serde(default)]
    profiles: BTreeMap<String, UnitProfile>,
    /// `[gates] NAME = [{ name, command, timeout_secs? }]`: gate profiles.
    #[serde(default)]
    gates: BTreeMap<String, Vec<GateCommand>>,
    #[serde(default)]
    secrets: SecretsConfig,
    #[serde(default)]
    sandbox: SandboxConfig,
}

/// `[sandbox]`: limits per sandboxed program and the protections that must
/// be present (Landlock and seccomp always are). Unset limits keep the
/// defaults; `0` lifts a limit.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SandboxConfig {
    processes: Option<u64>,
    cpu_seconds: Option<u64>,
    memory_mb: Option<u64>,
    file_mb: Option<u64>,
    #[serde(default)]
    require: Vec<RequiredProtection>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RequiredProtection {
    Namespaces,
    ProcessLimit,
}

impl SandboxConfig {
    fn policy(&self) -> garrison_agent::SandboxPolicy {
        use garrison_agent::sandbox::{ChildLimits, Protection};
        let d = ChildLimits::DEFAULT;
        // Unset: the default; 0: no limit.
        let pick = |v: Option<u64>, default: Option<u64>, unit: u64| match v {
            None => default,
            Some(0) => None,
            Some(n) => Some(n.saturating_mul(unit)),
        };
        garrison_agent::SandboxPolicy {
            limits: ChildLimits {
                processes: pick(self.processes, d.processes, 1),
                cpu_seconds: pick(self.cpu_seconds, d.cpu_seconds, 1),
                address_space_bytes: pick(self.memory_mb, d.address_space_bytes, 1 << 20),
                file_size_bytes: pick(self.file_mb, d.file_size_bytes, 1 << 20),
            },
            require: self
                .require
                .iter()
                .map(|r| match r {
                    RequiredProtection::Namespaces => Protection::Namespaces,
                    RequiredProtection::ProcessLimit => Protection::ProcessLimit,
                })
                .collect(),
            ..garrison_agent::SandboxPolicy::DEFAULT
        }
    }
}

/// `[secrets]`: where the secret store's master key is, when it is not in
/// `GARRISON_MASTER_KEY`. Never the key itself.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsConfig {
    /// A file holding the key (64 hex characters, base64 of 32 bytes, or 32
    /// raw bytes), outside the data dir; relative to the config file.
    key_file: Option<PathBuf>,
}

/// `[orchestration]`: queue, leases, patrols, workers. Every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrchestrationConfig {
    workers: Option<usize>,
    lease_secs: Option<u64>,
    max_retries: Option<u32>,
    order_budget_secs: Option<u64>,
    stuck_after_secs: Option<u64>,
    patrol_interval_secs: Option<u64>,
    sentinel_interval_secs: Option<u64>,
    chat_wait_secs: Option<u64>,
    default_theater: Option<String>,
    default_profile: Option<String>,
    planner_profile: Option<String>,
    retention: Option<Retention>,
    bootstrap: Option<Bootstrap>,
}

/// `[milestones]`: the ingest's bounds and the outbox's targets. Secrets are
/// never here: only the names of the variables holding them.
#[derive(Debug, Default, Deserialize)]
struct MilestonesConfig {
    timestamp_tolerance_secs: Option<u64>,
    max_body_bytes: Option<usize>,
    feed_limit: Option<usize>,
    dead_letter_limit: Option<usize>,
    #[serde(default)]
    targets: Vec<TargetConfig>,
    max_attempts: Option<u32>,
    backoff_ms: Option<u64>,
}

/// A target: `"http://…"`, or `{ url = "http://…", secret_env = "NAME" }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TargetConfig {
    Url(String),
    Table {
        url: String,
        secret_env: Option<String>,
    },
}

/// Where the milestone outbox delivers (`[milestones] targets`).
#[derive(Debug, Clone)]
pub struct OutboxSpec {
    /// Target URL and the variable holding its signing secret.
    pub targets: Vec<(String, String)>,
    pub max_attempts: u32,
    pub backoff: std::time::Duration,
}

impl OutboxSpec {
    /// The outbox configuration with every secret read from the environment;
    /// a target without one is an error (`serve` refuses to start).
    pub fn resolve(&self) -> Result<garrison_server::OutboxConfig> {
        let mut targets = Vec::new();
        for (url, var) in &self.targets {
            let secret = std::env::var_os(var).filter(|v| !v.is_empty()).with_context(|| {
                format!(
                    "milestone target {url} has no signing secret: set {var} (targets sign with \
                     GARRISON_MILESTONE_SECRET unless they name another variable with secret_env)"
                )
            })?;
            targets.push(garrison_server::MilestoneTarget::new(
                url,
                secret.into_encoded_bytes(),
            )?);
        }
        Ok(garrison_server::OutboxConfig {
            targets,
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            ..garrison_server::OutboxConfig::default()
        })
    }
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub listen: String,
    pub body_limit: usize,
    /// Comma list from config/env; `--services` overrides it.
    pub services: Option<String>,
    /// `GARRISON_API_TOKEN`, when set.
    pub api_token: Option<String>,
    /// Milestone ingest bounds, and `GARRISON_MILESTONE_SECRET` when set.
    pub milestones: garrison_server::MilestoneSettings,
    /// The milestone outbox's targets (secrets resolved by `serve`).
    pub outbox: OutboxSpec,
    /// Orchestration: profiles, gates, queue and patrol settings.
    pub orchestration: garrison_server::OrchestrationSettings,
    /// `[secrets] key_file`, resolved against the config file's directory.
    pub master_key_file: Option<PathBuf>,
    /// `[sandbox]`: the base policy of every sandboxed program (units and
    /// `shell.exec`).
    pub sandbox: garrison_agent::SandboxPolicy,
}

impl Settings {
    pub fn load(global: &Global) -> Result<Settings> {
        let data_dir = data_dir(global.data_dir.as_deref());
        let file = match &global.config {
            Some(path) => {
                if !path.is_file() {
                    bail!("config file {} does not exist", path.display());
                }
                Some(path.clone())
            }
            None => Some(data_dir.join(CONFIG_FILE)).filter(|p| p.is_file()),
        };
        let mut figment = Figment::new();
        if let Some(path) = &file {
            let toml = Figment::from(Toml::file(path));
            if toml.find_value("api_token").is_ok() {
                bail!(
                    "{}: secrets never live in the config file; set GARRISON_API_TOKEN instead of `api_token`",
                    path.display()
                );
            }
            if toml.find_value("milestones.secret").is_ok() {
                bail!(
                    "{}: secrets never live in the config file; set GARRISON_MILESTONE_SECRET instead of `milestones.secret`",
                    path.display()
                );
            }
            figment = figment.merge(toml);
        }
        // Only plain settings come from the environment through figment; the
        // token is read verbatim below (figment would turn `123` into a number).
        figment = figment.merge(Env::prefixed("GARRISON_").only(&[
            "listen",
            "database_url",
            "body_limit",
            "services",
        ]));
        let fc: FileConfig = figment.extract().with_context(|| match &file {
            Some(p) => format!(
                "invalid configuration in {} or GARRISON_* variables",
                p.display()
            ),
            None => "invalid configuration in GARRISON_* variables".to_string(),
        })?;

        let database_url = global
            .database_url
            .clone()
            .or(fc.database_url)
            .filter(|u| !u.trim().is_empty());
        let body_limit = fc.body_limit.unwrap_or(garrison_server::DEFAULT_BODY_LIMIT);
        if body_limit == 0 {
            bail!("body_limit must be at least 1 byte");
        }
        let outbox = outbox_spec(&fc.milestones)?;
        let milestones = milestone_settings(fc.milestones)?;
        let mut orchestration =
            orchestration_settings(&data_dir, fc.orchestration, fc.profiles, fc.gates)?;
        let sandbox = fc.sandbox.policy();
        orchestration.sandbox = sandbox.clone();
        let master_key_file =
            fc.secrets
                .key_file
                .map(|k| match file.as_deref().and_then(Path::parent) {
                    Some(base) if k.is_relative() => base.join(k),
                    _ => k,
                });
        Ok(Settings {
            master_key_file,
            sandbox,
            data_dir,
            database_url,
            listen: fc.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            body_limit,
            services: fc.services,
            api_token: std::env::var("GARRISON_API_TOKEN").ok(),
            milestones,
            outbox,
            orchestration,
        })
    }

    /// The secret store's master key: `GARRISON_MASTER_KEY`, else the file
    /// `[secrets] key_file` names, else none. A malformed key, or a key file
    /// inside the data dir, is an error.
    pub fn master_key(&self) -> Result<Option<garrison_server::MasterKey>> {
        let env = std::env::var(garrison_server::MASTER_KEY_ENV).ok();
        Ok(garrison_server::MasterKey::resolve(
            env.as_deref(),
            self.master_key_file.as_deref(),
            &self.data_dir,
        )?)
    }

    /// The orchestration settings with the stored secrets' values loaded,
    /// for processes that run units without the `/v1` service (`run`,
    /// `worker`): their units scrub those values too.
    pub fn orchestration_with_secrets(&self) -> Result<garrison_server::OrchestrationSettings> {
        let orch = self.orchestration.clone();
        garrison_server::publish_stored_secrets(&self.data_dir, self.master_key()?, &orch.secrets)?;
        Ok(orch)
    }

    /// The token a client should send: `GARRISON_API_TOKEN`, else the one
    /// `serve` stored in the data dir.
    pub fn client_token(&self) -> Result<Option<String>> {
        if let Some(t) = self
            .api_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            return Ok(Some(t.to_string()));
        }
        Ok(garrison_server::auth::read_stored_token(&self.data_dir)?
            .map(|t| t.expose().to_string()))
    }
}

fn milestone_settings(c: MilestonesConfig) -> Result<garrison_server::MilestoneSettings> {
    let d = garrison_server::MilestoneSettings::default();
    let s = garrison_server::MilestoneSettings {
        secret: std::env::var("GARRISON_MILESTONE_SECRET")
            .ok()
            .filter(|v| !v.is_empty())
            .map(String::into_bytes),
        tolerance: c
            .timestamp_tolerance_secs
            .map_or(d.tolerance, std::time::Duration::from_secs),
        max_body: c.max_body_bytes.unwrap_or(d.max_body),
        feed_limit: c.feed_limit.unwrap_or(d.feed_limit),
        dead_letter_limit: c.dead_letter_limit.unwrap_or(d.dead_letter_limit),
    };
    if s.max_body == 0 || s.feed_limit == 0 || s.dead_letter_limit == 0 {
        bail!("[milestones] max_body_bytes, feed_limit and dead_letter_limit must be at least 1");
    }
    Ok(s)
}

fn outbox_spec(c: &MilestonesConfig) -> Result<OutboxSpec> {
    let d = garrison_server::OutboxConfig::default();
    let mut targets = Vec::new();
    for t in &c.targets {
        let (url, var) = match t {
            TargetConfig::Url(u) => (u, None),
            TargetConfig::Table { url, secret_env } => (url, secret_env.as_deref()),
        };
        garrison_client::ServerUrl::parse(url)
            .with_context(|| format!("[milestones] targets: {url} is not a usable target"))?;
        if var.is_some_and(|v| v.trim().is_empty()) {
            bail!("[milestones] targets: secret_env of {url} is blank");
        }
        targets.push((url.clone(), var.unwrap_or(SECRET_ENV).to_string()));
    }
    let max_attempts = c.max_attempts.unwrap_or(d.max_attempts);
    if max_attempts == 0 {
        bail!("[milestones] max_attempts must be at least 1");
    }
    Ok(OutboxSpec {
        targets,
        max_attempts,
        backoff: c
            .backoff_ms
            .map_or(d.backoff, std::time::Duration::from_millis),
    })
}

fn orchestration_settings(
    data_dir: &Path,
    c: OrchestrationConfig,
    profiles: BTreeMap<String, UnitProfile>,
    gates: BTreeMap<String, Vec<GateCommand>>,
) -> Result<garrison_server::OrchestrationSettings> {
    let mut s = garrison_server::OrchestrationSettings::new(data_dir);
    let secs = |v: Option<u64>, d: Duration, key: &str| -> Result<Duration> {
        match v {
            Some(0) => bail!("[orchestration] {key} must be at least 1"),
            Some(n) => Ok(Duration::from_secs(n)),
            None => Ok(d),
        }
    };
    s.lease = secs(c.lease_secs, s.lease, "lease_secs")?;
    s.order_budget = secs(c.order_budget_secs, s.order_budget, "order_budget_secs")?;
    s.stuck_after = secs(c.stuck_after_secs, s.stuck_after, "stuck_after_secs")?;
    s.patrol_interval = secs(
        c.patrol_interval_secs,
        s.patrol_interval,
        "patrol_interval_secs",
    )?;
    s.sentinel_interval = secs(
        c.sentinel_interval_secs,
        s.sentinel_interval,
        "sentinel_interval_secs",
    )?;
    s.chat_wait = secs(c.chat_wait_secs, s.chat_wait, "chat_wait_secs")?;
    if let Some(w) = c.workers {
        s.workers = w;
    }
    if let Some(r) = c.max_retries {
        s.max_retries = r;
    }
    if let Some(t) = c.default_theater {
        s.default_theater = t;
    }
    if let Some(r) = c.retention {
        s.retention = r;
    }
    if let Some(b) = c.bootstrap {
        s.bootstrap = b;
    }
    s.profiles.extend(profiles);
    for (name, list) in gates {
        if list.iter().any(|g| g.command.is_empty()) {
            bail!("[gates] {name}: every gate needs a non-empty `command`");
        }
        s.gates.insert(name, list);
    }
    if let Some(p) = c.default_profile {
        s.default_profile = p;
    }
    if let Some(p) = c.planner_profile {
        if !s.profiles.contains_key(&p) {
            bail!("[orchestration] planner_profile `{p}` is not a configured profile");
        }
        s.planner_profile = Some(p);
    }
    Ok(s)
}

/// `--data-dir`, else `$GARRISON_HOME`, else `./.garrison`.
fn data_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(d) = flag {
        return d.to_path_buf();
    }
    match std::env::var_os("GARRISON_HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => PathBuf::from(".garrison"),
    }
}
