//! `garrison worker --server URL`: a remote worker. It long-polls the
//! server for a job, runs the unit in the job's worktree (heartbeating the
//! lease), and reports the attempt; the server appends the events. The
//! report goes out while the worker claims its next job (one report in flight;
//! it is awaited before the next one and before exit).
//!
//! Given several servers (nodes sharing one PostgreSQL ledger), it talks to
//! the first that answers and moves on to the next when one cannot be
//! reached: leases live in the shared ledger, so any node running the worker
//! service takes the heartbeats and the report of a job another node handed out.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use garrison_client::{ServerUrl, error_message};
use garrison_orchestration::in_flight::InFlight;
use garrison_orchestration::{Job, Report, UnitEnv, execute};
use serde_json::{Value, json};

use crate::config::{Global, Settings};

#[derive(Debug, Args)]
#[command(after_help = "\
The worker needs the API token (GARRISON_API_TOKEN, or the data dir's stored
token) and must see the job's worktree path: run it on the server's machine or
on a shared filesystem. `llm` units read GARRISON_LLM_API_KEY from the
worker's own environment.

With several --server URLs (nodes running the worker service on one shared
PostgreSQL ledger) the worker uses the first that answers and fails over to
the next when a node cannot be reached, mid-job included: the lease lives in
the ledger, so heartbeats and the report go to whichever node is up.

Examples:
  garrison worker --server http://127.0.0.1:7878
  garrison worker --server http://127.0.0.1:7878 --unit-id fireteam-a --max-jobs 10
  garrison worker --server http://10.0.0.2:7878,http://10.0.0.1:7878")]
pub struct WorkerArgs {
    /// Servers to claim jobs from (http:// or https://HOST:PORT), in order of preference;
    /// comma-separated or repeated
    #[arg(long, value_name = "URL", value_delimiter = ',', required = true)]
    pub server: Vec<String>,
    /// This worker's unit id [default: worker-<pid>]
    #[arg(long, value_name = "ID")]
    pub unit_id: Option<String>,
    /// Stop after this many jobs [default: run until stopped]
    #[arg(long, value_name = "N")]
    pub max_jobs: Option<u64>,
    /// Long-poll wait per claim, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 20_000)]
    pub wait_ms: u64,
}

pub fn run(global: &Global, args: WorkerArgs) -> Result<ExitCode> {
    let settings = Settings::load(global)?;
    let token = settings.client_token()?;
    let servers = args
        .server
        .iter()
        .map(|u| ServerUrl::parse(u).with_context(|| format!("--server {u}")))
        .collect::<Result<Vec<_>>>()?;
    let unit_id = args
        .unit_id
        .unwrap_or_else(|| format!("worker-{}", std::process::id()));
    // Units scrub the stored secrets' values (the store is in the data dir
    // this worker shares with the server).
    let secrets = settings.orchestration_with_secrets()?.secrets.redactor();
    let rt = crate::runtime()?;
    eprintln!(
        "garrison worker {unit_id}: claiming from {}",
        args.server.join(", ")
    );
    rt.block_on(work(
        Arc::new(Servers {
            urls: args.server.clone(),
            servers,
            current: AtomicUsize::new(0),
        }),
        token,
        unit_id,
        args.max_jobs,
        args.wait_ms,
        UnitSetup {
            data_dir: settings.data_dir,
            secrets,
            sandbox: settings.orchestration.sandbox,
        },
    ))
}

/// What this worker's units run with (see [`UnitEnv`]).
struct UnitSetup {
    data_dir: std::path::PathBuf,
    secrets: Arc<garrison_agent::Redactor>,
    sandbox: garrison_agent::SandboxPolicy,
}

/// The servers a worker may use, and the one it uses now.
struct Servers {
    urls: Vec<String>,
    servers: Vec<ServerUrl>,
    current: AtomicUsize,
}

/// Posts to the current server; one that cannot be reached hands over to the
/// next (each server is tried once per call).
async fn post(
    servers: &Servers,
    token: Option<&str>,
    path: &str,
    body: &Value,
) -> Result<(u16, Value)> {
    let n = servers.servers.len().max(1);
    let first = servers.current.load(Ordering::Relaxed) % n;
    let mut last_err = None;
    for i in 0..n {
        let at = (first + i) % n;
        let Some(server) = servers.servers.get(at) else {
            break;
        };
        match post_to(server, token, path, body).await {
            Ok(r) => {
                if at != first {
                    eprintln!(
                        "garrison worker: now using {}",
                        servers.urls.get(at).map_or("?", String::as_str)
                    );
                    servers.current.store(at, Ordering::Relaxed);
                }
                return Ok(r);
            }
            Err(e) if e.downcast_ref::<Unauthorized>().is_some() => return Err(e),
            Err(e) => {
                if n > 1 {
                    eprintln!(
                        "garrison worker: {} unreachable ({e:#})",
                        servers.urls.get(at).map_or("?", String::as_str)
                    );
                }
                last_err = Some(e);
            }
        }
    }
    Err(last_err.unwrap_or_else(|| anyhow::anyhow!("no server to post to")))
}

/// A 401: the token is wrong everywhere, not just on one node.
#[derive(Debug)]
struct Unauthorized(String);

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unauthorized {}

async fn post_to(
    server: &ServerUrl,
    token: Option<&str>,
    path: &str,
    body: &Value,
) -> Result<(u16, Value)> {
    let bytes = serde_json::to_vec(body)?;
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let resp = server.post(path, &headers, &bytes).await?;
    let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    if resp.status == 401 {
        return Err(Unauthorized(format!("{path}: {}", error_message(&resp.body))).into());
    }
    Ok((resp.status, v))
}

async fn work(
    server: Arc<Servers>,
    token: Option<String>,
    unit_id: String,
    max_jobs: Option<u64>,
    wait_ms: u64,
    units: UnitSetup,
) -> Result<ExitCode> {
    let mut done = 0u64;
    let mut reporting = InFlight::default();
    let stop = shutdown();
    tokio::pin!(stop);
    while max_jobs.is_none_or(|m| done < m) {
        let claim_body = json!({"unit_id": unit_id, "wait_ms": wait_ms});
        let claim = post(&server, token.as_deref(), "/api/workers/claim", &claim_body);
        let (status, mut body) = tokio::select! {
            r = claim => match r {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("garrison worker: claim failed: {e:#}; retrying in 2 s");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        if status != 200 {
            // A node that is stopping (or does not run the worker service)
            // answers 503: the next node may take the claim.
            if status == 503 && server.servers.len() > 1 {
                server.current.fetch_add(1, Ordering::Relaxed);
            }
            eprintln!("garrison worker: claim answered {status}: {body}; retrying in 2 s");
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        if body["data"].is_null() {
            continue;
        }
        let job: Job = serde_json::from_value(body["data"].take())
            .context("the server sent a job this worker cannot read")?;
        eprintln!(
            "garrison worker: order {} attempt {} ({})",
            job.message.order_id, job.message.attempt, job.message.profile.name
        );
        let report: Report = {
            let server = server.clone();
            let token = token.clone();
            let order_id = job.message.order_id.clone();
            let lease = job.lease_token.clone();
            let env = UnitEnv {
                data_dir: Some(&units.data_dir),
                secrets: &units.secrets,
                sandbox: &units.sandbox,
            };
            execute(&job, env, move || {
                let server = server.clone();
                let token = token.clone();
                let body = json!({"order_id": order_id, "lease_token": lease});
                async move {
                    matches!(
                        post(&server, token.as_deref(), "/api/workers/heartbeat", &body).await,
                        Ok((200, _))
                    )
                }
            })
            .await
        };
        // The report commits while this worker claims its next order.
        let body = serde_json::to_value(&report)?;
        let (server, token) = (server.clone(), token.clone());
        reporting
            .hand_over(async move {
                send_report(&server, token.as_deref(), &report.order_id, &body).await;
            })
            .await;
        done += 1;
    }
    reporting.finish().await;
    Ok(ExitCode::SUCCESS)
}

async fn send_report(server: &Servers, token: Option<&str>, order_id: &str, body: &Value) {
    match post(server, token, "/api/workers/report", body).await {
        Ok((200, v)) => eprintln!(
            "garrison worker: reported {order_id}: {}",
            v["data"]["status"]
        ),
        Ok((s, v)) => eprintln!(
            "garrison worker: report of {order_id} refused ({s}): {}",
            v["error"]["message"]
        ),
        Err(e) => eprintln!("garrison worker: report of {order_id} failed: {e:#}"),
    }
}

async fn shutdown() {
    let _ = tokio::signal::ctrl_c().await;
}
