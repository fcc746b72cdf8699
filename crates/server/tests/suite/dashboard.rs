//! The dashboard over a real listener: sign-in and the cookie's reach, each
//! page's content from real ledger events (escaped), and the live stream.

use serde_json::{Value, json};

use super::common::{Resp, Server, TOKEN, open_stream, read_until, request};

fn body(r: &Resp) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn ev(t: &str, run: Option<&str>, order: Option<&str>, payload: Value) -> Value {
    json!({"type": t, "run_id": run, "order_id": order, "payload": payload})
}

async fn get_with(s: &Server, path: &str, headers: &[(&str, &str)]) -> Resp {
    request(s.addr, "GET", path, headers, None).await.unwrap()
}

async fn login(s: &Server, token: &str) -> Resp {
    let form = format!("token={}", token.replace('-', "%2D"));
    request(
        s.addr,
        "POST",
        "/dashboard/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(form.as_bytes()),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn sign_in_sets_a_cookie_that_opens_only_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;

    // Not signed in: `/` is the form, other pages send the browser there,
    // the stream and logout refuse, the assets are public.
    let r = get_with(&s, "/", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(body(&r).contains(r#"name="token""#), "{}", body(&r));
    let r = get_with(&s, "/dashboard/patrols", &[]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/")));
    let r = get_with(&s, "/dashboard/runs/r1/events", &[]).await;
    assert_eq!(r.status, 401);
    let r = get_with(&s, "/dashboard/assets/dashboard.js", &[]).await;
    assert_eq!(r.status, 200);
    assert!(body(&r).contains("EventSource"));
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    let r = get_with(&s, "/dashboard/assets/other.js", &[]).await;
    assert_eq!(r.status, 404);

    // A wrong token: the form again with a message, no cookie.
    let r = login(&s, "wrong").await;
    assert_eq!(r.status, 401);
    assert!(r.header("set-cookie").is_none());
    assert!(body(&r).contains("not this server"), "{}", body(&r));

    // The right one: a strict, HttpOnly cookie that does not carry the token.
    let r = login(&s, TOKEN).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/")));
    let set = r.header("set-cookie").unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains(TOKEN), "{set}");
    let cookie = set.split(';').next().unwrap().to_string();

    let r = get_with(&s, "/", &[("Cookie", &cookie)]).await;
    assert_eq!(r.status, 200);
    let page = body(&r);
    assert!(
        page.contains("<h1>Runs</h1>") && !page.contains(r#"name="token""#),
        "{page}"
    );
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .contains("script-src 'self'")
    );
    let r = get_with(&s, "/dashboard/scheduler", &[("Cookie", &cookie)]).await;
    assert_eq!(r.status, 200);

    // The cookie is not an API credential.
    let r = get_with(&s, "/api/events", &[("Cookie", &cookie)]).await;
    r.assert_error(401, "UNAUTHORIZED");
    // A forged cookie is no session; the bearer header opens pages too.
    let r = get_with(
        &s,
        "/dashboard/patrols",
        &[("Cookie", "garrison_session=00")],
    )
    .await;
    assert_eq!(r.status, 303);
    let auth = format!("Bearer {TOKEN}");
    let r = get_with(&s, "/dashboard/patrols", &[("Authorization", &auth)]).await;
    assert_eq!(r.status, 200);

    let r = request(
        s.addr,
        "POST",
        "/dashboard/logout",
        &[("Cookie", &cookie)],
        Some(b""),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 303);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    s.stop().await;
}

#[tokio::test]
async fn pages_show_ledger_content_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let batch = json!({"events": [
        ev("RUN_CREATED", Some("r1"), None, json!({"objective": "<script>alert(1)</script> ship it"})),
        ev("ORDER_CREATED", Some("r1"), Some("o1"), json!({"objective": "first step", "plan_id": "first"})),
        ev("ORDER_CREATED", Some("r1"), Some("o2"),
           json!({"objective": "second step", "plan_id": "second", "depends_on": ["o1"]})),
        ev("ORDER_CLAIMED", Some("r1"), Some("o1"), json!({})),
        ev("ORDER_STARTED", Some("r1"), Some("o1"), json!({})),
        ev("ARTIFACT_WRITTEN", Some("r1"), Some("o1"),
           json!({"artifacts": [{"path": "docs/first.md", "type": "text/markdown"}]})),
        ev("AAR_WRITTEN", Some("r1"), Some("o1"),
           json!({"path": "aar.json", "status": "completed", "summary": "Wrote the first step"})),
        ev("ORDER_COMPLETED", Some("r1"), Some("o1"), json!({})),
        ev("ESCALATION_RAISED", Some("r1"), Some("o2"), json!({"severity": "HIGH", "reason": "stuck"})),
        ev("PATROL_TICK", None, None, json!({"service": "duty"})),
    ]});
    let r = s.post("/events/batch", &batch).await;
    assert_eq!(r.status, 201, "{}", body(&r));
    // An ingest on a node without a secret is refused into the dead letter.
    let r = request(
        s.addr,
        "POST",
        "/internal/milestones/ingest",
        &[("Content-Type", "application/json")],
        Some(b"{}"),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 500);
    let auth = format!("Bearer {TOKEN}");
    let page = |path: &'static str| {
        let auth = auth.clone();
        let s = &s;
        async move {
            let r = get_with(s, path, &[("Authorization", &auth)]).await;
            assert_eq!(r.status, 200, "{path}: {}", body(&r));
            body(&r)
        }
    };

    let runs = page("/").await;
    assert!(runs.contains("/dashboard/runs/r1"), "{runs}");
    assert!(
        runs.contains("&#60;script&#62;alert(1)&#60;/script&#62; ship it"),
        "{runs}"
    );
    assert!(!runs.contains("<script>alert"), "{runs}");

    let run = page("/dashboard/runs/r1").await;
    assert!(run.contains("<svg"), "{run}");
    assert_eq!(run.matches(r#"class="edge""#).count(), 1, "{run}");
    for needle in [
        "first",
        "second",
        "COMPLETED",
        "QUEUED",
        r#"data-order-id="o2""#,
    ] {
        assert!(run.contains(needle), "{needle}: {run}");
    }
    assert!(run.contains("/dashboard/runs/r1/events?after="), "{run}");

    let order = page("/dashboard/orders/o1").await;
    for needle in [
        "Wrote the first step",
        "docs/first.md",
        "AAR_WRITTEN",
        "ORDER_COMPLETED",
        "first step",
    ] {
        assert!(order.contains(needle), "{needle}: {order}");
    }
    let order2 = page("/dashboard/orders/o2").await;
    assert!(order2.contains("No AAR yet"), "{order2}");

    let patrols = page("/dashboard/patrols").await;
    assert!(
        patrols.contains("ESCALATION_RAISED") && patrols.contains("PATROL_TICK"),
        "{patrols}"
    );
    assert!(patrols.contains("findings-empty"), "{patrols}");

    let milestones = page("/dashboard/milestones").await;
    assert!(milestones.contains(r#"id="dead-letter""#), "{milestones}");
    assert!(milestones.contains("feed-empty"), "{milestones}");

    let appleseed = page("/dashboard/appleseed").await;
    assert!(
        appleseed.contains("garrison appleseed governance --write-report"),
        "{appleseed}"
    );
    let reports = dir.path().join("appleseed/reports");
    std::fs::create_dir_all(&reports).unwrap();
    std::fs::write(
        reports.join("latest_governance_report.json"),
        json!({"generated_at": "2026-01-02T03:04:05Z", "inputs": {"projected_feedback_records": 2},
               "summary": {"gate_id": "gate-under-test", "proposal_count": 0, "readiness_counts": {}},
               "proposals": []})
        .to_string(),
    )
    .unwrap();
    let appleseed = page("/dashboard/appleseed").await;
    assert!(
        appleseed.contains("gate-under-test") && appleseed.contains("proposals-empty"),
        "{appleseed}"
    );

    let scheduler = page("/dashboard/scheduler").await;
    assert!(scheduler.contains("jobs-empty"), "{scheduler}");
    let r = s
        .post(
            "/api/admin/jobs",
            &json!({"job_id": "nightly-report", "agent_id": "agent_default",
                    "schedule": "@every 24h", "message": "Report", "mode": "isolated",
                    "enabled": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", body(&r));
    let next = r.json()["next_run_at"].as_str().unwrap().to_string();
    let scheduler = page("/dashboard/scheduler").await;
    assert!(
        scheduler.contains("<code>nightly-report</code>")
            && scheduler.contains("<code>@every 24h</code>")
            && scheduler.contains(&format!("{} {}", &next[..10], &next[11..19]))
            && scheduler.contains("never"),
        "{scheduler}"
    );

    let r = get_with(&s, "/dashboard/no/such/page", &[("Authorization", &auth)]).await;
    assert_eq!(r.status, 404);
    assert!(body(&r).contains("no such dashboard page"), "{}", body(&r));
    let r = get_with(&s, "/dashboard/runs/nope", &[("Authorization", &auth)]).await;
    assert_eq!(r.status, 404);
    assert!(body(&r).contains("No run with id nope"), "{}", body(&r));
    s.stop().await;
}

#[tokio::test]
async fn run_stream_sends_order_changes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let batch = json!({"events": [
        ev("RUN_CREATED", Some("r1"), None, json!({})),
        ev("ORDER_CREATED", Some("r1"), Some("o1"), json!({})),
        ev("RUN_CREATED", Some("r2"), None, json!({})),
        ev("ORDER_CREATED", Some("r2"), Some("other"), json!({})),
    ]});
    assert_eq!(s.post("/events/batch", &batch).await.status, 201);
    let auth = format!("Bearer {TOKEN}");
    let (status, mut stream) = open_stream(
        s.addr,
        "/dashboard/runs/r1/events?after=4",
        &[("Authorization", &auth)],
    )
    .await;
    assert_eq!(status, 200);
    // Another run's change is not sent; this run's is, as the new state.
    let r = s
        .post(
            "/events",
            &ev("ORDER_CLAIMED", Some("r2"), Some("other"), json!({})),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = s
        .post(
            "/events",
            &ev("ORDER_CLAIMED", Some("r1"), Some("o1"), json!({})),
        )
        .await;
    assert_eq!(r.status, 201);
    let id = read_until(&mut stream, "id:", 10).await;
    assert_eq!(id.trim(), "id: 6");
    let data = read_until(&mut stream, "data:", 10).await;
    let change: Value =
        serde_json::from_str(data.trim().trim_start_matches("data:").trim()).unwrap();
    assert_eq!(change["kind"], "order");
    assert_eq!(change["order_id"], "o1");
    assert_eq!(change["status"], "CLAIMED");
    drop(stream);
    s.stop().await;
}
