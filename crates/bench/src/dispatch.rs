//! Dispatch scenarios: the orchestration queue without any unit work.
//!
//! Orders are planned straight into the ledger with no theater (so a claim
//! creates no worktree) under the `noop` profile, in runs of
//! `--orders-per-run`, the way the CO plans them (RUN_UPDATED `planned_at`
//! with every ORDER_CREATED in one batch, then RUN_UPDATED `dispatched_at`),
//! and enqueued by `advance`. Setup is not timed.
//!
//! `in_process`: K tasks call `claim` → `report` (succeeded) →
//! `after_report`, as the in-process pool does. `remote`: `garrison serve`
//! with orchestration on and no in-process workers, and K workers in this
//! process speaking the remote-worker routes (`/api/workers/claim` long-poll,
//! `/api/workers/report`) over loopback with keep-alive connections, like
//! `garrison worker`. In both, as in the pool and `garrison worker`, a
//! claimer's report runs while it claims its next order (one report in
//! flight per claimer). Both report orders per second and claim latency.
//!
//! Baseline (same process, same backend, after each mode): the ledger
//! appends of the same lifecycle with no queue — K writers, each taking the
//! next enqueued order and appending ORDER_CLAIMED + ORDER_STARTED (one
//! compare-and-append batch) then ORDER_COMPLETED, overlapped the same way,
//! and RUN_COMPLETED per run.
//!
//! `reissue`: an order claimed by a unit that then never heartbeats nor
//! reports, with the duty officer patrolling every 50 ms: the time from the
//! claim to ORDER_REISSUED, against the lease.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Args;
use garrison_agent::UnitOutcome;
use garrison_client::ServerUrl;
use garrison_contracts::ironclaw::{EventType, NewEvent, OrderStatus, RunStatus};
use garrison_ledger::{Ledger, format_ts};
use garrison_orchestration::in_flight::InFlight;
use garrison_orchestration::{Job, Report, new_id};
use garrison_server::{OrchestrationSettings, Orchestrator, ServeConfig};
use serde_json::{Value, json};

use crate::ledger::{Target, median, reset_postgres, targets};
use crate::stats::{percentile_ms, round3};

const TOKEN: &str = "bench-token-0123456789";
/// Long-poll of a remote claim: short, so workers notice the end quickly.
const CLAIM_WAIT_MS: u64 = 200;
/// Duty-officer period of the reissue scenario.
const PATROL_EVERY: Duration = Duration::from_millis(50);

#[derive(Args)]
pub struct DispatchArgs {
    /// Orders per mode.
    #[arg(long, default_value_t = 10_000)]
    orders: usize,
    /// Concurrent claimers (in-process tasks, or remote workers).
    #[arg(long, default_value_t = 4)]
    claimers: usize,
    /// Orders per run (the size of one plan).
    #[arg(long, default_value_t = 100)]
    orders_per_run: usize,
    /// Modes to run, comma-separated (in_process, remote, reissue).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "in_process,remote,reissue"
    )]
    modes: Vec<String>,
    /// Lease of the reissue scenario, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    lease_ms: u64,
    /// Orders the reissue scenario lets die, one after another.
    #[arg(long, default_value_t = 3)]
    reissues: usize,
    /// Time limit per mode, in seconds: claimers stop there and the row
    /// reports the orders done (`"complete": false`).
    #[arg(long, default_value_t = 300)]
    time_limit: u64,
    /// Also run against PostgreSQL (or set GARRISON_BENCH_DATABASE_URL): a scratch
    /// database, whose ledger tables each scenario drops and recreates.
    #[arg(long, env = "GARRISON_BENCH_DATABASE_URL")]
    database_url: Option<String>,
}

/// What one timed mode measured.
struct Measured {
    done: usize,
    secs: f64,
    claims: Vec<Duration>,
}

pub async fn run(args: DispatchArgs) -> anyhow::Result<()> {
    for m in &args.modes {
        if !["in_process", "remote", "reissue"].contains(&m.as_str()) {
            bail!("unknown mode `{m}` (expected in_process, remote or reissue)");
        }
    }
    let orders = args.orders.max(1);
    let claimers = args.claimers.max(1);
    let per_run = args.orders_per_run.max(1);
    let limit = Duration::from_secs(args.time_limit.max(1));
    let want = |m: &str| args.modes.iter().any(|x| x == m);
    for target in targets(args.database_url.clone())? {
        for mode in ["in_process", "remote"] {
            if !want(mode) {
                continue;
            }
            eprintln!(
                "dispatch/{}: {mode}, {orders} orders in runs of {per_run}, {claimers} claimers …",
                target.name()
            );
            let m = match mode {
                "in_process" => in_process(&target, orders, per_run, claimers, limit).await?,
                _ => remote(&target, orders, per_run, claimers, limit).await?,
            };
            eprintln!("dispatch/{}: baseline …", target.name());
            let baseline = baseline(&target, orders, per_run, claimers).await?;
            let mut claims = m.claims;
            let rate = m.done as f64 / m.secs;
            println!(
                "{}",
                json!({
                    "scenario": "dispatch",
                    "mode": mode,
                    "backend": target.name(),
                    "orders": m.done,
                    "complete": m.done == orders,
                    "claimers": claimers,
                    "orders_per_run": per_run,
                    "orders_per_s": round3(rate),
                    "claim_p50_ms": round3(percentile_ms(&mut claims, 50.0)),
                    "claim_p99_ms": round3(percentile_ms(&mut claims, 99.0)),
                    "baseline_orders_per_s": round3(baseline),
                    "ratio": round3(rate / baseline),
                })
            );
        }
        if want("reissue") {
            eprintln!(
                "dispatch/{}: reissue, lease {} ms, {} orders …",
                target.name(),
                args.lease_ms,
                args.reissues.max(1)
            );
            let mut times = reissue(&target, args.lease_ms, args.reissues.max(1)).await?;
            let max = times.iter().copied().fold(0.0, f64::max);
            println!(
                "{}",
                json!({
                    "scenario": "reissue",
                    "backend": target.name(),
                    "lease_ms": args.lease_ms,
                    "patrol_ms": PATROL_EVERY.as_millis() as u64,
                    "rounds": times.len(),
                    "reissue_ms": round3(median(&mut times)),
                    "reissue_max_ms": round3(max),
                    "over_lease_max_ms": round3(max - args.lease_ms as f64),
                })
            );
        }
    }
    Ok(())
}

fn settings(dir: &std::path::Path) -> OrchestrationSettings {
    let mut s = OrchestrationSettings::new(dir);
    s.default_profile = "noop".into();
    s.workers = 0;
    s
}

fn event(garrison: &str, t: EventType) -> NewEvent {
    let mut e = NewEvent::new(t);
    e.garrison_id = garrison.to_string();
    e
}

/// Plans `orders` no-op orders without a theater into runs of `per_run`
/// and marks every run dispatched; returns the run ids and order ids.
async fn seed(
    ledger: &Arc<dyn Ledger>,
    garrison: &str,
    orders: usize,
    per_run: usize,
) -> anyhow::Result<(Vec<String>, Vec<(String, String)>)> {
    let mut runs = Vec::new();
    let mut all = Vec::with_capacity(orders);
    let mut left = orders;
    while left > 0 {
        let k = left.min(per_run);
        left -= k;
        let run_id = new_id();
        ledger
            .append(
                event(garrison, EventType::RunCreated)
                    .run(&run_id)
                    .payload(json!({"objective": "dispatch bench"})),
            )
            .await?;
        let mut batch = vec![
            event(garrison, EventType::RunUpdated)
                .run(&run_id)
                .payload(json!({"metadata": {"planned_at": now(), "orders": k}})),
        ];
        for i in 0..k {
            let order_id = new_id();
            batch.push(
                event(garrison, EventType::OrderCreated)
                    .run(&run_id)
                    .order(&order_id)
                    .payload(json!({
                        "plan_id": format!("o{i}"),
                        "objective": "nothing",
                        "global_objective": "dispatch bench",
                        "depends_on": [],
                        "lock_scope": [],
                        "profile": {"name": "noop", "model": null},
                        "type": "task",
                        "inputs": {},
                        "acceptance_criteria": [],
                        "constraints": {},
                    })),
            );
            all.push((run_id.clone(), order_id));
        }
        for chunk in batch.chunks(1000) {
            ledger.append_batch(chunk.to_vec()).await?;
        }
        ledger
            .append(
                event(garrison, EventType::RunUpdated)
                    .run(&run_id)
                    .payload(json!({"metadata": {"dispatched_at": now()}})),
            )
            .await?;
        runs.push(run_id);
    }
    Ok((runs, all))
}

fn now() -> String {
    format_ts(jiff::Timestamp::now())
}

/// Plans and enqueues through the orchestrator; checks the queue holds them all.
async fn seed_queue(
    orch: &Orchestrator,
    orders: usize,
    per_run: usize,
) -> anyhow::Result<Vec<String>> {
    let (runs, _) = seed(&orch.ledger, &orch.settings.garrison_id, orders, per_run).await?;
    for r in &runs {
        orch.advance(r).await?;
    }
    ensure!(
        orch.queue.depth() == orders,
        "{} of {orders} orders enqueued",
        orch.queue.depth()
    );
    Ok(runs)
}

fn succeeded(job: &Job) -> Report {
    Report {
        order_id: job.message.order_id.clone(),
        lease_token: job.lease_token.clone(),
        outcome: UnitOutcome::Succeeded,
        summary: "nothing to do".into(),
        artifacts: Vec::new(),
        aar: None,
        result: None,
        commit_sha: None,
    }
}

/// Every run COMPLETE (waits up to `wait` for reports handled in the background).
async fn check_runs(
    ledger: &Arc<dyn Ledger>,
    runs: &[String],
    wait: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + wait;
    for r in runs {
        loop {
            let snap = ledger.run_snapshot(r).await?.context("run vanished")?;
            if snap.status == RunStatus::Complete {
                break;
            }
            if Instant::now() >= deadline {
                let open = ledger
                    .run_orders(r)
                    .await?
                    .iter()
                    .filter(|o| o.status != OrderStatus::Completed)
                    .count();
                bail!(
                    "run {r} is {} with {open} orders not completed",
                    snap.status.as_str()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

async fn in_process(
    target: &Target,
    orders: usize,
    per_run: usize,
    claimers: usize,
    limit: Duration,
) -> anyhow::Result<Measured> {
    let ledger = target.fresh().await?;
    let dir = tempfile::tempdir()?;
    let orch = Orchestrator::new(ledger.clone(), settings(dir.path()));
    let runs = seed_queue(&orch, orders, per_run).await?;
    let start = Instant::now();
    let deadline = start + limit;
    let tasks: Vec<_> = (0..claimers)
        .map(|k| {
            let orch = orch.clone();
            tokio::spawn(async move {
                let unit = format!("bench-c{k}");
                let mut lat = Vec::new();
                let mut reporting = InFlight::default();
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    let Some(job) = orch.claim(&unit, None).await? else {
                        // Everything was enqueued up front: an empty queue is the end.
                        break;
                    };
                    lat.push(t0.elapsed());
                    // As the pool does: the report commits while the next claim runs.
                    let orch = orch.clone();
                    let previous = reporting
                        .hand_over(async move {
                            let done = orch.report(succeeded(&job)).await?;
                            ensure!(done.status == "COMPLETED", "report: {done:?}");
                            orch.after_report(&done).await?;
                            Ok(())
                        })
                        .await;
                    if let Some(outcome) = previous {
                        outcome.context("report task")??;
                    }
                }
                if let Some(outcome) = reporting.finish().await {
                    outcome.context("report task")??;
                }
                anyhow::Ok(lat)
            })
        })
        .collect();
    let mut claims = Vec::with_capacity(orders);
    for t in tasks {
        claims.extend(t.await.context("claimer task")??);
    }
    let secs = start.elapsed().as_secs_f64();
    let done = claims.len();
    if done == orders {
        check_runs(&ledger, &runs, Duration::from_secs(5)).await?;
    }
    ledger.close().await?;
    Ok(Measured { done, secs, claims })
}

async fn post(server: &ServerUrl, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
    let auth = format!("Bearer {TOKEN}");
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", auth.as_str()),
    ];
    let resp = server
        .post(path, &headers, &serde_json::to_vec(body)?)
        .await?;
    let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    Ok((resp.status, v))
}

async fn remote(
    target: &Target,
    orders: usize,
    per_run: usize,
    claimers: usize,
    limit: Duration,
) -> anyhow::Result<Measured> {
    let dir = tempfile::tempdir()?;
    let mut config = ServeConfig::new(dir.path());
    config.listen = "127.0.0.1:0".into();
    config.token = Some(TOKEN.into());
    config.drain_timeout = Duration::from_secs(5);
    config.orchestration = Some(settings(dir.path()));
    if let Target::Postgres(url) = target {
        reset_postgres(url).await?;
        config.database_url = Some(url.clone());
    }
    let garrison_server::Spawned { ready, stop, task } = garrison_server::spawn(config)
        .await
        .context("garrison did not start")?;
    let (addr, orch) = (ready.addr, ready.orchestrator);
    let orch = orch.context("orchestration is not running")?;
    let ledger = orch.ledger.clone();
    let runs = seed_queue(&orch, orders, per_run).await?;
    drop(orch);

    let url = Arc::new(ServerUrl::parse(&format!("http://{addr}"))?);
    let reported = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + limit;
    let tasks: Vec<_> = (0..claimers)
        .map(|k| {
            let url = url.clone();
            let reported = reported.clone();
            tokio::spawn(async move {
                let unit = format!("bench-w{k}");
                let mut lat = Vec::new();
                let mut last = None;
                let mut reporting = InFlight::default();
                while reported.load(Ordering::Acquire) < orders && Instant::now() < deadline {
                    let t0 = Instant::now();
                    let (status, mut body) = post(
                        &url,
                        "/api/workers/claim",
                        &json!({"unit_id": unit, "wait_ms": CLAIM_WAIT_MS}),
                    )
                    .await?;
                    let took = t0.elapsed();
                    ensure!(status == 200, "claim answered {status}: {body}");
                    if body["data"].is_null() {
                        continue;
                    }
                    lat.push(took);
                    let job: Job =
                        serde_json::from_value(body["data"].take()).context("the claim's job")?;
                    let report = serde_json::to_value(succeeded(&job))?;
                    // As `garrison worker` does: the report commits while the
                    // next claim runs.
                    let (url, reported) = (url.clone(), reported.clone());
                    let previous = reporting
                        .hand_over(async move {
                            let (status, body) = post(&url, "/api/workers/report", &report).await?;
                            ensure!(status == 200, "report answered {status}: {body}");
                            reported.fetch_add(1, Ordering::AcqRel);
                            Ok(())
                        })
                        .await;
                    if let Some(outcome) = previous {
                        outcome.context("report task")??;
                        last = Some(Instant::now());
                    }
                }
                if let Some(outcome) = reporting.finish().await {
                    outcome.context("report task")??;
                    last = Some(Instant::now());
                }
                anyhow::Ok((lat, last))
            })
        })
        .collect();
    let mut claims = Vec::with_capacity(orders);
    let mut end = start;
    for t in tasks {
        let (lat, last) = t.await.context("worker task")??;
        claims.extend(lat);
        end = end.max(last.unwrap_or(start));
    }
    let secs = end.duration_since(start).as_secs_f64();
    let done = reported.load(Ordering::Acquire);
    // The server advances runs after answering the report.
    let checked = if done == orders {
        check_runs(&ledger, &runs, Duration::from_secs(30)).await
    } else {
        Ok(())
    };
    drop(ledger);
    let _ = stop.send(());
    task.await.context("server task")??;
    checked?;
    Ok(Measured { done, secs, claims })
}

/// Orders per second for the same lifecycle appended straight to the ledger.
async fn baseline(
    target: &Target,
    orders: usize,
    per_run: usize,
    writers: usize,
) -> anyhow::Result<f64> {
    let ledger = target.fresh().await?;
    let garrison = "local";
    let (runs, all) = seed(&ledger, garrison, orders, per_run).await?;
    let enqueue: Vec<NewEvent> = all
        .iter()
        .map(|(run, order)| {
            event(garrison, EventType::OrderEnqueued)
                .run(run)
                .order(order)
                .payload(json!({"attempt": 1}))
        })
        .collect();
    for chunk in enqueue.chunks(1000) {
        ledger.append_batch(chunk.to_vec()).await?;
    }
    let all = Arc::new(all);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|k| {
            let (ledger, all, next) = (ledger.clone(), all.clone(), next.clone());
            tokio::spawn(async move {
                let unit = format!("bench-b{k}");
                // Pipelined like the claimers: an order's completion commits
                // while the writer claims the next one.
                let mut completing = InFlight::default();
                loop {
                    let i = next.fetch_add(1, Ordering::AcqRel);
                    let Some((run, order)) = all.get(i) else {
                        break;
                    };
                    let ev = |t| event(garrison, t).run(run).order(order).unit(&unit);
                    ledger
                        .append_batch(vec![
                            ev(EventType::OrderClaimed)
                                .payload(json!({"attempt": 1, "lease_ms": 30_000}))
                                .expect_version(2),
                            ev(EventType::OrderStarted).payload(json!({"attempt": 1})),
                        ])
                        .await?;
                    let completed = ev(EventType::OrderCompleted)
                        .payload(
                            json!({"attempt": 1, "commit_sha": null, "summary": "nothing to do"}),
                        )
                        .expect_version(4);
                    let ledger = ledger.clone();
                    let previous = completing
                        .hand_over(async move {
                            ledger.append(completed).await?;
                            anyhow::Ok(())
                        })
                        .await;
                    if let Some(outcome) = previous {
                        outcome.context("baseline completion")??;
                    }
                }
                if let Some(outcome) = completing.finish().await {
                    outcome.context("baseline completion")??;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await.context("baseline writer")??;
    }
    for r in &runs {
        ledger
            .append(
                event(garrison, EventType::RunCompleted)
                    .run(r)
                    .payload(json!({"summary": "done", "reply": "done"})),
            )
            .await?;
    }
    let rate = orders as f64 / start.elapsed().as_secs_f64();
    ledger.close().await?;
    Ok(rate)
}

/// Milliseconds from each dead unit's claim to its order's ORDER_REISSUED.
async fn reissue(target: &Target, lease_ms: u64, rounds: usize) -> anyhow::Result<Vec<f64>> {
    let ledger = target.fresh().await?;
    let dir = tempfile::tempdir()?;
    let mut s = settings(dir.path());
    s.lease = Duration::from_millis(lease_ms);
    // Room to reissue every round's order.
    s.max_retries = 1;
    let orch = Orchestrator::new(ledger.clone(), s);
    let runs = seed_queue(&orch, rounds, rounds).await?;
    let patrol = {
        let orch = orch.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PATROL_EVERY);
            loop {
                tick.tick().await;
                if let Err(e) = orch.duty_patrol().await {
                    eprintln!("duty patrol failed: {e}");
                }
            }
        })
    };
    let mut out = Vec::with_capacity(rounds);
    let wait = Duration::from_millis(lease_ms) + Duration::from_secs(10);
    for round in 0..rounds {
        let mut rx = ledger.subscribe();
        let job = orch
            .claim(&format!("bench-dead-{round}"), None)
            .await?
            .context("nothing to claim")?;
        // The unit dies here: no heartbeat, no report.
        let died = Instant::now();
        let order_id = job.message.order_id.clone();
        let seen = tokio::time::timeout(wait, async {
            loop {
                match rx.recv().await {
                    Ok(rec)
                        if rec.event_type == EventType::OrderReissued
                            && rec.order_id.as_deref() == Some(order_id.as_str()) =>
                    {
                        return Ok(died.elapsed());
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let snap = ledger.order_snapshot(&order_id).await?;
                        if snap.is_some_and(|o| o.attempt > job.message.attempt) {
                            return Ok(died.elapsed());
                        }
                    }
                    Err(e) => return Err(anyhow::anyhow!("ledger subscription: {e}")),
                }
            }
        })
        .await;
        let took = match seen {
            Ok(r) => r?,
            Err(_) => bail!("order {order_id} was not reissued within {wait:?}"),
        };
        out.push(took.as_secs_f64() * 1e3);
        // Finish the reissued attempt so rounds stay apart. The patrol
        // queues it again just after its append is seen.
        let until = Instant::now() + Duration::from_secs(5);
        let again = loop {
            if let Some(job) = orch.claim("bench-finisher", Some(&order_id)).await? {
                break job;
            }
            ensure!(
                Instant::now() < until,
                "the reissued order {order_id} was not queued again"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let done = orch.report(succeeded(&again)).await?;
        orch.after_report(&done).await?;
    }
    patrol.abort();
    let _ = patrol.await;
    check_runs(&ledger, &runs, Duration::from_secs(5)).await?;
    ledger.close().await?;
    Ok(out)
}
