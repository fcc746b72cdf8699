//! The tool runtime: the built-in tools, their input schemas, and dispatch of
//! a [`ToolRequest`] to a [`ToolResponse`] under the workspace path policy.

pub mod envelope;
mod fs;
pub mod path_policy;
pub mod registry;
mod shell;

use std::path::{Path, PathBuf};
use std::time::Instant;

use garrison_contracts::openclawssy::{ToolError, ToolErrorCode, ToolRequest, ToolResponse};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use envelope::{
    DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MAX_TIMEOUT_MS, DEFAULT_OUTPUT_CAP_BYTES, ToolLimits,
};
pub use path_policy::resolve;

use crate::sandbox::{SandboxMode, SandboxPolicy};
pub use registry::{Registry, TOOL_NAMES, ToolSpec};

/// Runs tool requests inside one workspace.
#[derive(Debug, Clone)]
pub struct ToolRuntime {
    /// Root every path resolves inside (an order's worktree).
    pub workspace: PathBuf,
    /// Workspace-relative prefixes no tool may touch.
    pub deny: Vec<String>,
    /// Timeout and output bounds.
    pub limits: ToolLimits,
    /// The tools on offer.
    pub registry: Registry,
    /// How tools that run programs are confined.
    pub sandbox: SandboxPolicy,
}

impl ToolRuntime {
    /// A runtime with the built-in tools, the default deny list (`.git`) and
    /// the default limits.
    pub fn new(workspace: impl Into<PathBuf>) -> ToolRuntime {
        ToolRuntime {
            workspace: workspace.into(),
            deny: path_policy::DEFAULT_DENY
                .iter()
                .map(|s| s.to_string())
                .collect(),
            limits: ToolLimits::default(),
            registry: Registry::builtin(),
            sandbox: SandboxPolicy::default(),
        }
    }

    /// Resolves a tool path under this runtime's policy.
    pub fn resolve(&self, requested: &str) -> Result<PathBuf, ToolError> {
        resolve(&self.workspace, requested, &self.deny)
    }

    /// The tools this runtime offers, with their input schemas.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.registry.specs().to_vec()
    }

    /// Runs one request. Never panics and never fails: every problem is a
    /// `ok=false` response with a canonical error code, and every response
    /// keeps the envelope rules (see [`envelope::respond`]).
    pub async fn call(&self, req: &ToolRequest) -> ToolResponse {
        let started = Instant::now();
        let result = self.dispatch(req).await;
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        envelope::respond(req, result, ms, &self.limits)
    }

    async fn dispatch(&self, req: &ToolRequest) -> Result<Value, ToolError> {
        req.validate()
            .map_err(|e| ToolError::new(ToolErrorCode::InvalidRequest, e.to_string()))?;
        let Some(spec) = self.registry.get(&req.tool) else {
            return Err(ToolError::new(
                ToolErrorCode::ToolNotFound,
                format!("no tool named `{}`", req.tool),
            )
            .with_detail("tool", req.tool.as_str())
            .with_detail("available", self.registry.names()));
        };
        if spec.needs_sandbox && self.sandbox.mode == SandboxMode::Off {
            return Err(ToolError::new(
                ToolErrorCode::SandboxRequired,
                format!(
                    "`{}` runs only inside the sandbox, and this runtime has none",
                    req.tool
                ),
            ));
        }
        let timeout_ms = self.limits.timeout_ms(Some(req.timeout_ms));
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
                    ToolErrorCode::InternalError,
                    format!("tool `{other}` is registered but has no implementation"),
                )),
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
        | DirectoryNotEmpty | InvalidFilename => ToolErrorCode::ToolInputInvalid,
        // `O_NOFOLLOW` met a symlink swapped in after the path check.
        _ if e.raw_os_error() == Some(libc::ELOOP) => ToolErrorCode::PolicyDenied,
        _ => ToolErrorCode::InternalError,
    };
    let path = path_policy::shown(path);
    ToolError::new(code, format!("{path}: {e}")).with_detail("path", path)
}
