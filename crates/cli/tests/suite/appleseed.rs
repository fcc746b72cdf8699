//! `garrison appleseed …` run as a binary: exit codes, files, output.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::{Value, json};

use super::common::garrison;

fn run(args: &[&str]) -> Output {
    garrison().args(args).output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                m.insert(p.display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    m
}

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p.display().to_string()
}

fn envelope() -> Value {
    serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contracts/tests/fixtures/appleseed/envelope.json"
    )))
    .unwrap()
}

fn artifact() -> Value {
    serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contracts/tests/fixtures/appleseed/operator-session.json"
    )))
    .unwrap()
}

#[test]
fn ingest_exit_codes_and_rejection_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_s = data.to_str().unwrap();
    let good = write(tmp.path(), "good.json", &envelope());
    let o = run(&[
        "--data-dir",
        data_s,
        "appleseed",
        "ingest",
        "--file",
        &good,
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["stored"].as_array().unwrap().len(), 1);
    assert_eq!(v["projected_feedback_ids"].as_array().unwrap().len(), 1);
    // Default state dir is <data-dir>/appleseed.
    let state = data.join("appleseed");
    assert!(state.join("runtime_event_envelopes.jsonl").is_file());
    assert!(state.join("projected_feedback.jsonl").is_file());

    let o = run(&["--data-dir", data_s, "appleseed", "ingest", "--file", &good]);
    assert_eq!(o.status.code(), Some(0));
    assert!(out(&o).contains("skipped 1"), "{}", out(&o));

    let before = files(tmp.path());
    let mut bad = envelope();
    bad["event"]["score"] = json!(3);
    let bad = write(tmp.path(), "bad.json", &bad);
    let before_with_bad = files(tmp.path());
    let o = run(&["--data-dir", data_s, "appleseed", "ingest", "--file", &bad]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("event.score"), "{}", err(&o));
    assert!(out(&o).is_empty());
    assert_eq!(files(tmp.path()), before_with_bad);
    assert_eq!(before.len() + 1, before_with_bad.len());

    // Not JSON, from stdin: rejected too.
    let mut child = garrison()
        .args(["--data-dir", data_s, "appleseed", "ingest", "--file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"{not json").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("not valid JSON"), "{}", err(&o));
    assert_eq!(files(tmp.path()), before_with_bad);

    // A rejection into a fresh state dir creates nothing at all.
    let fresh = tmp.path().join("fresh");
    let o = run(&[
        "appleseed",
        "ingest",
        "--state-dir",
        fresh.to_str().unwrap(),
        "--file",
        &bad,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!fresh.exists());

    // Usage errors.
    let o = run(&["--data-dir", data_s, "appleseed", "ingest"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["appleseed", "ingest", "--format", "yaml", "--file", &good]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn import_then_inspect_and_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let st = state.to_str().unwrap();
    let art = write(tmp.path(), "artifact.json", &artifact());
    let o = run(&[
        "appleseed",
        "openclaw-import",
        "--state-dir",
        st,
        "--file",
        &art,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(out(&o).contains("stored 2 envelope(s)"), "{}", out(&o));
    let reports = state.join("reports");
    for name in [
        "openclaw_import_demo-openclaw-session-001.json",
        "openclaw_operator_handoff_bundle_demo-openclaw-session-001.json",
        "openclaw_operator_handoff_demo-openclaw-session-001.json",
        "runtime_session_report_demo-openclaw-session-001.json",
        "runtime_session_report_demo-openclaw-session-001.md",
        "latest_runtime_session_report.json",
        "latest_openclaw_operator_handoff_bundle.json",
    ] {
        assert!(reports.join(name).is_file(), "{name}");
    }
    let ledgers = files(&state)
        .into_iter()
        .filter(|(k, _)| k.ends_with(".jsonl"))
        .collect::<BTreeMap<_, _>>();

    // Again: nothing new.
    let o = run(&[
        "appleseed",
        "openclaw-import",
        "--state-dir",
        st,
        "--file",
        &art,
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert!(v["stored"].as_array().unwrap().is_empty());
    assert_eq!(v["skipped"].as_array().unwrap().len(), 2);
    let again = files(&state)
        .into_iter()
        .filter(|(k, _)| k.ends_with(".jsonl"))
        .collect::<BTreeMap<_, _>>();
    assert_eq!(again, ledgers);

    // inspect: JSON and markdown, and --write-report.
    let o = run(&[
        "appleseed",
        "inspect",
        "--state-dir",
        st,
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["envelope_count"], 2);
    assert_eq!(v["entries"][0]["projection"], "raw_evidence_only");
    assert_eq!(v["entries"][1]["projection"], "projected");
    let o = run(&["appleseed", "inspect", "--state-dir", st, "--write-report"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(out(&o).starts_with("# Appleseed runtime event inspection"));
    assert!(reports.join("latest_runtime_inspection.json").is_file());

    // The exact resume command for replay works as written (paths are plain).
    let handoff: Value = serde_json::from_slice(
        &std::fs::read(reports.join("openclaw_operator_handoff_demo-openclaw-session-001.json"))
            .unwrap(),
    )
    .unwrap();
    let replay = handoff["resume_commands"]["replay_bundle"]
        .as_str()
        .unwrap();
    let words: Vec<&str> = replay.split(' ').collect();
    assert_eq!(&words[..3], ["garrison", "appleseed", "openclaw-import"]);
    let fresh = tmp.path().join("fresh");
    let mut args: Vec<&str> = words[1..].to_vec();
    let fresh_s = fresh.to_str().unwrap();
    args[3] = fresh_s;
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(
        std::fs::read(fresh.join("projected_feedback.jsonl")).unwrap(),
        std::fs::read(state.join("projected_feedback.jsonl")).unwrap()
    );

    // report: stores nothing, prints the evidence bundle.
    let empty = tmp.path().join("empty");
    let o = run(&[
        "appleseed",
        "report",
        "--state-dir",
        empty.to_str().unwrap(),
        "--file",
        &art,
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["report_kind"], "runtime_session_evidence_bundle");
    assert!(!empty.exists());
}

fn feedback(session: &str, score: f64, status: &str) -> Value {
    json!({
        "contract_name": "openclaw_appleseed.runtime_event",
        "contract_version": "1.0",
        "source": "openclaw-local",
        "event": {
            "event_kind": "session_feedback",
            "session_id": session,
            "task": "review postgres migration",
            "status": status,
            "score": score,
            "comment": "missed rollback coverage",
            "selected_skill_ids": ["code_review"],
            "missing_capabilities": ["database migrations"],
        }
    })
}

#[test]
fn governance_prints_and_writes_every_report() {
    let tmp = tempfile::tempdir().unwrap();
    let st_dir = tmp.path().join("state");
    let st = st_dir.to_str().unwrap();
    // An empty state dir is a valid (empty) review, and stays unwritten.
    let o = run(&["appleseed", "governance", "--state-dir", st]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(out(&o).contains("# Appleseed governance report"));
    assert!(!st_dir.exists());

    let list: Vec<Value> = (0..3)
        .map(|i| feedback(&format!("s{i}"), 0.2, "failure"))
        .collect();
    let f = write(tmp.path(), "list.json", &Value::Array(list));
    let o = run(&["appleseed", "ingest", "--state-dir", st, "--file", &f]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));

    let o = run(&[
        "appleseed",
        "governance",
        "--state-dir",
        st,
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["report_kind"], "appleseed_governance_report");
    assert_eq!(v["summary"]["readiness_counts"]["ready_for_promotion"], 1);
    assert!(
        !st_dir
            .join("reports/latest_governance_report.json")
            .exists()
    );

    for run_no in 1..=2 {
        let o = run(&[
            "appleseed",
            "governance",
            "--state-dir",
            st,
            "--write-report",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", err(&o));
        for name in [
            "reports/latest_evolution_report.json",
            "reports/latest_governance_report.json",
            "reports/latest_governance_report.md",
            "reports/latest_operator_review.json",
            "reports/latest_promotion_artifact.json",
            "latest_workflow_state.json",
            "workflow_history.jsonl",
        ] {
            assert!(st_dir.join(name).is_file(), "{name}");
        }
        let history = std::fs::read_to_string(st_dir.join("workflow_history.jsonl")).unwrap();
        assert_eq!(history.lines().count(), run_no);
    }
}
