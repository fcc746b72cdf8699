//! `ingest`: validate a whole payload, then store new envelopes and project
//! their feedback. Duplicates (by `envelope_id` or `event_id`) are skipped.

use std::collections::{HashMap, HashSet};
use std::sync::PoisonError;

use garrison_contracts::appleseed::{RuntimeEventEnvelope, RuntimePayload};
use serde::Serialize;
use serde_json::{Map, Value};

use super::projection::{ProjectedFeedbackRecord, feedback_id, project};
use super::store::Span;
use super::{Appleseed, Error};

/// Key order of a stored envelope and event, as in the contract's example.
const ENVELOPE_KEYS: &[&str] = &[
    "contract_name",
    "contract_version",
    "envelope_id",
    "recorded_at",
    "source",
    "metadata",
    "event",
];
const EVENT_KEYS: &[&str] = &[
    "schema_version",
    "event_id",
    "event_kind",
    "occurred_at",
    "session_id",
    "task",
];

/// An input envelope that was already stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub envelope_id: String,
    pub event_id: String,
    /// `duplicate envelope_id` or `duplicate event_id`.
    pub reason: String,
}

/// What one ingest did.
#[derive(Debug, Default)]
pub struct IngestOutcome {
    /// Envelopes appended by this call.
    pub stored: Vec<Value>,
    pub skipped: Vec<Skipped>,
    /// Projected records appended by this call.
    pub projected: Vec<ProjectedFeedbackRecord>,
    /// The stored form of every input envelope (new or earlier), input order.
    pub envelopes: Vec<Value>,
    /// The projections of `envelopes` (new or earlier).
    pub projections: Vec<ProjectedFeedbackRecord>,
    /// Torn-line notices from reading the ledgers.
    pub warnings: Vec<String>,
}

impl IngestOutcome {
    /// What an ingest stored, skipped and projected, by id: the shape both
    /// `garrison appleseed ingest --format json` and the HTTP route answer.
    pub fn summary(&self) -> Value {
        serde_json::json!({
            "stored": self.stored.iter().map(|e| serde_json::json!({
                "envelope_id": e.get("envelope_id"),
                "event_id": e.pointer("/event/event_id"),
                "event_kind": e.pointer("/event/event_kind"),
            })).collect::<Vec<_>>(),
            "skipped": self.skipped,
            "projected_feedback_ids":
                self.projected.iter().map(|r| &r.feedback_id).collect::<Vec<_>>(),
            "warnings": self.warnings,
        })
    }
}

fn absent(m: &Map<String, Value>, key: &str) -> bool {
    m.get(key).is_none_or(Value::is_null)
}

/// Puts generated `fill` values into `m`, keeping its own keys in their order
/// and each generated key at its place in `order`.
fn complete(
    m: &Map<String, Value>,
    order: &[&str],
    fill: Vec<(&str, Value)>,
) -> Map<String, Value> {
    let rank = |k: &str| order.iter().position(|o| *o == k).unwrap_or(order.len());
    let mut pending: Vec<(&str, Value)> = fill.into_iter().filter(|(k, _)| absent(m, k)).collect();
    let mut out = Map::new();
    for (k, v) in m {
        while let Some(pos) = pending.iter().position(|(pk, _)| rank(pk) < rank(k)) {
            let (pk, pv) = pending.remove(pos);
            out.insert(pk.to_string(), pv);
        }
        if v.is_null()
            && let Some(pos) = pending.iter().position(|(pk, _)| pk == k)
        {
            let (pk, pv) = pending.remove(pos);
            out.insert(pk.to_string(), pv);
            continue;
        }
        out.insert(k.clone(), v.clone());
    }
    for (pk, pv) in pending {
        out.insert(pk.to_string(), pv);
    }
    out
}

impl Appleseed {
    /// Fills what the runtime may omit: `envelope_id`, `recorded_at`,
    /// `event_id`, `occurred_at`.
    fn complete_envelope(&self, env: &Map<String, Value>) -> Value {
        let mut out = complete(
            env,
            ENVELOPE_KEYS,
            vec![
                ("envelope_id", Value::String(self.clock.fresh_id())),
                ("recorded_at", Value::String(self.clock.now_string())),
            ],
        );
        if let Some(Value::Object(ev)) = env.get("event") {
            let ev = complete(
                ev,
                EVENT_KEYS,
                vec![
                    ("event_id", Value::String(self.clock.fresh_id())),
                    ("occurred_at", Value::String(self.clock.now_string())),
                ],
            );
            out.insert("event".into(), Value::Object(ev));
        }
        Value::Object(out)
    }

    /// Validates the whole payload (envelope, list or batch) and returns the
    /// envelopes to store, one per event. Writes nothing.
    pub fn prepare_payload(&self, payload: &Value) -> Result<Vec<Value>, Error> {
        RuntimePayload::from_value(payload)?;
        let out = match payload {
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_object)
                .map(|m| self.complete_envelope(m))
                .collect(),
            Value::Object(m) if m.contains_key("events") => {
                let header: Map<String, Value> =
                    ["contract_name", "contract_version", "source", "metadata"]
                        .iter()
                        .filter_map(|k| {
                            m.get(*k)
                                .filter(|v| !v.is_null())
                                .map(|v| (k.to_string(), v.clone()))
                        })
                        .collect();
                m.get("events")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|ev| {
                        let mut env = header.clone();
                        env.insert("event".into(), ev.clone());
                        self.complete_envelope(&env)
                    })
                    .collect()
            }
            Value::Object(m) => vec![self.complete_envelope(m)],
            _ => Vec::new(),
        };
        Ok(out)
    }

    /// `garrison appleseed ingest`: validate, then store and project.
    pub fn ingest(&self, payload: &Value) -> Result<IngestOutcome, Error> {
        let envelopes = self.prepare_payload(payload)?;
        self.ingest_prepared(envelopes, &[])
    }

    /// Stores envelopes that already passed validation and carry their ids.
    /// `preset` are projections to keep as they are (bundle replay) instead of
    /// projecting afresh.
    pub(crate) fn ingest_prepared(
        &self,
        envelopes: Vec<Value>,
        preset: &[ProjectedFeedbackRecord],
    ) -> Result<IngestOutcome, Error> {
        // Parse first: nothing below may fail on input after a write.
        let typed = envelopes
            .iter()
            .enumerate()
            .map(|(i, v)| RuntimeEventEnvelope::from_value(v, &format!("[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;

        let _lock = self.store.lock()?;
        let env_path = self.store.envelopes_path();
        let proj_path = self.store.projected_path();
        let index = super::index::of_dir(self.store.dir());
        let mut index = index.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = IngestOutcome {
            warnings: index.refresh(&self.store)?,
            ..IngestOutcome::default()
        };
        // Envelopes and projections this call adds, by id (index in `out.stored`).
        let mut new_envelopes: HashMap<String, usize> = HashMap::new();
        let mut new_events: HashMap<String, usize> = HashMap::new();
        let mut new_records: HashMap<String, ProjectedFeedbackRecord> = HashMap::new();

        let now = self.clock.now_string();
        // Lookups by feedback id: a large payload must stay linear.
        let preset_by_id: HashMap<&str, &ProjectedFeedbackRecord> =
            preset.iter().map(|p| (p.feedback_id.as_str(), p)).collect();
        let mut reported: HashSet<String> = HashSet::new();
        for (raw, env) in envelopes.into_iter().zip(typed) {
            let envelope_id = env.envelope_id.clone().unwrap_or_default();
            let event_id = env.event.event_id.clone().unwrap_or_default();
            let earlier = match earlier(&index.by_envelope, &new_envelopes, &envelope_id) {
                Some(e) => Some((e, "duplicate envelope_id")),
                None => earlier(&index.by_event, &new_events, &event_id)
                    .map(|e| (e, "duplicate event_id")),
            };
            let (kept, kept_typed) = match earlier {
                Some((at, reason)) => {
                    out.skipped.push(Skipped {
                        envelope_id: envelope_id.clone(),
                        event_id: event_id.clone(),
                        reason: reason.into(),
                    });
                    let v = match at {
                        Earlier::Stored(span) => self.store.read_span(&env_path, span)?,
                        Earlier::New(i) => out.stored.get(i).cloned().unwrap_or(Value::Null),
                    };
                    let t = RuntimeEventEnvelope::from_value(&v, "stored").unwrap_or(env);
                    (v, t)
                }
                None => {
                    new_envelopes.insert(envelope_id.clone(), out.stored.len());
                    new_events.insert(event_id.clone(), out.stored.len());
                    out.stored.push(raw.clone());
                    (raw, env)
                }
            };
            // Also heals a feedback envelope whose projection a crash lost.
            if let (Some(eid), Some(evid)) = (&kept_typed.envelope_id, &kept_typed.event.event_id) {
                let fid = feedback_id(eid, evid);
                let known = match (new_records.get(&fid), index.by_feedback.get(&fid)) {
                    (Some(r), _) => Some(r.clone()),
                    (None, Some(&span)) => {
                        serde_json::from_value(self.store.read_span(&proj_path, span)?).ok()
                    }
                    (None, None) => None,
                };
                if let Some(r) = known {
                    if reported.insert(fid) {
                        out.projections.push(r);
                    }
                } else {
                    let fresh = preset_by_id
                        .get(fid.as_str())
                        .map(|p| (*p).clone())
                        .or_else(|| project(&kept_typed, &now));
                    if let Some(r) = fresh {
                        reported.insert(fid.clone());
                        new_records.insert(fid, r.clone());
                        out.projected.push(r.clone());
                        out.projections.push(r);
                    }
                }
            }
            out.envelopes.push(kept);
        }

        // Raw evidence first, then its projection.
        self.store.append(&env_path, &out.stored)?;
        let lines: Vec<Value> = out
            .projected
            .iter()
            .map(ProjectedFeedbackRecord::to_value)
            .collect();
        self.store.append(&proj_path, &lines)?;
        Ok(out)
    }
}

/// Where an envelope with the same id was found: stored earlier, or added
/// by this call (its index in the outcome's `stored`).
#[derive(Clone, Copy)]
enum Earlier {
    Stored(Span),
    New(usize),
}

fn earlier(
    stored: &HashMap<String, Span>,
    new: &HashMap<String, usize>,
    id: &str,
) -> Option<Earlier> {
    match stored.get(id) {
        Some(&span) => Some(Earlier::Stored(span)),
        None => new.get(id).map(|&i| Earlier::New(i)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn generated_keys_take_their_canonical_place() {
        let m =
            json!({"contract_name": "c", "contract_version": "1.0", "source": "s", "event": {}});
        let out = complete(
            m.as_object().unwrap(),
            ENVELOPE_KEYS,
            vec![("envelope_id", json!("E")), ("recorded_at", json!("T"))],
        );
        let keys: Vec<&String> = out.keys().collect();
        assert_eq!(
            keys,
            [
                "contract_name",
                "contract_version",
                "envelope_id",
                "recorded_at",
                "source",
                "event"
            ]
        );
        // Present values are never replaced; explicit nulls are.
        let m = json!({"envelope_id": "mine", "recorded_at": null});
        let out = complete(
            m.as_object().unwrap(),
            ENVELOPE_KEYS,
            vec![("envelope_id", json!("E")), ("recorded_at", json!("T"))],
        );
        assert_eq!(
            Value::Object(out),
            json!({"envelope_id": "mine", "recorded_at": "T"})
        );
    }
}
