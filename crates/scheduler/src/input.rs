//! What callers send to create, replace or change a job, and how it becomes
//! a contract record. The read-only fields of a job view are accepted and
//! ignored, so a fetched job can be edited and sent back as it is.

use garrison_contracts::openclawssy::{JobMode, JobNotify, SchedulerJob};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::SchedulerError;

/// A job as a caller sends it: every field optional here, required ones
/// checked by the operation (create and replace need the contract's required
/// fields; a patch needs none). Unknown fields are refused, except a job
/// view's read-only fields (`created_at`, `updated_at`, `next_run_at`,
/// `last_fired_at`, `last_run_id`, `last_outcome`, `fires`, `state`), which
/// are accepted and ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<JobMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<JobNotify>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Set by the scheduler; a sent value is ignored.
    #[serde(default, skip_serializing)]
    pub created_at: Option<IgnoredAny>,
    /// Set by the scheduler; a sent value is ignored.
    #[serde(default, skip_serializing)]
    pub updated_at: Option<IgnoredAny>,
    // The read-only fields of a job view: accepted, ignored.
    #[serde(default, skip_serializing)]
    pub next_run_at: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub last_fired_at: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub last_run_id: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub last_outcome: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub fires: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub state: Option<IgnoredAny>,
}

fn required<T>(field: &str, v: Option<T>) -> Result<T, SchedulerError> {
    v.ok_or_else(|| SchedulerError::Invalid(format!("{field} is required")))
}

impl JobInput {
    /// The record for a new job; the contract's required fields must be set.
    pub fn into_new(self) -> Result<SchedulerJob, SchedulerError> {
        let job_id = required("job_id", self.job_id.clone())?;
        self.into_record(job_id)
    }

    /// The record replacing job `job_id`: as for a new job, except that
    /// `job_id` may be left out (a different one is refused).
    pub fn into_replacement(self, job_id: &str) -> Result<SchedulerJob, SchedulerError> {
        self.same_id(job_id)?;
        self.into_record(job_id.to_string())
    }

    /// `current` with every field this input sets changed.
    pub fn patch(self, current: &SchedulerJob) -> Result<SchedulerJob, SchedulerError> {
        self.same_id(&current.job_id)?;
        let mut job = current.clone();
        if let Some(v) = self.agent_id {
            job.agent_id = v;
        }
        if let Some(v) = self.schedule {
            job.schedule = v;
        }
        if let Some(v) = self.message {
            job.message = v;
        }
        if let Some(v) = self.mode {
            job.mode = v;
        }
        if let Some(v) = self.notify {
            job.notify = Some(v);
        }
        if let Some(v) = self.enabled {
            job.enabled = v;
        }
        if let Some(v) = self.timezone {
            job.timezone = Some(v);
        }
        Ok(job)
    }

    fn same_id(&self, job_id: &str) -> Result<(), SchedulerError> {
        match self.job_id.as_deref() {
            Some(id) if id != job_id => Err(SchedulerError::Invalid(format!(
                "job_id `{id}` in the body does not match `{job_id}` in the path"
            ))),
            _ => Ok(()),
        }
    }

    fn into_record(self, job_id: String) -> Result<SchedulerJob, SchedulerError> {
        Ok(SchedulerJob {
            job_id,
            agent_id: required("agent_id", self.agent_id)?,
            schedule: required("schedule", self.schedule)?,
            message: required("message", self.message)?,
            mode: required("mode", self.mode)?,
            notify: self.notify,
            enabled: required("enabled", self.enabled)?,
            timezone: self.timezone,
            created_at: None,
            updated_at: None,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn input(v: serde_json::Value) -> JobInput {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn required_fields_are_named() {
        let full = json!({"job_id": "j", "agent_id": "a", "schedule": "@every 1h",
            "message": "m", "mode": "isolated", "enabled": true});
        assert_eq!(input(full.clone()).into_new().unwrap().job_id, "j");
        for field in [
            "job_id", "agent_id", "schedule", "message", "mode", "enabled",
        ] {
            let mut v = full.clone();
            v.as_object_mut().unwrap().remove(field);
            let e = input(v).into_new().unwrap_err();
            assert_eq!(e.to_string(), format!("{field} is required"));
        }
    }

    #[test]
    fn unknown_fields_are_refused_and_view_fields_ignored() {
        let e = serde_json::from_value::<JobInput>(json!({"schedul": "@every 1h"})).unwrap_err();
        assert!(e.to_string().contains("unknown field `schedul`"), "{e}");
        let back = input(
            json!({"job_id": "j", "agent_id": "a", "schedule": "@every 1h",
            "message": "m", "mode": "isolated", "enabled": true, "next_run_at": null,
            "fires": 3, "last_outcome": "completed", "state": "scheduled",
            "created_at": "2026-01-01T00:00:00Z"}),
        );
        assert!(back.into_replacement("j").is_ok());
    }

    #[test]
    fn patches_and_replacements_keep_the_path_id() {
        let current = input(
            json!({"job_id": "j", "agent_id": "a", "schedule": "@every 1h",
            "message": "m", "mode": "isolated", "enabled": true}),
        )
        .into_new()
        .unwrap();
        let patched = input(json!({"enabled": false, "message": "n"}))
            .patch(&current)
            .unwrap();
        assert!(!patched.enabled);
        assert_eq!(patched.message, "n");
        assert_eq!(patched.schedule, "@every 1h");
        let e = input(json!({"job_id": "other"}))
            .patch(&current)
            .unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
        let e = input(json!({"agent_id": "a"}))
            .into_replacement("j")
            .unwrap_err();
        assert_eq!(e.to_string(), "schedule is required");
    }
}
