//! Ledger scenarios.
//!
//! `appends`: W writers, each appending one event at a time and waiting for
//! its durable acknowledgement, running an order's whole lifecycle (created,
//! claimed, started, artifact, AAR, completed: every event updates a
//! projection). Baseline: the same number of rows inserted with no Garrison
//! code — one rusqlite connection (or one PostgreSQL connection), same
//! `events` columns and indexes, WAL + synchronous=FULL, in transactions of W
//! rows, i.e. perfect batching at the same durability.
//!
//! `rebuild`: projections recomputed from N stored events, beside a raw scan
//! that reads and JSON-parses the same rows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use garrison_contracts::ironclaw::EventType;
use garrison_ledger::{Ledger, NewEvent};
use serde_json::json;

use crate::stats::{percentile_ms, round3};

const LIFECYCLE: [EventType; 6] = [
    EventType::OrderCreated,
    EventType::OrderClaimed,
    EventType::OrderStarted,
    EventType::ArtifactWritten,
    EventType::AarWritten,
    EventType::OrderCompleted,
];

#[derive(Args)]
pub struct AppendArgs {
    /// Writer counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    writers: Vec<usize>,
    /// Events per scenario (default: 600 per writer, at most 24000).
    #[arg(long)]
    events: Option<usize>,
    /// Also run against PostgreSQL (or set GARRISON_BENCH_DATABASE_URL): a scratch
    /// database, whose ledger tables each scenario drops and recreates.
    #[arg(long, env = "GARRISON_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// Rounds per scenario (Garrison and baseline alternate); medians are reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

#[derive(Args)]
pub struct RebuildArgs {
    /// Events in the log to rebuild from.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Also run against PostgreSQL (or set GARRISON_BENCH_DATABASE_URL): a scratch
    /// database, whose ledger tables each scenario drops and recreates.
    #[arg(long, env = "GARRISON_BENCH_DATABASE_URL")]
    database_url: Option<String>,
}

pub(crate) enum Target {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Target {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Target::Sqlite(_) => "sqlite",
            Target::Postgres(_) => "postgres",
        }
    }

    /// A fresh, empty ledger.
    pub(crate) async fn fresh(&self) -> anyhow::Result<Arc<dyn Ledger>> {
        match self {
            Target::Sqlite(dir) => {
                let path = dir.path().join(next_name("ledger"));
                Ok(Arc::new(garrison_ledger::sqlite::SqliteLedger::open(
                    &path,
                )?))
            }
            Target::Postgres(url) => {
                reset_postgres(url).await?;
                Ok(Arc::new(
                    garrison_ledger::postgres::PgLedger::connect(url).await?,
                ))
            }
        }
    }
}

/// A new file name in the scenario's temp dir.
fn next_name(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "{prefix}-{}.db",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

pub(crate) async fn reset_postgres(url: &str) -> anyhow::Result<()> {
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url).await?;
    let tables = garrison_ledger::postgres::TABLES.join(", ");
    sqlx::raw_sql(&format!("DROP TABLE IF EXISTS {tables}, bench_baseline"))
        .execute(&mut c)
        .await?;
    Ok(())
}

pub(crate) fn targets(database_url: Option<String>) -> anyhow::Result<Vec<Target>> {
    let mut t = vec![Target::Sqlite(tempfile::tempdir()?)];
    if let Some(url) = database_url {
        t.push(Target::Postgres(url));
    }
    Ok(t)
}

fn lifecycle_event(writer: usize, i: usize) -> NewEvent {
    let order = format!("w{writer}-o{}", i / LIFECYCLE.len());
    let t = LIFECYCLE[i % LIFECYCLE.len()];
    let ev = NewEvent::new(t)
        .theater("bench")
        .run(format!("run-w{writer}"))
        .order(order);
    match t {
        EventType::OrderCreated => {
            ev.payload(json!({"objective": "bench", "lock_scope": ["src/"]}))
        }
        EventType::ArtifactWritten => {
            ev.payload(json!({"path": "outputs/out.txt", "type": "text/plain"}))
        }
        EventType::AarWritten => ev.payload(json!({"path": "aar.json", "status": "completed"})),
        _ => ev,
    }
}

pub async fn appends(args: AppendArgs) -> anyhow::Result<()> {
    let repeat = args.repeat.max(1);
    for target in targets(args.database_url)? {
        for &writers in &args.writers {
            let writers = writers.max(1);
            let events = args.events.unwrap_or((600 * writers).min(24_000));
            let per_writer = events.div_ceil(writers);
            let events = per_writer * writers;
            eprintln!(
                "ledger/{}: {writers} writers, {events} events, {repeat} rounds …",
                target.name()
            );
            // Rounds alternate Garrison and baseline so drift on the machine
            // hits both; the figures are medians over the rounds.
            let mut rates = Vec::with_capacity(repeat);
            let mut baselines = Vec::with_capacity(repeat);
            let mut lat: Vec<Duration> = Vec::with_capacity(events * repeat);
            for _ in 0..repeat {
                let (rate, round_lat) = garrison_appends(&target, writers, per_writer).await?;
                rates.push(rate);
                lat.extend(round_lat);
                baselines.push(match &target {
                    Target::Sqlite(dir) => baseline_sqlite(dir.path(), events, writers)?,
                    Target::Postgres(url) => baseline_postgres(url, events, writers).await?,
                });
            }
            let (rate, baseline) = (median(&mut rates), median(&mut baselines));
            println!(
                "{}",
                json!({
                    "scenario": "append",
                    "backend": target.name(),
                    "writers": writers,
                    "events": events,
                    "rounds": repeat,
                    "events_per_s": round3(rate),
                    "p50_ms": round3(percentile_ms(&mut lat, 50.0)),
                    "p99_ms": round3(percentile_ms(&mut lat, 99.0)),
                    "baseline_events_per_s": round3(baseline),
                    "ratio": round3(rate / baseline),
                })
            );
        }
    }
    Ok(())
}

pub(crate) fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

/// One round on a fresh ledger: events per second and per-append latencies.
async fn garrison_appends(
    target: &Target,
    writers: usize,
    per_writer: usize,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    let ledger = target.fresh().await?;
    // Every writer's run exists first, as it would in real use.
    for w in 0..writers {
        ledger
            .append(
                NewEvent::new(EventType::RunCreated)
                    .theater("bench")
                    .run(format!("run-w{w}")),
            )
            .await?;
    }
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_writer);
                for i in 0..per_writer {
                    let t0 = Instant::now();
                    ledger.append(lifecycle_event(w, i)).await?;
                    lat.push(t0.elapsed());
                }
                anyhow::Ok(lat)
            })
        })
        .collect();
    let mut lat: Vec<Duration> = Vec::with_capacity(per_writer * writers);
    for t in tasks {
        lat.extend(t.await.context("writer task")??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    ledger.close().await?;
    Ok(((per_writer * writers) as f64 / elapsed, lat))
}

const BASELINE_TABLE: &str = "CREATE TABLE bench_baseline (
    seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, ts TEXT NOT NULL, type TEXT NOT NULL,
    garrison_id TEXT NOT NULL, theater_id TEXT, run_id TEXT, order_id TEXT, unit_id TEXT,
    payload TEXT NOT NULL, stream TEXT NOT NULL, stream_version INTEGER NOT NULL,
    UNIQUE (stream, stream_version));
  CREATE INDEX bb_run ON bench_baseline (run_id, seq);
  CREATE INDEX bb_type ON bench_baseline (type, seq);";

/// The per-order index of each backend's schema: SQLite indexes only the
/// events filed outside their order's stream (none here), PostgreSQL all.
const BASELINE_ORDER_INDEX_SQLITE: &str = "CREATE INDEX bb_order ON bench_baseline (order_id, seq)
    WHERE order_id IS NOT NULL AND stream <> 'order:' || order_id;";
const BASELINE_ORDER_INDEX_POSTGRES: &str =
    "CREATE INDEX bb_order ON bench_baseline (order_id, seq) WHERE order_id IS NOT NULL;";

/// The rows the baseline inserts: the same events the writers append, in the
/// order a group commit interleaves them (round-robin over writers), so both
/// sides touch the same index pages.
fn baseline_rows(events: usize, writers: usize) -> Vec<([String; 6], i64)> {
    let per_writer = events / writers;
    let mut rows = Vec::with_capacity(events);
    for i in 0..per_writer {
        for w in 0..writers {
            let ev = lifecycle_event(w, i);
            let order = ev.order_id.clone().unwrap_or_default();
            let version = (i % LIFECYCLE.len() + 1) as i64;
            rows.push((
                [
                    format!("{:026}", rows.len()),
                    ev.event_type.as_str().to_string(),
                    ev.run_id.clone().unwrap_or_default(),
                    order.clone(),
                    ev.payload.to_string(),
                    format!("order:{order}"),
                ],
                version,
            ));
        }
    }
    rows
}

/// Rows per second for plain durable inserts in transactions of `batch` rows.
fn baseline_sqlite(dir: &std::path::Path, events: usize, batch: usize) -> anyhow::Result<f64> {
    let mut conn = rusqlite::Connection::open(dir.join(next_name("baseline")))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(BASELINE_TABLE)?;
    conn.execute_batch(BASELINE_ORDER_INDEX_SQLITE)?;
    let rows = baseline_rows(events, batch);
    let start = Instant::now();
    for chunk in rows.chunks(batch) {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO bench_baseline (event_id, ts, type, garrison_id, theater_id, run_id,
                 order_id, unit_id, payload, stream, stream_version)
                 VALUES (?1, '2026-01-01T00:00:00.000Z', ?2, 'local', 'bench', ?3, ?4, NULL, ?5, ?6, ?7)",
            )?;
            for (r, version) in chunk {
                stmt.execute(rusqlite::params![
                    r[0], r[1], r[2], r[3], r[4], r[5], version
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(rows.len() as f64 / start.elapsed().as_secs_f64())
}

async fn baseline_postgres(url: &str, events: usize, batch: usize) -> anyhow::Result<f64> {
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url).await?;
    sqlx::raw_sql("DROP TABLE IF EXISTS bench_baseline")
        .execute(&mut c)
        .await?;
    sqlx::raw_sql(&BASELINE_TABLE.replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY"))
        .execute(&mut c)
        .await?;
    sqlx::raw_sql(BASELINE_ORDER_INDEX_POSTGRES)
        .execute(&mut c)
        .await?;
    let rows = baseline_rows(events, batch);
    let start = Instant::now();
    for chunk in rows.chunks(batch) {
        let col = |k: usize| chunk.iter().map(|(r, _)| r[k].clone()).collect::<Vec<_>>();
        let versions: Vec<i64> = chunk.iter().map(|(_, v)| *v).collect();
        let mut tx = sqlx::Connection::begin(&mut c).await?;
        sqlx::query(
            "INSERT INTO bench_baseline (event_id, ts, type, garrison_id, theater_id, run_id, order_id,
             payload, stream, stream_version)
             SELECT id, '2026-01-01T00:00:00.000Z', t, 'local', 'bench', r, o, p, s, v
             FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[],
                         $7::BIGINT[]) AS x(id, t, r, o, p, s, v)",
        )
        .bind(col(0))
        .bind(col(1))
        .bind(col(2))
        .bind(col(3))
        .bind(col(4))
        .bind(col(5))
        .bind(&versions)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    let rate = rows.len() as f64 / start.elapsed().as_secs_f64();
    sqlx::raw_sql("DROP TABLE bench_baseline")
        .execute(&mut c)
        .await?;
    Ok(rate)
}

pub async fn rebuild(args: RebuildArgs) -> anyhow::Result<()> {
    for target in targets(args.database_url)? {
        eprintln!(
            "rebuild/{}: writing {} events …",
            target.name(),
            args.events
        );
        let ledger = target.fresh().await?;
        let writers = 64;
        for w in 0..writers {
            ledger
                .append(
                    NewEvent::new(EventType::RunCreated)
                        .theater("bench")
                        .run(format!("run-w{w}")),
                )
                .await?;
        }
        let per_writer = args.events.div_ceil(writers);
        let fill: Vec<_> = (0..writers)
            .map(|w| {
                let ledger = ledger.clone();
                tokio::spawn(async move {
                    let evs: Vec<_> = (0..per_writer).map(|i| lifecycle_event(w, i)).collect();
                    for chunk in evs.chunks(600) {
                        ledger.append_batch(chunk.to_vec()).await?;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for f in fill {
            f.await.context("fill task")??;
        }
        let start = Instant::now();
        let stats = ledger.rebuild().await?;
        let elapsed = start.elapsed().as_secs_f64();
        let baseline = {
            let start = Instant::now();
            let mut after = 0;
            let mut n = 0usize;
            loop {
                let page = ledger
                    .read(&garrison_ledger::Query {
                        after_seq: Some(after),
                        limit: Some(10_000),
                        ..Default::default()
                    })
                    .await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                n += page.len();
            }
            n as f64 / start.elapsed().as_secs_f64()
        };
        ledger.close().await?;
        let rate = stats.events as f64 / elapsed;
        println!(
            "{}",
            json!({
                "scenario": "rebuild",
                "backend": target.name(),
                "events": stats.events,
                "runs": stats.runs,
                "orders": stats.orders,
                "events_per_s": round3(rate),
                "baseline_events_per_s": round3(baseline),
                "ratio": round3(rate / baseline),
            })
        );
    }
    Ok(())
}
