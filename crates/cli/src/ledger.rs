//! `garrison ledger …`: maintenance of the event store.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use crate::config::{Global, Settings};

#[derive(Debug, Subcommand)]
pub enum LedgerCmd {
    /// Recompute every projection (run and order snapshots) from the events alone
    #[command(after_help = "\
Prints {\"events\":N,\"runs\":N,\"orders\":N,\"elapsed_ms\":N}. Needs the ledger to
itself: stop `garrison serve` on the same data dir first (embedded ledger).

Example:
  garrison ledger rebuild --data-dir ./.garrison")]
    Rebuild,
}

pub fn run(global: &Global, cmd: LedgerCmd) -> Result<ExitCode> {
    let settings = Settings::load(global)?;
    match cmd {
        LedgerCmd::Rebuild => crate::runtime()?.block_on(async {
            let ledger = crate::local::open_ledger(&settings).await?;
            let started = Instant::now();
            let result = ledger.rebuild().await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            ledger.close().await?;
            let stats = result?;
            println!(
                "{}",
                json!({
                    "events": stats.events,
                    "runs": stats.runs,
                    "orders": stats.orders,
                    "elapsed_ms": elapsed_ms,
                })
            );
            Ok(ExitCode::SUCCESS)
        }),
    }
}
