//! The ledger: Garrison's single source of truth.
//!
//! Owns the append-only event log, idempotency by `event_id`, compare-and-append
//! on stream versions, reads, subscriptions and the inline run/order
//! projections. Two backends implement [`Ledger`]: SQLite (embedded default,
//! one writer thread with group commit) and PostgreSQL (shared, scale-out).

pub mod backup;
mod error;
mod event;
pub mod lease;
pub mod postgres;
pub mod projection;
pub mod sqlite;
mod staging;
mod store;
pub mod tail;
mod writer_handle;

use std::path::Path;
use std::sync::Arc;

pub use error::{LedgerError, Result};
pub use event::{Appended, NewEvent, Query, Record, format_ts, stream_for};
pub use lease::{Grant, Lease, LeaseOp, Leases};
pub use projection::{OrderSnapshot, RunSnapshot, order_counts};
pub use store::{Ledger, RebuildStats};

/// Opens the PostgreSQL ledger when `database_url` is given, else the SQLite
/// ledger at `<data_dir>/ledger.db`.
pub async fn open(data_dir: &Path, database_url: Option<&str>) -> Result<Arc<dyn Ledger>> {
    match database_url {
        Some(url) => Ok(Arc::new(postgres::PgLedger::connect(url).await?)),
        None => Ok(Arc::new(sqlite::SqliteLedger::open(
            &data_dir.join("ledger.db"),
        )?)),
    }
}
