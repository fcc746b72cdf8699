//! The scheduler jobs admin API over HTTP: CRUD, the Openclawssy error
//! shape for every rejection, persistence across a restart, and a job that
//! fires through `serve`'s own loop into a recording run launcher.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use garrison_scheduler::{LaunchRequest, LaunchedRun, RunOutcome};
use garrison_server::RunLauncher;
use serde_json::{Value, json};

use super::common::{Resp, Server, TOKEN, config, request};

/// Asserts `{"error":{"code","message"}}` with `code` and returns the message.
fn assert_oc_error(r: &Resp, status: u16, code: &str) -> String {
    let v = r.json();
    assert_eq!(r.status, status, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert_eq!(v.as_object().unwrap().len(), 1, "only `error`: {v}");
    let msg = v["error"]["message"].as_str().unwrap().to_string();
    assert!(!msg.is_empty(), "{v}");
    msg
}

fn job(id: &str, schedule: &str) -> Value {
    json!({"job_id": id, "agent_id": "agent_default", "schedule": schedule,
           "message": "Generate status report", "mode": "isolated", "enabled": true})
}

#[tokio::test]
async fn jobs_crud_and_error_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;

    let r = s.get("/api/admin/jobs").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"jobs": []}));

    // The contract's example record, accepted as written.
    let example = json!({
        "job_id": "job_daily_report", "agent_id": "agent_default", "schedule": "@every 1h",
        "message": "Generate status report", "mode": "isolated",
        "notify": {"channel": "none", "target": ""}, "enabled": true, "timezone": "UTC",
        "created_at": "2026-02-15T00:00:00Z", "updated_at": "2026-02-15T00:00:00Z"
    });
    let r = s.post("/api/admin/jobs", &example).await;
    assert_eq!(r.status, 201, "{}", r.json());
    let created = r.json();
    for field in [
        "job_id", "agent_id", "schedule", "message", "mode", "notify", "enabled", "timezone",
    ] {
        assert_eq!(created[field], example[field], "{field}");
    }
    // Times are the server's, not the caller's.
    let created_at = created["created_at"].as_str().unwrap().to_string();
    assert_ne!(created_at, "2026-02-15T00:00:00Z");
    assert_eq!(created["updated_at"], created["created_at"]);
    assert!(created["next_run_at"].as_str().unwrap() > created_at.as_str());
    assert_eq!(created["last_fired_at"], Value::Null);
    assert_eq!(created["last_run_id"], Value::Null);
    assert_eq!(created["last_outcome"], Value::Null);
    assert_eq!(created["fires"], 0);
    assert_eq!(created["state"], "scheduled");

    // The same id again.
    let r = s.post("/api/admin/jobs", &example).await;
    let m = assert_oc_error(&r, 409, "conflict");
    assert!(m.contains("job_daily_report"), "{m}");

    // Bad inputs: each named.
    let mut cron = job("c", "0 * * * *");
    let m = assert_oc_error(
        &s.post("/api/admin/jobs", &cron).await,
        400,
        "invalid.request",
    );
    assert!(
        m.contains("cron expressions are not supported; use `@every <duration>`"),
        "{m}"
    );
    cron["schedule"] = json!("@daily");
    assert_oc_error(
        &s.post("/api/admin/jobs", &cron).await,
        400,
        "invalid.request",
    );
    for (body, says) in [
        (job("z", "@every 0s"), "must be positive"),
        (job("z", "@every -1m"), "must be positive"),
        (job("z", "@every 5 minutes"), "unknown unit"),
        (job("z", "whenever"), "neither"),
        (job("../etc", "@every 1h"), "job_id"),
        (
            json!({"job_id": "z", "schedule": "@every 1h", "message": "m", "mode": "isolated",
                "enabled": true}),
            "agent_id is required",
        ),
        (
            json!({"job_id": "z", "agent_id": "a", "schedule": "@every 1h", "message": "m",
                "mode": "isolated"}),
            "enabled is required",
        ),
        (
            json!({"job_id": "z", "agent_id": "a", "schedule": "@every 1h", "message": "m",
                "mode": "forked", "enabled": true}),
            "unknown variant `forked`",
        ),
        (
            json!({"job_id": "z", "agent_id": "a", "schedule": "@every 1h", "message": "m",
                "mode": "isolated", "enabled": true, "timezone": "Europe/Paris"}),
            "timezone",
        ),
        (
            json!({"job_id": "z", "agent_id": "a", "schedule": "@every 1h", "message": "m",
                "mode": "isolated", "enabled": true, "cron": "0 * * * *"}),
            "unknown field `cron`",
        ),
    ] {
        let m = assert_oc_error(
            &s.post("/api/admin/jobs", &body).await,
            400,
            "invalid.request",
        );
        assert!(m.contains(says), "{body}: {m}");
    }
    let auth = format!("Bearer {TOKEN}");
    let r = request(
        s.addr,
        "POST",
        "/api/admin/jobs",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(b"{not json"),
    )
    .await
    .unwrap();
    assert_oc_error(&r, 400, "invalid.request");
    let r = request(
        s.addr,
        "POST",
        "/api/admin/jobs",
        &[("Authorization", &auth)],
        Some(b"{}"),
    )
    .await
    .unwrap();
    // Without a Content-Type the body is still read as JSON, as on every
    // Openclawssy route; `{}` lacks the job's fields.
    assert_oc_error(&r, 400, "invalid.request");
    assert_oc_error(
        &s.call("PATCH", "/api/admin/jobs", Some(&json!({}))).await,
        405,
        "invalid.request",
    );
    // Nothing of those was stored.
    let list = s.get("/api/admin/jobs").await.json();
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1);

    // Read one, change it, replace it.
    let r = s.get("/api/admin/jobs/job_daily_report").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), created);
    assert_oc_error(&s.get("/api/admin/jobs/nope").await, 404, "not.found");
    let r = s
        .call(
            "PATCH",
            "/api/admin/jobs/job_daily_report",
            Some(&json!({"enabled": false})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json());
    let v = r.json();
    assert_eq!(v["enabled"], false);
    assert_eq!(v["state"], "disabled");
    assert_eq!(v["next_run_at"], Value::Null);
    assert_eq!(v["created_at"], created["created_at"]);
    let m = assert_oc_error(
        &s.call(
            "PATCH",
            "/api/admin/jobs/job_daily_report",
            Some(&json!({"schedule": "*/5 * * * *"})),
        )
        .await,
        400,
        "invalid.request",
    );
    assert!(m.contains("cron expressions are not supported"), "{m}");
    assert_oc_error(
        &s.call(
            "PATCH",
            "/api/admin/jobs/nope",
            Some(&json!({"enabled": true})),
        )
        .await,
        404,
        "not.found",
    );
    // A fetched job can be sent back with changes (its view fields are ignored).
    let mut edited = s.get("/api/admin/jobs/job_daily_report").await.json();
    edited["schedule"] = json!("2030-01-01T09:00:00Z");
    edited["enabled"] = json!(true);
    let r = s
        .call("PUT", "/api/admin/jobs/job_daily_report", Some(&edited))
        .await;
    assert_eq!(r.status, 200, "{}", r.json());
    let v = r.json();
    assert_eq!(v["next_run_at"], "2030-01-01T09:00:00.000Z");
    assert_eq!(v["state"], "scheduled");
    let m = assert_oc_error(
        &s.call(
            "PUT",
            "/api/admin/jobs/job_daily_report",
            Some(&job("other", "@every 1h")),
        )
        .await,
        400,
        "invalid.request",
    );
    assert!(m.contains("does not match"), "{m}");
    assert_oc_error(
        &s.call(
            "PUT",
            "/api/admin/jobs/nope",
            Some(&job("nope", "@every 1h")),
        )
        .await,
        404,
        "not.found",
    );

    // Fires: none yet; a bad limit is named.
    let r = s.get("/api/admin/jobs/job_daily_report/fires").await;
    assert_eq!(r.json(), json!({"job_id": "job_daily_report", "fires": []}));
    let m = assert_oc_error(
        &s.get("/api/admin/jobs/job_daily_report/fires?limit=0")
            .await,
        400,
        "invalid.request",
    );
    assert!(m.contains("limit"), "{m}");
    assert_oc_error(&s.get("/api/admin/jobs/nope/fires").await, 404, "not.found");

    // The token is required.
    let r = request(s.addr, "GET", "/api/admin/jobs", &[], None)
        .await
        .unwrap();
    assert_eq!(r.status, 401);

    // Persisted: a restart on the same data dir shows the same job.
    let before = s.get("/api/admin/jobs").await.json();
    s.stop().await;
    let s = Server::start(dir.path()).await;
    assert_eq!(s.get("/api/admin/jobs").await.json(), before);

    let r = s
        .call("DELETE", "/api/admin/jobs/job_daily_report", None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"job_id": "job_daily_report", "deleted": true})
    );
    assert_oc_error(
        &s.call("DELETE", "/api/admin/jobs/job_daily_report", None)
            .await,
        404,
        "not.found",
    );
    assert_eq!(s.get("/api/admin/jobs").await.json(), json!({"jobs": []}));
    // The id is free again.
    assert_eq!(s.post("/api/admin/jobs", &example).await.status, 201);
    s.stop().await;
}

/// Records every launch; each run completes at once.
#[derive(Default)]
struct Recorder(Mutex<Vec<LaunchRequest>>);

impl RunLauncher for Recorder {
    fn launch(&self, request: LaunchRequest) -> BoxFuture<'static, Result<LaunchedRun, String>> {
        let run_id = format!("run-{}-{}", request.job_id, request.fire);
        self.0.lock().unwrap().push(request);
        async move {
            Ok(LaunchedRun {
                run_id,
                finished: async { RunOutcome::completed() }.boxed(),
            })
        }
        .boxed()
    }
}

#[tokio::test]
async fn serve_fires_jobs_through_its_launcher() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = Arc::new(Recorder::default());
    let s = Server::start_with(config(dir.path()).with_launcher(launcher.clone())).await;
    let r = s.post("/api/admin/jobs", &job("tick", "@every 1s")).await;
    assert_eq!(r.status, 201, "{}", r.json());
    let mut off = job("off", "@every 1s");
    off["enabled"] = json!(false);
    assert_eq!(s.post("/api/admin/jobs", &off).await.status, 201);

    // Wait (bounded) until the job has fired twice and both runs ended.
    let deadline = Instant::now() + Duration::from_secs(30);
    let view = loop {
        let v = s.get("/api/admin/jobs/tick").await.json();
        if v["fires"].as_u64().unwrap() >= 2 && v["last_outcome"] == "completed" {
            break v;
        }
        assert!(Instant::now() < deadline, "the job did not fire twice: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let n = view["fires"].as_u64().unwrap();
    assert_eq!(view["last_run_id"], format!("run-tick-{n}"));
    assert!(view["next_run_at"].as_str().unwrap() > view["last_fired_at"].as_str().unwrap());
    let fires = s.get("/api/admin/jobs/tick/fires?limit=2").await.json();
    let fires = fires["fires"].as_array().unwrap();
    assert_eq!(fires.len(), 2);
    assert_eq!(fires[0]["fire"], n);
    assert_eq!(fires[1]["fire"], n - 1);
    assert_eq!(fires[1]["outcome"], "completed");
    let launches = launcher.0.lock().unwrap().clone();
    assert!(
        launches
            .iter()
            .all(|l| l.job_id == "tick" && l.agent_id == "agent_default")
    );
    assert_eq!(
        launches.iter().map(|l| l.fire).collect::<Vec<_>>()[..2],
        [1, 2]
    );
    // The disabled job never fired.
    assert_eq!(s.get("/api/admin/jobs/off").await.json()["fires"], 0);
    // The fires are ledger events like any other.
    let events = s.get("/api/events?type=JOB_FIRED&limit=100").await.json();
    let fired = events["data"]["events"].as_array().unwrap();
    assert!(fired.len() as u64 >= n, "{events}");
    assert!(fired.iter().all(|e| e["stream"] == "job:tick"));
    s.stop().await;
}
