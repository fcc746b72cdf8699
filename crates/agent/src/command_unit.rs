//! `command` units: an external program (a coding-agent CLI or a script) run
//! in the worktree, its whole process group bounded by the unit budget.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;

use garrison_contracts::ironclaw::artifacts::AarModel;
use tokio::process::Command;
use tokio::time::Instant;

use crate::artifacts::{collect_artifacts, ensure_outputs_dir};
use crate::capture::Captured;
use crate::process_group::{self, Exit};
use crate::sandbox::{Confinement, SandboxMode, SandboxPolicy};
use crate::unit::{PromptMode, UnitError, UnitJob, UnitOutcome, UnitReport};

/// Most bytes kept of each of stdout and stderr.
pub const OUTPUT_CAP_BYTES: usize = 1024 * 1024;
/// Where the captured streams are written, relative to the workspace.
pub const STDOUT_FILE: &str = "outputs/stdout.txt";
pub const STDERR_FILE: &str = "outputs/stderr.txt";

/// Runs `program args` in `job.workspace`.
///
/// Environment: the worker's own, minus every `GARRISON_*` variable (the
/// control plane's config and secrets), plus the profile's `env`, plus
/// `job.env` last so the order's identity cannot be overridden by config.
/// Exit 0 is `Succeeded`, another code `Failed`, death by a signal `Killed`,
/// an exhausted budget `TimedOut` (the whole process group is killed). Any
/// process left in the group after the program exits is killed too.
pub async fn run(
    program: &str,
    args: &[String],
    prompt_mode: PromptMode,
    env: &BTreeMap<String, String>,
    job: &UnitJob,
    sandbox: &SandboxPolicy,
) -> Result<UnitReport, UnitError> {
    let deadline = Instant::now() + job.budget;
    let workspace_error = |reason: String| UnitError::Workspace {
        path: job.workspace.clone(),
        reason,
    };
    // Programs write their deliverables here, so it exists before they start.
    ensure_outputs_dir(&job.workspace).map_err(|e| workspace_error(e.to_string()))?;

    let mut notes = Vec::new();
    let (args, stdin): (Vec<String>, _) = match prompt_mode {
        PromptMode::Stdin => (args.to_vec(), Some(job.prompt.clone().into_bytes())),
        PromptMode::Argv => {
            if !args.iter().any(|a| a.contains("{prompt}")) {
                notes.push("prompt mode is argv but no argument contains {prompt}: the prompt was not passed".into());
            }
            let args = args
                .iter()
                .map(|a| a.replace("{prompt}", &job.prompt))
                .collect();
            (args, None)
        }
    };
    let mut cmd = Command::new(program);
    cmd.args(&args).current_dir(&job.workspace);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GARRISON_") {
            cmd.env_remove(&key);
        }
    }
    cmd.envs(env).envs(job.env.iter().map(|(k, v)| (k, v)));
    let mut confinement = confine(sandbox, &job.workspace, program)?;
    // Outside the worktree, so it is never committed: the sandbox's temp
    // dir, or a fresh name in the system's when the profile runs unconfined.
    let summary_file = match confinement.as_ref() {
        Some(c) => c.tmp_dir().join("summary.md"),
        None => std::env::temp_dir().join(format!("garrison-summary-{}.md", ulid::Ulid::new())),
    };
    cmd.env(SUMMARY_FILE_ENV, &summary_file);
    if let Some(c) = confinement.as_mut() {
        cmd.env("TMPDIR", c.tmp_dir());
        c.apply(&mut cmd);
    }

    let running = process_group::spawn(cmd, stdin, OUTPUT_CAP_BYTES).map_err(|source| {
        UnitError::SpawnFailed {
            program: program.to_string(),
            source,
        }
    })?;
    let finished = running.finish(deadline).await;
    let written_summary = read_summary(&summary_file);
    if confinement.is_none() {
        let _ = std::fs::remove_file(&summary_file);
    }
    drop(confinement);

    for (name, captured) in [("stdout", &finished.stdout), ("stderr", &finished.stderr)] {
        if captured.truncated {
            notes.push(format!(
                "{name} truncated: kept {} of {} bytes",
                captured.bytes.len(),
                captured.total
            ));
        }
    }
    if finished.capture_cut {
        notes.push(
            "output capture stopped early: a process outside the unit's group kept a pipe open"
                .into(),
        );
    }
    for (file, captured) in [
        (STDOUT_FILE, &finished.stdout),
        (STDERR_FILE, &finished.stderr),
    ] {
        if let Err(e) = tokio::fs::write(job.workspace.join(file), &captured.bytes).await {
            notes.push(format!("could not write {file}: {e}"));
        }
    }

    let told = written_summary
        .or_else(|| last_paragraph(&finished.stdout))
        .or_else(|| last_paragraph(&finished.stderr));
    let (outcome, status) = match finished.exit {
        Exit::Status(status) => match (status.code(), status.signal()) {
            (Some(0), _) => (UnitOutcome::Succeeded, "exit status 0".to_string()),
            (Some(code), _) => {
                let mut reason = format!("exit status {code}");
                if let Some(line) = last_line(&finished.stderr) {
                    reason = format!("{reason}: {line}");
                }
                (
                    UnitOutcome::Failed { reason },
                    format!("exit status {code}"),
                )
            }
            (None, Some(signal)) => (
                UnitOutcome::Killed { signal },
                format!("killed by signal {signal}"),
            ),
            (None, None) => (
                UnitOutcome::Failed {
                    reason: "ended without an exit status".into(),
                },
                "ended without an exit status".into(),
            ),
        },
        Exit::TimedOut => (
            UnitOutcome::TimedOut,
            format!("timed out after {:.1}s", job.budget.as_secs_f64()),
        ),
        Exit::WaitFailed(e) => {
            let reason = format!("waiting for the program failed: {e}");
            (
                UnitOutcome::Failed {
                    reason: reason.clone(),
                },
                reason,
            )
        }
    };
    let summary = match told {
        Some(text) => format!("{status}: {text}"),
        None => format!("{status} (no output)"),
    };
    let artifacts = collect_artifacts(&job.workspace).unwrap_or_else(|e| {
        notes.push(format!("could not list outputs/: {e}"));
        Vec::new()
    });
    Ok(UnitReport {
        outcome,
        summary,
        artifacts,
        model: AarModel {
            provider: "command".into(),
            name: program.to_string(),
            temperature: None,
        },
        notes,
        tool_calls: 0,
    })
}

/// The program's confinement, `None` when the profile turned it off. Beyond
/// the policy: the worktree's own git metadata and the shared object store
/// are writable (staging works), the repository's refs and the user's git
/// config readable (history, diffs), so no branch can be moved;
/// an absolute `program` outside the system paths is readable.
fn confine(
    policy: &SandboxPolicy,
    workspace: &std::path::Path,
    program: &str,
) -> Result<Option<Confinement>, UnitError> {
    if policy.mode == SandboxMode::Off {
        return Ok(None);
    }
    let mut policy = policy.clone();
    if let Ok(dot_git) = std::fs::read_to_string(workspace.join(".git"))
        && let Some(gitdir) = dot_git.trim().strip_prefix("gitdir:")
    {
        let gitdir = workspace.join(gitdir.trim());
        if let Ok(common) = std::fs::read_to_string(gitdir.join("commondir")) {
            let common = gitdir.join(common.trim());
            // New objects are content-addressed and harmless; refs (other
            // orders' branches, the mainline) stay read-only.
            policy.write.push(common.join("objects"));
            policy.read.push(common);
        }
        policy.write.push(gitdir);
    }
    // Git refuses to run when it cannot read the user's config (EACCES is
    // fatal to it, unlike a missing file).
    if let Some(home) = std::env::var_os("HOME") {
        let home = std::path::PathBuf::from(home);
        policy.read.push(home.join(".gitconfig"));
        policy.read.push(home.join(".config/git"));
    }
    let program = std::path::Path::new(program);
    if program.is_absolute() {
        policy.read.push(program.to_path_buf());
    }
    Confinement::prepare(&policy, workspace, &[])
        .map(Some)
        .map_err(|e| UnitError::Sandbox(e.message))
}

/// Where a program may write its own summary of the work (the variable's
/// value is a path outside the worktree).
pub const SUMMARY_FILE_ENV: &str = "GARRISON_SUMMARY_FILE";

/// Longest summary kept, in characters.
const SUMMARY_CHARS: usize = 500;

/// Longest line quoted into a reason.
const LINE_CHARS: usize = 200;

/// The paragraph a program ends its output with (lines after the last
/// blank line), on one line and shortened: what agents print last is their
/// account of the work, what they print first is usually a banner.
fn last_paragraph(c: &Captured) -> Option<String> {
    let text = c.text();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let end = lines.iter().rposition(|l| !l.is_empty())?;
    let start = lines[..end]
        .iter()
        .rposition(|l| l.is_empty())
        .map_or(0, |i| i + 1);
    Some(clip(&lines[start..=end].join(" "), SUMMARY_CHARS))
}

/// What the program wrote to its summary file: a regular file only (a FIFO
/// left there must not block the worker), at most 64 KiB read, shortened.
fn read_summary(path: &std::path::Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    let _ = file.take(64 * 1024).read_to_string(&mut text);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty()).then(|| clip(&text, SUMMARY_CHARS))
}

fn last_line(c: &Captured) -> Option<String> {
    let text = c.text();
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(|l| clip(l, LINE_CHARS))
}

fn clip(line: &str, chars: usize) -> String {
    let mut s: String = line.chars().take(chars).collect();
    if s.len() < line.len() {
        s.push('…');
    }
    s
}
