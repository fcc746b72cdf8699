//! Milestones both ways. Outbound (`outbox`): run completed or failed,
//! integrated and escalation events become signed milestone deliveries,
//! sent at least once with backoff; the idempotency key derives from the
//! source event, so a retry is a `duplicate` at the receiver. Inbound
//! (`ingest`): the signed, idempotent ingest, its feed and dead letter.

mod delivery;
mod ingest;
mod milestone_for;
mod outbox;

pub use delivery::{DeliveryState, DeliveryStep, DeliverySummary, summarize};
pub use ingest::{
    Accepted, BadLimit, Ingest, MilestoneSettings, Refusal, Rejection, Signed, TooLarge, deliveries,
};
pub use milestone_for::milestone_for;
pub use outbox::{OutboxConfig, OutboxError, OutboxService, Target, run};
