//! `garrison worker --server URL`: a remote worker. It long-polls the
//! server for a job, runs the unit in the job's worktree (heartbeating the
//! lease), and reports the attempt; the server appends the events.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use garrison_services::http_client::{ServerUrl, error_message};
use garrison_services::orchestration::{Job, Report, execute};
use serde_json::{Value, json};

use crate::config::{Global, Settings};

#[derive(Debug, Args)]
#[command(after_help = "\
The worker needs the API token (GARRISON_API_TOKEN, or the data dir's stored
token) and must see the job's worktree path: run it on the server's machine or
on a shared filesystem. `llm` units read GARRISON_LLM_API_KEY from the
worker's own environment.

Examples:
  garrison worker --server http://127.0.0.1:7878
  garrison worker --server http://127.0.0.1:7878 --unit-id fireteam-a --max-jobs 10")]
pub struct WorkerArgs {
    /// Server to claim jobs from (http://HOST:PORT)
    #[arg(long, value_name = "URL")]
    pub server: String,
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
    let server = ServerUrl::parse(&args.server).context("--server")?;
    let unit_id = args
        .unit_id
        .unwrap_or_else(|| format!("worker-{}", std::process::id()));
    let rt = crate::runtime()?;
    eprintln!("garrison worker {unit_id}: claiming from {}", args.server);
    rt.block_on(work(
        Arc::new(server),
        token,
        unit_id,
        args.max_jobs,
        args.wait_ms,
    ))
}

async fn post(
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
        bail!("{path}: {}", error_message(&resp.body));
    }
    Ok((resp.status, v))
}

async fn work(
    server: Arc<ServerUrl>,
    token: Option<String>,
    unit_id: String,
    max_jobs: Option<u64>,
    wait_ms: u64,
) -> Result<ExitCode> {
    let mut done = 0u64;
    let stop = shutdown();
    tokio::pin!(stop);
    while max_jobs.is_none_or(|m| done < m) {
        let claim_body = json!({"unit_id": unit_id, "wait_ms": wait_ms});
        let claim = post(&server, token.as_deref(), "/api/workers/claim", &claim_body);
        let (status, body) = tokio::select! {
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
            eprintln!("garrison worker: claim answered {status}: {body}; retrying in 2 s");
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        if body["data"].is_null() {
            continue;
        }
        let job: Job = serde_json::from_value(body["data"].clone())
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
            execute(&job, move || {
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
        let body = serde_json::to_value(&report)?;
        match post(&server, token.as_deref(), "/api/workers/report", &body).await {
            Ok((200, v)) => eprintln!(
                "garrison worker: reported {}: {}",
                report.order_id, v["data"]["status"]
            ),
            Ok((s, v)) => eprintln!(
                "garrison worker: report of {} refused ({s}): {}",
                report.order_id, v["error"]["message"]
            ),
            Err(e) => eprintln!(
                "garrison worker: report of {} failed: {e:#}",
                report.order_id
            ),
        }
        done += 1;
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown() {
    let _ = tokio::signal::ctrl_c().await;
}
