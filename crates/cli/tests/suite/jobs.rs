//! `garrison jobs …` against a spawned `garrison serve`: create (flags and
//! file), list as a table, show, update, enable/disable, delete, and the
//! server's refusals passed through with a failing exit status.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use super::common::{garrison, serve};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `garrison jobs --server URL ARGS…` with the data dir (and so its token).
fn jobs(dir: &Path, url: &str, args: &[&str]) -> Output {
    garrison()
        .env("GARRISON_HOME", dir)
        .args(["jobs", "--server", url])
        .args(args)
        .output()
        .unwrap()
}

/// Runs, asserts success, and parses stdout as JSON.
fn ok_json(dir: &Path, url: &str, args: &[&str]) -> Value {
    let o = jobs(dir, url, args);
    assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stdout)))
}

/// Runs, asserts exit 1, and returns stderr.
fn fails(dir: &Path, url: &str, args: &[&str]) -> String {
    let o = jobs(dir, url, args);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o.stdout));
    assert!(o.stdout.is_empty(), "{}", text(&o.stdout));
    text(&o.stderr)
}

#[test]
fn jobs_commands_against_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let served = serve(data, &[]);
    let url = served.url();
    let url = url.as_str();

    let created = ok_json(
        data,
        url,
        &[
            "create",
            "--id",
            "daily-report",
            "--agent",
            "agent_default",
            "--schedule",
            "@every 24h",
            "--message",
            "Generate the status report",
        ],
    );
    assert_eq!(created["job_id"], "daily-report");
    assert_eq!(created["mode"], "isolated");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["state"], "scheduled");
    let next = created["next_run_at"].as_str().unwrap().to_string();

    let file = data.join("job.json");
    std::fs::write(
        &file,
        r#"{"job_id": "launch-check", "agent_id": "agent_ops", "schedule": "2030-06-01T09:00:00Z",
            "message": "Check the launch", "mode": "main_like", "enabled": false}"#,
    )
    .unwrap();
    let from_file = ok_json(data, url, &["create", "--file", file.to_str().unwrap()]);
    assert_eq!(from_file["mode"], "main_like");
    assert_eq!(from_file["next_run_at"], Value::Null);

    // The table: a header with the columns that make a silent job obvious.
    let o = jobs(data, url, &["list"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let table = text(&o.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    for col in [
        "JOB",
        "SCHEDULE",
        "ENABLED",
        "NEXT RUN",
        "LAST OUTCOME",
        "FIRES",
    ] {
        assert!(lines[0].contains(col), "{table}");
    }
    let report = lines
        .iter()
        .find(|l| l.starts_with("daily-report"))
        .unwrap();
    assert!(
        report.contains("@every 24h") && report.contains("yes") && report.contains(&next),
        "{table}"
    );
    let launch = lines
        .iter()
        .find(|l| l.starts_with("launch-check"))
        .unwrap();
    assert!(
        launch.contains("2030-06-01T09:00:00Z") && launch.contains("no"),
        "{table}"
    );
    let listed = ok_json(data, url, &["list", "--json"]);
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 2);

    let shown = ok_json(data, url, &["show", "daily-report"]);
    assert_eq!(shown, created);
    let updated = ok_json(
        data,
        url,
        &["update", "daily-report", "--schedule", "@every 12h"],
    );
    assert_eq!(updated["schedule"], "@every 12h");
    assert_eq!(updated["message"], "Generate the status report");
    let moded = ok_json(
        data,
        url,
        &["update", "daily-report", "--mode", "main_like"],
    );
    assert_eq!(moded["mode"], "main_like");
    let disabled = ok_json(data, url, &["disable", "daily-report"]);
    assert_eq!(
        (disabled["enabled"].clone(), disabled["state"].clone()),
        (Value::Bool(false), "disabled".into())
    );
    let enabled = ok_json(data, url, &["enable", "launch-check"]);
    assert_eq!(enabled["next_run_at"], "2030-06-01T09:00:00.000Z");
    let fires = ok_json(data, url, &["fires", "daily-report"]);
    assert_eq!(fires["fires"], Value::Array(vec![]));

    // Refusals come through with the server's code and reason.
    let e = fails(
        data,
        url,
        &[
            "create",
            "--id",
            "hourly",
            "--agent",
            "a",
            "--schedule",
            "0 * * * *",
            "--message",
            "m",
        ],
    );
    assert!(
        e.contains("HTTP 400") && e.contains("invalid.request"),
        "{e}"
    );
    assert!(e.contains("cron expressions are not supported"), "{e}");
    let e = fails(
        data,
        url,
        &[
            "create",
            "--id",
            "daily-report",
            "--agent",
            "a",
            "--schedule",
            "@every 1h",
            "--message",
            "m",
        ],
    );
    assert!(
        e.contains("HTTP 409") && e.contains("already exists"),
        "{e}"
    );
    let e = fails(data, url, &["update", "daily-report"]);
    assert!(e.contains("nothing to change"), "{e}");

    let deleted = ok_json(data, url, &["delete", "daily-report"]);
    assert_eq!(deleted["deleted"], true);
    let e = fails(data, url, &["show", "daily-report"]);
    assert!(
        e.contains("HTTP 404") && e.contains("no job `daily-report`"),
        "{e}"
    );

    // Without a token the server says so.
    let o = garrison()
        .env("GARRISON_HOME", data.join("elsewhere"))
        .args(["jobs", "--server", url, "list"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("HTTP 401"), "{}", text(&o.stderr));
    drop(served);
}

#[test]
fn jobs_help_and_an_unreachable_server() {
    let o = garrison().args(["jobs", "--help"]).output().unwrap();
    let h = text(&o.stdout);
    for needle in [
        "Examples:",
        "@every",
        "RFC3339",
        "Cron expressions are refused",
        "missed",
        "--server",
    ] {
        assert!(h.contains(needle), "jobs --help lacks {needle}:\n{h}");
    }
    let o = garrison()
        .args(["jobs", "create", "--help"])
        .output()
        .unwrap();
    assert!(text(&o.stdout).contains("--file"), "{}", text(&o.stdout));
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = fails(dir.path(), &format!("http://127.0.0.1:{port}"), &["list"]);
    assert!(e.contains("cannot reach"), "{e}");
    // Missing required flags are a usage error.
    let o = jobs(dir.path(), "http://127.0.0.1:1", &["create", "--id", "x"]);
    assert_eq!(o.status.code(), Some(2));
}
