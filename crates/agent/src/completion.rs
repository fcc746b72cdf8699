//! One plain chat completion with a unit profile, for callers that need an
//! answer rather than work in a worktree (e.g. a planner asking for a plan).

use crate::failover::Failover;
use crate::model::Model;
use crate::openai::{ChatMessage, ChatRequest};
use crate::scripted::ScriptedModel;
use crate::unit::{UnitError, UnitProfile};

/// Sends `system` + `user` without tools and returns the reply's text (empty
/// when the model sent none). `llm` profiles ask their endpoint (then its fallback); `scripted`
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
        UnitProfile::Llm { temperature, .. } => {
            req.temperature = *temperature;
            let clients = profile
                .providers()
                .iter()
                .map(|p| p.client().map(|(c, _)| c))
                .collect::<Result<Vec<_>, _>>()?;
            Failover::new(clients).complete(&req).await?
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
