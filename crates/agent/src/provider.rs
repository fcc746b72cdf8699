//! One OpenAI-compatible provider endpoint: where, which model, which key.

use serde::{Deserialize, Serialize};

use crate::openai::OpenAiClient;
use crate::unit::{DEFAULT_API_KEY_ENV, UnitError};

/// An endpoint and model. The API key is never in config: it is read from
/// `api_key_env` (default `GARRISON_LLM_API_KEY`, which may be unset for
/// local endpoints that take no key).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ProviderProfile {
    /// OpenAI-style, including `/v1`.
    pub base_url: String,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
}

impl ProviderProfile {
    /// Checks what can be checked without a request.
    pub fn validate(&self) -> Result<(), UnitError> {
        let invalid = |msg: String| Err(UnitError::ProfileInvalid(msg));
        match reqwest::Url::parse(&self.base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => {
                return invalid(format!(
                    "base_url `{}` is not an http(s) URL",
                    self.base_url
                ));
            }
        }
        if self.model.trim().is_empty() {
            return invalid("model is empty".into());
        }
        if self
            .api_key_env
            .as_ref()
            .is_some_and(|v| v.trim().is_empty())
        {
            return invalid("api_key_env is empty".into());
        }
        Ok(())
    }

    /// The endpoint's host, as `provider` in records.
    pub fn provider_name(&self) -> String {
        reqwest::Url::parse(&self.base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| self.base_url.clone())
    }

    /// The key this profile sends, if any. A variable named in the profile
    /// must be set; the default one may be unset.
    pub fn api_key(&self) -> Result<Option<String>, UnitError> {
        let read = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
        match self.api_key_env.as_deref() {
            Some(var) => read(var).map(Some).ok_or_else(|| {
                UnitError::ModelUnavailable(format!("API key variable {var} is not set"))
            }),
            None => Ok(read(DEFAULT_API_KEY_ENV)),
        }
    }

    /// A client for this profile, and the key it uses (for redaction).
    pub fn client(&self) -> Result<(OpenAiClient, Option<String>), UnitError> {
        self.validate()?;
        let key = self.api_key()?;
        let client = OpenAiClient::new(&self.base_url, key.clone(), &self.model)
            .map_err(|e| UnitError::ModelUnavailable(e.to_string()))?;
        Ok((client, key))
    }
}
