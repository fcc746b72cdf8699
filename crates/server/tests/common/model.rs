//! A model server for tests: answers OpenAI chat-completions requests on
//! 127.0.0.1 with queued assistant messages and keeps every request it got.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<Value>>,
    seen: Mutex<Vec<Seen>>,
}

/// A running model server.
#[derive(Clone)]
pub struct ModelServer {
    /// OpenAI-style base URL, including `/v1`.
    pub base_url: String,
    script: Arc<Script>,
}

async fn completions(
    State(script): State<Arc<Script>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    script.seen.lock().unwrap().push(Seen {
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body,
    });
    let Some(message) = script.answers.lock().unwrap().pop_front() else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": "no more answers queued", "type": "invalid_request_error"}})),
        )
            .into_response();
    };
    Json(json!({
        "id": "chatcmpl-test", "object": "chat.completion", "created": 1, "model": "test",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    }))
    .into_response()
}

impl ModelServer {
    /// Serves `answers` (assistant messages) in order.
    pub async fn start(answers: Vec<Value>) -> ModelServer {
        let script = Arc::new(Script {
            answers: Mutex::new(answers.into()),
            seen: Mutex::default(),
        });
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        ModelServer {
            base_url: format!("http://{addr}/v1"),
            script,
        }
    }

    /// Queues more answers.
    pub fn push(&self, answers: impl IntoIterator<Item = Value>) {
        self.script.answers.lock().unwrap().extend(answers);
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.script.seen.lock().unwrap().clone()
    }
}

/// An assistant message with only text.
pub fn text(t: &str) -> Value {
    json!({"role": "assistant", "content": t})
}

/// An assistant message calling tools: `(call id, wire name, arguments)`.
pub fn calls(calls: &[(&str, &str, Value)]) -> Value {
    let calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, args)| {
            json!({"id": id, "type": "function",
                "function": {"name": name, "arguments": args.to_string()}})
        })
        .collect();
    json!({"role": "assistant", "content": null, "tool_calls": calls})
}
