//! Governance: golden reports over a fixed feedback set, determinism, and
//! the workflow checkpoint/history files.

use std::path::Path;

use garrison_appleseed::{Appleseed, Clock, render_governance_markdown};
use serde_json::{Value, json};

fn app(dir: &Path) -> Appleseed {
    let now: jiff::Timestamp = "2026-03-14T09:00:00Z".parse().unwrap();
    Appleseed::open(dir).with_clock(Clock::fixed(now))
}

/// One feedback envelope with fixed ids, so projections are reproducible.
fn fb(
    n: u32,
    session: &str,
    task: &str,
    status: &str,
    score: f64,
    skills: &[&str],
    caps: &[&str],
) -> Value {
    json!({
        "contract_name": "openclaw_appleseed.runtime_event",
        "contract_version": "1.0",
        "envelope_id": format!("env-{n:03}"),
        "recorded_at": "2026-03-13T18:00:00+00:00",
        "source": "openclaw-local",
        "event": {
            "schema_version": "1.1",
            "event_id": format!("evt-{n:03}"),
            "event_kind": "session_feedback",
            "occurred_at": "2026-03-13T17:59:00+00:00",
            "session_id": session,
            "task": task,
            "status": status,
            "score": score,
            "comment": format!("note {n}"),
            "selected_skill_ids": skills,
            "missing_capabilities": caps,
        }
    })
}

/// Covers every readiness: `code_review` on review tasks is clearly failing
/// (ready), `sql_helper` on migrations is mediocre (operator review),
/// `docs_writer` has one bad record (blocked); `database migrations` is
/// missing in several sessions (routing, review); `gpu` in two sessions but
/// only two records (routing, blocked); a cancelled record is not evidence.
fn fixture() -> Value {
    json!([
        fb(
            1,
            "s1",
            "review postgres migration",
            "failure",
            0.2,
            &["code_review"],
            &["database migrations"]
        ),
        fb(
            2,
            "s2",
            "review api change",
            "failure",
            0.1,
            &["code_review"],
            &[]
        ),
        fb(
            3,
            "s3",
            "review rollback plan",
            "partial",
            0.3,
            &["code_review"],
            &["database migrations"]
        ),
        fb(
            4,
            "s4",
            "migrate orders table",
            "success",
            0.6,
            &["sql_helper"],
            &["database migrations"]
        ),
        fb(
            5,
            "s5",
            "migrate users table",
            "partial",
            0.5,
            &["sql_helper"],
            &[]
        ),
        fb(
            6,
            "s5",
            "migrate users table",
            "success",
            0.5,
            &["sql_helper"],
            &["gpu"]
        ),
        fb(
            7,
            "s6",
            "write release notes",
            "failure",
            0.1,
            &["docs_writer"],
            &["gpu"]
        ),
        fb(
            8,
            "s7",
            "review flaky test",
            "cancelled",
            0.0,
            &["code_review"],
            &["gpu"]
        ),
    ])
}

fn seeded(dir: &Path) -> Appleseed {
    let a = app(dir);
    a.ingest(&fixture()).unwrap();
    a
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn governance_report_golden() {
    let dir = tempfile::tempdir().unwrap();
    let g = seeded(dir.path()).governance().unwrap();
    let counts = &g.governance["summary"]["readiness_counts"];
    assert_eq!(counts["ready_for_promotion"], 1, "{counts}");
    assert_eq!(counts["operator_review_required"], 2, "{counts}");
    assert_eq!(counts["blocked"], 2, "{counts}");
    assert_eq!(g.governance["inputs"]["excluded_records"], 1);
    insta::assert_json_snapshot!("governance_report", g.governance);
    insta::assert_snapshot!(
        "governance_report_md",
        render_governance_markdown(&g.governance)
    );
    insta::assert_json_snapshot!("operator_review", g.review);
    insta::assert_json_snapshot!("promotion_artifact", g.promotion);
}

#[test]
fn governance_is_deterministic_and_history_grows_by_one_line() {
    let reports = [
        "reports/latest_evolution_report.json",
        "reports/latest_governance_report.json",
        "reports/latest_governance_report.md",
        "reports/latest_operator_review.json",
        "reports/latest_promotion_artifact.json",
    ];
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let app_a = seeded(a.path());
    let app_b = seeded(b.path());
    app_a
        .write_governance(&app_a.governance().unwrap())
        .unwrap();
    let first: Vec<Vec<u8>> = reports.iter().map(|r| read(&a.path().join(r))).collect();
    // A second run in the same dir, and a run in another dir, give the same bytes.
    app_a
        .write_governance(&app_a.governance().unwrap())
        .unwrap();
    app_b
        .write_governance(&app_b.governance().unwrap())
        .unwrap();
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(read(&a.path().join(r)), first[i], "{r}");
        assert_eq!(read(&b.path().join(r)), first[i], "{r}");
    }

    let history = |d: &Path| {
        std::fs::read_to_string(d.join("workflow_history.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let h = history(a.path());
    assert_eq!(h.len(), 2);
    assert_eq!(h[0]["run_number"], 1);
    assert_eq!(h[1]["run_number"], 2);
    app_a
        .write_governance(&app_a.governance().unwrap())
        .unwrap();
    let h3 = history(a.path());
    assert_eq!(h3.len(), 3);
    assert_eq!(h3[..2], h[..]);
    let state: Value =
        serde_json::from_slice(&read(&a.path().join("latest_workflow_state.json"))).unwrap();
    assert_eq!(state, h3[2]);
    assert_eq!(state["stage"], "governance_reported");
}

#[test]
fn ids_are_stable_as_evidence_grows() {
    let dir = tempfile::tempdir().unwrap();
    let a = seeded(dir.path());
    let before = a.governance().unwrap();
    a.ingest(&fb(
        9,
        "s8",
        "write api docs",
        "failure",
        0.0,
        &["docs_writer"],
        &[],
    ))
    .unwrap();
    let after = a.governance().unwrap();
    let find = |g: &Value| {
        g["proposals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["proposal"]["target_id"] == "docs_writer")
            .cloned()
            .unwrap()
    };
    let (x, y) = (find(&before.evolution), find(&after.evolution));
    assert_eq!(x["proposal"]["proposal_id"], y["proposal"]["proposal_id"]);
    assert_ne!(
        x["proposal"]["evidence_fingerprint"],
        y["proposal"]["evidence_fingerprint"]
    );
    assert_eq!(y["proposal"]["metrics"]["supporting_records"], 2);
}
