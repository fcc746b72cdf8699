//! Appleseed governance: the state dir's latest governance report
//! (`reports/latest_governance_report.json`, written by `garrison appleseed
//! governance --write-report`), or an empty state that says how to make one.

use std::path::PathBuf;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use garrison_appleseed::{GOVERNANCE_REPORT, REPORTS_DIR};
use serde_json::Value;

use super::{Nav, Tab, render, text, when};
use crate::AppState;

/// Reports larger than this are not parsed for the page.
const MAX_REPORT_BYTES: u64 = 8 * 1024 * 1024;

pub struct Proposal {
    pub id: String,
    pub title: String,
    pub kind: String,
    pub task_type: String,
    pub readiness: String,
    pub risk: String,
    pub summary: String,
    pub reasons: String,
}

pub struct Report {
    pub generated: String,
    pub gate_id: String,
    pub proposal_count: String,
    /// (readiness, count)
    pub readiness: Vec<(String, String)>,
    /// (label, value) of the report's inputs.
    pub inputs: Vec<(String, String)>,
    pub proposals: Vec<Proposal>,
}

/// What the page can say about the report file.
pub enum Governance {
    /// No data dir on this node.
    NoStateDir,
    /// No report written yet.
    Missing {
        path: String,
    },
    /// The file exists but could not be read or parsed.
    Unreadable {
        path: String,
        reason: String,
    },
    Report(Box<Report>),
}

#[derive(Template)]
#[template(path = "dashboard/appleseed.html")]
pub struct AppleseedPage {
    pub nav: Nav,
    pub governance: Governance,
}

/// `GET /dashboard/appleseed`.
#[utoipa::path(
    get,
    path = "/dashboard/appleseed",
    operation_id = "dashboard_appleseed",
    tag = "dashboard",
    summary = "Appleseed",
    responses(
        (status = 200, description = "The latest governance report.", content_type = "text/html", body = String),
    ),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn page(State(state): State<AppState>) -> Response {
    let governance = match &state.data_dir {
        None => Governance::NoStateDir,
        Some(dir) => {
            let path = dir
                .join("appleseed")
                .join(REPORTS_DIR)
                .join(format!("{GOVERNANCE_REPORT}.json"));
            tokio::task::spawn_blocking(move || read(path))
                .await
                .unwrap_or_else(|e| Governance::Unreadable {
                    path: String::new(),
                    reason: e.to_string(),
                })
        }
    };
    render(
        StatusCode::OK,
        &AppleseedPage {
            nav: Nav::new(Tab::Appleseed),
            governance,
        },
    )
}

fn read(path: PathBuf) -> Governance {
    let shown = path.display().to_string();
    let unreadable = |reason: String| Governance::Unreadable {
        path: shown.clone(),
        reason,
    };
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Governance::Missing { path: shown };
        }
        Err(e) => return unreadable(e.to_string()),
        Ok(m) if m.len() > MAX_REPORT_BYTES => {
            return unreadable(format!("{} bytes is more than the page reads", m.len()));
        }
        Ok(_) => {}
    }
    let doc: Value = match std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(reason) => return unreadable(reason),
    };
    Governance::Report(Box::new(report(&doc)))
}

/// The page's view of a governance report (fields as the report names them).
pub fn report(doc: &Value) -> Report {
    let summary = doc.get("summary");
    let pairs = |v: Option<&Value>| -> Vec<(String, String)> {
        v.and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), text(Some(v), 40)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let proposals = doc
        .get("proposals")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|p| Proposal {
                    id: text(p.get("proposal_id"), 80),
                    title: text(p.get("title"), 200),
                    kind: text(p.get("proposal_kind"), 60),
                    task_type: text(p.get("task_type"), 60),
                    readiness: text(p.get("readiness"), 60),
                    risk: text(p.get("risk_level"), 30),
                    summary: text(p.get("summary"), 400),
                    reasons: p
                        .get("reasons")
                        .and_then(Value::as_array)
                        .map(|r| {
                            r.iter()
                                .map(|x| text(Some(x), 200))
                                .collect::<Vec<_>>()
                                .join("; ")
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    Report {
        generated: when(&text(doc.get("generated_at"), 40)),
        gate_id: text(summary.and_then(|s| s.get("gate_id")), 80),
        proposal_count: text(summary.and_then(|s| s.get("proposal_count")), 20),
        readiness: pairs(summary.and_then(|s| s.get("readiness_counts"))),
        inputs: pairs(doc.get("inputs")),
        proposals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_report_fields() {
        let doc = serde_json::json!({
            "generated_at": "2026-01-02T03:04:05Z",
            "inputs": {"projected_feedback_records": 4},
            "summary": {"gate_id": "g1", "proposal_count": 1,
                        "readiness_counts": {"blocked": 1}},
            "proposals": [{"proposal_id": "p1", "title": "Route code", "readiness": "blocked",
                           "reasons": ["too little evidence", "risky"]}]
        });
        let r = report(&doc);
        assert_eq!(r.generated, "2026-01-02 03:04:05");
        assert_eq!(r.gate_id, "g1");
        assert_eq!(r.readiness, [("blocked".to_string(), "1".to_string())]);
        assert_eq!(r.proposals[0].reasons, "too little evidence; risky");
    }

    #[test]
    fn missing_and_broken_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read(dir.path().join("none.json")),
            Governance::Missing { .. }
        ));
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, b"{not json").unwrap();
        assert!(matches!(read(bad), Governance::Unreadable { .. }));
    }
}
