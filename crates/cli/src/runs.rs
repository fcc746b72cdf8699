//! `garrison runs show ID`: a run's snapshot and its orders.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use garrison_contracts::ironclaw::RunStatus;
use garrison_ledger::projection;
use garrison_ledger::{OrderSnapshot, RunSnapshot};
use serde::Serialize;

use crate::config::{Global, Settings};
use garrison_client::{ServerUrl, encode, error_message};

#[derive(Debug, Subcommand)]
pub enum RunsCmd {
    /// Print a run's snapshot, per-status order counts and its orders as JSON
    #[command(after_help = "\
Exit status 1 when the run is unknown.

Examples:
  garrison runs show 01JH…
  garrison runs show 01JH… --server http://127.0.0.1:7878")]
    Show {
        /// Run id
        id: String,
        /// Ask a running server (http:// or https://HOST:PORT) instead of reading the local ledger
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
}

pub fn run(global: &Global, cmd: RunsCmd) -> Result<ExitCode> {
    let RunsCmd::Show { id, server } = cmd;
    let settings = Settings::load(global)?;
    crate::runtime()?.block_on(async {
        let view = match server {
            Some(url) => {
                let server = ServerUrl::parse(&url)?;
                let token = settings.client_token()?;
                let (status, body) = server
                    .get_json(&format!("/runs/{}", encode(&id)), token.as_deref())
                    .await
                    .with_context(|| format!("cannot ask {url}"))?;
                match status {
                    200 => body["data"].clone(),
                    404 => return not_found(&id, &url),
                    s => bail!(
                        "HTTP {s} from {url}: {}",
                        error_message(body.to_string().as_bytes())
                    ),
                }
            }
            None => {
                let ledger = crate::local::open_ledger(&settings).await?;
                let read = async {
                    let run = ledger.run_snapshot(&id).await?;
                    let orders = ledger.run_orders(&id).await?;
                    anyhow::Ok((run, orders))
                }
                .await;
                ledger.close().await?;
                let (run, orders) = read?;
                let Some(run) = run else {
                    return not_found(&id, &settings.data_dir.display().to_string());
                };
                serde_json::to_value(RunView {
                    run_id: &run.run_id,
                    status: run.status,
                    summary: run.summary.as_deref(),
                    order_counts: projection::order_counts(&orders),
                    run: &run,
                    orders: &orders,
                })?
            }
        };
        println!("{}", serde_json::to_string_pretty(&view)?);
        Ok(ExitCode::SUCCESS)
    })
}

/// The same shape `GET /runs/{id}` answers with in `data`.
#[derive(Serialize)]
struct RunView<'a> {
    run_id: &'a str,
    status: RunStatus,
    summary: Option<&'a str>,
    order_counts: BTreeMap<String, u64>,
    run: &'a RunSnapshot,
    orders: &'a [OrderSnapshot],
}

fn not_found(id: &str, place: &str) -> Result<ExitCode> {
    eprintln!("garrison: no run `{id}` in {place} (404)");
    Ok(ExitCode::FAILURE)
}
