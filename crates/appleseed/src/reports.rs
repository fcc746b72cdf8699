//! Operator reports: the session evidence bundle (`report`), the raw-beside-
//! projected inspection (`inspect`), and the import/handoff/bundle files.
//!
//! Everything here is a pure function of stored or given records, so the
//! same evidence always renders the same report. Signals come from a small
//! local heuristic, and the "gate" only counts evidence: nothing here can
//! promote a change, it only says why a signal is not ready.

use std::path::{Path, PathBuf};

use garrison_contracts::appleseed::{
    OperatorSessionArtifact, RuntimeEventEnvelope, RuntimePayload,
};
use serde_json::{Map, Value, json};

use super::ids::derived_id;
use super::import::{
    BUNDLE_KIND, BUNDLE_SCHEMA_VERSION, ImportOutcome, Prepared, adapt, parse_bundle,
};
use super::ingest::IngestOutcome;
use super::projection::{ProjectedFeedbackRecord, project};
use super::{Appleseed, Error};
use garrison_contracts::values::{push_unique, strings};

/// Feedback records a signal needs before the gate lets an operator review it.
pub const GATE_MIN_EVIDENCE: usize = 3;
pub const LATEST_SESSION_REPORT: &str = "latest_runtime_session_report.json";
pub const LATEST_BUNDLE: &str = "latest_openclaw_operator_handoff_bundle.json";
/// Base name of `inspect --write-report` (`.json` and `.md`).
pub const INSPECTION_REPORT: &str = "latest_runtime_inspection";

fn s<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn or_na(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "n/a".into(),
        Some(Value::String(s)) if s.is_empty() => "n/a".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn bullets(items: &[String]) -> Vec<String> {
    if items.is_empty() {
        vec!["- none".into()]
    } else {
        items.iter().map(|i| format!("- {i}")).collect()
    }
}

/// Sessions in order of first appearance, each with its envelopes.
fn by_session(envelopes: &[Value]) -> Vec<(String, Vec<Value>)> {
    let mut out: Vec<(String, Vec<Value>)> = Vec::new();
    for e in envelopes {
        let sid = s(e, "/event/session_id").unwrap_or_default().to_string();
        match out.iter_mut().find(|(k, _)| *k == sid) {
            Some((_, v)) => v.push(e.clone()),
            None => out.push((sid, vec![e.clone()])),
        }
    }
    out
}

// --- session evidence bundle ---------------------------------------------------

/// Local heuristic signals from projected feedback: a capability gap per
/// missing capability of a non-successful session, a skill revision per skill
/// selected in a failed/partial or low-score session.
fn signals(projections: &[Value]) -> Vec<Value> {
    struct Sig {
        kind: &'static str,
        target: String,
        ids: Vec<String>,
        scores: Vec<f64>,
    }
    let mut sigs: Vec<Sig> = Vec::new();
    let mut add = |kind: &'static str, target: &str, fid: &str, score: f64| match sigs
        .iter_mut()
        .find(|g| g.kind == kind && g.target == target)
    {
        Some(g) => {
            if !g.ids.iter().any(|i| i == fid) {
                g.ids.push(fid.to_string());
                g.scores.push(score);
            }
        }
        None => sigs.push(Sig {
            kind,
            target: target.to_string(),
            ids: vec![fid.to_string()],
            scores: vec![score],
        }),
    };
    for p in projections {
        let fid = s(p, "/feedback_id").unwrap_or_default();
        let status = s(p, "/status").unwrap_or("unknown");
        let score = p.get("score").and_then(Value::as_f64).unwrap_or(0.0);
        if status != "success" {
            for cap in strings(p, "/missing_capabilities") {
                add("capability_gap", &cap, fid, score);
            }
        }
        if matches!(status, "failure" | "partial") || score < 0.5 {
            for skill in strings(p, "/selected_skill_ids") {
                add("skill_revision", &skill, fid, score);
            }
        }
    }
    sigs.into_iter()
        .map(|g| {
            let n = g.ids.len();
            let mean = g.scores.iter().sum::<f64>() / n as f64;
            let ready = n >= GATE_MIN_EVIDENCE;
            let summary = match g.kind {
                "capability_gap" => format!("Sessions lacked the capability `{}`.", g.target),
                _ => format!(
                    "Skill `{}` was selected in sessions that did not succeed.",
                    g.target
                ),
            };
            json!({
                "signal_id": format!("{}:{}", g.kind, g.target),
                "signal_type": g.kind,
                "target": g.target,
                "summary": summary,
                "evidence_count": n,
                "mean_score": (mean * 1000.0).round() / 1000.0,
                "supporting_feedback_ids": g.ids,
                "gate_status": if ready { "passed_evidence_gate" } else { "needs_more_evidence" },
                "promotion_readiness": if ready { "operator_review_required" } else { "blocked" },
            })
        })
        .collect()
}

/// The handoff state carried by adapted envelopes' metadata, when present.
fn handoff_state(envelopes: &[Value], has_feedback: bool) -> Value {
    let mut meta = Map::new();
    for e in envelopes {
        if let Some(m) = e.pointer("/event/metadata").and_then(Value::as_object) {
            for (k, v) in m {
                meta.insert(k.clone(), v.clone());
            }
        }
    }
    let mut out = Map::new();
    out.insert(
        "session_state".into(),
        json!(if has_feedback {
            "completed"
        } else {
            "awaiting_feedback"
        }),
    );
    let count = meta
        .get("checkpoint_timeline")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    out.insert("checkpoint_count".into(), json!(count));
    if let Some(op) = meta.get("operator").filter(|v| v.is_string()) {
        out.insert("operator".into(), op.clone());
    }
    if let Some(cp) = meta.get("last_checkpoint").filter(|v| v.is_object()) {
        out.insert("last_checkpoint".into(), cp.clone());
    }
    let h = meta.get("handoff").cloned().unwrap_or(Value::Null);
    let summary = s(&h, "/summary").map(str::to_string).unwrap_or_else(|| {
        if has_feedback {
            "Terminal feedback is recorded for this session.".into()
        } else {
            "No terminal feedback yet; the session is still open.".into()
        }
    });
    let next = s(&h, "/next_action")
        .map(str::to_string)
        .unwrap_or_else(|| {
            if has_feedback {
                "Review the projected signals before changing any skill.".into()
            } else {
                "Continue the session or record its feedback before evolving skills.".into()
            }
        });
    out.insert("summary".into(), json!(summary));
    out.insert("next_action".into(), json!(next));
    Value::Object(out)
}

/// The session-level evidence bundle for one session's envelopes and their
/// projections (stored records, or previews without `projected_at`).
pub fn session_report(session_id: &str, envelopes: &[Value], projections: &[Value]) -> Value {
    let feedback: Vec<&Value> = envelopes
        .iter()
        .filter(|e| s(e, "/event/event_kind") == Some("session_feedback"))
        .collect();
    let started = envelopes.len() - feedback.len();
    let latest = feedback.last().copied();
    let primary = latest.or(envelopes.last()).cloned().unwrap_or(Value::Null);
    let mut sources: Vec<String> = envelopes
        .iter()
        .filter_map(|e| s(e, "/source").map(str::to_string))
        .collect();
    sources.sort();
    sources.dedup();
    let mut skills = Vec::new();
    let mut missing = Vec::new();
    for e in envelopes {
        push_unique(&mut skills, strings(e, "/event/selected_skill_ids"));
        push_unique(&mut missing, strings(e, "/event/missing_capabilities"));
    }
    let ev = |ptr: &str| {
        latest
            .and_then(|l| l.pointer(ptr))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let outcome = json!({
        "status": latest.map_or(json!("incomplete"), |_| ev("/event/status")),
        "score": ev("/event/score"),
        "comment": ev("/event/comment"),
        "feedback_event_id": ev("/event/event_id"),
        "feedback_occurred_at": ev("/event/occurred_at"),
        "feedback_event_count": feedback.len(),
        "started_event_count": started,
        "steps": strings(&primary, "/event/steps"),
    });
    let handoff = handoff_state(envelopes, latest.is_some());
    let sigs = signals(projections);

    let mut notes = Vec::new();
    if latest.is_none() {
        notes.push(
            "No session_feedback event is in this evidence: the outcome is unknown and every signal stays advisory."
                .to_string(),
        );
    }
    if feedback.len() > 1 {
        notes.push(format!(
            "{} session_feedback events were given; the outcome above is the latest ({}).",
            feedback.len(),
            or_na(latest.and_then(|l| l.pointer("/event/event_id")))
        ));
    }
    if let Some(status) = latest.and_then(|l| s(l, "/event/status"))
        && matches!(status, "cancelled" | "unknown")
    {
        notes.push(format!(
                "The outcome is `{status}`: it says little about skill quality, so weigh its signals lightly."
            ));
    }
    if let Some(cp) = handoff.get("last_checkpoint")
        && s(cp, "/status").is_some_and(|st| st != "completed")
    {
        notes.push(format!(
                "The last checkpoint `{}` is `{}`: resolve it before promoting anything learned from this session.",
                s(cp, "/step").unwrap_or("?"),
                s(cp, "/status").unwrap_or("?")
            ));
    }
    if !missing.is_empty() {
        notes.push(format!(
            "Missing capabilities ({}) mean a prompt or skill change alone may not fix this task.",
            missing.join(", ")
        ));
    }
    if sigs.is_empty() {
        notes.push("No evolution signals were projected from this evidence.".into());
    }
    for g in &sigs {
        let n = g.get("evidence_count").and_then(Value::as_u64).unwrap_or(0);
        if (n as usize) < GATE_MIN_EVIDENCE {
            notes.push(format!(
                "{}: {n} supporting feedback record(s), the offline gate needs {GATE_MIN_EVIDENCE}; blocked from promotion.",
                s(g, "/signal_id").unwrap_or("?")
            ));
        }
    }

    json!({
        "report_kind": "runtime_session_evidence_bundle",
        "session_id": session_id,
        "task": primary.pointer("/event/task").cloned().unwrap_or(Value::Null),
        "sources": sources,
        "raw_session_outcome": outcome,
        "selected_skill_ids": skills,
        "missing_capabilities": missing,
        "operator_handoff": handoff,
        "projected_signals": sigs,
        "promotion_risk_notes": notes,
        "gate": {"min_evidence": GATE_MIN_EVIDENCE},
        "evidence": {
            "raw_envelope_count": envelopes.len(),
            "projected_feedback_count": projections.len(),
            "raw_envelopes": envelopes,
            "projected_feedback": projections,
        },
    })
}

pub fn render_session_markdown(r: &Value) -> String {
    let o = r.get("raw_session_outcome").cloned().unwrap_or(Value::Null);
    let steps = strings(&o, "/steps");
    let mut lines = vec![
        "# Appleseed runtime session report".to_string(),
        String::new(),
        format!("- Session: {}", or_na(r.get("session_id"))),
        format!("- Task: {}", or_na(r.get("task"))),
        format!("- Sources: {}", {
            let src = strings(r, "/sources");
            if src.is_empty() {
                "n/a".to_string()
            } else {
                src.join(", ")
            }
        }),
        String::new(),
        "## Raw session outcome".into(),
        format!("- Status: {}", or_na(o.get("status"))),
        format!("- Score: {}", or_na(o.get("score"))),
        format!("- Comment: {}", or_na(o.get("comment"))),
        format!(
            "- Steps: {}",
            if steps.is_empty() {
                "none".to_string()
            } else {
                steps.join(" -> ")
            }
        ),
        format!(
            "- session_started events: {}",
            or_na(o.get("started_event_count"))
        ),
        format!(
            "- session_feedback events: {}",
            or_na(o.get("feedback_event_count"))
        ),
        String::new(),
        "## Selected skills".into(),
    ];
    lines.extend(bullets(&strings(r, "/selected_skill_ids")));
    lines.extend([String::new(), "## Missing capabilities".into()]);
    lines.extend(bullets(&strings(r, "/missing_capabilities")));
    lines.extend([String::new(), "## Operator handoff".into()]);
    let h = r.get("operator_handoff").cloned().unwrap_or(Value::Null);
    lines.push(format!(
        "- Session state: {}",
        or_na(h.get("session_state"))
    ));
    if let Some(cp) = h.get("last_checkpoint") {
        lines.push(format!(
            "- Last checkpoint: {} [{}]",
            or_na(cp.get("step")),
            or_na(cp.get("status"))
        ));
    }
    lines.push(format!("- Summary: {}", or_na(h.get("summary"))));
    lines.push(format!("- Next action: {}", or_na(h.get("next_action"))));
    lines.extend([String::new(), "## Projected signals".into()]);
    let sigs: Vec<String> = r
        .get("projected_signals")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|g| {
            format!(
                "{} [{}] evidence={} readiness={}: {}",
                or_na(g.get("signal_id")),
                or_na(g.get("gate_status")),
                or_na(g.get("evidence_count")),
                or_na(g.get("promotion_readiness")),
                or_na(g.get("summary"))
            )
        })
        .collect();
    lines.extend(bullets(&sigs));
    lines.extend([String::new(), "## Promotion-risk notes".into()]);
    lines.extend(bullets(&strings(r, "/promotion_risk_notes")));
    lines.extend([
        String::new(),
        "## Evidence".into(),
        format!(
            "- Raw envelopes: {}",
            or_na(r.pointer("/evidence/raw_envelope_count"))
        ),
        format!(
            "- Projected feedback records: {}",
            or_na(r.pointer("/evidence/projected_feedback_count"))
        ),
    ]);
    lines.join("\n") + "\n"
}

/// A projection shown without storing it: no `projected_at`, since nothing
/// was projected.
fn preview(env: &Value) -> Option<Value> {
    let typed = RuntimeEventEnvelope::from_value(env, "").ok()?;
    let mut v = project(&typed, "")?.to_value();
    if let Some(m) = v.as_object_mut() {
        m.remove("projected_at");
    }
    Some(v)
}

/// Stable ids for a previewed envelope that has none: derived from its
/// content and position, so the same file always reports the same ids.
fn with_preview_ids(env: &Value, index: usize) -> Value {
    let mut env = env.clone();
    let basis = format!("{index}:{env}");
    if let Some(m) = env.as_object_mut() {
        if m.get("envelope_id").is_none_or(Value::is_null) {
            m.insert(
                "envelope_id".into(),
                json!(derived_id(&["report-preview", "envelope", &basis])),
            );
        }
        if let Some(Value::Object(ev)) = m.get_mut("event")
            && ev.get("event_id").is_none_or(Value::is_null)
        {
            ev.insert(
                "event_id".into(),
                json!(derived_id(&["report-preview", "event", &basis])),
            );
        }
    }
    env
}

impl Appleseed {
    /// `garrison appleseed report`: one evidence bundle per session found in
    /// `payloads` (envelopes, lists, batches, operator-session artifacts or
    /// handoff bundles). Stores nothing.
    pub fn report(&self, payloads: &[Value]) -> Result<Vec<Value>, Error> {
        let mut envelopes = Vec::new();
        let mut projections: Vec<Value> = Vec::new();
        for p in payloads {
            if p.get("artifact_kind").is_some() {
                let a = OperatorSessionArtifact::from_value(p)?;
                envelopes.extend(adapt(p, &a, None));
            } else if s(p, "/report_kind") == Some(BUNDLE_KIND) {
                let b = parse_bundle(p)?;
                projections.extend(b.preset.iter().map(ProjectedFeedbackRecord::to_value));
                envelopes.extend(b.envelopes);
            } else {
                let batch_like = RuntimePayload::from_value(p)?;
                drop(batch_like);
                // Same shapes as ingest, minus generated times.
                let items: Vec<Value> = match p {
                    Value::Array(a) => a.clone(),
                    Value::Object(m) if m.contains_key("events") => {
                        let header: Map<String, Value> =
                            ["contract_name", "contract_version", "source", "metadata"]
                                .iter()
                                .filter_map(|k| m.get(*k).map(|v| (k.to_string(), v.clone())))
                                .collect();
                        m.get("events")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .map(|ev| {
                                let mut e = header.clone();
                                e.insert("event".into(), ev.clone());
                                Value::Object(e)
                            })
                            .collect()
                    }
                    other => vec![other.clone()],
                };
                let base = envelopes.len();
                envelopes.extend(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, e)| with_preview_ids(e, base + i)),
                );
            }
        }
        if envelopes.is_empty() {
            return Err(Error::Invalid(
                "no runtime event envelopes were given".into(),
            ));
        }
        Ok(by_session(&envelopes)
            .into_iter()
            .map(|(sid, envs)| {
                let mut projs: Vec<Value> = Vec::new();
                for e in &envs {
                    let src = s(e, "/envelope_id").unwrap_or_default();
                    match projections
                        .iter()
                        .find(|p| s(p, "/source_envelope_id") == Some(src))
                    {
                        Some(p) => projs.push(p.clone()),
                        None => projs.extend(preview(e)),
                    }
                }
                session_report(&sid, &envs, &projs)
            })
            .collect())
    }

    /// Writes `runtime_session_report_<sid>.json|md` for each report.
    pub fn write_session_reports(&self, reports: &[Value]) -> Result<Vec<PathBuf>, Error> {
        let dir = self.store.reports_dir();
        let mut out = Vec::new();
        for r in reports {
            let sid = file_part(s(r, "/session_id").unwrap_or("unknown"));
            let json_path = dir.join(format!("runtime_session_report_{sid}.json"));
            let md_path = dir.join(format!("runtime_session_report_{sid}.md"));
            self.store.write_json(&json_path, r)?;
            self.store
                .write_text(&md_path, &render_session_markdown(r))?;
            out.extend([json_path, md_path]);
        }
        Ok(out)
    }
}

/// A session id made safe as part of a file name (path separators and other
/// odd bytes become `_`).
pub fn file_part(sid: &str) -> String {
    sid.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

// --- inspect -------------------------------------------------------------------

/// Every stored envelope beside its projected record.
#[derive(Debug)]
pub struct Inspection {
    pub report: Value,
    pub warnings: Vec<String>,
}

impl Appleseed {
    /// `garrison appleseed inspect`: reads the ledgers, writes nothing.
    pub fn inspect(&self) -> Result<Inspection, Error> {
        let envs = self.store.read_lines(&self.store.envelopes_path())?;
        let projs = self.store.read_lines(&self.store.projected_path())?;
        let mut used = vec![false; projs.records.len()];
        let entries: Vec<Value> = envs
            .records
            .iter()
            .map(|e| {
                let eid = s(e, "/envelope_id");
                let kind = s(e, "/event/event_kind").unwrap_or("?");
                let found = projs
                    .records
                    .iter()
                    .position(|p| eid.is_some() && s(p, "/source_envelope_id") == eid);
                if let Some(i) = found
                    && let Some(u) = used.get_mut(i)
                {
                    *u = true;
                }
                let status = match (found, kind) {
                    (Some(_), _) => "projected",
                    (None, "session_started") => "raw_evidence_only",
                    (None, _) => "projection_missing",
                };
                json!({
                    "envelope_id": eid,
                    "event_id": s(e, "/event/event_id"),
                    "event_kind": kind,
                    "session_id": s(e, "/event/session_id"),
                    "projection": status,
                    "raw_envelope": e,
                    "projected_feedback": found.and_then(|i| projs.records.get(i)).cloned(),
                })
            })
            .collect();
        let orphans: Vec<Value> = projs
            .records
            .iter()
            .zip(&used)
            .filter(|(_, u)| !**u)
            .map(|(p, _)| p.clone())
            .collect();
        let warnings = [envs.warnings, projs.warnings].concat();
        let report = json!({
            "report_kind": "runtime_event_inspection",
            "envelope_count": envs.records.len(),
            "projected_feedback_count": projs.records.len(),
            "entries": entries,
            "unmatched_projected_feedback": orphans,
            "warnings": warnings,
        });
        Ok(Inspection { report, warnings })
    }

    /// Writes the inspection as `reports/latest_runtime_inspection.json|md`.
    pub fn write_inspection(&self, i: &Inspection) -> Result<Vec<PathBuf>, Error> {
        let dir = self.store.reports_dir();
        let j = dir.join(format!("{INSPECTION_REPORT}.json"));
        let m = dir.join(format!("{INSPECTION_REPORT}.md"));
        self.store.write_json(&j, &i.report)?;
        self.store
            .write_text(&m, &render_inspection_markdown(&i.report))?;
        Ok(vec![j, m])
    }
}

pub fn render_inspection_markdown(r: &Value) -> String {
    let mut lines = vec![
        "# Appleseed runtime event inspection".to_string(),
        String::new(),
        format!("- Raw envelopes: {}", or_na(r.get("envelope_count"))),
        format!(
            "- Projected feedback records: {}",
            or_na(r.get("projected_feedback_count"))
        ),
    ];
    for e in r
        .get("entries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        lines.push(String::new());
        lines.push(format!(
            "## {} {} ({})",
            or_na(e.get("event_kind")),
            or_na(e.get("envelope_id")),
            or_na(e.get("session_id"))
        ));
        let raw = e.get("raw_envelope").cloned().unwrap_or(Value::Null);
        lines.push(format!("- Event: {}", or_na(e.get("event_id"))));
        lines.push(format!("- Task: {}", or_na(raw.pointer("/event/task"))));
        lines.push(format!("- Source: {}", or_na(raw.get("source"))));
        lines.push(format!("- Recorded at: {}", or_na(raw.get("recorded_at"))));
        lines.push(format!("- Projection: {}", or_na(e.get("projection"))));
        if let Some(p) = e.get("projected_feedback").filter(|p| !p.is_null()) {
            lines.push(format!(
                "- Projected feedback: {} status={} score={} at {}",
                or_na(p.get("feedback_id")),
                or_na(p.get("status")),
                or_na(p.get("score")),
                or_na(p.get("projected_at"))
            ));
        }
    }
    let orphans = r
        .get("unmatched_projected_feedback")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if orphans > 0 {
        lines.push(String::new());
        lines.push(format!(
            "{orphans} projected feedback record(s) have no stored source envelope."
        ));
    }
    for w in strings(r, "/warnings") {
        lines.push(format!("warning: {w}"));
    }
    lines.join("\n") + "\n"
}

// --- openclaw-import files -------------------------------------------------------

/// Quotes a word for a POSIX shell only when it needs it.
fn sh(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn path_text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Builds and writes every report of one import; returns what was written.
pub(crate) fn write_import_reports(
    app: &Appleseed,
    p: Prepared,
    ingest: IngestOutcome,
) -> Result<ImportOutcome, Error> {
    let store = &app.store;
    let a = &p.artifact;
    let sid = a.session.session_id.clone();
    let fp = file_part(&sid);
    let state_dir = std::path::absolute(store.dir()).unwrap_or_else(|_| store.dir().to_path_buf());
    let reports_dir = state_dir.join(super::REPORTS_DIR);
    let import_path = reports_dir.join(format!("openclaw_import_{fp}.json"));
    let bundle_path = reports_dir.join(format!("openclaw_operator_handoff_bundle_{fp}.json"));
    let handoff_path = reports_dir.join(format!("openclaw_operator_handoff_{fp}.json"));
    let report_json = reports_dir.join(format!("runtime_session_report_{fp}.json"));
    let report_md = reports_dir.join(format!("runtime_session_report_{fp}.md"));
    let latest_report = reports_dir.join(LATEST_SESSION_REPORT);
    let latest_bundle = reports_dir.join(LATEST_BUNDLE);

    let projections: Vec<Value> = ingest
        .projections
        .iter()
        .map(ProjectedFeedbackRecord::to_value)
        .collect();
    let session_report = session_report(&sid, &ingest.envelopes, &projections);
    let has_outcome = a.outcome.is_some();

    let dir = sh(&path_text(&state_dir));
    let bundle_ref = sh(&path_text(&bundle_path));
    let mut resume = Map::new();
    resume.insert(
        "inspect".into(),
        json!(format!(
            "garrison appleseed inspect --state-dir {dir} --format markdown --write-report"
        )),
    );
    resume.insert(
        "report".into(),
        json!(format!(
            "garrison appleseed report --state-dir {dir} --file {bundle_ref} --format markdown"
        )),
    );
    resume.insert(
        "replay_bundle".into(),
        json!(format!(
            "garrison appleseed openclaw-import --state-dir {dir} --file {bundle_ref}"
        )),
    );
    if !has_outcome {
        let template = json!({
            "contract_name": garrison_contracts::appleseed::CONTRACT_NAME,
            "contract_version": garrison_contracts::appleseed::CONTRACT_VERSION,
            "source": a.source.clone().unwrap_or_else(|| "openclaw-local".into()),
            "event": {
                "event_kind": "session_feedback",
                "session_id": sid,
                "task": a.session.task,
                "status": "unknown",
                "score": 0.0,
            }
        });
        resume.insert(
            "record_feedback".into(),
            json!(format!(
                "printf '%s\\n' {} | garrison appleseed ingest --state-dir {dir} --file -",
                sh(&template.to_string())
            )),
        );
    }
    let hs = session_report
        .get("operator_handoff")
        .cloned()
        .unwrap_or(Value::Null);
    let handoff = json!({
        "report_kind": "openclaw_operator_handoff",
        "session_id": sid,
        "task": a.session.task,
        "source": a.source,
        "operator": a.session.operator,
        "session_state": hs.get("session_state"),
        "summary": hs.get("summary"),
        "next_action": hs.get("next_action"),
        "selected_skill_ids": session_report.get("selected_skill_ids"),
        "missing_capabilities": session_report.get("missing_capabilities"),
        "checkpoint_count": a.timeline.len(),
        "last_checkpoint": p.artifact_raw.get("timeline").and_then(Value::as_array).and_then(|t| t.last()),
        "state_paths": {
            "state_dir": path_text(&state_dir),
            "runtime_event_envelopes": path_text(&state_dir.join(super::ENVELOPES_FILE)),
            "projected_feedback": path_text(&state_dir.join(super::PROJECTED_FILE)),
            "reports_dir": path_text(&reports_dir),
        },
        "resume_commands": resume,
        "adapted_envelope_ids": ingest.envelopes.iter().map(|e| e.get("envelope_id")).collect::<Vec<_>>(),
        "projected_feedback_ids": ingest.projections.iter().map(|r| &r.feedback_id).collect::<Vec<_>>(),
    });
    let now = app.clock.now_string();
    let artifact_paths = json!({
        "import_report": path_text(&import_path),
        "handoff": path_text(&handoff_path),
        "handoff_bundle": path_text(&bundle_path),
        "runtime_session_report_json": path_text(&report_json),
        "runtime_session_report_markdown": path_text(&report_md),
        "latest_runtime_session_report": path_text(&latest_report),
        "latest_handoff_bundle": path_text(&latest_bundle),
    });
    let bundle = json!({
        "report_kind": BUNDLE_KIND,
        "schema_version": BUNDLE_SCHEMA_VERSION,
        "exported_at": now,
        "session_id": sid,
        "task": a.session.task,
        "source": a.source,
        "source_artifact": p.artifact_raw,
        "handoff": handoff,
        "runtime_session_report": session_report,
        "adapted_envelopes": ingest.envelopes,
        "projected_feedback": projections,
        "artifact_paths": artifact_paths,
        "export_notes": [
            "Replay with `garrison appleseed openclaw-import --file <this bundle>`; already-stored envelopes are skipped.",
            "The adapted envelopes and projected feedback keep their ids, so a replay into a fresh state dir restores the same chain.",
        ],
    });
    let import_report = json!({
        "report_kind": "openclaw_import",
        "imported_at": now,
        "input_kind": p.kind.as_str(),
        "session_id": sid,
        "task": a.session.task,
        "source": a.source,
        "source_artifact": p.artifact_raw,
        "adapted_envelopes": ingest.envelopes,
        "projected_feedback": projections,
        "stored_envelope_ids": ingest.stored.iter().map(|e| e.get("envelope_id")).collect::<Vec<_>>(),
        "skipped": ingest.skipped,
        "newly_projected_feedback_ids": ingest.projected.iter().map(|r| &r.feedback_id).collect::<Vec<_>>(),
    });

    store.write_json(&import_path, &import_report)?;
    store.write_json(&report_json, &session_report)?;
    store.write_text(&report_md, &render_session_markdown(&session_report))?;
    store.write_json(&handoff_path, &handoff)?;
    store.write_json(&bundle_path, &bundle)?;
    store.write_json(&latest_report, &session_report)?;
    store.write_json(&latest_bundle, &bundle)?;
    Ok(ImportOutcome {
        kind: p.kind,
        session_id: sid,
        ingest,
        reports: vec![
            import_path,
            report_json,
            report_md,
            handoff_path,
            bundle_path,
            latest_report,
            latest_bundle,
        ],
        handoff,
        session_report,
    })
}
