//! `garrison`: the command-line interface to the Garrison control plane.

mod appleseed;
mod config;
mod config_cmd;
mod demo;
mod doctor;
mod events;
mod jobs;
mod ledger;
mod local;
mod milestones;
mod progress;
mod run;
mod runs;
mod serve;
mod summary;
mod validate;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use config::Global;

/// mimalloc: glibc's allocator contends badly between the server's threads
/// (measured with `garrison-bench ingest`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "garrison",
    version,
    about = "Garrison: one control plane for multi-agent AI work",
    long_about = "Garrison: one control plane for multi-agent AI work.\n\n\
Every state change is an event appended to one ledger; every service reads the \
ledger and appends to it. `garrison serve` runs the services behind one HTTP \
listener; the other commands are operator tools over the same data dir.",
    after_help = "\
Data dir: --data-dir, else $GARRISON_HOME, else ./.garrison. Settings come from
flags, then GARRISON_* variables, then <data-dir>/garrison.toml (or --config).
Log level: RUST_LOG (e.g. RUST_LOG=debug); logs go to stderr, as text or, with
--log-format json (GARRISON_LOG_FORMAT=json), one JSON object per line.

Examples:
  garrison demo --exit                             # the offline end-to-end demo
  garrison run \"Add a CONTRIBUTING.md\" --repo .   # one run with live progress
  garrison serve                                   # all services + API on 127.0.0.1:7878
  garrison worker --server http://127.0.0.1:7878   # a remote worker
  garrison validate assignment packet.json         # one JSON verdict; exit 0 iff allowed
  garrison events tail --follow --server http://127.0.0.1:7878
  garrison runs show 01JH…
  garrison jobs create --id report --agent agent_default --schedule '@every 1h' --message 'Status report'
  garrison ledger rebuild
  garrison milestones emit --url http://127.0.0.1:8080/internal/milestones/ingest --file m.json

Run `garrison <command> --help` for each command's details."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the services (all by default) against the ledger over HTTP
    Serve(serve::ServeArgs),
    /// Check a workflow document; prints {allow, code, reason, details}
    Validate(validate::ValidateArgs),
    /// Check the configuration
    #[command(subcommand)]
    Config(config_cmd::ConfigCmd),
    /// Ledger maintenance
    #[command(subcommand)]
    Ledger(ledger::LedgerCmd),
    /// Read the event log
    #[command(subcommand)]
    Events(events::EventsCmd),
    /// Inspect runs
    #[command(subcommand)]
    Runs(runs::RunsCmd),
    /// The offline end-to-end demo on the embedded store
    Demo(demo::DemoArgs),
    /// One run from the terminal with live progress
    Run(run::RunArgs),
    /// A remote worker that claims jobs over HTTP
    Worker(worker::WorkerArgs),
    /// Appleseed: runtime event ingest, openclaw-import, inspect, report, governance
    #[command(subcommand)]
    Appleseed(appleseed::AppleseedCmd),
    /// Signed milestone delivery to an ingest endpoint
    #[command(subcommand)]
    Milestones(milestones::MilestonesCmd),
    /// Scheduler jobs: create, list, show, update, enable, disable, delete
    Jobs(jobs::JobsArgs),
    /// Which sandbox protections this host gives the programs runs start
    Doctor(doctor::DoctorArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(
        matches!(cli.command, Command::Serve(_)),
        cli.global.log_format,
    );
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("garrison: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = &cli.global;
    match cli.command {
        Command::Serve(args) => serve::run(g, args),
        Command::Validate(args) => Ok(validate::run(args)),
        Command::Config(cmd) => config_cmd::run(g, cmd),
        Command::Ledger(cmd) => ledger::run(g, cmd),
        Command::Events(cmd) => events::run(g, cmd),
        Command::Runs(cmd) => runs::run(g, cmd),
        Command::Demo(args) => demo::run(g, args),
        Command::Run(args) => run::run(g, args),
        Command::Worker(args) => worker::run(g, args),
        Command::Appleseed(cmd) => appleseed::run(g, cmd),
        Command::Milestones(cmd) => milestones::run(g, cmd),
        Command::Jobs(args) => jobs::run(g, args),
        Command::Doctor(args) => doctor::run(args),
    }
}

/// Logs to stderr so stdout stays machine-readable. `serve` logs at info by
/// default, one-shot commands only warnings; RUST_LOG overrides both.
fn init_tracing(serving: bool, format: config::LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = if serving { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        // One object per line for log shippers; no colour codes inside.
        config::LogFormat::Json => builder.json().with_ansi(false).try_init(),
        config::LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

/// The async runtime for commands that need one.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
