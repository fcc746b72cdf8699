//! The embedded SQLite backend.
//!
//! One process owns `ledger.db` (an exclusive lock on `ledger.db.lock`). All
//! writes go through one writer thread that group-commits: it takes every
//! append waiting in its queue, runs them in one `BEGIN IMMEDIATE` transaction
//! (each batch checked and projected in memory before any of it is written, so
//! one failing batch does not sink the others), commits once with
//! `synchronous=FULL` — one fsync for the group — and only then answers each
//! caller. Reads use a small pool of read-only
//! connections, which WAL lets run beside the writer.

mod rows;
mod schema;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use std::sync::mpsc;

use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::{LedgerError, Result};
use crate::event::{Appended, NewEvent, Query, Record};
use crate::lease::{self, Grant, Lease, LeaseOp, Leases, MemRows, Row};
use crate::projection::{OrderSnapshot, RunSnapshot};
use crate::store::{Ledger, RebuildStats};
use crate::writer_handle::{WriterHandle, parse_entries};
use std::collections::HashMap;
use std::time::Duration;
use writer::Command;

/// Subscribers that fall further behind than this get `Lagged` and re-read.
const NOTIFY_CAPACITY: usize = 4096;

/// The SQLite ledger. Cheap to share behind an `Arc`.
pub struct SqliteLedger {
    writer: WriterHandle<mpsc::Sender<Command>>,
    readers: Arc<ReadPool>,
    notify: broadcast::Sender<Arc<Record>>,
    /// Held until `close` (or drop): one process per embedded ledger.
    lock: Mutex<Option<File>>,
    /// Leases live in memory: this process owns the store, and a restart
    /// re-adopts the orders it finds claimed.
    leases: MemRows,
}

impl SqliteLedger {
    /// Opens (creating and migrating as needed) the ledger at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                LedgerError::Storage(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let lock_path = PathBuf::from(format!("{}.lock", path.display()));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                LedgerError::Storage(format!("cannot open {}: {e}", lock_path.display()))
            })?;
        take_lock(&lock).map_err(|_| {
            LedgerError::InUse(format!(
                "{} is in use by another garrison process (only one process may own an embedded ledger)",
                path.display()
            ))
        })?;

        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(64);
        schema::migrate(&mut conn)?;

        let (tx, rx) = mpsc::channel();
        let (notify, _) = broadcast::channel(NOTIFY_CAPACITY);
        let writer_notify = notify.clone();
        let leases = MemRows::default();
        let writer_leases = leases.clone();
        let handle = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer::run(conn, rx, writer_notify, writer_leases))
            .map_err(|e| LedgerError::Storage(format!("cannot start the writer thread: {e}")))?;

        Ok(SqliteLedger {
            writer: WriterHandle::new(tx, handle),
            readers: Arc::new(ReadPool {
                path: path.to_path_buf(),
                idle: Mutex::new(Vec::new()),
            }),
            notify,
            lock: Mutex::new(Some(lock)),
            leases,
        })
    }

    fn lease_rows(&self) -> MutexGuard<'_, HashMap<String, Row>> {
        // Every change to the map is one insert/remove/field write, so a
        // poisoned lock still guards consistent rows.
        self.leases.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn read_with<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(|e| LedgerError::Storage(format!("reader task failed: {e}")))?
    }
}

/// Takes the owner's lock, waiting a moment for a holder that is letting
/// go: a lock released by `close` can linger briefly in a child process
/// forked at that instant (until its `exec` closes the inherited descriptor).
fn take_lock(lock: &File) -> std::result::Result<(), std::fs::TryLockError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(()),
            Err(e) if std::time::Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn with<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let reused = self.idle().pop();
        let conn = match reused {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(5))?;
                c
            }
        };
        let out = f(&conn);
        let mut idle = self.idle();
        if idle.len() < 8 {
            idle.push(conn);
        }
        drop(idle);
        out
    }
}

#[async_trait]
impl Ledger for SqliteLedger {
    fn backend(&self) -> &'static str {
        "sqlite"
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
        let q = query.clone();
        self.read_with(move |c| rows::read(c, &q)).await
    }

    async fn get(&self, event_id: &str) -> Result<Option<Record>> {
        let id = event_id.to_string();
        self.read_with(move |c| rows::get_event(c, &id)).await
    }

    async fn stream_version(&self, stream: &str) -> Result<i64> {
        let s = stream.to_string();
        self.read_with(move |c| rows::stream_version(c, &s)).await
    }

    async fn head(&self) -> Result<i64> {
        self.read_with(rows::head).await
    }

    async fn run_snapshot(&self, run_id: &str) -> Result<Option<RunSnapshot>> {
        let id = run_id.to_string();
        self.read_with(move |c| rows::run_snapshot(c, &id)).await
    }

    async fn order_snapshot(&self, order_id: &str) -> Result<Option<OrderSnapshot>> {
        let id = order_id.to_string();
        self.read_with(move |c| rows::order_snapshot(c, &id)).await
    }

    async fn run_orders(&self, run_id: &str) -> Result<Vec<OrderSnapshot>> {
        let id = run_id.to_string();
        self.read_with(move |c| rows::run_orders(c, &id)).await
    }

    async fn push_dead_letter(&self, mailbox: &str, entry: Value, keep: usize) -> Result<()> {
        let entry = entry.to_string();
        let mailbox = mailbox.to_string();
        self.writer
            .request(|reply| Command::DeadLetter {
                mailbox,
                entry,
                keep,
                reply,
            })
            .await
    }

    async fn dead_letters(&self, mailbox: &str, limit: usize) -> Result<Vec<Value>> {
        let mailbox = mailbox.to_string();
        let raw = self
            .read_with(move |c| rows::dead_letters(c, &mailbox, limit))
            .await?;
        parse_entries(&raw)
    }

    async fn dead_letter_mailboxes(&self) -> Result<Vec<String>> {
        self.read_with(rows::dead_letter_mailboxes).await
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
        // The store is consistent on disk now; let another process have it
        // even if this handle lingers (e.g. in a request still draining).
        // The mutex only guards taking the lock file; poisoning says nothing
        // about the store, so it is recovered and the file still released.
        drop(
            self.lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        Ok(())
    }
}

#[async_trait]
impl Leases for SqliteLedger {
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
        let now = lease::monotonic_ms();
        Ok(self.lease_rows().get(order_id).map(|r| r.lease(now)))
    }

    async fn leases(&self, lapsed_only: bool) -> Result<Vec<Lease>> {
        let now = lease::monotonic_ms();
        let mut out: Vec<Lease> = self
            .lease_rows()
            .values()
            .map(|r| r.lease(now))
            .filter(|l| !lapsed_only || l.lapsed())
            .collect();
        out.sort_by(|a, b| a.order_id.cmp(&b.order_id));
        Ok(out)
    }

    async fn renew_lease(&self, order_id: &str, token: &str, ttl: Duration) -> Result<bool> {
        let now = lease::monotonic_ms();
        Ok(match self.lease_rows().get_mut(order_id) {
            Some(r) if r.token == token => {
                r.expires_ms = now.saturating_add(lease::ttl_ms(ttl));
                true
            }
            _ => false,
        })
    }

    async fn lapse_lease(&self, order_id: &str, token: &str) -> Result<bool> {
        let now = lease::monotonic_ms();
        Ok(match self.lease_rows().get_mut(order_id) {
            Some(r) if r.token == token => {
                r.expires_ms = r.expires_ms.min(now);
                true
            }
            _ => false,
        })
    }

    async fn adopt_lease(&self, grant: Grant, version: i64) -> Result<bool> {
        let now = lease::monotonic_ms();
        let mut rows = self.lease_rows();
        if rows.contains_key(&grant.order_id) {
            return Ok(false);
        }
        rows.insert(grant.order_id.clone(), Row::granted(&grant, version, now));
        Ok(true)
    }

    async fn drop_lease(&self, order_id: &str, token: &str) -> Result<bool> {
        let mut rows = self.lease_rows();
        if rows.get(order_id).is_some_and(|r| r.token == token) {
            rows.remove(order_id);
            return Ok(true);
        }
        Ok(false)
    }
}

impl Drop for SqliteLedger {
    fn drop(&mut self) {
        self.writer.stop_blocking();
    }
}
