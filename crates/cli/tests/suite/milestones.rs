//! `garrison milestones emit` against a one-request HTTP or HTTPS receiver.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Output;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use garrison_contracts::signature::verify;
use serde_json::{Value, json};

use super::common::garrison;

const SECRET: &str = "receiver-and-emitter-share-this";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[derive(Debug)]
struct Received {
    request_line: String,
    /// Names lowercased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        let found: Vec<&str> = self
            .headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(found.len(), 1, "{name} in {:?}", self.headers);
        found[0]
    }
}

/// Accepts one request on 127.0.0.1:0 and answers it; `None` if nobody
/// connects within a few seconds (so a failing emitter cannot hang the test).
fn receiver(status: &'static str, answer: Value) -> (String, JoinHandle<Option<Received>>) {
    let (listener, addr) = listen();
    let handle = std::thread::spawn(move || {
        let stream = accept(&listener)?;
        let got = answer_one(stream, status, &answer);
        Some(got.expect("a well-formed request"))
    });
    (format!("http://{addr}/internal/milestones/ingest"), handle)
}

/// As [`receiver`], over TLS with a certificate for 127.0.0.1 signed by a CA
/// made here; returns that CA's PEM too. `None` also when the emitter gives
/// up during the handshake.
fn tls_receiver(
    status: &'static str,
    answer: Value,
) -> (String, String, JoinHandle<Option<Received>>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "milestones test CA");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(leaf_key.serialize_der());
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key.into())
    .unwrap();
    let (listener, addr) = listen();
    let handle = std::thread::spawn(move || {
        let tcp = accept(&listener)?;
        let conn = rustls::ServerConnection::new(std::sync::Arc::new(config)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let got = answer_one(&mut tls, status, &answer)?;
        tls.conn.send_close_notify();
        let _ = tls.flush();
        Some(got)
    });
    (
        format!("https://{addr}/internal/milestones/ingest"),
        ca_pem,
        handle,
    )
}

fn listen() -> (TcpListener, std::net::SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// The first connection within 20 s.
fn accept(listener: &TcpListener) -> Option<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return None,
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    Some(stream)
}

/// Reads one request from `stream` and answers it; `None` when the stream
/// fails before a whole request arrived.
fn answer_one(stream: impl Read + Write, status: &str, answer: &Value) -> Option<Received> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse().unwrap())?;
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    let answer = answer.to_string();
    let stream = reader.get_mut();
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    )
    .ok()?;
    stream.flush().ok()?;
    Some(Received {
        request_line: request_line.trim_end().to_string(),
        headers,
        body,
    })
}

fn event() -> Value {
    json!({
        "scope": "garrison",
        "milestoneId": "m-1",
        "timestampUtc": "2026-02-28T12:34:56.000Z",
        "claim": "signing works — end to end",
        "evidence": [{"type": "log", "path": "workspace/orchestrator_state.json", "summary": "runtime evidence"}],
        "riskStatus": "on-track",
        "nextAction": "ship",
        "source": "orchestrator"
    })
}

fn emit(dir: &Path, url: &str, file_body: &str, env: &[(&str, &str)], extra: &[&str]) -> Output {
    let file = dir.join("milestone.json");
    std::fs::write(&file, file_body).unwrap();
    let mut cmd = garrison();
    cmd.args(["milestones", "emit", "--url", url, "--file"])
        .arg(&file)
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Signature valid for the received bytes, timestamp a JS-style ISO time near now.
fn assert_signed(got: &Received) {
    assert_eq!(
        got.request_line,
        "POST /internal/milestones/ingest HTTP/1.1"
    );
    assert_eq!(got.header("content-type"), "application/json");
    let signature = got.header("x-openclaw-signature");
    assert!(
        signature.len() == 64
            && signature
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{signature}"
    );
    assert!(verify(SECRET.as_bytes(), &got.body, signature).unwrap());
    assert!(!verify(b"another secret", &got.body, signature).unwrap());
    let stamp = got.header("x-openclaw-timestamp");
    assert_eq!(stamp.len(), "2026-02-28T12:34:56.000Z".len(), "{stamp}");
    let sent: jiff::Timestamp = stamp.parse().unwrap();
    let skew = jiff::Timestamp::now().duration_since(sent).as_secs().abs();
    assert!(skew < 120, "{stamp}");
}

#[test]
fn emits_a_full_body_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (url, receiver) = receiver(
        "200 OK",
        json!({"ok": true, "status": "accepted", "milestoneId": "m-1"}),
    );
    // Keys out of order and pretty-printed: sent exactly so, signed canonically.
    let file_body = serde_json::to_string_pretty(&json!({
        "sentAtUtc": "2026-02-28T12:34:56.000Z",
        "event": event(),
        "idempotencyKey": "key-1",
    }))
    .unwrap();
    let o = emit(
        dir.path(),
        &url,
        &file_body,
        &[("GARRISON_MILESTONE_SECRET", SECRET)],
        &[],
    );
    let got = receiver.join().unwrap().expect("no request arrived");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(got.body, file_body.as_bytes());
    assert_signed(&got);
    let out = text(&o.stdout);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("HTTP/1.1 200 OK"), "{out}");
    let answer: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(answer["status"], "accepted");
}

#[test]
fn wraps_a_bare_event_and_reads_the_named_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (url, receiver) = receiver(
        "200 OK",
        json!({"ok": true, "status": "duplicate", "milestoneId": "m-1"}),
    );
    let o = emit(
        dir.path(),
        &url,
        &event().to_string(),
        &[
            ("MY_MILESTONE_KEY", SECRET),
            ("GARRISON_MILESTONE_SECRET", "not this one"),
        ],
        &["--secret-env", "MY_MILESTONE_KEY"],
    );
    let got = receiver.join().unwrap().expect("no request arrived");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_signed(&got);
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    assert!(
        body["idempotencyKey"]
            .as_str()
            .unwrap()
            .starts_with("emit-")
    );
    assert!(garrison_contracts::parse_timestamp(body["sentAtUtc"].as_str().unwrap()).is_some());
    assert_eq!(body["event"], event());
}

#[test]
fn a_rejection_is_printed_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    for (status, answer) in [
        (
            "401 Unauthorized",
            json!({"ok": false, "status": "rejected", "reason": "invalid signature"}),
        ),
        ("200 OK", json!({"ok": false, "status": "rejected"})),
    ] {
        let (url, receiver) = receiver(status, answer);
        let o = emit(
            dir.path(),
            &url,
            &event().to_string(),
            &[("GARRISON_MILESTONE_SECRET", SECRET)],
            &[],
        );
        assert!(receiver.join().unwrap().is_some());
        assert_eq!(o.status.code(), Some(1), "{status}");
        let out = text(&o.stdout);
        assert!(out.starts_with(&format!("HTTP/1.1 {status}\n")), "{out}");
        assert!(out.contains("rejected"), "{out}");
    }
}

#[test]
fn refuses_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: reaching the network would be a different error.
    let url = "http://127.0.0.1:1/ingest";
    let secret = [("GARRISON_MILESTONE_SECRET", SECRET)];

    let o = emit(dir.path(), url, &event().to_string(), &[], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("GARRISON_MILESTONE_SECRET"),
        "{}",
        text(&o.stderr)
    );
    let o = emit(
        dir.path(),
        url,
        &event().to_string(),
        &[("OTHER", "")],
        &["--secret-env", "OTHER"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("OTHER is empty"),
        "{}",
        text(&o.stderr)
    );

    let mut bad = event();
    bad["evidence"] = json!([]);
    let o = emit(dir.path(), url, &bad.to_string(), &secret, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("evidence"), "{}", text(&o.stderr));

    let blank_key = json!({"idempotencyKey": " ", "event": event()}).to_string();
    let o = emit(dir.path(), url, &blank_key, &secret, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("idempotencyKey"),
        "{}",
        text(&o.stderr)
    );

    let o = emit(dir.path(), url, "{\"event\":", &secret, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("not valid JSON"),
        "{}",
        text(&o.stderr)
    );

    let o = emit(
        dir.path(),
        "ftp://127.0.0.1:1/ingest",
        &event().to_string(),
        &secret,
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("expected a URL like"),
        "{}",
        text(&o.stderr)
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn emits_over_tls_to_a_ca_named_by_garrison_tls_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let (url, ca_pem, receiver) = tls_receiver(
        "200 OK",
        json!({"ok": true, "status": "accepted", "milestoneId": "m-1"}),
    );
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let o = emit(
        dir.path(),
        &url,
        &event().to_string(),
        &[
            ("GARRISON_MILESTONE_SECRET", SECRET),
            ("GARRISON_TLS_CA_FILE", ca_file.to_str().unwrap()),
        ],
        &[],
    );
    let got = receiver.join().unwrap().expect("no request arrived");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_signed(&got);
    let out = text(&o.stdout);
    assert!(out.starts_with("HTTP/1.1 200 OK\n"), "{out}");
    assert!(out.contains("accepted"), "{out}");
}

#[test]
fn an_untrusted_or_unreadable_ca_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let secret = ("GARRISON_MILESTONE_SECRET", SECRET);

    // Only the webpki roots: the test CA is unknown and nothing is delivered.
    let (url, _, receiver) = tls_receiver("200 OK", json!({"ok": true}));
    let o = emit(dir.path(), &url, &event().to_string(), &[secret], &[]);
    assert!(receiver.join().unwrap().is_none());
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("invalid peer certificate"), "{err}");
    assert!(err.contains("GARRISON_TLS_CA_FILE"), "{err}");
    assert!(o.stdout.is_empty());

    // A CA file that is not there, or holds no certificate.
    let missing = dir.path().join("missing.pem");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    for (file, expect) in [
        (&missing, "No such file"),
        (&empty, "no `BEGIN CERTIFICATE`"),
    ] {
        let o = emit(
            dir.path(),
            "https://127.0.0.1:1/ingest",
            &event().to_string(),
            &[secret, ("GARRISON_TLS_CA_FILE", file.to_str().unwrap())],
            &[],
        );
        assert_eq!(o.status.code(), Some(1));
        let err = text(&o.stderr);
        assert!(err.contains("GARRISON_TLS_CA_FILE `"), "{err}");
        assert!(err.contains(expect), "{err}");
    }
}

#[test]
fn help_has_an_example() {
    let o = garrison()
        .args(["milestones", "emit", "--help"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let h = text(&o.stdout);
    for needle in [
        "Example:",
        "--url",
        "--file",
        "--secret-env",
        "GARRISON_MILESTONE_SECRET",
        "x-openclaw-signature",
    ] {
        assert!(h.contains(needle), "lacks {needle}:\n{h}");
    }
}

/// Appends one delivery step to the data dir's embedded ledger.
fn append_delivery(dir: &Path, state: &str, attempt: u32) {
    use garrison_contracts::ironclaw::EventType;
    use garrison_ledger::{Ledger, NewEvent, sqlite::SqliteLedger};
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ledger = SqliteLedger::open(&dir.join("ledger.db")).unwrap();
        let payload = json!({
            "source_event_id": "01SRC", "target": "http://127.0.0.1:9/ingest",
            "attempt": attempt, "state": state, "http_status": 503, "reason": "busy",
            "idempotency_key": "garrison:01SRC", "milestone_id": "01SRC"
        });
        ledger
            .append(
                NewEvent::new(EventType::MilestoneDelivery)
                    .in_stream("delivery:01SRC:http://127.0.0.1:9/ingest")
                    .payload(payload),
            )
            .await
            .unwrap();
        ledger.close().await.unwrap();
    });
}

#[test]
fn deliveries_are_listed_from_the_local_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let o = garrison()
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "milestones",
            "deliveries",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty(), "{}", text(&o.stdout));

    append_delivery(dir.path(), "sending", 1);
    append_delivery(dir.path(), "retry", 1);
    let o = garrison()
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "milestones",
            "deliveries",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines: Vec<Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["source_event_id"], "01SRC");
    assert_eq!(lines[0]["state"], "retry");
    assert_eq!(lines[0]["attempts"], 1);
    assert_eq!(lines[0]["last_http_status"], 503);
    assert_eq!(lines[0]["last_reason"], "busy");
}

#[test]
fn serve_refuses_unusable_milestone_targets() {
    for (toml, env, expect) in [
        (
            "[milestones]\ntargets = [\"http://127.0.0.1:9/internal/milestones/ingest\"]\n",
            None,
            "has no signing secret: set GARRISON_MILESTONE_SECRET",
        ),
        (
            "[milestones]\ntargets = [{ url = \"http://127.0.0.1:9/i\", secret_env = \"OUTBOX_SECRET_X\" }]\n",
            Some(("GARRISON_MILESTONE_SECRET", "set-but-not-the-one")),
            "set OUTBOX_SECRET_X",
        ),
        (
            "[milestones]\ntargets = [\"ftp://example.com/internal/milestones/ingest\"]\n",
            Some(("GARRISON_MILESTONE_SECRET", "s")),
            "expected a URL like",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("garrison.toml"), toml).unwrap();
        let mut c = garrison();
        c.env_remove("OUTBOX_SECRET_X");
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let o = c
            .args([
                "--data-dir",
                dir.path().to_str().unwrap(),
                "serve",
                "--listen",
                "127.0.0.1:0",
            ])
            .output()
            .unwrap();
        assert!(!o.status.success(), "{toml}");
        assert!(
            text(&o.stderr).contains(expect),
            "{toml}: {}",
            text(&o.stderr)
        );
        assert!(!dir.path().join("ledger.db").exists(), "{toml}");
    }
}
