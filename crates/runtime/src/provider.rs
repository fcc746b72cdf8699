//! Which model endpoint a `/v1` run uses: the config's provider (its key
//! from the secret store), else the one `GARRISON_LLM_*` describes.

use std::fmt;

use garrison_agent::OpenAiClient;
use garrison_agent::unit::{BASE_URL_ENV, DEFAULT_API_KEY_ENV, MODEL_ENV};
use serde::Serialize;

use super::admin_config::AgentConfig;
use super::secrets::SecretStore;

/// The provider `GARRISON_LLM_BASE_URL`, `GARRISON_LLM_MODEL` and
/// `GARRISON_LLM_API_KEY` define. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvProvider {
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
}

impl fmt::Debug for EnvProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvProvider")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl EnvProvider {
    /// Read from the process environment; `None` unless both the base URL
    /// and the model are set.
    pub fn from_env() -> Option<EnvProvider> {
        let var = |name| {
            std::env::var(name)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        Some(EnvProvider {
            base_url: var(BASE_URL_ENV)?,
            model: var(MODEL_ENV)?,
            api_key: var(DEFAULT_API_KEY_ENV),
        })
    }
}

/// Where the selected provider comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ProviderSource {
    Config,
    Environment,
}

/// The provider a run would use now.
#[derive(Clone)]
pub struct Selected {
    pub source: ProviderSource,
    pub name: String,
    pub base_url: String,
    pub model: String,
    /// The key's origin, for status (`secret NAME`, `GARRISON_LLM_API_KEY`).
    pub key_from: Option<String>,
    /// The key itself; `Err` names a missing secret.
    key: Result<Option<String>, String>,
}

impl fmt::Debug for Selected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Selected")
            .field("source", &self.source)
            .field("name", &self.name)
            .field("model", &self.model)
            .field("key_from", &self.key_from)
            .finish()
    }
}

/// What `GET /api/admin/status` shows of the selected provider (no key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderStatus {
    pub source: ProviderSource,
    pub name: String,
    pub model: String,
    pub base_url_host: String,
    /// `secret NAME`, `GARRISON_LLM_API_KEY`, or none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_from: Option<String>,
    /// Whether that key is available.
    pub api_key_present: bool,
}

/// The provider in force: the config's, else the environment's.
pub fn select(
    config: &AgentConfig,
    env: Option<&EnvProvider>,
    secrets: &SecretStore,
) -> Option<Selected> {
    if let Some(p) = &config.provider {
        let key = match &p.api_key_secret {
            Some(name) => secrets.get(name).map(Some).ok_or_else(|| {
                format!(
                    "the provider's API key secret `{name}` is not stored (POST /api/admin/secrets)"
                )
            }),
            None => Ok(None),
        };
        return Some(Selected {
            source: ProviderSource::Config,
            name: p.display_name(),
            base_url: p.base_url.clone(),
            model: p.model.clone(),
            key_from: p.api_key_secret.as_ref().map(|n| format!("secret {n}")),
            key,
        });
    }
    env.map(|e| Selected {
        source: ProviderSource::Environment,
        name: host_of(&e.base_url),
        base_url: e.base_url.clone(),
        model: e.model.clone(),
        key_from: e.api_key.as_ref().map(|_| DEFAULT_API_KEY_ENV.to_string()),
        key: Ok(e.api_key.clone()),
    })
}

impl Selected {
    /// A client for this provider and the key it sends (for redaction).
    pub fn client(&self) -> Result<(OpenAiClient, Option<String>), String> {
        let key = self.key.clone()?;
        let client = OpenAiClient::new(&self.base_url, key.clone(), &self.model)
            .map_err(|e| format!("model provider {}: {e}", self.name))?;
        Ok((client, key))
    }

    pub fn status(&self) -> ProviderStatus {
        ProviderStatus {
            source: self.source,
            name: self.name.clone(),
            model: self.model.clone(),
            base_url_host: host_of(&self.base_url),
            api_key_from: self.key_from.clone(),
            api_key_present: matches!(self.key, Ok(Some(_))),
        }
    }
}

fn host_of(base_url: &str) -> String {
    garrison_agent::ProviderProfile {
        base_url: base_url.to_string(),
        model: String::new(),
        api_key_env: None,
    }
    .provider_name()
}
