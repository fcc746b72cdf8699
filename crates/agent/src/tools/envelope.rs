//! Tool request and response envelopes (contract §1): building a request
//! with its defaults, and closing a tool's result into a response that keeps
//! every envelope rule whatever the tool returned.

use garrison_contracts::openclawssy::{
    DEFAULT_TOOL_TIMEOUT_MS, ToolError, ToolErrorCode, ToolRequest, ToolResponse,
};
use serde_json::{Value, json};

/// Default cap on the longest a single tool call may run.
pub const DEFAULT_MAX_TIMEOUT_MS: u64 = 120_000;
/// Default cap on output a tool hands back per field (file content, each
/// stream of `shell.exec`).
pub const DEFAULT_OUTPUT_CAP_BYTES: usize = 64 * 1024;
/// Default cap on a whole response's `output`, serialised.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 128 * 1024;

/// Bounds every tool call of a runtime is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolLimits {
    /// Upper bound for any request's `timeout_ms` (and `shell.exec`'s own).
    pub max_timeout_ms: u64,
    /// Most bytes of file content or process output returned per field.
    pub output_cap_bytes: usize,
    /// Most bytes of a whole `output`, serialised; longer strings inside it
    /// are shortened until it fits.
    pub max_output_bytes: usize,
}

impl Default for ToolLimits {
    fn default() -> ToolLimits {
        ToolLimits {
            max_timeout_ms: DEFAULT_MAX_TIMEOUT_MS,
            output_cap_bytes: DEFAULT_OUTPUT_CAP_BYTES,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

impl ToolLimits {
    /// `timeout_ms` (the contract default when `None`) clamped to
    /// `1..=max_timeout_ms`.
    pub fn timeout_ms(&self, requested: Option<u64>) -> u64 {
        requested
            .unwrap_or(DEFAULT_TOOL_TIMEOUT_MS)
            .clamp(1, self.max_timeout_ms.max(1))
    }
}

/// A request for `tool` with a fresh `request_id`, the default `timeout_ms`
/// and `created_at` now.
pub fn new_request(run_id: &str, agent_id: &str, tool: &str, input: Value) -> ToolRequest {
    ToolRequest {
        request_id: format!("req_{}", ulid::Ulid::new()),
        run_id: run_id.to_string(),
        agent_id: agent_id.to_string(),
        tool: tool.to_string(),
        input,
        timeout_ms: DEFAULT_TOOL_TIMEOUT_MS,
        created_at: Some(jiff::Timestamp::now().to_string()),
    }
}

/// Closes a tool's result into its response: `ok=true` exactly when there is
/// no error, no output on failure, `output` within `limits.max_output_bytes`,
/// `duration_ms` and `finished_at` set.
pub fn respond(
    req: &ToolRequest,
    result: Result<Value, ToolError>,
    duration_ms: u64,
    limits: &ToolLimits,
) -> ToolResponse {
    let mut resp = match result {
        Ok(mut output) => {
            cap_output(&mut output, limits.max_output_bytes);
            ToolResponse::success(req, output)
        }
        Err(mut error) => {
            if error.message.trim().is_empty() {
                error.message = format!("{} failed", req.tool);
            }
            ToolResponse::failure(req, error)
        }
    };
    resp.duration_ms = Some(duration_ms);
    resp.finished_at = Some(jiff::Timestamp::now().to_string());
    // Construction above keeps every rule; this is the last line of defence.
    if let Err(e) = resp.validate() {
        resp = ToolResponse::failure(
            req,
            ToolError::new(
                ToolErrorCode::InternalError,
                format!("tool produced an invalid envelope: {e}"),
            ),
        );
        resp.duration_ms = Some(duration_ms);
        resp.finished_at = Some(jiff::Timestamp::now().to_string());
    }
    resp
}

/// What the model reads for a tool call: the response envelope as JSON.
pub fn model_text(resp: &ToolResponse) -> String {
    serde_json::to_string(resp).unwrap_or_else(|e| {
        json!({"request_id": resp.request_id, "run_id": resp.run_id, "tool": resp.tool,
            "ok": false, "error": {"code": "internal.error", "message": e.to_string(), "retryable": false}})
        .to_string()
    })
}

/// Marker appended to a string shortened by [`cap_output`].
const CUT_MARKER: &str = "…[truncated]";

/// Shortens the longest strings in `output` until it serialises within
/// `max_bytes`, then marks it `truncated`. Output that cannot be brought
/// under the cap that way (huge arrays of small values) is replaced by a
/// note. Returns whether anything was cut.
pub fn cap_output(output: &mut Value, max_bytes: usize) -> bool {
    let size = |v: &Value| serde_json::to_string(v).map_or(usize::MAX, |s| s.len());
    let mut over = size(output).saturating_sub(max_bytes);
    if over == 0 {
        return false;
    }
    for _ in 0..64 {
        let Some(longest) = longest_string(output) else {
            break;
        };
        // Escaping may make the serialised form longer than the string: cut
        // by the excess plus the marker, at least half of what is left.
        let keep = longest
            .len()
            .saturating_sub(over + CUT_MARKER.len())
            .min(longest.len() / 2);
        let mut cut = keep;
        while !longest.is_char_boundary(cut) {
            cut -= 1;
        }
        longest.truncate(cut);
        longest.push_str(CUT_MARKER);
        if let Value::Object(map) = output {
            map.insert("truncated".into(), Value::Bool(true));
        }
        over = size(output).saturating_sub(max_bytes);
        if over == 0 {
            return true;
        }
    }
    *output = json!({
        "truncated": true,
        "note": format!("output exceeded {max_bytes} bytes and was dropped"),
    });
    true
}

fn longest_string(v: &mut Value) -> Option<&mut String> {
    let mut best: Option<&mut String> = None;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            // Strings no longer than the marker cannot shrink further.
            Value::String(s)
                if s.len() > CUT_MARKER.len() * 2
                    && best.as_ref().is_none_or(|b| s.len() > b.len()) =>
            {
                best = Some(s);
            }
            Value::Array(a) => stack.extend(a.iter_mut()),
            Value::Object(m) => stack.extend(m.values_mut()),
            _ => {}
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> ToolRequest {
        new_request("run_1", "agent_default", "fs.read", json!({"path": "a"}))
    }

    #[test]
    fn timeouts_default_and_clamp() {
        let l = ToolLimits {
            max_timeout_ms: 10_000,
            ..ToolLimits::default()
        };
        assert_eq!(ToolLimits::default().timeout_ms(None), 30_000);
        assert_eq!(l.timeout_ms(None), 10_000);
        assert_eq!(l.timeout_ms(Some(500)), 500);
        assert_eq!(l.timeout_ms(Some(10_001)), 10_000);
        assert_eq!(l.timeout_ms(Some(0)), 1);
        assert_eq!(req().timeout_ms, 30_000);
        req().validate().unwrap();
    }

    #[test]
    fn responses_keep_the_rules() {
        let l = ToolLimits::default();
        let ok = respond(&req(), Ok(json!({"content": "x"})), 3, &l);
        assert!(ok.ok && ok.error.is_none());
        assert_eq!(ok.duration_ms, Some(3));
        ok.validate().unwrap();
        let failed = respond(
            &req(),
            Err(ToolError::new(ToolErrorCode::PolicyDenied, "")),
            1,
            &l,
        );
        assert!(!failed.ok && failed.output.is_none());
        assert_eq!(failed.error.as_ref().unwrap().message, "fs.read failed");
        failed.validate().unwrap();
        let text: Value = serde_json::from_str(&model_text(&failed)).unwrap();
        assert_eq!(text["error"]["code"], "policy.denied");
        assert_eq!(text["ok"], false);
        assert!(text.get("output").is_none());
    }

    #[test]
    fn output_is_capped_as_a_whole() {
        let mut small = json!({"stdout": "abc"});
        assert!(!cap_output(&mut small, 100));
        assert_eq!(small, json!({"stdout": "abc"}));

        let mut big = json!({"stdout": "a".repeat(500), "stderr": "é".repeat(300), "exit_code": 0});
        assert!(cap_output(&mut big, 400));
        let len = serde_json::to_string(&big).unwrap().len();
        assert!(len <= 400, "{len}");
        assert_eq!(big["truncated"], true);
        assert_eq!(big["exit_code"], 0);
        assert!(big["stdout"].as_str().unwrap().ends_with(CUT_MARKER));

        let mut many = Value::Array((0..1000).map(|i| json!(i)).collect());
        assert!(cap_output(&mut many, 100));
        assert_eq!(many["truncated"], true);
        assert!(serde_json::to_string(&many).unwrap().len() <= 100);
    }
}
