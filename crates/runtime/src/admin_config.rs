//! The agent runtime's config document behind `/api/admin/config`:
//! `<data-dir>/agents/config.json`.
//!
//! A document is validated whole before it is stored (unknown fields, bad
//! URLs and out-of-range numbers are refused), written atomically, and the
//! file it replaces is kept as `config.last-good.json`. A file that no
//! longer loads falls back to that copy with a warning, so a hand edit gone
//! wrong never leaves runs without a config. API keys are never in it: the
//! provider names a stored secret instead.

use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard};

use garrison_agent::ProviderProfile;
use garrison_agent::tools::DEFAULT_MAX_TIMEOUT_MS;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::OpenclawssyError;

use super::secrets::valid_name;

/// The config file, under `<data-dir>/agents/`.
pub const CONFIG_FILE: &str = "config.json";
/// The previous good config, beside it.
pub const LAST_GOOD_FILE: &str = "config.last-good.json";

/// Bounds of the numbers a config may set.
pub const MAX_TOOL_TIMEOUT_MS: u64 = 3_600_000;
pub const MAX_TURNS: u32 = 1000;
const MAX_DENY_ENTRIES: usize = 256;

fn default_tool_timeout_ms() -> u64 {
    DEFAULT_MAX_TIMEOUT_MS
}

fn default_max_turns() -> u32 {
    garrison_agent::DEFAULT_MAX_TURNS
}

fn default_sandbox() -> bool {
    true
}

/// How `/v1` runs are set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentConfig {
    /// The default model provider; `null` uses `GARRISON_LLM_*`.
    #[serde(default)]
    pub provider: Option<ProviderConfig>,
    /// Upper bound for any tool call's `timeout_ms`.
    #[serde(default = "default_tool_timeout_ms")]
    pub tool_timeout_ms: u64,
    /// Workspace-relative prefixes no tool may touch (besides `.git`).
    #[serde(default)]
    pub deny: Vec<String>,
    /// Model turns a run gets.
    #[serde(default = "default_max_turns")]
    pub max_turns: u32,
    /// Whether `shell.exec` runs confined; off, it answers `sandbox.required`.
    #[serde(default = "default_sandbox")]
    pub sandbox: bool,
    /// Whether programs `shell.exec` runs may use the network (off: no
    /// sockets but `AF_UNIX`, in an empty network namespace).
    #[serde(default)]
    pub network: bool,
}

impl Default for AgentConfig {
    fn default() -> AgentConfig {
        AgentConfig {
            provider: None,
            tool_timeout_ms: default_tool_timeout_ms(),
            deny: Vec::new(),
            max_turns: default_max_turns(),
            sandbox: default_sandbox(),
            network: false,
        }
    }
}

/// An OpenAI-compatible endpoint and the secret holding its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderConfig {
    /// Display name (`openrouter`); the endpoint's host when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// OpenAI-style, including `/v1`.
    pub base_url: String,
    pub model: String,
    /// Name of the stored secret sent as the bearer key; none for endpoints
    /// that take no key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret: Option<String>,
    /// Always blank: accepted only empty, so a GET body can be posted back.
    #[serde(default, skip_serializing)]
    pub api_key: String,
}

impl ProviderConfig {
    /// The endpoint's host.
    pub fn host(&self) -> String {
        self.profile().provider_name()
    }

    /// The display name: `name`, else the host.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.host())
    }

    fn profile(&self) -> ProviderProfile {
        ProviderProfile {
            base_url: self.base_url.clone(),
            model: self.model.clone(),
            api_key_env: None,
        }
    }

    fn validate(&self) -> Result<(), String> {
        self.profile().validate().map_err(|e| e.to_string())?;
        let authority = self
            .base_url
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
            .unwrap_or("");
        if authority.contains('@') {
            return Err(
                "provider.base_url must not carry credentials; store the key with POST /api/admin/secrets and name it in provider.api_key_secret".into(),
            );
        }
        if !self.api_key.is_empty() {
            return Err(
                "provider.api_key is never stored; store the key with POST /api/admin/secrets and name it in provider.api_key_secret".into(),
            );
        }
        if let Some(name) = &self.name
            && (name.trim().is_empty() || name.chars().count() > 64)
        {
            return Err("provider.name must be 1-64 characters".into());
        }
        if let Some(secret) = &self.api_key_secret
            && !valid_name(secret)
        {
            return Err(format!(
                "provider.api_key_secret `{secret}` is not a secret name (letters, digits, `_`, `.`, `-`)"
            ));
        }
        Ok(())
    }
}

impl AgentConfig {
    /// Parses and validates a posted document.
    pub fn parse(bytes: &[u8]) -> Result<AgentConfig, OpenclawssyError> {
        parse_stored(bytes).map_err(|e| OpenclawssyError::Invalid(format!("invalid config: {e}")))
    }

    /// Every rule a stored config keeps.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(p) = &self.provider {
            p.validate()?;
        }
        if !(1..=MAX_TOOL_TIMEOUT_MS).contains(&self.tool_timeout_ms) {
            return Err(format!(
                "tool_timeout_ms must be between 1 and {MAX_TOOL_TIMEOUT_MS}"
            ));
        }
        if !(1..=MAX_TURNS).contains(&self.max_turns) {
            return Err(format!("max_turns must be between 1 and {MAX_TURNS}"));
        }
        if self.deny.len() > MAX_DENY_ENTRIES {
            return Err(format!("deny holds at most {MAX_DENY_ENTRIES} entries"));
        }
        for entry in &self.deny {
            check_deny_entry(entry)?;
        }
        Ok(())
    }

    /// The document as `GET /api/admin/config` shows it: sensitive value
    /// fields present but blank.
    pub fn public_view(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(p) = v.get_mut("provider").and_then(Value::as_object_mut) {
            p.insert("api_key".into(), Value::String(String::new()));
        }
        v
    }
}

fn check_deny_entry(entry: &str) -> Result<(), String> {
    let trimmed = entry.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 256 || trimmed.contains('\0') {
        return Err(format!(
            "deny entry `{entry}` must be a non-empty workspace-relative path"
        ));
    }
    let path = Path::new(trimmed);
    if path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
    {
        return Err(format!(
            "deny entry `{entry}` must be relative to the workspace, without `..`"
        ));
    }
    Ok(())
}

/// Where the current config came from at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ConfigSource {
    /// No file yet: the defaults.
    Default,
    File,
    /// `config.json` did not load; its last-known-good copy did.
    LastKnownGood,
}

/// The config, loaded once and written through.
#[derive(Debug)]
pub struct ConfigStore {
    dir: PathBuf,
    current: RwLock<(AgentConfig, ConfigSource)>,
    write: Mutex<()>,
}

impl ConfigStore {
    /// Loads `<data_dir>/agents/config.json`, falling back to the
    /// last-known-good copy, then to the defaults.
    pub fn open(data_dir: &Path) -> ConfigStore {
        let dir = data_dir.join("agents");
        let loaded = load(&dir);
        ConfigStore {
            dir,
            current: RwLock::new(loaded),
            write: Mutex::new(()),
        }
    }

    fn current(&self) -> RwLockReadGuard<'_, (AgentConfig, ConfigSource)> {
        self.current.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The config in force.
    pub fn get(&self) -> AgentConfig {
        self.current().0.clone()
    }

    /// Where the config in force came from.
    pub fn source(&self) -> ConfigSource {
        self.current().1
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// Stores a validated config: the file it replaces (when that one is
    /// good) becomes the last-known-good copy, then the new one is written.
    pub fn set(&self, config: AgentConfig) -> Result<(), OpenclawssyError> {
        config.validate().map_err(OpenclawssyError::Invalid)?;
        let _guard = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let path = self.path();
        let last_good = self.dir.join(LAST_GOOD_FILE);
        match std::fs::read(&path) {
            Ok(previous) if parse_stored(&previous).is_ok() => {
                garrison_files::write_atomic(&last_good, &previous, garrison_files::PRIVATE)
                    .map_err(|e| OpenclawssyError::io(&last_good, e))?;
            }
            Ok(_) => {
                tracing::warn!(file = %path.display(), "replacing an invalid config; the last-known-good copy is kept as it was");
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(OpenclawssyError::io(&path, e)),
        }
        garrison_files::write_json(&path, &config, garrison_files::PRIVATE)
            .map_err(|e| OpenclawssyError::io(&path, e))?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) =
            (config, ConfigSource::File);
        tracing::info!(file = %path.display(), "agent config stored");
        Ok(())
    }
}

fn parse_stored(bytes: &[u8]) -> Result<AgentConfig, String> {
    // Serde would also read a struct from an array; a config is an object.
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if !doc.is_object() {
        return Err("the config must be a JSON object".into());
    }
    let config: AgentConfig = serde_json::from_value(doc).map_err(|e| e.to_string())?;
    config.validate()?;
    Ok(config)
}

fn load(dir: &Path) -> (AgentConfig, ConfigSource) {
    let path = dir.join(CONFIG_FILE);
    let reason = match std::fs::read(&path) {
        Ok(bytes) => match parse_stored(&bytes) {
            Ok(c) => return (c, ConfigSource::File),
            Err(e) => e,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (AgentConfig::default(), ConfigSource::Default);
        }
        Err(e) => e.to_string(),
    };
    let last_good = dir.join(LAST_GOOD_FILE);
    match std::fs::read(&last_good)
        .map_err(|e| e.to_string())
        .and_then(|b| parse_stored(&b))
    {
        Ok(c) => {
            tracing::warn!(file = %path.display(), error = %reason, fallback = %last_good.display(), "agent config does not load; using the last-known-good copy");
            (c, ConfigSource::LastKnownGood)
        }
        Err(e) => {
            tracing::error!(file = %path.display(), error = %reason, last_good_error = %e, "agent config does not load and there is no usable last-known-good copy; using the defaults");
            (AgentConfig::default(), ConfigSource::Default)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn strict_parsing() {
        let good = AgentConfig::parse(&body(json!({
            "provider": {"base_url": "https://api.example.com/v1", "model": "m", "api_key_secret": "KEY", "api_key": ""},
            "tool_timeout_ms": 5000, "deny": ["private", "./notes/secret"], "max_turns": 3, "sandbox": false
        })))
        .unwrap();
        assert_eq!(good.max_turns, 3);
        assert_eq!(good.provider.as_ref().unwrap().host(), "api.example.com");
        let view = good.public_view();
        assert_eq!(view["provider"]["api_key"], "");
        assert_eq!(view["provider"]["api_key_secret"], "KEY");
        // The view posts back as is.
        assert_eq!(AgentConfig::parse(&body(view)).unwrap(), good);
        assert_eq!(AgentConfig::parse(b"{}").unwrap(), AgentConfig::default());

        for bad in [
            json!({"bogus": 1}),
            json!({"provider": {"base_url": "ftp://x/v1", "model": "m"}}),
            json!({"provider": {"base_url": "not a url", "model": "m"}}),
            json!({"provider": {"base_url": "http://u:p@h/v1", "model": "m"}}),
            json!({"provider": {"base_url": "http://h/v1", "model": ""}}),
            json!({"provider": {"base_url": "http://h/v1", "model": "m", "api_key": "sk-live"}}),
            json!({"provider": {"base_url": "http://h/v1", "model": "m", "api_key_secret": "a b"}}),
            json!({"provider": {"base_url": "http://h/v1", "model": "m", "extra": 1}}),
            json!({"max_turns": 0}),
            json!({"max_turns": -1}),
            json!({"max_turns": 1.5}),
            json!({"max_turns": "3"}),
            json!({"tool_timeout_ms": 0}),
            json!({"tool_timeout_ms": 3_600_001}),
            json!({"deny": ["../up"]}),
            json!({"deny": ["/abs"]}),
            json!({"deny": [" "]}),
            json!({"sandbox": "yes"}),
            json!([]),
        ] {
            let err = AgentConfig::parse(&body(bad.clone())).unwrap_err();
            assert_eq!(err.code(), "invalid.request", "{bad}");
        }
    }

    #[test]
    fn previous_good_file_is_the_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::open(dir.path());
        assert_eq!(store.source(), ConfigSource::Default);
        let a = AgentConfig {
            max_turns: 5,
            ..AgentConfig::default()
        };
        let b = AgentConfig {
            max_turns: 6,
            ..AgentConfig::default()
        };
        store.set(a.clone()).unwrap();
        store.set(b.clone()).unwrap();
        let reopened = ConfigStore::open(dir.path());
        assert_eq!(reopened.get(), b);
        assert_eq!(reopened.source(), ConfigSource::File);

        std::fs::write(store.path(), b"{not json").unwrap();
        let fallen_back = ConfigStore::open(dir.path());
        assert_eq!(fallen_back.get(), a);
        assert_eq!(fallen_back.source(), ConfigSource::LastKnownGood);
        // Storing over the corrupt file keeps the good copy as it was.
        fallen_back.set(b.clone()).unwrap();
        let lkg = std::fs::read(dir.path().join("agents").join(LAST_GOOD_FILE)).unwrap();
        assert_eq!(parse_stored(&lkg).unwrap(), a);

        std::fs::write(store.path(), b"[]").unwrap();
        std::fs::write(dir.path().join("agents").join(LAST_GOOD_FILE), b"").unwrap();
        assert_eq!(ConfigStore::open(dir.path()).get(), AgentConfig::default());
    }
}
