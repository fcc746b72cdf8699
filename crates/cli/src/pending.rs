//! Commands whose interface is fixed by DESIGN.md but whose implementation is
//! not in this build. They parse their real arguments and then say so — exit
//! 2, never a fake success.

// The arguments are parsed so the interface is already fixed; nothing reads them yet.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Stop after printing the summary instead of serving the dashboard
    #[arg(long)]
    pub exit: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// What the run should achieve
    pub objective: String,
    /// Theater repository to work in
    #[arg(long, value_name = "PATH")]
    pub repo: Option<PathBuf>,
    /// Plan file (JSON or TOML) instead of asking the planner
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Unit profile for the orders
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Server to claim jobs from (http://HOST:PORT)
    #[arg(long, value_name = "URL")]
    pub server: String,
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
}

/// Says the command is missing from this build; exit status 2.
pub fn unavailable(command: &str, issue: &str) -> ExitCode {
    eprintln!(
        "`garrison {command}` is not yet available in this build (tracked by the `{issue}` issue)"
    );
    ExitCode::from(2)
}
