//! The milestone outbox over real HTTP: self-delivery, retries with backoff,
//! final rejections, dead letters, restarts, and two outboxes over one ledger.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use garrison_contracts::ironclaw::EventType;
use garrison_ledger::{Ledger, NewEvent, Query, sqlite::SqliteLedger};
use garrison_server::{MilestoneSettings, MilestoneTarget, OutboxConfig, ServeConfig};
use garrison_test_support::db::scratch_database;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::common::{Server, config};

const SECRET: &str = "outbox-test-secret";

/// One request the test receiver saw.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    signature: String,
    timestamp: String,
    body: Vec<u8>,
}

impl Seen {
    fn key(&self) -> String {
        let v: Value = serde_json::from_slice(&self.body).unwrap();
        v["idempotencyKey"].as_str().unwrap().to_string()
    }
}

/// A tiny HTTP receiver answering from a script; its last answer repeats.
struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

const ACCEPTED: (u16, &str) = (200, r#"{"ok":true,"status":"accepted","milestoneId":"x"}"#);
const UNAVAILABLE: (u16, &str) = (503, r#"{"ok":false,"reason":"busy"}"#);
const BAD: (u16, &str) = (
    400,
    r#"{"ok":false,"status":"rejected","reason":"bad event"}"#,
);

impl Receiver {
    async fn start(script: &[(u16, &'static str)]) -> Receiver {
        Self::start_on("127.0.0.1:0".parse().unwrap(), script).await
    }

    async fn start_on(addr: SocketAddr, script: &[(u16, &'static str)]) -> Receiver {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
        let script = script.to_vec();
        let log = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                let (mut signature, mut timestamp, mut len) = (String::new(), String::new(), 0);
                loop {
                    line.clear();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        break;
                    }
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = l.split_once(':') {
                        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                        match k.as_str() {
                            "x-openclaw-signature" => signature = v,
                            "x-openclaw-timestamp" => timestamp = v,
                            "content-length" => len = v.parse().unwrap(),
                            _ => {}
                        }
                    }
                }
                let mut body = vec![0u8; len];
                reader.read_exact(&mut body).await.unwrap();
                let n = {
                    let mut seen = log.lock().unwrap();
                    seen.push(Seen {
                        at: Instant::now(),
                        signature,
                        timestamp,
                        body,
                    });
                    seen.len()
                };
                let (status, text) = script[(n - 1).min(script.len() - 1)];
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
                let mut stream = reader.into_inner();
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        Receiver { addr, seen, task }
    }

    fn url(&self) -> String {
        format!("http://{}/internal/milestones/ingest", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Stops accepting: later connections are refused.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

fn outbox(url: &str, max_attempts: u32, backoff_ms: u64) -> OutboxConfig {
    OutboxConfig {
        targets: vec![MilestoneTarget::new(url, SECRET.as_bytes().to_vec()).unwrap()],
        max_attempts,
        backoff: Duration::from_millis(backoff_ms),
        send_timeout: Duration::from_secs(5),
    }
}

fn serve_config(dir: &std::path::Path, outbox: OutboxConfig) -> ServeConfig {
    let mut c = config(dir);
    c.outbox = outbox;
    c
}

/// RUN_CREATED then RUN_COMPLETED through `POST /events`; the completion's event id.
async fn complete_run(s: &Server, run: &str) -> String {
    let created = json!({"type": "RUN_CREATED", "run_id": run, "theater_id": "th-1"});
    assert_eq!(s.post("/events", &created).await.status, 201);
    let done = json!({"type": "RUN_COMPLETED", "run_id": run, "theater_id": "th-1",
                      "payload": {"summary": "all orders passed"}});
    let r = s.post("/events", &done).await;
    assert_eq!(r.status, 201, "{:?}", r.json());
    r.json()["data"]["record"]["event_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Polls the deliveries route until one is in a final state (or `state`).
async fn wait_for_delivery(s: &Server, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = s.get("/api/milestones/deliveries").await.json();
        assert_eq!(v["ok"], true, "{v}");
        if let Some(item) = v["items"].as_array().and_then(|i| i.first())
            && item["state"] == state
        {
            return item.clone();
        }
        assert!(Instant::now() < deadline, "no `{state}` delivery: {v}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn assert_signed(seen: &Seen) {
    assert!(
        garrison_contracts::verify(SECRET.as_bytes(), &seen.body, &seen.signature).unwrap(),
        "bad signature"
    );
    assert!(garrison_contracts::parse_timestamp(&seen.timestamp).is_some());
    assert!(seen.timestamp.ends_with('Z') && seen.timestamp.len() == 24);
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[tokio::test]
async fn a_completed_run_is_delivered_to_our_own_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_port();
    let ingest = format!("http://{addr}/internal/milestones/ingest");
    let mut c = serve_config(dir.path(), outbox(&ingest, 3, 50));
    c.listen = addr.to_string();
    c.milestones = MilestoneSettings {
        secret: Some(SECRET.as_bytes().to_vec()),
        ..MilestoneSettings::default()
    };
    let s = Server::start_with(c).await;
    let id = complete_run(&s, "run-self").await;

    let d = wait_for_delivery(&s, "delivered").await;
    assert_eq!(d["source_event_id"], id.as_str());
    assert_eq!(d["target"], ingest.as_str());
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["last_http_status"], 200);

    let feed = s.get("/api/milestones/latest").await.json();
    let items = feed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{feed}");
    assert_eq!(items[0]["milestoneId"], id.as_str());
    assert_eq!(items[0]["riskStatus"], "completed");
    assert_eq!(items[0]["scope"], "theater:th-1/run:run-self");
    s.stop().await;
}

#[tokio::test]
async fn retries_with_backoff_until_accepted() {
    let rx = Receiver::start(&[UNAVAILABLE, UNAVAILABLE, ACCEPTED]).await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(serve_config(dir.path(), outbox(&rx.url(), 5, 100))).await;
    let id = complete_run(&s, "run-retry").await;

    let d = wait_for_delivery(&s, "delivered").await;
    assert_eq!(d["attempts"], 3);
    let seen = rx.seen();
    assert_eq!(seen.len(), 3);
    for r in &seen {
        assert_signed(r);
        assert_eq!(r.key(), format!("garrison:{id}"));
    }
    // 100 ms then 200 ms, each ±50%.
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(45));
    assert!(seen[2].at - seen[1].at >= Duration::from_millis(95));

    let steps = s
        .get("/api/events?type=MILESTONE_DELIVERY&limit=100")
        .await
        .json();
    let states: Vec<(u64, String)> = steps["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["payload"]["attempt"].as_u64().unwrap(),
                e["payload"]["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(u64, String)> = [
        (1, "sending"),
        (1, "retry"),
        (2, "sending"),
        (2, "retry"),
        (3, "sending"),
        (3, "delivered"),
    ]
    .into_iter()
    .map(|(a, s)| (a, s.to_string()))
    .collect();
    assert_eq!(states, expected);
    s.stop().await;
    rx.stop().await;
}

#[tokio::test]
async fn a_client_error_is_rejected_after_one_attempt() {
    let rx = Receiver::start(&[BAD]).await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(serve_config(dir.path(), outbox(&rx.url(), 5, 20))).await;
    complete_run(&s, "run-bad").await;

    let d = wait_for_delivery(&s, "rejected").await;
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["last_http_status"], 400);
    assert_eq!(d["last_reason"], "bad event");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.seen().len(), 1);
    s.stop().await;
    rx.stop().await;
}

#[tokio::test]
async fn exhausted_attempts_are_dead_lettered() {
    let rx = Receiver::start(&[UNAVAILABLE]).await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(serve_config(dir.path(), outbox(&rx.url(), 2, 20))).await;
    complete_run(&s, "run-dead").await;

    let d = wait_for_delivery(&s, "dead-letter").await;
    assert_eq!(d["attempts"], 2);
    assert_eq!(d["last_http_status"], 503);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.seen().len(), 2);
    s.stop().await;
    rx.stop().await;
}

#[tokio::test]
async fn pending_deliveries_survive_a_restart() {
    // The receiver answers 503 once, then goes away: the delivery is pending.
    let rx = Receiver::start(&[UNAVAILABLE]).await;
    let target = rx.addr;
    let dir = tempfile::tempdir().unwrap();
    let cfg = serve_config(dir.path(), outbox(&rx.url(), 100, 100));
    let s = Server::start_with(cfg.clone()).await;
    let id = complete_run(&s, "run-restart").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while rx.seen().is_empty() {
        assert!(Instant::now() < deadline, "no attempt reached the receiver");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = rx.seen();
    rx.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pending = s.get("/api/milestones/deliveries").await.json();
    let state = pending["items"][0]["state"].as_str().unwrap().to_string();
    assert!(state == "retry" || state == "sending", "{pending}");
    s.stop().await;

    let rx = Receiver::start_on(target, &[ACCEPTED]).await;
    let s = Server::start_with(cfg).await;
    let d = wait_for_delivery(&s, "delivered").await;
    assert!(d["attempts"].as_u64().unwrap() >= 2, "{d}");
    let after = rx.seen();
    assert_eq!(after.len(), 1);
    for r in before.iter().chain(&after) {
        assert_signed(r);
        assert_eq!(r.key(), format!("garrison:{id}"));
    }
    s.stop().await;
    rx.stop().await;
}

/// Exactly one `sending` per attempt number, whoever sent it.
fn assert_one_sender_per_attempt(steps: &[Value], attempts: u64) {
    for attempt in 1..=attempts {
        let sending = steps
            .iter()
            .filter(|p| p["attempt"] == attempt && p["state"] == "sending")
            .count();
        assert_eq!(sending, 1, "attempt {attempt}: {steps:?}");
    }
    assert!(
        !steps
            .iter()
            .any(|p| p["attempt"].as_u64().unwrap() > attempts),
        "{steps:?}"
    );
}

#[tokio::test]
async fn two_outboxes_over_one_embedded_ledger_send_each_attempt_once() {
    let rx = Receiver::start(&[UNAVAILABLE, UNAVAILABLE, ACCEPTED]).await;
    let dir = tempfile::tempdir().unwrap();
    let ledger: Arc<dyn Ledger> =
        Arc::new(SqliteLedger::open(&dir.path().join("ledger.db")).unwrap());
    let (stop, down) = tokio::sync::watch::channel(false);
    let mut outboxes = Vec::new();
    for _ in 0..2 {
        outboxes.push(tokio::spawn(garrison_milestones::run(
            ledger.clone(),
            outbox(&rx.url(), 5, 50),
            down.clone(),
        )));
    }
    ledger
        .append(NewEvent::new(EventType::RunCreated).run("run-2"))
        .await
        .unwrap();
    ledger
        .append(NewEvent::new(EventType::RunCompleted).run("run-2"))
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let steps = loop {
        let recs = ledger
            .read(&Query {
                event_type: Some(EventType::MilestoneDelivery),
                ..Query::default()
            })
            .await
            .unwrap();
        if recs.iter().any(|r| r.payload["state"] == "delivered") {
            break recs.into_iter().map(|r| r.payload).collect::<Vec<_>>();
        }
        assert!(Instant::now() < deadline, "not delivered: {recs:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stop.send(true).unwrap();
    for o in outboxes {
        o.await.unwrap().unwrap();
    }
    assert_one_sender_per_attempt(&steps, 3);
    assert_eq!(rx.seen().len(), 3);
    ledger.close().await.unwrap();
    rx.stop().await;
}

#[tokio::test]
async fn two_serves_over_one_postgres_ledger_send_each_attempt_once() {
    let Some(url) =
        scratch_database("outbox::two_serves_over_one_postgres_ledger_send_each_attempt_once")
            .await
            .unwrap()
    else {
        return;
    };

    let rx = Receiver::start(&[UNAVAILABLE, UNAVAILABLE, ACCEPTED]).await;
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut servers = Vec::new();
    for d in [&d1, &d2] {
        let mut c = serve_config(d.path(), outbox(&rx.url(), 5, 50));
        c.database_url = Some(url.clone());
        servers.push(Server::start_with(c).await);
    }
    complete_run(&servers[0], "run-pg").await;
    wait_for_delivery(&servers[1], "delivered").await;
    let steps = servers[0]
        .get("/api/events?type=MILESTONE_DELIVERY&limit=100")
        .await
        .json();
    let steps: Vec<Value> = steps["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"].clone())
        .collect();
    assert_one_sender_per_attempt(&steps, 3);
    assert_eq!(rx.seen().len(), 3);
    for s in servers {
        s.stop().await;
    }
    rx.stop().await;
}
