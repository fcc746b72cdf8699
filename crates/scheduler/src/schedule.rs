//! When a job runs next, and what the runner does about it now. Pure.
//!
//! Parsing lives with the contract ([`Schedule`]'s `FromStr`: `@every` with
//! Go's `time.ParseDuration`, RFC3339 one-shots, cron refused). Here:
//! - `@every d`: next = (last fire, or the anchor if later) + d. The anchor
//!   is when the schedule started counting (creation, a schedule change,
//!   re-enabling). Missed windows are not replayed: after downtime an
//!   overdue job fires once, and the next time counts from that fire.
//! - one-shot `T`: fires once at `T`. If `T` passed more than
//!   [`MISSED_GRACE`] before the scheduler started (or before the schedule
//!   was written), it is marked missed instead and never fires.
//! - disabled or deleted jobs never fire.

use std::time::Duration;

use garrison_contracts::openclawssy::Schedule;
use jiff::{SignedDuration, Timestamp};

use super::state::JobState;

/// How late a one-shot may be caught up: a node restarting within this of
/// the time still fires it, and a second node that starts just after the
/// time does not mark missed what the first is about to fire.
pub const MISSED_GRACE: Duration = Duration::from_secs(60);

/// The next time the job fires; `None` when it never will (disabled, a
/// one-shot that is done, or past the end of time).
pub fn next_run_at(state: &JobState) -> Option<Timestamp> {
    if !state.job.enabled || state.done() {
        return None;
    }
    match state.schedule {
        Schedule::Every(every) => {
            let from = match state.last_fire() {
                Some(f) if f.fired_at > state.anchor => f.fired_at,
                _ => state.anchor,
            };
            plus(from, every)
        }
        Schedule::At(at) => Some(at),
    }
}

/// What a runner does about a job at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing, ever (until the job changes).
    Idle,
    /// Nothing until this time.
    WaitUntil(Timestamp),
    /// Claim and run the window that was due at `scheduled_for`.
    Fire { scheduled_for: Timestamp },
    /// Mark the one-shot at `scheduled_for` missed.
    Miss { scheduled_for: Timestamp },
}

/// The decision for `state` at `now`, by a runner that started at `started`.
pub fn decide(state: &JobState, now: Timestamp, started: Timestamp) -> Decision {
    let Some(next) = next_run_at(state) else {
        return Decision::Idle;
    };
    if next > now {
        return Decision::WaitUntil(next);
    }
    match state.schedule {
        Schedule::Every(_) => Decision::Fire {
            scheduled_for: next,
        },
        Schedule::At(at) => {
            let watched_since = state.anchor.max(started);
            match minus(watched_since, MISSED_GRACE) {
                Some(cutoff) if at < cutoff => Decision::Miss { scheduled_for: at },
                _ => Decision::Fire { scheduled_for: at },
            }
        }
    }
}

fn plus(t: Timestamp, d: Duration) -> Option<Timestamp> {
    t.checked_add(SignedDuration::try_from(d).ok()?).ok()
}

fn minus(t: Timestamp, d: Duration) -> Option<Timestamp> {
    t.checked_sub(SignedDuration::try_from(d).ok()?).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::VecDeque;

    use garrison_contracts::openclawssy::{JobMode, SchedulerJob};

    use super::super::state::{Fire, FireStatus};
    use super::*;
    use garrison_contracts::openclawssy::CRON_UNSUPPORTED;

    fn parse(schedule: &str) -> Result<Schedule, String> {
        schedule.parse::<Schedule>().map_err(|e| e.reason)
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn state(schedule: &str, anchor: &str) -> JobState {
        let job = SchedulerJob {
            job_id: "j".into(),
            agent_id: "a".into(),
            schedule: schedule.into(),
            message: "m".into(),
            mode: JobMode::Isolated,
            notify: None,
            enabled: true,
            timezone: None,
            created_at: None,
            updated_at: None,
        };
        JobState {
            schedule: job.validate().unwrap(),
            job,
            anchor: t(anchor),
            fires: 0,
            recent: VecDeque::new(),
            missed: None,
            fired_once: false,
        }
    }

    fn fired(s: &mut JobState, at: &str) {
        s.fires += 1;
        s.fired_once = true;
        s.recent.push_back(Fire {
            fire: s.fires,
            scheduled_for: t(at),
            fired_at: t(at),
            run_id: None,
            status: FireStatus::Completed,
            error: None,
            finished_at: None,
        });
    }

    #[test]
    fn every_counts_from_the_anchor_then_from_the_last_fire() {
        let mut s = state("@every 30m", "2026-03-01T10:00:00Z");
        assert_eq!(next_run_at(&s), Some(t("2026-03-01T10:30:00Z")));
        let started = t("2026-03-01T10:00:00Z");
        assert_eq!(
            decide(&s, t("2026-03-01T10:29:59Z"), started),
            Decision::WaitUntil(t("2026-03-01T10:30:00Z"))
        );
        assert_eq!(
            decide(&s, t("2026-03-01T10:30:00Z"), started),
            Decision::Fire {
                scheduled_for: t("2026-03-01T10:30:00Z")
            }
        );
        // Fired two seconds late: the next window counts from the fire.
        fired(&mut s, "2026-03-01T10:30:02Z");
        assert_eq!(next_run_at(&s), Some(t("2026-03-01T11:00:02Z")));
        // A schedule change after the fire moves the anchor past it.
        s.anchor = t("2026-03-01T10:45:00Z");
        assert_eq!(next_run_at(&s), Some(t("2026-03-01T11:15:00Z")));
    }

    #[test]
    fn downtime_fires_once_and_counts_on_from_now() {
        let mut s = state("@every 1h", "2026-03-01T00:00:00Z");
        fired(&mut s, "2026-03-01T01:00:00Z");
        // Down from 01:30 to 09:17: seven windows passed; one fire, now.
        let now = t("2026-03-01T09:17:00Z");
        assert_eq!(
            decide(&s, now, now),
            Decision::Fire {
                scheduled_for: t("2026-03-01T02:00:00Z")
            }
        );
        fired(&mut s, "2026-03-01T09:17:00Z");
        assert_eq!(
            decide(&s, now, now),
            Decision::WaitUntil(t("2026-03-01T10:17:00Z"))
        );
    }

    #[test]
    fn one_shots_fire_once_or_are_missed() {
        let s = state("2026-03-01T12:00:00Z", "2026-03-01T08:00:00Z");
        let up_since = t("2026-03-01T09:00:00Z");
        assert_eq!(
            decide(&s, t("2026-03-01T11:00:00Z"), up_since),
            Decision::WaitUntil(t("2026-03-01T12:00:00Z"))
        );
        assert_eq!(
            decide(&s, t("2026-03-01T12:00:01Z"), up_since),
            Decision::Fire {
                scheduled_for: t("2026-03-01T12:00:00Z")
            }
        );
        // A scheduler that started after the time (beyond the grace): missed.
        let late = t("2026-03-01T12:05:00Z");
        assert_eq!(
            decide(&s, late, late),
            Decision::Miss {
                scheduled_for: t("2026-03-01T12:00:00Z")
            }
        );
        // Within the grace it still fires.
        let soon = t("2026-03-01T12:00:30Z");
        assert!(matches!(decide(&s, soon, soon), Decision::Fire { .. }));
        // Written with a time already long past: missed, not fired.
        let past = state("2026-03-01T12:00:00Z", "2026-03-01T13:00:00Z");
        assert!(matches!(
            decide(&past, t("2026-03-01T13:00:00Z"), up_since),
            Decision::Miss { .. }
        ));
        let mut done = s.clone();
        done.fired_once = true;
        assert_eq!(next_run_at(&done), None);
        assert_eq!(decide(&done, late, up_since), Decision::Idle);
        let mut missed = s;
        missed.missed = Some(t("2026-03-01T12:00:00Z"));
        assert_eq!(decide(&missed, late, up_since), Decision::Idle);
    }

    #[test]
    fn disabled_jobs_never_fire() {
        let mut s = state("@every 1s", "2026-03-01T00:00:00Z");
        s.job.enabled = false;
        assert_eq!(next_run_at(&s), None);
        let now = t("2027-01-01T00:00:00Z");
        assert_eq!(decide(&s, now, now), Decision::Idle);
    }

    #[test]
    fn parse_passes_the_contract_reasons_through() {
        assert_eq!(
            parse("@every 90s"),
            Ok(Schedule::Every(Duration::from_secs(90)))
        );
        assert!(parse("0 * * * *").unwrap_err().contains(CRON_UNSUPPORTED));
        assert!(parse("@every 0s").unwrap_err().contains("positive"));
    }
}
