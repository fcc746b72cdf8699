//! `POST /api/appleseed/events` and `/api/appleseed/openclaw-import` on a
//! real listener: the three payload forms, duplicates, rejections that store
//! nothing, auth, and import.

use serde_json::{Value, json};

use super::common::{Server, request};

fn event(kind: &str, n: u32) -> Value {
    let mut e = json!({
        "event_kind": kind,
        "event_id": format!("evt-{n}"),
        "session_id": "s1",
        "task": "review postgres migration",
    });
    if kind == "session_feedback" {
        e["status"] = json!("failure");
        e["score"] = json!(0.2);
    }
    e
}

fn envelope(kind: &str, n: u32) -> Value {
    json!({
        "contract_name": "openclaw_appleseed.runtime_event",
        "contract_version": "1.0",
        "envelope_id": format!("env-{n}"),
        "source": "openclaw-local",
        "event": event(kind, n),
    })
}

fn lines(dir: &std::path::Path, name: &str) -> usize {
    std::fs::read_to_string(dir.join("appleseed").join(name))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[tokio::test]
async fn events_accepts_all_three_forms_and_skips_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;

    let r = s
        .post("/api/appleseed/events", &envelope("session_feedback", 1))
        .await;
    assert_eq!(r.status, 200, "{}", r.json());
    let v = r.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["data"]["stored"][0]["envelope_id"], "env-1");
    assert_eq!(
        v["data"]["projected_feedback_ids"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let list = json!([
        envelope("session_started", 2),
        envelope("session_feedback", 1)
    ]);
    let v = s.post("/api/appleseed/events", &list).await.json();
    assert_eq!(v["data"]["stored"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"]["skipped"][0]["reason"], "duplicate envelope_id");

    let batch = json!({
        "contract_name": "openclaw_appleseed.runtime_event",
        "contract_version": "1.0",
        "source": "openclaw-local",
        "events": [event("session_started", 3), event("session_feedback", 4)],
    });
    let r = s.post("/api/appleseed/events", &batch).await;
    assert_eq!(r.status, 200, "{}", r.json());
    assert_eq!(r.json()["data"]["stored"].as_array().unwrap().len(), 2);

    assert_eq!(lines(dir.path(), "runtime_event_envelopes.jsonl"), 4);
    assert_eq!(lines(dir.path(), "projected_feedback.jsonl"), 2);
    s.stop().await;
}

#[tokio::test]
async fn rejection_is_400_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let state = dir.path().join("appleseed");

    // The second event breaks the contract (score out of range): nothing of
    // the list is stored, not even the valid first envelope.
    let mut bad = envelope("session_feedback", 2);
    bad["event"]["score"] = json!(1.5);
    let r = s
        .post(
            "/api/appleseed/events",
            &json!([envelope("session_started", 1), bad]),
        )
        .await;
    let msg = r.assert_error(400, "BAD_REQUEST");
    assert!(msg.contains("rejected"), "{msg}");
    assert!(!state.exists());

    let r = s
        .post_raw(
            "/api/appleseed/events",
            Some("application/json"),
            b"{not json",
        )
        .await;
    r.assert_error(400, "BAD_REQUEST");
    let r = s
        .post(
            "/api/appleseed/openclaw-import",
            &json!({"artifact_kind": "nope"}),
        )
        .await;
    r.assert_error(400, "BAD_REQUEST");
    assert!(!state.exists());

    // Without the bearer token: 401, nothing stored.
    let body = serde_json::to_vec(&envelope("session_feedback", 3)).unwrap();
    let r = request(
        s.addr,
        "POST",
        "/api/appleseed/events",
        &[("Content-Type", "application/json")],
        Some(&body),
    )
    .await
    .unwrap();
    r.assert_error(401, "UNAUTHORIZED");
    assert!(!state.exists());
    s.stop().await;
}

#[tokio::test]
async fn openclaw_import_adapts_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let artifact: Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contracts/tests/fixtures/appleseed/operator-session.json"
    )))
    .unwrap();
    let r = s.post("/api/appleseed/openclaw-import", &artifact).await;
    assert_eq!(r.status, 200, "{}", r.json());
    let v = r.json();
    assert_eq!(v["data"]["stored"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"]["input_kind"], "openclaw_operator_session");
    assert!(
        dir.path()
            .join("appleseed/reports/latest_openclaw_operator_handoff_bundle.json")
            .is_file()
    );
    let v = s
        .post("/api/appleseed/openclaw-import", &artifact)
        .await
        .json();
    assert_eq!(v["data"]["stored"].as_array().unwrap().len(), 0);
    assert_eq!(v["data"]["skipped"].as_array().unwrap().len(), 2);
    s.stop().await;
}
