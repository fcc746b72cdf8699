//! The PostgreSQL backend, for deployments where several processes share one ledger.
//!
//! Each process has one writer that group-commits like the SQLite writer, on
//! its own thread and connection so that commits never queue behind the
//! application's tasks. Every write transaction first takes a transaction-scoped advisory
//! lock, so commits from all nodes are serialised; under that lock the writer
//! assigns `seq` itself (head + 1), so sequence numbers are gap-free and in
//! commit order — which lets readers follow the log with `seq > last` and miss
//! nothing. Each commit sends `NOTIFY garrison_events`; a listener task in every
//! process turns notifications into the broadcast behind `subscribe`.

mod leases;
mod rows;
mod schema;

pub use schema::TABLES;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{Acquire, PgConnection, PgPool};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::{LedgerError, Result};
use crate::event::{Appended, NewEvent, Query, Record};
use crate::lease::{self, Grant, Lease, LeaseOp, Leases};
use crate::projection::{self, OrderSnapshot, RunSnapshot};
use crate::staging::{self, Lookup, Staged};
use crate::store::{Ledger, RebuildStats};
use crate::writer_handle::{WriterHandle, parse_entries};

const CHANNEL: &str = "garrison_events";
/// Advisory lock key serialising appends across nodes.
const APPEND_LOCK: i64 = 0x6761_7272_6973_6f6f;
const MAX_GROUP: usize = 2048;
/// How long a group waits for the appends its predecessor's writers are about
/// to resubmit (see the SQLite writer; a commit here costs milliseconds, and
/// the timer's granularity is one).
const GATHER_WINDOW: Duration = Duration::from_millis(1);
const NOTIFY_CAPACITY: usize = 4096;

enum Command {
    Append {
        events: Vec<NewEvent>,
        lease: Option<LeaseOp>,
        reply: oneshot::Sender<Result<Vec<Appended>>>,
    },
    Rebuild {
        reply: oneshot::Sender<Result<RebuildStats>>,
    },
}

/// The PostgreSQL ledger.
pub struct PgLedger {
    pool: PgPool,
    writer: WriterHandle<mpsc::UnboundedSender<Command>>,
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
        let writer_url = url.to_string();
        let writer = std::thread::Builder::new()
            .name("ledger-pg-writer".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(writer_loop(writer_url, rx)),
                    Err(e) => tracing::error!(error = %e, "ledger writer runtime failed to start"),
                }
            })
            .map_err(|e| LedgerError::Storage(format!("cannot start the writer thread: {e}")))?;
        Ok(PgLedger {
            pool,
            writer: WriterHandle::new(tx, writer),
            listener,
            notify,
        })
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

/// The writer's own connection, opened on first use and again after any
/// failure (a failed group may have left it mid-transaction).
struct WriterConn {
    url: String,
    conn: Option<PgConnection>,
}

impl WriterConn {
    async fn get(&mut self) -> Result<&mut PgConnection> {
        if self.conn.is_none() {
            let c = <PgConnection as sqlx::Connection>::connect(&self.url).await?;
            self.conn = Some(c);
        }
        self.conn.as_mut().ok_or(LedgerError::Closed)
    }

    /// Runs `work`; drops the connection if it failed.
    fn settle<T>(&mut self, result: Result<T>) -> Result<T> {
        if result.is_err() {
            self.conn = None;
        }
        result
    }
}

async fn writer_loop(url: String, mut rx: mpsc::UnboundedReceiver<Command>) {
    let mut conn = WriterConn { url, conn: None };
    let mut pending: Option<Command> = None;
    // Size of the previous group: how many appends the next one should wait for.
    let mut expect = 1usize;
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
                let result = match conn.get().await {
                    Ok(c) => rebuild(c).await,
                    Err(e) => Err(e),
                };
                let _ = reply.send(conn.settle(result));
            }
            Command::Append {
                events,
                lease,
                reply,
            } => {
                let mut group = vec![(events, lease, reply)];
                let deadline = tokio::time::Instant::now() + GATHER_WINDOW;
                while group.len() < MAX_GROUP {
                    let next = match rx.try_recv() {
                        Ok(c) => Some(c),
                        Err(_) if group.len() < expect => {
                            tokio::time::timeout_at(deadline, rx.recv())
                                .await
                                .ok()
                                .flatten()
                        }
                        Err(_) => None,
                    };
                    match next {
                        Some(Command::Append {
                            events,
                            lease,
                            reply,
                        }) => group.push((events, lease, reply)),
                        Some(other) => {
                            pending = Some(other);
                            break;
                        }
                        None => break,
                    }
                }
                expect = group.len();
                commit_group(&mut conn, group).await;
            }
        }
    }
}

type AppendJob = (
    Vec<NewEvent>,
    Option<LeaseOp>,
    oneshot::Sender<Result<Vec<Appended>>>,
);

/// One transaction for the whole group, in a fixed number of round trips:
/// take the append lock, prefetch every row the group can touch, check and
/// project each batch in memory (a rejected batch writes nothing), then insert
/// all new events and upsert all touched snapshots in bulk.
async fn commit_group(conn: &mut WriterConn, group: Vec<AppendJob>) {
    let now = crate::format_ts(jiff::Timestamp::now());
    let mut outcomes = Vec::with_capacity(group.len());
    let committed: Result<()> = async {
        let mut tx = sqlx::Connection::begin(conn.get().await?).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK)
            .execute(&mut *tx)
            .await?;
        let mut store = Prefetched::load(&mut tx, &group).await?;
        let mut head = store.head;
        let (mut table, now_ms) = lease_table(&mut tx, &group).await?;
        let mut staged = Staged::default();
        let mut records = Vec::new();
        for (events, op, reply) in group {
            let result = match &op {
                Some(op) => table.check(op, now_ms),
                None => Ok(()),
            }
            .and_then(|()| staging::check_batch(&mut store, &staged, None, events, &now, head));
            let result = result.map(|(appended, mut batch)| {
                for a in appended.iter().filter(|a| !a.duplicate) {
                    head = a.record.seq;
                    records.push(a.record.clone());
                }
                staged.absorb(&mut batch);
                if let Some(op) = &op {
                    let version = lease::version_after(&appended, op.order_id()).unwrap_or(0);
                    table.apply(op, version, now_ms);
                }
                appended
            });
            outcomes.push((reply, result));
        }
        leases::write(&mut tx, &table.changes()).await?;
        rows::write_group(
            &mut tx,
            &records,
            staged.runs.values(),
            staged.orders.values(),
            Some(CHANNEL),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    match conn.settle(committed) {
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

/// The lease rows the group's lease checks need, locked, and the database
/// clock; nothing is read for a group without lease work.
async fn lease_table(c: &mut PgConnection, group: &[AppendJob]) -> Result<(lease::Table, i64)> {
    let ops: Vec<&LeaseOp> = group.iter().filter_map(|(_, op, _)| op.as_ref()).collect();
    if ops.is_empty() {
        return Ok((lease::Table::default(), 0));
    }
    let orders: Vec<String> = ops.iter().map(|op| op.order_id().to_string()).collect();
    let grants = || {
        ops.iter().filter_map(|op| match op {
            LeaseOp::Grant(g) if !g.lock_scope.is_empty() => Some(g),
            _ => None,
        })
    };
    let theaters: Vec<String> = grants().filter_map(|g| g.theater_id.clone()).collect();
    let no_theater = grants().any(|g| g.theater_id.is_none());
    let rows = leases::lock_rows(c, &orders, &theaters, no_theater).await?;
    let now_ms = leases::now_ms(c).await?;
    Ok((lease::Table::new(rows), now_ms))
}

/// Every stored row a group can read, fetched up front under the append lock
/// (two round trips at most: replayable ids, then everything else). A key
/// that is absent here is absent from the store.
struct Prefetched {
    head: i64,
    events: HashMap<String, Record>,
    streams: HashMap<String, i64>,
    runs: HashMap<String, RunSnapshot>,
    orders: HashMap<String, OrderSnapshot>,
}

impl Prefetched {
    async fn load(c: &mut PgConnection, group: &[AppendJob]) -> Result<Prefetched> {
        let all = || group.iter().flat_map(|(events, _, _)| events.iter());
        let ids: Vec<String> = all().filter_map(|e| e.event_id.clone()).collect();
        let streams: Vec<String> = all().map(NewEvent::stream_name).collect();
        // Only run-level events read their run's snapshot.
        let runs: Vec<String> = all()
            .filter(|e| projection::type_touches_run(e.event_type, e.run_id.as_deref()))
            .filter_map(|e| e.run_id.clone())
            .collect();
        let orders: Vec<String> = all().filter_map(|e| e.order_id.clone()).collect();
        let events = rows::get_events(c, &ids).await?;
        let state = rows::group_state(c, &streams, &runs, &orders).await?;
        Ok(Prefetched {
            head: state.head,
            events,
            streams: state.streams,
            runs: state.runs,
            orders: state.orders,
        })
    }
}

impl Lookup for Prefetched {
    fn event(&mut self, event_id: &str) -> Result<Option<Record>> {
        Ok(self.events.get(event_id).cloned())
    }
    fn stream_version(&mut self, stream: &str) -> Result<i64> {
        Ok(self.streams.get(stream).copied().unwrap_or(0))
    }
    fn run(&mut self, run_id: &str) -> Result<Option<RunSnapshot>> {
        Ok(self.runs.get(run_id).cloned())
    }
    fn order(&mut self, order_id: &str) -> Result<Option<OrderSnapshot>> {
        Ok(self.orders.get(order_id).cloned())
    }
}

async fn rebuild(conn: &mut PgConnection) -> Result<RebuildStats> {
    use futures_util::TryStreamExt;

    let mut tx = sqlx::Connection::begin(conn).await?;
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
    rows::write_group(&mut tx, &[], runs.values(), orders.values(), None).await?;
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
        self.writer
            .request(|reply| Command::Append {
                events,
                lease: None,
                reply,
            })
            .await
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

    async fn push_dead_letter(&self, mailbox: &str, entry: Value, keep: usize) -> Result<()> {
        rows::push_dead_letter(&mut *self.conn().await?, mailbox, &entry.to_string(), keep).await
    }

    async fn dead_letters(&self, mailbox: &str, limit: usize) -> Result<Vec<Value>> {
        let raw = rows::dead_letters(&mut *self.conn().await?, mailbox, limit).await?;
        parse_entries(&raw)
    }

    async fn dead_letter_mailboxes(&self) -> Result<Vec<String>> {
        rows::dead_letter_mailboxes(&mut *self.conn().await?).await
    }

    async fn rebuild(&self) -> Result<RebuildStats> {
        self.writer
            .request(|reply| Command::Rebuild { reply })
            .await
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Record>> {
        self.notify.subscribe()
    }

    async fn close(&self) -> Result<()> {
        self.writer.stop().await?;
        self.listener.abort();
        self.pool.close().await;
        Ok(())
    }
}

#[async_trait]
impl Leases for PgLedger {
    async fn append_leased(&self, events: Vec<NewEvent>, op: LeaseOp) -> Result<Vec<Appended>> {
        if events.is_empty() {
            return Err(LedgerError::Invalid(
                "a leased append needs at least one event".into(),
            ));
        }
        self.writer
            .request(|reply| Command::Append {
                events,
                lease: Some(op),
                reply,
            })
            .await
    }

    async fn lease(&self, order_id: &str) -> Result<Option<Lease>> {
        leases::get(&mut *self.conn().await?, order_id).await
    }

    async fn leases(&self, lapsed_only: bool) -> Result<Vec<Lease>> {
        leases::list(&mut *self.conn().await?, lapsed_only).await
    }

    async fn renew_lease(&self, order_id: &str, token: &str, ttl: Duration) -> Result<bool> {
        leases::renew(&mut *self.conn().await?, order_id, token, ttl).await
    }

    async fn lapse_lease(&self, order_id: &str, token: &str) -> Result<bool> {
        leases::lapse(&mut *self.conn().await?, order_id, token).await
    }

    async fn adopt_lease(&self, grant: Grant, version: i64) -> Result<bool> {
        leases::adopt(&mut *self.conn().await?, &grant, version).await
    }

    async fn drop_lease(&self, order_id: &str, token: &str) -> Result<bool> {
        leases::remove(&mut *self.conn().await?, order_id, token).await
    }
}

impl Drop for PgLedger {
    fn drop(&mut self) {
        self.listener.abort();
    }
}
