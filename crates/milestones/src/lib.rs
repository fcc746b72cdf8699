//! The milestone emitter (DESIGN.md "Milestone emitter"): run completed or
//! failed, integrated and escalation events become signed milestone
//! deliveries, sent at least once with backoff. The idempotency key derives
//! from the source event, so a retry is a `duplicate` at the receiver.

pub mod delivery;
pub mod milestone_for;
pub mod outbox;

pub use delivery::{DeliveryState, DeliveryStep, DeliverySummary, summarize};
pub use milestone_for::milestone_for;
pub use outbox::{OutboxConfig, OutboxError, Target, run};
