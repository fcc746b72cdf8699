//! Provider failover: a chain of models tried in order when one fails after
//! its own retries. The chain stays on the provider that last answered, so
//! later turns do not pay for the failed one's retries again.

use crate::model::{Model, ModelError};
use crate::openai::{ChatMessage, ChatRequest};

/// Models tried in order; the first is the primary.
#[derive(Debug, Clone)]
pub struct Failover<M> {
    models: Vec<M>,
    active: usize,
    switches: Vec<String>,
}

impl<M: Model> Failover<M> {
    /// A chain over `models` (at least one for any turn to succeed).
    pub fn new(models: Vec<M>) -> Failover<M> {
        Failover {
            models,
            active: 0,
            switches: Vec::new(),
        }
    }

    /// Index of the model answering the next turn.
    pub fn active(&self) -> usize {
        self.active
    }

    /// One line per switch to a later provider, with the error that caused it.
    pub fn switches(&self) -> &[String] {
        &self.switches
    }
}

impl<M: Model> Model for Failover<M> {
    async fn complete(&mut self, req: &ChatRequest) -> Result<ChatMessage, ModelError> {
        let mut errors = Vec::new();
        for i in self.active..self.models.len() {
            match self.models[i].complete(req).await {
                Ok(message) => {
                    self.active = i;
                    return Ok(message);
                }
                Err(e) => {
                    let (provider, model) = self.models[i].describe();
                    if i + 1 < self.models.len() {
                        let (next, next_model) = self.models[i + 1].describe();
                        tracing::warn!(%provider, %model, %next, error = %e, "model provider failed; failing over");
                        self.switches.push(format!(
                            "{provider}/{model} failed ({e}); switched to {next}/{next_model}"
                        ));
                    }
                    errors.push((format!("{provider}/{model}"), e));
                }
            }
        }
        self.active = self.models.len().saturating_sub(1);
        match errors.len() {
            0 => Err(ModelError::Setup("no model provider configured".into())),
            1 => Err(errors.remove(0).1),
            _ => Err(ModelError::AllProvidersFailed(
                errors
                    .iter()
                    .map(|(who, e)| format!("{who}: {e}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }

    fn describe(&self) -> (String, String) {
        self.models
            .get(self.active)
            .map(Model::describe)
            .unwrap_or_else(|| ("none".into(), "none".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scripted::ScriptedModel;

    #[tokio::test]
    async fn fails_over_and_stays() {
        let empty = ScriptedModel::new(vec![]);
        let two = ScriptedModel::new(vec![
            ChatMessage::assistant("one"),
            ChatMessage::assistant("two"),
        ]);
        let mut chain = Failover::new(vec![empty, two]);
        let req = ChatRequest::default();
        assert_eq!(
            chain.complete(&req).await.unwrap().content.as_deref(),
            Some("one")
        );
        assert_eq!(chain.active(), 1);
        assert_eq!(chain.switches().len(), 1);
        assert_eq!(
            chain.complete(&req).await.unwrap().content.as_deref(),
            Some("two")
        );
        assert_eq!(chain.switches().len(), 1, "no retry of the failed primary");
        assert!(matches!(
            chain.complete(&req).await,
            Err(ModelError::ScriptExhausted { .. })
        ));
        let mut none: Failover<ScriptedModel> = Failover::new(vec![]);
        assert!(none.complete(&req).await.is_err());
        let mut both = Failover::new(vec![ScriptedModel::new(vec![]), ScriptedModel::new(vec![])]);
        assert!(matches!(
            both.complete(&req).await,
            Err(ModelError::AllProvidersFailed(_))
        ));
    }
}
