//! The tool runtime: the built-in tools, their input schemas, and dispatch of
//! a [`ToolRequest`] to a [`ToolResponse`] under the workspace path policy.

mod fs;
pub mod path_policy;
mod shell;

use std::path::{Path, PathBuf};
use std::time::Instant;

use garrison_contracts::openclawssy::{ToolError, ToolErrorCode, ToolRequest, ToolResponse};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub use path_policy::resolve;

/// Default cap on the longest a single tool call may run.
pub const DEFAULT_MAX_TIMEOUT_MS: u64 = 120_000;
/// Default cap on output a tool hands back (per stream for `shell.exec`).
pub const DEFAULT_OUTPUT_CAP_BYTES: usize = 64 * 1024;

/// A built-in tool as the model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Registered name, e.g. `fs.read`.
    pub name: &'static str,
    pub description: &'static str,
    /// JSON schema of `input`.
    pub parameters: Value,
}

/// Every built-in tool, in the order they are offered to a model.
pub const TOOL_NAMES: &[&str] = &["fs.read", "fs.write", "fs.list", "fs.edit", "shell.exec"];

/// Runs tool requests inside one workspace.
#[derive(Debug, Clone)]
pub struct ToolRuntime {
    /// Root every path resolves inside (an order's worktree).
    pub workspace: PathBuf,
    /// Workspace-relative prefixes no tool may touch.
    pub deny: Vec<String>,
    /// Upper bound for any request's `timeout_ms`.
    pub max_timeout_ms: u64,
    /// Most bytes of file content or process output returned per field.
    pub output_cap_bytes: usize,
}

impl ToolRuntime {
    /// A runtime with the default deny list (`.git`) and limits.
    pub fn new(workspace: impl Into<PathBuf>) -> ToolRuntime {
        ToolRuntime {
            workspace: workspace.into(),
            deny: path_policy::DEFAULT_DENY
                .iter()
                .map(|s| s.to_string())
                .collect(),
            max_timeout_ms: DEFAULT_MAX_TIMEOUT_MS,
            output_cap_bytes: DEFAULT_OUTPUT_CAP_BYTES,
        }
    }

    /// Resolves a tool path under this runtime's policy.
    pub fn resolve(&self, requested: &str) -> Result<PathBuf, ToolError> {
        resolve(&self.workspace, requested, &self.deny)
    }

    /// The tools this runtime offers, with their input schemas.
    pub fn specs(&self) -> Vec<ToolSpec> {
        let path = json!({"type": "string", "description": "Path relative to the workspace root"});
        vec![
            ToolSpec {
                name: "fs.read",
                description: "Read a UTF-8 text file from the workspace.",
                parameters: json!({"type": "object", "properties": {"path": path}, "required": ["path"]}),
            },
            ToolSpec {
                name: "fs.write",
                description: "Create or overwrite a file in the workspace; parent directories are created.",
                parameters: json!({"type": "object", "properties": {
                    "path": path, "content": {"type": "string", "description": "Full new file content"}
                }, "required": ["path", "content"]}),
            },
            ToolSpec {
                name: "fs.list",
                description: "List a directory of the workspace (default: its root).",
                parameters: json!({"type": "object", "properties": {"path": path}}),
            },
            ToolSpec {
                name: "fs.edit",
                description: "Replace the one occurrence of `old` in a file with `new`; fails unless `old` occurs exactly once.",
                parameters: json!({"type": "object", "properties": {
                    "path": path,
                    "old": {"type": "string", "description": "Exact text to replace; must occur exactly once"},
                    "new": {"type": "string", "description": "Replacement text"}
                }, "required": ["path", "old", "new"]}),
            },
            ToolSpec {
                name: "shell.exec",
                description: "Run a program (no shell: no pipes, globs or redirects) with the workspace as working directory. A non-zero exit code is reported, not an error.",
                parameters: json!({"type": "object", "properties": {
                    "command": {"type": "string", "description": "Program name or path, e.g. `ls` or `cargo`"},
                    "args": {"type": "array", "items": {"type": "string"}},
                    "timeout_ms": {"type": "integer", "minimum": 1}
                }, "required": ["command"]}),
            },
        ]
    }

    /// Runs one request. Never panics and never fails: every problem is a
    /// `ok=false` response with a canonical error code.
    pub async fn call(&self, req: &ToolRequest) -> ToolResponse {
        let started = Instant::now();
        let result = self.dispatch(req).await;
        let mut resp = match result {
            Ok(output) => ToolResponse::success(req, output),
            Err(error) => ToolResponse::failure(req, error),
        };
        resp.duration_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        resp.finished_at = Some(jiff::Timestamp::now().to_string());
        resp
    }

    async fn dispatch(&self, req: &ToolRequest) -> Result<Value, ToolError> {
        req.validate()
            .map_err(|e| ToolError::new(ToolErrorCode::InvalidRequest, e.to_string()))?;
        let timeout_ms = req.effective_timeout_ms(self.max_timeout_ms);
        if req.tool == "shell.exec" {
            // Bounds itself (its input may ask for its own timeout) so that it
            // can kill the process group it started.
            return shell::exec(self, &req.input, timeout_ms).await;
        }
        let work = async {
            match req.tool.as_str() {
                "fs.read" => fs::read(self, &req.input).await,
                "fs.write" => fs::write(self, &req.input).await,
                "fs.list" => fs::list(self, &req.input).await,
                "fs.edit" => fs::edit(self, &req.input).await,
                other => Err(ToolError::new(
                    ToolErrorCode::ToolNotFound,
                    format!("no tool named `{other}`"),
                )
                .with_detail("tool", other)
                .with_detail("available", TOOL_NAMES.to_vec())),
            }
        };
        tokio::time::timeout(std::time::Duration::from_millis(timeout_ms), work)
            .await
            .unwrap_or_else(|_| Err(timeout_error(timeout_ms)))
    }

    /// `abs` relative to the canonical workspace root, when inside it.
    fn relative(&self, abs: &Path) -> Option<PathBuf> {
        let root = self.workspace.canonicalize().ok()?;
        abs.strip_prefix(root).ok().map(Path::to_path_buf)
    }
}

fn timeout_error(timeout_ms: u64) -> ToolError {
    ToolError::new(
        ToolErrorCode::Timeout,
        format!("tool call exceeded {timeout_ms} ms"),
    )
    .with_detail("timeout_ms", timeout_ms)
}

/// Parses a tool's `input` into its typed form.
fn parse_input<T: DeserializeOwned>(input: &Value) -> Result<T, ToolError> {
    T::deserialize(input).map_err(|e| {
        ToolError::new(
            ToolErrorCode::ToolInputInvalid,
            format!("invalid input: {e}"),
        )
    })
}

/// Maps an I/O error on `path` to the tool error the model can act on.
fn io_error(path: &str, e: std::io::Error) -> ToolError {
    use std::io::ErrorKind::*;
    let code = match e.kind() {
        NotFound | IsADirectory | NotADirectory | AlreadyExists | InvalidInput
        | DirectoryNotEmpty => ToolErrorCode::ToolInputInvalid,
        _ => ToolErrorCode::InternalError,
    };
    ToolError::new(code, format!("{path}: {e}")).with_detail("path", path)
}
