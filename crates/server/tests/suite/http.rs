//! HTTP tests against a real listener and a SQLite ledger in a tempdir.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use garrison_server::{ServeConfig, ServeError, TokenSource};
use serde_json::{Value, json};

use super::common::{self, Server, TOKEN, open_stream, read_until, request, request_chunked};

fn ev(t: &str, run: Option<&str>, order: Option<&str>) -> Value {
    let mut v = json!({"type": t, "theater_id": "demo"});
    if let Some(r) = run {
        v["run_id"] = json!(r);
    }
    if let Some(o) = order {
        v["order_id"] = json!(o);
    }
    v
}

async fn head(s: &Server) -> i64 {
    let h = s.get("/health").await.json();
    h["data"]["head_seq"].as_i64().unwrap()
}

#[tokio::test]
async fn auth_is_required_except_on_health() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;

    let r = request(s.addr, "GET", "/runs/x", &[], None).await.unwrap();
    r.assert_error(401, "UNAUTHORIZED");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));

    for bad in [
        "Bearer nope",
        "Bearer test-token-012345678",
        "Bearer test-token-01234567890",
        "Basic dGVzdA==",
        TOKEN,
    ] {
        let r = request(s.addr, "GET", "/runs/x", &[("Authorization", bad)], None)
            .await
            .unwrap();
        r.assert_error(401, "UNAUTHORIZED");
    }
    // Unknown routes do not leak past auth either.
    request(s.addr, "GET", "/nope", &[], None)
        .await
        .unwrap()
        .assert_error(401, "UNAUTHORIZED");

    // Right token: through to the handler (404 for an unknown run).
    s.get("/runs/x").await.assert_error(404, "NOT_FOUND");

    let h = request(s.addr, "GET", "/health", &[], None).await.unwrap();
    assert_eq!(h.status, 200);
    let v = h.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["error"], Value::Null);
    assert_eq!(v["data"]["status"], "ok");
    assert_eq!(v["data"]["backend"], "sqlite");
    assert_eq!(v["data"]["head_seq"], 0);

    let head = request(s.addr, "HEAD", "/health", &[], None).await.unwrap();
    assert_eq!(head.status, 200);

    let hz = request(s.addr, "GET", "/healthz", &[], None).await.unwrap();
    assert_eq!(hz.status, 200);
    assert_eq!(hz.json(), json!({"ok": true}));

    // Milestone ingest is public (HMAC-signed): no bearer check; without a
    // configured secret it answers 500 in the milestone shape.
    let r = request(
        s.addr,
        "POST",
        "/internal/milestones/ingest",
        &[],
        Some(b"{}"),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["status"], "rejected");
    s.stop().await;
}

#[tokio::test]
async fn append_and_read_run_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;

    let mut run = ev("RUN_CREATED", Some("r1"), None);
    run["payload"] = json!({"objective": "ship it", "user_id": "u_1"});
    let r = s.post("/events", &run).await;
    assert_eq!(r.status, 201);
    let v = r.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["error"], Value::Null);
    assert_eq!(v["data"]["duplicate"], false);
    let rec = &v["data"]["record"];
    assert_eq!(rec["seq"], 1);
    assert_eq!(rec["type"], "RUN_CREATED");
    assert_eq!(rec["garrison_id"], "local");
    assert_eq!(rec["stream"], "run:r1");
    assert_eq!(rec["stream_version"], 1);
    assert!(rec["event_id"].as_str().unwrap().len() >= 20);

    let mut order = ev("ORDER_CREATED", Some("r1"), Some("o1"));
    order["payload"] = json!({"objective": "part 1", "depends_on": [], "lock_scope": ["src"]});
    assert_eq!(s.post("/events", &order).await.status, 201);
    // The contract's typo spelling is accepted and written canonically.
    let claimed = s
        .post("/events", &ev("ORDER CLAIMED", Some("r1"), Some("o1")))
        .await;
    assert_eq!(claimed.status, 201);
    assert_eq!(claimed.json()["data"]["record"]["type"], "ORDER_CLAIMED");
    let mut art = ev("ARTIFACT_WRITTEN", Some("r1"), Some("o1"));
    art["payload"] = json!({"path": "outputs/a.txt", "type": "text/plain"});
    assert_eq!(s.post("/events", &art).await.status, 201);
    let mut aar = ev("AAR_WRITTEN", Some("r1"), Some("o1"));
    aar["payload"] = json!({"path": "aar.json", "status": "completed"});
    assert_eq!(s.post("/events", &aar).await.status, 201);

    let r = s.get("/runs/r1").await;
    assert_eq!(r.status, 200);
    let d = &r.json()["data"];
    assert_eq!(d["run_id"], "r1");
    assert_eq!(d["status"], "OPEN");
    assert_eq!(d["run"]["objective"], "ship it");
    assert_eq!(d["order_counts"]["CLAIMED"], 1, "{d}");
    assert_eq!(d["orders"].as_array().unwrap().len(), 1);
    assert_eq!(d["orders"][0]["order_id"], "o1");
    assert!(d.get("summary").is_some());

    let r = s.get("/orders/o1").await;
    assert_eq!(r.status, 200);
    let d = &r.json()["data"];
    assert_eq!(d["order_id"], "o1");
    assert_eq!(d["status"], "CLAIMED");
    assert_eq!(d["order"]["lock_scope"], json!(["src"]));
    assert_eq!(d["aar"]["path"], "aar.json");
    assert_eq!(
        d["artifacts"],
        json!([{"path": "outputs/a.txt", "type": "text/plain"}])
    );

    s.get("/orders/nope").await.assert_error(404, "NOT_FOUND");
    s.get("/runs/nope").await.assert_error(404, "NOT_FOUND");
    s.stop().await;
}

#[tokio::test]
async fn replayed_event_id_returns_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let mut e = ev("RUN_CREATED", Some("r1"), None);
    e["event_id"] = json!("evt-1");
    let first = s.post("/events", &e).await;
    assert_eq!(first.status, 201);
    e["payload"] = json!({"objective": "different"});
    let again = s.post("/events", &e).await;
    assert_eq!(again.status, 200);
    let (a, b) = (first.json(), again.json());
    assert_eq!(b["data"]["duplicate"], true);
    assert_eq!(a["data"]["record"], b["data"]["record"]);
    assert_eq!(head(&s).await, 1);
    s.stop().await;
}

#[tokio::test]
async fn batch_is_atomic_and_accepts_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;

    let wrapped = json!({"events": [
        ev("RUN_CREATED", Some("r1"), None),
        ev("ORDER_CREATED", Some("r1"), Some("o1")),
        ev("ORDER_ENQUEUED", Some("r1"), Some("o1")),
    ]});
    let r = s.post("/events/batch", &wrapped).await;
    assert_eq!(r.status, 201);
    let d = &r.json()["data"];
    assert_eq!(d["duplicates"], 0);
    let seqs: Vec<i64> = d["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);

    let mut dup = ev("ORDER_CLAIMED", Some("r1"), Some("o1"));
    dup["event_id"] = json!("claim-1");
    let bare = json!([dup.clone(), ev("ORDER_STARTED", Some("r1"), Some("o1"))]);
    let r = s.post("/events/batch", &bare).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["data"]["duplicates"], 0);
    // Replay of an already stored event inside a new batch.
    let r = s
        .post(
            "/events/batch",
            &json!([dup, ev("PATROL_TICK", None, None)]),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["data"]["duplicates"], 1);
    assert_eq!(head(&s).await, 6);

    // Second event is illegal (a QUEUED order cannot be created twice): nothing lands.
    let bad = json!({"events": [
        ev("PATROL_TICK", None, None),
        ev("ORDER_CREATED", Some("r1"), Some("o1")),
    ]});
    s.post("/events/batch", &bad)
        .await
        .assert_error(409, "INVALID_TRANSITION");
    assert_eq!(head(&s).await, 6);

    s.post("/events/batch", &json!({"events": []}))
        .await
        .assert_error(422, "SCHEMA_INVALID");
    s.post("/events/batch", &json!([]))
        .await
        .assert_error(422, "SCHEMA_INVALID");
    s.post("/events/batch", &json!({"evts": []}))
        .await
        .assert_error(422, "SCHEMA_INVALID");
    let msg = s
        .post(
            "/events/batch",
            &json!([ev("PATROL_TICK", None, None), {"type": "NOPE"}]),
        )
        .await
        .assert_error(422, "SCHEMA_INVALID");
    assert!(msg.contains("events[1]"), "{msg}");
    assert_eq!(head(&s).await, 6);
    s.stop().await;
}

#[tokio::test]
async fn bad_bodies_come_back_in_the_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;

    s.post_raw("/events", Some("application/json"), b"{not json")
        .await
        .assert_error(400, "BAD_REQUEST");
    s.post_raw("/events", Some("text/plain"), b"{}")
        .await
        .assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    s.post_raw("/events", None, b"{}")
        .await
        .assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    let msg = s
        .post("/events", &json!({"type": "NOT_A_TYPE"}))
        .await
        .assert_error(422, "SCHEMA_INVALID");
    assert!(msg.contains("NOT_A_TYPE"), "{msg}");
    s.post("/events", &json!({"run_id": "r"}))
        .await
        .assert_error(422, "SCHEMA_INVALID");
    s.post("/events", &json!({"type": "PATROL_TICK", "payload": [1]}))
        .await
        .assert_error(422, "SCHEMA_INVALID");
    s.post(
        "/events",
        &json!({"type": "PATROL_TICK", "ts": "yesterday"}),
    )
    .await
    .assert_error(422, "SCHEMA_INVALID");
    // An order-status event needs an order_id.
    s.post("/events", &json!({"type": "ORDER_STARTED"}))
        .await
        .assert_error(422, "SCHEMA_INVALID");

    s.get("/no/such/route").await.assert_error(404, "NOT_FOUND");
    let r = s.call("DELETE", "/events", None).await;
    r.assert_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(head(&s).await, 0);
    s.stop().await;
}

#[tokio::test]
async fn illegal_transition_is_409_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    assert_eq!(
        s.post("/events", &ev("ORDER_CREATED", None, Some("o1")))
            .await
            .status,
        201
    );
    let msg = s
        .post("/events", &ev("ORDER_COMPLETED", None, Some("o1")))
        .await
        .assert_error(409, "INVALID_TRANSITION");
    assert!(msg.contains("o1"), "{msg}");
    assert_eq!(head(&s).await, 1);
    let o = s.get("/orders/o1").await.json();
    assert_eq!(o["data"]["status"], "QUEUED");
    s.stop().await;
}

#[tokio::test]
async fn stale_expected_version_is_a_concurrency_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let mut first = ev("ORDER_CREATED", None, Some("o1"));
    first["expected_version"] = json!(0);
    assert_eq!(s.post("/events", &first).await.status, 201);
    let mut claim = ev("ORDER_CLAIMED", None, Some("o1"));
    claim["expected_version"] = json!(1);
    claim["unit_id"] = json!("unit_a");
    assert_eq!(s.post("/events", &claim).await.status, 201);
    // A second claimer that also read version 1 loses.
    claim["unit_id"] = json!("unit_b");
    let msg = s
        .post("/events", &claim)
        .await
        .assert_error(409, "CONCURRENCY_CONFLICT");
    assert!(msg.contains("order:o1"), "{msg}");
    assert_eq!(head(&s).await, 2);
    s.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::config(dir.path());
    c.body_limit = 1024;
    let s = Server::start_with(c).await;
    let big = json!({"type": "PATROL_TICK", "payload": {"blob": "x".repeat(2000)}});
    s.post("/events", &big)
        .await
        .assert_error(413, "PAYLOAD_TOO_LARGE");
    let auth = format!("Bearer {TOKEN}");
    request_chunked(
        s.addr,
        "/events",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        8192,
    )
    .await
    .unwrap()
    .assert_error(413, "PAYLOAD_TOO_LARGE");
    // Under the limit still works.
    assert_eq!(
        s.post("/events", &ev("PATROL_TICK", None, None))
            .await
            .status,
        201
    );
    s.stop().await;
}

#[tokio::test]
async fn event_listing_filters_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let batch = json!([
        ev("RUN_CREATED", Some("r1"), None),
        ev("ORDER_CREATED", Some("r1"), Some("o1")),
        ev("ORDER_CREATED", Some("r1"), Some("o2")),
        ev("PATROL_TICK", None, None),
        ev("ORDER_CLAIMED", Some("r1"), Some("o1")),
    ]);
    assert_eq!(s.post("/events/batch", &batch).await.status, 201);

    let all = s.get("/api/events").await.json();
    assert_eq!(all["ok"], true);
    assert_eq!(all["data"]["events"].as_array().unwrap().len(), 5);
    assert_eq!(all["data"]["next_after"], 5);

    let page = s.get("/api/events?after=1&limit=2").await.json();
    let seqs: Vec<i64> = page["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![2, 3]);
    assert_eq!(page["data"]["next_after"], 3);

    let o1 = s.get("/api/events?order_id=o1").await.json();
    assert_eq!(o1["data"]["events"].as_array().unwrap().len(), 2);
    let created = s
        .get("/api/events?type=ORDER_CREATED&run_id=r1")
        .await
        .json();
    assert_eq!(created["data"]["events"].as_array().unwrap().len(), 2);
    let empty = s.get("/api/events?after=99").await.json();
    assert_eq!(empty["data"], json!({"events": [], "next_after": 99}));
    let capped = s.get("/api/events?limit=5000").await;
    assert_eq!(capped.status, 200);

    s.get("/api/events?type=NOPE")
        .await
        .assert_error(400, "BAD_REQUEST");
    s.get("/api/events?limit=0")
        .await
        .assert_error(400, "BAD_REQUEST");
    s.get("/api/events?limit=abc")
        .await
        .assert_error(400, "BAD_REQUEST");
    s.get("/api/events?after=-1")
        .await
        .assert_error(400, "BAD_REQUEST");
    s.get("/api/events?bogus=1")
        .await
        .assert_error(400, "BAD_REQUEST");
    request(s.addr, "GET", "/api/events", &[], None)
        .await
        .unwrap()
        .assert_error(401, "UNAUTHORIZED");
    s.stop().await;
}

#[tokio::test]
async fn sse_stream_delivers_backlog_and_live_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let mut first = ev("PATROL_TICK", None, None);
    first["event_id"] = json!("before-connect");
    assert_eq!(s.post("/events", &first).await.status, 201);

    let auth = format!("Bearer {TOKEN}");
    let (status, mut stream) = open_stream(
        s.addr,
        "/api/events/stream?after=0",
        &[("Authorization", &auth)],
    )
    .await;
    assert_eq!(status, 200);
    read_until(&mut stream, "before-connect", 10).await;

    let mut live = ev("PATROL_TICK", None, None);
    live["event_id"] = json!("after-connect");
    assert_eq!(s.post("/events", &live).await.status, 201);
    let id_line = read_until(&mut stream, "id:", 10).await;
    assert_eq!(id_line.trim(), "id: 2");
    let data = read_until(&mut stream, "data:", 10).await;
    let rec: Value = serde_json::from_str(data.trim().trim_start_matches("data:").trim()).unwrap();
    assert_eq!(rec["event_id"], "after-connect");
    assert_eq!(rec["seq"], 2);

    // Filtered stream resuming via Last-Event-ID skips the first event.
    let (status, mut filtered) = open_stream(
        s.addr,
        "/api/events/stream?type=PATROL_TICK",
        &[("Authorization", &auth), ("Last-Event-ID", "1")],
    )
    .await;
    assert_eq!(status, 200);
    let line = read_until(&mut filtered, "data:", 10).await;
    assert!(line.contains("after-connect"), "{line}");

    // Without a token the stream is refused.
    let (status, _) = open_stream(s.addr, "/api/events/stream", &[]).await;
    assert_eq!(status, 401);

    // Shutdown ends open streams instead of hanging the drain.
    s.stop().await;
}

#[tokio::test]
async fn snapshots_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let batch = json!([
        ev("RUN_CREATED", Some("r1"), None),
        ev("ORDER_CREATED", Some("r1"), Some("o1")),
        ev("ORDER_CLAIMED", Some("r1"), Some("o1")),
    ]);
    assert_eq!(s.post("/events/batch", &batch).await.status, 201);
    s.stop().await;

    let s = Server::start(dir.path()).await;
    let r = s.get("/runs/r1").await.json();
    assert_eq!(r["data"]["orders"][0]["status"], "CLAIMED");
    assert_eq!(head(&s).await, 3);
    s.stop().await;

    // And the ledger opened directly agrees.
    let ledger = garrison_ledger::open(dir.path(), None).await.unwrap();
    assert!(ledger.order_snapshot("o1").await.unwrap().is_some());
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_keeps_every_acknowledged_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path()).await;
    let addr = s.addr;
    let done = Arc::new(AtomicUsize::new(0));
    let notify = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    for i in 0..200 {
        let done = done.clone();
        let notify = notify.clone();
        tasks.push(tokio::spawn(async move {
            let body = serde_json::to_vec(&json!({
                "type": "PATROL_TICK", "event_id": format!("tick-{i}")
            }))
            .unwrap();
            let auth = format!("Bearer {TOKEN}");
            let r = request(
                addr,
                "POST",
                "/events",
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/json"),
                ],
                Some(&body),
            )
            .await;
            if done.fetch_add(1, Ordering::SeqCst) == 20 {
                notify.notify_one();
            }
            (i, r.map(|r| r.status).ok())
        }));
    }
    notify.notified().await;
    s.trigger_stop();
    let mut acked = Vec::new();
    for t in tasks {
        let (i, status) = t.await.unwrap();
        if let Some(st) = status {
            assert!(
                st == 201 || st >= 500 || st == 503,
                "unexpected status {st}"
            );
            if st == 201 {
                acked.push(i);
            }
        }
    }
    s.stop().await;
    eprintln!("acked {} of 200", acked.len());
    assert!(acked.len() >= 20, "only {} acknowledged", acked.len());

    let ledger = garrison_ledger::open(dir.path(), None).await.unwrap();
    for i in &acked {
        assert!(
            ledger.get(&format!("tick-{i}")).await.unwrap().is_some(),
            "acknowledged tick-{i} was lost"
        );
    }
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn a_stalled_request_cannot_block_shutdown_forever() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::config(dir.path());
    c.drain_timeout = std::time::Duration::from_millis(300);
    let s = Server::start_with(c).await;
    let mut stalled = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"type\""
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    s.stop().await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // The abandoned connection task still holds the state (and with it the
    // ledger's file lock) until the client goes away.
    drop(stalled);
    let mut reopened = None;
    for _ in 0..100 {
        if let Ok(l) = garrison_ledger::open(dir.path(), None).await {
            reopened = Some(l);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    reopened
        .expect("ledger still locked")
        .close()
        .await
        .unwrap();
}

#[tokio::test]
async fn non_loopback_needs_an_explicit_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ServeConfig::new(dir.path().join("d"));
    c.listen = "0.0.0.0:0".into();
    let err = garrison_server::serve(c.clone(), async {}, |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServeError::NonLoopbackWithoutToken(_)),
        "{err}"
    );
    assert!(err.to_string().contains("GARRISON_API_TOKEN"));
    // Refused before anything was written.
    assert!(!dir.path().join("d").exists());

    c.token = Some("  ".into());
    c.listen = "127.0.0.1:0".into();
    assert!(matches!(
        garrison_server::serve(c, async {}, |_| {}).await,
        Err(ServeError::Token(_))
    ));
}

#[tokio::test]
async fn generated_token_is_stored_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::config(dir.path());
    c.token = None;
    let s = Server::start_with(c.clone()).await;
    let path = dir.path().join("api-token");
    assert_eq!(s.ready.token_source, TokenSource::Generated(path.clone()));
    let token = std::fs::read_to_string(&path).unwrap().trim().to_string();
    let auth = format!("Bearer {token}");
    let r = request(
        s.addr,
        "GET",
        "/api/events",
        &[("Authorization", &auth)],
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    s.stop().await;

    let s = Server::start_with(c).await;
    assert_eq!(s.ready.token_source, TokenSource::Stored(path));
    let r = request(
        s.addr,
        "GET",
        "/api/events",
        &[("Authorization", &auth)],
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    s.stop().await;
}
