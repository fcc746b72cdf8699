//! Leases: who holds a claimed order, until when.
//!
//! A lease is one row per claimed order beside the log (holder token, unit,
//! attempt, the order stream's version after the holder's latest append, its
//! locks, and an expiry by the store's clock). Heartbeats move the expiry
//! without growing the log. Everything that changes an order's status
//! while it is leased goes through [`Leases::append_leased`], which checks the
//! lease and appends in one transaction:
//!
//! - a claim appends ORDER_CLAIMED by compare-and-append *and* writes the
//!   lease ([`LeaseOp::Grant`]), refused when the order is leased already or
//!   a lease in its theater holds a conflicting lock;
//! - the holder's own appends keep the lease and move its version
//!   ([`LeaseOp::Hold`]); its report ends it ([`LeaseOp::End`]);
//! - the patrols end a lapsed lease with the reissue ([`LeaseOp::Reap`]), which
//!   fails if a heartbeat revived it meanwhile.
//!
//! So the log still decides (one ORDER_CLAIMED per stream version), and a
//! token that no longer holds its lease can append nothing. PostgreSQL keeps
//! the rows in a `leases` table shared by every node; the embedded SQLite
//! ledger, which one process owns, keeps them in memory as before (a restart
//! re-adopts the claimed orders it finds, see [`Leases::adopt_lease`]).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use garrison_contracts::locks::conflicts_normalized;
use serde::Serialize;

use crate::error::{LedgerError, Result};
use crate::event::{Appended, NewEvent};

/// A lease as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub order_id: String,
    /// Presented by the holder with every heartbeat and its report.
    pub token: String,
    pub unit_id: String,
    pub attempt: u32,
    /// The order stream's version after the holder's latest append.
    pub version: i64,
    pub theater_id: Option<String>,
    /// Normalised lock resources the holder keeps while the lease lives.
    pub lock_scope: Vec<String>,
    /// Milliseconds until the lease lapses by the store's clock (≤ 0: lapsed).
    pub remaining_ms: i64,
}

impl Lease {
    pub fn lapsed(&self) -> bool {
        self.remaining_ms <= 0
    }
}

/// A new lease: what a claim grants (or a restart adopts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub order_id: String,
    pub token: String,
    pub unit_id: String,
    pub attempt: u32,
    pub theater_id: Option<String>,
    pub lock_scope: Vec<String>,
    pub ttl: Duration,
}

/// What an [`Leases::append_leased`] does to the order's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOp {
    /// No lease may exist on the order and no lease of its theater may hold
    /// a conflicting lock; the batch's order version becomes the lease's.
    Grant(Grant),
    /// `token` must hold the lease; the batch's order version becomes the lease's.
    Hold { order_id: String, token: String },
    /// `token` must hold the lease; the lease ends with the batch.
    End { order_id: String, token: String },
    /// `token` must hold the lease and it must have lapsed; it ends with the batch.
    Reap { order_id: String, token: String },
}

impl LeaseOp {
    pub fn order_id(&self) -> &str {
        match self {
            LeaseOp::Grant(g) => &g.order_id,
            LeaseOp::Hold { order_id, .. }
            | LeaseOp::End { order_id, .. }
            | LeaseOp::Reap { order_id, .. } => order_id,
        }
    }
}

/// The lease store every ledger backend provides (see the module docs).
#[async_trait]
pub trait Leases: Send + Sync {
    /// Appends `events` atomically and applies `op` in the same transaction:
    /// both happen or neither. A lease check that fails appends nothing and
    /// answers [`LedgerError::LeaseConflict`] (or [`LedgerError::LockConflict`]
    /// for a grant whose locks conflict).
    async fn append_leased(&self, events: Vec<NewEvent>, op: LeaseOp) -> Result<Vec<Appended>>;

    /// The lease on `order_id`, if any.
    async fn lease(&self, order_id: &str) -> Result<Option<Lease>>;

    /// Every lease (or only the lapsed ones), oldest order first.
    async fn leases(&self, lapsed_only: bool) -> Result<Vec<Lease>>;

    /// Extends the lease `token` holds to `ttl` from now; false when it does
    /// not hold one (never granted, ended, or reaped).
    async fn renew_lease(&self, order_id: &str, token: &str, ttl: Duration) -> Result<bool>;

    /// Lets the lease `token` holds lapse now (its unit died); false when it
    /// holds none.
    async fn lapse_lease(&self, order_id: &str, token: &str) -> Result<bool>;

    /// Records a lease for an order claimed before this store knew of it
    /// (a restart of the embedded ledger), unless the order has one; true
    /// when it was recorded.
    async fn adopt_lease(&self, grant: Grant, version: i64) -> Result<bool>;

    /// Removes the lease `token` holds without appending (its order moved on
    /// by other means); false when it holds none.
    async fn drop_lease(&self, order_id: &str, token: &str) -> Result<bool>;
}

/// A stored lease row; `expires_ms` is on the store's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub order_id: String,
    pub token: String,
    pub unit_id: String,
    pub attempt: u32,
    pub version: i64,
    pub theater_id: Option<String>,
    pub lock_scope: Vec<String>,
    pub expires_ms: i64,
}

impl Row {
    pub(crate) fn granted(g: &Grant, version: i64, now_ms: i64) -> Row {
        Row {
            order_id: g.order_id.clone(),
            token: g.token.clone(),
            unit_id: g.unit_id.clone(),
            attempt: g.attempt,
            version,
            theater_id: g.theater_id.clone(),
            lock_scope: g.lock_scope.clone(),
            expires_ms: now_ms.saturating_add(ttl_ms(g.ttl)),
        }
    }

    pub(crate) fn lease(&self, now_ms: i64) -> Lease {
        Lease {
            order_id: self.order_id.clone(),
            token: self.token.clone(),
            unit_id: self.unit_id.clone(),
            attempt: self.attempt,
            version: self.version,
            theater_id: self.theater_id.clone(),
            lock_scope: self.lock_scope.clone(),
            remaining_ms: self.expires_ms.saturating_sub(now_ms),
        }
    }
}

/// Milliseconds on this process's monotonic clock (the embedded store's
/// lease clock: one process owns that store).
pub(crate) fn monotonic_ms() -> i64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(std::time::Instant::now);
    i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX / 4)
}

/// Lease rows kept in memory (the embedded store), by order.
pub(crate) type MemRows = std::sync::Arc<std::sync::Mutex<HashMap<String, Row>>>;

/// Applies a committed group's changes to in-memory rows.
pub(crate) fn apply_changes(rows: &mut HashMap<String, Row>, changes: Vec<Change>) {
    for c in changes {
        match c {
            Change::Put(r) => {
                rows.insert(r.order_id.clone(), r);
            }
            Change::Version {
                order_id,
                token,
                version,
            } => {
                if let Some(r) = rows.get_mut(&order_id)
                    && r.token == token
                {
                    r.version = r.version.max(version);
                }
            }
            Change::Delete { order_id, token } => {
                if rows.get(&order_id).is_some_and(|r| r.token == token) {
                    rows.remove(&order_id);
                }
            }
        }
    }
}

pub(crate) fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4)
}

/// What a committed group does to the lease rows, per order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A lease granted in this group (insert, or replace one ended in it).
    Put(Row),
    /// The holder appended: only the version moves (the expiry is the heartbeats').
    Version {
        order_id: String,
        token: String,
        version: i64,
    },
    Delete {
        order_id: String,
        token: String,
    },
}

/// The lease rows a group of appends can touch (all of them, or every row
/// of the orders and theaters involved), with the group's own changes laid
/// over them as its batches pass their checks.
#[derive(Debug, Default)]
pub(crate) struct Table {
    rows: HashMap<String, Row>,
    changed: Vec<String>,
    granted: std::collections::HashSet<String>,
    deleted: HashMap<String, String>,
}

impl Table {
    pub(crate) fn new(rows: impl IntoIterator<Item = Row>) -> Table {
        Table {
            rows: rows.into_iter().map(|r| (r.order_id.clone(), r)).collect(),
            ..Table::default()
        }
    }

    /// Checks `op` against the rows (nothing changes).
    pub(crate) fn check(&self, op: &LeaseOp, now_ms: i64) -> Result<()> {
        let held = |order_id: &str, token: &str| -> Result<&Row> {
            match self.rows.get(order_id) {
                Some(r) if r.token == token => Ok(r),
                Some(_) => Err(LedgerError::LeaseConflict(format!(
                    "lease `{token}` no longer holds order `{order_id}` (reissued)"
                ))),
                None => Err(LedgerError::LeaseConflict(format!(
                    "lease `{token}` no longer holds order `{order_id}` (ended or expired)"
                ))),
            }
        };
        match op {
            LeaseOp::Grant(g) => {
                if let Some(r) = self.rows.get(&g.order_id) {
                    return Err(LedgerError::LeaseConflict(format!(
                        "order `{}` is leased to unit `{}` already",
                        g.order_id, r.unit_id
                    )));
                }
                if g.lock_scope.is_empty() {
                    return Ok(());
                }
                let conflict = self.rows.values().find(|r| {
                    r.theater_id == g.theater_id
                        && r.lock_scope.iter().any(|held| {
                            g.lock_scope
                                .iter()
                                .any(|want| conflicts_normalized(held, want))
                        })
                });
                match conflict {
                    Some(r) => Err(LedgerError::LockConflict(format!(
                        "order `{}` holds a lock that conflicts with order `{}`",
                        r.order_id, g.order_id
                    ))),
                    None => Ok(()),
                }
            }
            LeaseOp::Hold { order_id, token } | LeaseOp::End { order_id, token } => {
                held(order_id, token).map(|_| ())
            }
            LeaseOp::Reap { order_id, token } => {
                let r = held(order_id, token)?;
                if r.expires_ms > now_ms {
                    return Err(LedgerError::LeaseConflict(format!(
                        "lease `{token}` of order `{order_id}` was renewed; it has not lapsed"
                    )));
                }
                Ok(())
            }
        }
    }

    /// Applies a checked `op` whose batch left the order stream at `version`.
    pub(crate) fn apply(&mut self, op: &LeaseOp, version: i64, now_ms: i64) {
        let order_id = op.order_id().to_string();
        match op {
            LeaseOp::Grant(g) => {
                self.deleted.remove(&order_id);
                self.granted.insert(order_id.clone());
                self.rows
                    .insert(order_id.clone(), Row::granted(g, version, now_ms));
            }
            LeaseOp::Hold { .. } => {
                if let Some(r) = self.rows.get_mut(&order_id) {
                    r.version = r.version.max(version);
                }
            }
            LeaseOp::End { token, .. } | LeaseOp::Reap { token, .. } => {
                self.rows.remove(&order_id);
                self.granted.remove(&order_id);
                self.deleted.insert(order_id.clone(), token.clone());
            }
        }
        self.changed.push(order_id);
    }

    /// The group's net changes, one per order touched.
    pub(crate) fn changes(&self) -> Vec<Change> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for order_id in &self.changed {
            if !seen.insert(order_id.as_str()) {
                continue;
            }
            match (self.rows.get(order_id), self.deleted.get(order_id)) {
                (Some(r), _) if self.granted.contains(order_id) => out.push(Change::Put(r.clone())),
                (Some(r), _) => out.push(Change::Version {
                    order_id: r.order_id.clone(),
                    token: r.token.clone(),
                    version: r.version,
                }),
                (None, Some(token)) => out.push(Change::Delete {
                    order_id: order_id.clone(),
                    token: token.clone(),
                }),
                (None, None) => {}
            }
        }
        out
    }
}

/// The order stream's version after `appended`, for the lease of `order_id`.
pub(crate) fn version_after(appended: &[Appended], order_id: &str) -> Option<i64> {
    appended
        .iter()
        .filter(|a| a.record.order_id.as_deref() == Some(order_id))
        .map(|a| a.record.stream_version)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(order: &str, locks: &[&str]) -> Grant {
        Grant {
            order_id: order.into(),
            token: format!("{order}:u:1"),
            unit_id: "u".into(),
            attempt: 1,
            theater_id: Some("t".into()),
            lock_scope: locks.iter().map(|s| s.to_string()).collect(),
            ttl: Duration::from_millis(1000),
        }
    }

    #[test]
    fn grants_are_exclusive_per_order_and_lock() {
        let mut t = Table::default();
        let a = LeaseOp::Grant(grant("a", &["src"]));
        t.check(&a, 0).unwrap();
        t.apply(&a, 3, 0);
        assert!(matches!(
            t.check(&LeaseOp::Grant(grant("a", &[])), 0),
            Err(LedgerError::LeaseConflict(_))
        ));
        assert!(matches!(
            t.check(&LeaseOp::Grant(grant("b", &["src/api.py"])), 0),
            Err(LedgerError::LockConflict(_))
        ));
        t.check(&LeaseOp::Grant(grant("c", &["docs"])), 0).unwrap();
        assert_eq!(t.changes().len(), 1);
    }

    #[test]
    fn only_the_holder_ends_and_only_a_lapsed_lease_is_reaped() {
        let mut t = Table::default();
        let g = LeaseOp::Grant(grant("a", &[]));
        t.apply(&g, 2, 0);
        let wrong = LeaseOp::End {
            order_id: "a".into(),
            token: "a:other:1".into(),
        };
        assert!(t.check(&wrong, 0).is_err());
        let reap = LeaseOp::Reap {
            order_id: "a".into(),
            token: "a:u:1".into(),
        };
        assert!(t.check(&reap, 999).is_err(), "still live at 999 ms");
        t.check(&reap, 1000).unwrap();
        t.apply(&reap, 5, 1000);
        assert_eq!(
            t.changes(),
            vec![Change::Delete {
                order_id: "a".into(),
                token: "a:u:1".into()
            }]
        );
    }
}
