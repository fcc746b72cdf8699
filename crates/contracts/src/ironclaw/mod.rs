//! IronClaw service contracts: events, statuses, artifact files and API bodies.

pub mod api;
pub mod artifacts;
pub mod events;
pub mod new_event;
pub mod plan;

pub use api::{ChatMode, ChatRequest};
pub use artifacts::{Aar, AarStatus, ArtifactError, Constraints, OrderFile, Profile, ToolPolicy};
pub use events::{EventType, OrderStatus, RunStatus, Severity, UnknownEventType};
pub use new_event::{NewEvent, stream_for};
pub use plan::{Plan, PlanError, PlanOrder};
