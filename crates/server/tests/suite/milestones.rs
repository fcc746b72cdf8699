//! Milestone ingest, feed and dead letter over real HTTP (milestone-ingest.md,
//! docs/interface.md "Milestone signatures").

use std::io::Write;

use garrison_contracts::sign;
use garrison_ledger::format_ts;
use garrison_server::MilestoneSettings;
use serde_json::{Value, json};

use super::common::{Resp, Server, config, request};

const SECRET: &str = "milestone-test-secret";
const INGEST: &str = "/internal/milestones/ingest";

fn settings() -> MilestoneSettings {
    MilestoneSettings {
        secret: Some(SECRET.as_bytes().to_vec()),
        ..MilestoneSettings::default()
    }
}

async fn start(dir: &std::path::Path, settings: MilestoneSettings) -> Server {
    let mut c = config(dir);
    c.milestones = settings;
    Server::start_with(c).await
}

fn body(key: &str, milestone: &str) -> Value {
    json!({
        "idempotencyKey": key,
        "sentAtUtc": "2026-02-28T12:34:56.000Z",
        "event": {
            "milestoneId": milestone,
            "timestampUtc": "2026-02-28T12:34:56.000Z",
            "scope": "backbone",
            "claim": "ledger durable",
            "evidence": [{"type": "log", "path": "workspace/state.json", "summary": "runtime evidence"}],
            "riskStatus": "on-track",
            "nextAction": "ship",
            "source": "orchestrator"
        }
    })
}

fn now() -> String {
    format_ts(jiff::Timestamp::now())
}

/// Posts `bytes` with the given signature and timestamp headers (None = omitted).
async fn post(s: &Server, bytes: &[u8], signature: Option<&str>, stamp: Option<&str>) -> Resp {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(sig) = signature {
        headers.push(("x-openclaw-signature", sig));
    }
    if let Some(ts) = stamp {
        headers.push(("x-openclaw-timestamp", ts));
    }
    request(s.addr, "POST", INGEST, &headers, Some(bytes))
        .await
        .unwrap()
}

/// Signs and posts `doc` as a well-behaved sender would.
async fn send(s: &Server, doc: &Value) -> Resp {
    let bytes = serde_json::to_vec(doc).unwrap();
    let sig = sign(SECRET.as_bytes(), &bytes).unwrap();
    post(s, &bytes, Some(&sig), Some(&now())).await
}

fn assert_rejected(r: &Resp, status: u16, reason_has: &str) {
    assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["ok"], false);
    assert_eq!(v["status"], "rejected");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains(reason_has),
        "reason `{reason}` lacks `{reason_has}`"
    );
}

#[tokio::test]
async fn every_rejection_path_answers_its_status_and_is_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), settings()).await;
    let good = serde_json::to_vec(&body("k-1", "m-1")).unwrap();
    let good_sig = sign(SECRET.as_bytes(), &good).unwrap();

    // Headers missing.
    assert_rejected(&post(&s, &good, None, Some(&now())).await, 401, "header");
    assert_rejected(&post(&s, &good, Some(&good_sig), None).await, 401, "header");
    // Too large (64 KiB by default).
    let mut big = body("k-big", "m-big");
    big["event"]["claim"] = json!("x".repeat(70 * 1024));
    let big = serde_json::to_vec(&big).unwrap();
    let big_sig = sign(SECRET.as_bytes(), &big).unwrap();
    assert_rejected(
        &post(&s, &big, Some(&big_sig), Some(&now())).await,
        413,
        "exceeds",
    );
    // Not JSON.
    assert_rejected(
        &post(&s, b"{not json", Some(&good_sig), Some(&now())).await,
        400,
        "not JSON",
    );
    // Key missing or blank.
    for doc in [
        json!({"event": {}}),
        json!({"idempotencyKey": "  ", "event": {}}),
    ] {
        let b = serde_json::to_vec(&doc).unwrap();
        let sig = sign(SECRET.as_bytes(), &b).unwrap();
        assert_rejected(
            &post(&s, &b, Some(&sig), Some(&now())).await,
            400,
            "idempotencyKey",
        );
    }
    // Timestamps: unparseable, stale, from the future.
    assert_rejected(
        &post(&s, &good, Some(&good_sig), Some("yesterday")).await,
        401,
        "ISO-8601",
    );
    let stale = format_ts(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(301));
    assert_rejected(
        &post(&s, &good, Some(&good_sig), Some(&stale)).await,
        401,
        "tolerance",
    );
    let future = format_ts(jiff::Timestamp::now() + jiff::SignedDuration::from_secs(301));
    assert_rejected(
        &post(&s, &good, Some(&good_sig), Some(&future)).await,
        401,
        "tolerance",
    );
    // Wrong signature: another secret, a tampered body, garbage.
    let other = sign(b"another secret", &good).unwrap();
    assert_rejected(
        &post(&s, &good, Some(&other), Some(&now())).await,
        401,
        "signature",
    );
    let tampered = serde_json::to_vec(&body("k-1", "m-2")).unwrap();
    assert_rejected(
        &post(&s, &tampered, Some(&good_sig), Some(&now())).await,
        401,
        "signature",
    );
    assert_rejected(
        &post(&s, &good, Some("zz"), Some(&now())).await,
        401,
        "signature",
    );
    // Signed but invalid events.
    let mut bad = body("k-bad", "m-bad");
    bad["event"]["evidence"] = json!([]);
    assert_rejected(&send(&s, &bad).await, 400, "evidence");
    let mut bad = body("k-bad2", "m-bad2");
    bad["event"]["riskStatus"] = json!("fine");
    assert_rejected(&send(&s, &bad).await, 400, "riskStatus");
    let mut bad = body("k-bad3", "m-bad3");
    bad["event"]["evidence"][0]["type"] = json!("tweet");
    assert_rejected(&send(&s, &bad).await, 400, "type");

    // Nothing was accepted; every rejection is in the dead letter, newest first.
    let feed = s.get("/api/milestones/latest").await.json();
    assert_eq!(feed, json!({"ok": true, "items": []}));
    let dl = s.get("/api/milestones/dead-letter").await.json();
    assert_eq!(dl["ok"], true);
    assert_eq!(dl["count"], 15);
    let items = dl["items"].as_array().unwrap();
    assert_eq!(items.len(), 15);
    assert!(items[0]["reason"].as_str().unwrap().contains("type"));
    assert_eq!(items[0]["idempotencyKey"], "k-bad3");
    assert!(items[14]["reason"].as_str().unwrap().contains("header"));
    assert!(
        items[14].get("idempotencyKey").is_none(),
        "no key is known before the body"
    );
    for item in items {
        let ts = item["timestampUtc"].as_str().unwrap();
        assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{ts}");
    }
    // The dead letter is behind the bearer token.
    let anon = request(s.addr, "GET", "/api/milestones/dead-letter", &[], None)
        .await
        .unwrap();
    assert_eq!(anon.status, 401);
    s.stop().await;
}

#[tokio::test]
async fn missing_secret_is_a_500_rejection() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), MilestoneSettings::default()).await;
    let r = send(&s, &body("k", "m")).await;
    assert_rejected(&r, 500, "not configured");
    assert_eq!(
        s.get("/api/milestones/dead-letter").await.json()["count"],
        1
    );
    s.stop().await;
}

#[tokio::test]
async fn accepted_duplicate_and_a_bounded_newest_first_feed() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        MilestoneSettings {
            feed_limit: 3,
            dead_letter_limit: 2,
            ..settings()
        },
    )
    .await;
    for i in 1..=4 {
        let r = send(&s, &body(&format!("key-{i}"), &format!("m-{i}"))).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json(),
            json!({"ok": true, "status": "accepted", "milestoneId": format!("m-{i}")})
        );
    }
    // Same key again, even with another body: a duplicate of the original.
    let r = send(&s, &body("key-2", "m-other")).await;
    assert_eq!(
        r.json(),
        json!({"ok": true, "status": "duplicate", "milestoneId": "m-2"})
    );

    let ids = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["milestoneId"].as_str().unwrap().to_string())
            .collect()
    };
    // Default page 20, capped by the feed bound (3 here); newest first.
    assert_eq!(
        ids(s.get("/api/milestones/latest").await.json()),
        ["m-4", "m-3", "m-2"]
    );
    assert_eq!(
        ids(s.get("/api/milestones/latest?limit=2").await.json()),
        ["m-4", "m-3"]
    );
    assert_eq!(
        ids(s.get("/api/milestones/latest?limit=500").await.json()).len(),
        3
    );
    let item = &s.get("/api/milestones/latest?limit=1").await.json()["items"][0];
    assert_eq!(
        item,
        &body("key-4", "m-4")["event"],
        "items keep the contract's shape"
    );
    for bad in ["0", "-1", "abc"] {
        let r = s.get(&format!("/api/milestones/latest?limit={bad}")).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.json()["ok"], false);
    }
    // The dead letter keeps its bound (2 here).
    for _ in 0..5 {
        post(&s, b"{}", None, None).await;
    }
    let dl = s.get("/api/milestones/dead-letter").await.json();
    assert_eq!(dl["count"], 2);
    // `source` defaults to orchestrator.
    let mut no_source = body("key-5", "m-5");
    no_source["event"].as_object_mut().unwrap().remove("source");
    assert_eq!(send(&s, &no_source).await.json()["status"], "accepted");
    let item = &s.get("/api/milestones/latest?limit=1").await.json()["items"][0];
    assert_eq!(item["source"], "orchestrator");
    s.stop().await;
}

#[tokio::test]
async fn one_acceptance_per_key_under_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), settings()).await;
    let bytes = serde_json::to_vec(&body("contended", "m-c")).unwrap();
    let sig = sign(SECRET.as_bytes(), &bytes).unwrap();
    let stamp = now();
    let sends: Vec<_> = (0..300)
        .map(|_| {
            let (addr, bytes, sig, stamp) = (s.addr, bytes.clone(), sig.clone(), stamp.clone());
            tokio::spawn(async move {
                let headers = [
                    ("Content-Type", "application/json"),
                    ("x-openclaw-signature", sig.as_str()),
                    ("x-openclaw-timestamp", stamp.as_str()),
                ];
                // A connection refused or reset under load is retried: the
                // server dedupes, so a retry can only ever be a duplicate.
                let mut tries = 0;
                loop {
                    match request(addr, "POST", INGEST, &headers, Some(&bytes)).await {
                        Ok(r) => break r.json(),
                        Err(e) if tries < 5 => {
                            tries += 1;
                            eprintln!("retrying after {e}");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                        Err(e) => panic!("request failed: {e}"),
                    }
                }
            })
        })
        .collect();
    let mut accepted = 0;
    let mut duplicate = 0;
    for h in sends {
        let v = h.await.unwrap();
        assert_eq!(v["milestoneId"], "m-c");
        match v["status"].as_str().unwrap() {
            "accepted" => accepted += 1,
            "duplicate" => duplicate += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((accepted, duplicate), (1, 299));
    let feed = s.get("/api/milestones/latest").await.json();
    assert_eq!(feed["items"].as_array().unwrap().len(), 1);
    let events = s.get("/api/events?type=MILESTONE_RECEIVED").await.json();
    assert_eq!(events["data"]["events"].as_array().unwrap().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn restart_keeps_feed_dead_letter_and_dedupe() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), settings()).await;
    assert_eq!(
        send(&s, &body("persist", "m-p")).await.json()["status"],
        "accepted"
    );
    post(&s, b"{}", None, None).await;
    s.stop().await;

    let s = start(dir.path(), settings()).await;
    assert_eq!(
        send(&s, &body("persist", "m-p")).await.json(),
        json!({"ok": true, "status": "duplicate", "milestoneId": "m-p"})
    );
    let feed = s.get("/api/milestones/latest").await.json();
    assert_eq!(feed["items"][0]["milestoneId"], "m-p");
    assert_eq!(
        s.get("/api/milestones/dead-letter").await.json()["count"],
        1
    );
    s.stop().await;
}

/// A body laid out and signed by a real JavaScript sender (node), with floats,
/// unicode and escapes, verifies; so does any re-layout of the same JSON.
#[tokio::test]
async fn bodies_signed_by_a_javascript_sender_verify() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), settings()).await;
    let mut doc = body("js-1", "m-js");
    doc["event"]["claim"] = json!("naïve “quotes” \u{1F600} \\ \"q\" \u{2028} tab\tnl\n");
    doc["event"]["x_metrics"] = json!({"ratio": 0.1, "big": 1e21, "tiny": 1e-7, "int": 1.0, "neg": -0.0, "2": "index", "10": "key"});
    // Pretty-printed with a different key order than the canonical form.
    let pretty = serde_json::to_vec_pretty(&doc).unwrap();

    let script = r#"
const crypto = require('crypto');
const sortKeys = (v) => Array.isArray(v) ? v.map(sortKeys)
  : (v === null || typeof v !== 'object') ? v
  : Object.keys(v).sort().reduce((o, k) => { o[k] = sortKeys(v[k]); return o; }, {});
let body = '';
process.stdin.on('data', (c) => body += c);
process.stdin.on('end', () => {
  const canonical = JSON.stringify(sortKeys(JSON.parse(body)));
  process.stdout.write(crypto.createHmac('sha256', process.argv[1]).update(canonical).digest('hex'));
});"#;
    let node = std::process::Command::new("node")
        .args(["-e", script, SECRET])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let js_sig = match node {
        Ok(mut child) => {
            child.stdin.take().unwrap().write_all(&pretty).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            Some(String::from_utf8(out.stdout).unwrap())
        }
        Err(_) => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED javascript sender: node not found (Garrison's own signer still checked)"
            );
            None
        }
    };
    let ours = sign(SECRET.as_bytes(), &pretty).unwrap();
    if let Some(js) = &js_sig {
        assert_eq!(
            js, &ours,
            "Garrison and a JS sender sign the same bytes alike"
        );
        let upper = js.to_uppercase();
        let r = post(&s, &pretty, Some(&upper), Some(&now())).await;
        assert_eq!(r.json()["status"], "accepted", "uppercase hex is accepted");
    } else {
        assert_eq!(
            post(&s, &pretty, Some(&ours), Some(&now())).await.json()["status"],
            "accepted"
        );
    }
    // Compact re-layout of the same document: same signature, so a duplicate.
    let compact = serde_json::to_vec(&doc).unwrap();
    assert_eq!(
        post(&s, &compact, Some(&ours), Some(&now())).await.json()["status"],
        "duplicate"
    );
    s.stop().await;
}

/// A JavaScript string can hold an unpaired surrogate (one cut in the middle
/// of an emoji, say): `JSON.stringify` writes it as a `\udXXX` escape and
/// `JSON.parse` reads it back, so to a JS sender such a body is JSON. It
/// verifies and is accepted; the stored milestone holds U+FFFD in its place.
#[tokio::test]
async fn a_body_with_a_lone_surrogate_is_json_and_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), settings()).await;
    let text = serde_json::to_string(&body("lone-1", "m-lone")).unwrap();
    // Lone high, lone low, an escaped pair, and a `\\` before `ud800` text.
    let text = text.replace(
        r#""claim":"ledger durable""#,
        r#""claim":"cut \ud83d, \udc00, \ud83d\ude00, \\ud800""#,
    );
    assert!(text.contains(r"\ud83d,"), "{text}");
    let bytes = text.into_bytes();
    let sig = sign(SECRET.as_bytes(), &bytes).unwrap();
    let r = post(&s, &bytes, Some(&sig), Some(&now())).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"], "accepted");
    let item = &s.get("/api/milestones/latest?limit=1").await.json()["items"][0];
    assert_eq!(item["claim"], "cut \u{fffd}, \u{fffd}, \u{1F600}, \\ud800");
    // The same body again is a duplicate, not a second milestone.
    let r = post(&s, &bytes, Some(&sig), Some(&now())).await;
    assert_eq!(r.json()["status"], "duplicate");
    s.stop().await;
}
