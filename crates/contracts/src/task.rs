//! The operator-workflow task state machine (docs/interface.md "Validators").

use serde::{Deserialize, Serialize};

/// A task's `status` in the ledger / ledger_delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Todo,
    InProgress,
    Blocked,
    Done,
    Failed,
    Canceled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 6] = [
        TaskStatus::Todo,
        TaskStatus::InProgress,
        TaskStatus::Blocked,
        TaskStatus::Done,
        TaskStatus::Failed,
        TaskStatus::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Todo => "todo",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Blocked => "blocked",
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
            TaskStatus::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<TaskStatus> {
        TaskStatus::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Done | TaskStatus::Failed | TaskStatus::Canceled
        )
    }

    /// The transition table. Any state may re-assert itself (an idempotent
    /// write); terminal states may do nothing else.
    pub fn can_move_to(self, to: TaskStatus) -> bool {
        use TaskStatus::*;
        if self == to {
            return true;
        }
        match self {
            Todo => matches!(to, InProgress | Blocked | Failed | Canceled),
            InProgress => matches!(to, Done | Blocked | Failed | Canceled),
            Blocked => matches!(to, Todo | InProgress | Failed | Canceled),
            Done | Failed | Canceled => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TaskStatus::{self, *};

    #[test]
    fn table_is_exactly_the_design() {
        let allowed = [
            (Todo, InProgress),
            (Todo, Blocked),
            (Todo, Failed),
            (Todo, Canceled),
            (InProgress, Done),
            (InProgress, Blocked),
            (InProgress, Failed),
            (InProgress, Canceled),
            (Blocked, Todo),
            (Blocked, InProgress),
            (Blocked, Failed),
            (Blocked, Canceled),
        ];
        for from in TaskStatus::ALL {
            for to in TaskStatus::ALL {
                let expect = from == to || allowed.contains(&(from, to));
                assert_eq!(from.can_move_to(to), expect, "{from:?} -> {to:?}");
            }
        }
    }
}
