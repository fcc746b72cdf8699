//! One plain chat completion with a unit profile, for callers that need an
//! answer rather than work in a worktree (e.g. a planner asking for a plan).

use crate::model::Model;
use crate::openai::{ChatMessage, ChatRequest, OpenAiClient};
use crate::scripted::ScriptedModel;
use crate::unit::{UnitError, UnitProfile, resolve_api_key};

/// Sends `system` + `user` without tools and returns the reply's text (empty
/// when the model sent none). `llm` profiles ask their endpoint; `scripted`
/// profiles answer with their first recorded turn. Not bounded in time beyond
/// the client's own request timeout: callers wrap it in their budget.
pub async fn complete_text(
    profile: &UnitProfile,
    system: &str,
    user: &str,
) -> Result<String, UnitError> {
    profile.validate()?;
    let mut req = ChatRequest {
        messages: vec![ChatMessage::system(system), ChatMessage::user(user)],
        tools: Vec::new(),
        temperature: None,
    };
    let reply = match profile {
        UnitProfile::Llm {
            base_url,
            model,
            api_key_env,
            temperature,
            ..
        } => {
            req.temperature = *temperature;
            let api_key = resolve_api_key(api_key_env.as_deref())?;
            OpenAiClient::new(base_url, api_key, model)
                .map_err(|e| UnitError::ModelUnavailable(e.to_string()))?
                .chat(&req)
                .await?
        }
        UnitProfile::Scripted { script } => ScriptedModel::load(script)?.complete(&req).await?,
        UnitProfile::Command { .. } | UnitProfile::Noop => {
            return Err(UnitError::ProfileInvalid(
                "only `llm` and `scripted` profiles answer a chat completion".into(),
            ));
        }
    };
    Ok(reply.content.unwrap_or_default())
}
