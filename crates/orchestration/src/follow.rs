//! Following the shared ledger: what other nodes append, folded into this
//! node's index.
//!
//! Several nodes on one PostgreSQL ledger each keep their own queue. Every
//! node follows the log ([`garrison_ledger::tail::follow`], gap-free) and, for
//! each order event it has not reflected yet, brings the order's queue entry
//! in line with the ledger: ready when its snapshot is QUEUED after an
//! enqueue or reissue, active (holding its locks) while CLAIMED or RUNNING,
//! gone otherwise. It reads the snapshot and the stream version rather than
//! trusting the event alone, so an event that arrives late can only confirm
//! what is already there; [`super::queue::Queue::sync`] ignores anything
//! older than what the queue holds. The node's own appends update the queue
//! directly and are skipped here by version.
//!
//! The same pass keeps the node's list of open runs, leaves completed orders
//! to its integration service, and leaves runs whose orders settled to its
//! duty officer to advance (a node that died between a report and the
//! run's advance leaves that work to whoever patrols).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use garrison_contracts::ironclaw::{EventType, OrderStatus};
use garrison_ledger::Record;
use tokio::sync::watch;

use super::Orchestrator;
use super::book::Pending;
use super::error::Result;
use super::queue::{Active, Ready, Synced};

impl Orchestrator {
    /// Follows the ledger from `after` (a `seq`) until `down` turns true.
    pub async fn follow(self: Arc<Self>, after: i64, mut down: watch::Receiver<bool>) {
        let events = garrison_ledger::tail::follow(self.ledger.clone(), after);
        tokio::pin!(events);
        loop {
            tokio::select! {
                next = events.next() => match next {
                    Some(Ok(rec)) => {
                        if let Err(e) = self.fold(&rec).await {
                            tracing::warn!(seq = rec.seq, error = %e, "could not fold an event into the queue");
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "following the ledger; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    None => return,
                },
                _ = down.changed() => {
                    if *down.borrow() {
                        return;
                    }
                }
            }
        }
    }

    /// Folds one event (see the module docs).
    pub async fn fold(&self, rec: &Record) -> Result<()> {
        let roles = self.settings.roles;
        match rec.event_type {
            EventType::RunCreated => {
                if let Some(run_id) = &rec.run_id {
                    self.mark_open(run_id, true);
                }
            }
            EventType::RunCompleted | EventType::RunFailed | EventType::RunCancelled => {
                if let Some(run_id) = &rec.run_id {
                    self.mark_open(run_id, false);
                    self.forget_run(run_id);
                }
            }
            _ => {}
        }
        let Some(order_id) = &rec.order_id else {
            return Ok(());
        };
        if rec.event_type == EventType::OrderClaimed {
            self.queue.note_claim();
        }
        if rec.event_type == EventType::IntegrationReady && roles.integration {
            self.note_integration(order_id, Pending::Ready);
        }
        let settles = matches!(
            rec.event_type,
            EventType::OrderCompleted
                | EventType::OrderFailed
                | EventType::OrderBlocked
                | EventType::OrderCancelled
                | EventType::Integrated
                | EventType::IntegrationFailed
        );
        if settles
            && roles.duty
            && let Some(run_id) = &rec.run_id
        {
            self.defer(run_id);
        }
        match self.queue.known_version(order_id) {
            Some(known) if known >= rec.stream_version => return Ok(()),
            Some(_) => {}
            // Only these can make an order the queue does not hold ready or active.
            None if !matches!(
                rec.event_type,
                EventType::OrderEnqueued
                    | EventType::OrderReissued
                    | EventType::OrderClaimed
                    | EventType::OrderStarted
            ) =>
            {
                return Ok(());
            }
            None => {}
        }
        let Some(order) = self.ledger.order_snapshot(order_id).await? else {
            return Ok(());
        };
        let stream = garrison_ledger::stream_for(
            &order.garrison_id,
            order.run_id.as_deref(),
            Some(&order.order_id),
        );
        let version = self.ledger.stream_version(&stream).await?;
        let to = match order.status {
            OrderStatus::Queued
                if matches!(
                    order.last_event_type,
                    EventType::OrderEnqueued | EventType::OrderReissued
                ) =>
            {
                Synced::Ready(Ready::of(&order, order.attempt, version))
            }
            OrderStatus::Claimed | OrderStatus::Running => Synced::Active(Active {
                order_id: order.order_id.clone(),
                run_id: order.run_id.clone(),
                theater_id: order.theater_id.clone(),
                lock_scope: order.lock_scope.clone(),
                unit_id: order.unit_id.clone().unwrap_or_default(),
                attempt: order.attempt,
                version,
                created_seq: order.created_seq,
            }),
            _ => Synced::Gone,
        };
        self.queue.sync(order_id, version, to);
        Ok(())
    }
}
