//! The orchestration routes over real HTTP: CO (runs, plan, dispatch,
//! synthesize), gateway chat, vault theaters and worktrees, patrols,
//! integration, and the remote-worker routes. Units are `sh -c` commands
//! that write a file; every theater is a git repo in the test's tempdir.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use garrison_agent::{PromptMode, UnitProfile};
use garrison_orchestration::{Job, execute};
use garrison_server::{OrchestrationSettings, ServeConfig};
use serde_json::{Value, json};

use super::common::{self, Resp, Server, request};

/// Reads the prompt, writes an artifact and a tracked file of its own.
const UNIT: &str = "cat > /dev/null; mkdir -p outputs docs && \
    echo \"hello from $GARRISON_ORDER_ID\" > outputs/hello.txt && \
    echo \"$GARRISON_ORDER_ID\" > \"docs/$GARRISON_ORDER_ID.txt\" && \
    echo wrote the file";

fn settings(dir: &Path, workers: usize) -> OrchestrationSettings {
    let mut s = OrchestrationSettings::new(dir);
    s.profiles.insert(
        "writer".into(),
        UnitProfile::Command {
            program: "sh".into(),
            args: vec!["-c".into(), UNIT.into()],
            prompt: PromptMode::Stdin,
            env: BTreeMap::new(),
            sandbox: Default::default(),
        },
    );
    s.default_profile = "writer".into();
    s.workers = workers;
    s.chat_wait = Duration::from_secs(60);
    s
}

fn config(dir: &Path, workers: usize) -> ServeConfig {
    let mut c = common::config(dir);
    c.drain_timeout = Duration::from_secs(5);
    c.orchestration = Some(settings(dir, workers));
    c
}

async fn start(dir: &Path, workers: usize) -> Server {
    Server::start_with(config(dir, workers)).await
}

fn data(r: &Resp, status: u16) -> Value {
    let v = r.json();
    assert_eq!(r.status, status, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    v["data"].clone()
}

async fn create_run(s: &Server, objective: &str) -> String {
    let r = s
        .post("/runs", &json!({"user_id": "u_1", "objective": objective}))
        .await;
    let d = data(&r, 201);
    assert_eq!(d["status"], "OPEN", "{d}");
    assert_eq!(d["theater_id"], "demo", "{d}");
    d["run_id"].as_str().unwrap().to_string()
}

async fn plan_empty(s: &Server, run_id: &str) -> Resp {
    s.post_raw(&format!("/runs/{run_id}/plan"), None, b"").await
}

/// Polls `GET /runs/{id}` until the run leaves OPEN (at most `secs`).
async fn wait_run(s: &Server, run_id: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let d = data(&s.get(&format!("/runs/{run_id}")).await, 200);
        if d["status"] != "OPEN" {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "run {run_id} still OPEN after {secs} s: {d}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn two_step_plan() -> Value {
    json!({"plan": {"orders": [
        {"id": "survey", "objective": "survey the repo", "depends_on": [], "lock_scope": ["docs/"]},
        {"id": "report", "objective": "write the report", "depends_on": ["survey"], "lock_scope": ["docs/"]},
    ]}})
}

#[tokio::test]
async fn a_planned_run_is_dispatched_executed_integrated_and_synthesized() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), 1).await;
    let run_id = create_run(&s, "survey then report").await;

    let planned = data(
        &s.post(&format!("/runs/{run_id}/plan"), &two_step_plan())
            .await,
        201,
    );
    assert_eq!(planned["run_id"], run_id.as_str());
    let ids: Vec<String> = planned["order_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{planned}");
    // Dependency order: the survey first, the report waits for it.
    let (survey, report) = (&ids[0], &ids[1]);
    assert_eq!(planned["dependencies"][survey], json!([]), "{planned}");
    assert_eq!(
        planned["dependencies"][report],
        json!([survey]),
        "{planned}"
    );
    assert_eq!(planned["orders"][1]["plan_id"], "report", "{planned}");

    // A run is planned once.
    s.post(&format!("/runs/{run_id}/plan"), &two_step_plan())
        .await
        .assert_error(409, "CONCURRENCY_CONFLICT");

    let d = data(
        &s.call("POST", &format!("/runs/{run_id}/dispatch"), None)
            .await,
        200,
    );
    assert_eq!(d["dispatch"]["enqueued"], json!([survey]), "{d}");
    assert_eq!(d["dispatch"]["waiting"], json!([report]), "{d}");

    let run = wait_run(&s, &run_id, 90).await;
    assert_eq!(run["status"], "COMPLETE", "{run}");
    let summary = run["summary"].as_str().unwrap();
    assert!(summary.contains("2 of 2 orders delivered"), "{summary}");
    assert_eq!(run["order_counts"]["COMPLETED"], 2, "{run}");

    for id in &ids {
        let o = data(&s.get(&format!("/orders/{id}")).await, 200);
        assert_eq!(o["status"], "COMPLETED", "{o}");
        assert_eq!(o["order"]["integration"], "INTEGRATED", "{o}");
        assert_eq!(o["aar"]["status"], "completed", "{o}");
        assert_eq!(o["aar"]["path"], "aar.json", "{o}");
        let artifacts = o["artifacts"].as_array().unwrap();
        assert!(
            artifacts.iter().any(|a| a["path"] == "outputs/hello.txt"),
            "{o}"
        );
    }
    // Both orders' work reached the theater's mainline.
    let repo = dir.path().join("theaters/demo/repo");
    for id in &ids {
        let text = std::fs::read_to_string(repo.join(format!("docs/{id}.txt"))).unwrap();
        assert_eq!(text.trim(), id.as_str());
    }

    let syn = data(
        &s.call("POST", &format!("/runs/{run_id}/synthesize"), None)
            .await,
        200,
    );
    assert_eq!(syn["status"], "COMPLETE", "{syn}");
    assert_eq!(syn["reply"].as_str(), Some(summary), "{syn}");
    s.stop().await;
}

#[tokio::test]
async fn an_empty_plan_body_makes_one_order_for_the_objective() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), 1).await;
    let run_id = create_run(&s, "one thing").await;
    let d = data(&plan_empty(&s, &run_id).await, 201);
    assert_eq!(d["order_ids"].as_array().unwrap().len(), 1, "{d}");
    assert_eq!(d["orders"][0]["objective"], "one thing", "{d}");
    assert_eq!(d["orders"][0]["profile"], "writer", "{d}");
    let run = data(&s.get(&format!("/runs/{run_id}")).await, 200);
    assert_eq!(run["order_counts"]["QUEUED"], 1, "{run}");
    // Not dispatched: nothing runs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let run = data(&s.get(&format!("/runs/{run_id}")).await, 200);
    assert_eq!(
        run["orders"][0]["last_event_type"], "ORDER_CREATED",
        "{run}"
    );
    s.stop().await;
}

#[tokio::test]
async fn bad_plans_are_refused_and_leave_no_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), 1).await;
    let run_id = create_run(&s, "refused plans").await;
    let path = format!("/runs/{run_id}/plan");
    let order = |id: &str, deps: &[&str]| json!({"id": id, "objective": format!("do {id}"), "depends_on": deps, "lock_scope": []});
    let cycle = json!({"plan": {"orders": [order("a", &["b"]), order("b", &["a"])]}});
    let unknown = json!({"plan": {"orders": [order("a", &[]), order("b", &["ghost"])]}});
    let mut bad_profile = order("a", &[]);
    bad_profile["profile"] = json!("nobody");
    let bad_profile = json!({"plan": {"orders": [bad_profile]}});
    // Plans the orchestrator refuses, and a body of the wrong shape (both a
    // plan and a planner), answer 422 SCHEMA_INVALID.
    let both = json!({"plan": {"orders": [order("a", &[])]}, "planner": "writer"});
    for (body, status) in [
        (cycle, 422),
        (unknown, 422),
        (bad_profile, 422),
        (both, 422),
    ] {
        let r = s.post(&path, &body).await;
        r.assert_error(status, "SCHEMA_INVALID");
        let run = data(&s.get(&format!("/runs/{run_id}")).await, 200);
        assert_eq!(run["orders"], json!([]), "after {body}: {run}");
        assert!(run["run"]["metadata"].get("planned_at").is_none(), "{run}");
    }
    // Nothing was recorded, so a good plan is still accepted.
    let d = data(
        &s.post(&path, &json!({"plan": {"orders": [order("a", &[])]}}))
            .await,
        201,
    );
    assert_eq!(d["order_ids"].as_array().unwrap().len(), 1, "{d}");
    // Unknown run.
    plan_empty(&s, "no-such-run")
        .await
        .assert_error(404, "NOT_FOUND");
    s.stop().await;
}

#[tokio::test]
async fn chat_sync_replies_and_async_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), 1).await;
    let r = s
        .post(
            "/chat",
            &json!({"user_id": "u_1", "message": "write hello", "mode": "sync"}),
        )
        .await;
    let d = data(&r, 200);
    assert_eq!(d["status"], "COMPLETE", "{d}");
    let reply = d["reply"].as_str().unwrap();
    assert!(reply.contains("1 of 1 orders delivered"), "{reply}");
    assert!(
        d["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["path"] == "outputs/hello.txt"),
        "{d}"
    );

    let r = s
        .post(
            "/chat",
            &json!({"user_id": "u_1", "message": "write hello again", "mode": "async"}),
        )
        .await;
    let d = data(&r, 202);
    assert_eq!(d["status"], "OPEN", "{d}");
    let run_id = d["run_id"].as_str().unwrap();
    assert_eq!(wait_run(&s, run_id, 60).await["status"], "COMPLETE");

    s.post("/chat", &json!({"user_id": "u_1", "message": " "}))
        .await
        .assert_error(422, "SCHEMA_INVALID");
    s.stop().await;
}

fn order_file(order_id: &str, theater_id: &str) -> Value {
    json!({
        "order_id": order_id,
        "run_id": "run-manual",
        "theater_id": theater_id,
        "type": "task",
        "objective": "prepared by hand",
        "profile": {"name": "writer"},
    })
}

#[tokio::test]
async fn theaters_and_worktrees_with_safe_removal() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), 1).await;
    let t = data(
        &s.post("/theaters", &json!({"theater_id": "lab"})).await,
        200,
    );
    assert_eq!(t["theater_id"], "lab", "{t}");
    assert_eq!(t["mainline"], "main", "{t}");
    assert!(Path::new(t["repo"].as_str().unwrap()).join(".git").exists());
    s.post("/theaters", &json!({"theater_id": "../escape"}))
        .await
        .assert_error(400, "INVALID_ID");

    // A prepared worktree holds uncommitted files: removal needs force.
    let w = data(
        &s.post(
            "/worktrees",
            &json!({"theater_id": "lab", "order_id": "wt-a"}),
        )
        .await,
        201,
    );
    assert_eq!(w["branch"], "order_wt-a", "{w}");
    let path = std::path::PathBuf::from(w["worktree_path"].as_str().unwrap());
    assert!(path.is_dir());
    let p = data(
        &s.post(
            "/worktrees/wt-a/prepare",
            &json!({"order": order_file("wt-a", "lab")}),
        )
        .await,
        200,
    );
    assert_eq!(p["files"], json!(["order.json", "task.md", "state.json"]));
    assert!(path.join("order.json").is_file());
    s.post(
        "/worktrees/wt-b/prepare",
        &json!({"order": order_file("wt-a", "lab")}),
    )
    .await
    .assert_error(422, "SCHEMA_INVALID");

    s.call("POST", "/worktrees/wt-a/archive?theater_id=lab", None)
        .await
        .assert_error(409, "WORKTREE_DIRTY");
    s.call("DELETE", "/worktrees/wt-a?theater_id=lab", None)
        .await
        .assert_error(409, "WORKTREE_DIRTY");
    assert!(path.is_dir());
    let d = data(
        &s.call("DELETE", "/worktrees/wt-a?theater_id=lab&force=true", None)
            .await,
        200,
    );
    assert_eq!(d["removed"], true, "{d}");
    assert!(!path.exists());
    s.call("DELETE", "/worktrees/wt-a?theater_id=lab", None)
        .await
        .assert_error(404, "NOT_FOUND");

    // A clean worktree archives: tagged, then removed.
    let w = data(
        &s.post(
            "/worktrees",
            &json!({"theater_id": "lab", "order_id": "wt-b"}),
        )
        .await,
        201,
    );
    let path = std::path::PathBuf::from(w["worktree_path"].as_str().unwrap());
    let a = data(
        &s.call("POST", "/worktrees/wt-b/archive?theater_id=lab", None)
            .await,
        200,
    );
    assert_eq!(a["tag"], "archive/order_wt-b", "{a}");
    assert_eq!(a["commit_sha"].as_str().unwrap().len(), 40, "{a}");
    assert!(!path.exists());
    s.stop().await;
}

#[tokio::test]
async fn patrols_audit_and_integrate_answer() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), 1).await;
    let p = data(&s.call("POST", "/patrol", None).await, 200);
    for k in ["expired", "reissued", "failed"] {
        assert_eq!(p[k], json!([]), "{p}");
    }
    assert_eq!(p["queue_depth"], 0, "{p}");
    assert_eq!(p["active"], 0, "{p}");

    let a = data(&s.call("POST", "/audit", None).await, 200);
    // The patrol above just ticked.
    assert!(a["last_tick_age_secs"].as_i64().unwrap() <= 5, "{a}");
    assert_eq!(a["backlog_stalled"], false, "{a}");
    assert_eq!(a["escalations"], json!([]), "{a}");

    let o = data(&s.call("POST", "/theaters/demo/patrol", None).await, 200);
    assert_eq!(o["theater_id"], "demo", "{o}");
    assert_eq!(o["orders_checked"], 0, "{o}");
    assert_eq!(o["ready"], json!([]), "{o}");

    s.post(
        "/integrate",
        &json!({"theater_id": "demo", "order_id": "no-such-order", "worktree_path": "/nowhere"}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    s.stop().await;
}

#[tokio::test]
async fn a_remote_worker_claims_heartbeats_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), 0).await;
    let run_id = create_run(&s, "remote work").await;
    let planned = data(&plan_empty(&s, &run_id).await, 201);
    let order_id = planned["order_ids"][0].as_str().unwrap().to_string();

    // Nothing dispatched yet: a short long-poll comes back empty.
    let r = s
        .post(
            "/api/workers/claim",
            &json!({"unit_id": "remote-1", "wait_ms": 100}),
        )
        .await;
    assert_eq!(data(&r, 200), Value::Null);
    s.post("/api/workers/claim", &json!({"unit_id": " "}))
        .await
        .assert_error(422, "SCHEMA_INVALID");

    // A claim waiting when the run is dispatched gets the order.
    let long_poll = json!({"unit_id": "remote-1", "wait_ms": 10_000});
    let claim = s.post("/api/workers/claim", &long_poll);
    let dispatch = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.call("POST", &format!("/runs/{run_id}/dispatch"), None)
            .await
    };
    let (claimed, dispatched) = tokio::join!(claim, dispatch);
    data(&dispatched, 200);
    let job: Job = serde_json::from_value(data(&claimed, 200)).unwrap();
    assert_eq!(job.message.order_id, order_id);
    assert_eq!(job.message.run_id, run_id);
    assert_eq!(job.message.unit_id, "remote-1");
    assert_eq!(job.message.attempt, 1);
    assert!(
        Path::new(&job.message.worktree_path)
            .join("order.json")
            .is_file()
    );
    let o = data(&s.get(&format!("/orders/{order_id}")).await, 200);
    assert_eq!(o["status"], "RUNNING", "{o}");

    let hb = |token: &str| json!({"order_id": order_id, "lease_token": token});
    let d = data(
        &s.post("/api/workers/heartbeat", &hb(&job.lease_token))
            .await,
        200,
    );
    assert_eq!(d["extended"], true, "{d}");
    s.post("/api/workers/heartbeat", &hb("someone-else"))
        .await
        .assert_error(409, "CONCURRENCY_CONFLICT");

    // The worker side of the attempt, as `garrison worker` runs it.
    let report = execute(
        &job,
        garrison_orchestration::UnitEnv {
            data_dir: None,
            secrets: &Default::default(),
            sandbox: &Default::default(),
        },
        || async { true },
    )
    .await;
    let mut forged = serde_json::to_value(&report).unwrap();
    forged["lease_token"] = json!(format!("{order_id}:remote-2:1"));
    s.post("/api/workers/report", &forged)
        .await
        .assert_error(409, "CONCURRENCY_CONFLICT");
    let o = data(&s.get(&format!("/orders/{order_id}")).await, 200);
    assert_eq!(
        o["status"], "RUNNING",
        "a refused report changes nothing: {o}"
    );

    let d = data(
        &s.post(
            "/api/workers/report",
            &serde_json::to_value(&report).unwrap(),
        )
        .await,
        200,
    );
    assert_eq!(d["status"], "COMPLETED", "{d}");
    assert_eq!(d["reissued"], false, "{d}");
    // The lease is gone with the report.
    s.post(
        "/api/workers/report",
        &serde_json::to_value(&report).unwrap(),
    )
    .await
    .assert_error(409, "CONCURRENCY_CONFLICT");
    s.post("/api/workers/heartbeat", &hb(&job.lease_token))
        .await
        .assert_error(409, "CONCURRENCY_CONFLICT");

    let run = wait_run(&s, &run_id, 60).await;
    assert_eq!(run["status"], "COMPLETE", "{run}");
    let o = data(&s.get(&format!("/orders/{order_id}")).await, 200);
    assert_eq!(o["order"]["integration"], "INTEGRATED", "{o}");
    assert_eq!(o["order"]["unit_id"], "remote-1", "{o}");
    s.stop().await;
}

/// Every orchestration route with a body its extractor accepts.
fn routes() -> Vec<(&'static str, &'static str, Option<Value>)> {
    let order = order_file("o-1", "demo");
    vec![
        (
            "POST",
            "/chat",
            Some(json!({"user_id": "u", "message": "m", "mode": "async"})),
        ),
        (
            "POST",
            "/runs",
            Some(json!({"user_id": "u", "objective": "o"})),
        ),
        ("POST", "/runs/r-1/plan", Some(json!({}))),
        ("POST", "/runs/r-1/dispatch", None),
        ("POST", "/runs/r-1/synthesize", None),
        ("POST", "/theaters", Some(json!({"theater_id": "lab"}))),
        ("POST", "/theaters/lab/patrol", None),
        (
            "POST",
            "/worktrees",
            Some(json!({"theater_id": "lab", "order_id": "o-1"})),
        ),
        (
            "POST",
            "/worktrees/o-1/prepare",
            Some(json!({"order": order})),
        ),
        ("POST", "/worktrees/o-1/archive", None),
        ("DELETE", "/worktrees/o-1", None),
        (
            "POST",
            "/jobs",
            Some(
                json!({"order_id": "o-1", "theater_id": "demo", "run_id": "r-1",
                "unit_id": "u-1", "worktree_path": "/w", "profile": {"name": "writer"}}),
            ),
        ),
        (
            "POST",
            "/integrate",
            Some(json!({"theater_id": "demo", "order_id": "o-1", "worktree_path": "/w"})),
        ),
        ("POST", "/patrol", None),
        ("POST", "/audit", None),
        (
            "POST",
            "/api/workers/claim",
            Some(json!({"unit_id": "u-1"})),
        ),
        (
            "POST",
            "/api/workers/heartbeat",
            Some(json!({"order_id": "o-1", "lease_token": "t"})),
        ),
        (
            "POST",
            "/api/workers/report",
            Some(json!({"order_id": "o-1", "lease_token": "t",
                "outcome": {"outcome": "succeeded"}, "summary": "s"})),
        ),
    ]
}

#[tokio::test]
async fn every_route_needs_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), 0).await;
    for (method, path, body) in routes() {
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
        for auth in [None, Some("Bearer wrong-token-0123456789")] {
            let mut headers = vec![("Content-Type", "application/json")];
            if let Some(a) = auth {
                headers.push(("Authorization", a));
            }
            let r = request(s.addr, method, path, &headers, bytes.as_deref())
                .await
                .unwrap();
            assert_eq!(r.status, 401, "{method} {path} with {auth:?}");
            r.assert_error(401, "UNAUTHORIZED");
        }
    }
    // Nothing got through: no run was created.
    let h = data(&s.get("/health").await, 200);
    assert_eq!(h["head_seq"], 0, "{h}");
    s.stop().await;
}

#[tokio::test]
async fn a_node_without_orchestration_answers_503() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    assert!(s.ready.orchestrator.is_none());
    for (method, path, body) in routes() {
        let r = s.call(method, path, body.as_ref()).await;
        assert_eq!(r.status, 503, "{method} {path}: {}", r.json());
        r.assert_error(503, "SERVICE_UNAVAILABLE");
    }
    s.stop().await;
}
