//! Jobs and fires as the API shows them: the contract's record plus what
//! makes a job that does not fire obvious (its next run, its last fire and
//! how that ended).

use garrison_contracts::openclawssy::SchedulerJob;
use garrison_ledger::format_ts;
use serde::Serialize;

use super::schedule::next_run_at;
use super::state::{Fire, JobState};

/// A job: the §4 record plus scheduling state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobView {
    #[serde(flatten)]
    pub job: SchedulerJob,
    /// When it fires next; `null` when disabled or done.
    pub next_run_at: Option<String>,
    pub last_fired_at: Option<String>,
    /// The run the last fire started (`null` if it started none).
    pub last_run_id: Option<String>,
    /// `completed`, `failed: reason`, `launch failed: reason`, `running`,
    /// `launching`, `interrupted: reason`, or `missed` (a one-shot).
    pub last_outcome: Option<String>,
    /// Fires since the job was created.
    pub fires: u64,
    /// `scheduled`, `disabled`, `done` (a one-shot that fired) or `missed`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub state: &'static str,
}

impl JobView {
    pub fn of(s: &JobState) -> JobView {
        let last = s.last_fire();
        let state = if !s.job.enabled {
            "disabled"
        } else if s.missed.is_some() && !s.fired_once {
            "missed"
        } else if s.done() {
            "done"
        } else {
            "scheduled"
        };
        // The newest of a missed mark and the last fire speaks for the job.
        let missed_last = s.missed.is_some() && !s.fired_once;
        JobView {
            job: s.job.clone(),
            next_run_at: next_run_at(s).map(format_ts),
            last_fired_at: last.map(|f| format_ts(f.fired_at)),
            last_run_id: last.and_then(|f| f.run_id.clone()),
            last_outcome: if missed_last {
                Some("missed".into())
            } else {
                last.map(Fire::outcome)
            },
            fires: s.fires,
            state,
        }
    }
}

/// One fire of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FireView {
    pub fire: u64,
    pub scheduled_for: String,
    pub fired_at: String,
    pub run_id: Option<String>,
    pub outcome: String,
    pub finished_at: Option<String>,
}

impl FireView {
    pub fn of(f: &Fire) -> FireView {
        FireView {
            fire: f.fire,
            scheduled_for: format_ts(f.scheduled_for),
            fired_at: format_ts(f.fired_at),
            run_id: f.run_id.clone(),
            outcome: f.outcome(),
            finished_at: f.finished_at.map(format_ts),
        }
    }
}
