//! IronClaw service contracts: events, statuses, artifact files and API bodies.

pub mod events;

pub use events::{EventType, OrderStatus, RunStatus, Severity, UnknownEventType};
