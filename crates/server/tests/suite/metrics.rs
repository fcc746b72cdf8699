//! `GET /metrics`. The counters are process-wide, so the exact figures
//! below hold only without other tests: the test runs alone in a fresh copy
//! of the test binary (`alone_in_process`).

use garrison_test_support::process::alone_in_process;
use garrison_test_support::test_name;
use serde_json::json;

use super::common::{Server, request};

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_appends_requests_and_ingest_outcomes() {
    if !alone_in_process(test_name!(
        metrics_count_appends_requests_and_ingest_outcomes
    )) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;

    let run = json!({"type": "RUN_CREATED", "run_id": "r1", "event_id": "e1", "payload": {"objective": "x"}});
    assert_eq!(s.post("/events", &run).await.status, 201);
    // A replay stores nothing and is counted apart.
    assert_eq!(s.post("/events", &run).await.status, 200);
    let order = json!({"type": "ORDER_CREATED", "run_id": "r1", "order_id": "o1"});
    assert_eq!(s.post("/events", &order).await.status, 201);
    s.get("/runs/nope").await.assert_error(404, "NOT_FOUND");
    s.get("/runs/nope2").await.assert_error(404, "NOT_FOUND");
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

    // Scraping needs the token like every other route.
    let r = request(s.addr, "GET", "/metrics", &[], None).await.unwrap();
    assert_eq!(r.status, 401);
    let r = s.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = String::from_utf8(r.body).unwrap();

    let want = [
        ("garrison_ledger_appends_total", 2.0),
        ("garrison_ledger_duplicate_appends_total", 1.0),
        ("garrison_ledger_events_total{type=\"RUN_CREATED\"}", 1.0),
        ("garrison_ledger_events_total{type=\"ORDER_CREATED\"}", 1.0),
        ("garrison_ledger_append_seconds_count", 3.0),
        ("garrison_milestone_ingest_total{status=\"rejected\"}", 1.0),
        ("garrison_milestone_ingest_total{status=\"accepted\"}", 0.0),
        ("garrison_ledger_head_seq", 2.0),
        // Ids do not become series: both lookups share the route template.
        (
            "garrison_http_request_seconds_count{method=\"GET\",route=\"/runs/{id}\",status=\"404\"}",
            2.0,
        ),
        (
            "garrison_http_request_seconds_count{method=\"POST\",route=\"/events\",status=\"201\"}",
            2.0,
        ),
        (
            "garrison_http_request_seconds_count{method=\"GET\",route=\"unmatched\",status=\"401\"}",
            0.0,
        ),
    ];
    for (series, value) in want {
        let got = sample(&text, series).unwrap_or(0.0);
        assert_eq!(got, value, "{series}\n{text}");
    }
    assert!(
        text.contains("# TYPE garrison_ledger_append_seconds histogram"),
        "{text}"
    );
    assert!(
        text.contains("garrison_ledger_append_seconds_bucket{le=\"+Inf\"} 3"),
        "{text}"
    );
    // No orchestration on this node: no queue gauges.
    assert!(!text.contains("garrison_queue_depth"), "{text}");
    s.stop().await;
}
