//! Tests that run the built `garrison` binary.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use garrison_test_support::model::{ModelServer, calls, text};
use garrison_test_support::process::line_reader;
use serde_json::{Value, json};

use super::common::{garrison, serve};

fn run(args: &[&str]) -> Output {
    garrison().args(args).output().unwrap()
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--data-dir", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    run(&all)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The single JSON line `validate` prints.
fn verdict(o: &Output) -> Value {
    let out = stdout(o);
    assert_eq!(out.lines().count(), 1, "expected one line, got: {out:?}");
    assert!(out.ends_with('\n'));
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["allow", "code", "reason", "details"]);
    v
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/tests/fixtures")
}

#[test]
fn help_teaches() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let h = stdout(&o);
    for needle in ["Examples:", "serve", "validate", "events", "GARRISON_HOME"] {
        assert!(h.contains(needle), "--help lacks {needle}:\n{h}");
    }
    let h = stdout(&run(&["serve", "--help"]));
    assert!(
        h.contains("GARRISON_API_TOKEN") && h.contains("--services"),
        "{h}"
    );
    let h = stdout(&run(&["validate", "--help"]));
    assert!(
        h.contains("orchestrator-output") && h.contains("Exit status"),
        "{h}"
    );
    let h = stdout(&run(&["events", "tail", "--help"]));
    assert!(h.contains("--follow") && h.contains("--server"), "{h}");
}

#[test]
fn validate_fixtures_match_their_names() {
    let root = fixtures();
    if !root.is_dir() {
        eprintln!("no fixtures at {}; skipping", root.display());
        return;
    }
    let mut checked = 0;
    for kind in [
        "assignment",
        "result",
        "orchestrator-output",
        "worklog",
        "handoff",
        "locks",
        "reconcile",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(kind)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            let file = path.to_str().unwrap();
            if name.starts_with("valid") {
                for strict in [false, true] {
                    let mut args = vec!["validate", kind, file];
                    if strict {
                        args.push("--strict");
                    }
                    let o = run(&args);
                    let v = verdict(&o);
                    assert!(o.status.success(), "{file} strict={strict}: {v}");
                    assert_eq!(
                        (v["allow"].clone(), v["code"].clone()),
                        (json!(true), json!("OK"))
                    );
                }
            } else if let Some(rest) = name.strip_prefix("invalid-") {
                let code = rest.split('-').next().unwrap();
                let mut args = vec!["validate", kind, file];
                if name.contains("-strict") {
                    args.push("--strict");
                }
                let o = run(&args);
                let v = verdict(&o);
                assert_eq!(o.status.code(), Some(1), "{file}: {v}");
                assert_eq!(v["allow"], false, "{file}: {v}");
                assert_eq!(v["code"], code, "{file}: {v}");
                assert!(v["details"].is_object());
            } else {
                continue;
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no fixtures found under {}", root.display());
}

#[test]
fn validate_names_a_byte_order_mark() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bom.json");
    let doc = json!({"locks": [{"task_id": "T-1", "resource": "src", "active": true}]});
    std::fs::write(&f, format!("\u{feff}{doc}")).unwrap();
    let o = run(&["validate", "locks", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let v = verdict(&o);
    assert_eq!(v["code"], "SCHEMA_INVALID", "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("byte order mark"),
        "{v}"
    );
    // The same document without it passes.
    std::fs::write(&f, doc.to_string()).unwrap();
    assert_eq!(
        verdict(&run(&["validate", "locks", f.to_str().unwrap()]))["code"],
        "OK"
    );
}

#[test]
fn validate_inline_documents_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let ok = json!({"locks": [
        {"task_id": "T-1", "resource": "src", "active": true},
        {"task_id": "T-2", "resource": "src2", "active": true}
    ]});
    let clash = json!({"locks": [
        {"task_id": "T-1", "resource": "src", "active": true},
        {"task_id": "T-2", "resource": "./src/api.py", "active": true}
    ]});
    let f = dir.path().join("ok.json");
    std::fs::write(&f, ok.to_string()).unwrap();
    let o = run(&["validate", "locks", f.to_str().unwrap()]);
    assert!(o.status.success());
    assert_eq!(verdict(&o)["code"], "OK");

    // stdin via `-`
    let mut child = garrison()
        .args(["validate", "locks", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(clash.to_string().as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(verdict(&o)["code"], "LOCK_CONFLICT");

    // Not JSON
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{nope").unwrap();
    let o = run(&["validate", "assignment", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let v = verdict(&o);
    assert_eq!(v["code"], "SCHEMA_INVALID");
    assert_eq!(v["allow"], false);

    // Empty and missing files
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, "  \n").unwrap();
    let o = run(&["validate", "result", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(verdict(&o)["code"], "MISSING_REQUIRED_INPUT");
    let o = run(&[
        "validate",
        "result",
        dir.path().join("nope.json").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(verdict(&o)["code"], "MISSING_REQUIRED_INPUT");

    // JSONL worklog: a broken line is SCHEMA_INVALID naming the line.
    let jl = dir.path().join("w.jsonl");
    std::fs::write(&jl, "{\"a\":1}\n{oops\n").unwrap();
    let o = run(&["validate", "worklog", jl.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let v = verdict(&o);
    assert_eq!(v["code"], "SCHEMA_INVALID");
    assert_eq!(v["details"]["line"], 2);

    // Unknown kind is a usage error, not a verdict.
    let o = run(&["validate", "nope", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).is_empty());
}

#[test]
fn unavailable_commands_fail_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_in(dir.path(), &["serve", "--services", "ledger,learning"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("`learning` is not yet available"),
        "{}",
        stderr(&o)
    );
    let o = run_in(dir.path(), &["serve", "--services", "bogus"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown service"), "{}", stderr(&o));
    // Nothing was started, so nothing was written.
    assert!(!dir.path().join("ledger.db").exists());
    // An unknown profile is refused before anything is created.
    let d = dir.path().join("d");
    let o = run_in(&d, &["run", "build a thing", "--profile", "nope"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("profile `nope` is not configured"),
        "{}",
        stderr(&o)
    );
    assert!(!d.exists());
}

/// docs/interface.md's first command: offline, three orders with a dependency,
/// merged into the theater mainline, milestones to its own ingest, JSON last.
#[test]
fn demo_runs_offline_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_in(&dir.path().join("data"), &["demo", "--exit"]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let last = out.lines().last().unwrap();
    let doc: Value = serde_json::from_str(last).unwrap();
    assert_eq!(doc["status"], "COMPLETE", "{doc}");
    let orders = doc["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 3);
    for order in orders {
        assert_eq!(order["status"], "COMPLETED", "{order}");
        assert_eq!(order["integrated"], true, "{order}");
        assert_eq!(order["aar"]["status"], "completed", "{order}");
    }
    assert_eq!(doc["milestones"]["accepted"], 4, "{doc}");
    assert!(out.contains("Merged 3 of 3 orders into "), "{out}");
    // The work is in the theater's mainline, with every order's records apart.
    let repo = PathBuf::from(doc["theater_repo"].as_str().unwrap());
    let show = |path: &str| {
        let o = Command::new("git")
            .args([
                "-C",
                repo.to_str().unwrap(),
                "show",
                &format!("main:{path}"),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "git show main:{path}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(show("docs/report.md").contains("Field report"));
    assert!(show("docs/inventory.md").contains("README.md"));
    for order in orders {
        let id = order["order_id"].as_str().unwrap();
        let aar: Value =
            serde_json::from_str(&show(&format!(".garrison/orders/{id}/aar.json"))).unwrap();
        assert_eq!(aar["order_id"], id);
    }

    // The demo's ledger backed up and restored into a fresh data dir shows
    // the same run.
    let backup = dir.path().join("backup.jsonl");
    let o = run_in(
        &dir.path().join("data"),
        &["ledger", "export", "--out", backup.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let exported: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(exported["events"].as_u64().unwrap() > 20, "{exported}");
    let o = run_in(
        &dir.path().join("restored"),
        &["ledger", "import", backup.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let imported: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(imported["events"], exported["events"]);
    assert_eq!(imported["head"], exported["head"]);
    let run_id = doc["run_id"].as_str().unwrap();
    let show = |data: &str| stdout(&run_in(&dir.path().join(data), &["runs", "show", run_id]));
    let (before, after) = (show("data"), show("restored"));
    assert!(before.contains(run_id), "{before}");
    assert_eq!(before, after);
    // A second import is refused: the target is no longer empty.
    let o = run_in(
        &dir.path().join("restored"),
        &["ledger", "import", backup.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
}

#[test]
fn serve_refuses_non_loopback_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_in(dir.path(), &["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("GARRISON_API_TOKEN"), "{}", stderr(&o));
}

#[test]
fn config_file_secrets_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("garrison.toml"), "api_token = \"x\"\n").unwrap();
    let o = run_in(dir.path(), &["ledger", "rebuild"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("GARRISON_API_TOKEN"), "{}", stderr(&o));
    let o = run_in(
        dir.path(),
        &["--config", "/no/such/file.toml", "ledger", "rebuild"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
}

/// The secret store's key: checked by `config validate`, required by `serve`
/// for an encrypted store, and never taken from inside the data dir.
#[test]
fn the_master_key_is_checked_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let validate = |key: Option<&str>| {
        let mut cmd = garrison();
        cmd.args(["--data-dir", data.to_str().unwrap(), "config", "validate"]);
        if let Some(k) = key {
            cmd.env("GARRISON_MASTER_KEY", k);
        }
        cmd.output().unwrap()
    };
    let o = validate(None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("no master key"), "{}", stdout(&o));
    let good = "ab".repeat(32);
    let o = validate(Some(&good));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stdout(&o).contains("no master key"), "{}", stdout(&o));
    let o = validate(Some("not-a-key"));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("GARRISON_MASTER_KEY"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("not-a-key"), "{}", stderr(&o));

    // A key file next to the data it protects is refused; one outside is fine.
    std::fs::write(data.join("master.key"), &good).unwrap();
    std::fs::write(
        data.join("garrison.toml"),
        "[secrets]\nkey_file = \"master.key\"\n",
    )
    .unwrap();
    let o = validate(None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("inside the data dir"), "{}", stderr(&o));
    std::fs::write(dir.path().join("master.key"), &good).unwrap();
    std::fs::write(
        data.join("garrison.toml"),
        "[secrets]\nkey_file = \"../master.key\"\n",
    )
    .unwrap();
    let o = validate(None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stdout(&o).contains("no master key"), "{}", stdout(&o));
    // The key itself never lives in the config.
    std::fs::write(
        data.join("garrison.toml"),
        format!("[secrets]\nmaster_key = \"{good}\"\n"),
    )
    .unwrap();
    assert_eq!(validate(None).status.code(), Some(1));
    std::fs::remove_file(data.join("garrison.toml")).unwrap();

    // An encrypted store: serve refuses to start without its key, or with another.
    std::fs::write(
        data.join("secrets.json"),
        json!({"cipher": "AES-256-GCM", "nonce": "AAAAAAAAAAAAAAAA",
            "ciphertext": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
        .to_string(),
    )
    .unwrap();
    let serve_with = |key: Option<&str>| {
        let mut cmd = garrison();
        cmd.args([
            "--data-dir",
            data.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ]);
        if let Some(k) = key {
            cmd.env("GARRISON_MASTER_KEY", k);
        }
        cmd.output().unwrap()
    };
    let o = serve_with(None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is encrypted and no master key"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("GARRISON_MASTER_KEY"), "{}", stderr(&o));
    let o = serve_with(Some(&good));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not decrypt"), "{}", stderr(&o));
}

// ---- a running server ------------------------------------------------------

/// POSTs JSON with a bearer token; returns (status, body JSON).
fn post(addr: &str, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let json = raw.split("\r\n\r\n").nth(1).unwrap();
    (status, serde_json::from_str(json).unwrap())
}

/// GETs with a bearer token; returns (status, body JSON).
fn get(addr: &str, token: &str, path: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let json = raw.split("\r\n\r\n").nth(1).unwrap();
    (status, serde_json::from_str(json).unwrap())
}

fn ev(t: &str, run: Option<&str>, order: Option<&str>) -> Value {
    json!({"type": t, "run_id": run, "order_id": order})
}

#[test]
fn serve_tail_rebuild_and_show() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Patrol ticks would interleave with the events this test counts.
    std::fs::write(
        d.join("garrison.toml"),
        "[orchestration]\npatrol_interval_secs = 3600\nsentinel_interval_secs = 3600\n",
    )
    .unwrap();
    let s = serve(d, &[]);
    assert!(
        s.lines[1].starts_with("dashboard: http://"),
        "{:?}",
        s.lines
    );
    let token_file = d.join("api-token");
    assert!(
        s.lines[2].contains(token_file.to_str().unwrap()),
        "{:?}",
        s.lines
    );
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();

    let (st, _) = post(
        &s.addr,
        &token,
        "/events/batch",
        &json!([
            ev("RUN_CREATED", Some("r1"), None),
            ev("ORDER_CREATED", Some("r1"), Some("o1")),
            ev("ORDER_CLAIMED", Some("r1"), Some("o1")),
        ]),
    );
    assert_eq!(st, 201);
    let (st, body) = post(&s.addr, "wrong", "/events", &ev("PATROL_TICK", None, None));
    assert_eq!(st, 401);
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");

    // The local ledger is held by serve: say so and point at --server.
    let o = run(&["--data-dir", d.to_str().unwrap(), "events", "tail"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--server"), "{}", stderr(&o));

    // Through the server (token read from <data-dir>/api-token).
    let url = format!("http://{}", s.addr);
    let o = run(&[
        "--data-dir",
        d.to_str().unwrap(),
        "events",
        "tail",
        "--server",
        &url,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let recs: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seqs: Vec<i64> = recs.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    let o = run(&[
        "--data-dir",
        d.to_str().unwrap(),
        "events",
        "tail",
        "--server",
        &url,
        "--order",
        "o1",
        "--type",
        "ORDER_CLAIMED",
    ]);
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
    let o = run(&[
        "--data-dir",
        d.to_str().unwrap(),
        "events",
        "tail",
        "--server",
        &url,
        "--after",
        "1",
        "--limit",
        "1",
    ]);
    let only: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(only["seq"], 2);

    // Follow: an event appended after connecting shows up.
    let mut follower = garrison()
        .args([
            "--data-dir",
            d.to_str().unwrap(),
            "events",
            "tail",
            "--follow",
            "--after",
            "3",
        ])
        .args(["--server", &url, "--limit", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = line_reader(follower.stdout.take().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let mut tick = ev("PATROL_TICK", None, None);
    tick["event_id"] = json!("live-tick");
    assert_eq!(post(&s.addr, &token, "/events", &tick).0, 201);
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("follow printed nothing");
    let rec: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(rec["event_id"], "live-tick");
    assert!(
        follower.wait().unwrap().success(),
        "--limit 1 ends the follow"
    );

    let o = run(&[
        "--data-dir",
        d.to_str().unwrap(),
        "runs",
        "show",
        "r1",
        "--server",
        &url,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shown: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(shown["orders"][0]["status"], "CLAIMED");

    s.stop();

    // The server is gone: local reads work and see everything acknowledged.
    let o = run_in(d, &["ledger", "rebuild"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stats: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(
        (
            stats["events"].clone(),
            stats["runs"].clone(),
            stats["orders"].clone()
        ),
        (json!(4), json!(1), json!(1))
    );
    assert!(stats["elapsed_ms"].is_u64());

    let o = run_in(d, &["events", "tail", "--type", "PATROL_TICK"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("live-tick"));
    let o = run_in(d, &["events", "tail", "--limit", "2"]);
    assert_eq!(stdout(&o).lines().count(), 2);

    let o = run_in(d, &["runs", "show", "r1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let local: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(local["run"], shown["run"]);
    assert_eq!(local["order_counts"]["CLAIMED"], 1);
    let o = run_in(d, &["runs", "show", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no run `nope`"), "{}", stderr(&o));

    // A second start reuses the stored token.
    let s = serve(d, &[]);
    assert!(
        s.lines[2].contains("api token:") && !s.lines[2].contains("generated"),
        "{:?}",
        s.lines
    );
    let (st, _) = post(&s.addr, &token, "/events", &ev("PATROL_TICK", None, None));
    assert_eq!(st, 201);
    s.stop();
}

#[test]
fn local_tail_edge_cases() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    // Create the ledger (empty) so tail has something to open.
    assert!(
        run(&["--data-dir", d, "ledger", "rebuild"])
            .status
            .success()
    );
    let o = run(&["--data-dir", d, "events", "tail"]);
    assert!(o.status.success());
    assert!(stdout(&o).is_empty());
    // Nobody could append while this process owned the embedded ledger.
    let o = run(&["--data-dir", d, "events", "tail", "--follow"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--server"), "{}", stderr(&o));
    let o = run(&[
        "--data-dir",
        d,
        "events",
        "tail",
        "--server",
        "ftp://127.0.0.1:1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("expected a URL like"), "{}", stderr(&o));
}

/// A model server whose first turn asks for `fs_write` and whose second,
/// after the tool result, answers with text.
fn model_server() -> ModelServer {
    ModelServer::start([
        calls(&[(
            "call_1",
            "fs_write",
            json!({"path": "hello.txt", "content": "hello from the model\n"}),
        )]),
        text("Wrote hello.txt."),
    ])
}

/// `garrison run` with an OpenAI-compatible model commits the unit's work
/// into the user's repository (merged into its checked-out branch).
#[test]
fn run_with_a_model_commits_into_the_repo() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("project");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "project\n").unwrap();
    git(&["add", "README.md"]);
    git(&["commit", "-q", "-m", "init"]);
    let model = model_server();
    let base = model.base_url.clone();
    let o = garrison()
        .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
        .args([
            "run",
            "Write hello.txt",
            "--repo",
            repo.to_str().unwrap(),
            "--profile",
            "llm",
        ])
        .env("GARRISON_LLM_BASE_URL", &base)
        .env("GARRISON_LLM_MODEL", "test-model")
        .env("GARRISON_LLM_API_KEY", "test-key")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let doc: Value = serde_json::from_str(stdout(&o).lines().last().unwrap()).unwrap();
    assert_eq!(doc["status"], "COMPLETE", "{doc}");
    assert_eq!(git(&["show", "main:hello.txt"]), "hello from the model\n");
    // The user's checkout was fast-forwarded, and it is clean.
    assert_eq!(
        std::fs::read_to_string(repo.join("hello.txt")).unwrap(),
        "hello from the model\n"
    );
    assert_eq!(git(&["status", "--porcelain"]), "");
    let order_id = doc["orders"][0]["order_id"].as_str().unwrap();
    let aar: Value = serde_json::from_str(&git(&[
        "show",
        &format!("main:.garrison/orders/{order_id}/aar.json"),
    ]))
    .unwrap();
    assert_eq!(aar["summary"], "Wrote hello.txt.");
    assert_eq!(aar["model"]["name"], "test-model");
    // The unit's lifecycle is audited under the profile's agent directory,
    // without the API key.
    let audit_dir = dir.path().join("data/agents/llm/audit");
    let audit: String = std::fs::read_dir(&audit_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", audit_dir.display()))
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect();
    let types: Vec<String> = audit
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event_type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for t in [
        "run.started",
        "model.requested",
        "tool.call",
        "tool.result",
        "run.completed",
    ] {
        assert!(
            types.iter().any(|x| x == t),
            "{t} missing from the audit: {types:?}"
        );
    }
    assert!(
        !audit.contains("test-key"),
        "the API key reached the audit log"
    );
    let seen = model.requests();
    assert_eq!(seen.len(), 2, "two model turns");
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(seen[0].body["model"], "test-model");
    assert!(
        seen[0].body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["function"]["name"] == "fs_write")
    );
}

#[test]
fn config_validate_reports_or_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let o = run_in(data, &["config", "validate"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["backend"], "sqlite", "{v}");
    assert_eq!(v["services"], json!(["all"]), "{v}");
    assert!(
        v["profiles"].as_array().unwrap().contains(&json!("noop")),
        "{v}"
    );

    std::fs::write(
        data.join("garrison.toml"),
        "services = \"ledger,milestones\"\n[gates]\nquick = [{ name = \"fmt\", command = [\"true\"] }]\n",
    )
    .unwrap();
    let v: Value =
        serde_json::from_str(stdout(&run_in(data, &["config", "validate"])).trim()).unwrap();
    assert_eq!(v["services"], json!(["ledger", "milestones"]), "{v}");
    assert!(
        v["gates"].as_array().unwrap().contains(&json!("quick")),
        "{v}"
    );
    assert!(
        v["file"].as_str().unwrap().ends_with("garrison.toml"),
        "{v}"
    );

    std::fs::write(
        data.join("garrison.toml"),
        "[sandbox]\nprocesses = 64\nmemory_mb = 0\nfile_mb = 5\n",
    )
    .unwrap();
    let v: Value =
        serde_json::from_str(stdout(&run_in(data, &["config", "validate"])).trim()).unwrap();
    assert_eq!(
        v["sandbox"],
        json!({"processes": 64, "cpu_seconds": null, "address_space_bytes": null,
               "file_size_bytes": 5 << 20, "require": []}),
        "{v}"
    );

    for (toml, needle) in [
        ("[sandbox]\nprocesess = 5\n", "procesess"),
        (
            "[profiles.agent]\nkind = \"command\"\nprogram = \"garrison-no-such-agent\"\n",
            "[profiles.agent] program `garrison-no-such-agent` is not an executable on PATH",
        ),
        (
            "[profiles.agent]\nkind = \"command\"\nprogram = \"/nonexistent/agent\"\n",
            "does not exist or is not executable",
        ),
        ("[sandbox]\nrequire = [\"magic\"]\n", "magic"),
        ("[orchestration]\nlease_secs = 0\n", "lease_secs"),
        ("[orchestration]\nleese_secs = 5\n", "leese_secs"),
        (
            "[orchestration]\ndefault_profile = \"nope\"\n",
            "default_profile `nope`",
        ),
        ("services = \"ledger,nope\"\n", "unknown service `nope`"),
        ("listen = \"0.0.0.0:7878\"\n", "not loopback"),
        ("body_limit = \"big\"\n", "body_limit"),
    ] {
        std::fs::write(data.join("garrison.toml"), toml).unwrap();
        let o = run_in(data, &["config", "validate"]);
        assert_eq!(o.status.code(), Some(1), "{toml}: {}", stdout(&o));
        assert!(stderr(&o).contains(needle), "{toml}: {}", stderr(&o));
    }
}

#[test]
fn json_log_format_writes_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = garrison()
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--log-format",
            "json",
            "demo",
            "--exit",
        ])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let logs: Vec<Value> = stderr(&o)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!logs.is_empty(), "{}", stderr(&o));
    for l in &logs {
        assert!(l["level"].is_string() && l["fields"].is_object(), "{l}");
    }
}

/// `garrison serve` answers `/v1` by default, with the model from
/// `GARRISON_LLM_*`, working in the agent's workspace under the data dir.
#[test]
fn serve_runs_v1_agents_with_the_environment_provider() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = model_server();
    let base = model.base_url.clone();
    let s = serve(
        d,
        &[
            ("GARRISON_LLM_BASE_URL", base.as_str()),
            ("GARRISON_LLM_MODEL", "test-model"),
            ("GARRISON_LLM_API_KEY", "test-key-for-v1"),
        ],
    );
    let token = std::fs::read_to_string(d.join("api-token"))
        .unwrap()
        .trim()
        .to_string();
    let (st, body) = get(&s.addr, &token, "/api/admin/status");
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["provider"]["source"], "environment", "{body}");
    assert_eq!(body["provider"]["model"], "test-model", "{body}");
    assert!(!body.to_string().contains("test-key-for-v1"));

    let (st, body) = post(
        &s.addr,
        &token,
        "/v1/runs",
        &json!({"agent_id": "agent_default", "message": "Write hello.txt"}),
    );
    assert_eq!(st, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let mut run = Value::Null;
    for _ in 0..400 {
        let (st, body) = get(&s.addr, &token, &format!("/v1/runs/{id}"));
        assert_eq!(st, 200, "{body}");
        run = body;
        if !matches!(run["status"].as_str(), Some("queued" | "running")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"], "Wrote hello.txt.");
    assert_eq!(
        std::fs::read_to_string(d.join("agents/agent_default/workspace/hello.txt")).unwrap(),
        "hello from the model\n"
    );
    assert_eq!(model.requests().len(), 2);
    s.stop();
}

/// SIGTERM stops `serve` within 5 s even while a tool runs a program that
/// would take a minute (its sandboxed process group is killed on the way).
#[test]
fn sigterm_stops_serve_while_a_tool_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = ModelServer::start([
        calls(&[(
            "call_1",
            "shell_exec",
            json!({"command": "sleep", "args": ["61.5"], "timeout_ms": 90000}),
        )]),
        text("Slept."),
    ]);
    let base = model.base_url.clone();
    let s = serve(
        d,
        &[
            ("GARRISON_LLM_BASE_URL", base.as_str()),
            ("GARRISON_LLM_MODEL", "test-model"),
        ],
    );
    let token = std::fs::read_to_string(d.join("api-token"))
        .unwrap()
        .trim()
        .to_string();
    let (st, body) = post(
        &s.addr,
        &token,
        "/v1/runs",
        &json!({"agent_id": "agent_default", "message": "Sleep"}),
    );
    assert_eq!(st, 202, "{body}");
    // Wait until the program runs.
    let running = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("61.5"))
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !running() {
        assert!(
            std::time::Instant::now() < deadline,
            "the tool never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = std::time::Instant::now();
    let status = s.process.terminate();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "serve took {took:?} to stop");
    assert!(status.success(), "{status}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!running(), "the tool's program outlived the server");
}
