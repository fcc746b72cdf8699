//! Appleseed state-dir behaviour against the contract's own examples.

use std::collections::BTreeMap;
use std::path::Path;

use garrison_appleseed::{Appleseed, Clock, Error, feedback_id};
use serde_json::{Value, json};

fn envelope() -> Value {
    serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contracts/tests/fixtures/appleseed/envelope.json"
    )))
    .unwrap()
}

fn batch() -> Value {
    serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contracts/tests/fixtures/appleseed/batch.json"
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

fn app(dir: &Path) -> Appleseed {
    let now: jiff::Timestamp = "2026-03-14T09:00:00Z".parse().unwrap();
    Appleseed::open(dir).with_clock(Clock::fixed(now))
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every file under `dir` with its bytes.
fn snapshot_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return out;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A report with the temp dir replaced, so golden files are stable.
fn redact(v: &Value, dir: &Path) -> Value {
    let text = v.to_string().replace(&dir.display().to_string(), "[STATE]");
    serde_json::from_str(&text).unwrap()
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn contract_envelope_is_stored_raw_and_projected_with_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let a = app(dir.path());
    let out = a.ingest(&envelope()).unwrap();
    assert_eq!(out.stored.len(), 1);
    assert_eq!(out.projected.len(), 1);
    // Nothing was missing, so the stored envelope is the input exactly.
    assert_eq!(lines(&a.store().envelopes_path()), vec![envelope()]);
    let projected = lines(&a.store().projected_path());
    assert_eq!(projected.len(), 1);
    let p = &projected[0];
    assert_eq!(p["contract_name"], "openclaw_appleseed.runtime_event");
    assert_eq!(p["contract_version"], "1.0");
    assert_eq!(
        p["source_envelope_id"],
        "9b1f66ae-5f44-47f8-a1a9-bd5f84d22b70"
    );
    assert_eq!(p["source_event_id"], "7d4f2fda-36bc-4c47-b1d3-dc1cb8ef04e0");
    assert_eq!(p["projected_at"], "2026-03-14T09:00:00.000000+00:00");
    assert_eq!(
        p["feedback_id"],
        feedback_id(
            "9b1f66ae-5f44-47f8-a1a9-bd5f84d22b70",
            "7d4f2fda-36bc-4c47-b1d3-dc1cb8ef04e0"
        )
    );
    for (k, want) in [
        ("session_id", json!("demo-session-001")),
        ("task", json!("review postgres migration rollback safety")),
        ("status", json!("failure")),
        ("score", json!(0.2)),
        ("comment", json!("missed rollback coverage")),
        ("selected_skill_ids", json!(["code_review"])),
        ("missing_capabilities", json!(["database migrations"])),
        ("metadata", json!({"trace_id": "demo-trace-001"})),
    ] {
        assert_eq!(p[k], want, "{k}");
    }
    insta::assert_json_snapshot!("projected_feedback_record", p);
}

#[test]
fn batch_becomes_one_envelope_per_event_and_started_is_never_projected() {
    let dir = tempfile::tempdir().unwrap();
    let a = app(dir.path());
    let out = a.ingest(&batch()).unwrap();
    assert_eq!(out.stored.len(), 2);
    let stored = lines(&a.store().envelopes_path());
    assert_eq!(stored.len(), 2);
    for e in &stored {
        assert!(e["envelope_id"].as_str().unwrap().len() == 36);
        assert!(e["event"]["event_id"].as_str().unwrap().len() == 36);
        assert_eq!(e["recorded_at"], "2026-03-14T09:00:00.000000+00:00");
        assert_eq!(
            e["event"]["occurred_at"],
            "2026-03-14T09:00:00.000000+00:00"
        );
        assert_eq!(e["source"], "openclaw-local");
        assert_eq!(e["metadata"], json!({"operator": "local-demo"}));
    }
    insta::assert_json_snapshot!("batch_stored_envelopes", stored);
    let projected = lines(&a.store().projected_path());
    assert_eq!(projected.len(), 1, "only session_feedback is projected");
    assert_eq!(projected[0]["source_envelope_id"], stored[1]["envelope_id"]);
    assert!(
        projected
            .iter()
            .all(|p| p["source_event_kind"] == "session_feedback")
    );

    // A list of envelopes works the same way.
    let mut started = envelope();
    started["envelope_id"] = json!("env-started");
    started["event"] = json!({"event_kind": "session_started", "event_id": "ev-started",
        "session_id": "s2", "task": "t"});
    let out = a.ingest(&json!([started, envelope()])).unwrap();
    assert_eq!(out.stored.len(), 2);
    assert!(out.projected.len() == 1);
    assert_eq!(lines(&a.store().projected_path()).len(), 2);
}

#[test]
fn duplicates_are_skipped_by_envelope_or_event_id() {
    let dir = tempfile::tempdir().unwrap();
    let a = app(dir.path());
    a.ingest(&envelope()).unwrap();
    let before = snapshot_dir(dir.path());
    let again = a.ingest(&envelope()).unwrap();
    assert!(again.stored.is_empty() && again.projected.is_empty());
    assert_eq!(again.skipped.len(), 1);
    assert_eq!(again.skipped[0].reason, "duplicate envelope_id");
    let mut same_event = envelope();
    same_event["envelope_id"] = json!("another-envelope");
    let out = a.ingest(&same_event).unwrap();
    assert_eq!(out.skipped[0].reason, "duplicate event_id");
    // Within one payload too.
    let mut twice = envelope();
    twice["envelope_id"] = json!("fresh");
    twice["event"]["event_id"] = json!("fresh-event");
    let out = a.ingest(&json!([twice.clone(), twice])).unwrap();
    assert_eq!((out.stored.len(), out.skipped.len()), (1, 1));
    let after = snapshot_dir(dir.path());
    let env_file = a.store().envelopes_path().display().to_string();
    assert_ne!(before[&env_file], after[&env_file]);
    assert_eq!(lines(&a.store().envelopes_path()).len(), 2);
}

#[test]
fn rejection_leaves_every_file_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let a = app(dir.path());
    // Fresh dir: nothing may be created.
    let bad = json!({"contract_name": "nope", "contract_version": "1.0", "event": {}});
    assert!(a.ingest(&bad).unwrap_err().is_rejection());
    assert!(snapshot_dir(dir.path()).is_empty());

    a.ingest(&envelope()).unwrap();
    a.openclaw_import(&artifact()).unwrap();
    let before = snapshot_dir(dir.path());
    let mut bad_batch = batch();
    // The first event is fine; the second one sinks the whole batch.
    bad_batch["events"][1]["score"] = json!(1.5);
    bad_batch["events"][0]["event_id"] = json!("would-be-new");
    let mut wrong_version = envelope();
    wrong_version["contract_version"] = json!("2.0");
    let mut unknown_kind = envelope();
    unknown_kind["event"]["event_kind"] = json!("session_ended");
    let mut bad_status = envelope();
    bad_status["event"]["status"] = json!("ok");
    let mut no_task = envelope();
    no_task["event"].as_object_mut().unwrap().remove("task");
    for payload in [
        bad_batch,
        wrong_version,
        unknown_kind,
        bad_status,
        no_task.clone(),
        json!([envelope(), no_task]),
        json!([]),
        artifact(),
    ] {
        let err = a.ingest(&payload).unwrap_err();
        assert!(err.is_rejection(), "{err}");
        assert!(!err.to_string().is_empty());
        assert_eq!(snapshot_dir(dir.path()), before, "{payload}");
    }
    let mut bad_artifact = artifact();
    bad_artifact["outcome"]["score"] = json!(7);
    for payload in [bad_artifact, envelope(), json!({"report_kind": "other"})] {
        let err = a.openclaw_import(&payload).unwrap_err();
        assert!(
            matches!(err, Error::Rejected(_) | Error::Invalid(_)),
            "{err}"
        );
        assert_eq!(snapshot_dir(dir.path()), before);
    }
    let mut bundle = read(
        &a.store()
            .reports_dir()
            .join("latest_openclaw_operator_handoff_bundle.json"),
    );
    bundle["projected_feedback"][0]["feedback_id"] = json!("forged");
    assert!(a.openclaw_import(&bundle).unwrap_err().is_rejection());
    assert_eq!(snapshot_dir(dir.path()), before);
}

#[test]
fn torn_last_line_is_ignored_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let a = app(dir.path());
    a.ingest(&envelope()).unwrap();
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(a.store().envelopes_path())
        .unwrap();
    f.write_all(b"{\"contract_name\":\"openclaw_app").unwrap();
    let i = a.inspect().unwrap();
    assert_eq!(i.report["envelope_count"], 1);
    assert_eq!(i.warnings.len(), 1);
    let out = a.ingest(&batch()).unwrap();
    assert_eq!(out.warnings.len(), 1);
    assert_eq!(lines(&a.store().envelopes_path()).len(), 3);
}

#[test]
fn openclaw_import_adapts_deterministically_and_writes_every_report() {
    let dir = tempfile::tempdir().unwrap();
    let a = app(dir.path());
    let out = a.openclaw_import(&artifact()).unwrap();
    assert_eq!(out.ingest.stored.len(), 2);
    assert_eq!(out.ingest.projected.len(), 1);
    let stored = lines(&a.store().envelopes_path());
    assert_eq!(stored[0]["event"]["event_kind"], "session_started");
    assert_eq!(
        stored[0]["event"]["steps"],
        json!(["inspect rollback risk"])
    );
    assert_eq!(
        stored[0]["event"]["occurred_at"],
        "2026-03-13T18:20:00+00:00"
    );
    assert_eq!(stored[1]["event"]["event_kind"], "session_feedback");
    assert_eq!(
        stored[1]["event"]["occurred_at"],
        "2026-03-13T18:28:00+00:00"
    );
    assert_eq!(stored[1]["recorded_at"], "2026-03-13T18:30:00+00:00");
    let meta = &stored[1]["event"]["metadata"];
    assert_eq!(meta["operator"], "local-demo");
    assert_eq!(meta["last_checkpoint"]["checkpoint_id"], "cp-risk");
    assert_eq!(meta["checkpoint_timeline"].as_array().unwrap().len(), 1);
    assert_eq!(
        meta["handoff"]["next_action"],
        "Verify lock-time risk before promotion."
    );
    assert_eq!(
        stored[0]["metadata"]["openclaw_import"]["last_checkpoint_id"],
        "cp-risk"
    );
    insta::assert_json_snapshot!("openclaw_adapted_envelopes", stored);

    // A second state dir adapts to the very same envelopes.
    let other = tempfile::tempdir().unwrap();
    app(other.path()).openclaw_import(&artifact()).unwrap();
    assert_eq!(
        lines(&Appleseed::open(other.path()).store().envelopes_path()),
        stored
    );

    let reports = a.store().reports_dir();
    let sid = "demo-openclaw-session-001";
    for name in [
        format!("openclaw_import_{sid}.json"),
        format!("openclaw_operator_handoff_bundle_{sid}.json"),
        format!("openclaw_operator_handoff_{sid}.json"),
        format!("runtime_session_report_{sid}.json"),
        format!("runtime_session_report_{sid}.md"),
        "latest_runtime_session_report.json".to_string(),
        "latest_openclaw_operator_handoff_bundle.json".to_string(),
    ] {
        assert!(reports.join(&name).is_file(), "{name}");
    }
    let d = dir.path();
    insta::assert_json_snapshot!(
        "openclaw_import_report",
        redact(
            &read(&reports.join(format!("openclaw_import_{sid}.json"))),
            d
        )
    );
    let handoff = read(&reports.join(format!("openclaw_operator_handoff_{sid}.json")));
    assert!(
        handoff["resume_commands"]["inspect"]
            .as_str()
            .unwrap()
            .starts_with("garrison appleseed inspect --state-dir ")
    );
    insta::assert_json_snapshot!("openclaw_operator_handoff", redact(&handoff, d));
    insta::assert_json_snapshot!(
        "openclaw_operator_handoff_bundle",
        redact(
            &read(&reports.join(format!("openclaw_operator_handoff_bundle_{sid}.json"))),
            d
        )
    );
    let session = read(&reports.join(format!("runtime_session_report_{sid}.json")));
    insta::assert_json_snapshot!("runtime_session_report", redact(&session, d));
    insta::assert_snapshot!(
        "runtime_session_report_md",
        std::fs::read_to_string(reports.join(format!("runtime_session_report_{sid}.md"))).unwrap()
    );
    assert_eq!(
        read(&reports.join("latest_runtime_session_report.json")),
        session
    );
    assert_eq!(
        read(&reports.join("latest_openclaw_operator_handoff_bundle.json")),
        read(&reports.join(format!("openclaw_operator_handoff_bundle_{sid}.json")))
    );
}

#[test]
fn reimport_and_bundle_replay_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let a = app(dir.path());
    a.openclaw_import(&artifact()).unwrap();
    let ledgers = |a: &Appleseed| {
        (
            std::fs::read(a.store().envelopes_path()).unwrap(),
            std::fs::read(a.store().projected_path()).unwrap(),
        )
    };
    let first = ledgers(&a);
    let again = a.openclaw_import(&artifact()).unwrap();
    assert!(again.ingest.stored.is_empty() && again.ingest.projected.is_empty());
    assert_eq!(again.ingest.skipped.len(), 2);
    assert_eq!(ledgers(&a), first);

    // Replay the exported bundle into a fresh dir: same envelopes, same
    // projected records (ids and all), byte for byte.
    let bundle = read(
        &a.store()
            .reports_dir()
            .join("latest_openclaw_operator_handoff_bundle.json"),
    );
    let fresh = tempfile::tempdir().unwrap();
    let later: jiff::Timestamp = "2026-04-01T00:00:00Z".parse().unwrap();
    let b = Appleseed::open(fresh.path()).with_clock(Clock::fixed(later));
    let out = b.openclaw_import(&bundle).unwrap();
    assert_eq!(out.ingest.stored.len(), 2);
    assert_eq!(ledgers(&b), first);
    // Twice adds nothing; the aliases are restored.
    let out = b.openclaw_import(&bundle).unwrap();
    assert!(out.ingest.stored.is_empty() && out.ingest.projected.is_empty());
    assert_eq!(ledgers(&b), first);
    assert!(
        b.store()
            .reports_dir()
            .join("latest_openclaw_operator_handoff_bundle.json")
            .is_file()
    );
    // The bundle replays into the original dir as a no-op too.
    a.openclaw_import(&bundle).unwrap();
    assert_eq!(ledgers(&a), first);
}

#[test]
fn import_without_outcome_awaits_feedback() {
    let dir = tempfile::tempdir().unwrap();
    let a = app(dir.path());
    let mut art = artifact();
    art.as_object_mut().unwrap().remove("outcome");
    let out = a.openclaw_import(&art).unwrap();
    assert_eq!(out.ingest.stored.len(), 1);
    assert!(out.ingest.projected.is_empty());
    assert_eq!(out.handoff["session_state"], "awaiting_feedback");
    let cmd = out.handoff["resume_commands"]["record_feedback"]
        .as_str()
        .unwrap();
    assert!(
        cmd.contains("| garrison appleseed ingest --state-dir "),
        "{cmd}"
    );
    assert!(!a.store().projected_path().exists() || lines(&a.store().projected_path()).is_empty());
}

#[test]
fn inspect_pairs_raw_with_projected() {
    let dir = tempfile::tempdir().unwrap();
    let a = app(dir.path());
    a.ingest(&envelope()).unwrap();
    a.openclaw_import(&artifact()).unwrap();
    let i = a.inspect().unwrap();
    let entries = i.report["entries"].as_array().unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["projection"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["projected", "raw_evidence_only", "projected"]);
    assert!(entries[1]["projected_feedback"].is_null());
    insta::assert_json_snapshot!("inspection", i.report);
    let written = a.write_inspection(&i).unwrap();
    assert_eq!(written.len(), 2);
    insta::assert_snapshot!(
        "inspection_md",
        std::fs::read_to_string(&written[1]).unwrap()
    );
}

#[test]
fn report_is_deterministic_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = app(dir.path());
    let one = a.report(&[batch()]).unwrap();
    let two = Appleseed::open(dir.path()).report(&[batch()]).unwrap();
    assert_eq!(one, two, "same payload, same report, whatever the clock");
    assert!(snapshot_dir(dir.path()).is_empty(), "report stores nothing");
    assert_eq!(one.len(), 1);
    let r = &one[0];
    assert_eq!(r["raw_session_outcome"]["status"], "failure");
    assert_eq!(r["raw_session_outcome"]["started_event_count"], 1);
    assert!(
        r["evidence"]["projected_feedback"][0]
            .get("projected_at")
            .is_none()
    );
    insta::assert_json_snapshot!("report_from_batch", r);

    // Several payloads, several sessions; artifacts work too.
    let many = a.report(&[envelope(), artifact()]).unwrap();
    assert_eq!(many.len(), 2);
    assert_eq!(
        many[1]["operator_handoff"]["last_checkpoint"]["checkpoint_id"],
        "cp-risk"
    );
    assert_eq!(
        many[1]["operator_handoff"]["next_action"],
        "Verify lock-time risk before promotion."
    );
    insta::assert_json_snapshot!("report_from_artifact", many[1]);
    insta::assert_snapshot!(
        "report_from_artifact_md",
        garrison_appleseed::render_session_markdown(&many[1])
    );
    assert!(snapshot_dir(dir.path()).is_empty());
    assert!(
        a.report(&[json!({"contract_name": "x"})])
            .unwrap_err()
            .is_rejection()
    );

    let written = a.write_session_reports(&many).unwrap();
    assert_eq!(written.len(), 4);
    assert!(!a.store().envelopes_path().exists());
}

#[test]
fn ingest_sees_lines_appended_by_another_writer_and_a_replaced_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let a = app(dir.path());
    let mut first = envelope();
    first["envelope_id"] = json!("env-1");
    first["event"]["event_id"] = json!("ev-1");
    a.ingest(&first).unwrap();
    // Another process's ingest: a line appended behind this process's back.
    let mut other = first.clone();
    other["envelope_id"] = json!("env-2");
    other["event"]["event_id"] = json!("ev-2");
    let path = a.store().envelopes_path();
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!("{other}\n"));
    std::fs::write(&path, text).unwrap();
    let out = a.ingest(&other).unwrap();
    assert_eq!(out.skipped.len(), 1, "the other writer's envelope is known");
    assert_eq!(out.envelopes[0]["envelope_id"], "env-2");
    // A state dir removed and started again is read from its start: the old
    // envelope is new there.
    std::fs::remove_dir_all(dir.path()).unwrap();
    let out = a.ingest(&first).unwrap();
    assert_eq!((out.stored.len(), out.skipped.len()), (1, 0));
    assert_eq!(lines(&path).len(), 1);
}

#[test]
fn a_torn_tail_longer_than_one_read_is_cut_before_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let a = app(dir.path());
    a.ingest(&envelope()).unwrap();
    use std::io::Write;
    let path = a.store().envelopes_path();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let fragment = format!("{{\"contract_name\":\"{}", "x".repeat(20_000));
    f.write_all(fragment.as_bytes()).unwrap();
    let out = a.ingest(&batch()).unwrap();
    assert_eq!(out.warnings.len(), 1);
    let stored = lines(&path);
    assert_eq!(stored.len(), 3, "the fragment is gone, every line parses");
    // And the index followed the cut: the batch's envelopes are known now.
    let again = a.ingest(&json!(stored[1..].to_vec())).unwrap();
    assert_eq!((again.stored.len(), again.skipped.len()), (0, 2));
    assert!(again.warnings.is_empty());
}
