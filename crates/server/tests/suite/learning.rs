//! `POST /learn/tick` on a real listener: the policy document in the
//! IronClaw envelope, versions on disk, POLICY_UPDATED, and auth.

use serde_json::json;

use super::common::{self, Server, request};

#[tokio::test]
async fn learn_tick_writes_policy_versions() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;

    let r = s.post("/learn/tick", &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.json());
    let v = r.json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["error"], serde_json::Value::Null);
    assert_eq!(v["data"]["policy_version"], 1);
    assert_eq!(v["data"]["stats"], json!([]));
    assert_eq!(v["data"]["routing"], json!({}));
    assert!(dir.path().join("learning/policy-v1.json").exists());

    let v = s.call("POST", "/learn/tick", None).await.json();
    assert_eq!(v["data"]["policy_version"], 2);
    assert!(dir.path().join("learning/policy-v2.json").exists());
    // The first tick's POLICY_UPDATED is in the ledger the second one read.
    assert!(v["data"]["through_seq"].as_i64().unwrap() >= 1);

    let r = request(s.addr, "POST", "/learn/tick", &[], None)
        .await
        .unwrap();
    r.assert_error(401, "UNAUTHORIZED");
    assert!(!dir.path().join("learning/policy-v3.json").exists());
    s.stop().await;
}

#[tokio::test]
async fn serve_feeds_runs_into_appleseed_when_orchestrating() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    let mut settings = garrison_server::OrchestrationSettings::new(dir.path());
    settings.workers = 0;
    settings.default_profile = "noop".into();
    config.orchestration = Some(settings);
    let s = Server::start_with(config).await;

    let r = s
        .post(
            "/events",
            &json!({"type": "RUN_CREATED", "run_id": "r-feed", "payload": {"objective": "feed me"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json());
    let envelopes = dir.path().join("appleseed/runtime_event_envelopes.jsonl");
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let text = std::fs::read_to_string(&envelopes).unwrap_or_default();
            if text.contains("r-feed") {
                assert!(text.contains("session_started"), "{text}");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the run never reached the appleseed state");

    // Its end (here a cancellation) becomes projected feedback.
    let r = s
        .post(
            "/events",
            &json!({"type": "RUN_CANCELLED", "run_id": "r-feed", "payload": {"reason": "operator stop"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json());
    let projected = dir.path().join("appleseed/projected_feedback.jsonl");
    let line = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let text = std::fs::read_to_string(&projected).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains("r-feed")) {
                break line.to_string();
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the cancelled run was never projected as feedback");
    let fb: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(fb["status"], "cancelled", "{fb}");
    assert!(line.contains("run cancelled: operator stop"), "{line}");
    s.stop().await;
    assert!(dir.path().join("appleseed/garrison-feed.pos").exists());
}
