//! A job's state, folded from the events of its stream `job:<job_id>`. Pure:
//! the store feeds it records, the runner and the views read it.

use std::collections::VecDeque;

use garrison_contracts::ironclaw::EventType;
use garrison_contracts::openclawssy::{Schedule, SchedulerJob};
use garrison_ledger::Record;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Every event type on a job stream.
pub const JOB_TYPES: [EventType; 7] = [
    EventType::JobCreated,
    EventType::JobUpdated,
    EventType::JobDeleted,
    EventType::JobFired,
    EventType::JobRunStarted,
    EventType::JobRunFinished,
    EventType::JobMissed,
];

/// Fires kept per job for `GET …/fires` (the count covers all of them).
pub const KEEP_FIRES: usize = 50;

/// The stream of one job.
pub fn stream_name(job_id: &str) -> String {
    format!("job:{job_id}")
}

/// The job id of a job stream.
pub fn job_id_of(stream: &str) -> Option<&str> {
    stream.strip_prefix("job:").filter(|id| !id.is_empty())
}

/// `JOB_CREATED` / `JOB_UPDATED`: the whole record after the change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobWritten {
    pub job: SchedulerJob,
}

/// `JOB_FIRED`: window `scheduled_for` claimed as fire number `fire`; the
/// event's `ts` is when it fired.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fired {
    pub job_id: String,
    pub fire: u64,
    pub scheduled_for: Timestamp,
}

/// `JOB_RUN_STARTED`: the fire's run was queued.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunStarted {
    pub job_id: String,
    pub fire: u64,
    pub run_id: String,
}

/// `JOB_RUN_FINISHED`: how the fire ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunFinished {
    pub job_id: String,
    pub fire: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub status: FireStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `JOB_MISSED`: a one-shot whose time passed while no scheduler ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Missed {
    pub job_id: String,
    pub scheduled_for: Timestamp,
}

/// Where one fire is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FireStatus {
    /// Claimed; the run is being started.
    Launching,
    /// The run was queued and has not ended.
    Running,
    Completed,
    Failed,
    /// No run was started.
    LaunchFailed,
    /// The scheduler stopped before the run ended.
    Interrupted,
}

/// One fire of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fire {
    pub fire: u64,
    pub scheduled_for: Timestamp,
    pub fired_at: Timestamp,
    pub run_id: Option<String>,
    pub status: FireStatus,
    pub error: Option<String>,
    pub finished_at: Option<Timestamp>,
}

impl Fire {
    /// `completed`, `failed: reason`, `launch failed: reason`, …
    pub fn outcome(&self) -> String {
        let reason = self.error.as_deref().unwrap_or("no reason given");
        match self.status {
            FireStatus::Launching => "launching".into(),
            FireStatus::Running => "running".into(),
            FireStatus::Completed => "completed".into(),
            FireStatus::Failed => format!("failed: {reason}"),
            FireStatus::LaunchFailed => format!("launch failed: {reason}"),
            FireStatus::Interrupted => format!("interrupted: {reason}"),
        }
    }
}

/// A live (not deleted) job.
#[derive(Debug, Clone)]
pub struct JobState {
    pub job: SchedulerJob,
    pub schedule: Schedule,
    /// When the current schedule started counting: creation, a schedule
    /// change, or re-enabling.
    pub anchor: Timestamp,
    /// Fires since the job was created.
    pub fires: u64,
    /// The latest fires, oldest first, at most [`KEEP_FIRES`].
    pub recent: VecDeque<Fire>,
    /// A one-shot's window was marked missed since the anchor.
    pub missed: Option<Timestamp>,
    /// A one-shot fired since the anchor.
    pub fired_once: bool,
}

impl JobState {
    pub fn last_fire(&self) -> Option<&Fire> {
        self.recent.back()
    }

    /// A one-shot that fired or was missed: nothing more to do.
    pub fn done(&self) -> bool {
        matches!(self.schedule, Schedule::At(_)) && (self.fired_once || self.missed.is_some())
    }
}

/// A job stream as folded so far: its version, and the job unless it does
/// not exist (never created, deleted, or an unreadable creation).
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub version: i64,
    pub job: Option<JobState>,
}

impl Entry {
    /// Folds one record of this stream. Returns false (and changes nothing)
    /// for a record at or below the folded version.
    pub fn apply(&mut self, rec: &Record) -> bool {
        if rec.stream_version <= self.version {
            return false;
        }
        self.version = rec.stream_version;
        let Ok(at) = rec.ts.parse::<Timestamp>() else {
            tracing::warn!(event_id = %rec.event_id, ts = %rec.ts, "job event with an unreadable time");
            return true;
        };
        let folded = match rec.event_type {
            EventType::JobCreated => decode::<JobWritten>(rec).map(|w| self.created(w.job, at)),
            EventType::JobUpdated => decode::<JobWritten>(rec).map(|w| self.updated(w.job, at)),
            EventType::JobDeleted => {
                self.job = None;
                Some(())
            }
            EventType::JobFired => decode::<Fired>(rec).map(|f| self.fired(f, at)),
            EventType::JobRunStarted => decode::<RunStarted>(rec).map(|s| self.run_started(s)),
            EventType::JobRunFinished => {
                decode::<RunFinished>(rec).map(|f| self.run_finished(f, at))
            }
            EventType::JobMissed => decode::<Missed>(rec).map(|m| {
                if let Some(j) = &mut self.job {
                    j.missed = Some(m.scheduled_for);
                }
            }),
            _ => Some(()),
        };
        if folded.is_none() {
            tracing::warn!(
                event_id = %rec.event_id,
                event_type = %rec.event_type,
                "job event with an unreadable payload; ignored"
            );
        }
        true
    }

    fn created(&mut self, job: SchedulerJob, at: Timestamp) {
        self.job = job.validate().ok().map(|schedule| JobState {
            job,
            schedule,
            anchor: at,
            fires: 0,
            recent: VecDeque::new(),
            missed: None,
            fired_once: false,
        });
    }

    fn updated(&mut self, job: SchedulerJob, at: Timestamp) {
        let Ok(schedule) = job.validate() else {
            return;
        };
        let Some(state) = &mut self.job else {
            return;
        };
        let restarted =
            job.schedule.trim() != state.job.schedule.trim() || (job.enabled && !state.job.enabled);
        if restarted {
            state.anchor = at;
            state.missed = None;
            state.fired_once = false;
        }
        state.job = job;
        state.schedule = schedule;
    }

    fn fired(&mut self, f: Fired, at: Timestamp) {
        let Some(state) = &mut self.job else { return };
        state.fires = state.fires.max(f.fire);
        state.fired_once = true;
        state.recent.push_back(Fire {
            fire: f.fire,
            scheduled_for: f.scheduled_for,
            fired_at: at,
            run_id: None,
            status: FireStatus::Launching,
            error: None,
            finished_at: None,
        });
        while state.recent.len() > KEEP_FIRES {
            state.recent.pop_front();
        }
    }

    fn run_started(&mut self, s: RunStarted) {
        if let Some(fire) = self.fire_mut(s.fire)
            && fire.status == FireStatus::Launching
        {
            fire.run_id = Some(s.run_id);
            fire.status = FireStatus::Running;
        }
    }

    fn run_finished(&mut self, f: RunFinished, at: Timestamp) {
        if let Some(fire) = self.fire_mut(f.fire) {
            if f.run_id.is_some() {
                fire.run_id = f.run_id;
            }
            fire.status = f.status;
            fire.error = f.error;
            fire.finished_at = Some(at);
        }
    }

    fn fire_mut(&mut self, n: u64) -> Option<&mut Fire> {
        self.job
            .as_mut()
            .and_then(|j| j.recent.iter_mut().rev().find(|f| f.fire == n))
    }
}

fn decode<T: serde::de::DeserializeOwned>(rec: &Record) -> Option<T> {
    serde_json::from_value(rec.payload.clone()).ok()
}
