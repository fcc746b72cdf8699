//! `ingest`: signed milestone ingests over real HTTP against `garrison serve`
//! (embedded SQLite ledger) at several concurrencies — unique keys plus 10%
//! duplicates — beside a trivial axum endpoint served and loaded the same way
//! in the same process.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use garrison_contracts::sign;
use garrison_ledger::format_ts;
use garrison_server::{MilestoneSettings, ServeConfig};
use serde_json::json;
use tokio::sync::oneshot;

use crate::http::{Conn, post};
use crate::stats::{percentile_ms, round3};

const SECRET: &[u8] = b"bench-secret";

#[derive(Args)]
pub struct IngestArgs {
    /// Concurrent connections to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Requests per scenario (default: 2000 at c=1, else 20000).
    #[arg(long)]
    requests: Option<usize>,
}

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (garrison, stop_garrison) = start_garrison(dir.path()).await?;
    let (baseline, stop_baseline) = start_baseline().await?;
    let mut round = 0;
    for &c in &args.concurrency {
        let c = c.max(1);
        let requests = args.requests.unwrap_or(if c == 1 { 2000 } else { 20_000 });
        eprintln!("ingest: concurrency {c}, {requests} requests …");
        round += 1;
        let bodies = signed_requests(garrison, round, requests);
        let (rate, mut lat, statuses) = load(garrison, &bodies, c).await?;
        let accepted = statuses.iter().filter(|s| **s == 200).count();
        anyhow::ensure!(
            accepted == requests,
            "{} of {requests} ingests failed",
            requests - accepted
        );
        let trivial = vec![post(baseline, "/", &[], b"{}"); requests];
        let (base_rate, _, _) = load(baseline, &trivial, c).await?;
        println!(
            "{}",
            json!({
                "scenario": "ingest",
                "concurrency": c,
                "requests": requests,
                "req_per_s": round3(rate),
                "p50_ms": round3(percentile_ms(&mut lat, 50.0)),
                "p99_ms": round3(percentile_ms(&mut lat, 99.0)),
                "baseline_req_per_s": round3(base_rate),
                "ratio": round3(rate / base_rate),
            })
        );
    }
    let _ = stop_garrison.send(());
    let _ = stop_baseline.send(());
    Ok(())
}

/// `requests` signed ingest requests: unique keys, every tenth a repeat of an
/// earlier one (a duplicate), in a shuffled-enough order.
fn signed_requests(addr: SocketAddr, round: usize, requests: usize) -> Vec<Vec<u8>> {
    let stamp = format_ts(jiff::Timestamp::now());
    (0..requests)
        .map(|i| {
            let n = if i % 10 == 9 { i / 2 } else { i };
            let body = json!({
                "idempotencyKey": format!("bench-{round}-{n}"),
                "sentAtUtc": stamp,
                "event": {
                    "milestoneId": format!("m-{round}-{n}"),
                    "timestampUtc": stamp,
                    "scope": "bench",
                    "claim": "ingest under load",
                    "evidence": [{"type": "metric", "path": "bench/ingest", "summary": "load"}],
                    "riskStatus": "on-track",
                    "nextAction": "measure",
                    "source": "orchestrator"
                }
            });
            let bytes = body.to_string().into_bytes();
            let sig = sign(SECRET, &bytes).unwrap_or_default();
            post(
                addr,
                "/internal/milestones/ingest",
                &[
                    ("x-openclaw-signature", &sig),
                    ("x-openclaw-timestamp", &stamp),
                ],
                &bytes,
            )
        })
        .collect()
}

/// Sends every request over `concurrency` keep-alive connections; returns
/// requests per second, per-request latencies and statuses.
async fn load(
    addr: SocketAddr,
    requests: &[Vec<u8>],
    concurrency: usize,
) -> anyhow::Result<(f64, Vec<Duration>, Vec<u16>)> {
    let mut lanes: Vec<Vec<Vec<u8>>> = vec![Vec::new(); concurrency];
    for (i, r) in requests.iter().enumerate() {
        lanes[i % concurrency].push(r.clone());
    }
    let start = Instant::now();
    let tasks: Vec<_> = lanes
        .into_iter()
        .map(|lane| {
            tokio::spawn(async move {
                let mut conn = Conn::open(addr).await?;
                let mut out = Vec::with_capacity(lane.len());
                for req in lane {
                    let t0 = Instant::now();
                    let (status, _) = conn.send(&req).await?;
                    out.push((t0.elapsed(), status));
                }
                anyhow::Ok(out)
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(requests.len());
    let mut statuses = Vec::with_capacity(requests.len());
    for t in tasks {
        for (d, s) in t.await.context("load task")?? {
            lat.push(d);
            statuses.push(s);
        }
    }
    Ok((
        requests.len() as f64 / start.elapsed().as_secs_f64(),
        lat,
        statuses,
    ))
}

async fn start_garrison(
    dir: &std::path::Path,
) -> anyhow::Result<(SocketAddr, oneshot::Sender<()>)> {
    let mut config = ServeConfig::new(dir);
    config.listen = "127.0.0.1:0".into();
    config.token = Some("bench-token-0123456789".into());
    config.milestones = MilestoneSettings {
        secret: Some(SECRET.to_vec()),
        feed_limit: 50,
        ..MilestoneSettings::default()
    };
    let spawned = garrison_server::spawn(config)
        .await
        .context("garrison did not start")?;
    Ok((spawned.ready.addr, spawned.stop))
}

/// The baseline: an axum endpoint that answers a fixed JSON body.
async fn start_baseline() -> anyhow::Result<(SocketAddr, oneshot::Sender<()>)> {
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(|| async { axum::Json(json!({"ok": true, "status": "accepted"})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await;
    });
    Ok((addr, stop_tx))
}
