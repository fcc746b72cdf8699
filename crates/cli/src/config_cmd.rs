//! `garrison config validate`: load the configuration the way `serve` does
//! and report what it resolves to, so a bad file is caught before a restart.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use crate::config::{Global, Settings};

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Check garrison.toml and the GARRISON_* variables; print what they resolve to
    #[command(after_help = "\
Loads the configuration exactly as `garrison serve` would (file, then GARRISON_*
variables, then flags) and checks what serve checks before it starts: every
key's type and bounds, profiles and gates, the planner and default profiles,
milestone targets and the variables holding their secrets, the services list,
the secret store's master key (GARRISON_MASTER_KEY or [secrets] key_file; a
warning when there is none), and that a non-loopback listen address has a token. Prints one JSON line
{\"ok\":true,\"file\",\"data_dir\",\"backend\",\"listen\",\"services\",\"profiles\",
\"gates\",\"milestone_targets\",\"warnings\"} and exits 0, or prints the first
error and exits 1. Secrets are never printed.

Examples:
  garrison config validate
  garrison config validate --config /etc/garrison/garrison.toml
  GARRISON_LISTEN=0.0.0.0:7878 garrison config validate")]
    Validate,
}

pub fn run(global: &Global, cmd: ConfigCmd) -> Result<ExitCode> {
    match cmd {
        ConfigCmd::Validate => validate(global),
    }
}

fn validate(global: &Global) -> Result<ExitCode> {
    let settings = Settings::load(global)?;
    let mut warnings = Vec::new();

    let services: Vec<String> = match &settings.services {
        Some(list) => list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(crate::serve::parse_service)
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?,
        None => vec!["all".into()],
    };
    // The same refusal serve makes, without binding anything.
    let listen = std::net::ToSocketAddrs::to_socket_addrs(settings.listen.as_str())
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "listen `{}` does not resolve to an address",
                settings.listen
            )
        })?;
    if !listen.ip().is_loopback() && settings.api_token.is_none() {
        anyhow::bail!(
            "listen {listen} is not loopback and GARRISON_API_TOKEN is not set: serve would refuse to start"
        );
    }
    // A malformed GARRISON_MASTER_KEY, or a key file that is unreadable or
    // inside the data dir, stops serve: say so here.
    if settings.master_key()?.is_none() {
        warnings.push(
            "no master key (GARRISON_MASTER_KEY or [secrets] key_file): secrets cannot be stored"
                .to_string(),
        );
    }
    let orch = &settings.orchestration;
    if orch.default_profile == "llm" && !orch.profiles.contains_key("llm") {
        // The built-in default exists once a model is configured.
        warnings.push(
            "no `llm` profile: set GARRISON_LLM_BASE_URL and GARRISON_LLM_MODEL (or [profiles.llm]); \
             orders that name no profile will fail"
                .to_string(),
        );
    } else if !orch.profiles.contains_key(&orch.default_profile) {
        anyhow::bail!(
            "[orchestration] default_profile `{}` is not a configured profile",
            orch.default_profile
        );
    }
    // A command profile whose program is missing would fail every order
    // that names it (SPAWN_FAILED, never retried): refuse it now.
    for (name, profile) in &orch.profiles {
        if let garrison_agent::UnitProfile::Command { program, .. } = profile
            && let Err(why) = runnable(program)
        {
            anyhow::bail!("[profiles.{name}] program `{program}` {why}");
        }
    }
    // Targets need their secrets only when serve runs the outbox.
    if let Err(e) = settings.outbox.resolve() {
        warnings.push(format!("{e:#}"));
    }
    if settings.milestones.secret.is_none() {
        warnings.push(
            "GARRISON_MILESTONE_SECRET is not set: the milestone ingest will answer 500".into(),
        );
    }
    // A protection `[sandbox] require` names that this host lacks makes every
    // sandboxed program fail: refuse the configuration now.
    let host = garrison_agent::sandbox::support();
    if let Some(missing) = settings.sandbox.require.iter().find(|p| !host.has(**p)) {
        anyhow::bail!(
            "[sandbox] require names {missing:?}, which this host does not offer (see `garrison doctor`)"
        );
    }
    let limits = settings.sandbox.limits;
    let file = global.config.clone().or_else(|| {
        Some(settings.data_dir.join(crate::config::CONFIG_FILE)).filter(|p| p.is_file())
    });
    println!(
        "{}",
        json!({
            "ok": true,
            "file": file.map(|f| f.display().to_string()),
            "data_dir": settings.data_dir.display().to_string(),
            "backend": if settings.database_url.is_some() { "postgres" } else { "sqlite" },
            "listen": listen.to_string(),
            "services": services,
            "profiles": orch.profiles.keys().collect::<Vec<_>>(),
            "gates": orch.gates.keys().collect::<Vec<_>>(),
            "milestone_targets": settings.outbox.targets.len(),
            "sandbox": {
                "processes": limits.processes,
                "cpu_seconds": limits.cpu_seconds,
                "address_space_bytes": limits.address_space_bytes,
                "file_size_bytes": limits.file_size_bytes,
                "require": settings.sandbox.require.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>(),
            },
            "warnings": warnings,
        })
    );
    Ok(ExitCode::SUCCESS)
}

/// Whether `program` names an executable file: a path with a `/` as given
/// (a relative one is left alone: it resolves in each order's worktree),
/// a bare name on `PATH`.
fn runnable(program: &str) -> std::result::Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = std::path::Path::new(program);
        if path.is_relative() || executable(path) {
            return Ok(());
        }
        return Err("does not exist or is not executable".into());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| executable(&dir.join(program))) {
        Ok(())
    } else {
        Err("is not an executable on PATH".into())
    }
}
