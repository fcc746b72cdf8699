//! A model that replays recorded assistant turns, for tests and the offline demo.
//!
//! Script file: `{"turns": [<assistant message>, …]}`, each message in the
//! chat-completions response shape (`content`, `tool_calls` with wire tool
//! names); `arguments` may be a JSON string or, for convenience, an object.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::{Model, ModelError};
use crate::openai::{ChatMessage, ChatRequest};

/// Why a script could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("cannot read script {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("script {} is not `{{\"turns\": [...]}}`: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

#[derive(Deserialize)]
struct ScriptFile {
    turns: Vec<ChatMessage>,
}

/// Answers each turn with the next recorded message, whatever was asked.
#[derive(Debug, Clone)]
pub struct ScriptedModel {
    turns: VecDeque<ChatMessage>,
    recorded: usize,
}

impl ScriptedModel {
    pub fn new(turns: Vec<ChatMessage>) -> ScriptedModel {
        ScriptedModel {
            recorded: turns.len(),
            turns: turns.into(),
        }
    }

    /// Parses a script document.
    pub fn from_json(text: &str) -> Result<ScriptedModel, serde_json::Error> {
        let file: ScriptFile = serde_json::from_str(text)?;
        Ok(ScriptedModel::new(file.turns))
    }

    /// Loads a script file.
    pub fn load(path: &Path) -> Result<ScriptedModel, ScriptError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScriptError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        ScriptedModel::from_json(&text).map_err(|source| ScriptError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// How many turns the script recorded.
    pub fn recorded_turns(&self) -> usize {
        self.recorded
    }
}

impl Model for ScriptedModel {
    async fn complete(&mut self, _req: &ChatRequest) -> Result<ChatMessage, ModelError> {
        self.turns.pop_front().ok_or(ModelError::ScriptExhausted {
            turns: self.recorded,
        })
    }

    fn describe(&self) -> (String, String) {
        ("scripted".into(), "script".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replays_then_exhausts() {
        let mut m = ScriptedModel::from_json(
            r#"{"turns": [{"tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "fs_list", "arguments": {"path": "."}}}]},
              {"content": "done"}]}"#,
        )
        .unwrap();
        let req = ChatRequest::default();
        let first = m.complete(&req).await.unwrap();
        assert_eq!(first.tool_calls[0].function.arguments, r#"{"path":"."}"#);
        assert_eq!(
            m.complete(&req).await.unwrap().content.as_deref(),
            Some("done")
        );
        assert!(matches!(
            m.complete(&req).await,
            Err(ModelError::ScriptExhausted { turns: 2 })
        ));
        assert!(ScriptedModel::from_json(r#"{"turns": [{"content": 3}]}"#).is_err());
        assert!(matches!(
            ScriptedModel::load(Path::new("/nonexistent/script.json")),
            Err(ScriptError::Read { .. })
        ));
    }
}
