//! What ingest needs to know about the stored lines, kept in memory per
//! state dir: envelope ids, event ids and the feedback ids of projections,
//! each mapped to where its line sits.
//!
//! The JSONL files are append-only, so the index catches up by reading only
//! what was appended since it last looked (by this process or another one);
//! a file that was replaced or got shorter is read again from its start.
//! Without it every ingest parsed the state dir's whole history, so a
//! long-lived server's run envelopes cost more with every run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde_json::Value;

use super::Error;
use super::projection::ProjectedFeedbackRecord;
use super::store::{FileId, Position, Span, Store};

/// The stored lines' ids of one state dir, as of its last [`Index::refresh`].
#[derive(Debug, Default)]
pub(crate) struct Index {
    envelopes: Followed,
    projected: Followed,
    /// First stored envelope with each `envelope_id`.
    pub by_envelope: HashMap<String, Span>,
    /// First stored envelope with each `event.event_id`.
    pub by_event: HashMap<String, Span>,
    /// First projected record with each `feedback_id`.
    pub by_feedback: HashMap<String, Span>,
}

/// How far one file has been read, and which file that was.
#[derive(Debug, Default)]
struct Followed {
    file: Option<FileId>,
    at: Position,
}

impl Followed {
    /// Whether what was read is still the start of the file now at the path.
    fn holds(&self, now: Option<(FileId, u64)>) -> bool {
        match (self.file, now) {
            (None, _) => self.at == Position::default(),
            (Some(id), Some((now_id, len))) => id == now_id && len >= self.at.offset,
            (Some(_), None) => false,
        }
    }
}

/// The index of the state dir at `dir`, shared by every [`Store`] of it in
/// this process.
pub(crate) fn of_dir(dir: &Path) -> Arc<Mutex<Index>> {
    static INDEXES: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<Index>>>>> = OnceLock::new();
    let all = INDEXES.get_or_init(Mutex::default);
    // A poisoned map or index is still whole: every change is one insert,
    // and `refresh` re-validates against the files.
    let mut all = all.lock().unwrap_or_else(PoisonError::into_inner);
    all.entry(dir.to_path_buf()).or_default().clone()
}

impl Index {
    /// Reads what was appended to the store's files since the last call and
    /// returns the torn-line warnings of this read. Call it under the store
    /// lock, so no other process appends meanwhile.
    pub(crate) fn refresh(&mut self, store: &Store) -> Result<Vec<String>, Error> {
        let env_path = store.envelopes_path();
        let proj_path = store.projected_path();
        let env_now = FileId::of(&env_path)?;
        let proj_now = FileId::of(&proj_path)?;
        if !self.envelopes.holds(env_now) || !self.projected.holds(proj_now) {
            *self = Index::default();
        }
        // Spans are only ever inserted first-wins, so a read that fails
        // half-way and is repeated later leaves the same index.
        let (by_envelope, by_event) = (&mut self.by_envelope, &mut self.by_event);
        let (at, mut warnings) = store.read_since(&env_path, self.envelopes.at, |span, v| {
            if let Some(id) = v.get("envelope_id").and_then(Value::as_str) {
                by_envelope.entry(id.to_string()).or_insert(span);
            }
            if let Some(id) = v.pointer("/event/event_id").and_then(Value::as_str) {
                by_event.entry(id.to_string()).or_insert(span);
            }
        })?;
        self.envelopes = Followed {
            file: env_now.map(|(id, _)| id),
            at,
        };
        let by_feedback = &mut self.by_feedback;
        let (at, more) = store.read_since(&proj_path, self.projected.at, |span, v| {
            if let Ok(r) = serde_json::from_value::<ProjectedFeedbackRecord>(v) {
                by_feedback.entry(r.feedback_id).or_insert(span);
            }
        })?;
        self.projected = Followed {
            file: proj_now.map(|(id, _)| id),
            at,
        };
        warnings.extend(more);
        Ok(warnings)
    }
}
