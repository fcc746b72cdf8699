//! Jobs persisted as ledger events, one stream `job:<job_id>` per job.
//!
//! The ledger is the truth; this store keeps a cache folded from the job
//! events and brings it up to the ledger's head before every answer and
//! every decision, so any number of nodes over one ledger agree. Every write
//! is a compare-and-append on the job's stream at the version the cache
//! folded: a create or update that raced another write is re-applied to
//! the fresh state; a fire that raced is simply not this node's.

use std::collections::BTreeMap;
use std::sync::Arc;

use garrison_contracts::ironclaw::EventType;
use garrison_contracts::openclawssy::SchedulerJob;
use garrison_ledger::{Ledger, LedgerError, NewEvent, Query, Record, format_ts};
use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::Mutex;

use super::SchedulerError;
use super::clock::Clock;
use super::state::{Entry, JOB_TYPES, JobState, JobWritten, job_id_of, stream_name};
use super::view::{FireView, JobView};

const PAGE: i64 = 1000;
/// Attempts of a create/update/delete against concurrent writers.
const ATTEMPTS: u32 = 16;

/// The jobs of one ledger.
pub struct JobStore {
    ledger: Arc<dyn Ledger>,
    clock: Arc<dyn Clock>,
    cache: Mutex<Cache>,
}

#[derive(Default)]
pub(crate) struct Cache {
    /// Every job event with `seq <= seen` is folded.
    seen: i64,
    pub(crate) entries: BTreeMap<String, Entry>,
}

/// A write's outcome as the caller of [`JobStore::append_at`] sees it.
pub(crate) enum Appended {
    Stored,
    /// The stream moved past the expected version.
    Lost,
}

impl JobStore {
    pub fn new(ledger: Arc<dyn Ledger>, clock: Arc<dyn Clock>) -> JobStore {
        JobStore {
            ledger,
            clock,
            cache: Mutex::new(Cache::default()),
        }
    }

    pub(crate) fn ledger(&self) -> &Arc<dyn Ledger> {
        &self.ledger
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Folds every job event up to the ledger's head into the cache.
    pub async fn refresh(&self) -> Result<(), LedgerError> {
        let mut cache = self.cache.lock().await;
        self.refresh_locked(&mut cache).await
    }

    async fn refresh_locked(&self, cache: &mut Cache) -> Result<(), LedgerError> {
        // Everything at or below the head has committed, so reading each
        // job type up to it misses nothing that a later read could add.
        let head = self.ledger.head().await?;
        if head <= cache.seen {
            return Ok(());
        }
        let mut records = Vec::new();
        for t in JOB_TYPES {
            let mut after = cache.seen;
            loop {
                let page = self
                    .ledger
                    .read(&Query {
                        event_type: Some(t),
                        after_seq: Some(after),
                        limit: Some(PAGE),
                        ..Query::default()
                    })
                    .await?;
                let full = page.len() >= usize::try_from(PAGE).unwrap_or(usize::MAX);
                let Some(last) = page.last().map(|r| r.seq) else {
                    break;
                };
                after = last;
                records.extend(page.into_iter().filter(|r| r.seq <= head));
                if !full || last >= head {
                    break;
                }
            }
        }
        records.sort_by_key(|r| r.seq);
        for rec in &records {
            if let Some(id) = job_id_of(&rec.stream) {
                cache.entries.entry(id.to_string()).or_default().apply(rec);
            }
        }
        cache.seen = head;
        Ok(())
    }

    /// Every job, by id.
    pub async fn list(&self) -> Result<Vec<JobView>, SchedulerError> {
        self.read(|c| {
            c.entries
                .values()
                .filter_map(|e| e.job.as_ref())
                .map(JobView::of)
                .collect()
        })
        .await
    }

    pub async fn get(&self, job_id: &str) -> Result<JobView, SchedulerError> {
        self.read(|c| live(c, job_id).map(JobView::of))
            .await?
            .ok_or_else(|| SchedulerError::NotFound(job_id.to_string()))
    }

    /// Up to `limit` of the job's latest fires, newest first.
    pub async fn fires(&self, job_id: &str, limit: usize) -> Result<Vec<FireView>, SchedulerError> {
        self.read(|c| {
            live(c, job_id).map(|s| {
                s.recent
                    .iter()
                    .rev()
                    .take(limit)
                    .map(FireView::of)
                    .collect()
            })
        })
        .await?
        .ok_or_else(|| SchedulerError::NotFound(job_id.to_string()))
    }

    /// Calls `f` with the cache brought up to the ledger's head.
    pub(crate) async fn read<R>(&self, f: impl FnOnce(&Cache) -> R) -> Result<R, SchedulerError> {
        let mut cache = self.cache.lock().await;
        self.refresh_locked(&mut cache).await?;
        Ok(f(&cache))
    }

    /// Stores a new job. An existing id is [`SchedulerError::Exists`]; a
    /// deleted job's id may be used again.
    pub async fn create(&self, job: SchedulerJob) -> Result<JobView, SchedulerError> {
        let id = job.job_id.clone();
        job.validate()
            .map_err(|e| SchedulerError::Invalid(e.reason))?;
        self.write(&id, |current, now| {
            if current.is_some() {
                return Err(SchedulerError::Exists(id.clone()));
            }
            let mut job = job.clone();
            job.created_at = Some(format_ts(now));
            job.updated_at = job.created_at.clone();
            Ok((EventType::JobCreated, written(job)?))
        })
        .await?
        .ok_or_else(|| SchedulerError::NotFound(id.clone()))
    }

    /// Changes a job: `change` gets the current record and returns the new
    /// one (applied again to fresh state if another write came first).
    pub async fn update(
        &self,
        job_id: &str,
        change: impl Fn(&SchedulerJob) -> Result<SchedulerJob, SchedulerError>,
    ) -> Result<JobView, SchedulerError> {
        self.write(job_id, |current, now| {
            let Some(current) = current else {
                return Err(SchedulerError::NotFound(job_id.to_string()));
            };
            let mut job = change(&current.job)?;
            job.job_id = current.job.job_id.clone();
            job.created_at = current.job.created_at.clone();
            job.updated_at = Some(format_ts(now));
            job.validate()
                .map_err(|e| SchedulerError::Invalid(e.reason))?;
            Ok((EventType::JobUpdated, written(job)?))
        })
        .await?
        .ok_or_else(|| SchedulerError::NotFound(job_id.to_string()))
    }

    /// Deletes a job; its fires stay in the ledger.
    pub async fn delete(&self, job_id: &str) -> Result<(), SchedulerError> {
        let payload = serde_json::json!({ "job_id": job_id });
        self.write(job_id, |current, _| match current {
            Some(_) => Ok((EventType::JobDeleted, payload.clone())),
            None => Err(SchedulerError::NotFound(job_id.to_string())),
        })
        .await
        .map(|_| ())
    }

    /// Appends what `decide` returns for the job's current state at its
    /// stream version, retrying on fresh state when another write won.
    async fn write(
        &self,
        job_id: &str,
        decide: impl Fn(
            Option<&JobState>,
            Timestamp,
        ) -> Result<(EventType, serde_json::Value), SchedulerError>,
    ) -> Result<Option<JobView>, SchedulerError> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                // Jittered backoff, so two writers in step fall out of it.
                let cap = 1u64 << attempt.min(6);
                let wait = rand::Rng::random_range(&mut rand::rng(), 1..=cap);
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            }
            let now = self.clock.now();
            let (version, event_type, payload) = {
                let mut cache = self.cache.lock().await;
                self.refresh_locked(&mut cache).await?;
                let entry = cache.entries.get(job_id);
                let (t, p) = decide(entry.and_then(|e| e.job.as_ref()), now)?;
                (entry.map_or(0, |e| e.version), t, p)
            };
            match self
                .append_at(job_id, version, event_type, payload, now)
                .await?
            {
                Appended::Stored => {
                    return self.read(|c| live(c, job_id).map(JobView::of)).await;
                }
                Appended::Lost => continue,
            }
        }
        Err(SchedulerError::Contended(job_id.to_string()))
    }

    /// Compare-and-append of one event on the job's stream at `expected`.
    /// A stored event is folded into the cache at once.
    pub(crate) async fn append_at(
        &self,
        job_id: &str,
        expected: i64,
        event_type: EventType,
        payload: serde_json::Value,
        now: Timestamp,
    ) -> Result<Appended, SchedulerError> {
        let event = NewEvent::new(event_type)
            .in_stream(stream_name(job_id))
            .expect_version(expected)
            .payload(payload);
        let event = NewEvent {
            ts: Some(format_ts(now)),
            ..event
        };
        match self.ledger.append(event).await {
            Ok(a) => {
                self.fold(&a.record).await;
                Ok(Appended::Stored)
            }
            Err(LedgerError::ConcurrencyConflict { actual, .. }) => {
                // Catch up; versions the job types do not explain were made
                // by events of other types on this stream: step over them.
                let mut cache = self.cache.lock().await;
                self.refresh_locked(&mut cache).await?;
                let entry = cache.entries.entry(job_id.to_string()).or_default();
                entry.version = entry.version.max(actual);
                Ok(Appended::Lost)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Appends one event on the job's stream without a version check (a
    /// fire's run starting or ending: facts, not claims).
    pub(crate) async fn record(
        &self,
        job_id: &str,
        event_type: EventType,
        payload: &impl Serialize,
    ) -> Result<(), SchedulerError> {
        let payload = serde_json::to_value(payload)
            .map_err(|e| SchedulerError::Invalid(format!("cannot encode a job event: {e}")))?;
        let event = NewEvent::new(event_type)
            .in_stream(stream_name(job_id))
            .payload(payload);
        let event = NewEvent {
            ts: Some(format_ts(self.clock.now())),
            ..event
        };
        let a = self.ledger.append(event).await?;
        self.fold(&a.record).await;
        Ok(())
    }

    /// Folds a record this store appended, if it is the next of its stream
    /// (otherwise the next refresh reads it in order).
    async fn fold(&self, rec: &Record) {
        let mut cache = self.cache.lock().await;
        if let Some(id) = job_id_of(&rec.stream) {
            let entry = cache.entries.entry(id.to_string()).or_default();
            if rec.stream_version == entry.version + 1 {
                entry.apply(rec);
            }
        }
    }
}

fn live<'c>(c: &'c Cache, job_id: &str) -> Option<&'c JobState> {
    c.entries.get(job_id).and_then(|e| e.job.as_ref())
}

fn written(job: SchedulerJob) -> Result<serde_json::Value, SchedulerError> {
    serde_json::to_value(JobWritten { job })
        .map_err(|e| SchedulerError::Invalid(format!("cannot encode the job: {e}")))
}
