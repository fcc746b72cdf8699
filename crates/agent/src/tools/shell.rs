//! `shell.exec`: runs one program, without a shell, in the workspace.
//!
//! The program runs confined (see `sandbox`: reads and writes only beneath
//! the workspace and its own temp dir besides read-only system paths, the
//! deny list covered, no network unless the policy allows it, no
//! privileges, bounded processes), with a minimal environment (no inherited
//! secrets), within its timeout, and everything it started is killed
//! afterwards. Without the sandbox it does not run.

use garrison_contracts::openclawssy::{ToolError, ToolErrorCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::process::Command;
use tokio::time::{Duration, Instant};

use super::{ToolRuntime, parse_input, timeout_error};
use crate::process_group::{self, Exit};
use crate::sandbox::Confinement;

/// PATH when the worker has none.
const FALLBACK_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

#[derive(Deserialize)]
struct ExecInput {
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// `{command, args?, timeout_ms?}` → `{exit_code, stdout, stderr, truncated}`.
///
/// A non-zero exit is `ok=true` with that `exit_code`: whether it matters is
/// the model's call (a failing test run is information, not a tool fault).
/// A program killed by a signal has `exit_code: null` and `signal`.
pub(super) async fn exec(
    rt: &ToolRuntime,
    input: &Value,
    default_timeout_ms: u64,
) -> Result<Value, ToolError> {
    let ExecInput {
        command,
        args,
        timeout_ms,
    } = parse_input(input)?;
    if command.trim().is_empty() {
        return Err(ToolError::new(
            ToolErrorCode::ToolInputInvalid,
            "`command` is empty",
        ));
    }
    let timeout_ms = rt
        .limits
        .timeout_ms(Some(timeout_ms.unwrap_or(default_timeout_ms)));
    let root = rt.resolve(".")?;

    let deny: Vec<_> = rt
        .deny
        .iter()
        .map(|d| d.trim_matches('/').trim_start_matches("./"))
        .filter(|d| !d.is_empty())
        .map(|d| root.join(d))
        .collect();
    let mut confinement = Confinement::prepare(&rt.sandbox, &root, &deny)?;
    let mut cmd = Command::new(&command);
    cmd.args(&args)
        .current_dir(&root)
        .env_clear()
        .env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| FALLBACK_PATH.to_string()),
        )
        .env("HOME", &root)
        .env("LANG", "C.UTF-8")
        .env("TMPDIR", confinement.tmp_dir());
    confinement.apply(&mut cmd);
    let running = process_group::spawn(cmd, None, rt.limits.output_cap_bytes).map_err(|e| {
        let code = match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                ToolErrorCode::ToolInputInvalid
            }
            _ => ToolErrorCode::InternalError,
        };
        ToolError::new(code, format!("cannot run `{command}`: {e}"))
            .with_detail("command", command.as_str())
    })?;
    let finished = running
        .finish(Instant::now() + Duration::from_millis(timeout_ms))
        .await;
    drop(confinement);
    let truncated = finished.stdout.truncated || finished.stderr.truncated || finished.capture_cut;
    match finished.exit {
        Exit::Status(status) => {
            use std::os::unix::process::ExitStatusExt;
            let mut out = json!({
                "exit_code": status.code(),
                "stdout": finished.stdout.text(),
                "stderr": finished.stderr.text(),
                "truncated": truncated,
            });
            if let Some(signal) = status.signal() {
                out["signal"] = json!(signal);
            }
            Ok(out)
        }
        Exit::TimedOut => Err(timeout_error(timeout_ms)
            .with_detail("stdout", finished.stdout.text())
            .with_detail("stderr", finished.stderr.text())),
        Exit::WaitFailed(e) => Err(ToolError::new(
            ToolErrorCode::InternalError,
            format!("waiting for `{command}` failed: {e}"),
        )),
    }
}
