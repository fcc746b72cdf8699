//! IronClaw service contracts: events, statuses, artifact files and API bodies.

pub mod api;
pub mod artifacts;
pub mod events;
pub mod plan;

pub use api::{AppendEventRequest, ChatMode, ChatRequest, Envelope, Event};
pub use artifacts::{Aar, AarStatus, ArtifactError, Constraints, OrderFile, Profile, ToolPolicy};
pub use events::{EventType, OrderStatus, RunStatus, Severity, UnknownEventType};
pub use plan::{Plan, PlanError, PlanOrder};
