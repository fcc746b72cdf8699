//! What the tool loop needs from a model: one chat-completions turn at a time.

use std::future::Future;

use crate::openai::{ChatMessage, ChatRequest};

/// A chat model that may answer with tool calls.
///
/// `&mut self` lets stateful models (the scripted one) advance between turns.
pub trait Model: Send {
    /// One turn: the assistant's next message for `req`.
    fn complete(
        &mut self,
        req: &ChatRequest,
    ) -> impl Future<Output = Result<ChatMessage, ModelError>> + Send;

    /// `(provider, model)` answering the next turn, for events and records.
    fn describe(&self) -> (String, String) {
        ("unknown".into(), "unknown".into())
    }
}

/// Why a model turn produced no message.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A non-2xx answer (after retries, for 429/5xx). `body` is a short snippet.
    #[error("model endpoint answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// The endpoint could not be reached (after retries).
    #[error("cannot reach the model endpoint: {0}")]
    Transport(String),
    /// A 2xx answer that is not a usable chat completion.
    #[error("unusable model response: {0}")]
    Response(String),
    /// The client could not be built or the request not encoded.
    #[error("model client setup failed: {0}")]
    Setup(String),
    /// Every provider of a failover chain failed; one line per provider.
    #[error("every model provider failed: {0}")]
    AllProvidersFailed(String),
    /// A scripted model was asked for more turns than it recorded.
    #[error("script exhausted: all {turns} recorded turns were used")]
    ScriptExhausted { turns: usize },
}
