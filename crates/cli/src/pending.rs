//! Commands whose interface is fixed by DESIGN.md but whose implementation is
//! not in this build. They parse their real arguments and then say so — exit
//! 2, never a fake success.

// The arguments are parsed so the interface is already fixed; nothing reads them yet.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

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

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct AppleseedArgs {
    /// Appleseed state directory [default: <data-dir>/appleseed]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Input file
    #[arg(long, value_name = "F")]
    pub file: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Also write the report under the state dir's reports/
    #[arg(long)]
    pub write_report: bool,
}

#[derive(Debug, Subcommand)]
pub enum AppleseedCmd {
    /// Validate and store runtime event envelopes
    Ingest(AppleseedArgs),
    /// Import an OpenClaw operator handoff bundle
    OpenclawImport(AppleseedArgs),
    /// Summarise the current Appleseed state
    Inspect(AppleseedArgs),
    /// Build a report from runtime events
    Report(AppleseedArgs),
    /// Governance review of the projected feedback
    Governance(AppleseedArgs),
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
