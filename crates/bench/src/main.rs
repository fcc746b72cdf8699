//! `garrison-bench`: reproducible load scenarios, each run beside a baseline in
//! the same process so the figure that matters is a ratio. One JSON object per
//! line on stdout; progress on stderr.

mod appleseed;
mod dispatch;
mod http;
mod ingest;
mod ledger;
mod stats;
mod tools;

use clap::{Parser, Subcommand};

/// The same allocator as the `garrison` binary, so scenarios measure what ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "garrison-bench",
    about = "Garrison load scenarios with in-process baselines (JSON lines)"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Durable appends at several writer counts, beside raw batched inserts.
    Ledger(ledger::AppendArgs),
    /// Projection rebuild rate, beside a raw scan-and-parse of the same log.
    Rebuild(ledger::RebuildArgs),
    /// Signed milestone ingest over HTTP, beside a trivial axum endpoint.
    Ingest(ingest::IngestArgs),
    /// Appleseed envelope ingest + projection, beside parse-and-append with one fsync.
    Appleseed(appleseed::AppleseedArgs),
    /// Orchestration queue: no-op orders through claim → report, in process
    /// and by remote workers over HTTP, beside the same lifecycle appended
    /// straight to the ledger; and lease-expiry reissue time.
    Dispatch(dispatch::DispatchArgs),
    /// An `fs.read` tool call through path policy, envelope and audit log,
    /// beside a plain read plus two plain appended lines.
    Tools(tools::ToolsArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match cli.scenario {
            Scenario::Ledger(args) => ledger::appends(args).await,
            Scenario::Rebuild(args) => ledger::rebuild(args).await,
            Scenario::Ingest(args) => ingest::run(args).await,
            // Synchronous file I/O, like the CLI.
            Scenario::Appleseed(args) => appleseed::run(args),
            Scenario::Dispatch(args) => dispatch::run(args).await,
            Scenario::Tools(args) => tools::run(args).await,
        }
    })
}
