//! `garrison-bench`: reproducible load scenarios, each run beside a baseline in
//! the same process so the figure that matters is a ratio. One JSON object per
//! line on stdout; progress on stderr.

mod ledger;
mod stats;

use clap::{Parser, Subcommand};

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
        }
    })
}
