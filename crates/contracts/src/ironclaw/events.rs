//! IronClaw event types and status enums (ironclaw-service-contracts.md §0–1).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::task::TaskStatus;

macro_rules! event_types {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// Every event type the IronClaw contract lists, plus `POLICY_UPDATED`
        /// (the learning service's optional type) and Garrison's own types
        /// (after it in the list).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType { $($variant),+ }

        impl EventType {
            /// All known types, in contract order.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),+];

            /// The canonical wire name (what Garrison always writes).
            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name),+ }
            }
        }

        impl FromStr for EventType {
            type Err = UnknownEventType;
            /// Accepts the canonical names and the contract's two typos
            /// (`ORDER CLAIMED`, `WORKTREE_Removed`).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(EventType::$variant),)+
                    "ORDER CLAIMED" => Ok(EventType::OrderClaimed),
                    "WORKTREE_Removed" => Ok(EventType::WorktreeRemoved),
                    other => Err(UnknownEventType(other.to_string())),
                }
            }
        }
    };
}

event_types! {
    RunCreated => "RUN_CREATED",
    RunUpdated => "RUN_UPDATED",
    RunCompleted => "RUN_COMPLETED",
    RunFailed => "RUN_FAILED",
    RunCancelled => "RUN_CANCELLED",
    OrderCreated => "ORDER_CREATED",
    OrderEnqueued => "ORDER_ENQUEUED",
    OrderClaimed => "ORDER_CLAIMED",
    OrderStarted => "ORDER_STARTED",
    OrderBlocked => "ORDER_BLOCKED",
    OrderCompleted => "ORDER_COMPLETED",
    OrderFailed => "ORDER_FAILED",
    OrderReissued => "ORDER_REISSUED",
    OrderCancelled => "ORDER_CANCELLED",
    WorktreeCreated => "WORKTREE_CREATED",
    WorktreeReady => "WORKTREE_READY",
    WorktreeArchived => "WORKTREE_ARCHIVED",
    WorktreeRemoved => "WORKTREE_REMOVED",
    ArtifactWritten => "ARTIFACT_WRITTEN",
    AarWritten => "AAR_WRITTEN",
    IntegrationReady => "INTEGRATION_READY",
    IntegrationStarted => "INTEGRATION_STARTED",
    IntegrationPassed => "INTEGRATION_PASSED",
    IntegrationFailed => "INTEGRATION_FAILED",
    Integrated => "INTEGRATED",
    EscalationRaised => "ESCALATION_RAISED",
    EscalationAcked => "ESCALATION_ACKED",
    RecoveryRequired => "RECOVERY_REQUIRED",
    RecoveryStarted => "RECOVERY_STARTED",
    RecoveryCompleted => "RECOVERY_COMPLETED",
    PatrolTick => "PATROL_TICK",
    ServiceDegraded => "SERVICE_DEGRADED",
    ServiceRecovered => "SERVICE_RECOVERED",
    PolicyUpdated => "POLICY_UPDATED",
    // Garrison's own: a signed milestone accepted by the ingest endpoint.
    MilestoneReceived => "MILESTONE_RECEIVED",
    // Garrison's own: one step of an outbound milestone delivery (the outbox).
    MilestoneDelivery => "MILESTONE_DELIVERY",
    // Garrison's own: scheduler jobs, one stream `job:<job_id>` per job.
    JobCreated => "JOB_CREATED",
    JobUpdated => "JOB_UPDATED",
    JobDeleted => "JOB_DELETED",
    // A window claimed by compare-and-append, then its run's start and end.
    JobFired => "JOB_FIRED",
    JobRunStarted => "JOB_RUN_STARTED",
    JobRunFinished => "JOB_RUN_FINISHED",
    // A one-shot whose time passed while no scheduler ran: not replayed.
    JobMissed => "JOB_MISSED",
}

/// An event type on the wire: one of the canonical names (the two contract
/// typos are accepted on input but never written, so they are not listed).
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for EventType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(EventType::ALL.iter().map(|t| t.as_str())))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for EventType {}

/// An event type name that is not in the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type `{0}`")]
pub struct UnknownEventType(pub String);

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl EventType {
    /// The order status an order-lifecycle event moves its order to, if any.
    pub fn order_status(self) -> Option<OrderStatus> {
        Some(match self {
            EventType::OrderCreated | EventType::OrderEnqueued | EventType::OrderReissued => {
                OrderStatus::Queued
            }
            EventType::OrderClaimed => OrderStatus::Claimed,
            EventType::OrderStarted => OrderStatus::Running,
            EventType::OrderBlocked => OrderStatus::Blocked,
            EventType::OrderCompleted => OrderStatus::Completed,
            EventType::OrderFailed => OrderStatus::Failed,
            EventType::OrderCancelled => OrderStatus::Cancelled,
            _ => return None,
        })
    }

    /// The run status a run-lifecycle event moves its run to, if any.
    pub fn run_status(self) -> Option<RunStatus> {
        Some(match self {
            EventType::RunCreated => RunStatus::Open,
            EventType::RunCompleted => RunStatus::Complete,
            EventType::RunFailed => RunStatus::Failed,
            EventType::RunCancelled => RunStatus::Cancelled,
            _ => return None,
        })
    }
}

/// `run_status` of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum RunStatus {
    Open,
    Complete,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn is_terminal(self) -> bool {
        !matches!(self, RunStatus::Open)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Open => "OPEN",
            RunStatus::Complete => "COMPLETE",
            RunStatus::Failed => "FAILED",
            RunStatus::Cancelled => "CANCELLED",
        }
    }
}

/// `order_status` of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum OrderStatus {
    Queued,
    Claimed,
    Running,
    Blocked,
    Completed,
    Failed,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::Queued,
        OrderStatus::Claimed,
        OrderStatus::Running,
        OrderStatus::Blocked,
        OrderStatus::Completed,
        OrderStatus::Failed,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Queued => "QUEUED",
            OrderStatus::Claimed => "CLAIMED",
            OrderStatus::Running => "RUNNING",
            OrderStatus::Blocked => "BLOCKED",
            OrderStatus::Completed => "COMPLETED",
            OrderStatus::Failed => "FAILED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    /// The operator-workflow task status this order status maps to.
    pub fn task_status(self) -> TaskStatus {
        match self {
            OrderStatus::Queued => TaskStatus::Todo,
            OrderStatus::Claimed | OrderStatus::Running => TaskStatus::InProgress,
            OrderStatus::Blocked => TaskStatus::Blocked,
            OrderStatus::Completed => TaskStatus::Done,
            OrderStatus::Failed => TaskStatus::Failed,
            OrderStatus::Cancelled => TaskStatus::Canceled,
        }
    }

    /// Whether an order may move from `self` to `to`: the task transition
    /// table applied to the mapped task statuses.
    pub fn can_move_to(self, to: OrderStatus) -> bool {
        self.task_status().can_move_to(to.task_status())
    }
}

/// `severity` of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_typos_are_accepted() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(*t));
        }
        assert_eq!("ORDER CLAIMED".parse(), Ok(EventType::OrderClaimed));
        assert_eq!("WORKTREE_Removed".parse(), Ok(EventType::WorktreeRemoved));
        assert!("ORDER_EXPLODED".parse::<EventType>().is_err());
        assert_eq!(EventType::ALL.len(), 43);
    }

    #[test]
    fn order_transitions_follow_the_task_table() {
        use OrderStatus::*;
        assert!(Queued.can_move_to(Claimed));
        assert!(Claimed.can_move_to(Running));
        assert!(Running.can_move_to(Completed));
        assert!(Blocked.can_move_to(Queued));
        assert!(!Queued.can_move_to(Completed));
        assert!(!Completed.can_move_to(Queued));
        assert!(Completed.can_move_to(Completed));
        assert!(!Failed.can_move_to(Running));
        assert!(!Running.can_move_to(Queued));
    }
}
