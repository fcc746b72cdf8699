//! A scripted model server: answers OpenAI chat-completions requests
//! (`POST /v1/chat/completions`) on 127.0.0.1 with queued replies, in order,
//! and keeps every request it got.
//!
//! It runs on a thread of its own with its own runtime, so synchronous tests
//! (which point a `garrison` child at it) and async ones use it alike; it
//! stops when its [`ModelServer`] is dropped. When the queue is empty it
//! answers 400 with an OpenAI-style error body; other paths get 404.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The path completions are posted to.
pub const COMPLETIONS_PATH: &str = "/v1/chat/completions";

/// One queued reply.
#[derive(Debug, Clone)]
pub struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    /// A `chat.completion` whose only choice is this assistant message.
    Message(Value),
    /// This JSON as it is.
    Raw(Value),
}

impl Reply {
    /// 200 with a `chat.completion` whose only choice is `message` (an
    /// assistant message); `finish_reason` is `tool_calls` when it has tool
    /// calls, else `stop`, and `model` echoes the request's.
    pub fn message(message: Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: Body::Message(message),
        }
    }

    /// `status` with `body` as it is (errors, malformed answers).
    pub fn status(status: u16, body: Value) -> Reply {
        Reply {
            status: StatusCode::from_u16(status)
                .unwrap_or_else(|_| panic!("not an HTTP status: {status}")),
            headers: Vec::new(),
            body: Body::Raw(body),
        }
    }

    /// The same reply with one more response header (e.g. `retry-after`).
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(value)) => self.headers.push((name, value)),
            _ => panic!("not a valid header: {name}: {value}"),
        }
        self
    }
}

/// A completion answering with text only.
pub fn text(t: &str) -> Reply {
    Reply::message(json!({"role": "assistant", "content": t}))
}

/// A completion calling tools: `(call id, wire name, arguments)`, the
/// arguments sent as their JSON text.
pub fn calls(calls: &[(&str, &str, Value)]) -> Reply {
    let calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, args)| {
            json!({"id": id, "type": "function",
                "function": {"name": name, "arguments": args.to_string()}})
        })
        .collect();
    Reply::message(json!({"role": "assistant", "content": null, "tool_calls": calls}))
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    /// The `authorization` header, if any.
    pub authorization: Option<String>,
    /// The body as JSON (`Null` if it was not JSON).
    pub body: Value,
}

#[derive(Default)]
struct Script {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Request>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running model server; it stops when dropped.
pub struct ModelServer {
    /// OpenAI-style base URL, including `/v1` (no trailing slash).
    pub base_url: String,
    script: Arc<Script>,
    /// Dropping it ends the server.
    _stop: oneshot::Sender<()>,
}

impl ModelServer {
    /// Serves `replies` in order.
    pub fn start(replies: impl IntoIterator<Item = Reply>) -> ModelServer {
        let script = Arc::new(Script {
            replies: Mutex::new(replies.into_iter().collect()),
            requests: Mutex::default(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .unwrap_or_else(|e| panic!("bind the model server: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("model server address: {e}"));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(script.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("model-server-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("model server runtime: {e}"));
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .unwrap_or_else(|e| panic!("model server listener: {e}"));
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })
            .unwrap_or_else(|e| panic!("model server thread: {e}"));
        ModelServer {
            base_url: format!("http://{addr}/v1"),
            script,
            _stop: stop,
        }
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.script.requests).clone()
    }
}

async fn answer(
    State(script): State<Arc<Script>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = body["model"].clone();
    lock(&script.requests).push(Request {
        path: uri.path().to_string(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body,
    });
    if uri.path() != COMPLETIONS_PATH {
        return error(StatusCode::NOT_FOUND, "no such route");
    }
    let Some(reply) = lock(&script.replies).pop_front() else {
        return error(StatusCode::BAD_REQUEST, "no more answers queued");
    };
    let body = match reply.body {
        Body::Raw(body) => body,
        Body::Message(message) => {
            let finish = if message.get("tool_calls").is_some() {
                "tool_calls"
            } else {
                "stop"
            };
            json!({
                "id": "chatcmpl-test", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
            })
        }
    };
    let headers: HeaderMap = reply.headers.into_iter().collect();
    (reply.status, headers, Json(body)).into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": "invalid_request_error"}})),
    )
        .into_response()
}
