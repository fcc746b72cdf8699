//! OpenAI-compatible chat completions: the wire types and an HTTP client.
//!
//! Tool names travel with `.` replaced by `_` (`fs.read` → `fs_read`), since
//! function names allow only `[A-Za-z0-9_-]`.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::model::{Model, ModelError};
use crate::tools::{TOOL_NAMES, ToolSpec};

/// Longest wait between retries, whatever `retry-after` asks for.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);
/// Longest error body kept in a [`ModelError::Status`].
const BODY_SNIPPET_CHARS: usize = 500;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    #[default]
    Assistant,
    Tool,
}

/// One chat message, as sent and as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Defaults to `assistant`, so recorded turns may omit it.
    #[serde(default)]
    pub role: Role,
    /// `null` on assistant turns that only call tools.
    #[serde(default)]
    pub content: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ChatMessage {
    fn plain(role: Role, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role,
            content: Some(content.into()),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
        }
    }

    pub fn system(content: impl Into<String>) -> ChatMessage {
        ChatMessage::plain(Role::System, content)
    }

    pub fn user(content: impl Into<String>) -> ChatMessage {
        ChatMessage::plain(Role::User, content)
    }

    pub fn assistant(content: impl Into<String>) -> ChatMessage {
        ChatMessage::plain(Role::Assistant, content)
    }

    /// The result of tool call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            tool_call_id: Some(tool_call_id.into()),
            ..ChatMessage::plain(Role::Tool, content)
        }
    }
}

/// A function call the assistant asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Some servers omit it; the tool loop then assigns one.
    #[serde(default)]
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionCall,
}

/// Name (wire form) and JSON-encoded arguments of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    /// A JSON string on the wire; a JSON object is accepted too (recorded
    /// scripts) and kept in its serialised form.
    #[serde(default, deserialize_with = "string_or_json")]
    pub arguments: String,
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    #[serde(rename = "type")]
    pub kind: String,
    pub function: FunctionDefinition,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDefinition {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

impl ToolDefinition {
    /// The wire form of a runtime tool.
    pub fn from_spec(spec: &ToolSpec) -> ToolDefinition {
        ToolDefinition {
            kind: function_type(),
            function: FunctionDefinition {
                name: wire_tool_name(spec.name),
                description: spec.description.to_string(),
                parameters: spec.parameters.clone(),
            },
        }
    }
}

/// What the tool loop asks of a model; the client adds `model` and `tool_choice`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolDefinition>,
    pub temperature: Option<f64>,
}

/// The request body on the wire.
#[derive(Serialize)]
struct CompletionBody<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tools: &'a [ToolDefinition],
    /// Only sent with tools: servers reject `tool_choice` without any.
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
}

#[derive(Deserialize)]
struct CompletionResponse {
    #[serde(default)]
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChatMessage,
}

/// `fs.read` → `fs_read`.
pub fn wire_tool_name(name: &str) -> String {
    name.replace('.', "_")
}

/// `fs_read` → `fs.read` for built-in tools; any other name is kept as is
/// (and will be `tool.not_found`).
pub fn tool_name_from_wire(wire: &str) -> String {
    TOOL_NAMES
        .iter()
        .find(|name| **name == wire || wire_tool_name(name) == wire)
        .map_or_else(|| wire.to_string(), |name| name.to_string())
}

fn function_type() -> String {
    "function".to_string()
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn string_or_json<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// A chat-completions client for one model at one endpoint.
#[derive(Clone)]
pub struct OpenAiClient {
    http: reqwest::Client,
    endpoint: String,
    api_key: Option<String>,
    model: String,
    max_retries: u32,
    backoff_base: Duration,
}

impl fmt::Debug for OpenAiClient {
    // Hand-written so the key never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiClient")
            .field("endpoint", &self.endpoint)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// One attempt's failure, and whether another attempt may succeed.
enum AttemptError {
    Retry {
        error: ModelError,
        after: Option<Duration>,
    },
    Fatal(ModelError),
}

impl OpenAiClient {
    /// `base_url` is OpenAI-style, including `/v1`; requests go to
    /// `{base_url}/chat/completions`. `api_key`, when set, is sent as a bearer token.
    pub fn new(
        base_url: impl AsRef<str>,
        api_key: Option<String>,
        model: impl Into<String>,
    ) -> Result<OpenAiClient, ModelError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            // A slow model is bounded by the unit budget; this only stops a hung socket.
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| ModelError::Setup(e.to_string()))?;
        Ok(OpenAiClient {
            http,
            endpoint: format!(
                "{}/chat/completions",
                base_url.as_ref().trim_end_matches('/')
            ),
            api_key: api_key.filter(|k| !k.is_empty()),
            model: model.into(),
            max_retries: 3,
            backoff_base: Duration::from_millis(500),
        })
    }

    /// First retry delay (doubled on each further retry) when the server
    /// gives no `retry-after`.
    pub fn with_backoff_base(mut self, base: Duration) -> OpenAiClient {
        self.backoff_base = base;
        self
    }

    /// Retries after the first attempt on 429, 5xx and connection errors.
    pub fn with_max_retries(mut self, retries: u32) -> OpenAiClient {
        self.max_retries = retries;
        self
    }

    /// The full URL requests are posted to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// One chat completion: `choices[0].message`, retried with exponential
    /// backoff on 429/5xx and connection errors (honouring `retry-after`).
    pub async fn chat(&self, req: &ChatRequest) -> Result<ChatMessage, ModelError> {
        let body = serde_json::to_vec(&CompletionBody {
            model: &self.model,
            messages: &req.messages,
            tools: &req.tools,
            tool_choice: (!req.tools.is_empty()).then_some("auto"),
            temperature: req.temperature,
        })
        .map_err(|e| ModelError::Setup(format!("cannot encode request: {e}")))?;
        let mut retries = 0;
        loop {
            match self.attempt(body.clone()).await {
                Ok(message) => return Ok(message),
                Err(AttemptError::Retry { error, after }) if retries < self.max_retries => {
                    let backoff = self.backoff_base.saturating_mul(1 << retries.min(16));
                    let wait = after.unwrap_or(backoff).min(MAX_RETRY_WAIT);
                    tracing::warn!(endpoint = %self.endpoint, retry = retries + 1, wait_ms = wait.as_millis() as u64, %error, "model request failed; retrying");
                    tokio::time::sleep(wait).await;
                    retries += 1;
                }
                Err(AttemptError::Retry { error, .. } | AttemptError::Fatal(error)) => {
                    return Err(error);
                }
            }
        }
    }

    async fn attempt(&self, body: Vec<u8>) -> Result<ChatMessage, AttemptError> {
        let mut request = self
            .http
            .post(&self.endpoint)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(key) = &self.api_key {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                AttemptError::Fatal(ModelError::Setup(
                    "the API key is not a valid HTTP header value".into(),
                ))
            })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let retry_after = retry_after(response.headers().get(RETRY_AFTER));
        let text = response.text().await.map_err(transport_error)?;
        if !status.is_success() {
            let error = ModelError::Status {
                status: status.as_u16(),
                body: snippet(&text),
            };
            return Err(
                if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                    AttemptError::Retry {
                        error,
                        after: retry_after,
                    }
                } else {
                    AttemptError::Fatal(error)
                },
            );
        }
        let parsed: CompletionResponse = serde_json::from_str(&text).map_err(|e| {
            AttemptError::Fatal(ModelError::Response(format!(
                "{e}; body starts: {}",
                snippet(&text)
            )))
        })?;
        parsed
            .choices
            .into_iter()
            .next()
            .map(|c| c.message)
            .ok_or_else(|| {
                AttemptError::Fatal(ModelError::Response(format!(
                    "no choices; body starts: {}",
                    snippet(&text)
                )))
            })
    }
}

impl Model for OpenAiClient {
    fn complete(
        &mut self,
        req: &ChatRequest,
    ) -> impl Future<Output = Result<ChatMessage, ModelError>> + Send {
        self.chat(req)
    }

    fn describe(&self) -> (String, String) {
        let host = reqwest::Url::parse(&self.endpoint)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| self.endpoint.clone());
        (host, self.model.clone())
    }
}

fn transport_error(e: reqwest::Error) -> AttemptError {
    let retry = e.is_connect() || e.is_timeout() || e.is_request() || e.is_body();
    let error = ModelError::Transport(e.to_string());
    if retry {
        AttemptError::Retry { error, after: None }
    } else {
        AttemptError::Fatal(error)
    }
}

/// `retry-after` in (possibly fractional) seconds; HTTP dates are ignored.
fn retry_after(value: Option<&HeaderValue>) -> Option<Duration> {
    let secs: f64 = value?.to_str().ok()?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0)
        .then(|| Duration::from_secs_f64(secs.min(MAX_RETRY_WAIT.as_secs_f64())))
}

fn snippet(text: &str) -> String {
    let mut s: String = text.chars().take(BODY_SNIPPET_CHARS).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_names_round_trip() {
        for name in TOOL_NAMES {
            let wire = wire_tool_name(name);
            assert!(!wire.contains('.'));
            assert_eq!(tool_name_from_wire(&wire), *name);
        }
        assert_eq!(tool_name_from_wire("fs.read"), "fs.read");
        assert_eq!(tool_name_from_wire("web_fetch"), "web_fetch");
    }

    #[test]
    fn response_message_shapes() {
        let m: ChatMessage = serde_json::from_value(json!({
            "role": "assistant", "content": null,
            "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "fs_write", "arguments": "{\"path\":\"a\"}"}}]
        }))
        .unwrap();
        assert_eq!(m.tool_calls[0].function.arguments, r#"{"path":"a"}"#);
        let m: ChatMessage = serde_json::from_value(json!({
            "content": "done", "tool_calls": null
        }))
        .unwrap();
        assert_eq!(m.role, Role::Assistant);
        assert!(m.tool_calls.is_empty());
        let m: ChatMessage = serde_json::from_value(json!({
            "tool_calls": [{"id": "c1", "function": {"name": "fs_read", "arguments": {"path": "x"}}}]
        }))
        .unwrap();
        assert_eq!(m.tool_calls[0].function.arguments, r#"{"path":"x"}"#);
        assert_eq!(m.tool_calls[0].kind, "function");
    }

    #[test]
    fn body_shape() {
        let req = ChatRequest {
            messages: vec![ChatMessage::user("hi"), ChatMessage::tool("c1", "{}")],
            tools: vec![],
            temperature: None,
        };
        let body = serde_json::to_value(CompletionBody {
            model: "m",
            messages: &req.messages,
            tools: &req.tools,
            tool_choice: None,
            temperature: Some(0.2),
        })
        .unwrap();
        assert_eq!(
            body,
            json!({"model": "m", "temperature": 0.2, "messages": [
                {"role": "user", "content": "hi"},
                {"role": "tool", "content": "{}", "tool_call_id": "c1"}
            ]})
        );
    }

    #[test]
    fn retry_after_parsing() {
        let h = |s: &str| retry_after(Some(&HeaderValue::from_str(s).unwrap()));
        assert_eq!(h("0"), Some(Duration::ZERO));
        assert_eq!(h("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(h("3600"), Some(MAX_RETRY_WAIT));
        assert_eq!(h("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(h("-1"), None);
    }

    #[test]
    fn debug_hides_key() {
        let c = OpenAiClient::new("http://127.0.0.1:1/v1/", Some("sk-secret".into()), "m").unwrap();
        assert!(!format!("{c:?}").contains("sk-secret"));
        assert_eq!(c.endpoint(), "http://127.0.0.1:1/v1/chat/completions");
    }
}
