//! The one ledger interface every backend implements.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::Result;
use crate::event::{Appended, NewEvent, Query, Record};
use crate::lease::Leases;
use crate::projection::{OrderSnapshot, RunSnapshot};

/// What `rebuild` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RebuildStats {
    pub events: u64,
    pub runs: u64,
    pub orders: u64,
}

/// An append-only event store with inline projections.
///
/// Every append is acknowledged only after it is durable. Appends with an
/// existing `event_id` return the original record. A batch is atomic: all of
/// its events are appended or none are. Claimed orders' leases live beside
/// the log ([`Leases`]).
#[async_trait]
pub trait Ledger: Leases + Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Appends one event (a batch of one).
    async fn append(&self, event: NewEvent) -> Result<Appended> {
        let mut out = self.append_batch(vec![event]).await?;
        out.pop()
            .ok_or_else(|| crate::LedgerError::Storage("empty append result".into()))
    }

    /// Appends events atomically, in order.
    async fn append_batch(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>>;

    /// Events matching `query`, oldest first.
    async fn read(&self, query: &Query) -> Result<Vec<Record>>;

    /// The event with this id, if stored.
    async fn get(&self, event_id: &str) -> Result<Option<Record>>;

    /// The current version of a stream (0 when it has no events).
    async fn stream_version(&self, stream: &str) -> Result<i64>;

    /// The highest sequence number stored (0 when empty).
    async fn head(&self) -> Result<i64>;

    async fn run_snapshot(&self, run_id: &str) -> Result<Option<RunSnapshot>>;

    async fn order_snapshot(&self, order_id: &str) -> Result<Option<OrderSnapshot>>;

    /// All orders of a run, oldest first.
    async fn run_orders(&self, run_id: &str) -> Result<Vec<OrderSnapshot>>;

    /// Records a rejected input in the bounded mailbox `mailbox`, keeping its
    /// newest `keep` entries. Mailboxes live beside the event log, never in
    /// it: what they hold was refused.
    async fn push_dead_letter(&self, mailbox: &str, entry: Value, keep: usize) -> Result<()>;

    /// Up to `limit` entries of `mailbox`, newest first.
    async fn dead_letters(&self, mailbox: &str, limit: usize) -> Result<Vec<Value>>;

    /// Every mailbox that holds at least one entry, sorted (for backups).
    async fn dead_letter_mailboxes(&self) -> Result<Vec<String>>;

    /// Recomputes every projection from the events alone.
    async fn rebuild(&self) -> Result<RebuildStats>;

    /// New events as they commit, in sequence order. A receiver that falls
    /// behind gets `Lagged` and should re-read from its last seen `seq`
    /// (see [`crate::tail`]).
    fn subscribe(&self) -> broadcast::Receiver<Arc<Record>>;

    /// Flushes pending appends and stops the writer. Later appends fail with `Closed`.
    async fn close(&self) -> Result<()>;
}
