//! Session context policy (contract §6, option A): how persisted chat
//! history becomes model context. Pure: no I/O, no clock.
//!
//! Tool executions are replayed as `role="tool"` messages whose text is
//! `tool <name> result (<id>)` plus the summary, error and an output excerpt,
//! each capped; every message is capped at [`MESSAGE_CHARS`]; then the
//! oldest messages are dropped until the sum of contents is within
//! [`TOTAL_CHARS`]. Lengths are counted in Unicode scalar values, and a cut
//! text ends in `…` within its cap.

use serde::{Deserialize, Serialize};

use crate::openai::{ChatMessage, FunctionCall, Role, ToolCall, wire_tool_name};

/// Cap on one message's content.
pub const MESSAGE_CHARS: usize = 1400;
/// Cap on a tool message's summary.
pub const TOOL_SUMMARY_CHARS: usize = 220;
/// Cap on a tool message's error.
pub const TOOL_ERROR_CHARS: usize = 320;
/// Cap on a tool message's output excerpt.
pub const TOOL_OUTPUT_CHARS: usize = 1000;
/// Cap on the sum of all message contents.
pub const TOTAL_CHARS: usize = 12_000;

/// What marks a cut text.
pub const ELLIPSIS: char = '…';

/// One persisted chat message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionMessage {
    pub role: SessionRole,
    /// The text; for tool messages only a fallback when `summary`, `error`
    /// and `output` are all empty.
    #[serde(default)]
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
}

/// Who wrote a session message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SessionRole {
    System,
    #[default]
    User,
    Assistant,
    Tool,
}

/// A message of the rebuilt context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextMessage {
    pub role: SessionRole,
    pub content: String,
    /// Set on tool messages.
    pub tool_call_id: Option<String>,
    pub tool_name: Option<String>,
}

/// `text` cut to at most `max` characters, ending in `…` when cut.
pub fn cap_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push(ELLIPSIS);
    out
}

/// The normalised text of a tool message.
pub fn tool_text(m: &SessionMessage) -> String {
    let name = m.tool_name.as_deref().unwrap_or("unknown");
    let id = m.tool_call_id.as_deref().unwrap_or("-");
    let mut s = format!("tool {name} result ({id})");
    let mut field = |label: &str, value: &str, cap: usize| {
        let value = value.trim();
        if !value.is_empty() {
            s.push('\n');
            s.push_str(label);
            s.push_str(": ");
            s.push_str(&cap_chars(value, cap));
        }
    };
    field("summary", &m.summary, TOOL_SUMMARY_CHARS);
    field("error", &m.error, TOOL_ERROR_CHARS);
    let output = if m.summary.is_empty() && m.error.is_empty() && m.output.is_empty() {
        &m.content
    } else {
        &m.output
    };
    field("output", output, TOOL_OUTPUT_CHARS);
    s
}

/// Applies the whole policy to `history` (oldest first).
pub fn build_context(history: &[SessionMessage]) -> Vec<ContextMessage> {
    let mut msgs: Vec<ContextMessage> = history
        .iter()
        .map(|m| {
            let text = match m.role {
                SessionRole::Tool => tool_text(m),
                _ => m.content.clone(),
            };
            ContextMessage {
                role: m.role,
                content: cap_chars(&text, MESSAGE_CHARS),
                tool_call_id: match m.role {
                    SessionRole::Tool => m.tool_call_id.clone(),
                    _ => None,
                },
                tool_name: m.tool_name.clone(),
            }
        })
        .collect();
    let mut total: usize = msgs.iter().map(|m| m.content.chars().count()).sum();
    let mut drop = 0;
    while total > TOTAL_CHARS && drop < msgs.len() {
        total -= msgs[drop].content.chars().count();
        drop += 1;
    }
    // A tool result whose call fell off the front has nothing to answer.
    while msgs.get(drop).is_some_and(|m| m.role == SessionRole::Tool) {
        drop += 1;
    }
    msgs.drain(..drop);
    msgs
}

/// The context as chat messages. A tool message must follow an assistant
/// message that called it, so one is supplied (or the preceding assistant
/// message extended) when the history did not keep the call.
pub fn to_chat_messages(ctx: &[ContextMessage]) -> Vec<ChatMessage> {
    let mut out: Vec<ChatMessage> = Vec::with_capacity(ctx.len());
    for m in ctx {
        match m.role {
            SessionRole::System => out.push(ChatMessage::system(&m.content)),
            SessionRole::User => out.push(ChatMessage::user(&m.content)),
            SessionRole::Assistant => out.push(ChatMessage::assistant(&m.content)),
            SessionRole::Tool => {
                let id = m
                    .tool_call_id
                    .clone()
                    .unwrap_or_else(|| "call_unknown".into());
                let call = ToolCall {
                    id: id.clone(),
                    kind: "function".into(),
                    function: FunctionCall {
                        name: wire_tool_name(m.tool_name.as_deref().unwrap_or("unknown")),
                        arguments: "{}".into(),
                    },
                };
                // The assistant message owning this result: the last
                // assistant message, if only tool results follow it.
                let owner = out
                    .iter()
                    .rposition(|c| c.role != Role::Tool)
                    .filter(|&i| out[i].role == Role::Assistant);
                match owner {
                    Some(i) if out[i].tool_calls.iter().any(|c| c.id == id) => {}
                    Some(i) => out[i].tool_calls.push(call),
                    None => out.push(ChatMessage {
                        content: None,
                        tool_calls: vec![call],
                        ..ChatMessage::assistant("")
                    }),
                }
                out.push(ChatMessage::tool(id, &m.content));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: SessionRole, content: &str) -> SessionMessage {
        SessionMessage {
            role,
            content: content.into(),
            ..SessionMessage::default()
        }
    }

    fn tool(summary: &str, error: &str, output: &str) -> SessionMessage {
        SessionMessage {
            role: SessionRole::Tool,
            tool_name: Some("fs.write".into()),
            tool_call_id: Some("call_1".into()),
            summary: summary.into(),
            error: error.into(),
            output: output.into(),
            ..SessionMessage::default()
        }
    }

    fn chars(s: &str) -> usize {
        s.chars().count()
    }

    #[test]
    fn cap_is_exact_at_the_boundary() {
        assert_eq!(cap_chars("abc", 3), "abc");
        assert_eq!(cap_chars("abcd", 3), "ab…");
        assert_eq!(cap_chars("ééé", 3), "ééé");
        assert_eq!(cap_chars("x", 0), "");
    }

    #[test]
    fn per_message_cap_is_1400() {
        let at = "a".repeat(MESSAGE_CHARS);
        let over = "é".repeat(MESSAGE_CHARS + 1);
        let ctx = build_context(&[msg(SessionRole::User, &at), msg(SessionRole::User, &over)]);
        assert_eq!(ctx[0].content, at);
        assert_eq!(chars(&ctx[1].content), 1400);
        assert!(ctx[1].content.ends_with(ELLIPSIS));
    }

    #[test]
    fn tool_field_caps() {
        let line = |text: &str, label: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{label}: ")))
                .map(str::to_string)
                .unwrap()
        };
        let at = tool(&"s".repeat(220), &"e".repeat(320), &"o".repeat(1000));
        let t = tool_text(&at);
        assert!(t.starts_with("tool fs.write result (call_1)\n"));
        assert_eq!(line(&t, "summary"), "s".repeat(220));
        assert_eq!(line(&t, "error"), "e".repeat(320));
        assert_eq!(line(&t, "output"), "o".repeat(1000));
        let over = tool(&"s".repeat(221), &"e".repeat(321), &"o".repeat(1001));
        let t = tool_text(&over);
        assert_eq!(chars(&line(&t, "summary")), 220);
        assert_eq!(chars(&line(&t, "error")), 320);
        assert_eq!(chars(&line(&t, "output")), 1000);
        assert!(line(&t, "output").ends_with(ELLIPSIS));
        // All three at their caps exceed the message cap, which applies last.
        let ctx = build_context(&[msg(SessionRole::Assistant, "writing"), over]);
        assert_eq!(ctx[1].role, SessionRole::Tool);
        assert_eq!(ctx[1].tool_call_id.as_deref(), Some("call_1"));
        assert_eq!(chars(&ctx[1].content), MESSAGE_CHARS);
        // Empty parts are left out.
        assert_eq!(
            tool_text(&tool("wrote 1 line(s) to a", "", "")),
            "tool fs.write result (call_1)\nsummary: wrote 1 line(s) to a"
        );
    }

    #[test]
    fn total_cap_drops_oldest_first() {
        // 10 × 1200 = 12000: exactly at the cap, nothing dropped.
        let history: Vec<_> = (0..10)
            .map(|i| msg(SessionRole::User, &format!("{i}{}", "x".repeat(1199))))
            .collect();
        assert_eq!(build_context(&history).len(), 10);
        // One more character anywhere drops the oldest message.
        let mut over = history.clone();
        over[9].content.push('y');
        let ctx = build_context(&over);
        assert_eq!(ctx.len(), 9);
        assert!(ctx[0].content.starts_with('1'));
        assert!(ctx[8].content.ends_with('y'));
        let total: usize = ctx.iter().map(|m| chars(&m.content)).sum();
        assert!(total <= TOTAL_CHARS);
    }

    #[test]
    fn orphaned_tool_results_are_dropped_with_their_call() {
        let mut history = vec![
            msg(SessionRole::User, &"u".repeat(1400)),
            msg(SessionRole::Assistant, &"a".repeat(1400)),
            tool("s", "", ""),
        ];
        history.extend((0..8).map(|_| msg(SessionRole::User, &"x".repeat(1400))));
        // 10 × 1400 plus the short tool message: the two oldest must go,
        // and the tool result they owned goes with them.
        let ctx = build_context(&history);
        assert!(ctx.iter().all(|m| m.role == SessionRole::User));
        assert_eq!(ctx.len(), 8);
    }

    #[test]
    fn chat_messages_pair_tool_results_with_calls() {
        let ctx = build_context(&[
            msg(SessionRole::User, "write it"),
            msg(SessionRole::Assistant, "writing"),
            tool("wrote", "", ""),
            msg(SessionRole::Assistant, "done"),
        ]);
        let chat = to_chat_messages(&ctx);
        assert_eq!(chat.len(), 4);
        assert_eq!(chat[1].tool_calls[0].id, "call_1");
        assert_eq!(chat[1].tool_calls[0].function.name, "fs_write");
        assert_eq!(chat[2].role, Role::Tool);
        assert_eq!(chat[2].tool_call_id.as_deref(), Some("call_1"));
        let lone = to_chat_messages(&[ContextMessage {
            role: SessionRole::Tool,
            content: "tool x result (c9)".into(),
            tool_call_id: Some("c9".into()),
            tool_name: Some("x".into()),
        }]);
        assert_eq!(lone.len(), 2);
        assert_eq!(lone[0].role, Role::Assistant);
        assert_eq!(lone[0].tool_calls[0].id, "c9");
    }
}
