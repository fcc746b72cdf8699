//! The dashboard in a real headless Chromium: `garrison demo` runs its
//! three-order run and keeps serving; the test drives Chromium through
//! chromedriver (W3C WebDriver over HTTP, a small client below), signs in
//! through the form, clicks through every page, checks what each shows, and
//! saves a PNG of each into `<target>/dashboard-screenshots/` (and into
//! `docs/screenshots/` with `GARRISON_UPDATE_SCREENSHOTS=1`).
//!
//! Without `chromium` and `chromedriver` on the PATH it prints a SKIPPED
//! line to stderr and returns, except under `CI`, where `.ci/run` has
//! installed both and their absence fails the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use garrison_test_support::process::{KillOnDrop, line_reader};
use serde_json::{Value, json};

use super::common::garrison;

const TOKEN: &str = "dashboard-browser-test-token";
/// W3C WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where screenshots go: `<target>/dashboard-screenshots/`.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            // <target>/<profile>/deps/<test binary>
            std::env::current_exe()
                .ok()
                .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("dashboard-screenshots")
}

/// Decodes standard base64 (the screenshot payload).
fn base64(s: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let clean: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c) << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

/// A minimal W3C WebDriver client.
struct Driver {
    http: reqwest::Client,
    base: String,
    session: String,
    shots: Vec<PathBuf>,
}

impl Driver {
    /// One WebDriver call: the response's `value`, or the error `value`.
    async fn try_raw(
        http: &reqwest::Client,
        method: &str,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, Value> {
        let req = match method {
            "GET" => http.get(url),
            "DELETE" => http.delete(url),
            _ => http
                .post(url)
                .header("content-type", "application/json")
                .body(body.cloned().unwrap_or(json!({})).to_string()),
        };
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {url}: {status} not JSON ({e}): {text}"));
        if status.is_success() {
            Ok(v["value"].clone())
        } else {
            Err(
                json!({"status": status.as_u16(), "error": v["value"]["error"], "message": v["value"]["message"]}),
            )
        }
    }

    async fn raw(http: &reqwest::Client, method: &str, url: &str, body: Option<&Value>) -> Value {
        Self::try_raw(http, method, url, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }

    async fn start(port: u16, chromium: &Path, profile: &Path) -> Driver {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--window-size=1280,900", "--disable-dev-shm-usage",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let v = Self::raw(&http, "POST", &format!("{base}/session"), Some(&caps)).await;
        let session = v["sessionId"].as_str().unwrap().to_string();
        Driver {
            http,
            base,
            session,
            shots: Vec::new(),
        }
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        Self::raw(&self.http, method, &url, body.as_ref()).await
    }

    async fn try_cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        Self::try_raw(&self.http, method, &url, body.as_ref()).await
    }

    async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url}))).await;
    }

    async fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn source(&self) -> String {
        self.cmd("GET", "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        let v = self
            .cmd(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_string())
            .collect()
    }

    /// The first element matching `css`, waiting up to 20 s for it.
    async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.find_all(css).await.into_iter().next() {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no element `{css}` on {}:\n{}",
                self.url().await,
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})))
            .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// The visible text of the first element matching `css`; an element
    /// replaced while we read it (a navigation) is looked up again.
    async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let e = self.find(css).await;
            match self
                .try_cmd("GET", &format!("/element/{e}/text"), None)
                .await
            {
                Ok(v) => return v.as_str().unwrap().to_string(),
                Err(err)
                    if Instant::now() < deadline && err["error"] == "stale element reference" =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("text of `{css}`: {err}"),
            }
        }
    }

    async fn script(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Waits until `expr` (a JS expression) is true; an expression that
    /// throws (its element is not there yet) counts as false.
    async fn wait_true(&self, expr: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let script = format!("try {{ return !!({expr}); }} catch (e) {{ return false; }}");
        while self
            .try_cmd(
                "POST",
                "/execute/sync",
                Some(json!({"script": script, "args": []})),
            )
            .await
            != Ok(json!(true))
        {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} on {}:\n{}",
                self.url().await,
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Saves a PNG of the whole page (up to 3000 px tall) through Chromium's
    /// own capture, falling back to the W3C viewport screenshot.
    async fn screenshot(&mut self, name: &str) {
        let height = self
            .script("return document.documentElement.scrollHeight;")
            .await
            .as_i64()
            .unwrap_or(900)
            .clamp(100, 3000);
        let capture = json!({"cmd": "Page.captureScreenshot", "params": {
            "format": "png", "captureBeyondViewport": true,
            "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}}});
        let data = match self
            .try_cmd("POST", "/goog/cdp/execute", Some(capture))
            .await
        {
            Ok(v) => v["data"].as_str().unwrap().to_string(),
            Err(_) => self
                .cmd("GET", "/screenshot", None)
                .await
                .as_str()
                .unwrap()
                .to_string(),
        };
        let png = base64(&data);
        assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap();
        eprintln!("dashboard_browser: saved {}", path.display());
        self.shots.push(path);
    }

    async fn quit(&self) {
        let url = format!("{}/session/{}", self.base, self.session);
        Self::raw(&self.http, "DELETE", &url, None).await;
    }
}

/// POSTs JSON to the Garrison API with the bearer token.
async fn api(http: &reqwest::Client, url: &str, body: Value) -> Value {
    let r = http
        .post(url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert!(status.is_success(), "{url} -> {status}: {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_pages_in_headless_chromium() {
    let (Some(chromium), Some(chromedriver)) = (on_path("chromium"), on_path("chromedriver"))
    else {
        // CI installs both, so there a missing browser is a failure, not a skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but `chromium` / `chromedriver` are not on the PATH (.ci/run installs them)"
        );
        eprintln!(
            "SKIPPED dashboard_browser: `chromium` and `chromedriver` must be on the PATH \
             (Debian: apt-get install chromium chromium-driver; .ci/run installs them)"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");

    // A real run: the demo's three orders (two in parallel, one depending on
    // both), executed, gated and merged; then it keeps serving.
    let mut demo = KillOnDrop(
        garrison()
            .args(["--data-dir", data.to_str().unwrap(), "demo"])
            .env("GARRISON_API_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = line_reader(demo.0.stdout.take().unwrap());
    let err = line_reader(demo.0.stderr.take().unwrap());
    let summary: Value = loop {
        match out.recv_timeout(Duration::from_secs(300)) {
            Ok(line) if line.starts_with('{') => break serde_json::from_str(&line).unwrap(),
            Ok(_) => {}
            Err(e) => {
                let logs: Vec<String> = err.try_iter().collect();
                panic!("demo printed no summary ({e}):\n{}", logs.join("\n"));
            }
        }
    };
    assert_eq!(summary["status"], "COMPLETE", "{summary}");
    let dashboard = summary["dashboard"].as_str().unwrap().to_string();
    let api_base = summary["api"].as_str().unwrap().to_string();
    assert_eq!(dashboard, format!("{api_base}/"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let announced = loop {
        if let Ok(line) = err.recv_timeout(Duration::from_millis(200))
            && line.contains("dashboard http://")
        {
            break line;
        }
        assert!(
            Instant::now() < deadline,
            "demo did not print the dashboard URL"
        );
    };
    assert!(announced.contains(&dashboard), "{announced}");
    let run_id = summary["run_id"].as_str().unwrap().to_string();
    let orders: Vec<(String, String)> = summary["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["plan_id"].as_str().unwrap().to_string(),
                o["order_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(orders.len(), 3);
    let order_id = |plan: &str| orders.iter().find(|(p, _)| p == plan).unwrap().1.clone();

    // Something for the dead letter (an unsigned ingest) and a governance
    // report from the Appleseed state the run fed.
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{api_base}/internal/milestones/ingest"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let gov = garrison()
        .args(["--data-dir", data.to_str().unwrap()])
        .args(["appleseed", "governance", "--write-report"])
        .output()
        .unwrap();
    assert!(
        gov.status.success(),
        "{}",
        String::from_utf8_lossy(&gov.stderr)
    );

    let port = free_port();
    let _driver_process = KillOnDrop(
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut d = Driver::start(port, &chromium, &tmp.path().join("chromium-profile")).await;

    // Sign in through the form.
    d.goto(&dashboard).await;
    d.find("#token").await;
    d.screenshot("01-login").await;
    d.type_into("#token", TOKEN).await;
    d.click("#sign-in").await;
    d.find("#nav-runs").await;
    assert_eq!(d.text("h1").await, "Runs");
    let runs = d.source().await;
    assert!(runs.contains(&run_id), "{runs}");
    d.screenshot("02-runs").await;

    // The run: its graph, its orders and their states, live.
    d.click(&format!("a.run-link[href=\"/dashboard/runs/{run_id}\"]"))
        .await;
    d.wait_true(
        "document.getElementById('live').dataset.state === 'open'",
        "the live stream",
    )
    .await;
    assert_eq!(d.text("#run-status").await, "COMPLETE");
    let run = d.source().await;
    for (plan, id) in &orders {
        assert!(
            run.contains(id.as_str()) && run.contains(plan.as_str()),
            "{plan} {id}: {run}"
        );
    }
    assert_eq!(d.find_all("svg.graph a.node").await.len(), 3);
    assert_eq!(d.find_all("svg.graph path.edge").await.len(), 2);
    assert_eq!(d.find_all("tr[data-status=\"COMPLETED\"]").await.len(), 3);
    d.screenshot("03-run").await;

    // An order: AAR, artifacts, timeline.
    let report = order_id("report");
    d.click(&format!("tr[data-order-id=\"{report}\"] a.order-link"))
        .await;
    assert_eq!(d.text("#order-status").await, "COMPLETED");
    let facts = d.text("dl.facts").await;
    assert!(
        facts.contains("survey") && facts.contains("inventory"),
        "{facts}"
    );
    assert_eq!(d.text("#aar-status").await, "completed");
    assert!(!d.text("#aar-summary").await.is_empty());
    let artifacts = d.text("#artifacts").await;
    assert!(
        artifacts.contains("outputs/report-notes.txt"),
        "{artifacts}"
    );
    let timeline = d.text("#timeline").await;
    for t in [
        "ORDER_CREATED",
        "ORDER_CLAIMED",
        "AAR_WRITTEN",
        "ORDER_COMPLETED",
        "INTEGRATED",
    ] {
        assert!(timeline.contains(t), "{t}: {timeline}");
    }
    d.screenshot("04-order").await;

    d.click("#nav-patrols").await;
    d.wait_true(
        "document.body.innerText.includes('PATROL_TICK')",
        "a patrol tick",
    )
    .await;
    d.screenshot("05-patrols").await;

    d.click("#nav-milestones").await;
    let feed = d.text("#feed").await;
    for id in summary["milestones"]["ids"].as_array().unwrap() {
        assert!(feed.contains(id.as_str().unwrap()), "{id}: {feed}");
    }
    assert!(!d.text("#dead-letter").await.is_empty());
    // The outbox records `delivered` just after the ingest answered, so the
    // page may need a reload to show it.
    let mut reloads = 0;
    while !d.text("#deliveries").await.contains("delivered") {
        reloads += 1;
        assert!(reloads < 50, "no delivered milestone on the page");
        tokio::time::sleep(Duration::from_millis(200)).await;
        d.goto(&format!("{api_base}/dashboard/milestones")).await;
    }
    d.screenshot("06-milestones").await;

    d.click("#nav-appleseed").await;
    assert!(
        d.text("#governance")
            .await
            .contains("projected_feedback_records")
    );
    d.screenshot("07-appleseed").await;

    api(
        &http,
        &format!("{api_base}/api/admin/jobs"),
        json!({"job_id": "demo-digest", "agent_id": "agent_default", "schedule": "@every 24h",
               "message": "Summarise the day's runs", "mode": "isolated", "enabled": true}),
    )
    .await;
    d.click("#nav-scheduler").await;
    let jobs = d.text("#jobs").await;
    assert!(
        jobs.contains("demo-digest") && jobs.contains("@every 24h") && jobs.contains("never"),
        "{jobs}"
    );
    d.screenshot("08-scheduler").await;

    // Live states: a second run planned but not dispatched, then dispatched
    // while the page is open; the page must follow without a reload.
    let created = api(
        &http,
        &format!("{api_base}/runs"),
        json!({"user_id": "browser-test", "theater_hint": "demo",
               "objective": "Refresh the inventory while the dashboard watches"}),
    )
    .await;
    let run2 = created["data"]["run_id"].as_str().unwrap().to_string();
    let planned = api(
        &http,
        &format!("{api_base}/runs/{run2}/plan"),
        json!({"plan": {"orders": [{"id": "inventory-again", "objective": "Inventory the files again",
               "depends_on": [], "lock_scope": ["docs/inventory.md"], "profile": "inventory"}]}}),
    )
    .await;
    let live_order = planned["data"]["order_ids"][0]
        .as_str()
        .unwrap()
        .to_string();
    d.goto(&format!("{api_base}/dashboard/runs/{run2}")).await;
    d.wait_true(
        "document.getElementById('live').dataset.state === 'open'",
        "the live stream",
    )
    .await;
    let row = format!("tr[data-order-id=\"{live_order}\"]");
    assert_eq!(
        d.text(&format!("{row} [data-field=status]")).await,
        "QUEUED"
    );
    d.script("window.notReloaded = true; return null;").await;
    api(
        &http,
        &format!("{api_base}/runs/{run2}/dispatch"),
        json!({}),
    )
    .await;
    d.wait_true(
        &format!(
            "document.querySelector('{}').dataset.status === 'COMPLETED'",
            row.replace('\'', "\\'")
        ),
        "the order to complete live",
    )
    .await;
    assert_eq!(
        d.text(&format!("{row} [data-field=status]")).await,
        "COMPLETED"
    );
    // The run's own end and its reply arrive the same way.
    d.wait_true(
        "document.getElementById('run-status').textContent === 'COMPLETE' \
         && !document.getElementById('reply').hidden",
        "the run to complete live",
    )
    .await;
    assert_eq!(
        d.script("return window.notReloaded === true;").await,
        json!(true),
        "the page reloaded instead of following the stream"
    );
    d.screenshot("09-run-live").await;

    // Sign out: back to the form, and pages send the browser there.
    d.click("#logout").await;
    d.find("#token").await;
    d.goto(&format!("{api_base}/dashboard/patrols")).await;
    d.find("#token").await;
    assert_eq!(d.url().await, dashboard);
    d.quit().await;

    if std::env::var_os("GARRISON_UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        for shot in &d.shots {
            std::fs::copy(shot, docs.join(shot.file_name().unwrap())).unwrap();
        }
        eprintln!(
            "dashboard_browser: copied {} screenshots to docs/screenshots",
            d.shots.len()
        );
    }

    // Ctrl-C: the demo stops serving and exits cleanly.
    let pid = demo.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = demo.0.try_wait().unwrap() {
            assert!(status.success(), "demo exited with {status}");
            break;
        }
        assert!(Instant::now() < deadline, "demo did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    }
}
