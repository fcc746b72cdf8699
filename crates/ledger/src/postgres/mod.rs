//! The PostgreSQL backend, for deployments where several processes share one ledger.
//!
//! Each process has one writer task that group-commits like the SQLite
//! writer. Every write transaction first takes a transaction-scoped advisory
//! lock, so commits from all nodes are serialised; under that lock the writer
//! assigns `seq` itself (head + 1), so sequence numbers are gap-free and in
//! commit order — which lets readers follow the log with `seq > last` and miss
//! nothing. Each commit sends `NOTIFY garrison_events`; a listener task in every
//! process turns notifications into the broadcast behind `subscribe`.

mod rows;
mod schema;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{Acquire, PgConnection, PgPool};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::{LedgerError, Result};
use crate::event::{Appended, NewEvent, Query, Record};
use crate::projection::{self, OrderSnapshot, RunSnapshot};
use crate::staging::{self, Staged};
use crate::store::{Ledger, RebuildStats};

const CHANNEL: &str = "garrison_events";
/// Advisory lock key serialising appends across nodes.
const APPEND_LOCK: i64 = 0x6761_7272_6973_6f6f;
const MAX_GROUP: usize = 2048;
const NOTIFY_CAPACITY: usize = 4096;

enum Command {
    Append {
        events: Vec<NewEvent>,
        reply: oneshot::Sender<Result<Vec<Appended>>>,
    },
    Rebuild {
        reply: oneshot::Sender<Result<RebuildStats>>,
    },
}

/// The PostgreSQL ledger.
pub struct PgLedger {
    pool: PgPool,
    commands: Mutex<Option<mpsc::UnboundedSender<Command>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    listener: JoinHandle<()>,
    notify: broadcast::Sender<Arc<Record>>,
}

impl PgLedger {
    /// Connects, migrates, and starts the writer and listener tasks.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| LedgerError::Storage(format!("cannot connect to PostgreSQL: {e}")))?;
        schema::migrate(&pool).await?;

        let (notify, _) = broadcast::channel(NOTIFY_CAPACITY);
        let mut listen = PgListener::connect_with(&pool).await?;
        listen.listen(CHANNEL).await?;
        let start = {
            let mut c = pool.acquire().await?;
            rows::head(&mut c).await?
        };
        let listener = tokio::spawn(listen_loop(pool.clone(), listen, notify.clone(), start));

        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(writer_loop(pool.clone(), rx));
        Ok(PgLedger {
            pool,
            commands: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            listener,
            notify,
        })
    }

    fn send(&self, cmd: Command) -> Result<()> {
        let guard = self.commands.lock().map_err(|_| LedgerError::Closed)?;
        guard
            .as_ref()
            .ok_or(LedgerError::Closed)?
            .send(cmd)
            .map_err(|_| LedgerError::Closed)
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        Ok(self.pool.acquire().await?)
    }
}

/// Broadcasts every event committed by any node, in `seq` order.
async fn listen_loop(
    pool: PgPool,
    mut listen: PgListener,
    notify: broadcast::Sender<Arc<Record>>,
    mut last: i64,
) {
    loop {
        // `recv` reconnects by itself; a notification lost meanwhile is
        // covered because each wake-up reads everything past `last`.
        if listen.recv().await.is_err() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        loop {
            let q = Query {
                after_seq: Some(last),
                limit: Some(1000),
                ..Query::default()
            };
            let page = match pool.acquire().await {
                Ok(mut c) => rows::read(&mut c, &q).await,
                Err(e) => Err(e.into()),
            };
            match page {
                Ok(page) if page.is_empty() => break,
                Ok(page) => {
                    for rec in page {
                        last = rec.seq;
                        let _ = notify.send(Arc::new(rec));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "ledger listener could not read new events");
                    break;
                }
            }
        }
    }
}

async fn writer_loop(pool: PgPool, mut rx: mpsc::UnboundedReceiver<Command>) {
    let mut pending: Option<Command> = None;
    loop {
        let first = match pending.take() {
            Some(c) => c,
            None => match rx.recv().await {
                Some(c) => c,
                None => break,
            },
        };
        match first {
            Command::Rebuild { reply } => {
                let _ = reply.send(rebuild(&pool).await);
            }
            Command::Append { events, reply } => {
                let mut group = vec![(events, reply)];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(Command::Append { events, reply }) => group.push((events, reply)),
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit_group(&pool, group).await;
            }
        }
    }
}

type AppendJob = (Vec<NewEvent>, oneshot::Sender<Result<Vec<Appended>>>);

async fn commit_group(pool: &PgPool, group: Vec<AppendJob>) {
    let now = jiff::Timestamp::now();
    let mut outcomes = Vec::with_capacity(group.len());
    let committed: Result<()> = async {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK)
            .execute(&mut *tx)
            .await?;
        let mut head = rows::head(&mut tx).await?;
        let mut staged = Staged::default();
        for (events, reply) in group {
            let mut sp = tx.begin().await?;
            let mut next = head;
            let mut batch = Staged::default();
            let result = append_all(&mut sp, &mut batch, &staged, events, now, &mut next).await;
            if result.is_ok() {
                sp.commit().await?;
                head = next;
                staged.absorb(batch);
            } else {
                sp.rollback().await?;
            }
            outcomes.push((reply, result));
        }
        for r in staged.runs.values() {
            rows::put_run(&mut tx, r).await?;
        }
        for o in staged.orders.values() {
            rows::put_order(&mut tx, o).await?;
        }
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    match committed {
        Ok(()) => {
            for (reply, result) in outcomes {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            let msg = format!("commit failed: {e}");
            for (reply, _) in outcomes {
                let _ = reply.send(Err(LedgerError::Storage(msg.clone())));
            }
        }
    }
}

async fn append_all(
    c: &mut PgConnection,
    batch: &mut Staged,
    group: &Staged,
    events: Vec<NewEvent>,
    now: jiff::Timestamp,
    head: &mut i64,
) -> Result<Vec<Appended>> {
    let mut out = Vec::with_capacity(events.len());
    for ev in events {
        out.push(append_one(c, batch, group, ev, now, head).await?);
    }
    Ok(out)
}

/// Appends one event, reading state through `batch`, then `group`, then the store.
async fn append_one(
    c: &mut PgConnection,
    batch: &mut Staged,
    group: &Staged,
    ev: NewEvent,
    now: jiff::Timestamp,
    head: &mut i64,
) -> Result<Appended> {
    let resolved = ev.resolve(now)?;
    let mut rec = resolved.record;
    if !resolved.fresh_id
        && let Some(original) = rows::get_event(c, &rec.event_id).await?
    {
        return Ok(Appended {
            record: original,
            duplicate: true,
        });
    }
    let current = match staging::stream(&[&*batch, group], &rec.stream) {
        Some(v) => v,
        None => rows::stream_version(c, &rec.stream).await?,
    };
    if let Some(expected) = resolved.expected_version
        && expected != current
    {
        return Err(LedgerError::ConcurrencyConflict {
            stream: rec.stream,
            expected,
            actual: current,
        });
    }
    rec.stream_version = current + 1;
    rec.seq = *head + 1;
    rows::insert_event(c, &rec).await?;
    *head = rec.seq;
    let run = match rec.run_id.as_deref() {
        Some(id) if projection::touches_run(&rec) => match staging::run(&[&*batch, group], id) {
            Some(r) => Some(r),
            None => rows::run_snapshot(c, id).await?,
        },
        _ => None,
    };
    let order = match rec.order_id.as_deref() {
        Some(id) => match staging::order(&[&*batch, group], id) {
            Some(o) => Some(o),
            None => rows::order_snapshot(c, id).await?,
        },
        None => None,
    };
    let changes = projection::apply(run, order, &rec)?;
    batch.streams.insert(rec.stream.clone(), rec.stream_version);
    if let Some(r) = changes.run {
        batch.runs.insert(r.run_id.clone(), r);
    }
    if let Some(o) = changes.order {
        batch.orders.insert(o.order_id.clone(), o);
    }
    Ok(Appended {
        record: rec,
        duplicate: false,
    })
}

async fn rebuild(pool: &PgPool) -> Result<RebuildStats> {
    use futures_util::TryStreamExt;

    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPEND_LOCK)
        .execute(&mut *tx)
        .await?;
    let mut runs: HashMap<String, RunSnapshot> = HashMap::new();
    let mut orders: HashMap<String, OrderSnapshot> = HashMap::new();
    let mut events = 0u64;
    {
        let conn = tx.acquire().await?;
        let sql = format!("SELECT {} FROM events ORDER BY seq", rows::RECORD_COLUMNS);
        let mut cursor = sqlx::query(&sql).fetch(&mut *conn);
        while let Some(row) = cursor.try_next().await? {
            let rec = rows::record(&row)?;
            projection::replay(&mut runs, &mut orders, &rec)?;
            events += 1;
        }
    }
    sqlx::query("DELETE FROM run_snapshots")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM order_snapshots")
        .execute(&mut *tx)
        .await?;
    let (ids, data): (Vec<String>, Vec<String>) = runs
        .values()
        .map(|r| Ok((r.run_id.clone(), serde_json::to_string(r)?)))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    sqlx::query(
        "INSERT INTO run_snapshots (run_id, data) SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[])",
    )
    .bind(&ids)
    .bind(&data)
    .execute(&mut *tx)
    .await?;
    let mut ids = Vec::with_capacity(orders.len());
    let mut run_ids = Vec::with_capacity(orders.len());
    let mut data = Vec::with_capacity(orders.len());
    for o in orders.values() {
        ids.push(o.order_id.clone());
        run_ids.push(o.run_id.clone());
        data.push(serde_json::to_string(o)?);
    }
    sqlx::query(
        "INSERT INTO order_snapshots (order_id, run_id, data)
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[])",
    )
    .bind(&ids)
    .bind(&run_ids)
    .bind(&data)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(RebuildStats {
        events,
        runs: runs.len() as u64,
        orders: orders.len() as u64,
    })
}

#[async_trait]
impl Ledger for PgLedger {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn append_batch(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.send(Command::Append { events, reply })?;
        rx.await.map_err(|_| LedgerError::Closed)?
    }

    async fn read(&self, query: &Query) -> Result<Vec<Record>> {
        rows::read(&mut *self.conn().await?, query).await
    }

    async fn get(&self, event_id: &str) -> Result<Option<Record>> {
        rows::get_event(&mut *self.conn().await?, event_id).await
    }

    async fn stream_version(&self, stream: &str) -> Result<i64> {
        rows::stream_version(&mut *self.conn().await?, stream).await
    }

    async fn head(&self) -> Result<i64> {
        rows::head(&mut *self.conn().await?).await
    }

    async fn run_snapshot(&self, run_id: &str) -> Result<Option<RunSnapshot>> {
        rows::run_snapshot(&mut *self.conn().await?, run_id).await
    }

    async fn order_snapshot(&self, order_id: &str) -> Result<Option<OrderSnapshot>> {
        rows::order_snapshot(&mut *self.conn().await?, order_id).await
    }

    async fn run_orders(&self, run_id: &str) -> Result<Vec<OrderSnapshot>> {
        rows::run_orders(&mut *self.conn().await?, run_id).await
    }

    async fn rebuild(&self) -> Result<RebuildStats> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Rebuild { reply })?;
        rx.await.map_err(|_| LedgerError::Closed)?
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Record>> {
        self.notify.subscribe()
    }

    async fn close(&self) -> Result<()> {
        drop(
            self.commands
                .lock()
                .map_err(|_| LedgerError::Closed)?
                .take(),
        );
        let handle = self.writer.lock().map_err(|_| LedgerError::Closed)?.take();
        if let Some(h) = handle {
            h.await
                .map_err(|e| LedgerError::Storage(format!("writer task failed: {e}")))?;
        }
        self.listener.abort();
        self.pool.close().await;
        Ok(())
    }
}

impl Drop for PgLedger {
    fn drop(&mut self) {
        self.listener.abort();
    }
}
