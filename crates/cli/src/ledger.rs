//! `garrison ledger …`: maintenance of the event store.

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Subcommand;
use garrison_ledger::backup;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
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
    /// Back up every event and dead-letter entry as checksummed JSONL
    #[command(after_help = "\
Each line is {\"sha256\":HEX,\"kind\":K,\"data\":D}: the digest covers the line's own
bytes after it, and a closing `end` line counts and digests every line before
it, so `import` can refuse a damaged or truncated file before writing
anything. The export holds what was committed when it started; appends made
meanwhile are not in it. Prints {\"events\",\"dead_letters\",\"head\",\"elapsed_ms\"}
on stderr when the backup goes to stdout, else on stdout.

Examples:
  garrison ledger export --out backup.jsonl
  garrison ledger export --data-dir ./.garrison > backup.jsonl
  garrison ledger export --database-url postgres://db/garrison --out pg.jsonl")]
    Export {
        /// Write here instead of stdout (replaced atomically once complete)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Restore a backup made by `garrison ledger export` into an empty ledger
    #[command(after_help = "\
The whole file is verified first (every line's checksum, the order of events,
the closing count and digest); a damaged file changes nothing. The target
ledger must be empty. Events keep their ids, times and stream versions, and
the snapshots are recomputed as they are appended. Any backend to any
backend: an embedded SQLite ledger can move to PostgreSQL this way.

Examples:
  garrison ledger import backup.jsonl --data-dir ./restored
  garrison ledger import backup.jsonl --database-url postgres://db/garrison")]
    Import {
        /// The export to restore
        file: PathBuf,
    },
}

pub fn run(global: &Global, cmd: LedgerCmd) -> Result<ExitCode> {
    let settings = Settings::load(global)?;
    let rt = crate::runtime()?;
    let started = Instant::now();
    match cmd {
        LedgerCmd::Rebuild => rt.block_on(async {
            let ledger = crate::local::open_ledger(&settings).await?;
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
        LedgerCmd::Export { out } => rt.block_on(async {
            let ledger = crate::local::open_ledger(&settings).await?;
            let head = ledger.head().await?;
            let bar = progress(head as u64, "exported");
            let result = match &out {
                Some(path) => export_to_file(ledger.as_ref(), path, &bar).await,
                None => {
                    let mut w = BufWriter::new(std::io::stdout().lock());
                    backup::export(ledger.as_ref(), &mut w, |n| bar.set_position(n))
                        .await
                        .context("export")
                }
            };
            bar.finish_and_clear();
            ledger.close().await?;
            let stats = result?;
            let summary = json!({
                "events": stats.events,
                "dead_letters": stats.dead_letters,
                "head": stats.head,
                "elapsed_ms": started.elapsed().as_millis() as u64,
            });
            if out.is_some() {
                println!("{summary}");
            } else {
                eprintln!("{summary}");
            }
            Ok(ExitCode::SUCCESS)
        }),
        LedgerCmd::Import { file } => rt.block_on(async {
            let ledger = crate::local::open_ledger(&settings).await?;
            let open = || File::open(&file).map(BufReader::new);
            let total = backup::verify(open().with_context(|| format!("open {}", file.display()))?)
                .map(|s| s.events)
                .unwrap_or(0);
            let bar = progress(total, "imported");
            let result = backup::import(ledger.as_ref(), open, |n| bar.set_position(n)).await;
            bar.finish_and_clear();
            ledger.close().await?;
            let stats = result.with_context(|| format!("import {}", file.display()))?;
            println!(
                "{}",
                json!({
                    "events": stats.events,
                    "dead_letters": stats.dead_letters,
                    "head": stats.head,
                    "elapsed_ms": started.elapsed().as_millis() as u64,
                })
            );
            Ok(ExitCode::SUCCESS)
        }),
    }
}

/// Writes beside `path` and renames into place, so a failed export never
/// leaves a half-written file under the name asked for.
async fn export_to_file(
    ledger: &dyn garrison_ledger::Ledger,
    path: &std::path::Path,
    bar: &ProgressBar,
) -> Result<backup::BackupStats> {
    let mut file = garrison_files::AtomicFile::create(path, garrison_files::SHARED)
        .with_context(|| format!("create a temp file beside {}", path.display()))?;
    let mut w = BufWriter::new(file.file());
    let stats = backup::export(ledger, &mut w, |n| bar.set_position(n))
        .await
        .context("export")?;
    w.flush().context("export")?;
    drop(w);
    // Dropped uncommitted on any error above, the temp file goes with it.
    file.commit()
        .with_context(|| format!("write {}", path.display()))?;
    Ok(stats)
}

/// A progress bar on a terminal's stderr; hidden otherwise.
fn progress(total: u64, verb: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} events {verb}"))
    {
        bar.set_style(style);
    }
    bar
}
